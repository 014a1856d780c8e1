"""A decoder of other units than the encoder's state (``train --decoder-hiddens``): the
bridge that maps the encoder's final state to the decoder's first one, its gradients, the
model around it on both decoders and every cell, checkpoints, decoding, and the default
(equal widths) left as it was."""

import json

import numpy as np
import pytest

from minis2s import gradcheck as gc
from minis2s.backend import get_backend
from minis2s.checkpoint import Checkpoint, load, save
from minis2s.cli import main
from minis2s.data import DataSpec, Vocab
from minis2s.decode import greedy_decode, translations
from minis2s.gradcheck.cases import SCALE_FLOOR
from minis2s.model import (
    DECODERS,
    ModelConfig,
    init_params,
    param_shapes,
    seq2seq_backward,
    seq2seq_forward,
)
from minis2s.ops import CELLS, bridge_backward, bridge_forward
from minis2s.settings import ConfigError

F64 = get_backend("numpy", "float64")
MODELS, CELL_NAMES = tuple(DECODERS), tuple(CELLS)


def _cfg(model="seq2seq", cell="gru", Wd=None, bidirectional=True, **kw):
    return ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3, num_hiddens=3,
                       num_layers=2, dropout=kw.pop("dropout", 0.2),
                       bidirectional=bidirectional, cell=cell, model=model,
                       decoder_hiddens=Wd, **kw)


# --- the op -------------------------------------------------------------------------------

def test_the_bridge_op_has_exact_gradients():
    """x, W and b through tanh(x Wᵀ + b), random upstream gradients, float64."""
    rng = np.random.default_rng(0)
    rows = gc.check_bridge(rng) + gc.check_bridge(rng, N=1, D=6, K=2)
    assert {r.name for r in rows} == {"x", "weight", "bias"}
    assert max(r.error for r in rows) <= gc.TOLERANCE


def test_the_bridge_op_is_its_formula_and_keeps_its_inputs():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    kept = (x.copy(), w.copy(), b.copy())
    out, cache = bridge_forward(x, w, b)
    np.testing.assert_allclose(out, np.tanh(x @ w.T + b), rtol=0, atol=1e-15)
    dout = rng.standard_normal(out.shape)
    first = bridge_backward(dout, cache)
    second = bridge_backward(dout, cache)  # the cache is left as it was
    np.testing.assert_array_equal(first[0], second[0])
    for a, k in zip((x, w, b), kept):
        np.testing.assert_array_equal(a, k)


# --- the model ----------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize(("packed", "Wd", "bidirectional"),
                         [(True, 5, True), (False, 2, True), (True, 2, False)],
                         ids=["packed-larger-bi", "padded-smaller-bi", "packed-smaller"])
