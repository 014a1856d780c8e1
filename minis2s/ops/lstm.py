"""LSTM in PyTorch's formulation, with backprop through time: the fast kernel.

Derivation: docs/derivations.md#lstm. The plain version a student reads first is
:mod:`minis2s.ops.reference.lstm`; this one is tested against it to 1e-12.

Gate order i, f, g, o, as ``torch.nn.LSTM``::

    i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
    f  = sigmoid(W_if x + b_if + W_hf h + b_hf)
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
    o  = sigmoid(W_io x + b_io + W_ho h + b_ho)
    c' = f * c + i * g
    h' = o * tanh(c')

The state is the pair (h, c). The speed tricks are the GRU kernel's: input projections
for all steps before the loop, ``b_hh`` folded in once, sigmoids as ``1 / (1 + exp(-a))``
on negated pre-activations, gates kept gate-major and contiguous, the backward's
step-independent factors computed for all rows at once, weight gradients as one product.
Inside, the gates are kept in the order i, f, o, g (the three sigmoids side by side);
the weights and every gradient keep PyTorch's order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module, overflow_ignored
from .recurrent import Cell, Schedule, previous_rows
from .state import State

_INNER = (0, 1, 3, 2)  # the inner gate order i, f, o, g, as PyTorch block numbers


class LSTMLayerCache(NamedTuple):
    h0: Any  # (N, H) states before the first processed step
    c0: Any  # (N, H)
    hs: Any  # (M, H) h after each row's step
    cs: Any  # (M, H) c after each row's step
    tanh_c: Any  # (M, H) tanh(c)
    acts: Any  # (4, M, H) gates i, f, o, g (inner order), contiguous
    weight_hh: Any  # (4H, H), PyTorch's order
    schedule: Schedule


def lstm_layer_forward(gi, state0: State, weight_hh, bias_hh, schedule: Schedule,
                       probe=None):
    """Run one LSTM direction over precomputed input projections.

    gi (M, 4H) = x W_ih^T + b_ih for every row (read only); state0: h0 and c0, (N, H);
    probe: None, or (M, H) added to each h as it is made, or a :class:`State` of such
    arrays (either None): ``probe.c`` is added to each c as it is made, before h is made
    from it, and ``probe.h`` to each h.
    Returns hs (M, H), h after every row's step, and the cache.
    """
    xp = array_module(gi)
    h0, c0 = state0.h, state0.c
    M, H4 = gi.shape
    H, N = H4 // 4, h0.shape[0]
    dtype = gi.dtype
    gi_g = gi.reshape(M, 4, H).transpose(1, 0, 2)  # (4, M, H) view, PyTorch's order
    b = bias_hh.reshape(4, 1, H)
    acts = xp.empty((4, M, H), dtype=dtype)  # i, f, o: -(gi + b_hh); g: gi + b_hh
    for j, src in enumerate(_INNER[:3]):
        xp.subtract(-b[src], gi_g[src], out=acts[j])
    xp.add(gi_g[2], b[2], out=acts[3])
    # W_hh's row blocks in the inner order, so that each step's product comes out so
    w_inner_t = weight_hh.reshape(4, H, H)[list(_INNER)].reshape(4 * H, H).T
    hs, cs, tanh_c = (xp.empty((M, H), dtype=dtype) for _ in range(3))
    gh = xp.empty((N, 4 * H), dtype=dtype)
    gh_g = gh.reshape(N, 4, H).transpose(1, 0, 2)  # (4, rows, H) view of each product
    ig = xp.empty((N, H), dtype=dtype)
    one = dtype.type(1)
    probe_h, probe_c = probe if isinstance(probe, State) else (probe, None)
    h, c = h0, c0
    with overflow_ignored():  # exp(-a) = inf for a << 0 gives sigmoid(a) = 1 / inf = 0
        for lo, size in zip(schedule.offsets, schedule.sizes):  # step: rows lo to hi
            hi = lo + size
            xp.matmul(h[:size], w_inner_t, out=gh[:size])  # (size, 4H) = h W_hh^T, inner
            s = acts[:3, lo:hi]  # (3, size, H)
            s -= gh_g[:3, :size]  # -a_i, -a_f, -a_o
            xp.exp(s, out=s)
            s += one
            xp.divide(one, s, out=s)  # i, f, o
            g = acts[3, lo:hi]
            g += gh_g[3, :size]
            xp.tanh(g, out=g)  # g
            cc = xp.multiply(s[1], c[:size], out=cs[lo:hi])  # c' = f c ...
            cc += xp.multiply(s[0], g, out=ig[:size])  # ... + i g
            if probe_c is not None:
                cc += probe_c[lo:hi]
            tc = xp.tanh(cc, out=tanh_c[lo:hi])
            hh = xp.multiply(s[2], tc, out=hs[lo:hi])  # h' = o tanh(c')
            if probe_h is not None:
                hh += probe_h[lo:hi]
            h, c = hh, cc
    return hs, LSTMLayerCache(h0, c0, hs, cs, tanh_c, acts, weight_hh, schedule)


def lstm_bptt_factors(acts, tanh_c, cprev):
    """The factors of one step's backward that depend on forward values only, for every
    row at once, with σ'(a) = σ (1 - σ) and tanh'(a) = 1 - tanh(a)²:

    * ``k_o = ∂h/∂a_o = tanh(c) o (1 - o)``       so ``da_o = dh * k_o``
    * ``k_c = ∂h/∂c = o (1 - tanh(c)²)``           so ``dc += dh * k_c``
    * ``k_i = ∂c/∂a_i = g i (1 - i)``              so ``da_i = dc * k_i``
    * ``k_f = ∂c/∂a_f = c_prev f (1 - f)``         so ``da_f = dc * k_f``
    * ``k_g = ∂c/∂a_g = i (1 - g²)``               so ``da_g = dc * k_g``
    """
    i, f, o, g = acts
    k_o = 1 - o
    k_o *= o
    k_o *= tanh_c
    k_c = tanh_c * tanh_c
    k_c -= 1
    k_c *= -o
    k_i = 1 - i
    k_i *= i
    k_i *= g
    k_f = 1 - f
    k_f *= f
    k_f *= cprev
    k_g = g * g
    k_g -= 1
    k_g *= -i
    return k_o, k_c, k_i, k_f, k_g


def lstm_layer_backward(dhs, dstate_last: State | None, cache: LSTMLayerCache,
                        record=None):
    """Backprop through time for :func:`lstm_layer_forward` (the cache is left intact).

    dhs (M, H): upstream gradient of every row's h (or None); dstate_last: the gradient
    (dh, dc) of the state after the last processed step (or None); record: None, an
    (M, H) array that receives every h's total gradient, or a :class:`State` of two such
    arrays (either None) that receive every h's and every c's (c's: from the next step
    and through its own step's h).
    Returns ``(dgi, State(dh0, dc0), {"weight_hh": dW_hh, "bias_hh": db_hh})``, dgi (M, 4H).
    """
    h0, c0, hs, cs, tanh_c, acts, weight_hh, schedule = cache
    xp = array_module(hs)
    M, H = hs.shape
    N, dtype = h0.shape[0], hs.dtype
    hprev = previous_rows(h0, hs, schedule)
    k_o, k_c, k_i, k_f, k_g = lstm_bptt_factors(acts, tanh_c,
                                                previous_rows(c0, cs, schedule))
    f = acts[1]
    dgh = xp.empty((M, 4 * H), dtype=dtype)  # gradient of every gate's pre-activation,
    #                                          in PyTorch's block order i, f, g, o
    dh = xp.zeros((N, H), dtype=dtype)  # gradient reaching the current h ...
    dc = xp.zeros((N, H), dtype=dtype)  # ... and the current c
    if dstate_last is not None:
        dh += dstate_last.h
        dc += dstate_last.c
    tmp = xp.empty((N, H), dtype=dtype)
    record_h, record_c = record if isinstance(record, State) else (record, None)
    for lo, size in zip(reversed(schedule.offsets), reversed(schedule.sizes)):
        hi = lo + size
        d, dcc = dh[:size], dc[:size]
        if dhs is not None:
            d += dhs[lo:hi]  # from above (the output) and from the next step (carried)
        if record_h is not None:
            record_h[lo:hi] = d
        dcc += xp.multiply(d, k_c[lo:hi], out=tmp[:size])  # c: from h, and from the next step
        if record_c is not None:
            record_c[lo:hi] = dcc
        xp.multiply(dcc, k_i[lo:hi], out=dgh[lo:hi, :H])  # da_i
        xp.multiply(dcc, k_f[lo:hi], out=dgh[lo:hi, H:2 * H])  # da_f
        xp.multiply(dcc, k_g[lo:hi], out=dgh[lo:hi, 2 * H:3 * H])  # da_g
        xp.multiply(d, k_o[lo:hi], out=dgh[lo:hi, 3 * H:])  # da_o
        dcc *= f[lo:hi]  # to c_prev: only through f
        xp.matmul(dgh[lo:hi], weight_hh, out=d)  # to h_prev: only through the gates
    grads = {"weight_hh": dgh.T @ hprev, "bias_hh": dgh.sum(axis=0)}
    return dgh, State(dh, dc), grads  # dgi = dgh: gi and gh enter every gate as a sum


LSTM = Cell("lstm", 4, True, lstm_layer_forward, lstm_layer_backward,
            lambda cache, lo, hi: State(cache.hs[lo:hi], cache.cs[lo:hi]))
