"""An LSTM, plainly, in PyTorch's formulation (``torch.nn.LSTM``, gate blocks i, f, g, o):

    i = σ(x W_iiᵀ + b_ii + h_prev W_hiᵀ + b_hi)      input gate      d2l: I_t
    f = σ(x W_ifᵀ + b_if + h_prev W_hfᵀ + b_hf)      forget gate     d2l: F_t
    g = tanh(x W_igᵀ + b_ig + h_prev W_hgᵀ + b_hg)   candidate cell  d2l: C̃_t
    o = σ(x W_ioᵀ + b_io + h_prev W_hoᵀ + b_ho)      output gate     d2l: O_t
    c = f ⊙ c_prev + i ⊙ g                          memory cell     d2l: C_t
    h = o ⊙ tanh(c)                                 hidden state    d2l: H_t

The state is the pair (h, c); a step starts from (h_prev, c_prev).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ...backend import array_module
from .gru import sigmoid
from .loop import backward_over_time, forward_over_time


class LSTMStepCache(NamedTuple):
    x: Any  # (N, D) this step's input
    h_prev: Any  # (N, H)
    c_prev: Any  # (N, H)
    i: Any  # (N, H) input gate
    f: Any  # (N, H) forget gate
    g: Any  # (N, H) candidate cell
    o: Any  # (N, H) output gate
    tanh_c: Any  # (N, H) tanh of the new cell
    params: dict


def lstm_step_forward(x, state, params):
    """One step: x (N, D), state (h_prev, c_prev) each (N, H) -> ((h, c), cache)."""
    xp = array_module(x)
    h_prev, c_prev = state
    H = h_prev.shape[1]
    a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T \
        + params["bias_hh"]  # (N, 4H): every gate's pre-activation
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    g = xp.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * g
    tanh_c = xp.tanh(c)
    h = o * tanh_c
    return (h, c), LSTMStepCache(x, h_prev, c_prev, i, f, g, o, tanh_c, params)


def lstm_step_backward(dstate, cache: LSTMStepCache):
    """dstate (dh, dc): the whole gradients of this step's h and c -> (dx, (dh_prev,
    dc_prev), grads)."""
    xp = array_module(cache.x)
    dh, dc = dstate
    x, h_prev, c_prev, i, f, g, o, tanh_c, params = cache
    do = dh * tanh_c  # h = o ⊙ tanh(c): through o ...
    dc = dc + dh * o * (1 - tanh_c * tanh_c)  # ... and through c (tanh' = 1 - tanh²)
    di = dc * g  # c = f ⊙ c_prev + i ⊙ g
    dg = dc * i
    df = dc * c_prev
    dc_prev = dc * f  # the cell path: only a product with f, no weight matrix
    da = xp.concatenate([di * i * (1 - i),  # i = σ(a_i): σ' = σ (1 - σ)
                         df * f * (1 - f),  # f = σ(a_f)
                         dg * (1 - g * g),  # g = tanh(a_g)
                         do * o * (1 - o)],  # o = σ(a_o)
                        axis=1)  # (N, 4H), in the weights' block order i, f, g, o
    dx = da @ params["weight_ih"]  # a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh
    dh_prev = da @ params["weight_hh"]
    grads = {"weight_ih": da.T @ x, "weight_hh": da.T @ h_prev,  # summed over rows
             "bias_ih": da.sum(axis=0), "bias_hh": da.sum(axis=0)}
    return dx, (dh_prev, dc_prev), grads


def lstm_forward(x, state0, params, reverse=False):
    """Run T >= 1 steps over x (T, N, D) from state0 (h0, c0) -> hs (T, N, H), the final
    state (h, c) and the step caches (:func:`.loop.forward_over_time`)."""
    return forward_over_time(lstm_step_forward, x, state0, params, reverse)


def lstm_backward(dhs, dstate_last, caches, reverse=False):
    """Backprop through time (:func:`.loop.backward_over_time`): dhs (T, N, H) from above,
    dstate_last (dh, dc) for the final state, or None -> (dx, (dh0, dc0), grads)."""
    if dstate_last is None:  # the final state is not used: no gradient reaches it
        zeros = array_module(dhs).zeros_like(dhs[0])
        dstate_last = (zeros, zeros)
    return backward_over_time(lstm_step_backward, dhs, dstate_last, caches, reverse)
