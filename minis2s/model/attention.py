"""d2l's Bahdanau decoder (``Seq2SeqAttentionDecoder`` with ``AdditiveAttention``),
``"attention"``, forward and backward by hand.

Derivation: docs/derivations.md#attention-decoder.

At each step t the query is the decoder's top-layer h before the step (at the first
step, the encoder's final top-layer h); keys and values are the encoder's top-layer
outputs at every source position; additive attention (:mod:`minis2s.ops.additive_attention`)
averages the values into a context, with the positions past a source's valid length
weighted exactly 0 and dropout on the weights in training. The cell's input is
``[context ; embedding of the previous token]``, in that order (d2l's); a dense layer maps
its top-layer output to the vocabulary (or a deep output, :mod:`.output`, which also reads
each step's context and input token). The decoder starts from the encoder's final state,
or from the bridge's map of it (:mod:`.bridge`) when its own units Wd differ from the
encoder's width W: keys and values stay the encoder's outputs (W wide, ``W_k`` (A, W)),
the query is the decoder's h (``W_q`` (A, Wd)), and the context is W wide.

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
    State,
    additive_attention_backward,
    additive_attention_forward,
    embed_project_backward,
    embed_project_forward,
    param_suffix,
    spans,
    stack_backward,
    stack_flops,
    stack_forward,
)
from .bridge import bridge_flops, initial_state_backward, initial_state_forward
from .output import output_backward, output_flops, output_forward, output_params
from .registry import Decoder, DecoderGrads, StepOutput, register_decoder
from .weights import Param, embedding_param, scope, stack_params, xavier_uniform

ATT = "decoder.attention."
W_IH0 = "decoder.rnn.weight_ih" + param_suffix(0, 0)
B_IH0 = "decoder.rnn.bias_ih" + param_suffix(0, 0)


class Memory(NamedTuple):
    """What every step attends to, made once per batch from the encoder's outputs."""

    keys_proj: Any  # (N, S, A) outputs W_kᵀ
    values: Any  # (N, S, W) the encoder's top-layer outputs, batch-major
    valid: Any  # (N, S) bool: source positions before each sentence's valid length


class AttentionMasks(NamedTuple):
    """Dropout of one batch, laid out (T, N, ·) as every decoder's masks are."""

    layers: Any  # None, or L - 1 masks (T, N, Wd) between the stack's layers
    weights: Any  # None, or (T, N, S) on each step's attention weights


def memory_forward(params, outputs, src_valid_len) -> Memory:
    """outputs (S, N, W), src_valid_len (N,) -> the :class:`Memory` (its own cache)."""
    xp = array_module(outputs)
    values = xp.ascontiguousarray(outputs.transpose(1, 0, 2))  # batch-major, one copy
    S, N, W = outputs.shape
    w_k = params[ATT + "W_k.weight"]  # once per sequence, not per step: one product
    keys_proj = (values.reshape(N * S, W) @ w_k.T).reshape(N, S, w_k.shape[0])
    valid = xp.arange(S)[None, :] < src_valid_len[:, None]
    return Memory(keys_proj, values, valid)


def memory_backward(dkeys_proj, dvalues, memory: Memory, params):
    """-> (doutputs (S, N, W), dW_k): keys and values are both the encoder's outputs."""
    w_k = params[ATT + "W_k.weight"]
    A, W = w_k.shape
    dW_k = dkeys_proj.reshape(-1, A).T @ memory.values.reshape(-1, W)
    doutputs = dvalues + dkeys_proj @ w_k  # (N, S, W): the values' and the keys' paths
    return doutputs.transpose(1, 0, 2), dW_k


class StepCache(NamedTuple):
    attention: Any  # AttentionCache
    context: Any  # (N, W)
    rnn: Any  # the stack's cache of this one step
    w_c: Any  # (G·Wd, W): the context's columns of weight_ih_l0


class StepGrads(NamedTuple):
    dgi_emb: Any  # (N, G·Wd): the embedding's share of layer 0's input projection
    dstate: State  # of the state before the step
    attention: dict  # additive attention's gradients (query, keys_proj, values, W_q, w_v)
    stack: dict  # the stack's own parameters (not layer 0's input weights)
    dW_c: Any  # the context's columns of weight_ih_l0
    recorded: Any  # per layer, the state's total gradient (N, Wd); None unless recorded


