"""Solution: one step of a vanilla RNN, backward.

Forward (minis2s.ops.reference.rnn.rnn_step_forward):
    a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh        (N, H)
    h = tanh(a)                                      (N, H)
"""

import numpy as np


def rnn_step_backward(dh, cache):
    """dh (N, H) -> (dx (N, D), dh_prev (N, H), grads)."""
    x, h_prev, h, params = cache
    da = dh * (1 - h ** 2)  # h = tanh(a): tanh'(a) = 1 − tanh(a)² = 1 − h²
    dx = da @ params["weight_ih"]  # a = x W_ihᵀ + …: ∂a/∂x brings W_ih back
    dh_prev = da @ params["weight_hh"]  # … + h_prev W_hhᵀ: the same for h_prev
    grads = {
        "weight_ih": da.T @ x,  # (H, D): every batch row adds its outer product
        "weight_hh": da.T @ h_prev,  # (H, H)
        "bias_ih": np.sum(da, axis=0),  # a bias is added to every row: sum over rows
        "bias_hh": np.sum(da, axis=0),  # both biases enter a with slope 1
    }
    return dx, dh_prev, grads
