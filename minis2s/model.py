"""The seed's encoder-decoder, forward and backward by hand, with a GRU (the seed's), an
LSTM or a vanilla RNN as its cell (``ModelConfig.cell``).

Derivation of the parts that are the model's own (the context concatenation and the
state hand-over): docs/derivations.md#seq2seq.

Encoder: embedding (V_src, E) -> recurrent stack (L layers, 1 or 2 directions, H units).
Decoder: its initial state is the encoder's final state (for the LSTM, both h and c);
its input at every step is ``[embedding of the previous token ; context]`` where the
context is the encoder's top-layer final h, the same at every step; a dense layer maps
each output to the target vocabulary.

Sizing to a bidirectional encoder: the encoder's layer k ends in a forward state and a
backward state (each H). The decoder has ``dirs * H`` units (H, or 2H when the encoder is
bidirectional); its layer k starts from ``[forward_k ; backward_k]`` and its context is
``[forward_{L-1} ; backward_{L-1}]``, so decoder layer 0 reads E + dirs * H features.

Parameters carry ``torch.nn`` names and shapes (see :func:`param_shapes`), so weights
move to and from a PyTorch model built from nn.Embedding, nn.GRU (nn.LSTM, nn.RNN) and
nn.Linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .backend import Backend, array_module
from .ops import (
    CELLS,
    dense_backward,
    dense_forward,
    embed_project_backward,
    embed_project_forward,
    masked_softmax_ce_backward,
    masked_softmax_ce_forward,
    param_suffix,
    reduction_scale,
    repeat_steps_add_backward,
    repeat_steps_add_forward,
    softmax_ce_backward,
    softmax_ce_forward,
    stack_backward,
    stack_forward,
    stack_param_shapes,
)
from .params import ParamSet

if TYPE_CHECKING:  # the model reads a batch's fields; it never builds one
    from .data.batches import Batch


@dataclass(frozen=True)
class ModelConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    embed_size: int = 32
    num_hiddens: int = 32
    num_layers: int = 2
    dropout: float = 0.1
    bidirectional: bool = False
    cell: str = "gru"  # "gru" (the seed's), "lstm" or "rnn" (vanilla, tanh)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of "
                             f"{', '.join(CELLS)}")

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def decoder_hiddens(self) -> int:
        """Units of the decoder's cell: the width of one encoder layer's final state."""
        return self.num_directions * self.num_hiddens

    @property
    def recurrent(self):
        """The recurrent cell, a :class:`minis2s.ops.Cell`."""
        return CELLS[self.cell]


def param_shapes(cfg: ModelConfig) -> dict[str, tuple]:
    """Every parameter's name and shape, in PyTorch's state_dict order."""
    E, H, Hd, L = cfg.embed_size, cfg.num_hiddens, cfg.decoder_hiddens, cfg.num_layers
    G = cfg.recurrent.gates
    shapes = {"encoder.embedding.weight": (cfg.src_vocab_size, E)}
    shapes.update(stack_param_shapes(G, E, H, L, cfg.num_directions, prefix="encoder.rnn."))
    shapes["decoder.embedding.weight"] = (cfg.tgt_vocab_size, E)
    shapes.update(stack_param_shapes(G, E + Hd, Hd, L, 1, prefix="decoder.rnn."))
    shapes["decoder.dense.weight"] = (cfg.tgt_vocab_size, Hd)
    shapes["decoder.dense.bias"] = (cfg.tgt_vocab_size,)
    return shapes


def init_params(cfg: ModelConfig, backend: Backend, rng: np.random.Generator) -> ParamSet:
    """Initialise as the seed does: Xavier-uniform recurrent and dense weight matrices,
    N(0, 1) embeddings, PyTorch's default U(-1/sqrt(fan), 1/sqrt(fan)) biases.

    Draws come from ``rng`` (a NumPy generator, in name order) so that the same random
    seed gives the same initial parameters on every backend.
    """
    params = ParamSet(param_shapes(cfg), backend.xp, backend.dtype)
    for name, shape in params.shapes.items():
        if name.endswith("embedding.weight"):
            value = rng.standard_normal(shape)
        elif ".weight" in name:  # weight_ih/weight_hh and dense weight: Xavier uniform
            fan_out, fan_in = shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            value = rng.uniform(-bound, bound, shape)
        elif name.startswith("decoder.dense."):  # nn.Linear bias: 1/sqrt(in_features)
            bound = 1.0 / np.sqrt(params.shapes["decoder.dense.weight"][1])
            value = rng.uniform(-bound, bound, shape)
        else:  # nn.GRU / LSTM / RNN bias: 1/sqrt(hidden_size)
            bound = 1.0 / np.sqrt(shape[0] // cfg.recurrent.gates)
            value = rng.uniform(-bound, bound, shape)
        params[name] = value
    return params


def _scope(params, prefix: str) -> dict:
    """The entries of ``params`` under ``prefix``, with the prefix removed."""
    n = len(prefix)
    return {k[n:]: v for k, v in params.items() if k.startswith(prefix)}


class DropoutMasks(NamedTuple):
    encoder: list | None  # L - 1 masks (T_src, N, dirs * H)
    decoder: list | None  # L - 1 masks (T_tgt, N, dirs * H)


def draw_dropout_masks(cfg: ModelConfig, backend: Backend, gen, N: int, T_src: int,
                       T_tgt: int) -> DropoutMasks:
    """Masks for one training batch, drawn from the caller's generator ``gen``."""
    if cfg.dropout <= 0 or cfg.num_layers < 2:
        return DropoutMasks(None, None)
    W = cfg.decoder_hiddens
    enc = [backend.dropout_mask(gen, (T_src, N, W), cfg.dropout)
           for _ in range(cfg.num_layers - 1)]
    dec = [backend.dropout_mask(gen, (T_tgt, N, W), cfg.dropout)
           for _ in range(cfg.num_layers - 1)]
    return DropoutMasks(enc, dec)


