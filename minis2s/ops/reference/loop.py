"""The loop over time, the same for every cell: forward step by step, then backprop
through time, which is that loop run backwards with one gradient carried along.

A cell's state is its hidden state ``h`` (RNN, GRU) or a pair ``(h, c)`` (LSTM); a step's
output is always ``h``. ``step_forward(x_t, state, params) -> (state', cache)`` and
``step_backward(dstate', cache) -> (dx_t, dstate, grads)`` are the cell's own.
"""

from __future__ import annotations

from ...backend import array_module


def _h(state):
    """The output part of a state: h itself, or h of (h, c)."""
    return state[0] if isinstance(state, tuple) else state


def _plus_dh(dstate, dh):
    """A state gradient with ``dh`` added to its h part."""
    if isinstance(dstate, tuple):
        return (dstate[0] + dh, *dstate[1:])
    return dstate + dh


def forward_over_time(step_forward, x, state0, params, reverse=False):
    """Run T >= 1 steps: x (T, N, D) -> hs (T, N, H), the final state and the caches.

    ``reverse`` processes step T-1 first (the backward direction of a bidirectional
    layer); hs[t] is still the output after reading x[t]."""
    T = x.shape[0]
    order = range(T - 1, -1, -1) if reverse else range(T)
    state, hs, caches = state0, [None] * T, [None] * T
    for t in order:
        state, caches[t] = step_forward(x[t], state, params)
        hs[t] = _h(state)
    return array_module(x).stack(hs), state, caches


def backward_over_time(step_backward, dhs, dstate_last, caches, reverse=False):
    """Backprop through time: dhs (T, N, H), the gradient of every step's output from
    above; dstate_last, the gradient of the final state. Returns (dx, dstate0, grads)."""
    T = len(caches)
    order = range(T) if reverse else range(T - 1, -1, -1)  # the forward's order, reversed
    dstate, dx, grads = dstate_last, [None] * T, None
    for t in order:
        dstate = _plus_dh(dstate, dhs[t])  # from above (the output) and from step t + 1
        dx[t], dstate, step_grads = step_backward(dstate, caches[t])  # dstate: now the
        #                                       gradient of the state step t started from
        grads = step_grads if grads is None else \
            {name: grads[name] + step_grads[name] for name in step_grads}  # shared weights
    return array_module(dhs).stack(dx), dstate, grads
