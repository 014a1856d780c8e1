"""The seed's model written in JAX, for a speed reference: ``minis2s bench --vs-jax``.

JAX compiles a whole training step with XLA — the encoder and the decoder each a
``lax.scan`` over the steps per layer, the loss, its gradient by automatic
differentiation, the seed's clipping and Adam — into one program. It is the fastest
peer a learner could pick for the seed's small models, so the benchmark runs it beside
minis2s and PyTorch. JAX is optional: only tests and the benchmark import this module.

The model is :mod:`minis2s.torch_reference`'s ``TorchSeq2Seq`` for the seed's decoder
(``model="seq2seq"``), one direction, any cell: the same parameter names and shapes as
minis2s (:func:`minis2s.model.init_params`), so one set of initial weights serves all
three; every position of the padded source and target is computed, as d2l and PyTorch do,
and the loss masks the padding. Dropout between layers is JAX's own (``jax.random``), as
PyTorch's is its own; without dropout (or with ``train=False``) the loss and gradients
equal minis2s's, which ``tests/test_parity_jax.py`` checks in float64.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _gru(state, gi, w_hh, b_hh):
    """One GRU step (gates r, z, n in that order, as minis2s and PyTorch have them):
    state h (N, H), gi = x W_ih^T + b_ih (N, 3H)."""
    h = state
    gh = h @ w_hh.T + b_hh
    H = h.shape[-1]
    r = jax.nn.sigmoid(gi[:, :H] + gh[:, :H])
    z = jax.nn.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = jnp.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    h = (1 - z) * n + z * h
    return h, h


def _lstm(state, gi, w_hh, b_hh):
    """One LSTM step (gates i, f, g, o): state (h, c), each (N, H)."""
    h, c = state
    g = gi + h @ w_hh.T + b_hh
    H = h.shape[-1]
    i = jax.nn.sigmoid(g[:, :H])
    f = jax.nn.sigmoid(g[:, H:2 * H])
    u = jnp.tanh(g[:, 2 * H:3 * H])
    o = jax.nn.sigmoid(g[:, 3 * H:])
    c = f * c + i * u
    h = o * jnp.tanh(c)
    return (h, c), h


def _rnn(state, gi, w_hh, b_hh):
    """One vanilla (tanh) RNN step."""
    h = jnp.tanh(gi + state @ w_hh.T + b_hh)
    return h, h


def _zeros(N, H, dtype):
    return jnp.zeros((N, H), dtype)


def _zeros_pair(N, H, dtype):
    return _zeros(N, H, dtype), _zeros(N, H, dtype)


class JaxCell(NamedTuple):
    step: Callable  # (state, gi, w_hh, b_hh) -> (state, h)
    zeros: Callable  # (N, H, dtype) -> a state of zeros
    h: Callable  # a state -> its h


# each cell by minis2s's name for it (minis2s.ops.CELLS)
JAX_CELLS = {"gru": JaxCell(_gru, _zeros, lambda s: s),
             "lstm": JaxCell(_lstm, _zeros_pair, lambda s: s[0]),
             "rnn": JaxCell(_rnn, _zeros, lambda s: s)}


def stack(params, prefix, cell, x, states, dropout, key):
    """A stack of ``len(states)`` layers over x (T, N, D): each layer's input products
    for every step at once, then its recurrence as a ``lax.scan``; dropout (rate
    ``dropout``, drawn from ``key``; None: none) on every layer's output but the top's.
    Returns the top layer's outputs (T, N, H) and each layer's final state."""
    step = JAX_CELLS[cell].step
    out, finals = x, []
    for k, state0 in enumerate(states):
        w_ih, w_hh, b_ih, b_hh = (params[f"{prefix}.{w}_l{k}"] for w in WEIGHTS)
        gi = out @ w_ih.T + b_ih  # (T, N, G)
        final, out = lax.scan(lambda s, g, w=w_hh, b=b_hh: step(s, g, w, b), state0, gi)
        finals.append(final)
        if k < len(states) - 1 and key is not None and dropout > 0:
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1.0 - dropout, out.shape)
            out = jnp.where(keep, out / (1.0 - dropout), 0.0).astype(out.dtype)
    return out, finals


def logits(params, cfg, src, tgt_in, key=None):
    """src (N, S), tgt_in (N, T) -> logits (N, T, V) of ``cfg``'s model. ``key``:
    dropout's randomness (None: no dropout)."""
    keys = (None, None) if key is None else tuple(jax.random.split(key))
    return JAX_DECODERS[cfg.model](params, cfg, src, tgt_in, keys)


def _seq2seq_logits(params, cfg, src, tgt_in, keys):
    """The seed's model: the encoder's final state starts the decoder, and its top
    layer's h is read at every step beside the embedding."""
    N, L, H = src.shape[0], cfg.num_layers, cfg.num_hiddens
    dtype = params["encoder.embedding.weight"].dtype
    cell = JAX_CELLS[cfg.cell]
    x = params["encoder.embedding.weight"][src.T]  # (S, N, E)
    zeros = [cell.zeros(N, H, dtype) for _ in range(L)]
    _, state = stack(params, "encoder.rnn", cfg.cell, x, zeros, cfg.dropout, keys[0])
    top = cell.h(state[-1])  # (N, H)
    y = params["decoder.embedding.weight"][tgt_in.T]  # (T, N, E)
    y = jnp.concatenate([y, jnp.broadcast_to(top, (y.shape[0], *top.shape))], axis=-1)
    out, _ = stack(params, "decoder.rnn", cfg.cell, y, state, cfg.dropout, keys[1])
    z = out @ params["decoder.dense.weight"].T + params["decoder.dense.bias"]
    return jnp.transpose(z, (1, 0, 2))


