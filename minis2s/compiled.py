"""The recurrent cells' time loops compiled with Numba (GRU, LSTM, vanilla RNN): an
optional path beside the NumPy kernels.

    pip install 'minis2s[compiled]'
    MINIS2S_KERNELS=compiled minis2s train ...        # or minis2s.compiled.use("compiled")

At the seed's size a NumPy call costs its dispatch more than its arithmetic, and a GRU
step is a dozen of them (docs/performance.md, "Against every peer"). Here each layer's
whole time loop is one compiled call: per step OpenBLAS's product h W_hh^T (Numba's
``np.dot``), then a few fused loops over the step's rows. They compute what
:mod:`minis2s.ops.gru`, :mod:`~minis2s.ops.lstm` and :mod:`~minis2s.ops.rnn` compute, in
the same order of steps, and fill the same caches, so either backward runs on either
forward; tests/test_compiled.py holds them equal to the NumPy kernels and to the plain
reference cells to 1e-12 in float64. The loops themselves are in :mod:`.compiled_loops`,
imported only when they are asked for; Numba keeps them compiled in its cache.

In float32 ``exp`` is written out so that the compiler can vectorise it:
exp(v) = 2^k p(r), k = round(v / ln 2), r = v - k ln 2, p the degree-6 Taylor
polynomial, 2^k made from its exponent bits (relative error at most 2.5e-7);
tanh(a) = (1 - e) / (1 + e) with e = exp(-2|a|). In float64 ``exp`` is the C library's.
What made the loops fast, each measured: Numba's NumPy error model (its default tests
every divisor for zero, which keeps the divisions scalar), loops that each touch few
arrays (with many, or with two views of one buffer, the compiler cannot rule out overlap
and does not vectorise), and scratch arrays made once per call.

Only small layers use the compiled loops (:data:`MAX_ROWS_UNITS2`);
larger ones, probes, recorded gradients and CuPy arrays go to the NumPy kernels, which
stay the default and need nothing but NumPy.
"""

from __future__ import annotations

import os

import numpy as np

from .ops import CELLS, GRU, LSTM, RNN, State
from .ops.gru import GRULayerCache, gru_layer_backward, gru_layer_forward
from .ops.lstm import _INNER, LSTMLayerCache, lstm_layer_backward, lstm_layer_forward
from .ops.recurrent import previous_rows, schedule
from .ops.rnn import RNNLayerCache, rnn_layer_backward, rnn_layer_forward

ENV_VAR = "MINIS2S_KERNELS"
KERNELS = ("numpy", "compiled")
_EXTRA = "pip install 'minis2s[compiled]'"


class CompiledError(RuntimeError):
    """The compiled kernels were asked for and cannot be used here."""


def _numba():
    try:
        import numba
    except ImportError:
        raise CompiledError(f"the compiled kernels need numba: {_EXTRA}") from None
    return numba


def _kernels(cell: str = "gru"):
    """The cell's two compiled loops, forward and backward (numba compiles them for each
    dtype the first time, and keeps them in its cache)."""
    _numba()
    from . import compiled_loops as loops

    return {"gru": (loops.gru_forward, loops.gru_backward),
            "lstm": (loops.lstm_forward, loops.lstm_backward),
            "rnn": (loops.rnn_forward, loops.rnn_backward)}[cell]


def _steps(sched):
    return (np.asarray(sched.offsets, dtype=np.int64), np.asarray(sched.sizes, dtype=np.int64))


# The compiled loops pay where a step is small, as measured (2-vCPU AVX-512 EPYC): 64 rows
# of 32 units (the seed's), a layer 2.3-3.0× forward and 1.6-1.8× backward; 128 rows of
# 32, 2.0× and 1.3×. At 64 rows of 64 units a backward took 8.9 ms against NumPy's
# 0.32 ms (timed with no limit, by a script not kept): Numba's products run in SciPy's
# OpenBLAS, whose threads and NumPy's OpenBLAS's fight over the two cores (with both on
# one thread, 0.36 against 0.42). So
# only layers with N H² up to 128 · 32² take them; the others run the NumPy kernels.
MAX_ROWS_UNITS2 = 128 * 32 * 32


def _compiles(a, rows: int, units: int) -> bool:
    return (isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64)
            and rows * units * units <= MAX_ROWS_UNITS2)


