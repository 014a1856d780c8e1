"""Gradient flow: the recorded ∂L/∂h_t are the true ones, and the command reports them."""

import json

import numpy as np
import pytest

from minis2s import gradcheck as gc
from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.gradflow import gradient_flow
from minis2s.model import DECODERS, ModelConfig, init_params, seq2seq_backward, seq2seq_forward
from minis2s.ops import CELLS

from .fixture_models import train_for_fixture

F64 = get_backend("numpy", "float64")


@pytest.mark.parametrize("model", list(DECODERS))
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recorded_state_gradients_match_finite_differences(cell, bidirectional, model):
    """A probe added to every state h_t as it is made (zeros: the forward is unchanged)
    has, as its gradient, the whole gradient reaching h_t. Finite differences of the loss
    in each probe entry must equal what backprop through time recorded (with attention,
    h_t also reaches the loss as the next step's query)."""
    cfg = ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3, num_hiddens=3,
                      num_layers=2, dropout=0.0, bidirectional=bidirectional, cell=cell,
                      model=model)
    rng = np.random.default_rng(5)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 3, 4, 5)
    dirs, H, Hd, L = cfg.num_directions, cfg.num_hiddens, cfg.decoder_units, cfg.num_layers
    probes = {"encoder": [np.zeros((4 * 3, H)) for _ in range(L * dirs)],
              "decoder": [np.zeros((5 * 3, Hd)) for _ in range(L)]}
    arrays = {f"{side}[{i}]": p for side, ps in probes.items() for i, p in enumerate(ps)}

    def f():
        return seq2seq_forward(params, cfg, batch, packed=False, probes=probes)[0]

    _, cache = seq2seq_forward(params, cfg, batch, packed=False, probes=probes)
    recorded = seq2seq_backward(1.0, cache, record=True).recorded
    assert set(recorded) == {"encoder", "decoder"}
    analytic = {f"{side}[{i}]": r for side, rs in recorded.items() for i, r in enumerate(rs)}
    rows = gc.check_arrays("state gradients", f, arrays, analytic)
    assert len(rows) == L * dirs + L
    assert max(r.error for r in rows) <= gc.TOLERANCE
    assert all(np.abs(r).max() > 0 for r in analytic.values())  # not zeros against zeros


def test_flow_is_the_norm_of_the_recorded_gradients():
    cfg = ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3, num_hiddens=4,
                      num_layers=2, dropout=0.0, bidirectional=True, cell="lstm")
    rng = np.random.default_rng(6)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 3, 4, 5)
    flow = gradient_flow(params, cfg, batch)
    _, cache = seq2seq_forward(params, cfg, batch, packed=False)
    back = seq2seq_backward(1.0, cache, record=True)
    grads, recorded = back.params, back.recorded
    enc = [r.reshape(4, 3, -1) for r in recorded["encoder"]]
    for k in range(2):  # layer k: both directions' h side by side
        both = np.concatenate([enc[2 * k], enc[2 * k + 1]], axis=2)
        np.testing.assert_allclose(flow.encoder[k], np.linalg.norm(both.reshape(4, -1), axis=1))
    dec = recorded["decoder"][1].reshape(5, 3, -1)
    np.testing.assert_allclose(flow.decoder[1], np.linalg.norm(dec.reshape(5, -1), axis=1))
    g = np.sqrt(sum((v ** 2).sum() for v in grads.values()))
    assert flow.grad_norm == pytest.approx(g)
    assert flow.clip_factor(None) == 1.0 and flow.clip_factor(10 * g) == 1.0
    assert flow.clip_factor(g / 4) == pytest.approx(0.25)


# ------------------------------------------------------------------ the command

PAIRS = "".join(f"{en}\t{fr}\n" for en, fr in [
    ("I lost my keys yesterday at the station.", "J'ai perdu mes clés hier à la gare."),
    ("He's calm.", "Il est calme."),
    ("We will see what the teacher says about it tomorrow.",
     "Nous verrons ce que le professeur en dit demain."),
    ("Go.", "Va !"),
])


@pytest.fixture
def pairs(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text(PAIRS, encoding="utf-8")
    return path


def test_table_json_and_figure(pairs, tmp_path, capsys):
    assert main(["gradflow", "--pairs", str(pairs), "--cell", "lstm", "--num-steps", "12",
                 "--clip", "1", "--plot", str(tmp_path / "flow.png")]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "lstm: 4 pairs, 12 source and 12 target steps"
    assert lines[1].startswith("loss ") and "clipping at 1 scales every gradient by" in out
    assert lines[3].split() == ["step", "enc", "L0", "enc", "L1", "dec", "L0", "dec", "L1"]
    assert len(lines) == 4 + 12 and lines[-1].split()[0] == "11"
    pytest.importorskip("matplotlib")
    assert (tmp_path / "flow.png").stat().st_size > 1000 and "figure in" in err
    assert main(["gradflow", "--pairs", str(pairs), "--num-steps", "12", "--json"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert list(flows) == ["gru"]  # one model: the same shape as several, named by its cell
    flow = flows["gru"]
    assert set(flow) == {"encoder", "decoder", "loss", "grad_norm"}
    assert len(flow["encoder"]) == 2 and all(len(row) == 12 for row in flow["encoder"])
    assert len(flow["decoder"]) == 2 and all(len(row) == 12 for row in flow["decoder"])
    assert flow["encoder"][0][0] < flow["encoder"][0][-1]  # a fresh GRU: it fades back


def test_compare_cells_and_trained_models(pairs, tmp_path, capsys):
    assert main(["gradflow", "--pairs", str(pairs), "--compare-cells", "--json",
                 "--num-steps", "8"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert set(flows) == set(CELLS)
    # two trained checkpoints side by side, of other cells and other decoders: each named
    # by its folder, decoder and cell, as evaluate names it
    for model, cell in (("seq2seq", "gru"), ("attention", "lstm")):
        train_for_fixture(["--data", str(pairs), "--model", model, "--cell", cell,
                           "--epochs", "2", "--min-freq", "1", "--quiet"], tmp_path / cell)
    capsys.readouterr()
    assert main(["gradflow", "--pairs", str(pairs), "--model",
                 str(tmp_path / "gru" / "checkpoint.npz"), "--model",
                 str(tmp_path / "lstm"), "--json"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert list(flows) == [f"{tmp_path / 'gru'} (seq2seq, gru)",
                           f"{tmp_path / 'lstm'} (attention, lstm)"]
    assert all(len(f["encoder"][0]) == 10 for f in flows.values())  # the models' num_steps


def test_bad_input(pairs, tmp_path, capsys):
    messy = tmp_path / "messy.txt"
    messy.write_text(PAIRS + "no tab here\n\n\tonly french\n", encoding="utf-8")
    assert main(["gradflow", "--pairs", str(messy), "--num-steps", "6"]) == 0
    err = capsys.readouterr().err
    assert "skipped 3 lines of messy.txt (1 blank, 1 without a tab, 1 with an empty side)" \
        in err
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert main(["gradflow", "--pairs", str(empty)]) == 2
    assert "no valid 'English<TAB>French' line found" in capsys.readouterr().err
    assert main(["gradflow", "--pairs", str(pairs), "--model", str(tmp_path / "x.npz"),
                 "--compare-cells"]) == 2
    assert "--compare-cells compares freshly initialised models" in capsys.readouterr().err
