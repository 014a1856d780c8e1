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
    values = xp.ascontiguousarray(outputs.transpose(1, 0, 2))  # batch-major, one copy
    S, N, Hk = outputs.shape
    w_k = params[ATT + "W_k.weight"]  # once per sequence, not per step: one product
    keys_proj = (values.reshape(N * S, Hk) @ w_k.T).reshape(N, S, w_k.shape[0])
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
    top_h(dprev)[...] += ga["query"]  # the query is the top layer's h before the step
    return (dgi, dprev, ga, g_rnn, dW_c, *recorded)


class AttentionDecoderCache(NamedTuple):
    memory: Memory
    embedded: Any  # EmbedProjectCache of the embeddings' share, every step at once
    steps: list  # StepCache per step
    rows: list  # (offset, size) of each step's rows in the (M, ·) layout
    dense: Any
    final_state: Any  # the state after the last step (packed: its rows only); when no
    #                   step ran, the initial state, whose zeros the backward then returns
    padded: Any  # (T, N) for the padded layout, None when packed


def _layout(T, N, batch_sizes):
    """Each step's (offset, rows) in the (M, ·) layout: padded, every step has all N
    rows; packed (rows sorted by length, longest first), step t the first batch_sizes[t]."""
    sizes = [N] * T if batch_sizes is None else list(batch_sizes)
    offsets = [0]
    for k in sizes[:-1]:
        offsets.append(offsets[-1] + k)
    return list(zip(offsets, sizes))


def _rows(state, k):
    """The first k rows of a state (the sequences still running)."""
    return map_state(lambda s: s[:, :k], state)


def _grown(dstate, k, xp):
    """A state gradient of fewer rows, zero-padded to k rows: the rows it lacks belong to
    sequences that ended, whose states nothing later reads."""
    def grow(d):
        if d.shape[1] == k:
            return d
        pad = xp.zeros((d.shape[0], k - d.shape[1], d.shape[2]), dtype=d.dtype)
        return xp.concatenate([d, pad], axis=1)

    return None if dstate is None else map_state(grow, dstate)


def attention_decoder_forward(params, cfg: ModelConfig, ids, state, outputs, src_valid_len,
                              masks=None, probes=None, batch_sizes=None):
    """The decoder over a whole target, step by step.

    Padded (``batch_sizes`` None): ids (N, T) previous tokens; returns ``(logits (N, T, V),
    state after, attention weights (N, T, S)), cache``. Packed (the training path): ids
    (M,) in the stacks' packed layout, rows sorted by target length so that step t runs
    the first ``batch_sizes[t]`` sequences only; returns ``(logits (M, V), None, None),
    cache``. state: the encoder's final state and outputs (S, N, Hk) its top-layer
    outputs, both in the rows' order. ``masks``: a DropoutMasks laid out like the rows
    (decoder masks (T, N, Hd) or (M, Hd), attention masks (T, N, S) or (M, S)), or None;
    ``probes`` (padded only): as for the plain decoder, (T·N, Hd) rows per layer."""
    xp = array_module(outputs)
    memory = memory_forward(params, outputs, src_valid_len)
    Hk = cfg.decoder_hiddens
    sfx = param_suffix(0, 0)
    padded = None if batch_sizes is not None else ids.shape[::-1]
    gi_emb, ecache = embed_project_forward(
        ids.T if padded is not None else ids, params["decoder.embedding.weight"],
        params["decoder.rnn.weight_ih" + sfx][:, Hk:], params["decoder.rnn.bias_ih" + sfx])
    gi_emb = gi_emb.reshape(-1, gi_emb.shape[-1])  # (M, G·Hd), step-major
    N = top_h(state).shape[0]
    rows = _layout(padded[0] if padded is not None else len(batch_sizes), N, batch_sizes)
    layer_masks = None if masks is None else masks.decoder
    att_masks = None if masks is None else masks.attention
    if padded is not None:  # (T, N, ·) masks as rows
        layer_masks = None if layer_masks is None else [m.reshape(-1, m.shape[-1])
                                                        for m in layer_masks]
        att_masks = None if att_masks is None else att_masks.reshape(-1, att_masks.shape[-1])
    steps, outs, alphas = [], [], []
    for o, k in rows:
        e = o + k
        (out, state, alpha), step = attention_step_forward(
            params, cfg, gi_emb[o:e], _rows(state, k), Memory(*(m[:k] for m in memory)),
            None if layer_masks is None else [m[o:e][None] for m in layer_masks],
            None if att_masks is None else att_masks[o:e],
            None if probes is None else [p[o:e] for p in probes])
        steps.append(step)
        outs.append(out)
        alphas.append(alpha)
    out = xp.concatenate(outs) if outs else xp.zeros((0, Hk), dtype=outputs.dtype)
    logits, dcache = dense_forward(out, params["decoder.dense.weight"],
                                   params["decoder.dense.bias"])  # (M, V)
    cache = AttentionDecoderCache(memory, ecache, steps, rows, dcache, state, padded)
    if padded is None:
        return (logits, None, None), cache
    T, N = padded
    weights = xp.stack(alphas, axis=1) if alphas else \
        xp.zeros((N, 0, memory.values.shape[1]), dtype=outputs.dtype)
    V = logits.shape[-1]
    return (logits.reshape(T, N, V).transpose(1, 0, 2), state, weights), cache


