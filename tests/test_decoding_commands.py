"""Decoding through the commands, checked against the library called in-process:
``translate --beam`` and ``evaluate --beam`` print what :func:`beam_search` finds with the
same beam and length penalty (on sentences where that is not the greedy output);
``evaluate --by-length`` puts each pair in the bucket its source length names, and scores
each bucket on its own pairs; the ``--plot`` figures draw the numbers the report prints;
and every option that reads a float refuses ``inf`` and ``nan`` before any work."""

import argparse
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from minis2s import checkpoint
from minis2s.backend import get_backend
from minis2s.bleu import corpus_scores
from minis2s.cli import build_parser, main
from minis2s.data import load_data
from minis2s.decode import beam_search, encode_sentences, greedy_decode
from minis2s.evaluate import make_by_length_figure, score

from .fixture_models import train_for_fixture

SHORT = ["--preset", "zh", "--examples", "199", "--quiet", "--min-freq", "1"]
DECODERS = ["attention", "seq2seq"]


@pytest.fixture(scope="module")
def models(tiny_corpus, tmp_path_factory):
    """A checkpoint of each decoder, trained long enough that beam search and greedy
    decoding part ways on some sentences."""
    found = {}
    for model in DECODERS:
        found[model] = train_for_fixture(["--data", str(tiny_corpus), *SHORT, "--model",
                                          model, "--epochs", "5"],
                                         tmp_path_factory.mktemp(model))
    return found


def _unseen_sentences(corpus, n=40):
    """English lines of the corpus past the 200 the models were trained on."""
    lines = corpus.read_text(encoding="utf-8").splitlines()[200:200 + n]
    return [line.split("\t")[0] for line in lines]


def _decode(ck, params, backend, src, valid, beam, alpha):
    """The library in-process: greedy decoding for a beam of 1, else beam search; each
    output as the commands print it, tokens joined by spaces."""
    if beam == 1:
        found = greedy_decode(params, ck.config, src, ck.tgt_vocab, ck.data.num_steps,
                              backend, valid)
    else:
        found = beam_search(params, ck.config, src, ck.tgt_vocab, ck.data.num_steps,
                            backend, beam, alpha, valid)
    return [" ".join(ck.tgt_vocab.to_tokens(h.tokens)) for h in found]


def _loaded(path):
    """A checkpoint with its parameters where the commands put them (float32)."""
    ck = checkpoint.load(path)
    backend = get_backend(None, "float32")
    return ck, ck.params_on(backend), backend


# (beam, length penalty): each gives other outputs than greedy decoding, and than the others
BEAMS = [(3, 0.75), (4, 0.0), (4, 2.0)]


@pytest.mark.parametrize("model", DECODERS)
def test_translate_prints_what_beam_search_finds(models, tiny_corpus, model, capsys):
    """--beam K --length-penalty A: the lines printed are beam_search's outputs with K and
    A, on sentences where those are not the greedy ones, and differ from setting to
    setting; so a command that dropped either option would print something else."""
    ck, params, backend = _loaded(models[model])
    sentences = _unseen_sentences(tiny_corpus)
    src = encode_sentences(sentences, ck.src_vocab, ck.data.num_steps)
    valid = (src != ck.src_vocab.pad).sum(axis=1)
    greedy = _decode(ck, params, backend, src, valid, 1, 0.75)
    assert main(["translate", "--model", str(models[model]), *sentences]) == 0
    assert capsys.readouterr().out.splitlines() == greedy
    printed = {}
    for beam, alpha in BEAMS:
        expected = _decode(ck, params, backend, src, valid, beam, alpha)
        assert expected != greedy  # beam search chose otherwise somewhere
        assert main(["translate", "--model", str(models[model]), "--beam", str(beam),
                     "--length-penalty", str(alpha), *sentences]) == 0
        assert capsys.readouterr().out.splitlines() == expected
        printed[beam, alpha] = tuple(expected)
    assert len(set(printed.values())) == len(BEAMS)  # each setting its own outputs


_SHOWN = re.compile(r"^  (.*) => (.*)   \[ref: (.*)\]$")


def _shown(report_text):
    """(source, translation, reference) of each example line evaluate prints."""
    return [m.groups() for m in map(_SHOWN.match, report_text.splitlines()) if m]


