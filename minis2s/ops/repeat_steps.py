"""A per-sequence value added at every step of its sequence.

Derivation: docs/derivations.md#repeat-over-steps.

The seed's decoder reads ``[x_t ; context]`` at every step; the context's share of the
input projection, ``context W_cᵀ`` (N, C), is the same at every step of a sequence, so the
model computes it once and adds it to every step's row. Rows come in the recurrent
stacks' layouts (:mod:`.layout`): padded (T, N, C), where step t of sequence n is row
[t, n], or packed (M, C) by ``batch_sizes``, where step t holds the first
``batch_sizes[t]`` sequences. The backward sums each sequence's rows over its steps.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from .layout import spans


class RepeatStepsCache(NamedTuple):
    batch_sizes: Any  # None (padded) or the packed step sizes
    num_sequences: int  # N


def repeat_steps_add_forward(into, per_seq, batch_sizes=None):
    """``into[step t of sequence n] += per_seq[n]`` for every step, in place.

    into: (T, N, C) padded or (M, C) packed, an array the caller owns and gives up;
    per_seq: (N, C). Returns ``into`` and the cache.
    """
    if batch_sizes is None:
        into += per_seq  # broadcast over T
    else:
        for lo, n in spans(len(batch_sizes), per_seq.shape[0], batch_sizes):
            into[lo:lo + n] += per_seq[:n]
    return into, RepeatStepsCache(batch_sizes, per_seq.shape[0])


def repeat_steps_add_backward(dout, cache: RepeatStepsCache):
    """Gradient of ``per_seq``: each sequence's rows of ``dout`` summed over its steps.
    (The gradient of ``into`` is ``dout`` itself.)"""
    batch_sizes, N = cache
    if batch_sizes is None:
        return dout.sum(axis=0)  # (T, N, C) -> (N, C)
    xp = array_module(dout)
    out = xp.zeros((N, dout.shape[-1]), dtype=dout.dtype)
    for lo, n in spans(len(batch_sizes), N, batch_sizes):
        out[:n] += dout[lo:lo + n]
    return out
