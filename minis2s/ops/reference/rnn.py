"""A vanilla (Elman) RNN, plainly: ``h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)``,
h_{t-1} being the state the step starts from (``h_prev``).

d2l's symbols: ``H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h)`` with φ = tanh; here the weights
are stored transposed (PyTorch's ``nn.RNN``), and the bias is split in two (``b_ih``,
``b_hh``) whose sum is d2l's ``b_h``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ...backend import array_module
from .loop import backward_over_time, forward_over_time


class RNNStepCache(NamedTuple):
    x: Any  # (N, D) this step's input
    h_prev: Any  # (N, H) the state it started from
    h: Any  # (N, H) the state it produced
    params: dict


def rnn_step_forward(x, h_prev, params):
    """One step: x (N, D), h_prev (N, H) -> h (N, H) and the cache."""
    a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T \
        + params["bias_hh"]  # pre-activation (N, H)
    h = array_module(a).tanh(a)
    return h, RNNStepCache(x, h_prev, h, params)


def rnn_step_backward(dh, cache: RNNStepCache):
    """dh (N, H), the whole gradient of this step's h -> (dx, dh_prev, grads)."""
    x, h_prev, h, params = cache
    da = dh * (1 - h * h)  # through tanh: tanh'(a) = 1 - tanh(a)²
    dx = da @ params["weight_ih"]  # a = x W_ihᵀ + ...: the input's gradient
    dh_prev = da @ params["weight_hh"]  # ... + h_prev W_hhᵀ: the previous state's
    grads = {"weight_ih": da.T @ x,  # each weight's gradient sums over the batch rows
             "weight_hh": da.T @ h_prev,
             "bias_ih": da.sum(axis=0),  # both biases enter a with slope 1
             "bias_hh": da.sum(axis=0)}
    return dx, dh_prev, grads


def rnn_forward(x, h0, params, reverse=False):
    """Run T >= 1 steps over x (T, N, D) from h0 (N, H) -> hs (T, N, H), the final state
    and the step caches (:func:`.loop.forward_over_time`)."""
    return forward_over_time(rnn_step_forward, x, h0, params, reverse)


def rnn_backward(dhs, dh_last, caches, reverse=False):
    """Backprop through time (:func:`.loop.backward_over_time`): dhs (T, N, H) from above,
    dh_last (N, H) for the final state, or None -> (dx, dh0, grads)."""
    if dh_last is None:  # the final state is not used: no gradient reaches it
        dh_last = array_module(dhs).zeros_like(dhs[0])
    return backward_over_time(rnn_step_backward, dhs, dh_last, caches, reverse)
