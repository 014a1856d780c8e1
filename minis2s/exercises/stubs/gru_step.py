"""Exercise gru_step: one step of a GRU, backward.

Shapes: N batch rows, D input features, H hidden units. The weights have PyTorch's
layout (nn.GRU): three gate blocks of H rows each, stacked in the order r, z, n, so
weight_ih is (3H, D) with rows 0:H for r, H:2H for z and 2H:3H for n; weight_hh is
(3H, H), bias_ih and bias_hh (3H,).

The forward is the project's own, minis2s.ops.reference.gru.gru_step_forward(x, h_prev,
params):

    gi = x W_ihᵀ + b_ih                    (N, 3H), blocks gi_r | gi_z | gi_n
    gh = h_prev W_hhᵀ + b_hh               (N, 3H), blocks gh_r | gh_z | gh_n
    r  = σ(gi_r + gh_r)                    reset gate
    z  = σ(gi_z + gh_z)                    update gate
    n  = tanh(gi_n + r ⊙ gh_n)             candidate state
    h  = (1 − z) ⊙ n + z ⊙ h_prev          new state

The reset gate scales the state's share gh_n after the product (PyTorch's GRU, and the
seed's); d2l's from-scratch GRU applies it before, which is another function.

The cache is the named tuple (x, h_prev, r, z, n, ghn, params): the input (N, D), the
state it started from (N, H), the three gates' values (N, H) each, ghn = gh_n (N, H), and
the parameters ("weight_ih", "weight_hh", "bias_ih", "bias_hh").

Write gru_step_backward(dh, cache). dh (N, H) is the whole gradient of this step's h.
Return (dx, dh_prev, grads): dx (N, D), dh_prev (N, H), and grads, a dict of the four
parameters' gradients, shaped as the parameters, gate blocks in the same order.

Check it: minis2s exercise check gru_step (in this folder), or python gru_step.py. The
grader says which gradients are off and in which gate block.
"""

import numpy as np


def gru_step_backward(dh, cache):
    """dh (N, H) -> (dx (N, D), dh_prev (N, H), grads)."""
    x, h_prev, r, z, n, ghn, params = cache
    raise NotImplementedError  # write the backward here


if __name__ == "__main__":  # grade this file, as `minis2s exercise check gru_step` does
    from minis2s.exercises import check

    raise SystemExit(0 if check("gru_step", gru_step_backward).passed else 1)
