"""d2l's Bahdanau decoder (``Seq2SeqAttentionDecoder`` with ``AdditiveAttention``),
forward and backward by hand.

Derivation: docs/derivations.md#attention-decoder.

At each step t the query is the decoder's top-layer h before the step (at the first
step, the encoder's final top-layer h); keys and values are the encoder's top-layer
outputs at every source position; additive attention (:mod:`minis2s.ops.additive_attention`)
averages the values into a context, with the positions past a source's valid length
weighted exactly 0 and dropout on the weights in training. The cell's input is
``[context ; embedding of the previous token]``, in that order (d2l's); a dense layer maps
its top-layer output to the vocabulary. The decoder starts from the encoder's final state.

Because each step's query is the previous step's state, the decoder runs step by step:
every layer of the stack for step t before step t + 1 (:func:`attention_step_forward`).
What does not depend on the state is computed once: the keys' projection ``outputs W_kᵀ``
per sequence (:func:`memory_forward`) and the embeddings' share of layer 0's input
projection for all steps at once. The backward runs the steps in reverse and sends
gradient into the previous state through the query as well as through the recurrence, and
into every encoder output through the keys and the values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from ..ops import (
    additive_attention_backward,
    additive_attention_forward,
    dense_backward,
    dense_forward,
    embed_project_backward,
    embed_project_forward,
    param_suffix,
    stack_backward,
    stack_forward,
)
from .config import ModelConfig, map_state, scope, top_h

ATT = "decoder.attention."


class Memory(NamedTuple):
    """What every step attends to, made once per batch from the encoder's outputs."""

    keys_proj: Any  # (N, S, A) outputs W_kᵀ
    values: Any  # (N, S, Hk) the encoder's top-layer outputs, batch-major
    valid: Any  # (N, S) bool: source positions before each sentence's valid length


def memory_forward(params, outputs, src_valid_len) -> Memory:
    """outputs (S, N, Hk), src_valid_len (N,) -> the :class:`Memory` (its own cache)."""
    xp = array_module(outputs)
    values = outputs.transpose(1, 0, 2)
    keys_proj = values @ params[ATT + "W_k.weight"].T  # once per sequence, not per step
    S = values.shape[1]
    valid = xp.arange(S)[None, :] < src_valid_len[:, None]
    return Memory(keys_proj, values, valid)


def memory_backward(dkeys_proj, dvalues, memory: Memory, params):
    """-> (doutputs (S, N, Hk), dW_k): keys and values are both the encoder's outputs."""
    w_k = params[ATT + "W_k.weight"]
    A, Hk = w_k.shape
    dW_k = dkeys_proj.reshape(-1, A).T @ memory.values.reshape(-1, Hk)
    doutputs = dvalues + dkeys_proj @ w_k  # (N, S, Hk): the values' and the keys' paths
    return doutputs.transpose(1, 0, 2), dW_k


class StepCache(NamedTuple):
    attention: Any  # AttentionCache
    context: Any  # (N, Hk)
    rnn: Any  # the stack's cache of this one step


def attention_step_forward(params, cfg: ModelConfig, gi_emb, state, memory: Memory,
                           layer_masks=None, attention_mask=None, probes=None):
    """One decoder step for every row: gi_emb (N, G·Hd), the embedding's share of layer
    0's input projection (with b_ih); state: the state before the step.
    Returns ``(out (N, Hd), state after, attention weights (N, S)), cache``."""
    Hk = cfg.decoder_hiddens
    (context, alpha), acache = additive_attention_forward(
        top_h(state), memory.keys_proj, memory.values, memory.valid,
        params[ATT + "W_q.weight"], params[ATT + "w_v.weight"], attention_mask)
    w_c = params["decoder.rnn.weight_ih" + param_suffix(0, 0)][:, :Hk]  # context first
    gi = gi_emb + context @ w_c.T
    (out, state), rcache = stack_forward(cfg.recurrent, None, scope(params, "decoder.rnn."),
                                         cfg.num_layers, False, state, layer_masks,
                                         input_proj=[gi[None]], probes=probes)
    return (out[0], state, alpha), StepCache(acache, context, rcache)


def attention_step_backward(dout, dstate, cache: StepCache, params, cfg: ModelConfig,
                            record: bool = False):
    """dout (N, Hd) of the step's output; dstate of the state after the step (or None).
    Returns ``(dgi_emb, dstate before, attention grads, stack grads, dW_c)`` — and the
    stack's recorded state gradients with ``record``."""
    (dgi,), dprev, g_rnn, *recorded = stack_backward(dout[None], dstate, cache.rnn, record)
    dgi = dgi[0]
    w_c = params["decoder.rnn.weight_ih" + param_suffix(0, 0)][:, :cfg.decoder_hiddens]
    dW_c = dgi.T @ cache.context  # gi = gi_emb + context W_cᵀ
    ga = additive_attention_backward(dgi @ w_c, cache.attention)
    dh = dprev[0] if isinstance(dprev, tuple) else dprev
    dh[-1] += ga["query"]  # the query is the top layer's h before the step
    return (dgi, dprev, ga, g_rnn, dW_c, *recorded)


class AttentionDecoderCache(NamedTuple):
    memory: Memory
    embedded: Any  # EmbedProjectCache of the embeddings' share, every step at once
    steps: list  # StepCache per step
    dense: Any
    final_state: Any


