"""Finite-difference gradient checks: a library for any forward/backward pair.

``check_backward(forward, backward, inputs)`` is the one call a reader needs for an op of
their own: it draws a random upstream gradient G, compares the backward's gradients with
fourth-order central differences of ``sum(out * G)``, and returns one :class:`Row` per
checked array. :func:`shape_strategy` draws shapes for it with ``hypothesis``.

Error measure, per checked array: ``max|a - n| / max(max(|a| + |n|), 1e-12)`` where a is
the analytic gradient and n the finite difference, the maxima taken over the array's
elements. Everything is meant for float64: in float32 the differences drown in rounding.
The arrays checked may live on either backend (NumPy or CuPy): the checks perturb them
where they are and bring only scalars and gradients back to the host.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..backend import array_module, to_numpy

TOLERANCE = 1e-6


def _array(a):
    """A device array as it is; anything else (a NumPy array, a list, a scalar) as a NumPy
    array."""
    return a if array_module(a) is not np else np.asarray(a)


def rel_error(analytic, numeric, floor: float = 1e-12) -> float:
    """``max|a - n| / max(max(|a| + |n|), floor)`` over all elements."""
    a = np.asarray(to_numpy(analytic), dtype=np.float64)
    n = np.asarray(to_numpy(numeric), dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {n.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / max(float(np.max(np.abs(a) + np.abs(n))), floor))


def _derivative(f: Callable[[], float], set_x: Callable[[float], None], h: float) -> float:
    """Fourth-order central difference: (8 (f(+h) - f(-h)) - (f(+2h) - f(-2h))) / 12h.

    Its truncation error is O(h^4), so h can be large enough (1e-3) that rounding in f
    stays far below the tolerance even where a gradient is tiny.
    """
    vals = []
    for step in (2, 1, -1, -2):
        set_x(step * h)
        vals.append(float(f()))
    set_x(0.0)
    # differences first: a flat f gives exactly 0
    return (8 * (vals[1] - vals[2]) - (vals[0] - vals[3])) / (12 * h)


def numerical_grad(f: Callable[[], float], x, eps: float = 1e-3):
    """Finite differences of the scalar ``f()`` with respect to every element of ``x``.

    ``x`` (on either backend) is changed in place and restored; ``f`` must read it. The
    result is a NumPy array.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x = x.reshape(-1)  # a view: x is contiguous
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i].item()

        def set_x(delta, i=i, old=old):
            flat_x[i] = old + delta

        flat_g[i] = _derivative(f, set_x, eps)
    return grad


def directional_error(f: Callable[[], float], arrays: Mapping, grads: Mapping,
                      rng: np.random.Generator, eps: float = 1e-3) -> float:
    """Check all of ``grads`` at once along one random unit direction u.

    Compares the analytic directional derivative sum(g . u) with the finite difference
    of t -> f(x + t u): four evaluations instead of four per element, for shapes too big
    to check element by element.
    """
    dirs = {k: rng.standard_normal(arrays[k].shape) for k in grads}
    norm = np.sqrt(sum(float((u * u).sum()) for u in dirs.values()))
    # each direction where its array lives
    dirs = {k: array_module(arrays[k]).asarray(u / norm) for k, u in dirs.items()}
    base = {k: arrays[k].copy() for k in grads}

    def set_t(t):
        for k, u in dirs.items():
            arrays[k][...] = base[k] + t * u

    numeric = _derivative(f, set_t, eps)
    for k in grads:
        arrays[k][...] = base[k]
    analytic = sum(float((_array(grads[k]) * dirs[k]).sum()) for k in grads)
    return rel_error(analytic, numeric)


@dataclass
class Row:
    case: str
    name: str
    shape: tuple
    error: float


def check_arrays(case: str, f: Callable[[], float], arrays: Mapping, grads: Mapping,
                 eps: float = 1e-3, floor: float = 1e-12) -> list[Row]:
    """One :class:`Row` per entry of ``grads``, comparing it with finite differences of f
    (:func:`rel_error`, whose denominator is at least ``floor``)."""
    rows = []
    for name, g in grads.items():
        numeric = numerical_grad(f, arrays[name], eps)
        rows.append(Row(case, name, tuple(arrays[name].shape), rel_error(g, numeric, floor)))
    return rows