def test_evaluate_scores_what_beam_search_finds(models, tiny_corpus, capsys):
    """evaluate --beam 3 --length-penalty 0.5 scores the part's beam_search outputs with
    that beam and penalty: its example lines are those outputs, its BLEU and chrF their
    corpus scores, which are not greedy decoding's."""
    ck, params, backend = _loaded(models["attention"])
    part = load_data(tiny_corpus, ck.data, warn=lambda m: None).train
    refs = [" ".join(t) for t in part.tgt_tokens]
    greedy = _decode(ck, params, backend, part.src, part.src_valid_len, 1, 0.75)
    beam = _decode(ck, params, backend, part.src, part.src_valid_len, 3, 0.5)
    expected, greedy_scores = corpus_scores(beam, refs), corpus_scores(greedy, refs)
    assert (expected["bleu"], expected["chrf"]) != (greedy_scores["bleu"],
                                                    greedy_scores["chrf"])
    assert main(["evaluate", "--model", str(models["attention"]), "--data", str(tiny_corpus),
                 "--part", "train", "--beam", "3", "--length-penalty", "0.5", "--json",
                 "--show", str(len(refs))]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["beam"], report["length_penalty"], report["pairs"]) == (3, 0.5, len(refs))
    assert [h for _, h, _ in _shown(err)] == beam
    assert [r for _, _, r in _shown(err)] == refs
    assert report["bleu"] == pytest.approx(expected["bleu"], abs=1e-9)
    assert report["chrf"] == pytest.approx(expected["chrf"], abs=1e-9)


# ------------------------------------------------------------------ scores by length

# source lengths 1..17, one pair each, bucket by bucket (minis2s.evaluate.LENGTH_EDGES):
# every edge has a length on each side of it
BUCKETS = [("1-3", [1, 2, 3]), ("4-5", [4, 5]), ("6-7", [6, 7]), ("8-10", [8, 9, 10]),
           ("11-15", [11, 12, 13, 14, 15]), ("16+", [16, 17])]


