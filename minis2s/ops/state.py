"""The state a recurrent cell carries from one step to the next, as one type.

A GRU or a vanilla RNN carries its hidden state h; an LSTM carries h and its cell state c.
:class:`State` holds both, with ``c`` None for cells that have none, so that code moving
states around (stacking layers, picking rows, summing gradients) never asks which cell
it holds. The arrays inside have the same shape: (N, H) for one layer and direction,
(L·dirs, N, H) for a whole stack, (L, N, W) for the state the encoder hands the decoder.
A state's gradient is a State of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..backend import array_module


class State(NamedTuple):
    h: Any  # the hidden state, the output of each step
    c: Any = None  # the cell state (LSTM), or None

    def map(self, fn: Callable) -> State:
        """``fn`` applied to every array of the state (h, and c if there is one)."""
        return State(fn(self.h), None if self.c is None else fn(self.c))

    @property
    def top(self):
        """The top layer's h of a stacked state (L, N, W): (N, W)."""
        return self.h[-1]

    def part(self, i: int) -> State:
        """Layer (and direction) ``i`` of a stacked state."""
        return self.map(lambda s: s[i])

    def rows(self, rows) -> State:
        """Batch rows ``rows`` (a slice or an index array) of a stacked state."""
        return self.map(lambda s: s[:, rows])

    def padded_to(self, n: int) -> State:
        """A stacked state with zero rows appended up to ``n`` batch rows."""
        xp = array_module(self.h)

        def pad(s):
            if s.shape[1] == n:
                return s
            zeros = xp.zeros((s.shape[0], n - s.shape[1], *s.shape[2:]), dtype=s.dtype)
            return xp.concatenate([s, zeros], axis=1)

        return self.map(pad)

    @staticmethod
    def stack(parts: list[State]) -> State:
        """One stacked state from per-(layer, direction) states, in order."""
        xp = array_module(parts[0].h)
        c = None if parts[0].c is None else xp.stack([p.c for p in parts])
        return State(xp.stack([p.h for p in parts]), c)

    @staticmethod
    def zeros(shape, dtype, xp, paired: bool) -> State:
        """A zero state of ``shape``; with a cell state too when ``paired``."""
        return State(xp.zeros(shape, dtype=dtype), xp.zeros(shape, dtype=dtype) if paired
                     else None)
