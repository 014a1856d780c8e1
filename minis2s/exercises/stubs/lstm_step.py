"""Exercise lstm_step: one step of an LSTM, backward.

Shapes: N batch rows, D input features, H hidden units. The weights have PyTorch's
layout (nn.LSTM): four gate blocks of H rows each, in the order i, f, g, o, so
weight_ih is (4H, D) with rows 0:H for i, H:2H for f, 2H:3H for g and 3H:4H for o;
weight_hh is (4H, H), bias_ih and bias_hh (4H,).

The forward is the project's own, minis2s.ops.reference.lstm.lstm_step_forward(x,
(h_prev, c_prev), params):

    a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh       (N, 4H), blocks a_i | a_f | a_g | a_o
    i = σ(a_i)        input gate
    f = σ(a_f)        forget gate
    g = tanh(a_g)     candidate cell
    o = σ(a_o)        output gate
    c = f ⊙ c_prev + i ⊙ g                          memory cell
    h = o ⊙ tanh(c)                                 hidden state

The state is the pair (h, c). The cache is the named tuple (x, h_prev, c_prev, i, f, g,
o, tanh_c, params): the input (N, D), the state it started from, the four gates' values
and tanh(c), (N, H) each, and the parameters.

Write lstm_step_backward(dstate, cache). dstate is the pair (dh, dc), the whole
gradients of this step's h and c (dc comes from the next step, which reads c). Return
(dx, (dh_prev, dc_prev), grads): dx (N, D), the gradients of the state the step started
from, and grads, a dict of the four parameters' gradients, shaped as the parameters.

Check it: minis2s exercise check lstm_step (in this folder), or python lstm_step.py.
"""

import numpy as np


def lstm_step_backward(dstate, cache):
    """dstate (dh, dc), each (N, H) -> (dx (N, D), (dh_prev, dc_prev), grads)."""
    dh, dc = dstate
    x, h_prev, c_prev, i, f, g, o, tanh_c, params = cache
    raise NotImplementedError  # write the backward here


if __name__ == "__main__":  # grade this file, as `minis2s exercise check lstm_step` does
    from minis2s.exercises import check

    raise SystemExit(0 if check("lstm_step", lstm_step_backward).passed else 1)