# each decoder the reference models, by minis2s's name for it (minis2s.model.DECODERS)
JAX_DECODERS = {"seq2seq": _seq2seq_logits}


def loss(params, cfg, src, tgt_in, tgt, tgt_valid_len, key=None):
    """The seed's loss (``reduction="seq"``): each sequence's masked token losses
    averaged over the padded length T, summed over the batch."""
    z = logits(params, cfg, src, tgt_in, key)
    logp = jax.nn.log_softmax(z, axis=-1)
    nll = -jnp.take_along_axis(logp, tgt[..., None], axis=-1)[..., 0]  # (N, T)
    T = tgt.shape[1]
    mask = (jnp.arange(T)[None, :] < tgt_valid_len[:, None]).astype(nll.dtype)
    return jnp.sum(jnp.mean(nll * mask, axis=1))


def check_config(cfg) -> None:
    """Refuse, with a ValueError, what this reference does not model."""
    if cfg.model not in JAX_DECODERS:
        raise ValueError(f"the JAX reference models the seed's decoder "
                         f"({', '.join(JAX_DECODERS)}) only, not {cfg.model!r}")
    if cfg.bidirectional:
        raise ValueError("the JAX reference models a one-direction encoder only")
    if cfg.cell not in JAX_CELLS:
        raise ValueError(f"no JAX step for cell {cfg.cell!r}; there are "
                         f"{', '.join(JAX_CELLS)}")
    if cfg.has_bridge or cfg.output_layer != "dense":
        raise ValueError("the JAX reference models the seed's decoder as wide as the "
                         "encoder, with the dense output layer")


def train_step_fn(cfg, lr, grad_clip, betas=(0.9, 0.999), eps=1e-8):
    """A compiled step: ``(params, m, v, t, src, tgt_in, tgt, tgt_valid_len, key) ->
    (params, m, v, loss)``: the loss and its gradient, the seed's clipping (scale by
    clip / norm when the norm is larger), and PyTorch's Adam (as minis2s's), t the step's
    number from 1."""
    check_config(cfg)
    b1, b2 = betas

    def step(params, m, v, t, src, tgt_in, tgt, valid, key):
        value, grads = jax.value_and_grad(loss)(params, cfg, src, tgt_in, tgt, valid, key)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        scale = jnp.where(norm > grad_clip, grad_clip / norm, 1.0)
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        new_p, new_m, new_v = {}, {}, {}
        for name, p in params.items():
            g = (grads[name] * scale).astype(p.dtype)
            mk = m[name] + (1 - b1) * (g - m[name])
            vk = b2 * v[name] + (1 - b2) * g * g
            new_p[name] = (p - (lr / bc1) * mk / (jnp.sqrt(vk) / jnp.sqrt(bc2) + eps)
                           ).astype(p.dtype)
            new_m[name], new_v[name] = mk.astype(p.dtype), vk.astype(p.dtype)
        return new_p, new_m, new_v, value

    return jax.jit(step, donate_argnums=(0, 1, 2))


def train(cfg, init: dict, batches_by_epoch, lr: float, grad_clip: float, seed: int = 0):
    """Train from ``init`` (minis2s's parameters by name, NumPy arrays) over
    ``batches_by_epoch`` (an iterable per epoch of :class:`minis2s.data.batches.Batch`).

    Every batch shape is compiled before the clock starts, ahead of time, and that time
    reported apart. Returns ``(params, per-epoch (loss sum, tokens, seconds),
    compile_seconds)``; the loss sum is the sum of the batches' losses, which minis2s's
    epoch loss divides by the tokens."""
    step = train_step_fn(cfg, lr, grad_clip)
    params = {k: jnp.asarray(v) for k, v in init.items()}
    m = {k: jnp.zeros_like(v) for k, v in params.items()}
    v = {k: jnp.zeros_like(p) for k, p in params.items()}
    key = jax.random.PRNGKey(seed)
    dtype = next(iter(params.values())).dtype
    compiled, compile_seconds, epochs, t = {}, 0.0, [], 0
    for batches in batches_by_epoch:
        batches = list(batches)
        for b in batches:  # compile each new shape before this epoch's clock starts
            shape = (b.src.shape, b.tgt.shape)
            if shape not in compiled:
                start = time.perf_counter()
                args = (params, m, v, jnp.asarray(1, dtype), b.src, b.tgt_in, b.tgt,
                        b.tgt_valid_len, key)
                compiled[shape] = step.lower(*args).compile()
                compile_seconds += time.perf_counter() - start
        start = time.perf_counter()
        total, tokens = 0.0, 0
        for b in batches:
            t += 1
            key, sub = jax.random.split(key)
            params, m, v, value = compiled[(b.src.shape, b.tgt.shape)](
                params, m, v, jnp.asarray(t, dtype), b.src, b.tgt_in, b.tgt,
                b.tgt_valid_len, sub)
            total += float(value)  # waits for the step, as minis2s's and torch's do
            tokens += b.num_tokens
        epochs.append((total, tokens, time.perf_counter() - start))
    return params, epochs, compile_seconds

