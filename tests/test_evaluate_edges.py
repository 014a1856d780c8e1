"""Scoring at its edges: the source-length buckets at their bounds, the table and title
word for word, and what evaluate_model reads, refuses and passes along."""

import numpy as np
import pytest

from minis2s import evaluate as ev
from minis2s.backend import get_backend
from minis2s.bleu import bleu, corpus_scores
from minis2s.checkpoint import Checkpoint
from minis2s.data import DataError, DataSpec, Vocab, load_data
from minis2s.evaluate import (
    Bucket,
    Report,
    by_length_table,
    by_length_title,
    evaluate_model,
    length_label,
    score,
)
from minis2s.model import ModelConfig, init_params

NUMPY = get_backend("numpy")


@pytest.mark.parametrize(("lo", "hi", "label"), [
    (1, 4, "1-3"), (4, 6, "4-5"), (11, 16, "11-15"), (3, 4, "3"), (16, None, "16+"),
    (1, 2, "1"), (1, 3, "1-2")])
def test_length_labels(lo, hi, label):
    assert length_label(lo, hi) == label


HYPS = ["a b c", "a b", "c d", "x", "a b c d", "e f g", "g h", "a", "b c", "d"]
REFS = ["a b c", "a c", "c d", "y", "a b c e", "e f", "g h i", "a", "b d", "d"]
# each length at a bound of the default buckets 1-3, 4-5, 6-7, 8-10, 11-15, 16+
LENGTHS = [1, 3, 4, 5, 6, 10, 11, 15, 16, 40]


def test_buckets_split_at_their_bounds_and_score_their_own_pairs():
    report = score(HYPS, REFS, LENGTHS)
    assert [(b.label, b.pairs) for b in report.buckets] == [
        ("1-3", 2), ("4-5", 2), ("6-7", 1), ("8-10", 1), ("11-15", 2), ("16+", 2)]
    start = 0
    for b in report.buckets:
        picked = slice(start, start + b.pairs)
        s = corpus_scores(HYPS[picked], REFS[picked])
        assert (b.bleu, b.chrf) == (s["bleu"], s["chrf"])
        start += b.pairs
    assert report.pairs == 10
    assert report.scores == corpus_scores(HYPS, REFS)
    assert report.seed_bleu == pytest.approx(
        sum(bleu(h, r, 2) for h, r in zip(HYPS, REFS)) / 10, abs=1e-15)
    assert 0 < report.seed_bleu < 1


def test_empty_buckets_are_left_out_and_other_edges_can_be_given():
    report = score(HYPS[:3], REFS[:3], [2, 2, 17])
    assert [(b.label, b.pairs) for b in report.buckets] == [("1-3", 2), ("16+", 1)]
    report = score(HYPS[:4], REFS[:4], [0, 2, 3, 9], edges=(1, 3))
    # a source of no tokens falls in no bucket, though it counts among the pairs
    assert [(b.label, b.pairs) for b in report.buckets] == [("1-2", 1), ("3+", 2)]
    assert report.pairs == 4


def test_the_table_lines_up_its_columns():
    report = Report(3, {}, 0.0, [Bucket("1-3", 2, 12.345, 40.0),
                                 Bucket("16+", 1001, 0.0, 100.0)])
    assert by_length_table(report) == (
        "source tokens   pairs    BLEU    chrF\n"
        "          1-3       2   12.35   40.00\n"
        "          16+    1001    0.00  100.00")


def test_the_figure_title_counts_the_pairs():
    def reports(*counts):
        return {f"m{i}": Report(n, {}, 0.0, []) for i, n in enumerate(counts)}

    assert by_length_title("test", reports(1234)) == "test part, 1,234 pairs"
    assert by_length_title("valid", reports(1, 1)) == "valid part, 1 pair"
    assert by_length_title("train", reports(1200, 5, 1200)) == "train part, 5 / 1,200 pairs"


# ---------------------------------------------------------------- evaluate_model

