"""A tanh layer from the encoder's final state to the decoder's first state.

Derivation: docs/derivations.md#bridge.

When the decoder's cell has another number of units than one encoder layer's state, the
decoder cannot start from that state as it is; the bridge maps it, as Bahdanau et al.
start their decoder from ``tanh(h W_sᵀ)`` of the encoder's backward state:
``out = tanh(x Wᵀ + b)``, x (N, D) -> out (N, K). The model asks for the first states of
all its decoder layers at once (K = L·H, layer l's units in columns l·H to (l+1)·H).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module


class BridgeCache(NamedTuple):
    x: Any  # (N, D) the input
    weight: Any  # (K, D), nn.Linear's layout
    out: Any  # (N, K) tanh's output, whose derivative it gives


def bridge_forward(x, weight, bias):
    """out = tanh(x Wᵀ + b) for x (N, D), W (K, D), b (K,): out (N, K)."""
    xp = array_module(x)
    out = x @ weight.T
    out += bias
    out = xp.tanh(out, out=out)
    return out, BridgeCache(x, weight, out)


def bridge_backward(dout, cache: BridgeCache):
    """Return ``(dx, {"weight": dW, "bias": db})`` for dout (N, K)."""
    x, weight, out = cache
    da = dout * (1.0 - out * out)  # through tanh: d tanh(a) / da = 1 - tanh(a)²
    dx = da @ weight  # (N, D)
    dW = da.T @ x  # (K, D)
    db = da.sum(axis=0)  # (K,)
    return dx, {"weight": dW, "bias": db}
