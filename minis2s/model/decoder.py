"""The seed's decoder (``"seq2seq"``): each step reads ``[embedding of the previous token ;
context]``, the context being the encoder's top-layer final h, the same at every step;
it it starts from the encoder's final state (through the bridge of :mod:`.bridge` when its
units differ from the encoder's); the output layer (:mod:`.output`: the seed's dense layer,
or a deep output that also reads the context and the input token) maps each output to the
target vocabulary.

Derivation: docs/derivations.md#seq2seq (the decoder input, and the two paths into the
encoder) and #bridge.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from ..ops import (
    embed_project_backward,
    embed_project_forward,
    param_suffix,
    repeat_steps_add_backward,
    repeat_steps_add_forward,
    stack_backward,
    stack_flops,
    stack_forward,
)
from .bridge import bridge_flops, initial_state_backward, initial_state_forward
from .output import output_backward, output_flops, output_forward, output_params
from .registry import Decoder, DecoderGrads, StepOutput, register_decoder
from .weights import embedding_param, scope, stack_params


class DecoderInputCache(NamedTuple):
    embedded: Any  # EmbedProjectCache of the ids' share
    repeat: Any  # RepeatStepsCache of the context's share
    context: Any  # (N, W)
    w_context: Any  # (G·Wd, W): the context's columns of weight_ih_l0


def decoder_input_forward(params, cfg, ids, context, batch_sizes=None):
    """Layer 0's input projections of the decoder, ``[emb(y_t) ; context] W_ihᵀ + b_ih``,
    without forming the concatenation: the embedding's share through the fused lookup and
    the context's share ``context W_cᵀ`` once per sequence, added at each of its steps.

    ids (T, N) padded or (M,) packed by ``batch_sizes``; context (N, W).
    Returns projections (T, N, G·Wd) or (M, G·Wd) and the cache.
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
    dsp = repeat_steps_add_backward(dgi, cache.repeat)  # (N, G·Wd): context W_cᵀ's gradient
    sfx = param_suffix(0, 0)
    grads = {"decoder.embedding.weight": ge["embedding"],
             "decoder.rnn.weight_ih" + sfx: xp.concatenate([ge["weight"],
                                                             dsp.T @ cache.context], axis=1),
             "decoder.rnn.bias_ih" + sfx: ge["bias"]}
    return dsp @ cache.w_context, grads


class DecoderCache(NamedTuple):
    inputs: DecoderInputCache
    rnn: Any  # the recurrent stack's cache
    output: Any  # the output layer's OutputCache
    padded: bool  # logits are (N, T, V), not packed (M, V) rows
    bridge: Any = None  # the InitialStateCache of the first state, None without a bridge


def decoder_run(params, cfg, ids, state, context, masks=None, batch_sizes=None,
                probes=None):
    """The decoder from ``state`` with ``context`` at every step -> ``(logits, state_n),
    cache``.

    Padded: ids (N, T) previous tokens, logits (N, T, V), state_n the state after the last
    step. Packed by ``batch_sizes`` (rows sorted by length, longest first): ids (M,),
    logits (M, V), state_n None; padding costs nothing. masks: L - 1 dropout masks
    between layers, (T, N, Wd) or (M, Wd); probes: see :func:`minis2s.ops.stack_forward`.
    """
    padded = batch_sizes is None
    ids = ids.T if padded else ids  # (T, N) or (M,): the stacks' layout
    gi, in_cache = decoder_input_forward(params, cfg, ids, context, batch_sizes)
    (out, state_n), rnn_cache = stack_forward(cfg.recurrent, None,
                                              scope(params, "decoder.rnn."), cfg.num_layers,
                                              False, state, masks, batch_sizes=batch_sizes,
                                              input_proj=[gi], probes=probes)
    logits, out_cache = output_forward(params, cfg, out, context, ids, batch_sizes,
                                       per_sequence=True)  # (T, N, V) or (M, V)
    if padded:
        logits = logits.transpose(1, 0, 2)
    return (logits, state_n), DecoderCache(in_cache, rnn_cache, out_cache, padded)


def decoder_forward(params, cfg, ids, encoded, masks=None, batch_sizes=None, probes=None):
    """The decoder over a whole target, from the encoder's final state (or the bridge's
    map of it) with the encoder's top-layer h as the context -> ``logits, cache`` (see
    :meth:`.registry.Decoder.forward`)."""
    state0, bridge = initial_state_forward(params, cfg, encoded.state)
    (logits, _), cache = decoder_run(params, cfg, ids, state0, encoded.state.top,
                                     masks, batch_sizes, probes)
    return logits, cache._replace(bridge=bridge)


def decoder_backward(dlogits, cache: DecoderCache, record: bool = False) -> DecoderGrads:
    """dlogits (N, T, V), or (M, V) when packed -> :class:`DecoderGrads`. The context is
    the encoder's top-layer h: its gradient joins that of the encoder state's top layer
    (which, with a bridge, the first state's gradient reaches through the bridge)."""
    if cache.padded:
        dlogits = dlogits.transpose(1, 0, 2)
    dout, dcontext_out, g_out, demb_out = output_backward(dlogits, cache.output)
    g = stack_backward(dout, None, cache.rnn, record)
    dcontext, grads = decoder_input_backward(g.dproj[0], cache.inputs)
    grads.update({"decoder.rnn." + k: v for k, v in g.params.items()})
    grads.update(g_out)
    if dcontext_out is not None:  # the deep output read the context and the embeddings
        dcontext += dcontext_out
        grads["decoder.embedding.weight"] += demb_out
    dstate, g_bridge = initial_state_backward(g.dstate0, cache.bridge)
    grads.update(g_bridge)
    dstate.top[...] += dcontext  # in place, through the view of the top layer's h
    return DecoderGrads(dstate, None, grads, g.recorded)


def decoder_params(cfg) -> dict:
    """The embedding, a stack of Wd units reading ``E + W`` features (the context is the
    encoder's h, W wide), and the output layer."""
    W, Wd = cfg.encoder_width, cfg.decoder_units
    return {"decoder.embedding.weight": embedding_param(cfg.tgt_vocab_size, cfg.embed_size),
            **stack_params("decoder.rnn.", cfg.recurrent.gates, cfg.embed_size + W, Wd,
                           cfg.num_layers),
            **output_params(cfg)}


class Seq2SeqDecoder(Decoder):
    """The seed's decoder (d2l's ``Seq2SeqDecoder``) as a :class:`~.registry.Decoder`:
    its memory is the context."""

    name = "seq2seq"
    memory_is_context = True

    def param_specs(self, cfg):
        return decoder_params(cfg)

    def forward(self, params, cfg, ids, encoded, masks=None, batch_sizes=None,
                probes=None):
        return decoder_forward(params, cfg, ids, encoded, masks, batch_sizes, probes)

    def backward(self, dlogits, cache, record=False):
        return decoder_backward(dlogits, cache, record)

    def begin(self, params, cfg, encoded):
        state0, _ = initial_state_forward(params, cfg, encoded.state)
        return state0, encoded.state.top

    def step(self, params, cfg, ids, state, memory):
        (logits, state), _ = decoder_run(params, cfg, ids[:, None], state, memory)
        return StepOutput(logits[:, 0], state, None)

    def flops(self, cfg, S, T):
        W, Wd = cfg.encoder_width, cfg.decoder_units  # the context read at every step
        return (stack_flops(cfg.recurrent.gates, T, cfg.embed_size + W, Wd, cfg.num_layers)
                + output_flops(cfg, T) + bridge_flops(cfg))


register_decoder(Seq2SeqDecoder())
