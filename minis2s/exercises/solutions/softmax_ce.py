"""Solution: masked softmax cross-entropy, backward.

Forward (minis2s.ops.softmax_ce.masked_softmax_ce_forward), on rows m = n·T + t:
    loss = Σ_m weights[m] · (−log softmax(logits[m])[labels[m]])
weights[m] is 0 where t >= valid_len[n] (padding), else the reduction's factor.
"""

import numpy as np


def masked_softmax_ce_backward(dloss, cache):
    """dloss (a 0-d array) -> dlogits (N, T, V)."""
    rows = cache.rows
    N, T, V = cache.shape
    probs = rows.exp / rows.sumexp[:, None]  # softmax of every row, (N·T, V)
    d = probs.copy()
    d[np.arange(len(rows.labels)), rows.labels] -= 1  # ∂(−log p_label)/∂logits = p − onehot
    d *= (dloss * rows.weights)[:, None]  # each row's factor: exactly 0 for padding
    return d.reshape(N, T, V)
