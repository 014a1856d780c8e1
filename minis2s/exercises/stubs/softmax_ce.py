"""Exercise softmax_ce: masked softmax cross-entropy, backward.

Shapes: N sentences, T target steps (padded), V target vocabulary.

The forward is the project's own, minis2s.ops.softmax_ce.masked_softmax_ce_forward(
logits, labels, valid_len, reduction): logits (N, T, V), labels (N, T) token ids, and
valid_len (N,), the number of real tokens of each sentence; positions t >= valid_len[n]
are padding. It works on rows m = n·T + t of the logits reshaped to (N·T, V):

    loss = Σ_m weights[m] · (−log softmax(logits[m])[labels[m]])

weights[m] is 0 for a padded position; for a real one it is the reduction's factor,
1/T under "seq" (the seed's: each sentence's sum divided by T) or 1/(the number of real
tokens) under "token". Padding adds exactly 0 to the loss, and must get exactly 0
gradient (not merely a small one).

The cache is a named tuple (rows, shape): shape is (N, T, V), and rows holds, for the
N·T rows, exp (N·T, V) = exp(logits − each row's max), sumexp (N·T,) the sum of each
row of exp, labels (N·T,) and weights (N·T,). (It also holds a flag, consumed, which
this exercise does not need.)

Write masked_softmax_ce_backward(dloss, cache). dloss is the upstream gradient of the
loss (a 0-d array, not always 1). Return dlogits (N, T, V).

Check it: minis2s exercise check softmax_ce (in this folder), or python softmax_ce.py.
"""

import numpy as np


def masked_softmax_ce_backward(dloss, cache):
    """dloss (0-d) -> dlogits (N, T, V)."""
    rows, shape = cache
    raise NotImplementedError  # write the backward here


if __name__ == "__main__":  # grade this file, as `minis2s exercise check softmax_ce` does
    from minis2s.exercises import check

    raise SystemExit(0 if check("softmax_ce", masked_softmax_ce_backward).passed else 1)