def attention_step_forward(params, cfg, gi_emb, state: State, memory: Memory,
                           layer_masks=None, attention_mask=None, probes=None):
    """One decoder step for every row: gi_emb (N, G·Wd), the embedding's share of layer
    0's input projection (with b_ih); state: the state before the step.
    Returns ``(out (N, Wd), state after, attention weights (N, S)), cache``."""
    W = cfg.encoder_width  # the context's width
    (context, alpha), acache = additive_attention_forward(
        state.top, memory.keys_proj, memory.values, memory.valid,
        params[ATT + "W_q.weight"], params[ATT + "w_v.weight"], attention_mask)
    w_c = params[W_IH0][:, :W]  # the context's columns come first
    gi = gi_emb + context @ w_c.T
    (out, state), rcache = stack_forward(cfg.recurrent, None, scope(params, "decoder.rnn."),
                                         cfg.num_layers, False, state, layer_masks,
                                         input_proj=[gi[None]], probes=probes)
    return (out[0], state, alpha), StepCache(acache, context, rcache, w_c)


def attention_step_backward(dout, dstate: State | None, cache: StepCache,
                            record: bool = False, dcontext=None) -> StepGrads:
    """dout (N, Wd) of the step's output; dstate of the state after the step (or None);
    dcontext (N, W): the context's gradient from elsewhere (a deep output), or None."""
    g = stack_backward(dout[None], dstate, cache.rnn, record)
    dgi = g.dproj[0][0]
    dW_c = dgi.T @ cache.context  # gi = gi_emb + context W_cᵀ
    dctx = dgi @ cache.w_c
    if dcontext is not None:
        dctx += dcontext
    ga = additive_attention_backward(dctx, cache.attention)
    g.dstate0.top[...] += ga["query"]  # the query is the top layer's h before the step
    return StepGrads(dgi, g.dstate0, ga, g.params, dW_c, g.recorded)


class AttentionDecoderCache(NamedTuple):
    memory: Memory
    embedded: Any  # EmbedProjectCache of the embeddings' share, every step at once
    steps: list  # StepCache per step
    rows: list  # (lo, n) of each step's rows in the (M, ·) layout
    output: Any  # the output layer's OutputCache
    final_state: State  # the state after the last step (packed: its rows only); when no
    #                     step ran, the initial state, whose zeros the backward then returns
    padded_shape: Any  # (T, N) for the padded layout, None when packed
    params: Any  # the backward reads the weights
    bridge: Any  # the InitialStateCache of the first state, None without a bridge


def attention_decoder_forward(params, cfg, ids, encoded, masks: AttentionMasks | None = None,
                              batch_sizes=None, probes=None):
    """The decoder over a whole target, step by step, from the encoder's final state (or
    the bridge's map of it).

    Padded (``batch_sizes`` None): ids (N, T) previous tokens; returns ``logits (N, T,
    V), cache``. Packed (the training path): ids (M,) in the stacks' packed layout, rows
    sorted by target length so that step t runs the first ``batch_sizes[t]`` sequences
    only; returns ``logits (M, V), cache``. ``encoded`` is in the rows' order; each step's
    attention weights are in the cache (:func:`attention_weights`). ``masks``:
    :class:`AttentionMasks` laid out like the rows ((T, N, ·) padded, (M, ·) packed), or
    None; ``probes`` (padded only): as for the seed's decoder, (T·N, Wd) rows per layer."""
    xp = array_module(encoded.outputs)
    memory = memory_forward(params, encoded.outputs, encoded.valid_len)
    W, Wd = cfg.encoder_width, cfg.decoder_units
    state, bridge = initial_state_forward(params, cfg, encoded.state)
    N = state.h.shape[1]
    padded_shape = None if batch_sizes is not None else ids.shape[::-1]  # (T, N)
    gi_emb, ecache = embed_project_forward(ids.T if padded_shape is not None else ids,
                                           params["decoder.embedding.weight"],
                                           params[W_IH0][:, W:], params[B_IH0])
    gi_emb = gi_emb.reshape(-1, gi_emb.shape[-1])  # (M, G·Wd), step-major
    T = padded_shape[0] if padded_shape is not None else len(batch_sizes)
    rows = spans(T, N, batch_sizes)
    layer_masks = None if masks is None else masks.layers
    att_masks = None if masks is None else masks.weights
    if padded_shape is not None:  # (T, N, ·) masks as rows
        layer_masks = None if layer_masks is None else [m.reshape(-1, m.shape[-1])
                                                        for m in layer_masks]
        att_masks = None if att_masks is None else att_masks.reshape(-1, att_masks.shape[-1])
    steps, outs = [], []
    for lo, n in rows:  # step t: its n rows, from row lo
        hi = lo + n
        (out, state, alpha), step = attention_step_forward(
            params, cfg, gi_emb[lo:hi], state.rows(slice(0, n)),
            Memory(*(m[:n] for m in memory)),
            None if layer_masks is None else [m[lo:hi][None] for m in layer_masks],
            None if att_masks is None else att_masks[lo:hi],
            None if probes is None else [_rows(p, lo, hi) for p in probes])
        steps.append(step)
        outs.append(out)
    out = xp.concatenate(outs) if outs else xp.zeros((0, Wd), dtype=encoded.outputs.dtype)
    contexts = None
    if cfg.output_layer != "dense":  # what a deep output reads besides: (M, W) and (M,)
        contexts = xp.concatenate([s.context for s in steps]) if steps else \
            xp.zeros((0, W), dtype=out.dtype)
        ids = ids.T.reshape(-1) if padded_shape is not None else ids
    logits, ocache = output_forward(params, cfg, out, contexts, ids)  # (M, V)
    cache = AttentionDecoderCache(memory, ecache, steps, rows, ocache, state, padded_shape,
                                  params, bridge)
    if padded_shape is not None:
        logits = logits.reshape(T, N, logits.shape[-1]).transpose(1, 0, 2)
    return logits, cache


