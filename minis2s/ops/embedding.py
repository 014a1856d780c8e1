"""Embedding lookup. Derivation: docs/derivations.md#embedding."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module, index_add


class EmbeddingCache(NamedTuple):
    ids: Any  # (...) int token ids
    num_embeddings: int  # V


def embedding_forward(ids, weight):
    """Rows of ``weight`` (V, E) picked by ``ids`` (...): out (..., E)."""
    return weight[ids], EmbeddingCache(ids, weight.shape[0])


def embedding_backward(dout, cache: EmbeddingCache):
    """Return ``{"weight": dW}``; each row of dW sums the upstream rows of its id."""
    xp = array_module(dout)
    E = dout.shape[-1]
    dW = xp.zeros((cache.num_embeddings, E), dtype=dout.dtype)
    # a token that appears k times receives the sum of its k upstream rows
    index_add(dW, cache.ids.reshape(-1), dout.reshape(-1, E))
    return {"weight": dW}
