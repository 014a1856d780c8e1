"""A trial kept for its measurements: one GRU layer's forward and backward compiled with
Numba, timed against minis2s's NumPy kernels (:mod:`minis2s.ops.gru`).

    pip install numba
    python benchmarks/compiled_gru.py [--repeats 300] [--step PRESET [--data PATH]]

With ``--step`` it times whole training steps of the preset on one batch instead
(forward and backward, as ``benchmarks/step_breakdown.py`` does), alternating the NumPy
kernels, the compiled forward (the backward NumPy's) and both compiled in the model's
GRU.

The kernel is one call per layer. Each step is OpenBLAS's product h W_hh^T (Numba's
``np.dot``) and then a few fused loops over the step's rows, in which ``exp`` is written
out so that the compiler can vectorise it: exp(v) = 2^k p(r), k = round(v / ln 2),
r = v - k ln 2, p the degree-6 Taylor polynomial, 2^k made from its exponent bits
(relative error at most 4.5e-7 in float32 as compiled here); tanh(a) is taken as
(1 - e) / (1 + e) with e = exp(-2|a|), whose absolute error stays below 1.2e-7. Three
things decide its speed here, each measured: Numba's NumPy error model (Python's tests
every divisor for zero and keeps the divisions scalar), loops that read and write few
distinct arrays (with many, or with two views of one buffer, the compiler cannot rule
out overlap and does not vectorise), and scratch arrays made once per call. The forward
fills the same cache as the NumPy kernel, so either backward runs on it; the backward's
time loop is compiled, its weight gradients one NumPy product as the kernel's.
tests/test_compiled_gru.py holds both to the NumPy kernels' results (2e-6 absolute in
the forward, 1e-4 relative in the backward). float32 only: a float64 kernel would use
the exact ``exp``.
"""

from __future__ import annotations

import argparse
import sys
import timeit

import numpy as np

from minis2s.ops import State
from minis2s.ops.gru import GRULayerCache, gru_layer_backward, gru_layer_forward
from minis2s.ops.recurrent import previous_rows, schedule

try:
    import numba
except ImportError:  # the timing says so; the test skips
    numba = None

F = np.float32
LN2_HI, LN2_LO, LOG2E = F(0.693145751953125), F(1.428606765330187e-06), F(1.4426950408889634)
ONE = F(1.0)


