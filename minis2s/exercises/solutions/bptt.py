"""Solution: backprop through time over one layer of a vanilla RNN.

Forward (minis2s.ops.reference.rnn.rnn_forward): h_t = step(x_t, h_{t−1}) for
t = 0 … T−1, from h0; the outputs are every h_t (hs, (T, N, H)) and the final state
h_{T−1}. Each step's cache is in ``caches[t]``.
"""

import numpy as np

from minis2s.ops.reference.rnn import rnn_step_backward


def rnn_backward(dhs, dh_last, caches):
    """dhs (T, N, H), dh_last (N, H) -> (dx (T, N, D), dh0 (N, H), grads)."""
    T = len(caches)
    dx = [None] * T
    grads = None
    dh_next = dh_last  # the gradient reaching h_{T−1} from beyond the sequence
    for t in range(T - 1, -1, -1):  # the last step first
        dh = dh_next + dhs[t]  # h_t is read from above (dhs[t]) and by step t + 1 (dh_next)
        dx[t], dh_next, step_grads = rnn_step_backward(dh, caches[t])  # dh_next: ∂L/∂h_{t−1}
        if grads is None:
            grads = step_grads
        else:  # the same weights at every step: their gradients add up
            grads = {k: grads[k] + step_grads[k] for k in grads}
    return np.stack(dx), dh_next, grads  # after step 0, dh_next is the gradient of h0