def attention_weights(cache: AttentionDecoderCache):
    """The attention weights of every step of a forward, before dropout: (N, T, S) padded,
    (M, S) packed; exactly 0 past each source's valid length."""
    xp = array_module(cache.memory.values)
    N, S = cache.memory.values.shape[:2]
    alphas = [step.attention.weights for step in cache.steps]
    weights = xp.concatenate(alphas) if alphas else \
        xp.zeros((0, S), dtype=cache.memory.values.dtype)
    if cache.padded_shape is None:
        return weights
    T, N = cache.padded_shape
    return weights.reshape(T, N, S).transpose(1, 0, 2)


def attention_decoder_backward(dlogits, cache: AttentionDecoderCache,
                               record: bool = False) -> DecoderGrads:
    """dlogits (N, T, V) padded, or (M, V) packed -> :class:`DecoderGrads`; the recorded
    state gradients come in the rows' layout."""
    xp = array_module(dlogits)
    params = cache.params
    if cache.padded_shape is not None:
        dlogits = dlogits.transpose(1, 0, 2).reshape(-1, dlogits.shape[-1])
    dout, dcontexts, grads, demb_out = output_backward(dlogits, cache.output)
    memory = cache.memory
    W = memory.values.shape[2]
    w_ih = params[W_IH0]
    dgi_emb = xp.empty((dout.shape[0], w_ih.shape[0]), dtype=dout.dtype)  # (M, G·Wd)
    dkeys, dvalues = xp.zeros_like(memory.keys_proj), xp.zeros_like(memory.values)
    # the weights every step uses, their gradients summed over the steps
    dstack = {k: xp.zeros_like(v) for k, v in scope(params, "decoder.rnn.").items()}
    dW_c = xp.zeros_like(w_ih[:, :W])
    dW_q = xp.zeros_like(params[ATT + "W_q.weight"])
    dw_v = xp.zeros_like(params[ATT + "w_v.weight"])
    dstate, rec = None, []
    for (lo, n), step in zip(reversed(cache.rows), reversed(cache.steps)):
        hi = lo + n
        g = attention_step_backward(dout[lo:hi],
                                    None if dstate is None else dstate.padded_to(n),
                                    step, record,
                                    None if dcontexts is None else dcontexts[lo:hi])
        dstate = g.dstate
        dgi_emb[lo:hi] = g.dgi_emb
        for name, grad in g.stack.items():  # the stack's own (not layer 0's input weights)
            dstack[name] += grad
        dW_c += g.dW_c
        dW_q += g.attention["W_q"]
        dw_v += g.attention["w_v"]
        dkeys[:n] += g.attention["keys_proj"]
        dvalues[:n] += g.attention["values"]
        if record:
            rec.append(g.recorded)
    N = memory.values.shape[0]
    dstate = dstate.padded_to(N) if dstate is not None else \
        cache.final_state.map(xp.zeros_like)  # no step ran: nothing reached it
    dstate, g_bridge = initial_state_backward(dstate, cache.bridge)
    grads.update(g_bridge)
    grads.update({"decoder.rnn." + k: grad for k, grad in dstack.items()})
    ge = embed_project_backward(dgi_emb, cache.embedded)
    grads[ATT + "W_q.weight"], grads[ATT + "w_v.weight"] = dW_q, dw_v
    grads["decoder.embedding.weight"] = ge["embedding"] if demb_out is None else \
        ge["embedding"] + demb_out
    grads[W_IH0] = xp.concatenate([dW_c, ge["weight"]], axis=1)
    grads[B_IH0] = ge["bias"]
    doutputs, grads[ATT + "W_k.weight"] = memory_backward(dkeys, dvalues, memory, params)
    recorded = None
    if record:  # steps were visited last to first; per layer, every step's rows in order
        L, Wd = cache.final_state.h.shape[0], cache.final_state.h.shape[2]
        none = xp.zeros((0, Wd), dtype=dout.dtype)
        if record == "state":
            none = State(none, none if cache.final_state.c is not None else None)
        recorded = [_joined([r[k] for r in rec[::-1]], xp) if rec else none
                    for k in range(L)]
    return DecoderGrads(dstate, doutputs, grads, recorded)