def attention_decoder_forward(params, cfg: ModelConfig, tgt_in, state, outputs,
                              src_valid_len, masks=None, probes=None):
    """tgt_in (N, T) previous tokens; state: the encoder's final state; outputs
    (S, N, Hk): the encoder's top-layer outputs -> ``(logits (N, T, V), state after,
    attention weights (N, T, S)), cache``. ``masks``: a DropoutMasks (its decoder and
    attention masks are used) or None; ``probes``: as for the plain decoder, (T·N, Hd)
    rows per layer."""
    xp = array_module(outputs)
    memory = memory_forward(params, outputs, src_valid_len)
    Hk = cfg.decoder_hiddens
    sfx = param_suffix(0, 0)
    gi_emb, ecache = embed_project_forward(
        tgt_in.T, params["decoder.embedding.weight"],
        params["decoder.rnn.weight_ih" + sfx][:, Hk:], params["decoder.rnn.bias_ih" + sfx])
    T, N = gi_emb.shape[:2]
    layer_masks = None if masks is None else masks.decoder
    att_masks = None if masks is None else masks.attention
    steps, outs, alphas = [], [], []
    for t in range(T):
        (out, state, alpha), step = attention_step_forward(
            params, cfg, gi_emb[t], state, memory,
            None if layer_masks is None else [m[t:t + 1] for m in layer_masks],
            None if att_masks is None else att_masks[t],
            None if probes is None else [p[t * N:(t + 1) * N] for p in probes])
        steps.append(step)
        outs.append(out)
        alphas.append(alpha)
    out = xp.stack(outs) if T else xp.zeros((0, N, Hk), dtype=outputs.dtype)
    logits, dcache = dense_forward(out, params["decoder.dense.weight"],
                                   params["decoder.dense.bias"])  # (T, N, V)
    weights = xp.stack(alphas, axis=1) if T else xp.zeros((N, 0, memory.values.shape[1]))
    cache = AttentionDecoderCache(memory, ecache, steps, dcache, state)
    return (logits.transpose(1, 0, 2), state, weights), cache


def attention_decoder_backward(dlogits, cache: AttentionDecoderCache, params,
                               cfg: ModelConfig, record: bool = False):
    """dlogits (N, T, V) -> ``(dstate, doutputs (S, N, Hk), grads)`` (and, with
    ``record``, the recorded state gradients per layer, (T·N, Hd) each)."""
    xp = array_module(dlogits)
    dout, g_dense = dense_backward(dlogits.transpose(1, 0, 2), cache.dense)
    grads = {"decoder.dense." + k: v for k, v in g_dense.items()}
    T = len(cache.steps)
    dgi_emb = xp.empty((T, *cache.steps[0].rnn.proj_shape[1:]), dtype=dlogits.dtype) \
        if T else None
    dstate, totals, rec = None, {}, [[] for _ in range(cfg.num_layers)]
    dkeys = dvalues = None
    for t in reversed(range(T)):
        dgi, dstate, ga, g_rnn, dW_c, *recorded = attention_step_backward(
            dout[t], dstate, cache.steps[t], params, cfg, record)
        dgi_emb[t] = dgi
        for name, g in [*g_rnn.items(), ("W_c", dW_c), ("W_q", ga["W_q"]),
                        ("w_v", ga["w_v"])]:
            totals[name] = g if name not in totals else totals[name] + g
        dkeys = ga["keys_proj"] if dkeys is None else dkeys + ga["keys_proj"]
        dvalues = ga["values"] if dvalues is None else dvalues + ga["values"]
        for k in range(cfg.num_layers if record else 0):
            rec[k].insert(0, recorded[0][k])
    if dstate is None:  # no step: the initial state reaches nothing
        dstate = map_state(xp.zeros_like, cache.final_state)
        dkeys = xp.zeros_like(cache.memory.keys_proj)
        dvalues = xp.zeros_like(cache.memory.values)
    for name in ("weight_hh", "bias_hh", "weight_ih", "bias_ih"):  # the stack's own
        for k in range(cfg.num_layers):
            key = name + param_suffix(k, 0)
            if key in totals:
                grads["decoder.rnn." + key] = totals[key]
    sfx = param_suffix(0, 0)
    Hk = cfg.decoder_hiddens
    w_ih = params["decoder.rnn.weight_ih" + sfx]
    if T:
        ge = embed_project_backward(dgi_emb, cache.embedded)
        demb, dW_e, db = ge["embedding"], ge["weight"], ge["bias"]
        dW_c = totals["W_c"]
        grads[ATT + "W_q.weight"] = totals["W_q"]
        grads[ATT + "w_v.weight"] = totals["w_v"]
    else:
        demb = xp.zeros_like(params["decoder.embedding.weight"])
        dW_e, db = xp.zeros_like(w_ih[:, Hk:]), xp.zeros_like(params["decoder.rnn.bias_ih"
                                                                    + sfx])
        dW_c = xp.zeros_like(w_ih[:, :Hk])
        grads[ATT + "W_q.weight"] = xp.zeros_like(params[ATT + "W_q.weight"])
        grads[ATT + "w_v.weight"] = xp.zeros_like(params[ATT + "w_v.weight"])
    grads["decoder.embedding.weight"] = demb
    grads["decoder.rnn.weight_ih" + sfx] = xp.concatenate([dW_c, dW_e], axis=1)
    grads["decoder.rnn.bias_ih" + sfx] = db
    doutputs, grads[ATT + "W_k.weight"] = memory_backward(dkeys, dvalues, cache.memory,
                                                          params)
    if record:
        return dstate, doutputs, grads, [xp.concatenate(r) for r in rec]
    return dstate, doutputs, grads
