"""minis2s.compiled: the GRU's time loops compiled with Numba equal the NumPy kernels (to
1e-12 in float64; in float32 to its rounding, with the polynomial exp) and hand probes,
recorded gradients, large layers and other arrays to the NumPy kernels. Needs numba (the
compiled extra): without it these skip, and the run says so (MINIS2S_REQUIRE_COMPILED=1
makes that a failure); tests/test_compiled_switch.py checks the switch."""

import sys
from pathlib import Path

import numpy as np
import pytest

from minis2s import compiled
from minis2s.ops import CELLS, GRU, State
from minis2s.ops.gru import gru_layer_backward, gru_layer_forward
from minis2s.ops.recurrent import schedule

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("numba", reason="numba not installed; pip install 'minis2s[compiled]'")

# (T, N, batch_sizes, reverse): padded forward, an encoder's backward direction, and
# packed steps of shrinking size (a finished sequence's rows keep their gradient)
LAYOUTS = [(6, 5, None, False), (6, 5, None, True), (6, 5, [5, 5, 3, 3, 2, 1], False)]


@pytest.fixture
def gru_restored():
    """Whatever a test switches, the NumPy GRU afterwards."""
    yield
    CELLS["gru"] = GRU


def _layer(rng, dtype, T, N, batch_sizes, reverse, H=4, scale=1.0):
    M = T * N if batch_sizes is None else sum(batch_sizes)
    draw = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    return (draw(M, 3 * H) * dtype(scale), State(draw(N, H)), draw(3 * H, H), draw(3 * H),
            schedule(T, N, batch_sizes, reverse))


@pytest.fixture
def ran(monkeypatch):
    """Which compiled loops ran: "forward" and "backward", once per call."""
    calls = []
    real = compiled._kernels

    def kernels():
        forward, backward = real()
        return (lambda *a: calls.append("forward") or forward(*a),
                lambda *a: calls.append("backward") or backward(*a))

    monkeypatch.setattr(compiled, "_kernels", kernels)
    return calls


def _compare(layer, atol, rtol=0.0, dhs="random"):
    rng = np.random.default_rng(1)
    hs, cache = compiled.layer_forward(*layer)
    hs_np, cache_np = gru_layer_forward(*layer)
    for field in ("hs", "rz", "n", "ghn"):
        np.testing.assert_allclose(getattr(cache, field), getattr(cache_np, field), rtol=rtol,
                                   atol=atol, err_msg=field)
    up = None if dhs is None else rng.standard_normal(hs.shape).astype(hs.dtype)
    last = State(rng.standard_normal(layer[1].h.shape).astype(hs.dtype))
    want = gru_layer_backward(up, last, cache_np)
    for got in (compiled.layer_backward(up, last, cache),  # on its own forward's cache
                compiled.layer_backward(up, last, cache_np),  # and on NumPy's
                gru_layer_backward(up, last, cache)):  # NumPy's backward on its cache
        np.testing.assert_allclose(got[0], want[0], rtol=rtol * 100, atol=atol * 10)
        np.testing.assert_allclose(got[1].h, want[1].h, rtol=rtol * 100, atol=atol * 10)
        for key in want[2]:
            np.testing.assert_allclose(got[2][key], want[2][key], rtol=rtol * 100,
                                       atol=atol * 100, err_msg=key)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float64_equals_the_numpy_kernels(layout, ran):
    _compare(_layer(np.random.default_rng(0), np.float64, *layout), atol=1e-12)
    assert ran == ["forward", "backward", "backward"]  # the compiled loops did run


def test_float64_without_an_upstream_gradient():
    """dhs None (only the last state's gradient), as an encoder's top layer may get."""
    _compare(_layer(np.random.default_rng(2), np.float64, *LAYOUTS[0]), atol=1e-12, dhs=None)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_to_its_rounding(layout, ran):
    layer = _layer(np.random.default_rng(3), np.float32, *layout)
    assert compiled.layer_forward(*layer)[0].dtype == np.float32
    _compare(layer, atol=2e-6, rtol=1e-6)
    assert ran == ["forward", "forward", "backward", "backward"]


