"""Vanilla (Elman) RNN with tanh, as ``torch.nn.RNN``, and its backprop through time: the
fast kernel.

Derivation: docs/derivations.md#vanilla-rnn. The plain version a student reads first is
:mod:`minis2s.ops.reference.rnn`; this one is tested against it to 1e-12. ::

    h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

Input projections for all steps before the loop, ``b_hh`` folded in once, tanh' = 1 - h²
computed for all rows at once in the backward, weight gradients as one product.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from .recurrent import Cell, Schedule, previous_rows
from .state import State


class RNNLayerCache(NamedTuple):
    h0: Any  # (N, H) state before the first processed step
    hs: Any  # (M, H) state after each row's step
    weight_hh: Any  # (H, H)
    schedule: Schedule


def rnn_layer_forward(gi, state0: State, weight_hh, bias_hh, schedule: Schedule,
                      probe=None):
    """Run one direction over precomputed input projections gi (M, H) = x W_ih^T + b_ih
    (read only) from state0, h0 (N, H); probe: None, or (M, H) added to each state as it
    is made. Returns hs (M, H), the state after every row's step, and the cache."""
    xp = array_module(gi)
    h0 = state0.h
    N = h0.shape[0]
    hs = xp.add(gi, bias_hh)  # every row's a = gi + b_hh, before the state's share
    w_hh_t = weight_hh.T
    gh = xp.empty((N, hs.shape[1]), dtype=hs.dtype)
    h = h0
    for lo, size in zip(schedule.offsets, schedule.sizes):  # step: rows lo to hi
        hi = lo + size
        hh = hs[lo:hi]
        hh += xp.matmul(h[:size], w_hh_t, out=gh[:size])  # a = gi + b_hh + h W_hh^T
        xp.tanh(hh, out=hh)
        if probe is not None:
            hh += probe[lo:hi]
        h = hh
    return hs, RNNLayerCache(h0, hs, weight_hh, schedule)


def rnn_layer_backward(dhs, dstate_last: State | None, cache: RNNLayerCache, record=None):
    """Backprop through time for :func:`rnn_layer_forward` (the cache is left intact).

    dhs (M, H): upstream gradient of every row's output (or None); dstate_last: the
    gradient (N, H) of the state after the last processed step (or None); record: None,
    or an (M, H) array that receives every state's total gradient.
    Returns ``(dgi, State(dh0), {"weight_hh": dW_hh, "bias_hh": db_hh})``, dgi (M, H).
    """
    h0, hs, weight_hh, schedule = cache
    xp = array_module(hs)
    N, dtype = h0.shape[0], hs.dtype
    k_a = hs * hs
    xp.subtract(1, k_a, out=k_a)  # ∂h/∂a = tanh'(a) = 1 - h², every row at once
    da = xp.empty_like(hs)  # gradient of every pre-activation a
    dh = xp.zeros((N, hs.shape[1]), dtype=dtype)  # gradient reaching the current state
    if dstate_last is not None:
        dh += dstate_last.h
    for lo, size in zip(reversed(schedule.offsets), reversed(schedule.sizes)):
        hi = lo + size
        d = dh[:size]
        if dhs is not None:
            d += dhs[lo:hi]  # from above (the output) and from the next step (carried)
        if record is not None:
            record[lo:hi] = d
        xp.multiply(d, k_a[lo:hi], out=da[lo:hi])  # through tanh
        xp.matmul(da[lo:hi], weight_hh, out=d)  # to h_prev: through W_hh only
    hprev = previous_rows(h0, hs, schedule)
    grads = {"weight_hh": da.T @ hprev, "bias_hh": da.sum(axis=0)}
    return da, State(dh), grads  # dgi = da: gi and the state's share enter a as a sum


RNN = Cell("rnn", 1, False, rnn_layer_forward, rnn_layer_backward,
           lambda cache, lo, hi: State(cache.hs[lo:hi]))
