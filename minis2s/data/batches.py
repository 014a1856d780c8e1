"""Minibatches, prepared once on the host and handed to the model as they are.

A :class:`Batch` holds everything one teacher-forced step needs: the source ids, the
decoder's input (``<bos>`` then the target without its last token), the labels, the
valid lengths, and the :class:`Packing` that lets the decoder run on valid positions
only (rows sorted by target length, longest first). It is made here, from NumPy arrays,
and moved to the backend's device in one go (:meth:`Batch.to`); the model never copies a
batch back to the host.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from .corpus import Part


class Packing(NamedTuple):
    """Rows of a batch sorted by target length, and its valid positions, step-major."""

    order: Any  # (N,) batch rows, longest target first (ties in batch order)
    batch_sizes: list  # rows still running at each step t < max(valid_len)
    steps: Any  # (M,) step t of each valid position
    rows: Any  # (M,) original batch row of each valid position


def pack(tgt_valid_len: np.ndarray) -> Packing:
    """Where the M = sum(valid_len) valid target positions of a batch go when packed."""
    lens = np.asarray(tgt_valid_len, dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    lens = lens[order]
    T_eff = int(lens[0]) if lens.size else 0
    running = np.arange(T_eff)[:, None] < lens[None, :]  # (T_eff, N): step-major
    steps, sorted_rows = np.nonzero(running)
    return Packing(order, running.sum(axis=1).tolist(), steps, order[sorted_rows])


class Batch(NamedTuple):
    """One minibatch: ids (N, T_src) and (N, T_tgt), lengths (N,), and its packing."""

    src: Any  # (N, T_src) source ids
    src_valid_len: Any  # (N,)
    tgt_in: Any  # (N, T_tgt) decoder input: <bos>, then tgt without its last token
    tgt: Any  # (N, T_tgt) labels
    tgt_valid_len: Any  # (N,)
    packing: Packing

    @property
    def num_tokens(self) -> int:
        """Valid target tokens: the positions the loss counts."""
        return len(self.packing.steps)

    def take(self, rows) -> Batch:
        """The batch of rows ``rows`` only (host arrays), with its own packing."""
        tgt_valid_len = self.tgt_valid_len[rows]
        return Batch(self.src[rows], self.src_valid_len[rows], self.tgt_in[rows],
                     self.tgt[rows], tgt_valid_len, pack(tgt_valid_len))

    def to(self, xp) -> Batch:
        """The same batch with its arrays on ``xp``'s device (NumPy: no copy)."""
        p = self.packing
        return Batch(xp.asarray(self.src), xp.asarray(self.src_valid_len),
                     xp.asarray(self.tgt_in), xp.asarray(self.tgt),
                     xp.asarray(self.tgt_valid_len),
                     Packing(xp.asarray(p.order), p.batch_sizes, xp.asarray(p.steps),
                             xp.asarray(p.rows)))


def teacher_forcing_input(tgt: np.ndarray, bos: int) -> np.ndarray:
    """Decoder input: ``<bos>`` followed by the target without its last token."""
    return np.concatenate([np.full((tgt.shape[0], 1), bos, dtype=tgt.dtype), tgt[:, :-1]],
                          axis=1)


def make_batch(src, src_valid_len, tgt, tgt_valid_len, bos: int) -> Batch:
    """A :class:`Batch` from host arrays (the decoder input and the packing made here)."""
    src, tgt = np.asarray(src), np.asarray(tgt)
    tgt_valid_len = np.asarray(tgt_valid_len, dtype=np.int64)
    return Batch(src, np.asarray(src_valid_len, dtype=np.int64),
                 teacher_forcing_input(tgt, bos), tgt, tgt_valid_len, pack(tgt_valid_len))


def iterate_batches(part: Part, batch_size: int, rng: np.random.Generator | None,
                    shuffle: bool = True, *, bos: int) -> Iterator[Batch]:
    """Yield minibatches covering every row of ``part`` once; the last may be smaller.

    Shuffling draws from ``rng`` only, never from NumPy's global state.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(part)
    if shuffle:
        if rng is None:
            raise ValueError("shuffle=True needs a numpy Generator")
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield make_batch(part.src[idx], part.src_valid_len[idx], part.tgt[idx],
                         part.tgt_valid_len[idx], bos)
