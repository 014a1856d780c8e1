"""minis2s.compiled: the cells' time loops compiled with Numba (GRU, LSTM, vanilla RNN)
equal the NumPy kernels (to 1e-12 in float64; in float32 to its rounding, with the
polynomial exp) and the plain reference cells, and hand probes,
recorded gradients, large layers and other arrays to the NumPy kernels. Needs numba (the
compiled extra): without it these skip, and the run says so (MINIS2S_REQUIRE_COMPILED=1
makes that a failure); tests/test_compiled_switch.py checks the switch."""

from pathlib import Path

import numpy as np
import pytest

from minis2s import compiled
from minis2s.ops import CELLS, GRU, LSTM, RNN, State
from minis2s.ops.recurrent import schedule

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("numba", reason="numba not installed; pip install 'minis2s[compiled]'")

# (T, N, batch_sizes, reverse): padded forward, an encoder's backward direction, and
# packed steps of shrinking size (a finished sequence's rows keep their gradient)
LAYOUTS = [(6, 5, None, False), (6, 5, None, True), (6, 5, [5, 5, 3, 3, 2, 1], False)]


NUMPY_CELLS = {"gru": GRU, "lstm": LSTM, "rnn": RNN}


@pytest.fixture
def cells_restored():
    """Whatever a test switches, the NumPy cells afterwards."""
    yield
    CELLS.update(NUMPY_CELLS)


def _layer(rng, dtype, T, N, batch_sizes, reverse, H=4, scale=1.0, cell="gru"):
    M = T * N if batch_sizes is None else sum(batch_sizes)
    draw = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    G = NUMPY_CELLS[cell].gates
    state = State(draw(N, H), draw(N, H)) if cell == "lstm" else State(draw(N, H))
    return (draw(M, G * H) * dtype(scale), state, draw(G * H, H), draw(G * H),
            schedule(T, N, batch_sizes, reverse))


@pytest.fixture
def ran(monkeypatch):
    """Which compiled loops ran: "forward" and "backward", once per call, and the cell
    ("lstm forward") for the cells other than the GRU."""
    calls = []
    real = compiled._kernels

    def kernels(cell="gru"):
        forward, backward = real(cell)
        name = "" if cell == "gru" else f"{cell} "
        return (lambda *a: calls.append(name + "forward") or forward(*a),
                lambda *a: calls.append(name + "backward") or backward(*a))

    monkeypatch.setattr(compiled, "_kernels", kernels)
    return calls


def _compare(layer, atol, rtol=0.0, dhs="random", cell="gru"):
    rng = np.random.default_rng(1)
    fast, plain = compiled.COMPILED_CELLS[cell], NUMPY_CELLS[cell]
    hs, cache = fast.layer_forward(*layer)
    hs_np, cache_np = plain.layer_forward(*layer)
    for field in cache._fields:
        if field not in ("h0", "c0", "weight_hh", "schedule"):
            np.testing.assert_allclose(getattr(cache, field), getattr(cache_np, field),
                                       rtol=rtol, atol=atol, err_msg=field)
    up = None if dhs is None else rng.standard_normal(hs.shape).astype(hs.dtype)
    last = State(*(rng.standard_normal(part.shape).astype(hs.dtype) for part in layer[1]
                   if part is not None))
    want = plain.layer_backward(up, last, cache_np)
    for got in (fast.layer_backward(up, last, cache),  # on its own forward's cache
                fast.layer_backward(up, last, cache_np),  # and on NumPy's
                plain.layer_backward(up, last, cache)):  # NumPy's backward on its cache
        np.testing.assert_allclose(got[0], want[0], rtol=rtol * 100, atol=atol * 10)
        for part, part_np in zip(got[1], want[1]):
            assert (part is None) == (part_np is None)
            if part_np is not None:
                np.testing.assert_allclose(part, part_np, rtol=rtol * 100, atol=atol * 10)
        for key in want[2]:
            np.testing.assert_allclose(got[2][key], want[2][key], rtol=rtol * 100,
                                       atol=atol * 100, err_msg=key)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_float64_equals_the_numpy_kernels(layout, cell, ran):
    _compare(_layer(np.random.default_rng(0), np.float64, *layout, cell=cell), atol=1e-12,
             cell=cell)
    name = "" if cell == "gru" else f"{cell} "
    assert ran == [name + "forward", name + "backward", name + "backward"]  # they ran


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("layout", [LAYOUTS[0], LAYOUTS[2]])
def test_float64_without_an_upstream_gradient(layout, cell):
    """dhs None (only the last state's gradient), as an encoder's top layer may get."""
    _compare(_layer(np.random.default_rng(2), np.float64, *layout, cell=cell),
             atol=1e-12, dhs=None, cell=cell)