def test_float64_equals_the_plain_reference_cell():
    """Beside the fast kernel, the plain GRU a student reads (minis2s.ops.reference.gru,
    one step at a time): the same states and gradients to 1e-12."""
    from minis2s.ops.reference.gru import gru_backward, gru_forward

    rng = np.random.default_rng(9)
    T, N, D, H = 5, 3, 4, 6
    params = {"weight_ih": rng.standard_normal((3 * H, D)), "bias_ih": rng.standard_normal(3 * H),
              "weight_hh": rng.standard_normal((3 * H, H)), "bias_hh": rng.standard_normal(3 * H)}
    x, h0 = rng.standard_normal((T, N, D)), rng.standard_normal((N, H))
    gi = (x @ params["weight_ih"].T + params["bias_ih"]).reshape(T * N, 3 * H)
    hs, cache = compiled.layer_forward(gi, State(h0), params["weight_hh"], params["bias_hh"],
                                       schedule(T, N, None, False))
    ref_hs, ref_last, caches = gru_forward(x, h0, params)
    np.testing.assert_allclose(hs.reshape(T, N, H), ref_hs, rtol=0, atol=1e-12)
    dhs, dlast = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))
    dgi, dh0, grads = compiled.layer_backward(dhs.reshape(T * N, H), State(dlast), cache)
    ref_dx, ref_dh0, ref_grads = gru_backward(dhs, dlast, caches)
    np.testing.assert_allclose((dgi @ params["weight_ih"]).reshape(T, N, D), ref_dx,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(dh0.h, ref_dh0, rtol=0, atol=1e-12)
    for name in ("weight_hh", "bias_hh"):
        np.testing.assert_allclose(grads[name], ref_grads[name], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_gates_as_numpy(dtype):
    """Pre-activations far past exp's range: r, z and n as NumPy's to the last place near
    0 and 1, nothing NaN or infinite."""
    layer = _layer(np.random.default_rng(4), dtype, *LAYOUTS[2], scale=1e4)
    _, cache = compiled.layer_forward(*layer)
    _, cache_np = gru_layer_forward(*layer)
    assert np.all(np.isfinite(cache.hs))
    np.testing.assert_allclose(cache.rz, cache_np.rz, rtol=0, atol=1.2e-7)
    np.testing.assert_allclose(cache.n, cache_np.n, rtol=0, atol=1.2e-7)


def test_probes_and_recorded_gradients_go_to_the_numpy_kernels():
    layer = _layer(np.random.default_rng(5), np.float32, *LAYOUTS[2])
    probe = np.random.default_rng(6).standard_normal((layer[0].shape[0], 4)).astype(
        np.float32)
    hs, cache = compiled.layer_forward(*layer, probe)
    np.testing.assert_array_equal(hs, gru_layer_forward(*layer, probe)[0])
    record, want = np.empty_like(hs), np.empty_like(hs)
    got = compiled.layer_backward(hs, None, cache, record)
    np.testing.assert_array_equal(got[0], gru_layer_backward(hs, None, cache, want)[0])
    np.testing.assert_array_equal(record, want)


def test_large_layers_keep_the_numpy_kernels(ran):
    """Above MAX_ROWS_UNITS2 the NumPy kernels run (the compiled ones are not called)."""
    small = _layer(np.random.default_rng(8), np.float32, 2, 128, None, False, H=32)
    large = _layer(np.random.default_rng(8), np.float32, 2, 64, None, False, H=64)
    hs, cache = compiled.layer_forward(*small)
    compiled.layer_backward(hs, None, cache)
    assert ran == ["forward", "backward"]
    hs, cache = compiled.layer_forward(*large)
    compiled.layer_backward(hs, None, cache)
    assert ran == ["forward", "backward"]
    np.testing.assert_array_equal(hs, gru_layer_forward(*large)[0])


def test_a_model_trains_alike_with_either(gru_restored, ran):
    """The seed's model in float64, packed decoder, dropout: loss and every gradient the
    same to 1e-12 whichever loops run."""
    from minis2s import gradcheck as gc
    from minis2s.backend import get_backend
    from minis2s.data import make_batch
    from minis2s.model import (
        ModelConfig,
        draw_dropout_masks,
        init_params,
        seq2seq_backward,
        seq2seq_forward,
    )

    f64 = get_backend("numpy", "float64")
    cfg = ModelConfig(src_vocab_size=9, tgt_vocab_size=11, embed_size=4, num_hiddens=5,
                      num_layers=2, dropout=0.3)
    rng = np.random.default_rng(7)
    params = init_params(cfg, f64, rng)
    b = gc.make_batch(rng, cfg, 6, 5, 7)
    batch = make_batch(b.src, b.src_valid_len, b.tgt, np.array([3, 7, 1, 1, 7, 4]), bos=2)
    masks = draw_dropout_masks(cfg, f64, f64.generator(3), 6, 5, 7)
    results = {}
    for kernels in ("numpy", "compiled"):
        compiled.use(kernels)
        assert compiled.in_use() == kernels
        loss, cache = seq2seq_forward(params, cfg, batch, masks)
        results[kernels] = float(loss), seq2seq_backward(1.0, cache).params
    assert ran.count("forward") == ran.count("backward") == 4  # 2 layers, 2 stacks
    (loss_np, g_np), (loss_c, g_c) = results["numpy"], results["compiled"]
    assert abs(loss_c - loss_np) <= 1e-12 * abs(loss_np)
    for name in g_np:
        np.testing.assert_allclose(g_c[name], g_np[name], rtol=0, atol=1e-12, err_msg=name)


def test_the_benchmark_runs(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import compiled_gru

    assert compiled_gru.main(["--repeats", "2"]) == 0
    out = capsys.readouterr().out
    for case in ("padded (encoder)", "packed (decoder)"):
        for way in ("forward", "backward"):
            assert f"  {case} {way}: NumPy " in out
