"""The whole model: a batch in, the teacher-forced loss out, and its backward — the
forward read in reverse. Either decoder (the seed's, or Bahdanau attention) sits on the
same encoder.

Derivation: docs/derivations.md#seq2seq and #attention-decoder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ..backend import array_module
from ..ops import (
    masked_softmax_ce_backward,
    masked_softmax_ce_forward,
    reduction_scale,
    softmax_ce_backward,
    softmax_ce_forward,
)
from .attention import attention_decoder_backward, attention_decoder_forward
from .config import DropoutMasks, ModelConfig, top_h
from .decoder import decoder_backward, decoder_forward, decoder_forward_packed
from .encoder import encoder_backward, encoder_forward

if TYPE_CHECKING:  # the model reads a batch's fields; it never builds one
    from ..data.batches import Batch


class Seq2SeqCache(NamedTuple):
    encoder: Any  # EncoderCache
    decoder: Any  # DecoderCache or AttentionDecoderCache
    loss: Any
    packed: bool
    params: Any  # the attention decoder's backward reads its weights
    cfg: ModelConfig


def seq2seq_forward(params, cfg: ModelConfig, batch: Batch, masks: DropoutMasks | None = None,
                    reduction: str = "seq", packed: bool = True, probes=None):
    """Teacher-forced loss of a batch (:class:`minis2s.data.batches.Batch`, its arrays on
    this backend): src (N, T_src), tgt_in and tgt (N, T_tgt), tgt_valid_len (N,).

    ``masks`` (from :func:`draw_dropout_masks`) are indexed by the batch's own rows and
    steps. With ``packed`` (the default) the decoder, the dense layer and the loss run on
    the valid target positions only, rows sorted by length (``batch.packing``): the
    decoder is causal and the loss masked, so the loss and the gradients are those of the
    plain (``packed=False``) computation over every padded position, which the seed's
    model does. The same holds for the attention decoder, whose steps then run the
    sequences still going only. ``probes`` (padded only): ``{"encoder": [...],
    "decoder": [...]}``, see :func:`minis2s.ops.stack_forward`.
    """
    masks = masks or DropoutMasks(None, None)
    if not packed:
        probes = probes or {}
        (state, outputs), enc_cache = encoder_forward(params, cfg, batch.src, masks.encoder,
                                                      probes.get("encoder"))
        if cfg.attention:
            (logits, _, _), dec_cache = attention_decoder_forward(
                params, cfg, batch.tgt_in, state, outputs, batch.src_valid_len, masks,
                probes.get("decoder"))
        else:
            (logits, _), dec_cache = decoder_forward(params, cfg, batch.tgt_in, state,
                                                     top_h(state), masks.decoder,
                                                     probes.get("decoder"))
        loss, loss_cache = masked_softmax_ce_forward(logits, batch.tgt, batch.tgt_valid_len,
                                                     reduction)
        return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, False, params, cfg)
    if probes is not None:
        raise ValueError("probes need the plain path (packed=False)")
    xp = array_module(batch.tgt)
    p = batch.packing
    enc_masks = None if masks.encoder is None else [m[:, p.order] for m in masks.encoder]
    dec_masks = None if masks.decoder is None else [m[p.steps, p.rows] for m in masks.decoder]
    (state, outputs), enc_cache = encoder_forward(params, cfg, batch.src[p.order],
                                                  enc_masks)
    ids = batch.tgt_in[p.rows, p.steps]
    if cfg.attention:
        att_masks = None if masks.attention is None else masks.attention[p.steps, p.rows]
        (logits, _, _), dec_cache = attention_decoder_forward(
            params, cfg, ids, state, outputs, batch.src_valid_len[p.order],
            DropoutMasks(None, dec_masks, att_masks), batch_sizes=p.batch_sizes)
    else:
        logits, dec_cache = decoder_forward_packed(params, cfg, ids, p.batch_sizes, state,
                                                   top_h(state), dec_masks)
    M, T = logits.shape[0], batch.tgt.shape[1]
    weights = xp.full(M, reduction_scale(reduction, T, M), dtype=logits.dtype)
    loss, loss_cache = softmax_ce_forward(logits, batch.tgt[p.rows, p.steps], weights,
                                          overwrite=True)
    return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, True, params, cfg)


def seq2seq_backward(dloss, cache: Seq2SeqCache, consume: bool = False,
                     record: bool = False):
    """Gradients of every parameter by name: the forward read in reverse.

    The cache is left intact, so a second call gives the same gradients. With ``consume``
    (the trainer's choice) the packed path reuses the loss cache's (M, V) buffer for the
    logits' gradient instead of copying it; the cache is then spent, and another backward
    on it raises :class:`minis2s.ops.CacheConsumedError`. With ``record``, also returns
    ``{"encoder": [...], "decoder": [...]}``: per (layer, direction), the total gradient of
    every state h as backprop through time carried it (rows as the stacks lay them out).
    """
    if cache.packed:
        dlogits = softmax_ce_backward(dloss, cache.loss, consume=consume)
    else:
        dlogits = masked_softmax_ce_backward(dloss, cache.loss)
    if cache.cfg.attention:
        dstate, doutputs, grads, *dec_recorded = attention_decoder_backward(
            dlogits, cache.decoder, cache.params, cache.cfg, record)
    else:
        dstate, dcontext, grads, *dec_recorded = decoder_backward(dlogits, cache.decoder,
                                                                  record)
        # the context is the top layer's h: its gradient joins the state's (in place,
        # through top_h's view)
        top_h(dstate)[...] += dcontext
        doutputs = None  # the seed's decoder reads only the encoder's final state
    enc = encoder_backward(dstate, cache.encoder, record, doutputs)
    if not record:
        grads.update(enc)
        return grads
    grads.update(enc[0])
    return grads, {"encoder": enc[1], "decoder": dec_recorded[0]}
