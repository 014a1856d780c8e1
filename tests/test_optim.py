"""Adam and clipping on the flat buffers."""

import math

import numpy as np
import pytest

from minis2s import optim
from minis2s.params import ParamSet


def _buffers(size, seed=0):
    rng = np.random.default_rng(seed)
    params = ParamSet({"w": (size,)}, np, np.dtype("float32"))
    params.flat[:] = rng.standard_normal(size)
    grads = params.zeros_like()
    grads.flat[:] = rng.standard_normal(size)
    return params, grads


def _blocked_and_whole(size, steps=3):
    """Adam as it runs (by blocks of CPU_BLOCK) and Adam made to take the buffer whole."""
    params, grads = _buffers(size)
    blocked = optim.Adam(params.copy(), lr=0.01)
    whole = optim.Adam(params.copy(), lr=0.01)
    whole._block, whole._scratch = size, np.empty(size, np.float32)
    assert blocked._block == optim.CPU_BLOCK and size > 2 * optim.CPU_BLOCK
    assert size % optim.CPU_BLOCK  # a ragged last block
    for _ in range(steps):
        blocked.step(grads)
        whole.step(grads)
    assert not np.array_equal(blocked.params.flat, params.flat)  # the steps did move
    for name in ("params", "m", "v"):
        a, b = getattr(blocked, name).flat, getattr(whole, name).flat
        assert np.array_equal(a, b), f"{name} differs at {np.flatnonzero(a != b)[:5]}..."


@pytest.mark.parametrize("blocks, extra", [(2, 1), (3, 7), (5, -3)])
def test_blocked_adam_is_bit_identical_to_whole_buffer_adam(blocks, extra):
    """Several blocks of the real size, the last one ragged (1, 7, and CPU_BLOCK - 3 long)."""
    _blocked_and_whole(blocks * optim.CPU_BLOCK + extra)


@pytest.mark.parametrize("size", [2 * 64 + 1, 7 * 64 + 5, 1000, 40 * 64 + 63])
def test_small_blocked_adam_is_bit_identical_to_whole_buffer_adam(size, monkeypatch):
    """Blocks of 64: many blocks (up to 41) for little work, and a ragged end each time."""
    monkeypatch.setattr(optim, "CPU_BLOCK", 64)
    _blocked_and_whole(size)


def test_adam_first_step_moves_each_parameter_by_lr():
    """After one step m = (1 - b1) g and v = (1 - b2) g^2, so the bias-corrected update is
    lr * g / (|g| + eps): about lr times the sign of g, in every block."""
    params, grads = _buffers(2 * optim.CPU_BLOCK + 3, seed=1)
    start = params.flat.astype(np.float64)
    opt = optim.Adam(params, lr=0.01)
    opt.step(grads)
    g = grads.flat.astype(np.float64)
    # float32 parameters of size up to ~5 carry an absolute rounding error of ~5e-7
    np.testing.assert_allclose(start - params.flat, 0.01 * g / (np.abs(g) + 1e-8), rtol=0,
                               atol=1e-6)


def test_clip_scales_to_max_norm_and_returns_the_norm_before():
    params, grads = _buffers(1000, seed=2)
    norm = math.sqrt(float(np.sum(grads.flat.astype(np.float64) ** 2)))
    assert optim.clip_grad_norm_(grads, 1.0) == pytest.approx(norm, rel=1e-6)
    assert float(np.linalg.norm(grads.flat.astype(np.float64))) == pytest.approx(1.0, rel=1e-5)
    before = grads.flat.copy()
    optim.clip_grad_norm_(grads, 2.0)  # already below: untouched
    assert np.array_equal(grads.flat, before)
