"""Embedding lookup fused with the input projection of a recurrent stack's first layer.

Derivation: docs/derivations.md#embedding-projection.

``gi = weight[ids] W_ih^T + b_ih``. Two exact ways to compute it:

* gather: look the rows up (M, E), then one (M, E) x (E, G·H) product (G gate blocks);
* table: project the whole vocabulary once, ``table = weight W_ih^T + b_ih`` (V, G·H), then
  look the rows up. Cheaper when the vocabulary has fewer rows than the batch has tokens
  (V < M), as in small corpora; its backward scatters dgi into the table's gradient and
  needs two (V, ·) products instead of two (M, ·) ones.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module, index_add
from .embedding import embedding_backward, embedding_forward


class EmbedProjectCache(NamedTuple):
    ids: Any  # (...) token ids
    weight: Any  # (V, E) embedding
    w_ih: Any  # (G·H, E)
    x: Any  # (M, E) looked-up rows (gather), or None (table)
    emb_cache: Any  # the embedding op's cache (gather), or None


def embed_project_forward(ids, weight, w_ih, b_ih):
    """ids (...) -> gi (..., G·H), choosing the cheaper exact way."""
    V, M = weight.shape[0], ids.size
    if V < M:  # table: project every vocabulary row once
        table = weight @ w_ih.T
        table += b_ih
        gi = table[ids]
        return gi, EmbedProjectCache(ids, weight, w_ih, None, None)
    x, emb_cache = embedding_forward(ids.reshape(-1), weight)
    gi = x @ w_ih.T
    gi += b_ih
    return gi.reshape(*ids.shape, w_ih.shape[0]), EmbedProjectCache(ids, weight, w_ih, x, emb_cache)


def embed_project_backward(dgi, cache: EmbedProjectCache):
    """Return ``{"embedding": dW_emb, "weight": dW_ih, "bias": db_ih}``."""
    xp = array_module(dgi)
    ids, weight, w_ih, x, emb_cache = cache
    dgi = dgi.reshape(-1, dgi.shape[-1])
    db = dgi.sum(axis=0)
    if x is None:  # table: gather's backward is a scatter-add into the table's gradient
        dtable = xp.zeros((weight.shape[0], dgi.shape[1]), dtype=dgi.dtype)
        index_add(dtable, ids.reshape(-1), dgi)
        return {"embedding": dtable @ w_ih, "weight": dtable.T @ weight, "bias": db}
    demb = embedding_backward(dgi @ w_ih, emb_cache)["weight"]
    return {"embedding": demb, "weight": dgi.T @ x, "bias": db}
