"""Parameters by name: each one's shape and how its initial value is drawn.

A model's parameters are a mapping from ``torch.nn`` names to :class:`Param` specs (shape
and initialiser), in PyTorch's state_dict order; the encoder and each decoder give their
own part. Initialisers follow the seed (and PyTorch's defaults): N(0, 1) embeddings,
Xavier-uniform weight matrices, U(−1/√fan, 1/√fan) biases. Each draws from the caller's
NumPy generator, so the same random seed gives the same parameters on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..ops import stack_param_shapes


class Param(NamedTuple):
    shape: tuple
    init: Callable  # (rng, shape) -> a NumPy array of that shape


def normal(rng: np.random.Generator, shape) -> np.ndarray:
    """N(0, 1), as nn.Embedding."""
    return rng.standard_normal(shape)


def xavier_uniform(rng: np.random.Generator, shape) -> np.ndarray:
    """U(−b, b) with b = √(6 / (fan_in + fan_out)), for a (fan_out, fan_in) matrix."""
    fan_out, fan_in = shape
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape)


def uniform(fan: int) -> Callable:
    """U(−1/√fan, 1/√fan), PyTorch's default bias of a layer with ``fan`` inputs (nn.Linear)
    or ``fan`` hidden units (nn.GRU, nn.LSTM, nn.RNN)."""
    bound = 1.0 / np.sqrt(fan)
    return lambda rng, shape: rng.uniform(-bound, bound, shape)


def embedding_param(vocab_size: int, embed_size: int) -> Param:
    return Param((vocab_size, embed_size), normal)


def dense_params(prefix: str, in_features: int, out_features: int) -> dict[str, Param]:
    """nn.Linear's weight (Xavier, as the seed initialises it) and bias."""
    return {prefix + "weight": Param((out_features, in_features), xavier_uniform),
            prefix + "bias": Param((out_features,), uniform(in_features))}


def stack_params(prefix: str, gates: int, input_size: int, hidden: int, layers: int,
                 dirs: int = 1) -> dict[str, Param]:
    """A recurrent stack's parameters (:func:`minis2s.ops.stack_param_shapes`): Xavier
    weights, biases U(−1/√hidden, 1/√hidden) as nn.GRU / nn.LSTM / nn.RNN draw them."""
    shapes = stack_param_shapes(gates, input_size, hidden, layers, dirs, prefix)
    return {name: Param(shape, xavier_uniform if len(shape) == 2 else uniform(hidden))
            for name, shape in shapes.items()}


def scope(params, prefix: str) -> dict:
    """The entries of ``params`` under ``prefix``, with the prefix removed."""
    n = len(prefix)
    return {k[n:]: v for k, v in params.items() if k.startswith(prefix)}