def gru_forward(gi, state0: State, weight_hh, bias_hh, sched, probe=None):
    """:func:`~minis2s.ops.gru.gru_layer_forward`, the loop compiled (the NumPy kernel
    for probes and CuPy arrays)."""
    if probe is not None or not _compiles(gi, state0.h.shape[0], weight_hh.shape[1]):
        return gru_layer_forward(gi, state0, weight_hh, bias_hh, sched, probe)
    M, H, dt = gi.shape[0], weight_hh.shape[1], gi.dtype
    hs, n, ghn = (np.empty((M, H), dt) for _ in range(3))
    rz = np.empty((2, M, H), dt)
    _kernels()[0](np.ascontiguousarray(gi), np.ascontiguousarray(state0.h),
                    np.ascontiguousarray(weight_hh.T), np.ascontiguousarray(bias_hh),
                    *_steps(sched), hs, rz, n, ghn, dt.type(1))
    return hs, GRULayerCache(state0.h, hs, rz, n, ghn, weight_hh, sched)


def gru_backward(dhs, dstate_last: State | None, cache: GRULayerCache, record=None):
    """:func:`~minis2s.ops.gru.gru_layer_backward`, the loop compiled (the NumPy kernel
    when gradients are recorded and for CuPy arrays)."""
    if record is not None or not _compiles(cache.hs, cache.h0.shape[0], cache.hs.shape[1]):
        return gru_layer_backward(dhs, dstate_last, cache, record)
    h0, hs, rz, n, ghn, weight_hh, sched = cache
    M, H, dt = hs.shape[0], hs.shape[1], hs.dtype
    hprev = previous_rows(h0, hs, sched)
    dh = np.zeros((h0.shape[0], H), dt)
    if dstate_last is not None:
        dh += dstate_last.h
    dgh, dgin, dbias = np.empty((M, 3 * H), dt), np.empty((M, H), dt), np.zeros(3 * H, dt)
    _kernels()[1](hs if dhs is None else np.ascontiguousarray(dhs), dhs is not None, dh,
                    hprev, rz, n, ghn, np.ascontiguousarray(weight_hh), *_steps(sched), dgh,
                    dgin, dbias, dt.type(1))
    # the weight's gradient as one product over all rows, as the NumPy kernel
    grads = {"weight_hh": dgh.T @ hprev, "bias_hh": dbias}
    dgh[:, 2 * H:] = dgin  # gi's gradient: r and z as gh's, n not scaled by r
    return dgh, State(dh), grads


def lstm_forward(gi, state0: State, weight_hh, bias_hh, sched, probe=None):
    """:func:`~minis2s.ops.lstm.lstm_layer_forward`, the loop compiled (the NumPy kernel
    for probes and CuPy arrays)."""
    if probe is not None or not _compiles(gi, state0.h.shape[0], weight_hh.shape[1]):
        return lstm_layer_forward(gi, state0, weight_hh, bias_hh, sched, probe)
    M, H, dt = gi.shape[0], weight_hh.shape[1], gi.dtype
    hs, cs, tanh_c = (np.empty((M, H), dt) for _ in range(3))
    acts = np.empty((4, M, H), dt)
    # W_hh's row blocks in the inner order i, f, o, g, transposed: each step's product
    # comes out in that order
    w_inner_t = np.ascontiguousarray(weight_hh.reshape(4, H, H)[list(_INNER)]
                                     .reshape(4 * H, H).T)
    _kernels("lstm")[0](np.ascontiguousarray(gi), np.ascontiguousarray(state0.h),
                        np.ascontiguousarray(state0.c), w_inner_t,
                        np.ascontiguousarray(bias_hh), *_steps(sched), hs, cs, tanh_c, acts,
                        dt.type(1))
    return hs, LSTMLayerCache(state0.h, state0.c, hs, cs, tanh_c, acts, weight_hh, sched)


def lstm_backward(dhs, dstate_last: State | None, cache: LSTMLayerCache, record=None):
    """:func:`~minis2s.ops.lstm.lstm_layer_backward`, the loop compiled (the NumPy kernel
    when gradients are recorded and for CuPy arrays)."""
    if record is not None or not _compiles(cache.hs, cache.h0.shape[0], cache.hs.shape[1]):
        return lstm_layer_backward(dhs, dstate_last, cache, record)
    h0, c0, hs, cs, tanh_c, acts, weight_hh, sched = cache
    M, H, dt = hs.shape[0], hs.shape[1], hs.dtype
    hprev = previous_rows(h0, hs, sched)
    dh, dc = np.zeros((h0.shape[0], H), dt), np.zeros((h0.shape[0], H), dt)
    if dstate_last is not None:
        dh += dstate_last.h
        dc += dstate_last.c
    dgh, dbias = np.empty((M, 4 * H), dt), np.zeros(4 * H, dt)
    _kernels("lstm")[1](hs if dhs is None else np.ascontiguousarray(dhs), dhs is not None,
                        dh, dc, hprev, previous_rows(c0, cs, sched), acts, tanh_c,
                        np.ascontiguousarray(weight_hh), *_steps(sched), dgh, dbias,
                        dt.type(1))
    grads = {"weight_hh": dgh.T @ hprev, "bias_hh": dbias}
    return dgh, State(dh, dc), grads  # dgi = dgh: gi and gh enter every gate as a sum


