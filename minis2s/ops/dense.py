"""Affine layer over any leading dimensions. Derivation: docs/derivations.md#dense."""

from __future__ import annotations

from typing import Any, NamedTuple


class DenseCache(NamedTuple):
    x: Any  # (..., D) input
    weight: Any  # (V, D), PyTorch's nn.Linear layout


def dense_forward(x, weight, bias):
    """y = x W^T + b for x (..., D), W (V, D), b (V,): y (..., V)."""
    y = x @ weight.T
    y += bias
    return y, DenseCache(x, weight)


def dense_backward(dy, cache: DenseCache):
    """Return ``(dx, {"weight": dW, "bias": db})``."""
    x, weight = cache
    D, V = x.shape[-1], dy.shape[-1]
    dy2 = dy.reshape(-1, V)  # fold the leading dimensions into one
    dx = dy @ weight  # dL/dx = dy W
    dW = dy2.T @ x.reshape(-1, D)  # dL/dW = sum over rows of dy^T x
    db = dy2.sum(axis=0)  # dL/db = sum over rows of dy
    return dx, {"weight": dW, "bias": db}