def test_buckets_split_at_every_edge_and_score_their_own_pairs():
    """score(): a source of n tokens lands in the bucket whose label holds n, and each
    bucket's BLEU and chrF are corpus_scores of exactly its pairs (the pairs chosen so
    that every bucket scores differently, so a pair in the wrong bucket shows)."""
    words = [f"w{j}" for j in range(12)]
    refs = [" ".join(words[n % 3:n % 3 + 8]) for n in range(1, 18)]
    # the longer the source, the more of its translation right: buckets that score apart
    hyps = [" ".join(w if j <= n // 2 else "x" for j, w in enumerate(r.split()))
            for n, r in zip(range(1, 18), refs)]
    report = score(hyps, refs, list(range(1, 18)))
    assert [(b.label, b.pairs) for b in report.buckets] == \
        [(label, len(lengths)) for label, lengths in BUCKETS]
    for b, (_, lengths) in zip(report.buckets, BUCKETS):
        own = corpus_scores([hyps[n - 1] for n in lengths], [refs[n - 1] for n in lengths])
        assert (b.bleu, b.chrf) == (own["bleu"], own["chrf"])
    assert len({b.bleu for b in report.buckets}) == len({b.chrf for b in report.buckets}) \
        == len(BUCKETS)
    # an empty bucket is left out; the others keep their labels
    gap = score(hyps[:5] + hyps[7:], refs[:5] + refs[7:], [*range(1, 6), *range(8, 18)])
    assert [b.label for b in gap.buckets] == ["1-3", "4-5", "8-10", "11-15", "16+"]


@pytest.fixture(scope="module")
def by_length_run(tiny_corpus, tmp_path_factory):
    """evaluate --by-length --json --plot of a model trained on 17 pairs whose sources
    have 1, 2, ... 17 tokens: its stdout (the JSON), its stderr (the report), the figures
    it made and the file it wrote."""
    import minis2s.evaluate as evaluation

    folder = tmp_path_factory.mktemp("by_length")
    en = ["i", "you", "he", "see", "go", "home", "calm"]
    fr = ["je", "tu", "il", "vois", "va", "chez", "calme"]
    lines = [" ".join(en[j % 7] for j in range(n)) + "\t"
             + " ".join(fr[(j + n) % 7] for j in range(n % 5 + 2)) + "\n" for n in range(1, 18)]
    corpus = folder / "lengths.txt"
    corpus.write_text("".join(lines), encoding="utf-8")
    train_for_fixture(["--data", str(corpus), "--preset", "zh", "--quiet", "--epochs", "3",
                       "--num-steps", "20"], folder / "run")
    figures = []

    def spy(*args, **kwargs):
        figures.append(real(*args, **kwargs))
        return figures[-1]

    real = evaluation.make_by_length_figure
    plot = folder / "by_length.png"
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
        mp.setattr(evaluation, "make_by_length_figure", spy)
        code = main(["evaluate", "--model", str(folder / "run"), "--data", str(corpus),
                     "--part", "train", "--by-length", "--json", "--show", "17",
                     "--plot", str(plot)])
    assert code == 0, err.getvalue()
    return {"out": out.getvalue(), "err": err.getvalue(), "figures": figures, "plot": plot}


def test_evaluate_by_length_buckets_every_edge(by_length_run):
    """Through the command: sources of 1..17 tokens give the buckets 1-3, 4-5, 6-7, 8-10,
    11-15 and 16+, with the pairs of those lengths, in the table and in the JSON; each
    bucket's scores are corpus_scores of the translations the command printed for
    its pairs."""
    out, err = by_length_run["out"], by_length_run["err"]
    report = json.loads(out)
    assert [(b["label"], b["pairs"]) for b in report["by_length"]] == \
        [(label, len(lengths)) for label, lengths in BUCKETS]
    shown = _shown(err)
    assert sorted(len(s.split()) for s, _, _ in shown) == list(range(1, 18))
    for b, (_, lengths) in zip(report["by_length"], BUCKETS):
        mine = [(h, r) for s, h, r in shown if len(s.split()) in lengths]
        own = corpus_scores([h for h, _ in mine], [r for _, r in mine])
        assert (b["bleu"], b["chrf"]) == pytest.approx((own["bleu"], own["chrf"]), abs=1e-9)
    head = err.splitlines().index("source tokens   pairs    BLEU    chrF")
    rows = [line.split() for line in err.splitlines()[head + 1:head + 1 + len(BUCKETS)]]
    assert rows == [[b["label"], str(b["pairs"]), f"{b['bleu']:.2f}", f"{b['chrf']:.2f}"]
                    for b in report["by_length"]]


def _axes(fig, what):
    """The axes of ``fig`` titled for ``what`` (BLEU or chrF)."""
    (ax,) = [ax for ax in fig.axes if ax.get_title() == f"{what} by source length"]
    return ax


def test_the_by_length_plot_draws_the_reported_scores(by_length_run):
    """evaluate --plot: the file is the figure made of the report, and in that figure
    each axis's one line runs through the buckets' labels and their scores as the JSON
    gives them (BLEU left, chrF right), with a tick per bucket, labelled as it is."""
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    buckets = json.loads(by_length_run["out"])["by_length"]
    labels = [b["label"] for b in buckets]
    (fig,) = by_length_run["figures"]
    fig.canvas.draw()
    for what, key in (("BLEU", "bleu"), ("chrF", "chrf")):
        ax = _axes(fig, what)
        (line,) = ax.get_lines()
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert [ticks[int(x)] for x in line.get_xdata()] == labels
        np.testing.assert_allclose(line.get_ydata(), [b[key] for b in buckets], rtol=0,
                                   atol=1e-9)
        np.testing.assert_array_equal(line.get_xydata()[:, 0], np.arange(len(labels)))
        assert [t.get_text() for t in ax.get_xticklabels()] == labels
        np.testing.assert_array_equal(ax.get_xticks(), np.arange(len(labels)))
        assert ax.get_xlabel() == "source sentence length (tokens)"
        assert ax.get_ylabel() == f"corpus {what} (0-100)"
    again = io.BytesIO()
    fig.savefig(again, format="png", dpi=100, bbox_inches="tight")
    again.seek(0)
    np.testing.assert_array_equal(imread(by_length_run["plot"]), imread(again))


def test_the_by_length_figure_draws_each_models_own_scores():
    """make_by_length_figure of two reports: one line per model on each axis, labelled
    with its name, through its own buckets' scores."""
    pytest.importorskip("matplotlib")
    refs = ["w0 w1 w2 w3 w4 w5"] * 6
    lengths = [1, 4, 6, 8, 11, 16]
    reports = {"first (attention, gru, greedy)": score(
                   ["w0 w1 w2 w3 x x", "w0 w1 w2 w3 w4 x", "w0 w1 x x x x",
                    "w0 w1 w2 w3 w4 w5", "x x x x x x", "w0 w1 w2 x x x"], refs, lengths),
               "second (seq2seq, lstm, beam 4, length penalty 0.5)": score(
                   ["w0 w1 w2 w3 w4 w5", "w0 x x x x x", "w0 w1 w2 w3 w4 x",
                    "w0 w1 w2 x x x", "w0 w1 w2 w3 x x", "x x x x x x"], refs, lengths)}
    fig = make_by_length_figure(reports, "test part, 6 pairs")
    fig.canvas.draw()
    labels = ["1-3", "4-5", "6-7", "8-10", "11-15", "16+"]
    for what, key in (("BLEU", "bleu"), ("chrF", "chrf")):
        ax = _axes(fig, what)
        assert [line.get_label() for line in ax.get_lines()] == list(reports)
        for line, report in zip(ax.get_lines(), reports.values()):
            ticks = [t.get_text() for t in ax.get_xticklabels()]
            assert [ticks[int(x)] for x in line.get_xdata()] == labels
            assert list(line.get_ydata()) == [getattr(b, key) for b in report.buckets]
        assert [t.get_text() for t in ax.get_xticklabels()] == labels
    first, second = reports.values()
    assert [b.chrf for b in first.buckets] != [b.chrf for b in second.buckets]


def test_models_with_different_buckets_share_one_ordered_axis():
    """Two models whose sources fill different buckets (other data settings): the x axis
    lists every bucket once, shortest first, and each model's points sit over its own
    buckets' labels."""
    pytest.importorskip("matplotlib")
    refs = ["w0 w1 w2"] * 3
    reports = {"a": score(["w0 w1 w2", "w0 x x", "w0 w1 x"], refs, [1, 8, 16]),
               "b": score(["w0 w1 w2", "x x x", "w0 w1 w2"], refs, [4, 8, 11])}
    fig = make_by_length_figure(reports)
    fig.canvas.draw()
    for what in ("BLEU", "chrF"):
        ax = _axes(fig, what)
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks == ["1-3", "4-5", "8-10", "11-15", "16+"]
        for line, report in zip(ax.get_lines(), reports.values()):
            assert [ticks[int(x)] for x in line.get_xdata()] == \
                [b.label for b in report.buckets]


def test_the_gradflow_plot_draws_the_reported_norms(tiny_corpus, tmp_path, capsys,
                                                    monkeypatch):
    """gradflow --plot --clip: each layer's line on the encoder's and on the decoder's
    axes runs through the norms the JSON gives at steps 0, 1, ... (a norm of 0 left out),
    and its faded twin through those norms times the clipping factor."""
    pytest.importorskip("matplotlib")
    import minis2s.gradflow as flows_module

    figures = []
    real = flows_module.make_flow_figure
    monkeypatch.setattr(flows_module, "make_flow_figure",
                        lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--batch-size", "8", "--json",
                 "--clip", "0.01", "--plot", str(tmp_path / "flow.png")]) == 0
    (flow,) = json.loads(capsys.readouterr().out).values()
    factor = 0.01 / flow["grad_norm"]
    assert factor < 1  # clipping shows
    (fig,) = figures
    for side in ("encoder", "decoder"):
        (ax,) = [ax for ax in fig.axes if ax.get_title() == f"{side} states"]
        assert ax.get_xlabel() == f"time step t of the {side}" and ax.get_yscale() == "log"
        lines = ax.get_lines()
        assert len(lines) == 2 * len(flow[side])  # each layer, then its clipped twin
        for k, norms in enumerate(flow[side]):
            drawn = [v if v > 0 else np.nan for v in norms]
            for line, scale in zip(lines[2 * k:2 * k + 2], (1.0, factor)):
                np.testing.assert_array_equal(line.get_xdata(), np.arange(len(norms)))
                np.testing.assert_allclose(line.get_ydata(), np.multiply(drawn, scale),
                                           rtol=1e-12)
        assert any(v == 0 for v in flow["decoder"][0])  # padding: a step left out