def _compile():
    njit = numba.njit(fastmath=True, error_model="numpy")

    @numba.njit(fastmath=True, error_model="numpy", inline="always")
    def exp_parts(v):
        """exp(v) as (p, bits): p * (bits seen as a float32)."""
        v = min(max(v, F(-87.0)), F(88.0))
        k = np.floor(v * LOG2E + F(0.5))
        r = v - k * LN2_HI - k * LN2_LO  # ln 2 in two parts: r exact to float32
        p = F(1.0 / 720)
        p = p * r + F(1.0 / 120)
        p = p * r + F(1.0 / 24)
        p = p * r + F(1.0 / 6)
        p = p * r + F(0.5)
        p = p * r + ONE
        p = p * r + ONE
        return p, (np.int32(k) + np.int32(127)) << np.int32(23)

    @njit
    def forward(gi, h0, w_hh_t, b_hh, offsets, sizes, hs, rz, n_out, ghn):
        H = gi.shape[1] // 3
        N = h0.shape[0]
        gh = np.empty((N, 3 * H), F)  # the step's product
        p_rz, k_rz = np.empty((N, 2 * H), F), np.empty((N, 2 * H), np.int32)
        g_rz = np.empty((N, 2 * H), F)  # the step's r and z, row-major
        p_n, k_n = np.empty((N, H), F), np.empty((N, H), np.int32)
        f_rz, f_n = k_rz.view(np.float32), k_n.view(np.float32)
        h = h0
        for s in range(offsets.size):
            lo, n = offsets[s], sizes[s]
            hp = h[:n]
            np.dot(hp, w_hh_t, gh[:n])
            for i in range(n):  # exp(-a) for r and z
                for j in range(2 * H):
                    p_rz[i, j], k_rz[i, j] = exp_parts(-(gi[lo + i, j] + b_hh[j] + gh[i, j]))
            for i in range(n):  # r, z = sigmoid(a)
                for j in range(2 * H):
                    g_rz[i, j] = ONE / (ONE + p_rz[i, j] * f_rz[i, j])
            for i in range(n):  # the cache keeps them gate-major
                for j in range(H):
                    rz[0, lo + i, j] = g_rz[i, j]
                    rz[1, lo + i, j] = g_rz[i, H + j]
            for i in range(n):  # n's pre-activation, and exp(-2|a_n|) for its tanh
                for j in range(H):
                    v = gh[i, 2 * H + j] + b_hh[2 * H + j]
                    ghn[lo + i, j] = v
                    a = gi[lo + i, 2 * H + j] + g_rz[i, j] * v
                    n_out[lo + i, j] = a
                    p_n[i, j], k_n[i, j] = exp_parts(F(-2.0) * abs(a))
            for i in range(n):  # n = tanh(a_n); h' = n + z (h - n)
                for j in range(H):
                    e = p_n[i, j] * f_n[i, j]
                    t = (ONE - e) / (ONE + e)
                    t = t if n_out[lo + i, j] >= 0 else -t
                    n_out[lo + i, j] = t
                    hs[lo + i, j] = t + g_rz[i, H + j] * (hp[i, j] - t)
            h = hs[lo:lo + n]

    @njit
    def backward(dhs, has_dhs, dh, hprev, rz, n_out, ghn, weight_hh, offsets, sizes, dgh, dgin):
        H = hprev.shape[1]
        back = np.empty((dh.shape[0], H), F)
        for s in range(offsets.size - 1, -1, -1):
            lo, n = offsets[s], sizes[s]
            if has_dhs:
                for i in range(n):  # from above, and from the next step (carried)
                    for j in range(H):
                        dh[i, j] += dhs[lo + i, j]
            for i in range(n):  # da_n = dh (1 - z)(1 - n²), da_z = dh (hprev - n) z (1 - z)
                for j in range(H):
                    z, nn = rz[1, lo + i, j], n_out[lo + i, j]
                    d = dh[i, j]
                    dgin[lo + i, j] = d * (ONE - z) * (ONE - nn * nn)
                    dgh[lo + i, H + j] = d * (hprev[lo + i, j] - nn) * z * (ONE - z)
                    dh[i, j] = d * z  # to hprev directly; the product's share below
            for i in range(n):  # da_r = da_n ghn r (1 - r); dgh_n = da_n r
                for j in range(H):
                    r, da_n = rz[0, lo + i, j], dgin[lo + i, j]
                    dgh[lo + i, j] = da_n * ghn[lo + i, j] * r * (ONE - r)
                    dgh[lo + i, 2 * H + j] = da_n * r
            np.dot(dgh[lo:lo + n], weight_hh, back[:n])
            for i in range(n):
                for j in range(H):
                    dh[i, j] += back[i, j]

    return forward, backward


_KERNELS = None


def _kernels():
    global _KERNELS
    if numba is None:
        raise RuntimeError("this trial needs numba: pip install numba")
    if _KERNELS is None:
        _KERNELS = _compile()
    return _KERNELS


def compiled_layer_forward(gi, state0: State, weight_hh, bias_hh, sched):
    """:func:`~minis2s.ops.gru.gru_layer_forward`'s arguments and results (float32, no
    probe), computed by the compiled kernel."""
    M, H = gi.shape[0], weight_hh.shape[1]
    hs, n, ghn = (np.empty((M, H), F) for _ in range(3))
    rz = np.empty((2, M, H), F)
    _kernels()[0](gi, state0.h, np.ascontiguousarray(weight_hh.T), bias_hh,
             np.asarray(sched.offsets, np.int64), np.asarray(sched.sizes, np.int64), hs, rz,
             n, ghn)
    return hs, GRULayerCache(state0.h, hs, rz, n, ghn, weight_hh, sched)


def compiled_layer_backward(dhs, dstate_last, cache):
    """:func:`~minis2s.ops.gru.gru_layer_backward`'s arguments and results (float32, no
    record), the time loop compiled."""
    h0, hs, rz, n, ghn, weight_hh, sched = cache
    M, H = hs.shape
    hprev = previous_rows(h0, hs, sched)
    dh = np.zeros((h0.shape[0], H), F)
    if dstate_last is not None:
        dh += dstate_last.h
    dgh, dgin = np.empty((M, 3 * H), F), np.empty((M, H), F)
    _kernels()[1](hs if dhs is None else dhs, dhs is not None, dh, hprev, rz, n, ghn,
                  np.ascontiguousarray(weight_hh), np.asarray(sched.offsets, np.int64),
                  np.asarray(sched.sizes, np.int64), dgh, dgin)
    grads = {"weight_hh": dgh.T @ hprev, "bias_hh": dgh.sum(axis=0)}
    dgh[:, 2 * H:] = dgin  # gi's gradient: r and z as gh's, n not scaled by r
    return dgh, State(dh), grads


