"""Solution: one step of an LSTM, backward, in PyTorch's formulation (gate blocks i, f,
g, o).

Forward (minis2s.ops.reference.lstm.lstm_step_forward):
    a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh            (N, 4H), blocks i | f | g | o
    i = σ(a_i),  f = σ(a_f),  g = tanh(a_g),  o = σ(a_o)
    c = f ⊙ c_prev + i ⊙ g
    h = o ⊙ tanh(c)
"""

import numpy as np


def lstm_step_backward(dstate, cache):
    """dstate (dh, dc), each (N, H) -> (dx (N, D), (dh_prev, dc_prev), grads)."""
    dh, dc_next = dstate
    x, h_prev, c_prev, i, f, g, o, tanh_c, params = cache
    do = dh * tanh_c  # h = o ⊙ tanh(c): through o
    dc = dc_next + dh * o * (1 - tanh_c ** 2)  # c is read by the next step and by h
    di = dc * g  # c = f ⊙ c_prev + i ⊙ g
    df = dc * c_prev
    dg = dc * i
    dc_prev = dc * f  # the cell path: a product with f, no weight matrix
    da = np.concatenate([
        di * i * (1 - i),  # i = σ(a_i): σ' = σ (1 − σ)
        df * f * (1 - f),  # f = σ(a_f)
        dg * (1 - g ** 2),  # g = tanh(a_g): tanh' = 1 − g²
        do * o * (1 - o),  # o = σ(a_o)
    ], axis=1)  # (N, 4H), the blocks in the weights' order i, f, g, o
    dx = da @ params["weight_ih"]  # a = x W_ihᵀ + …
    dh_prev = da @ params["weight_hh"]  # … + h_prev W_hhᵀ
    grads = {
        "weight_ih": da.T @ x,  # (4H, D), summed over the batch rows
        "weight_hh": da.T @ h_prev,  # (4H, H)
        "bias_ih": np.sum(da, axis=0),  # both biases enter a with slope 1
        "bias_hh": np.sum(da, axis=0),
    }
    return dx, (dh_prev, dc_prev), grads