@pytest.mark.parametrize("cells", [["lstm"], ["rnn", "gru"], None])
def test_warm_up_runs_the_loops_of_the_cells_asked_for(cells, ran):
    assert compiled.warm_up(np.float64, cells) >= 0
    names = cells or ["gru", "lstm", "rnn"]
    assert ran == [("" if c == "gru" else f"{c} ") + way for c in names
                   for way in ("forward", "backward")]


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_to_its_rounding(layout, cell, ran):
    layer = _layer(np.random.default_rng(3), np.float32, *layout, cell=cell)
    assert compiled.COMPILED_CELLS[cell].layer_forward(*layer)[0].dtype == np.float32
    _compare(layer, atol=2e-6, rtol=1e-6, cell=cell)
    name = "" if cell == "gru" else f"{cell} "
    assert ran == [name + way for way in ("forward", "forward", "backward", "backward")]


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_float64_equals_the_plain_reference_cell(cell):
    """Beside the fast kernel, the plain cell a student reads (minis2s.ops.reference, one
    step at a time): the same states and gradients to 1e-12."""
    import importlib

    ref = importlib.import_module(f"minis2s.ops.reference.{cell}")
    rng = np.random.default_rng(9)
    T, N, D, H = 5, 3, 4, 6
    G = NUMPY_CELLS[cell].gates
    params = {"weight_ih": rng.standard_normal((G * H, D)), "bias_ih": rng.standard_normal(G * H),
              "weight_hh": rng.standard_normal((G * H, H)), "bias_hh": rng.standard_normal(G * H)}
    x, h0, c0 = (rng.standard_normal(shape) for shape in ((T, N, D), (N, H), (N, H)))
    gi = (x @ params["weight_ih"].T + params["bias_ih"]).reshape(T * N, G * H)
    paired = cell == "lstm"
    hs, cache = compiled.COMPILED_CELLS[cell].layer_forward(
        gi, State(h0, c0) if paired else State(h0), params["weight_hh"], params["bias_hh"],
        schedule(T, N, None, False))
    ref_hs, ref_last, caches = getattr(ref, f"{cell}_forward")(
        x, (h0, c0) if paired else h0, params)
    np.testing.assert_allclose(hs.reshape(T, N, H), ref_hs, rtol=0, atol=1e-12)
    dhs, dh_last, dc_last = (rng.standard_normal(shape) for shape in ((T, N, H), (N, H), (N, H)))
    dgi, dstate0, grads = compiled.COMPILED_CELLS[cell].layer_backward(
        dhs.reshape(T * N, H), State(dh_last, dc_last) if paired else State(dh_last), cache)
    ref_dx, ref_dstate0, ref_grads = getattr(ref, f"{cell}_backward")(
        dhs, (dh_last, dc_last) if paired else dh_last, caches)
    np.testing.assert_allclose((dgi @ params["weight_ih"]).reshape(T, N, D), ref_dx,
                               rtol=0, atol=1e-12)
    for got, want in zip(dstate0, ref_dstate0 if paired else (ref_dstate0,)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    for name in ("weight_hh", "bias_hh"):
        np.testing.assert_allclose(grads[name], ref_grads[name], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_gates_as_numpy(dtype, cell):
    """Pre-activations far past exp's range: the gates (GRU r, z, n; LSTM i, f, o, g and
    tanh(c); the RNN's h) as NumPy's to the last place near 0 and ±1, nothing NaN or
    infinite."""
    layer = _layer(np.random.default_rng(4), dtype, *LAYOUTS[2], scale=1e4, cell=cell)
    _, cache = compiled.COMPILED_CELLS[cell].layer_forward(*layer)
    _, cache_np = NUMPY_CELLS[cell].layer_forward(*layer)
    assert np.all(np.isfinite(cache.hs))
    fields = {"gru": ("rz", "n"), "lstm": ("acts", "tanh_c"), "rnn": ("hs",)}[cell]
    for field in fields:
        np.testing.assert_allclose(getattr(cache, field), getattr(cache_np, field), rtol=0,
                                   atol=1.2e-7, err_msg=field)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_probes_and_recorded_gradients_go_to_the_numpy_kernels(cell, ran):
    fast, plain = compiled.COMPILED_CELLS[cell], NUMPY_CELLS[cell]
    layer = _layer(np.random.default_rng(5), np.float32, *LAYOUTS[2], cell=cell)
    probe = np.random.default_rng(6).standard_normal((layer[0].shape[0], 4)).astype(
        np.float32)
    hs, cache = fast.layer_forward(*layer, probe)
    np.testing.assert_array_equal(hs, plain.layer_forward(*layer, probe)[0])
    record, want = np.empty_like(hs), np.empty_like(hs)
    got = fast.layer_backward(hs, None, cache, record)
    np.testing.assert_array_equal(got[0], plain.layer_backward(hs, None, cache, want)[0])
    np.testing.assert_array_equal(record, want)
    assert ran == []


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_large_layers_keep_the_numpy_kernels(cell, ran):
    """Above MAX_ROWS_UNITS2 the NumPy kernels run (the compiled ones are not called)."""
    fast, plain = compiled.COMPILED_CELLS[cell], NUMPY_CELLS[cell]
    small = _layer(np.random.default_rng(8), np.float32, 2, 128, None, False, H=32, cell=cell)
    large = _layer(np.random.default_rng(8), np.float32, 2, 64, None, False, H=64, cell=cell)
    name = "" if cell == "gru" else f"{cell} "
    hs, cache = fast.layer_forward(*small)
    fast.layer_backward(hs, None, cache)
    assert ran == [name + "forward", name + "backward"]
    hs, cache = fast.layer_forward(*large)
    fast.layer_backward(hs, None, cache)
    assert ran == [name + "forward", name + "backward"]
    np.testing.assert_array_equal(hs, plain.layer_forward(*large)[0])


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_a_model_trains_alike_with_either(cell, cells_restored, ran):
    """The seed's model with each cell in float64, packed decoder, dropout: loss and every
    gradient the same to 1e-12 whichever loops run."""
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
                      num_layers=2, dropout=0.3, cell=cell)
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
    name = "" if cell == "gru" else f"{cell} "
    assert ran.count(name + "forward") == ran.count(name + "backward") == 4  # 2 layers, 2 stacks
    assert len(ran) == 8
    (loss_np, g_np), (loss_c, g_c) = results["numpy"], results["compiled"]
    assert abs(loss_c - loss_np) <= 1e-12 * abs(loss_np)
    for name in g_np:
        np.testing.assert_allclose(g_c[name], g_np[name], rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_the_benchmark_runs(capsys, monkeypatch, cell):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import compiled_cells

    assert compiled_cells.main(["--repeats", "2", "--cell", cell]) == 0
    out = capsys.readouterr().out
    assert f"one {cell.upper()} layer" in out
    for case in ("padded (encoder)", "packed (decoder)"):
        for way in ("forward", "backward"):
            assert f"  {case} {way}: NumPy " in out
