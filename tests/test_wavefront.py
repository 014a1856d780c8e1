"""benchmarks/wavefront.py, the trial behind a row of docs/performance.md: its GRU stack
run as a wavefront equals minis2s's layer-by-layer stack, so what it timed is the same
work. Both run in float64 from the same weights, projections, masks and upstream
gradients; outputs, final states and every gradient agree to 1e-12."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from minis2s.ops import GRU, State, stack_backward, stack_forward, stack_param_shapes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
wf = importlib.import_module("wavefront")


def _params(rng, D, H, L):
    return {k: rng.standard_normal(s) * 0.5 for k, s in stack_param_shapes(3, D, H, L).items()}


def _same(a, b):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def _compare(params, L, proj, T, N, *, state0=None, masks=None, batch_sizes=None, dout=None,
             dstate=None, record=False):
    H = params["weight_hh_l0"].shape[1]
    given = proj if batch_sizes is not None else proj.reshape(T, N, 3 * H)  # as the stack
    (out, state_n), cache = stack_forward(GRU, None, params, L, state0=state0,
                                          dropout_masks=masks, batch_sizes=batch_sizes,
                                          input_proj=[given])
    g = stack_backward(dout, dstate, cache, record)
    zeros = State(np.zeros((L, N, H)))
    (w_out, w_hn), wcache = wf.wave_forward(proj, state0 or zeros, *wf.stack_params(params, L),
                                            T, N, batch_sizes, masks)
    w = wf.wave_backward(dout, None if dstate is None else dstate.h, wcache, record)
    _same(w_out, out.reshape(-1, H))
    if batch_sizes is None:
        _same(w_hn, state_n.h)
    else:
        assert w_hn is None and state_n is None
    _same(w.dgi0, g.dproj[0].reshape(-1, 3 * H))
    _same(w.dh0, g.dstate0.h)
    grads = wf.wave_grads(w)
    assert set(grads) == set(g.params)
    for name in grads:
        np.testing.assert_allclose(grads[name], g.params[name], rtol=0, atol=1e-12,
                                   err_msg=name)
    if record:
        for a, b in zip(w.recorded, g.recorded, strict=True):
            _same(a, b)
    return w


@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize("dropout", [False, True])
def test_padded_stack_equals_layer_by_layer(L, dropout):
    rng = np.random.default_rng(L + 10 * dropout)
    T, N, H = 5, 4, 6
    masks = [rng.choice([0.0, 2.0], (T * N, H)) for _ in range(L - 1)] if dropout else None
    _compare(_params(rng, 3, H, L), L, rng.standard_normal((T * N, 3 * H)), T, N,
             state0=State(rng.standard_normal((L, N, H))), masks=masks,
             dout=rng.standard_normal((T * N, H)), dstate=State(rng.standard_normal((L, N, H))))


@pytest.mark.parametrize("record", [False, True])
def test_packed_stack_equals_layer_by_layer(record):
    """The decoder's case: packed steps of shrinking size, dropout between layers; a
    finished sequence's slots change nothing."""
    rng = np.random.default_rng(3)
    L, H, N = 3, 5, 6
    batch_sizes = [6, 6, 4, 4, 2, 1]
    M = sum(batch_sizes)
    _compare(_params(rng, 4, H, L), L, rng.standard_normal((M, 3 * H)), len(batch_sizes), N,
             state0=State(rng.standard_normal((L, N, H))),
             masks=[rng.choice([0.0, 1.25], (M, H)) for _ in range(L - 1)],
             batch_sizes=batch_sizes, dout=rng.standard_normal((M, H)), record=record)


def test_gradient_from_the_final_state_alone():
    rng = np.random.default_rng(4)
    L, T, N, H = 2, 4, 3, 5
    _compare(_params(rng, 2, H, L), L, rng.standard_normal((T * N, 3 * H)), T, N,
             dstate=State(rng.standard_normal((L, N, H))))


def test_saturated_gates_stay_finite_in_the_skewed_slots():
    """exp overflows to inf inside the sigmoid: the same exact 0 / 1 gates as the stack,
    and no NaN reaches a sum from a slot no step uses."""
    rng = np.random.default_rng(6)
    L, H, batch_sizes = 2, 4, [3, 2, 2, 1]
    w = _compare(_params(rng, 3, H, L), L, rng.standard_normal((8, 3 * H)) * 1e4, 4, 3,
                 batch_sizes=batch_sizes, dout=rng.standard_normal((8, H)))
    assert all(np.all(np.isfinite(g)) for g in wf.wave_grads(w).values())


def test_the_timing_runs(capsys):
    assert wf.main(["--repeats", "2"]) == 0
    out = capsys.readouterr().out
    for case in ("padded (encoder)", "packed (decoder)"):
        assert f"  {case}: forward " in out
