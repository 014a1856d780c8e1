"""Exercise rnn_step: one step of a vanilla RNN, backward.

Shapes: N batch rows, D input features, H hidden units.

The forward is the project's own, minis2s.ops.reference.rnn.rnn_step_forward(x, h_prev,
params), with PyTorch's layout of the weights (nn.RNN):

    a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh     (N, H)
    h = tanh(a)                                   (N, H)

params holds "weight_ih" (H, D), "weight_hh" (H, H), "bias_ih" (H,) and "bias_hh" (H,).
The forward returns h and a cache, the named tuple (x, h_prev, h, params): the step's
input x (N, D), the state it started from h_prev (N, H), the state it made h (N, H), and
the parameters.

Write rnn_step_backward(dh, cache). dh (N, H) is the whole gradient of the loss with
respect to this step's h. Return (dx, dh_prev, grads): dx (N, D), dh_prev (N, H), and
grads, a dict of the four parameters' gradients under the same names and shapes as
params.

Check it: minis2s exercise check rnn_step (in this folder), or python rnn_step.py.
"""

import numpy as np


def rnn_step_backward(dh, cache):
    """dh (N, H) -> (dx (N, D), dh_prev (N, H), grads)."""
    x, h_prev, h, params = cache
    raise NotImplementedError  # write the backward here


if __name__ == "__main__":  # grade this file, as `minis2s exercise check rnn_step` does
    from minis2s.exercises import check

    raise SystemExit(0 if check("rnn_step", rnn_step_backward).passed else 1)
