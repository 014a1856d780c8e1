"""The seed's decoder: each step reads ``[embedding of the previous token ; context]``,
the context being the encoder's top-layer final h, the same at every step; a dense layer
maps each output to the target vocabulary.

Derivation: docs/derivations.md#seq2seq (the decoder input, and the two paths into the
encoder).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from ..ops import (
    dense_backward,
    dense_forward,
    embed_project_backward,
    embed_project_forward,
    param_suffix,
    repeat_steps_add_backward,
    repeat_steps_add_forward,
    stack_backward,
    stack_forward,
)
from .config import ModelConfig, scope


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
                                              scope(params, "decoder.rnn."), cfg.num_layers,
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
    (out, _), rnn_cache = stack_forward(cfg.recurrent, None, scope(params, "decoder.rnn."),
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
