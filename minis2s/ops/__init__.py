"""Layers with hand-derived forward and backward passes, one op per module.

Each op is a pair ``*_forward(...) -> (out, cache)`` and ``*_backward(dout, cache)``;
caches are NamedTuples. Ops take the array module from their inputs
(:func:`minis2s.backend.array_module`), so they run unchanged on NumPy and CuPy.
Shapes use one alphabet: N batch, T steps, E embedding, H hidden, V vocabulary,
D input features, L layers.
"""

from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward
from .embedding import embedding_backward, embedding_forward
from .gru import gru_backward, gru_forward, gru_layer_backward, gru_layer_forward
from .softmax_ce import (
    masked_softmax_ce_backward,
    masked_softmax_ce_forward,
    reduction_scale,
    softmax_ce_backward,
    softmax_ce_forward,
)

__all__ = [
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "embedding_backward",
    "embedding_forward",
    "gru_backward",
    "gru_forward",
    "gru_layer_backward",
    "gru_layer_forward",
    "masked_softmax_ce_backward",
    "masked_softmax_ce_forward",
    "reduction_scale",
    "softmax_ce_backward",
    "softmax_ce_forward",
]
