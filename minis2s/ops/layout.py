"""Where each time step's rows live when a batch of sequences is laid out along one axis.

Sequences come in one of two layouts:

* padded, time-major: (T, N, ·), seen as (T·N, ·) rows; every step has all N rows.
* packed (``batch_sizes`` given, as PyTorch's PackedSequence): (M, ·) holds step 0's rows,
  then step 1's, ...; step t has ``batch_sizes[t]`` rows, non-increasing in t, so rows
  are sorted by length and a finished sequence simply drops off the end.

In both, step t's rows are one contiguous block ``[lo, lo + n)``, the first n sequences
of the batch. :func:`spans` gives those blocks; the recurrent stacks, the attention
decoder and :mod:`.repeat_steps` all walk the rows through it.
"""

from __future__ import annotations


def spans(num_steps: int, num_sequences: int, batch_sizes=None) -> list[tuple[int, int]]:
    """``(lo, n)`` for every step in time order: its first row and its number of rows."""
    sizes = [num_sequences] * num_steps if batch_sizes is None else [int(n) for n in
                                                                     batch_sizes]
    out, lo = [], 0
    for n in sizes:
        out.append((lo, n))
        lo += n
    return out