# ------------------------------------------------------------------ inf and nan

# every option of every command that reads a float, with what its command needs besides:
# paths that do not exist, so that any work done before the check fails otherwise
FLOAT_OPTIONS = {
    ("train", "--dropout"): ["train", "--data", "{missing}.txt", "--out", "{out}"],
    ("train", "--lr"): ["train", "--data", "{missing}.txt", "--out", "{out}"],
    ("train", "--lr-decay"): ["train", "--data", "{missing}.txt", "--out", "{out}"],
    ("train", "--grad-clip"): ["train", "--data", "{missing}.txt", "--out", "{out}"],
    ("train", "--valid-size"): ["train", "--data", "{missing}.txt", "--out", "{out}"],
    ("train", "--test-size"): ["train", "--data", "{missing}.txt", "--out", "{out}"],
    ("translate", "--length-penalty"): ["translate", "--model", "{missing}.npz", "go ."],
    ("evaluate", "--length-penalty"): ["evaluate", "--model", "{missing}.npz", "--data",
                                       "{missing}.txt"],
    ("gradflow", "--clip"): ["gradflow", "--pairs", "{missing}.txt"],
    ("explore", "--length-penalty"): ["explore", "--model", "{missing}.npz", "--static",
                                      "{out}.html", "go ."],
}


