"""Gradient by distance: the gradient that one target step's loss alone sends back.

``gradient_by_distance`` runs one backward per target step t' with the loss of that step
alone and averages the recorded ‖∂L_t'/∂h_t‖ by the distance from t to t'. Checked here:
each per-step gradient against finite differences of that step's loss, computed apart
from the model's loss (for the LSTM, the cell state c's gradient too, through a probe
added to c); the per-step gradients summed over t' against the whole gradient that
``gradient_flow`` reports; the means against a plain loop over sentences and step pairs;
and the command's table, JSON, figure and refusals.
"""

import json

import numpy as np
import pytest

from minis2s import gradcheck as gc
from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.gradflow import gradient_by_distance, gradient_flow, make_distance_figure
from minis2s.model import DECODERS, ModelConfig, init_params, seq2seq_backward, seq2seq_forward
from minis2s.model.encoder import encoder_forward
from minis2s.ops import CELLS, State
from tests.fixture_models import train_for_fixture
from tests.test_gradflow import PAIRS

F64 = get_backend("numpy", "float64")
N, S, T = 3, 4, 5  # sentences, source steps, target steps of the small batches

# every cell with either decoder, and a bidirectional encoder under each decoder
CASES = [(cell, model, False) for cell in CELLS for model in DECODERS] + \
    [("lstm", "attention", True), ("gru", "seq2seq", True)]


def small_model(cell, model, bidirectional, seed=11):
    cfg = ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3, num_hiddens=3,
                      num_layers=2, dropout=0.0, bidirectional=bidirectional, cell=cell,
                      model=model)
    rng = np.random.default_rng(seed)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, N, S, T)  # one target of length 0, sources padded
    return cfg, params, batch


def step_loss(params, cfg, batch, tp, probes):
    """The loss at target step ``tp`` alone, computed here from the logits: each counted
    sentence's cross-entropy at that step, divided by T (the seed's reduction)."""
    encoded, _ = encoder_forward(params, cfg, batch.src, batch.src_valid_len,
                                 probes=probes["encoder"])
    logits, _ = cfg.decoder.forward(params, cfg, batch.tgt_in, encoded, None,
                                    probes=probes["decoder"])
    z = logits[:, tp]  # (N, V)
    top = z.max(axis=1)
    ce = np.log(np.exp(z - top[:, None]).sum(axis=1)) + top - z[np.arange(N), batch.tgt[:, tp]]
    return float((ce * (batch.tgt_valid_len > tp)).sum() / batch.tgt.shape[1])


def zero_probes(cfg):
    """Probes of zeros on every state (h, and c for the LSTM), per (layer, direction)."""
    def zeros(rows, width):
        h = np.zeros((rows, width))
        return State(h, np.zeros((rows, width))) if cfg.recurrent.paired else h

    return {"encoder": [zeros(S * N, cfg.num_hiddens)
                        for _ in range(cfg.num_layers * cfg.num_directions)],
            "decoder": [zeros(T * N, cfg.decoder_units) for _ in range(cfg.num_layers)]}


def parts(probe):
    """(name, array) of a probe or a recorded gradient: h alone, or h and c."""
    if isinstance(probe, State):
        return [(name, a) for name, a in zip(("h", "c"), probe) if a is not None]
    return [("h", probe)]


def test_the_step_losses_add_up_to_the_models_loss():
    cfg, params, batch = small_model("lstm", "attention", False)
    loss, _ = seq2seq_forward(params, cfg, batch, packed=False)
    probes = zero_probes(cfg)
    total = sum(step_loss(params, cfg, batch, tp, probes) for tp in range(T))
    assert total == pytest.approx(float(loss), rel=1e-12)


