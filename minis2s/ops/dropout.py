"""Inverted dropout with a mask given by the caller. Derivation: docs/derivations.md#dropout.

The mask holds 0 for dropped units and ``1 / (1 - p)`` for kept ones (see
:meth:`minis2s.backend.Backend.dropout_mask`); ``mask=None`` is the identity (evaluation,
or ``p = 0``). Taking the mask as an argument keeps randomness out of the op, so a test
can fix it and check gradients.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class DropoutCache(NamedTuple):
    mask: Any  # same shape as x, or None


def dropout_forward(x, mask):
    """out = x * mask (or x when mask is None)."""
    return (x if mask is None else x * mask), DropoutCache(mask)


def dropout_backward(dout, cache: DropoutCache):
    """dL/dx = dout * mask: dropped units get exactly zero gradient."""
    return dout if cache.mask is None else dout * cache.mask
