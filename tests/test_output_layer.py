"""The decoder's output layer (``train --output-layer``): the deep output op, the model
around it on both decoders and every cell, decoding, checkpoints, and the dense layer (the
default) left as it was. PyTorch's twin is in tests/test_parity_torch.py."""

import json

import numpy as np
import pytest

from minis2s import gradcheck as gc
from minis2s.backend import get_backend
from minis2s.checkpoint import Checkpoint, load, save
from minis2s.cli import main
from minis2s.data import DataSpec, Vocab
from minis2s.gradcheck.cases import SCALE_FLOOR
from minis2s.model import (
    DECODERS,
    ModelConfig,
    init_params,
    param_shapes,
    seq2seq_backward,
    seq2seq_forward,
)
from minis2s.ops import CELLS, deep_output_forward
from minis2s.settings import ConfigError

F64 = get_backend("numpy", "float64")
MODELS, CELL_NAMES = tuple(DECODERS), tuple(CELLS)


def _cfg(model="seq2seq", cell="gru", output_layer="deep", **kw):
    return ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3, num_hiddens=3,
                       num_layers=2, dropout=kw.pop("dropout", 0.2),
                       bidirectional=kw.pop("bidirectional", True), cell=cell, model=model,
                       output_layer=output_layer, **kw)


@pytest.mark.parametrize("per_sequence", [True, False], ids=["per-sequence", "per-row"])
def test_the_deep_output_op_has_exact_gradients(per_sequence):
    """The state, the context, U, b and the embedding table, random upstream gradients,
    float64; a vocabulary smaller and larger than the rows (both embedding ways)."""
    rng = np.random.default_rng(0)
    rows = (gc.check_deep_output(rng, per_sequence=per_sequence)
            + gc.check_deep_output(rng, per_sequence=per_sequence, T=2, N=2, V=9))
    assert {r.name for r in rows} == {"state", "context", "embedding", "weight", "bias"}
    assert max(r.error for r in rows) <= gc.TOLERANCE


def test_the_deep_output_op_is_its_formula():
    rng = np.random.default_rng(1)
    T, N, Wd, W, E, K, V = 3, 2, 4, 3, 2, 5, 6
    state, context = rng.standard_normal((T, N, Wd)), rng.standard_normal((N, W))
    ids, emb = rng.integers(0, V, (T, N)), rng.standard_normal((V, E))
    U, b = rng.standard_normal((K, Wd + W + E)), rng.standard_normal(K)
    hidden, _ = deep_output_forward(state, context, ids, emb, U, b, per_sequence=True)
    x = np.concatenate([state, np.broadcast_to(context, (T, N, W)), emb[ids]], axis=2)
    np.testing.assert_allclose(hidden, np.tanh(x @ U.T + b), rtol=0, atol=1e-13)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize(("packed", "bidirectional", "Wd"),
                         [(True, True, None), (False, True, None), (True, False, 4)],
                         ids=["packed-bi", "padded-bi", "packed-with-a-bridge"])
def test_a_deep_output_has_exact_gradients(model, cell, packed, bidirectional, Wd):
    """Every parameter (decoder.deep's, and the embedding and context it reads too)
    against finite differences, float64, dropout masks fixed, packed and padded, and
    with a decoder of other units than the encoder's."""
    cfg = _cfg(model, cell, bidirectional=bidirectional, decoder_hiddens=Wd)
    rows = gc.check_seq2seq(np.random.default_rng(2), cfg, N=3, T_src=3, T_tgt=4,
                            packed=packed, scale_floor=SCALE_FLOOR)
    assert {"decoder.deep.weight", "decoder.deep.bias"} <= {r.name for r in rows}
    assert max(r.error for r in rows) <= gc.TOLERANCE, max(rows, key=lambda r: r.error)