@pytest.mark.parametrize("cell,model,bidirectional", CASES)
def test_one_steps_gradient_matches_finite_differences(cell, model, bidirectional):
    """∂L_t'/∂h_t (and ∂L_t'/∂c_t) for chosen steps, as the backward with the loss of t'
    alone records it, against finite differences of L_t' in a probe added to that state:
    decoder states before t' and at t', an encoder state, every layer and direction; a
    decoder state after t' gets exactly nothing."""
    cfg, params, batch = small_model(cell, model, bidirectional)
    probes = zero_probes(cfg)
    _, cache = seq2seq_forward(params, cfg, batch, packed=False, probes=probes)
    checked = 0
    for tp, side, t in [(3, "decoder", 1), (3, "decoder", 3), (2, "encoder", 1),
                        (0, "encoder", 0), (1, "decoder", 3)]:
        recorded = seq2seq_backward(1.0, cache, record="state", target_step=tp).recorded
        for probe, got in zip(probes[side], recorded[side]):
            for (name, p), (_, g) in zip(parts(probe), parts(got)):
                rows = slice(t * N, (t + 1) * N)  # step t's rows, every sentence

                def f(tp=tp):
                    return step_loss(params, cfg, batch, tp, probes)

                numeric = gc.numerical_grad(f, p[rows])  # a view: f reads the change
                analytic = g[rows]
                where = f"{side} step {t}, loss at {tp}, {name}"
                if side == "decoder" and t > tp:  # later states never reach an earlier loss
                    assert not analytic.any(), where
                    assert np.abs(numeric).max() < 1e-12, where
                else:
                    assert np.abs(analytic).max() > 1e-8, where  # not zeros against zeros
                    assert gc.rel_error(analytic, numeric) <= gc.TOLERANCE, where
                checked += 1
    layers = 3 * cfg.num_layers + 2 * cfg.num_layers * cfg.num_directions  # 3 decoder checks
    assert checked == layers * (2 if cell == "lstm" else 1)  # h, and the LSTM's c


@pytest.mark.parametrize("cell,model,bidirectional", CASES)
def test_the_step_gradients_sum_to_the_total_gradient(cell, model, bidirectional):
    """Σ_t' ∂L_t'/∂h_t = ∂L/∂h_t: the backwards of the single steps' losses add up, state
    by state (c too), to the whole backward, and their norms to gradient_flow's."""
    cfg, params, batch = small_model(cell, model, bidirectional)
    _, cache = seq2seq_forward(params, cfg, batch, packed=False)
    whole = seq2seq_backward(1.0, cache, record="state").recorded
    plain = seq2seq_backward(1.0, cache, record=True).recorded  # what gradflow records
    steps = [seq2seq_backward(1.0, cache, record="state", target_step=tp).recorded
             for tp in range(T)]
    for side in ("encoder", "decoder"):
        for i, total in enumerate(whole[side]):
            np.testing.assert_array_equal(total.h, plain[side][i])
            for j, (name, array) in enumerate(parts(total)):
                summed = sum(s[side][i][j] for s in steps)
                assert np.abs(summed - array).max() <= 1e-10, f"{side}[{i}] {name}"
                assert np.abs(array).max() > 1e-3  # a real gradient, not zeros
    flow = gradient_flow(params, cfg, batch)
    dec = [sum(s["decoder"][k].h for s in steps).reshape(T, -1) for k in range(2)]
    np.testing.assert_allclose(flow.decoder, [np.linalg.norm(d, axis=1) for d in dec],
                               rtol=1e-10)
    dirs = cfg.num_directions
    for k in range(2):
        both = np.concatenate([sum(s["encoder"][k * dirs + d].h for s in steps)
                               .reshape(S, N, -1) for d in range(dirs)], axis=2)
        np.testing.assert_allclose(flow.encoder[k],
                                   np.linalg.norm(both.reshape(S, -1), axis=1), rtol=1e-10)


def by_loops(params, cfg, batch):
    """The means by distance, the plain way: every sentence n, every counted target step
    t' of it, every state t that is a valid position, one norm at a time."""
    _, cache = seq2seq_forward(params, cfg, batch, packed=False)
    per = [seq2seq_backward(1.0, cache, record="state", target_step=tp).recorded
           for tp in range(T)]
    dirs = cfg.num_directions
    found = {"decoder": {}, "encoder": {}}
    for n in range(N):
        for tp in range(int(batch.tgt_valid_len[n])):
            for side, positions, steps, distance in (
                    ("decoder", range(tp + 1), T, lambda t, tp=tp: tp - t),
                    ("encoder", range(int(batch.src_valid_len[n])), S,
                     lambda t: S - t)):
                layers = [per[tp][side][k * (dirs if side == "encoder" else 1)]
                          for k in range(cfg.num_layers)]
                for t in positions:
                    norms = [float(np.linalg.norm(a.reshape(steps, N, -1)[t, n]))
                             for part in ("h", "c") for a in
                             [getattr(state, part) for state in layers] if a is not None]
                    found[side].setdefault(distance(t), []).append(norms)
    return {side: {d: (len(v), np.mean(v, axis=0)) for d, v in sorted(by_d.items())}
            for side, by_d in found.items()}


