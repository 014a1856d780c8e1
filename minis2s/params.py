"""Named arrays that live in one flat buffer.

A :class:`ParamSet` maps PyTorch-style names (``decoder.rnn.weight_ih_l0``) to views of a
single contiguous 1-D array, so that whole-model operations (Adam, the clipping norm,
zeroing) are a few operations on one buffer, while layers still see named, shaped arrays.
Gradients and optimiser moments are ParamSets with the same layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from math import prod


class ParamSet(Mapping):
    """An ordered mapping name -> array view into ``self.flat``."""

    def __init__(self, shapes: Mapping[str, tuple], xp, dtype):
        self.shapes = {name: tuple(int(s) for s in shape) for name, shape in shapes.items()}
        self.xp, self.dtype = xp, dtype
        size = sum(prod(s) for s in self.shapes.values())
        self.flat = xp.zeros(size, dtype=dtype)
        self._views, offset = {}, 0
        for name, shape in self.shapes.items():
            n = prod(shape)
            self._views[name] = self.flat[offset:offset + n].reshape(shape)
            offset += n

    def __getitem__(self, name: str):
        return self._views[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def __setitem__(self, name: str, value) -> None:
        """Copy ``value`` into the named view (the layout never changes)."""
        view = self._views[name]
        if tuple(value.shape) != view.shape:
            raise ValueError(f"{name}: shape {tuple(value.shape)} != {view.shape}")
        view[...] = self.xp.asarray(value, dtype=self.dtype)

    def zeros_like(self) -> ParamSet:
        return ParamSet(self.shapes, self.xp, self.dtype)

    def copy(self) -> ParamSet:
        out = self.zeros_like()
        out.flat[...] = self.flat
        return out

    def assign(self, arrays: Mapping) -> None:
        """Copy every named array of ``arrays`` in; missing names are zeroed."""
        for name in self._views:
            if name in arrays:
                self[name] = arrays[name]
            else:
                self._views[name][...] = 0