def _rows(probe, lo: int, hi: int):
    """Rows lo:hi of a probe: an array, or a State of arrays (either None)."""
    if isinstance(probe, State):
        return State(*(None if a is None else a[lo:hi] for a in probe))
    return probe[lo:hi]


def _joined(parts: list, xp):
    """Recorded rows of every step, one after the other: arrays, or States of arrays."""
    if isinstance(parts[0], State):
        return State(*(None if parts[0][j] is None else xp.concatenate([p[j] for p in parts])
                       for j in range(2)))
    return xp.concatenate(parts)


def attention_params(cfg) -> dict:
    """d2l's AdditiveAttention (key W, query Wd, ``num_hiddens`` units, no biases, Xavier
    as nn.Linear in d2l), then the embedding, a stack of Wd units reading ``W + E``
    features (the context first) and the output layer."""
    H, W, Wd = cfg.num_hiddens, cfg.encoder_width, cfg.decoder_units
    return {ATT + "W_k.weight": Param((H, W), xavier_uniform),
            ATT + "W_q.weight": Param((H, Wd), xavier_uniform),
            ATT + "w_v.weight": Param((1, H), xavier_uniform),
            "decoder.embedding.weight": embedding_param(cfg.tgt_vocab_size, cfg.embed_size),
            **stack_params("decoder.rnn.", cfg.recurrent.gates, cfg.embed_size + W, Wd,
                           cfg.num_layers),
            **output_params(cfg)}


class Seq2SeqAttentionDecoder(Decoder):
    """Bahdanau attention (d2l's ``Seq2SeqAttentionDecoder``) as a
    :class:`~.registry.Decoder`: its memory is the :class:`Memory`, and every step gives
    its attention weights."""

    name = "attention"
    attends = True

    def param_specs(self, cfg):
        return attention_params(cfg)

    def dropout_masks(self, cfg, backend, gen, N, T_src, T_tgt):
        """Between the stack's layers, as the seed's, and on the attention weights (d2l's
        AdditiveAttention drops them too)."""
        if cfg.dropout <= 0:
            return None
        layers = super().dropout_masks(cfg, backend, gen, N, T_src, T_tgt)
        return AttentionMasks(layers, backend.dropout_mask(gen, (T_tgt, N, T_src),
                                                           cfg.dropout))

    def forward(self, params, cfg, ids, encoded, masks=None, batch_sizes=None,
                probes=None):
        return attention_decoder_forward(params, cfg, ids, encoded, masks, batch_sizes,
                                         probes)

    def backward(self, dlogits, cache, record=False):
        return attention_decoder_backward(dlogits, cache, record)

    def begin(self, params, cfg, encoded):
        state0, _ = initial_state_forward(params, cfg, encoded.state)
        return state0, memory_forward(params, encoded.outputs, encoded.valid_len)

    def step(self, params, cfg, ids, state, memory):
        W = cfg.encoder_width  # the context's columns of weight_ih_l0 come first
        gi_emb, _ = embed_project_forward(ids, params["decoder.embedding.weight"],
                                          params[W_IH0][:, W:], params[B_IH0])
        (out, state, alpha), cache = attention_step_forward(params, cfg, gi_emb, state,
                                                            memory)
        logits, _ = output_forward(params, cfg, out, cache.context, ids)
        return StepOutput(logits, state, alpha)

    def flops(self, cfg, S, T):
        W, Wd, A = cfg.encoder_width, cfg.decoder_units, cfg.num_hiddens
        attend = S * W * A + T * (Wd * A + S * A + S * W)  # keys once; query, scores, context
        return (stack_flops(cfg.recurrent.gates, T, cfg.embed_size + W, Wd, cfg.num_layers)
                + 2 * attend + output_flops(cfg, T) + bridge_flops(cfg))


register_decoder(Seq2SeqAttentionDecoder())
