"""Exercise attention: additive (Bahdanau) attention, backward.

Shapes: N batch rows, S source positions (keys), Dq query features, A attention units,
Dv value features.

The forward is the project's own, minis2s.ops.additive_attention.
additive_attention_forward(query, keys_proj, values, valid, W_q, w_v, mask), as d2l's
AdditiveAttention without biases. keys_proj (N, S, A) is the keys' projection k W_kᵀ,
made once per sentence by the caller (its gradient goes back to the caller):

    f[n, s]     = tanh(q[n] W_qᵀ + keys_proj[n, s])          (N, S, A)
    score[n, s] = w_v · f[n, s]                              (N, S)
    alpha[n, :] = softmax of score[n, :] over the valid positions s; exactly 0 at the
                  others (valid (N, S) is True where a key may be attended)
    context[n]  = Σ_s alpha[n, s] · mask[n, s] · v[n, s]    (N, Dv)

mask (N, S) is dropout on the attention weights, or None (then read it as all ones).
W_q is (A, Dq) and w_v (1, A), PyTorch's layout.

The cache is the named tuple (query, values, valid, features, weights, mask, w_q, w_v):
query (N, Dq), values (N, S, Dv), valid (N, S), features = f (N, S, A), weights =
alpha (N, S) before dropout, mask, W_q and w_v.

Write additive_attention_backward(dcontext, cache). dcontext (N, Dv) is the gradient of
the context. Return a dict of gradients with the keys "query" (N, Dq), "keys_proj"
(N, S, A), "values" (N, S, Dv), "W_q" (A, Dq) and "w_v" (1, A). A key that may not be
attended must get exactly 0 gradient, in keys_proj and in values.

Check it: minis2s exercise check attention (in this folder), or python attention.py.
"""

import numpy as np


def additive_attention_backward(dcontext, cache):
    """dcontext (N, Dv) -> {"query", "keys_proj", "values", "W_q", "w_v"}."""
    query, values, valid, f, alpha, mask, w_q, w_v = cache
    raise NotImplementedError  # write the backward here


if __name__ == "__main__":  # grade this file, as `minis2s exercise check attention` does
    from minis2s.exercises import check

    raise SystemExit(0 if check("attention", additive_attention_backward).passed else 1)