# ----------------------------------------------------------------------------- states


def map_state(fn, state):
    """``fn`` applied to a state's arrays: to h, or to each of (h, c)."""
    return tuple(fn(part) for part in state) if isinstance(state, tuple) else fn(state)


def top_h(state):
    """The top layer's h of a model state (L, N, W), or of (h, c): the context."""
    return (state[0] if isinstance(state, tuple) else state)[-1]


# ----------------------------------------------------------------------------- encoder


class EncoderCache(NamedTuple):
    embedded: list  # per direction: the EmbedProjectCache of layer 0's projections
    rnn: Any  # the recurrent stack's cache
    num_directions: int


def encoder_forward(params, cfg: ModelConfig, src, masks=None, probes=None):
    """src (N, T) ids -> ``(state, context), cache``.

    state: the decoder's initial state, (L, N, dirs * H) — for the LSTM a pair (h, c) of
    them; context (N, dirs * H): the top layer's final h. ``probes``: see
    :func:`minis2s.ops.stack_forward` (the gradient-flow test adds them).
    """
    ids = src.T  # (T, N): time-major, as the stack reads
    emb = params["encoder.embedding.weight"]
    proj, embedded = [], []
    for d in range(cfg.num_directions):  # layer 0's input: the embeddings, projected
        sfx = param_suffix(0, d)
        gi, ecache = embed_project_forward(ids, emb, params["encoder.rnn.weight_ih" + sfx],
                                           params["encoder.rnn.bias_ih" + sfx])
        proj.append(gi)  # (T, N, G·H)
        embedded.append(ecache)
    (_, state_n), rnn_cache = stack_forward(cfg.recurrent, None,
                                            _scope(params, "encoder.rnn."), cfg.num_layers,
                                            cfg.bidirectional, None, masks, input_proj=proj,
                                            probes=probes)
    L, dirs = cfg.num_layers, cfg.num_directions

    def side_by_side(s):  # (L * dirs, N, H) -> (L, N, dirs * H): layer k's directions
        _, N, H = s.shape
        return s.reshape(L, dirs, N, H).transpose(0, 2, 1, 3).reshape(L, N, dirs * H)

    state = map_state(side_by_side, state_n)
    return (state, top_h(state)), EncoderCache(embedded, rnn_cache, dirs)


