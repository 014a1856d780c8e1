"""benchmarks/compiled_gru.py, the compiled GRU kernels behind a row of
docs/performance.md: they compute what the NumPy kernels compute (2e-6 absolute in the
forward, 1e-4 relative in the backward), in either direction of time, the forward's
cache serves either backward, and saturated gates come out as NumPy's. Needs numba."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from minis2s.ops import GRU, State
from minis2s.ops.gru import gru_layer_backward, gru_layer_forward
from minis2s.ops.recurrent import schedule

pytest.importorskip("numba")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
compiled = importlib.import_module("compiled_gru")


@pytest.mark.parametrize("case", [0, 1])
def test_same_states_gates_and_gradients_as_numpy(case):
    name, layer = list(compiled.cases(np.random.default_rng(case)))[case]
    hs, cache = compiled.compiled_layer_forward(*layer)
    hs_np, cache_np = gru_layer_forward(*layer)
    for field in ("hs", "rz", "n", "ghn"):
        np.testing.assert_allclose(getattr(cache, field), getattr(cache_np, field), rtol=0,
                                   atol=2e-6, err_msg=f"{name}: {field}")
    rng = np.random.default_rng(9)
    dhs = rng.standard_normal(hs.shape).astype(np.float32)
    dlast = State(rng.standard_normal(layer[1].h.shape).astype(np.float32))
    want = gru_layer_backward(dhs, dlast, cache_np)
    for got in (gru_layer_backward(dhs, dlast, cache),  # the NumPy backward on its cache
                compiled.compiled_layer_backward(dhs, dlast, cache),
                compiled.compiled_layer_backward(dhs, dlast, cache_np)):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[1].h, want[1].h, rtol=1e-4, atol=1e-5)
        for key in want[2]:
            np.testing.assert_allclose(got[2][key], want[2][key], rtol=1e-4, atol=1e-4)


def test_steps_in_reverse_as_numpy():
    """The schedule of an encoder's backward direction: last step first."""
    _, (gi, state0, w, b, _) = next(compiled.cases(np.random.default_rng(6)))
    sched = schedule(10, 64, None, True)
    hs, cache = compiled.compiled_layer_forward(gi, state0, w, b, sched)
    hs_np, cache_np = gru_layer_forward(gi, state0, w, b, sched)
    np.testing.assert_allclose(hs, hs_np, rtol=0, atol=2e-6)
    got = compiled.compiled_layer_backward(hs, None, cache)
    want = gru_layer_backward(hs, None, cache_np)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-5)


def test_backward_from_the_last_state_alone():
    """No gradient from the outputs (dhs None), as the encoder's top layer may get."""
    _, layer = next(compiled.cases(np.random.default_rng(5)))
    _, cache = gru_layer_forward(*layer)
    dlast = State(np.ones_like(layer[1].h))
    got = compiled.compiled_layer_backward(None, dlast, cache)
    want = gru_layer_backward(None, dlast, cache)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1].h, want[1].h, rtol=1e-4, atol=1e-5)


def test_saturated_gates_match_numpy():
    """Pre-activations far past exp's float32 range: r, z and n come out as NumPy's to
    float32's last place near 0 and 1, and nothing is NaN or infinite."""
    _, (gi, state0, w, b, sched) = next(compiled.cases(np.random.default_rng(3)))
    gi = gi * np.float32(1e4)
    _, cache = compiled.compiled_layer_forward(gi, state0, w, b, sched)
    _, cache_np = gru_layer_forward(gi, state0, w, b, sched)
    assert np.all(np.isfinite(cache.hs))
    np.testing.assert_allclose(cache.rz, cache_np.rz, rtol=0, atol=1.2e-7)
    np.testing.assert_allclose(cache.n, cache_np.n, rtol=0, atol=1.2e-7)


def test_float64_keeps_the_numpy_kernels():
    cell = compiled.with_compiled(GRU)
    rng = np.random.default_rng(4)
    gi = rng.standard_normal((12, 9))
    w, b, h0 = rng.standard_normal((9, 3)), rng.standard_normal(9), np.zeros((4, 3))
    sched = schedule(3, 4, None, False)
    hs, cache = cell.layer_forward(gi, State(h0), w, b, sched)
    np.testing.assert_array_equal(hs, gru_layer_forward(gi, State(h0), w, b, sched)[0])
    assert hs.dtype == np.float64
    dgi = cell.layer_backward(hs, None, cache)[0]
    np.testing.assert_array_equal(dgi, gru_layer_backward(hs, None, cache)[0])


def test_the_timing_runs(capsys):
    assert compiled.main(["--repeats", "2"]) == 0
    out = capsys.readouterr().out
    for case in ("padded (encoder)", "packed (decoder)"):
        for way in ("forward", "backward"):
            assert f"  {case} {way}: NumPy " in out