def attention_decoder_backward(dlogits, cache: AttentionDecoderCache, params,
                               cfg: ModelConfig, record: bool = False):
    """dlogits (N, T, V) padded, or (M, V) packed -> ``(dstate, doutputs (S, N, Hk),
    grads)`` (and, with ``record``, the recorded state gradients per layer, in the rows'
    layout)."""
    xp = array_module(dlogits)
    if cache.padded is not None:
        dlogits = dlogits.transpose(1, 0, 2).reshape(-1, dlogits.shape[-1])
    dout, g_dense = dense_backward(dlogits, cache.dense)
    grads = {"decoder.dense." + k: v for k, v in g_dense.items()}
    memory = cache.memory
    sfx = param_suffix(0, 0)
    Hk = cfg.decoder_hiddens
    w_ih = params["decoder.rnn.weight_ih" + sfx]
    dgi_emb = xp.empty((dout.shape[0], w_ih.shape[0]), dtype=dout.dtype)  # (M, G·Hd)
    dkeys, dvalues = xp.zeros_like(memory.keys_proj), xp.zeros_like(memory.values)
    # the weights every step uses, their gradients summed over the steps
    dstack = {k: xp.zeros_like(v) for k, v in scope(params, "decoder.rnn.").items()}
    dW_c = xp.zeros_like(w_ih[:, :Hk])
    dW_q = xp.zeros_like(params[ATT + "W_q.weight"])
    dw_v = xp.zeros_like(params[ATT + "w_v.weight"])
    dstate, rec = None, [[] for _ in range(cfg.num_layers)]
    for (o, k), step in zip(reversed(cache.rows), reversed(cache.steps)):
        e = o + k
        dgi, dstate, ga, g_rnn, dW_c_step, *recorded = attention_step_backward(
            dout[o:e], _grown(dstate, k, xp), step, params, cfg, record)
        dgi_emb[o:e] = dgi
        for name, g in g_rnn.items():  # the stack's own (not layer 0's input weights)
            dstack[name] += g
        dW_c += dW_c_step
        dW_q += ga["W_q"]
        dw_v += ga["w_v"]
        dkeys[:k] += ga["keys_proj"]
        dvalues[:k] += ga["values"]
        for layer in range(cfg.num_layers if record else 0):
            rec[layer].append(recorded[0][layer])
    N = memory.values.shape[0]
    dstate = _grown(dstate, N, xp) if dstate is not None else \
        map_state(xp.zeros_like, cache.final_state)  # no step ran: nothing reached it
    grads.update({"decoder.rnn." + k: g for k, g in dstack.items()})
    ge = embed_project_backward(dgi_emb, cache.embedded)
    grads[ATT + "W_q.weight"], grads[ATT + "w_v.weight"] = dW_q, dw_v
    grads["decoder.embedding.weight"] = ge["embedding"]
    grads["decoder.rnn.weight_ih" + sfx] = xp.concatenate([dW_c, ge["weight"]], axis=1)
    grads["decoder.rnn.bias_ih" + sfx] = ge["bias"]
    doutputs, grads[ATT + "W_k.weight"] = memory_backward(dkeys, dvalues, memory, params)
    if record:  # steps were visited last to first
        return dstate, doutputs, grads, [xp.concatenate(r[::-1]) for r in rec]
    return dstate, doutputs, grads