@pytest.mark.parametrize("cell,model,bidirectional",
                         [("lstm", "seq2seq", False), ("gru", "attention", False),
                          ("rnn", "seq2seq", True)])
def test_the_means_are_those_of_a_plain_loop(cell, model, bidirectional):
    cfg, params, batch = small_model(cell, model, bidirectional)
    got = gradient_by_distance(params, cfg, batch)
    assert (got.source_steps, got.target_steps) == (S, T)
    assert got.loss == pytest.approx(float(seq2seq_forward(params, cfg, batch,
                                                           packed=False)[0]))
    want = by_loops(params, cfg, batch)
    for side, curve in (("decoder", got.decoder), ("encoder", got.encoder)):
        assert curve.distance == list(want[side]), side
        assert curve.count == [count for count, _ in want[side].values()], side
        rows = curve.h + (curve.c or [])
        assert (curve.c is not None) == (cell == "lstm")
        means = np.array([m for _, m in want[side].values()]).T  # (layers·parts, d)
        np.testing.assert_allclose(rows, means, rtol=1e-12)
    assert got.decoder.distance == list(range(T))  # row 0 has the whole target
    assert got.encoder.distance == list(range(1, S + 1))  # row 0 has the whole source


def test_the_packed_path_has_no_single_step_backward():
    cfg, params, batch = small_model("gru", "seq2seq", False)
    _, cache = seq2seq_forward(params, cfg, batch)
    with pytest.raises(ValueError, match="target_step needs the plain path"):
        seq2seq_backward(1.0, cache, target_step=0)


# ------------------------------------------------------------------ the command

@pytest.fixture
def pairs(tmp_path):
    """The four pairs tests/test_gradflow.py measures."""
    path = tmp_path / "pairs.txt"
    path.write_text(PAIRS, encoding="utf-8")
    return path