def print_rows(rows: list[Row], out=None, lines: bool = True, summary: bool = True) -> float:
    """Print one line per row (``lines``) and the closing summary (``summary``); return
    the largest error."""
    out = sys.stdout if out is None else out
    width = max((len(r.case) for r in rows), default=4)
    nwidth = max((len(r.name) for r in rows), default=4)
    for r in rows if lines else ():
        flag = "" if r.error <= TOLERANCE else "  FAIL"
        shape = "x".join(map(str, r.shape)) or "scalar"
        print(f"{r.case:<{width}}  {r.name:<{nwidth}}  {shape:>10}  {r.error:.2e}{flag}",
              file=out, flush=True)
    worst = max((r.error for r in rows), default=0.0)
    if summary:
        print(f"max relative error {worst:.2e} over {len(rows)} parameters", file=out)
    return worst


def _leaves(tree) -> list:
    """The arrays of an output: an array, or a (nested) tuple / list of arrays."""
    if isinstance(tree, (tuple, list)):
        return [leaf for part in tree for leaf in _leaves(part)]
    return [tree]


def _like(tree, leaves: list):
    """``leaves`` (in :func:`_leaves` order) arranged like ``tree``."""
    if isinstance(tree, (tuple, list)):
        out = []
        for part in tree:
            n = len(_leaves(part))
            out.append(_like(part, leaves[:n]))
            leaves = leaves[n:]
        return type(tree)(out) if isinstance(tree, tuple) else out
    return leaves[0]


def check_backward(forward: Callable, backward: Callable, inputs: Mapping, rng=None,
                   eps: float = 1e-3, case: str = "op") -> list[Row]:
    """Check a forward/backward pair against finite differences; one :class:`Row` per
    gradient the backward returns.

    * ``forward(**inputs) -> (out, cache)``: out is an array or a (nested) tuple or list
      of arrays;
    * ``backward(dout, cache) -> {name: gradient}``: dout is shaped like out; the names
      are names of ``inputs`` (those it leaves out are not checked).

    ``inputs`` maps names to float64 arrays (changed in place while checking, then
    restored; NumPy's, or CuPy's to check on the GPU) and to anything else the forward
    takes. The scalar checked is
    ``sum(out * G)`` with G drawn from ``rng`` (default: a generator seeded with 0), so no
    error can cancel against an all-ones upstream gradient. Example::

        rows = check_backward(lambda x, w: (x @ w, (x, w)),
                              lambda dy, c: {"x": dy @ c[1].T, "w": c[0].T @ dy},
                              {"x": np.ones((2, 3)), "w": np.ones((3, 4))})
        assert max(r.error for r in rows) <= TOLERANCE
    """
    rng = np.random.default_rng(0) if rng is None else rng
    inputs = dict(inputs)
    out, cache = forward(**inputs)
    # G drawn on the host, then put where each output lives
    G = [array_module(a).asarray(rng.standard_normal(_array(a).shape))
         for a in _leaves(out)]

    def f() -> float:
        leaves = _leaves(forward(**inputs)[0])
        return float(sum((_array(a) * g).sum() for a, g in zip(leaves, G)))

    grads = backward(_like(out, G), cache)
    unknown = sorted(set(grads) - set(inputs))
    if unknown:
        raise KeyError(f"the backward returned gradients of unknown inputs {unknown}")
    return check_arrays(case, f, inputs, grads, eps)


def shape_strategy(*names: str, low: int = 1, high: int = 6):
    """A ``hypothesis`` strategy of shape dictionaries, e.g. ``shape_strategy("N", "T",
    "H")`` draws ``{"N": 3, "T": 1, "H": 5}``, each size in [low, high]. Small on purpose:
    finite differences cost four evaluations per element."""
    from hypothesis import strategies as st  # a test dependency, imported only here

    return st.fixed_dictionaries({n: st.integers(low, high) for n in names})