SPEC = DataSpec(num_steps=8, num_examples=120, valid_size=10, test_size=12, min_freq=1)


@pytest.fixture(scope="module")
def data(tiny_corpus):
    return load_data(tiny_corpus, SPEC, warn=lambda m: None)


def _checkpoint(data, spec=SPEC, training=None, src_vocab=None):
    cfg = ModelConfig(src_vocab_size=len(data.src_vocab), tgt_vocab_size=len(data.tgt_vocab),
                      embed_size=6, num_hiddens=8, num_layers=1, dropout=0.0,
                      model="attention")
    params = init_params(cfg, NUMPY, np.random.default_rng(0))
    arrays = {k: np.asarray(v) for k, v in params.items()}
    return Checkpoint(arrays, cfg, spec, src_vocab or data.src_vocab, data.tgt_vocab,
                      {"preset": "zh"} if training is None else training)


def test_an_unknown_part_is_refused_before_the_corpus_is_read(data, tmp_path):
    with pytest.raises(DataError) as caught:
        evaluate_model(_checkpoint(data), NUMPY, tmp_path / "missing.txt", part="dev")
    assert str(caught.value) == "unknown part 'dev'; choose one of test, valid, train"


def test_a_corpus_of_another_vocabulary_is_refused_naming_the_checkpoint(data, tiny_corpus):
    other = Vocab.from_tokens([*data.src_vocab.idx_to_token[:-1], "zzz"])
    ck = _checkpoint(data, src_vocab=other)
    with pytest.raises(DataError) as caught:
        evaluate_model(ck, NUMPY, tiny_corpus, where="model.npz")
    assert str(caught.value) == ("this corpus does not give the vocabulary model.npz was "
                                 "trained with: it is not the same data")
    with pytest.raises(DataError, match="^this corpus does not give the vocabulary the "
                                        "checkpoint was trained with"):
        evaluate_model(ck, NUMPY, tiny_corpus)


@pytest.mark.parametrize(("valid_size", "training", "message"), [
    (10, {"preset": "zh"}, "the checkpoint's data settings leave no test part (preset zh); "
                           "score the valid or train part instead"),
    (0, {}, "the checkpoint's data settings leave no test part (preset ?); score the train "
            "part instead"),
])
def test_an_empty_part_is_refused_naming_the_parts_that_have_pairs(tiny_corpus, valid_size,
                                                                   training, message):
    spec = DataSpec(num_steps=8, num_examples=120, valid_size=valid_size, test_size=0,
                    min_freq=1)
    ck = _checkpoint(load_data(tiny_corpus, spec, warn=lambda m: None), spec, training)
    with pytest.raises(DataError) as caught:
        evaluate_model(ck, NUMPY, tiny_corpus)
    assert str(caught.value) == message


@pytest.mark.parametrize(("part", "beam", "alpha"), [("test", 1, 0.75), ("valid", 3, 0.2)])
def test_evaluation_translates_and_scores_the_part_asked_for(data, tiny_corpus, monkeypatch,
                                                             part, beam, alpha):
    ck = _checkpoint(data)
    calls = []
    real_translate, real_params_on = ev.translate, Checkpoint.params_on

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real_translate(*args, **kwargs)

    monkeypatch.setattr(ev, "translate", spy)
    put = []
    monkeypatch.setattr(Checkpoint, "params_on",
                        lambda self, backend: put.append(backend) or real_params_on(self,
                                                                                    backend))
    # the first case leaves beam and length penalty to their defaults (greedy, 0.75)
    asked = {} if part == "test" else {"beam": beam, "length_penalty": alpha}
    result = evaluate_model(ck, NUMPY, tiny_corpus, part=part, **asked)
    chosen = getattr(data, part)
    assert result.sources == [" ".join(t) for t in chosen.src_tokens]
    assert result.refs == [" ".join(t) for t in chosen.tgt_tokens]
    assert put == [NUMPY]  # the parameters put on the backend once
    (args, kwargs), = calls
    assert args[4] == result.sources and args[5:7] == (8, NUMPY)
    assert kwargs == {"beam": beam, "length_penalty": alpha}
    assert result.hyps == real_translate(*args, **kwargs)
    assert result.report == score(result.hyps, result.refs,
                                  [len(t) for t in chosen.src_tokens])