def encoder_backward(dstate, cache: EncoderCache, record: bool = False):
    """dstate: the gradient of the final state, shaped like it -> grads by full name (and,
    with ``record``, the stack's recorded state gradients as well)."""
    dirs = cache.num_directions

    def apart(ds):  # the inverse move: (L, N, dirs * H) -> (L * dirs, N, H)
        L, N, W = ds.shape
        return ds.reshape(L, N, dirs, W // dirs).transpose(0, 2, 1, 3).reshape(
            L * dirs, N, W // dirs)

    dproj, _, g_rnn, *recorded = stack_backward(None, map_state(apart, dstate), cache.rnn,
                                                record)  # outputs unused: only the state
    grads = {"encoder.rnn." + k: v for k, v in g_rnn.items()}
    demb = None
    for d, ecache in enumerate(cache.embedded):
        ge = embed_project_backward(dproj[d], ecache)
        sfx = param_suffix(0, d)
        grads["encoder.rnn.weight_ih" + sfx] = ge["weight"]
        grads["encoder.rnn.bias_ih" + sfx] = ge["bias"]
        demb = ge["embedding"] if demb is None else demb + ge["embedding"]
    grads["encoder.embedding.weight"] = demb  # both directions read the same embeddings
    return (grads, recorded[0]) if record else grads


# ----------------------------------------------------------------------------- decoder


class DecoderInputCache(NamedTuple):
    embedded: Any  # EmbedProjectCache of the ids' share
    repeat: Any  # RepeatStepsCache of the context's share
    context: Any  # (N, Hd)
    w_context: Any  # (3Hd, Hd): the context's columns of weight_ih_l0


def decoder_input_forward(params, cfg: ModelConfig, ids, context, batch_sizes=None):
    """Layer 0's input projections of the decoder, ``[emb(y_t) ; context] W_ihᵀ + b_ih``,
    without forming the concatenation: the embedding's share through the fused lookup and
    the context's share ``context W_cᵀ`` once per sequence, added at each of its steps.

    ids (T, N) padded or (M,) packed by ``batch_sizes``; context (N, Hd).
    Returns projections (T, N, 3Hd) or (M, 3Hd) and the cache.
    """
    sfx, E = param_suffix(0, 0), cfg.embed_size
    w_ih = params["decoder.rnn.weight_ih" + sfx]
    gi, ecache = embed_project_forward(ids, params["decoder.embedding.weight"], w_ih[:, :E],
                                       params["decoder.rnn.bias_ih" + sfx])
    w_c = w_ih[:, E:]
    gi, rcache = repeat_steps_add_forward(gi, context @ w_c.T, batch_sizes)
    return gi, DecoderInputCache(ecache, rcache, context, w_c)


def decoder_input_backward(dgi, cache: DecoderInputCache):
    """-> ``(dcontext, grads)`` with the embedding's, ``weight_ih_l0``'s and
    ``bias_ih_l0``'s gradients by full name."""
    xp = array_module(dgi)
    ge = embed_project_backward(dgi, cache.embedded)
    dsp = repeat_steps_add_backward(dgi, cache.repeat)  # (N, 3Hd): context W_cᵀ's gradient
    sfx = param_suffix(0, 0)
    grads = {"decoder.embedding.weight": ge["embedding"],
             "decoder.rnn.weight_ih" + sfx: xp.concatenate([ge["weight"],
                                                             dsp.T @ cache.context], axis=1),
             "decoder.rnn.bias_ih" + sfx: ge["bias"]}
    return dsp @ cache.w_context, grads


class DecoderCache(NamedTuple):
    inputs: DecoderInputCache
    rnn: Any  # the recurrent stack's cache
    dense: Any
    packed: bool  # logits are (M, V) rows, not (N, T, V)


def decoder_forward(params, cfg: ModelConfig, tgt_in, state, context, masks=None,
                    probes=None):
    """tgt_in (N, T) previous tokens -> ``(logits (N, T, V), state_n), cache``.

    Each step reads ``[embedding of tgt_in_t ; context]``, starting from ``state`` (as
    :func:`encoder_forward` gives it); state_n is the state after the last step."""
    gi, in_cache = decoder_input_forward(params, cfg, tgt_in.T, context)
    (out, state_n), rnn_cache = stack_forward(cfg.recurrent, None,
                                              _scope(params, "decoder.rnn."), cfg.num_layers,
                                              False, state, masks, input_proj=[gi],
                                              probes=probes)
    logits, dense_cache = dense_forward(out, params["decoder.dense.weight"],
                                        params["decoder.dense.bias"])  # (T, N, V)
    cache = DecoderCache(in_cache, rnn_cache, dense_cache, False)
    return (logits.transpose(1, 0, 2), state_n), cache


def decoder_forward_packed(params, cfg: ModelConfig, ids, batch_sizes, state, context,
                           masks=None):
    """The decoder on packed rows only: ids (M,) with ``batch_sizes`` per step (rows sorted
    by length, longest first) -> logits (M, V) and the cache. Padding costs nothing."""
    gi, in_cache = decoder_input_forward(params, cfg, ids, context, batch_sizes)
    (out, _), rnn_cache = stack_forward(cfg.recurrent, None, _scope(params, "decoder.rnn."),
                                        cfg.num_layers, False, state, masks,
                                        batch_sizes=batch_sizes, input_proj=[gi])
    logits, dense_cache = dense_forward(out, params["decoder.dense.weight"],
                                        params["decoder.dense.bias"])  # (M, V)
    return logits, DecoderCache(in_cache, rnn_cache, dense_cache, True)


def decoder_backward(dlogits, cache: DecoderCache, record: bool = False):
    """dlogits (N, T, V), or (M, V) when packed -> ``(dstate, dcontext, grads)`` (and,
    with ``record``, the stack's recorded state gradients as a fourth value)."""
    if not cache.packed:
        dlogits = dlogits.transpose(1, 0, 2)
    dout, g_dense = dense_backward(dlogits, cache.dense)
    (dgi,), dstate, g_rnn, *recorded = stack_backward(dout, None, cache.rnn, record)
    dcontext, grads = decoder_input_backward(dgi, cache.inputs)
    grads.update({"decoder.rnn." + k: v for k, v in g_rnn.items()})
    grads.update({"decoder.dense." + k: v for k, v in g_dense.items()})
    return (dstate, dcontext, grads, *recorded)


# ----------------------------------------------------------------------- the whole model


class Seq2SeqCache(NamedTuple):
    encoder: EncoderCache
    decoder: DecoderCache
    loss: Any
    packed: bool


def seq2seq_forward(params, cfg: ModelConfig, batch: Batch, masks: DropoutMasks | None = None,
                    reduction: str = "seq", packed: bool = True, probes=None):
    """Teacher-forced loss of a batch (:class:`minis2s.data.batches.Batch`, its arrays on
    this backend): src (N, T_src), tgt_in and tgt (N, T_tgt), tgt_valid_len (N,).

    ``masks`` (from :func:`draw_dropout_masks`) are indexed by the batch's own rows and
    steps. With ``packed`` (the default) the decoder, the dense layer and the loss run on
    the valid target positions only, rows sorted by length (``batch.packing``): the
    decoder is causal and the loss masked, so the loss and the gradients are those of the
    plain (``packed=False``) computation over every padded position, which the seed's
    model does. ``probes`` (plain path only): ``{"encoder": [...], "decoder": [...]}``,
    see :func:`minis2s.ops.stack_forward`.
    """
    masks = masks or DropoutMasks(None, None)
    if not packed:
        probes = probes or {}
        (state, context), enc_cache = encoder_forward(params, cfg, batch.src, masks.encoder,
                                                      probes.get("encoder"))
        (logits, _), dec_cache = decoder_forward(params, cfg, batch.tgt_in, state, context,
                                                 masks.decoder, probes.get("decoder"))
        loss, loss_cache = masked_softmax_ce_forward(logits, batch.tgt, batch.tgt_valid_len,
                                                     reduction)
        return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, False)
    if probes is not None:
        raise ValueError("probes need the plain path (packed=False)")
    xp = array_module(batch.tgt)
    p = batch.packing
    enc_masks = None if masks.encoder is None else [m[:, p.order] for m in masks.encoder]
    dec_masks = None if masks.decoder is None else [m[p.steps, p.rows] for m in masks.decoder]
    (state, context), enc_cache = encoder_forward(params, cfg, batch.src[p.order], enc_masks)
    logits, dec_cache = decoder_forward_packed(params, cfg, batch.tgt_in[p.rows, p.steps],
                                               p.batch_sizes, state, context, dec_masks)
    M, T = logits.shape[0], batch.tgt.shape[1]
    weights = xp.full(M, reduction_scale(reduction, T, M), dtype=logits.dtype)
    loss, loss_cache = softmax_ce_forward(logits, batch.tgt[p.rows, p.steps], weights,
                                          overwrite=True)
    return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, True)


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
    dstate, dcontext, grads, *dec_recorded = decoder_backward(dlogits, cache.decoder, record)
    dh = dstate[0] if isinstance(dstate, tuple) else dstate
    dh[-1] += dcontext  # the context is the top layer's h: its gradient joins the state's
    enc = encoder_backward(dstate, cache.encoder, record)
    if not record:
        grads.update(enc)
        return grads
    grads.update(enc[0])
    return grads, {"encoder": enc[1], "decoder": dec_recorded[0]}