def cases(rng, T=10, N=64, H=32):
    """zh-shaped layers: padded (the encoder's) and packed (the decoder's, step sizes of
    64 target lengths drawn from 2..10)."""
    lengths = np.sort(rng.integers(2, T + 1, N))[::-1]
    sizes = [int((lengths > t).sum()) for t in range(T)]
    weight_hh = (rng.standard_normal((3 * H, H)) * 0.3).astype(F)
    bias_hh = (rng.standard_normal(3 * H) * 0.1).astype(F)
    h0 = (rng.standard_normal((N, H)) * 0.5).astype(F)
    for name, bs in (("padded (encoder)", None), ("packed (decoder)", sizes)):
        M = T * N if bs is None else sum(bs)
        gi = rng.standard_normal((M, 3 * H)).astype(F)
        yield name, (gi, State(h0), weight_hh, bias_hh, schedule(T, N, bs, False))


def with_compiled(cell, backward: bool = True):
    """``cell`` (the GRU) with the compiled forward (and, with ``backward``, backward)
    where they apply (float32 NumPy arrays, no probe, nothing recorded), its own
    elsewhere."""
    own_forward, own_backward = cell.layer_forward, cell.layer_backward

    def layer_forward(gi, state0, weight_hh, bias_hh, sched, probe=None):
        if probe is None and isinstance(gi, np.ndarray) and gi.dtype == F:
            return compiled_layer_forward(gi, state0, weight_hh, bias_hh, sched)
        return own_forward(gi, state0, weight_hh, bias_hh, sched, probe)

    def layer_backward(dhs, dstate_last, cache, record=None):
        if record is None and isinstance(cache.hs, np.ndarray) and cache.hs.dtype == F:
            return compiled_layer_backward(dhs, dstate_last, cache)
        return own_backward(dhs, dstate_last, cache, record)

    return cell._replace(layer_forward=layer_forward,
                         layer_backward=layer_backward if backward else own_backward)


def time_steps(preset_name: str, data_path, repeats: int) -> None:
    """Median training steps (forward and backward) on one batch, alternating NumPy's GRU
    kernels, the compiled forward, and the compiled forward and backward."""
    import statistics

    from step_breakdown import PARTS, step, trainer_and_batch

    from minis2s.ops import CELLS

    trainer, batch = trainer_and_batch(preset_name, data_path)
    cells = {"NumPy": CELLS["gru"], "forward": with_compiled(CELLS["gru"], backward=False),
             "both": with_compiled(CELLS["gru"])}
    times = {impl: {p: [] for p in PARTS} for impl in cells}
    try:
        for _ in range(repeats + 1):
            for impl, cell in cells.items():
                CELLS["gru"] = cell
                step(trainer, batch, trainer.preset, times[impl])
    finally:
        CELLS["gru"] = cells["NumPy"]
    print(f"preset {preset_name}: one batch of {len(batch.src)} pairs, medians of {repeats} "
          "alternating steps (ms)")
    for impl, parts in times.items():
        med = {p: statistics.median(v[1:]) for p, v in parts.items()}
        print(f"  {impl:<8} forward {med['forward']:.3f}, backward {med['backward']:.3f}, "
              f"step {sum(med.values()):.3f}")


def _layer_times(layer, dhs, cache, repeats: int) -> dict:
    """µs per call, fastest of 5 loops, of each kernel on one layer."""
    runs = {("forward", "NumPy"): lambda: gru_layer_forward(*layer),
            ("forward", "compiled"): lambda: compiled_layer_forward(*layer),
            ("backward", "NumPy"): lambda: gru_layer_backward(dhs, None, cache),
            ("backward", "compiled"): lambda: compiled_layer_backward(dhs, None, cache)}
    return {key: min(timeit.repeat(fn, number=repeats, repeat=5)) / repeats * 1e6
            for key, fn in runs.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--step", metavar="PRESET",
                        help="time training steps of this preset instead")
    parser.add_argument("--data")
    args = parser.parse_args(argv)
    if numba is None:
        print("numba is not installed: pip install numba", file=sys.stderr)
        return 1
    if args.step:
        time_steps(args.step, args.data, args.repeats)
        return 0
    print(f"one GRU layer, T 10, N 64, H 32, float32, numba {numba.__version__}; fastest of "
          f"5 loops of {args.repeats} (us)")
    for name, layer in cases(np.random.default_rng(0)):
        hs, cache = compiled_layer_forward(*layer)  # compiles once
        dhs = np.ones_like(hs)
        compiled_layer_backward(dhs, None, cache)
        times = _layer_times(layer, dhs, cache, args.repeats)
        for way in ("forward", "backward"):
            numpy_us, compiled_us = times[way, "NumPy"], times[way, "compiled"]
            print(f"  {name} {way}: NumPy {numpy_us:.1f}, compiled {compiled_us:.1f} "
                  f"({numpy_us / compiled_us:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
