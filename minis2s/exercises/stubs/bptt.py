"""Exercise bptt: backprop through time over one layer of a vanilla RNN.

Shapes: T steps, N batch rows, D input features, H hidden units; time comes first, as in
the project's plain cells.

The forward is the project's own, minis2s.ops.reference.rnn.rnn_forward(x, h0, params):
from h0 (N, H) it runs one step per input x[t] (x is (T, N, D)),

    h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh),    t = 0 … T−1,

and returns hs (T, N, H), every step's h; the final state h_{T−1}; and caches, a list of
T step caches, caches[t] being what rnn_step_forward kept at step t.

Write rnn_backward(dhs, dh_last, caches). dhs (T, N, H) holds the gradient that reaches
each h_t from above (the layer or the output that reads it); dh_last (N, H) is the
gradient of the final state (a decoder reads the encoder's, for instance). Return
(dx, dh0, grads): dx (T, N, D), dh0 (N, H), the gradient of the initial state, and
grads, a dict of the gradients of "weight_ih" (H, D), "weight_hh" (H, H), "bias_ih" (H,)
and "bias_hh" (H,).

The step itself is given: rnn_step_backward(dh, cache) -> (dx_t, dh_prev, step_grads)
takes the whole gradient of one step's h and returns the gradient of its input, of the
state it started from, and of the weights as that one step used them. The exercise is
the loop around it.

Check it: minis2s exercise check bptt (in this folder), or python bptt.py. The grader
says at which time steps dx goes wrong.
"""

import numpy as np

from minis2s.ops.reference.rnn import rnn_step_backward


def rnn_backward(dhs, dh_last, caches):
    """dhs (T, N, H), dh_last (N, H) -> (dx (T, N, D), dh0 (N, H), grads)."""
    T = len(caches)
    raise NotImplementedError  # write the loop here, calling rnn_step_backward


if __name__ == "__main__":  # grade this file, as `minis2s exercise check bptt` does
    from minis2s.exercises import check

    raise SystemExit(0 if check("bptt", rnn_backward).passed else 1)