def test_a_decoder_of_other_units_has_exact_gradients(model, cell, packed, Wd, bidirectional):
    """Every parameter, the bridge's among them, against finite differences (float64,
    random upstream factor, dropout masks fixed), larger and smaller than the encoder's
    width, on the packed (training) path and the padded one."""
    cfg = _cfg(model, cell, Wd, bidirectional)
    assert cfg.has_bridge and cfg.decoder_units == Wd
    rows = gc.check_seq2seq(np.random.default_rng(2), cfg, N=3, T_src=3, T_tgt=4,
                            packed=packed, scale_floor=SCALE_FLOOR)
    names = {r.name for r in rows}
    assert "decoder.bridge.weight" in names and "decoder.bridge.bias" in names
    assert ("decoder.bridge_c.weight" in names) == CELLS[cell].paired
    assert max(r.error for r in rows) <= gc.TOLERANCE, max(rows, key=lambda r: r.error)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_the_packed_path_is_the_padded_one_with_a_bridge(model, cell):
    cfg = _cfg(model, cell, 5, dropout=0.0)
    rng = np.random.default_rng(3)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 5, 4, 6)
    out = []
    for packed in (True, False):
        loss, cache = seq2seq_forward(params, cfg, batch, packed=packed)
        out.append((float(loss), seq2seq_backward(1.0, cache).params))
    assert abs(out[0][0] - out[1][0]) <= 1e-12
    for name, g in out[0][1].items():
        np.testing.assert_allclose(g, out[1][1][name], rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("model", MODELS)
def test_the_bridge_and_the_attention_take_the_sizes_they_say(model):
    """W = dirs·H = 6 (keys, values, the context), Wd = 4 (the decoder's cell, the query,
    the dense layer); the bridge maps W to L·Wd (h's, and c's for the LSTM)."""
    for cell in CELL_NAMES:
        shapes = param_shapes(_cfg(model, cell, 4))
        W, Wd, L, E, G = 6, 4, 2, 3, CELLS[cell].gates
        assert shapes["decoder.bridge.weight"] == (L * Wd, W)
        assert shapes["decoder.bridge.bias"] == (L * Wd,)
        assert (shapes.get("decoder.bridge_c.weight") == (L * Wd, W)) == CELLS[cell].paired
        assert shapes["decoder.rnn.weight_ih_l0"] == (G * Wd, E + W)
        assert shapes["decoder.rnn.weight_hh_l1"] == (G * Wd, Wd)
        assert shapes["decoder.dense.weight"] == (6, Wd)
        if model == "attention":
            assert shapes["decoder.attention.W_k.weight"] == (3, W)
            assert shapes["decoder.attention.W_q.weight"] == (3, Wd)


# losses and squared gradient norms of minis2s before --decoder-hiddens existed, for
# _cfg(model, cell, bidirectional=True, dropout=0.0) with embed 3, H 4 (rng seed 3)
BEFORE = {("seq2seq", "gru"): (3.892318770410147, 1.421497107341543),
          ("seq2seq", "lstm"): (3.7526616096663226, 0.4565587966585382),
          ("attention", "gru"): (3.560783173809774, 0.5957450297821439),
          ("attention", "lstm"): (4.856716978210391, 0.44643450102359017)}


@pytest.mark.parametrize(("model", "cell"), list(BEFORE))
@pytest.mark.parametrize("given", [None, 8], ids=["left-out", "equal"])
def test_equal_widths_are_the_model_as_before(model, cell, given):
    """Left out, or given equal to the encoder's width (2·4), the decoder has no bridge:
    the same parameters (names, shapes, initial values) and the same loss and gradients
    as before the option existed."""
    cfg = ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3, num_hiddens=4,
                      num_layers=2, dropout=0.0, bidirectional=True, cell=cell, model=model,
                      decoder_hiddens=given)
    assert not cfg.has_bridge and cfg.decoder_units == 8
    assert not any("bridge" in name for name in param_shapes(cfg))
    assert len(param_shapes(cfg)) == {"seq2seq": 28, "attention": 31}[model]
    rng = np.random.default_rng(3)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 4, 5, 6)
    loss, cache = seq2seq_forward(params, cfg, batch)
    grads = seq2seq_backward(1.0, cache).params
    norm = sum(float((g * g).sum()) for g in grads.values())
    want_loss, want_norm = BEFORE[(model, cell)]
    assert abs(float(loss) - want_loss) <= 1e-12 and abs(norm - want_norm) <= 1e-12


# (against PyTorch: tests/test_parity_torch.py::test_parity_with_a_bridge_or_a_deep_output;
# decoding step by step: tests/test_registry.py::test_each_decoders_step_is_its_forward_...)


# --- decoding, checkpoints, settings ------------------------------------------------------

def _vocab(size):
    return Vocab([[f"w{i}" for i in range(size - 4)]], min_freq=1)


@pytest.mark.parametrize("model", MODELS)
def test_greedy_and_beam_search_decode_with_a_bridge(model):
    """Greedy decoding and beam search run from the bridge's state (beam search selects
    its rows as hypotheses are kept); a beam of 1 is the greedy translation."""
    cfg = ModelConfig(src_vocab_size=12, tgt_vocab_size=9, embed_size=4, num_hiddens=5,
                      num_layers=2, dropout=0.0, model=model, cell="lstm",
                      decoder_hiddens=3)
    params = init_params(cfg, F64, np.random.default_rng(6))
    src_vocab, tgt_vocab = _vocab(12), _vocab(9)
    (greedy,) = greedy_decode(params, cfg, np.array([src_vocab[["w0", "w1", "w2", "<eos>"]]]),
                              tgt_vocab, 5, F64)
    (beam1,) = translations(params, cfg, src_vocab, tgt_vocab, ["w0 w1 w2"], 5, F64, beam=1)
    (beam3,) = translations(params, cfg, src_vocab, tgt_vocab, ["w0 w1 w2"], 5, F64, beam=3)
    assert beam1.tokens == tgt_vocab.to_tokens(greedy.tokens)
    assert len(beam3.tokens) <= 5 and set(beam3.tokens) <= set(tgt_vocab.idx_to_token)