def test_table(pairs, capsys):
    assert main(["gradflow", "--pairs", str(pairs), "--cell", "lstm", "--num-steps", "12",
                 "--by-distance"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "lstm: 4 pairs, 12 source and 12 target steps"
    assert lines[1].startswith("loss ")
    assert "dL_t'/dh_t per sentence, averaged over the sentences and the pairs" in lines[3]
    assert "c Ll: its cell state c_t" in lines[4]
    dec = lines.index("decoder: d = t' - t, t and t' target steps")
    enc = lines.index("encoder: d = 12 - t, t a source step (12 source steps), t' any "
                      "target step")
    head = ["d", "count", "h", "L0", "h", "L1", "c", "L0", "c", "L1"]
    assert lines[dec + 1].split() == head and lines[enc + 1].split() == head
    decoder_rows = [line.split() for line in lines[dec + 2:enc]]
    encoder_rows = [line.split() for line in lines[enc + 2:]]
    # targets of 9, 4, 10 and 2 tokens and <eos>: t' - t runs from 0 to 10, and d = 0 has
    # every counted t' once; sources of 10, 4, 12 and 3 (with <eos>): 12 - t runs from 1
    # to 12, each source token paired with every t' of its sentence
    assert [int(r[0]) for r in decoder_rows] == list(range(11))
    assert [int(r[1]) for r in decoder_rows][:2] == [10 + 5 + 11 + 3, 9 + 4 + 10 + 2]
    assert [int(r[0]) for r in encoder_rows] == list(range(1, 13))
    assert [int(r[1]) for r in encoder_rows][:4] == [11, 11, 11 + 10, 11 + 10]
    assert all(len(r) == 6 for r in decoder_rows + encoder_rows)


def test_json_shape(pairs, capsys):
    assert main(["gradflow", "--pairs", str(pairs), "--compare-cells", "--num-steps", "8",
                 "--by-distance", "--json"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert list(flows) == list(CELLS)
    for cell, flow in flows.items():
        assert set(flow) == {"decoder", "encoder", "loss", "source_steps", "target_steps"}
        assert (flow["source_steps"], flow["target_steps"]) == (8, 8)
        for side in ("decoder", "encoder"):
            curve = flow[side]
            assert set(curve) == {"distance", "count", "h", "c"}
            D = len(curve["distance"])
            assert len(curve["count"]) == D and all(n > 0 for n in curve["count"])
            assert len(curve["h"]) == 2 and all(len(row) == D for row in curve["h"])
            if cell == "lstm":
                assert len(curve["c"]) == 2 and all(len(row) == D for row in curve["c"])
            else:
                assert curve["c"] is None
        assert flow["decoder"]["distance"] == list(range(8))  # two targets cut to 8
        assert flow["encoder"]["distance"] == list(range(1, 9))
    # without --by-distance the JSON keeps its shape
    assert main(["gradflow", "--pairs", str(pairs), "--num-steps", "8", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["gru"]) == {"encoder", "decoder", "loss",
                                                               "grad_norm"}


def test_trained_checkpoints_of_either_decoder(pairs, tmp_path, capsys):
    """A trained attention model with a bidirectional LSTM encoder, and a seq2seq GRU."""
    for model, cell, more in (("attention", "lstm", ["--bidirectional"]),
                              ("seq2seq", "gru", [])):
        train_for_fixture(["--data", str(pairs), "--model", model, "--cell", cell,
                           "--epochs", "1", "--min-freq", "1", "--quiet", *more],
                          tmp_path / cell)
    capsys.readouterr()
    assert main(["gradflow", "--pairs", str(pairs), "--model", str(tmp_path / "lstm"),
                 "--model", str(tmp_path / "gru"), "--label", "a", "--label", "b",
                 "--by-distance", "--json"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert list(flows) == ["a", "b"]
    assert flows["a"]["decoder"]["c"] is not None and flows["b"]["decoder"]["c"] is None
    assert flows["a"]["source_steps"] == 10  # the models' num_steps


def test_figure(pairs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "distance.png"
    assert main(["gradflow", "--pairs", str(pairs), "--compare-cells", "--num-steps", "8",
                 "--by-distance", "--plot", str(path)]) == 0
    assert path.stat().st_size > 1000 and "figure in" in capsys.readouterr().err
    cfgs = {cell: small_model(cell, "seq2seq", False) for cell in CELLS}
    flows = {cell: gradient_by_distance(p, cfg, b) for cell, (cfg, p, b) in cfgs.items()}
    fig = make_distance_figure(flows, "the title")
    decoder, encoder, panel = fig.axes
    assert "the title" in fig._suptitle.get_text()
    for ax, side in ((decoder, "decoder"), (encoder, "encoder")):
        assert ax.get_yscale() == "log"
        lines = ax.get_lines()
        solid = [ln for ln in lines if ln.get_linestyle() == "-"]
        dashed = [ln for ln in lines if ln.get_linestyle() == "--"]
        assert len(solid) == len(CELLS) and len(dashed) == 1  # one per model, LSTM's c
        curve = getattr(flows["lstm"], side)
        lstm_colour = solid[list(CELLS).index("lstm")].get_color()
        assert dashed[0].get_color() == lstm_colour
        assert list(dashed[0].get_xdata()) == curve.distance
        np.testing.assert_allclose(dashed[0].get_ydata(), curve.c[-1])  # the top layer
        np.testing.assert_allclose(solid[list(CELLS).index("lstm")].get_ydata(),
                                   curve.h[-1])
    assert decoder.get_xlabel() == "distance d = t' − t (steps)"
    assert encoder.get_xlabel() == "distance d = S − t (steps to the decoder; S source steps)"
    assert "top layer" in decoder.get_ylabel() and "log scale" in decoder.get_ylabel()
    labels = [t.get_text() for t in panel.get_legend().get_texts()]
    assert labels == [*CELLS, "‖∂L_t'/∂h_t‖: hidden state", "‖∂L_t'/∂c_t‖: LSTM cell state"]
    handles = panel.get_legend().legend_handles
    assert handles[-1].get_linestyle() == "--" and handles[-2].get_linestyle() == "-"
    # no LSTM: no dashed line and no entry for c
    fig = make_distance_figure({"gru": flows["gru"]})
    assert [ln.get_linestyle() for ln in fig.axes[0].get_lines()] == ["-"]
    assert "LSTM" not in " ".join(t.get_text() for t in fig.axes[2].get_legend().get_texts())


def test_clip_is_refused_with_by_distance(pairs, tmp_path, capsys):
    said = ["minis2s: error: --clip and --by-distance do not go together: clipping scales "
            "every gradient by one factor, which leaves their fall with distance as it is"]
    assert main(["gradflow", "--pairs", str(pairs), "--by-distance", "--clip", "1"]) == 2
    assert capsys.readouterr().err.splitlines() == said
    # before the pairs are read: a file that is not there is never looked for
    assert main(["gradflow", "--pairs", str(tmp_path / "none.txt"), "--clip", "1",
                 "--by-distance", "--json"]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == said and out == ""