def _float_options():
    """(command, option) of every option of ``minis2s`` (bench's included) whose type
    reads ``0.5`` as a float."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = set()
    for name, command in commands.choices.items():
        for action in command._actions:
            if not action.option_strings or action.type in (None, str):
                continue
            try:
                value = action.type("0.5")
            except (ValueError, TypeError, argparse.ArgumentTypeError):
                continue
            if isinstance(value, float):
                found.add((name, action.option_strings[0]))
    return found


def test_every_float_option_is_tried_below():
    assert _float_options() == set(FLOAT_OPTIONS)


def _refused(words, tmp_path, capsys):
    """Run a command line whose {missing} and {out} stand for paths under ``tmp_path``;
    assert it exits 2 with one line on stderr, nothing on stdout and no folder made, and
    return that line."""
    args = [w.format(missing=tmp_path / "missing", out=tmp_path / "out") for w in words]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing made
    return err.strip()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
@pytest.mark.parametrize(("command", "option"), list(FLOAT_OPTIONS),
                         ids=[f"{c} {o}" for c, o in FLOAT_OPTIONS])
def test_inf_and_nan_are_refused_by_every_float_option(command, option, value, tmp_path,
                                                        capsys):
    """``--option=inf`` (``=``: argparse reads a lone ``-inf`` as an option's name): one
    error line naming the option, its rule and the value, exit 2, before the corpus or
    the checkpoint is looked for and before any folder is made."""
    line = _refused([*FLOAT_OPTIONS[command, option], f"{option}={value}"], tmp_path, capsys)
    assert line.startswith(f"minis2s: error: {option} must be ")
    assert line.endswith(f", got {value}")


@pytest.mark.parametrize(("value", "shown"), [("0", "0.0"), ("-1", "-1.0")])
def test_gradflow_clip_must_be_above_zero(value, shown, tmp_path, capsys):
    """The rule of train's --grad-clip: clipping at 0 or below means nothing."""
    line = _refused(["gradflow", "--pairs", "{missing}.txt", "--clip", value], tmp_path,
                    capsys)
    assert line == f"minis2s: error: --clip must be a number > 0, got {shown}"


@pytest.mark.parametrize("value", ["-inf", "-nan", "-1", "-0.5", "-1e-3"])
def test_a_negative_value_after_a_space_is_a_value(value, capsys, tmp_path):
    """``--lr -inf`` gives ``-inf`` to --lr, as ``--lr=-inf`` does: the rule refuses it in
    one line, rather than the parser taking it for an unknown flag."""
    assert main(["train", "--lr", value, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"minis2s: error: --lr must be a number > 0, got {float(value)}"]
    assert not (tmp_path / "run").exists()