def test_the_context_from_the_decoder_is_refused_with_a_bridge():
    cfg = ModelConfig(src_vocab_size=12, tgt_vocab_size=9, embed_size=4, num_hiddens=5,
                      num_layers=1, dropout=0.0, decoder_hiddens=3)
    params = init_params(cfg, F64, np.random.default_rng(7))
    with pytest.raises(ValueError, match="as wide as the encoder's state"):
        greedy_decode(params, cfg, np.array([[4, 5]]), _vocab(9), 4, F64,
                      context_from="decoder")


@pytest.mark.parametrize("model", MODELS)
def test_a_checkpoint_keeps_the_decoders_units(tmp_path, model):
    """Saved and loaded: the setting, every parameter (the bridge's too). A model as wide
    as its encoder writes no decoder_hiddens, so its file is as before."""
    src, tgt = _vocab(10), _vocab(8)
    cfg = ModelConfig(src_vocab_size=len(src), tgt_vocab_size=len(tgt), embed_size=3,
                      num_hiddens=4, num_layers=2, dropout=0.1, cell="lstm", model=model,
                      decoder_hiddens=6)
    params = {k: np.asarray(v) for k, v in init_params(cfg, F64, np.random.default_rng(8)
                                                       ).items()}
    path = save(tmp_path / "c.npz", Checkpoint(params, cfg, DataSpec(num_steps=5), src, tgt))
    back = load(path)
    assert back.config == cfg and back.config.decoder_hiddens == 6
    assert set(back.params) == set(params)
    for name, value in params.items():
        np.testing.assert_array_equal(back.params[name], value)
    with np.load(path) as npz:
        assert json.loads(str(npz["meta"]))["model"]["decoder_hiddens"] == 6
    plain = ModelConfig(src_vocab_size=len(src), tgt_vocab_size=len(tgt), embed_size=3,
                        num_hiddens=4, num_layers=2, model=model)
    params = {k: np.asarray(v) for k, v in init_params(plain, F64, np.random.default_rng(8)
                                                       ).items()}
    path = save(tmp_path / "p.npz", Checkpoint(params, plain, DataSpec(num_steps=5), src, tgt))
    with np.load(path) as npz:
        assert "decoder_hiddens" not in json.loads(str(npz["meta"]))["model"]
    assert load(path).config == plain


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "8"])
def test_nonsense_decoder_units_are_refused_in_one_line(value, capsys):
    with pytest.raises(ConfigError, match="decoder_hiddens must be a whole number >= 1"):
        _cfg(Wd=value)
    if isinstance(value, int) and not isinstance(value, bool):
        assert main(["train", "--task", "reverse", "--decoder-hiddens", str(value),
                     "--epochs", "1", "--quiet", "--out", "never-written"]) == 2
        err = capsys.readouterr().err
        assert "--decoder-hiddens must be a whole number >= 1" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_training_with_a_smaller_decoder_saves_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    task = ["--task", "reverse", "--max-len", "4", "--train-size", "100", "--valid-size",
            "0", "--test-size", "10", "--num-hiddens", "6", "--embed-size", "4",
            "--num-layers", "1", "--quiet"]
    assert main(["train", *task, "--decoder-hiddens", "4", "--epochs", "1",
                 "--out", str(out)]) == 0
    ck = load(out / "checkpoint.npz")
    assert ck.config.decoder_hiddens == 4 and ck.params["decoder.bridge.weight"].shape == (4, 6)
    assert main(["train", "--resume", "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    assert load(out / "checkpoint.npz").config.decoder_hiddens == 4
    assert main(["info", str(out / "checkpoint.npz")]) == 0
    assert "decoder_hiddens 4" in capsys.readouterr().out