def rnn_forward(gi, state0: State, weight_hh, bias_hh, sched, probe=None):
    """:func:`~minis2s.ops.rnn.rnn_layer_forward`, the loop compiled (the NumPy kernel for
    probes and CuPy arrays)."""
    if probe is not None or not _compiles(gi, state0.h.shape[0], weight_hh.shape[1]):
        return rnn_layer_forward(gi, state0, weight_hh, bias_hh, sched, probe)
    hs = np.empty(gi.shape, gi.dtype)
    _kernels("rnn")[0](np.ascontiguousarray(gi), np.ascontiguousarray(state0.h),
                       np.ascontiguousarray(weight_hh.T), np.ascontiguousarray(bias_hh),
                       *_steps(sched), hs, gi.dtype.type(1))
    return hs, RNNLayerCache(state0.h, hs, weight_hh, sched)


def rnn_backward(dhs, dstate_last: State | None, cache: RNNLayerCache, record=None):
    """:func:`~minis2s.ops.rnn.rnn_layer_backward`, the loop compiled (the NumPy kernel
    when gradients are recorded and for CuPy arrays)."""
    if record is not None or not _compiles(cache.hs, cache.h0.shape[0], cache.hs.shape[1]):
        return rnn_layer_backward(dhs, dstate_last, cache, record)
    h0, hs, weight_hh, sched = cache
    H, dt = hs.shape[1], hs.dtype
    dh = np.zeros((h0.shape[0], H), dt)
    if dstate_last is not None:
        dh += dstate_last.h
    da, dbias = np.empty_like(hs), np.zeros(H, dt)
    _kernels("rnn")[1](hs if dhs is None else np.ascontiguousarray(dhs), dhs is not None, dh,
                       hs, np.ascontiguousarray(weight_hh), *_steps(sched), da, dbias,
                       dt.type(1))
    grads = {"weight_hh": da.T @ previous_rows(h0, hs, sched), "bias_hh": dbias}
    return da, State(dh), grads  # dgi = da: gi and the state's share enter a as a sum


COMPILED_GRU = GRU._replace(layer_forward=gru_forward, layer_backward=gru_backward)
COMPILED_LSTM = LSTM._replace(layer_forward=lstm_forward, layer_backward=lstm_backward)
COMPILED_RNN = RNN._replace(layer_forward=rnn_forward, layer_backward=rnn_backward)
NUMPY_CELLS = {"gru": GRU, "lstm": LSTM, "rnn": RNN}
COMPILED_CELLS = {"gru": COMPILED_GRU, "lstm": COMPILED_LSTM, "rnn": COMPILED_RNN}


def use(kernels: str) -> str:
    """Make the cells' time loops ``kernels`` ("numpy" or "compiled") for every model of
    this process; returns the name. "compiled" without numba is refused (CompiledError)."""
    if kernels not in KERNELS:
        raise CompiledError(f"{ENV_VAR} must be one of {', '.join(KERNELS)}, not {kernels!r}")
    if kernels == "compiled":
        _numba()
    CELLS.update(COMPILED_CELLS if kernels == "compiled" else NUMPY_CELLS)
    return kernels


def in_use() -> str:
    """The kernels the cells run now (:func:`use` switches every cell together, so the
    GRU's say it)."""
    return "compiled" if CELLS["gru"] is COMPILED_GRU else "numpy"


def runs_compiled(cell: str) -> bool:
    """Whether the cell of that name runs compiled loops now (on NumPy arrays)."""
    return cell in COMPILED_CELLS and CELLS.get(cell) is COMPILED_CELLS[cell]


def warm_up(dtype, cells=None) -> float:
    """Compile (or load from Numba's cache) the loops of ``cells`` (names; default every
    cell) for ``dtype`` now, on a tiny layer, so that the first training step does not;
    returns the seconds it took."""
    import time

    start = time.perf_counter()
    dt = np.dtype(dtype)
    sched = schedule(2, 1, None, False)
    for cell in (COMPILED_CELLS[name] for name in (cells or COMPILED_CELLS)):
        k = cell.gates
        h = np.zeros((1, 1), dt)
        state = State(h, h) if cell.paired else State(h)
        hs, cache = cell.layer_forward(np.zeros((2, k), dt), state, np.zeros((k, 1), dt),
                                       np.zeros(k, dt), sched)
        cell.layer_backward(hs, None, cache)
    return time.perf_counter() - start


def from_environment() -> str:
    """:func:`use` the kernels ``$MINIS2S_KERNELS`` names; unset, the kernels in use stay
    (NumPy's, unless :func:`use` chose others). Returns the kernels in use."""
    value = os.environ.get(ENV_VAR, "").strip()
    return use(value) if value else in_use()
