"""Additive (Bahdanau) attention over a sequence, as d2l's ``AdditiveAttention``.

Derivation: docs/derivations.md#additive-attention.

For a query q (N, Dq), keys (N, S, Dk) and values (N, S, Dv)::

    f[n, s]      = tanh(q[n] W_qᵀ + k[n, s] W_kᵀ)          (A,)   no biases
    score[n, s]  = w_v · f[n, s]
    alpha[n, :]  = softmax over the valid positions s of score[n, :]; exactly 0 elsewhere
    context[n]   = Σ_s (alpha[n, s] · mask[n, s]) v[n, s]    mask: dropout on the weights

The keys' projection ``k W_kᵀ`` does not depend on the query, so the caller computes it
once per sequence and passes ``keys_proj`` (N, S, A); its gradient comes back for the
caller's own backward. Weights use PyTorch's layout: W_q (A, Dq), w_v (1, A).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module


class AttentionCache(NamedTuple):
    query: Any  # (N, Dq)
    values: Any  # (N, S, Dv)
    valid: Any  # (N, S) bool: the positions that may be attended
    features: Any  # (N, S, A) f = tanh(q W_qᵀ + keys_proj)
    weights: Any  # (N, S) alpha, before dropout
    mask: Any  # (N, S) inverted-dropout mask on the weights, or None
    w_q: Any  # (A, Dq)
    w_v: Any  # (1, A)


def masked_softmax(scores, valid):
    """Softmax over the last axis of (N, S) scores, over the ``valid`` positions only: the
    others get weight exactly 0 (a row with none valid gets all zeros)."""
    xp = array_module(scores)
    if scores.size == 0:  # no row (or no position): nothing to normalise, and CuPy
        #                   refuses a max over a zero-size array
        return xp.zeros_like(scores)
    top = xp.max(xp.where(valid, scores, -xp.inf), axis=1, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0)  # a row with nothing valid
    e = xp.where(valid, xp.exp(xp.where(valid, scores - top, 0)), 0)
    total = e.sum(axis=1, keepdims=True)
    return e / xp.where(total > 0, total, 1)


def additive_attention_forward(query, keys_proj, values, valid, w_q, w_v, mask=None):
    """query (N, Dq), keys_proj (N, S, A), values (N, S, Dv), valid (N, S) bool,
    W_q (A, Dq), w_v (1, A), mask (N, S) or None -> ``(context (N, Dv), alpha (N, S)),
    cache``; alpha are the weights before dropout (what a heat map shows)."""
    features = keys_proj + (query @ w_q.T)[:, None, :]  # (N, S, A)
    xp = array_module(features)
    xp.tanh(features, out=features)
    scores = features @ w_v[0]  # (N, S)
    weights = masked_softmax(scores, valid)
    used = weights if mask is None else weights * mask
    context = (used[:, None, :] @ values)[:, 0]  # Σ_s used[n, s] v[n, s]
    return (context, weights), AttentionCache(query, values, valid, features, weights, mask,
                                              w_q, w_v)


def additive_attention_backward(dcontext, cache: AttentionCache):
    """dcontext (N, Dv) -> ``{"query", "keys_proj", "values", "W_q", "w_v"}`` gradients."""
    query, values, valid, features, weights, mask, w_q, w_v = cache
    used = weights if mask is None else weights * mask
    dvalues = used[:, :, None] * dcontext[:, None, :]  # context = Σ_s used_s v_s
    dused = (values @ dcontext[:, :, None])[:, :, 0]  # (N, S): v_s · dcontext
    dweights = dused if mask is None else dused * mask  # through the dropout mask
    # softmax's Jacobian: dscore_s = alpha_s (dalpha_s - Σ_j alpha_j dalpha_j); positions
    # that may not be attended have alpha = 0, so they get exactly 0
    dscores = weights * (dweights - (weights * dweights).sum(axis=1, keepdims=True))
    dw_v = (dscores[:, :, None] * features).sum(axis=(0, 1))[None, :]  # score = w_v · f
    dpre = dscores[:, :, None] * w_v[0]  # (N, S, A): through score ...
    dpre *= 1 - features * features  # ... and through tanh
    dqp = dpre.sum(axis=1)  # q W_qᵀ is added at every position s
    return {"query": dqp @ w_q, "keys_proj": dpre, "values": dvalues, "W_q": dqp.T @ query,
            "w_v": dw_v}