@pytest.mark.parametrize("model", MODELS)
def test_the_deep_output_reads_what_it_says(model):
    """U (Wd, Wd + W + E): the state, the context (W = dirs·H) and the embedding; the
    dense layer then reads its Wd units."""
    shapes = param_shapes(_cfg(model))
    assert shapes["decoder.deep.weight"] == (6, 6 + 6 + 3)
    assert shapes["decoder.deep.bias"] == (6,)
    assert shapes["decoder.dense.weight"] == (6, 6)
    dense = param_shapes(_cfg(model, output_layer="dense"))
    assert not any("deep" in name for name in dense)
    assert set(shapes) - set(dense) == {"decoder.deep.weight", "decoder.deep.bias"}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_the_packed_path_is_the_padded_one_with_a_deep_output(model, cell):
    cfg = _cfg(model, cell, dropout=0.0)
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


# (against PyTorch: tests/test_parity_torch.py::test_parity_with_a_bridge_or_a_deep_output;
# decoding step by step: tests/test_registry.py::test_each_decoders_step_is_its_forward_...)


def _vocab(size):
    return Vocab([[f"w{i}" for i in range(size - 4)]], min_freq=1)


@pytest.mark.parametrize("model", MODELS)
def test_a_checkpoint_keeps_the_output_layer(tmp_path, model):
    """Saved and loaded with decoder.deep's parameters; a dense model writes no
    output_layer, so its file is as before."""
    src, tgt = _vocab(10), _vocab(8)
    cfg = ModelConfig(src_vocab_size=len(src), tgt_vocab_size=len(tgt), embed_size=3,
                      num_hiddens=4, num_layers=2, model=model, output_layer="deep")
    params = {k: np.asarray(v) for k, v in init_params(cfg, F64, np.random.default_rng(8)
                                                       ).items()}
    path = save(tmp_path / "c.npz", Checkpoint(params, cfg, DataSpec(num_steps=5), src, tgt))
    back = load(path)
    assert back.config == cfg
    for name, value in params.items():
        np.testing.assert_array_equal(back.params[name], value)
    with np.load(path) as npz:
        assert json.loads(str(npz["meta"]))["model"]["output_layer"] == "deep"
    plain = ModelConfig(src_vocab_size=len(src), tgt_vocab_size=len(tgt), embed_size=3,
                        num_hiddens=4, num_layers=2, model=model)
    params = {k: np.asarray(v) for k, v in init_params(plain, F64, np.random.default_rng(8)
                                                       ).items()}
    path = save(tmp_path / "p.npz", Checkpoint(params, plain, DataSpec(num_steps=5), src, tgt))
    with np.load(path) as npz:
        assert "output_layer" not in json.loads(str(npz["meta"]))["model"]
    assert load(path).config.output_layer == "dense"


@pytest.mark.parametrize("value", ["maxout", "", "Deep", None, 1])
def test_an_unknown_output_layer_is_refused_in_one_line(value, capsys):
    with pytest.raises(ConfigError, match="output_layer must be one of dense, deep"):
        _cfg(output_layer=value)
    if isinstance(value, str) and value:
        with pytest.raises(SystemExit) as stop:  # argparse refuses it, as any choice
            main(["train", "--task", "reverse", "--output-layer", value, "--epochs", "1",
                  "--quiet", "--out", "never-written"])
        assert stop.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]  # after argparse's usage
        assert last.startswith("minis2s train: error: argument --output-layer: invalid "
                               "choice")


def test_training_with_a_deep_output_saves_resumes_and_decodes(tmp_path, capsys):
    out = tmp_path / "run"
    task = ["--task", "reverse", "--max-len", "4", "--train-size", "100", "--valid-size",
            "0", "--test-size", "10", "--num-hiddens", "6", "--embed-size", "4",
            "--num-layers", "1", "--quiet"]
    assert main(["train", *task, "--output-layer", "deep", "--epochs", "1",
                 "--out", str(out)]) == 0
    assert load(out / "checkpoint.npz").config.output_layer == "deep"
    assert main(["train", "--resume", "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    assert main(["evaluate", "--model", str(out), "--beam", "2", "--show", "0"]) == 0
    assert main(["info", str(out / "checkpoint.npz")]) == 0
    assert "deep output layer" in capsys.readouterr().out