def test_evaluation_uses_the_parameters_given(data, tiny_corpus, monkeypatch):
    ck = _checkpoint(data)
    params = ck.params_on(NUMPY)
    monkeypatch.setattr(Checkpoint, "params_on",
                        lambda self, backend: pytest.fail("parameters put on twice"))
    calls = []
    real = ev.translate
    monkeypatch.setattr(ev, "translate",
                        lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    evaluate_model(ck, NUMPY, tiny_corpus, params=params)
    assert calls == [params]


def test_evaluation_warnings_go_where_asked_and_nowhere_by_default(data, tiny_corpus,
                                                                   tmp_path, capsys):
    corpus = tmp_path / "fra.txt"
    corpus.write_text("no tab here\n" + tiny_corpus.read_text(encoding="utf-8"),
                      encoding="utf-8")
    spec = DataSpec(num_steps=8, num_examples=121, valid_size=10, test_size=12, min_freq=1)
    ck = _checkpoint(data, spec)
    evaluate_model(ck, NUMPY, corpus)
    assert capsys.readouterr().err == ""
    heard = []
    evaluate_model(ck, NUMPY, corpus, warn=heard.append)
    assert len(heard) == 1 and "1 without a tab" in heard[0]


# ---------------------------------------------------------------- the by-length figure


def _report(scores):
    """A report whose buckets 1-3, 4-5, ... carry ``scores`` as (BLEU, chrF)."""
    labels = ["1-3", "4-5", "6-7", "8-10", "11-15", "16+"]
    return Report(len(scores), {}, 0.0, [Bucket(label, 1, b, c)
                                         for label, (b, c) in zip(labels, scores)])


def _check_axes(fig, top):
    """What both figures share: two axes side by side, titled, labelled, gridded, from 0
    to ``top`` (None: to wherever matplotlib ends), each line drawn with round markers and
    not clipped at the axes."""
    bleu_ax, chrf_ax = fig.axes[:2]
    assert bleu_ax.get_position().y0 == pytest.approx(chrf_ax.get_position().y0)
    assert bleu_ax.get_position().x1 < chrf_ax.get_position().x0
    for ax, what in ((bleu_ax, "BLEU"), (chrf_ax, "chrF")):
        assert ax.get_title() == f"{what} by source length"
        assert ax.title.get_fontsize() == 10
        assert ax.get_xlabel() == "source sentence length (tokens)"
        assert ax.get_ylabel() == f"corpus {what} (0-100)"
        assert ax.get_ylim()[0] == 0.0
        if top is not None:
            assert ax.get_ylim()[1] == pytest.approx(top)
        grid = ax.yaxis.get_gridlines()[0]
        assert grid.get_visible() and grid.get_alpha() == 0.3
        for line in ax.get_lines():
            assert (line.get_marker(), line.get_linestyle()) == ("o", "-")
            assert line.get_clip_on() is False


def test_one_models_figure_is_drawn_as_designed():
    """One model: 9 x 3.9 inches, its name joined to the heading with the data; no legend.
    Scores all zero still give an axis from 0 to 1."""
    pytest.importorskip("matplotlib")
    reports = {"m (attention, gru, greedy)": _report([(0.0, 0.0), (0.0, 0.0)])}
    fig = ev.make_by_length_figure(reports, "test part, 2 pairs")
    fig.canvas.draw()
    assert tuple(fig.get_size_inches()) == pytest.approx((9, 3.9))
    assert len(fig.axes) == 2
    _check_axes(fig, 1.0)
    assert fig._suptitle.get_text() == ("Scores by source sentence length\n"
                                        "test part, 2 pairs; m (attention, gru, greedy)")
    assert fig._suptitle.get_fontsize() == 10
    assert all(ax.get_legend() is None for ax in fig.axes)
    untitled = ev.make_by_length_figure(reports)
    assert untitled._suptitle.get_text() == ("Scores by source sentence length\n"
                                             "m (attention, gru, greedy)")


def test_several_models_share_a_legend_panel_below_the_axes():
    """Three models: the figure grows by 0.25 in per model and 0.2 more; a panel under
    the two axes (its height 0.25 per model and 0.1, against the axes' 3.3) holds the
    legend, centred, frameless, titled "model, decoding", in 8.5-point type; the heading
    carries the data only."""
    pytest.importorskip("matplotlib")
    reports = {name: _report([(10.0 * k, 20.0 * k), (30.0, 40.0 + k)])
               for k, name in enumerate(["a", "b", "c"], start=1)}
    fig = ev.make_by_length_figure(reports)
    fig.canvas.draw()
    assert tuple(fig.get_size_inches()) == pytest.approx((9, 3.9 + 0.75 + 0.2))
    assert len(fig.axes) == 3
    _check_axes(fig, None)
    assert fig.axes[0].get_ylim()[1] >= 30.0 and fig.axes[1].get_ylim()[1] >= 60.0
    assert fig._suptitle.get_text() == "Scores by source sentence length"
    assert fig._suptitle.get_fontsize() == 10
    spec = fig.axes[0].get_subplotspec().get_gridspec()
    assert (spec.nrows, spec.ncols) == (2, 2)
    assert spec.get_height_ratios() == pytest.approx([3.3, 0.85])
    panel = fig.axes[2]
    assert (panel.get_subplotspec().rowspan, panel.get_subplotspec().colspan) == \
        (range(1, 2), range(0, 2))
    assert not panel.axison
    legend = panel.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b", "c"]
    assert [t.get_fontsize() for t in legend.get_texts()] == [8.5] * 3
    assert legend._loc == 10  # "center"
    assert legend.get_frame_on() is False
    assert (legend.get_title().get_text(), legend.get_title().get_fontsize()) == \
        ("model, decoding", 8.5)
    # each entry drawn as its model's lines are
    assert [h.get_color() for h in legend.legend_handles] == \
        [line.get_color() for line in fig.axes[0].get_lines()]
    assert all(ax.get_legend() is None for ax in fig.axes[:2])
    titled = ev.make_by_length_figure(reports, "valid part, 2 pairs")
    assert titled._suptitle.get_text() == ("Scores by source sentence length\n"
                                           "valid part, 2 pairs")


def test_plot_by_length_saves_the_figure_of_its_reports(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    made, saved = [], []
    real = ev.make_by_length_figure
    monkeypatch.setattr(ev, "make_by_length_figure",
                        lambda *args: made.append(args) or real(*args))
    monkeypatch.setattr(ev, "save_figure", lambda fig, path: saved.append((fig, path)))
    reports = {"m": _report([(1.0, 2.0)])}
    assert ev.plot_by_length(reports, tmp_path / "a.png") is True
    assert ev.plot_by_length(reports, tmp_path / "b.png", "test part, 1 pair") is True
    assert made == [(reports, ""), (reports, "test part, 1 pair")]
    assert [path.name for _, path in saved] == ["a.png", "b.png"]
    assert [fig._suptitle.get_text() for fig, _ in saved] == [
        "Scores by source sentence length\nm",
        "Scores by source sentence length\ntest part, 1 pair; m"]


def test_without_matplotlib_no_by_length_figure_is_drawn(monkeypatch, tmp_path):
    monkeypatch.setattr(ev, "new_figure", lambda **kwargs: None)
    reports = {"m": _report([(1.0, 2.0)])}
    assert ev.make_by_length_figure(reports) is None
    assert ev.plot_by_length(reports, tmp_path / "a.png") is False
    assert not (tmp_path / "a.png").exists()
