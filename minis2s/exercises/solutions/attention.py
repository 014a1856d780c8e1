"""Solution: additive (Bahdanau) attention, backward.

Forward (minis2s.ops.additive_attention.additive_attention_forward):
    f[n, s]     = tanh(q[n] W_qᵀ + keys_proj[n, s])        (N, S, A)
    score[n, s] = w_v · f[n, s]                            (N, S)
    alpha[n]    = softmax of score[n] over the valid s; exactly 0 elsewhere
    context[n]  = Σ_s alpha[n, s] · mask[n, s] · v[n, s]   (mask: dropout, or None)
"""

import numpy as np


def additive_attention_backward(dcontext, cache):
    """dcontext (N, Dv) -> {"query", "keys_proj", "values", "W_q", "w_v"} gradients."""
    query, values, valid, f, alpha, mask, w_q, w_v = cache
    used = alpha if mask is None else alpha * mask  # the weights the context used
    dvalues = used[:, :, None] * dcontext[:, None, :]  # context = Σ_s used_s v_s
    dused = np.einsum("nsd,nd->ns", values, dcontext)  # ∂context/∂used_s = v_s
    dalpha = dused if mask is None else dused * mask  # through the dropout mask
    # softmax's Jacobian: dscore_s = alpha_s (dalpha_s − Σ_j alpha_j dalpha_j);
    # where alpha_s = 0 (a masked key) the product is exactly 0
    dscores = alpha * (dalpha - np.sum(alpha * dalpha, axis=1, keepdims=True))
    dw_v = np.einsum("ns,nsa->a", dscores, f)[None, :]  # score = w_v · f
    df = dscores[:, :, None] * w_v[0]  # (N, S, A)
    dpre = df * (1 - f ** 2)  # f = tanh(pre): tanh' = 1 − f²
    dqp = np.sum(dpre, axis=1)  # q W_qᵀ is added at every position s
    return {
        "query": dqp @ w_q,  # qp = q W_qᵀ
        "keys_proj": dpre,  # keys_proj is added as it is
        "values": dvalues,
        "W_q": dqp.T @ query,  # (A, Dq), summed over the batch
        "w_v": dw_v,  # (1, A)
    }
