"""The whole model: a batch in, the teacher-forced loss out, and its backward — the
forward read in reverse. The decoder is ``cfg.decoder``, any entry of
:data:`~.registry.DECODERS`, on the same encoder.

Derivation: docs/derivations.md#seq2seq and #attention-decoder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ..backend import BackendError, array_module, map_arrays
from ..ops import (
    loss_weights,
    masked_softmax_ce_backward,
    masked_softmax_ce_forward,
    reduction_scale,
    softmax_ce_backward,
    softmax_ce_forward,
)
from .config import DropoutMasks, ModelConfig
from .encoder import encoder_backward, encoder_forward

if TYPE_CHECKING:  # the model reads a batch's fields; it never builds one
    from ..data.batches import Batch


class Seq2SeqCache(NamedTuple):
    encoder: Any  # EncoderCache
    decoder: Any  # the decoder's own cache
    loss: Any
    packed: bool
    cfg: ModelConfig


class Gradients(NamedTuple):
    """What :func:`seq2seq_backward` returns, whatever it was asked to record."""

    params: dict  # every parameter's gradient, by name
    recorded: Any  # None, or {"encoder": [...], "decoder": [...]}: per (layer, direction),
    #                the total gradient of every state h as backprop through time carried it
    #                (with record="state", a State of h's and, for the LSTM, c's)


def seq2seq_forward(params, cfg: ModelConfig, batch: Batch, masks: DropoutMasks | None = None,
                    reduction: str = "seq", packed: bool = True, probes=None):
    """Teacher-forced loss of a batch (:class:`minis2s.data.batches.Batch`, its arrays on
    this backend): src (N, S), tgt_in and tgt (N, T), the valid lengths of both.

    ``masks`` (from :func:`draw_dropout_masks`) are indexed by the batch's own rows and
    steps. With ``packed`` (the default) the decoder, the dense layer and the loss run on
    the valid target positions only, rows sorted by length (``batch.packing``): every
    decoder is causal and the loss masked, so the loss and the gradients are those of the
    plain (``packed=False``) computation over every padded position, which the seed's
    model does. ``reduction``: one of :data:`minis2s.ops.REDUCTIONS` (``"unmasked"``, the
    loss over the padding too, runs the plain path). ``probes`` (padded only):
    ``{"encoder": [...], "decoder": [...]}``, see :func:`minis2s.ops.stack_forward`.
    """
    masks = masks or DropoutMasks()
    same_backend(params, batch, masks)
    decoder = cfg.decoder
    if reduction == "unmasked":  # the padding's logits too: the plain path
        packed = False
    if not packed:
        probes = probes or {}
        encoded, enc_cache = encoder_forward(params, cfg, batch.src, batch.src_valid_len,
                                             masks=masks.encoder,
                                             probes=probes.get("encoder"))
        logits, dec_cache = decoder.forward(params, cfg, batch.tgt_in, encoded,
                                            masks.decoder, probes=probes.get("decoder"))
        loss, loss_cache = masked_softmax_ce_forward(logits, batch.tgt, batch.tgt_valid_len,
                                                     reduction)
        return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, False, cfg)
    if probes is not None:
        raise ValueError("probes need the plain path (packed=False)")
    xp = array_module(batch.tgt)
    p = batch.packing  # rows by target length: the encoder reads them in that order too
    encoded, enc_cache = encoder_forward(
        params, cfg, batch.src[p.order], batch.src_valid_len[p.order],
        masks=map_arrays(lambda m: m[:, p.order], masks.encoder))
    logits, dec_cache = decoder.forward(params, cfg, batch.tgt_in[p.rows, p.steps], encoded,
                                        map_arrays(lambda m: m[p.steps, p.rows],
                                                   masks.decoder),
                                        batch_sizes=p.batch_sizes)
    T, M = batch.tgt.shape[1], len(p.rows)  # M valid target tokens, known on the host
    if reduction == "mean":  # each row's own 1 / length: the one per-token weighting
        weights = loss_weights(reduction, xp.asarray(batch.tgt_valid_len), T)[p.rows, p.steps]
        weights = weights.astype(logits.dtype)
    else:  # one factor for every valid token (seq 1/T, token 1/M, sum 1)
        weights = xp.full(M, reduction_scale(reduction, T, M), dtype=logits.dtype)
    loss, loss_cache = softmax_ce_forward(logits, batch.tgt[p.rows, p.steps], weights,
                                          overwrite=True)
    return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, True, cfg)


def same_backend(params, batch: Batch, masks: DropoutMasks | None = None) -> None:
    """Refuse, with a :class:`~minis2s.backend.BackendError`, a batch or dropout masks
    whose arrays live on another backend than the parameters (NumPy arrays given to a
    model on the GPU, or the reverse): the model would otherwise mix host and device
    arrays in its first operation."""
    xp = array_module(next(iter(params.values())))
    p = batch.packing
    arrays = {"src": batch.src, "src_valid_len": batch.src_valid_len, "tgt_in": batch.tgt_in,
              "tgt": batch.tgt, "tgt_valid_len": batch.tgt_valid_len,
              "packing.order": p.order, "packing.steps": p.steps, "packing.rows": p.rows}
    named = [(f"the batch's {name}", a) for name, a in arrays.items()]
    found = []
    map_arrays(found.append, list(masks or ()))
    named += [("a dropout mask", m) for m in found]
    for what, a in named:
        on = array_module(a)
        if on is not xp:
            raise BackendError(f"{what} is a {on.__name__} array but the model's parameters "
                               f"are {xp.__name__} arrays: move the batch there first "
                               f"(batch.to({xp.__name__})), and draw the masks there")


def seq2seq_backward(dloss, cache: Seq2SeqCache, consume: bool = False,
                     record: bool | str = False, target_step: int | None = None
                     ) -> Gradients:
    """Gradients of every parameter by name: the forward read in reverse.

    The cache is left intact, so a second call gives the same gradients. With ``consume``
    (the trainer's choice) the packed path reuses the loss cache's (M, V) buffer for the
    logits' gradient instead of copying it; the cache is then spent, and another backward
    on it raises :class:`minis2s.ops.CacheConsumedError`. With ``record``,
    :attr:`Gradients.recorded` holds the state gradients of both stacks (rows as the
    stacks lay them out; ``record="state"``: a :class:`~minis2s.ops.State` per layer, with
    the LSTM's cell state c too, see :func:`minis2s.ops.stack_backward`). With
    ``target_step`` t (plain path only), the gradients are those of the loss at target
    step t alone: the logits' gradient is kept at that step and zero at every other, so
    the sum over t of these backwards is the whole one.
    """
    if cache.packed:
        if target_step is not None:
            raise ValueError("target_step needs the plain path (packed=False)")
        dlogits = softmax_ce_backward(dloss, cache.loss, consume=consume)
    else:
        dlogits = masked_softmax_ce_backward(dloss, cache.loss)
        if target_step is not None:  # (N, T, V): the loss of that step alone
            only = array_module(dlogits).zeros_like(dlogits)
            only[:, target_step] = dlogits[:, target_step]
            dlogits = only
    dec = cache.cfg.decoder.backward(dlogits, cache.decoder, record)
    enc = encoder_backward(dec.dstate, dec.doutputs, cache.encoder, record)
    grads = {**enc.params, **dec.params}
    recorded = {"encoder": enc.recorded, "decoder": dec.recorded} if record else None
    return Gradients(grads, recorded)
