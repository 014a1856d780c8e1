"""Every figure says what it shows: titles, axis words, legends clear of the curves, tick
labels inside the image, a count of one said as one. Checked on the matplotlib Figure
objects and the saved PNGs. A path matplotlib cannot write is one error line, found before
any work (a warning, for the loss curve of a training run)."""

import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.transforms import Bbox  # noqa: E402

from minis2s.cli import main  # noqa: E402
from minis2s.decode.heatmap import draw_attention, make_attention_figure  # noqa: E402
from minis2s.decode.translate import Translation  # noqa: E402
from minis2s.evaluate import (  # noqa: E402
    by_length_title,
    make_by_length_figure,
    plot_by_length,
    score,
)
from minis2s.gradflow import Flow, make_flow_figure, plot_flow  # noqa: E402
from minis2s.presets import get_preset  # noqa: E402
from minis2s.train.plot import (  # noqa: E402
    LOSS_LABEL,
    make_history_figure,
    plot_history,
)
from minis2s.train.trainer import EpochStats  # noqa: E402

SHORT = ["--preset", "zh", "--examples", "199", "--quiet", "--min-freq", "1"]


def drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def legends(fig):
    return [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]


def plotting_axes(fig):
    """The axes that hold curves or images (not a legend panel, not a colour bar)."""
    return [ax for ax in fig.axes if ax.axison and (ax.lines or ax.images)]


def assert_legends_clear_of_the_axes(fig):
    renderer = drawn(fig)
    found = legends(fig)
    assert found, "the figure has no legend"
    for legend in found:
        box = legend.get_window_extent(renderer)
        for ax in plotting_axes(fig):
            area = ax.get_window_extent(renderer)
            overlap = Bbox.intersection(box, area)
            assert overlap is None or overlap.width * overlap.height < 1.0, \
                f"a legend covers the axes titled {ax.get_title()!r}"


def title_of(fig):
    return fig._suptitle.get_text() if fig._suptitle is not None else ""


def history(epochs, valid=True):
    return [EpochStats(e, 3.0 / e, 100, 1.0, 3.3 / e if valid else None)
            for e in range(1, epochs + 1)]


# --- the loss curve -------------------------------------------------------------------

def test_loss_curve_says_what_the_loss_is_and_for_which_run():
    preset = get_preset("zh").with_overrides(model="attention", cell="lstm")
    fig = make_history_figure(history(5), preset, 1000)
    title = title_of(fig)
    for words in ("Loss per epoch", "preset zh", "attention decoder", "lstm cell",
                  "1,000 training pairs"):
        assert words in title
    ax = plotting_axes(fig)[0]
    assert ax.get_ylabel() == LOSS_LABEL
    for words in ("the seed's", "token losses", "num_steps", "summed over",
                  "valid target tokens"):
        assert words in " ".join(ax.get_ylabel().split())
    assert ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training part",
                                                                   "validation part"]
    assert_legends_clear_of_the_axes(fig)


def test_a_one_epoch_loss_curve_shows_its_points(tmp_path):
    fig = make_history_figure(history(1), get_preset("zh"), 50)
    ax = plotting_axes(fig)[0]
    assert len(ax.lines) == 2
    lo, hi = ax.get_xlim()
    for line in ax.lines:
        assert line.get_marker() not in (None, "", "None", " ") and line.get_markersize() >= 3
        x = line.get_xdata()[0]
        assert lo < x < hi  # inside the axes, not on their edge
    assert_legends_clear_of_the_axes(fig)
    assert plot_history(history(1), tmp_path / "loss.png") is True
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_train_titles_its_loss_curve_with_the_run(tiny_corpus, tmp_path, monkeypatch):
    import minis2s.train.run as run

    seen = {}

    def spy(history, path, warn=None, **about):
        seen.update(about, path=path)
        return plot_history(history, path, warn, **about)

    monkeypatch.setattr(run, "plot_history", spy)
    assert main(["train", "--data", str(tiny_corpus), *SHORT, "--epochs", "1", "--cell",
                 "rnn", "--out", str(tmp_path)]) == 0
    assert seen["preset"].name == "zh" and seen["preset"].cell == "rnn"
    assert seen["pairs"] > 0
    assert (tmp_path / "loss.png").stat().st_size > 1000


# --- attention heat maps --------------------------------------------------------------

def translation(source, tokens, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(len(source)), size=len(tokens) + 1)
    return Translation(source, tokens, " ".join(tokens), weights)


def test_heat_map_carries_the_sentence_and_keeps_its_tick_labels_inside(tmp_path):
    from matplotlib.image import imread

    long_word = "anticonstitutionnellement-et-plus-encore"
    t = translation(["il", "parle", long_word, ".", "<eos>"],
                    ["he", "speaks", "unconstitutionally-and-then-some", "."])
    sentence = f"Il parle {long_word}."
    fig = make_attention_figure(t, sentence, "attention decoder, gru cell, greedy")
    title = title_of(fig)
    assert "Attention weights" in title and long_word in title
    assert "attention decoder, gru cell, greedy" in title
    renderer = drawn(fig)
    page = fig.bbox
    ax = plotting_axes(fig)[0]
    labels = [*ax.get_xticklabels(), *ax.get_yticklabels()]
    assert {lb.get_text() for lb in labels} >= {long_word, "unconstitutionally-and-then-some"}
    for text in [*labels, fig._suptitle, ax.xaxis.label, ax.yaxis.label]:
        box = text.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and \
            box.y1 <= page.y1, f"{text.get_text()!r} is cut off"
    # the PNG is the whole figure: nothing outside it is saved, so nothing is clipped
    assert draw_attention(t, tmp_path / "map.png", sentence, "attention") is True
    height, width = imread(tmp_path / "map.png").shape[:2]
    w_in, h_in = fig.get_size_inches()
    assert (width, height) == (round(w_in * 100), round(h_in * 100))


def test_heat_map_without_a_sentence_titles_the_tokens_read():
    fig = make_attention_figure(translation(["va", "<eos>"], ["go"]))
    assert "source: va" in title_of(fig)


@pytest.fixture(scope="module")
def attention_model(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("attention")
    assert main(["train", "--data", str(tiny_corpus), *SHORT, "--model", "attention",
                 "--epochs", "1", "--out", str(out)]) == 0
    return out / "checkpoint.npz"


def test_an_empty_line_leaves_no_gap_in_the_heat_map_numbers(attention_model, tmp_path,
                                                             capsys, monkeypatch):
    import minis2s.decode.heatmap as heatmap

    titles = {}
    real = heatmap.draw_attention

    def spy(t, path, sentence=None, model=""):
        titles[path.name] = (sentence, model)
        return real(t, path, sentence, model)

    monkeypatch.setattr(heatmap, "draw_attention", spy)
    assert main(["translate", "--model", str(attention_model), "--beam", "2",
                 "--attention-plot", str(tmp_path / "maps"), "i lost .", "", "go ."]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3  # one line out per line in, the empty one too
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [
        "sentence_0001.png", "sentence_0002.png"]
    assert "2 attention heat maps in" in err
    assert titles == {"sentence_0001.png": ("i lost .", "attention decoder, gru cell, beam 2"),
                      "sentence_0002.png": ("go .", "attention decoder, gru cell, beam 2")}


# --- BLEU and chrF by length ----------------------------------------------------------

def reports():
    rng = np.random.default_rng(1)
    refs = [" ".join(rng.choice(list("abcdefg"), size=int(rng.integers(1, 20))))
            for _ in range(120)]
    hyps = [r if rng.random() < 0.5 else r[::-1] for r in refs]
    lengths = [len(r.split()) for r in refs]
    return score(hyps, refs, lengths), score(refs, refs, lengths)


def test_scores_by_length_start_at_zero_and_keep_the_legend_off_the_curves(tmp_path):
    worse, perfect = reports()
    named = {"runs/a/checkpoint.npz: attention, gru, greedy": worse,
             "runs/b/checkpoint.npz: attention, lstm, beam 4, length penalty 0.75": perfect}
    fig = make_by_length_figure(named, by_length_title("test", named))
    assert "Scores by source sentence length" in title_of(fig)
    assert "test part, 120 pairs" in title_of(fig)
    axes = plotting_axes(fig)
    assert [ax.get_ylabel() for ax in axes] == ["corpus BLEU (0-100)", "corpus chrF (0-100)"]
    for ax in axes:
        assert ax.get_ylim()[0] == 0
        assert ax.get_xlabel() == "source sentence length (tokens)"
    (legend,) = legends(fig)
    assert [t.get_text() for t in legend.get_texts()] == list(named)
    assert_legends_clear_of_the_axes(fig)
    assert plot_by_length(named, tmp_path / "by_length.png", "test part") is True


def test_one_model_by_length_names_it_in_the_title():
    worse, _ = reports()
    named = {"seq2seq, gru, greedy": worse}
    fig = make_by_length_figure(named, by_length_title("valid", named))
    assert "valid part, 120 pairs; seq2seq, gru, greedy" in title_of(fig)
    assert not legends(fig)  # the title names the one line: nothing lies over it
    assert all(ax.get_ylim()[0] == 0 for ax in plotting_axes(fig))


def test_by_length_title_gives_each_count_when_they_differ():
    worse, _ = reports()
    fewer = score(["a"], ["a"], [1])
    assert by_length_title("test", {"a": worse, "b": fewer}) == "test part, 1 / 120 pairs"


def test_evaluate_titles_its_figure_with_part_model_and_decoding(attention_model, tiny_corpus,
                                                                 tmp_path, capsys,
                                                                 monkeypatch):
    import minis2s.evaluate as evaluation

    seen = {}

    def spy(named, path, title=""):
        seen.update(names=list(named), title=title)
        return plot_by_length(named, path, title)

    monkeypatch.setattr(evaluation, "plot_by_length", spy)
    assert main(["evaluate", "--model", str(attention_model), "--data", str(tiny_corpus),
                 "--part", "train", "--beam", "3", "--plot", str(tmp_path / "b.png")]) == 0
    pairs = re.search(r"train part: (\d+) pairs", capsys.readouterr().out).group(1)
    (name,) = seen["names"]
    assert "attention, gru, beam 3, length penalty 0.75" in name
    assert seen["title"] == f"train part, {int(pairs):,} pairs"
    assert (tmp_path / "b.png").stat().st_size > 1000


# --- gradient flow --------------------------------------------------------------------

def flows():
    out = {}
    for name, scale in (("rnn", 1.0), ("gru", 0.07), ("lstm", 0.003)):
        enc = [[scale * 10 ** (-(12 - t) / 3) * (k + 1) for t in range(12)] for k in range(2)]
        dec = [[scale * 0.1 * (k + 1)] * 12 for k in range(2)]
        out[f"seq2seq, {name}"] = Flow(enc, dec, 1.0, 5.0 * scale ** 0.3)
    return out


def test_gradient_flow_legend_has_its_own_panel(tmp_path):
    fig = make_flow_figure(flows(), clip=1.0, title="12 pairs of long.txt")
    title = title_of(fig)
    assert "‖∂L/∂h_t‖" in title and "12 pairs of long.txt" in title
    axes = plotting_axes(fig)
    assert [ax.get_title() for ax in axes] == ["encoder states", "decoder states"]
    assert axes[0].get_ylabel() == "‖∂L/∂h_t‖ over the batch (log scale)"
    assert all(ax.get_yscale() == "log" for ax in axes)
    assert len(axes[0].lines) == 3 * 2 + 2 * 2  # rnn and gru clipped: a faded twin each
    (legend,) = legends(fig)
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[:3] == ["seq2seq, rnn (clipping scales by 0.2)",
                         "seq2seq, gru (clipping scales by 0.44)", "seq2seq, lstm"]
    assert texts[3:] == ["layer 0", "layer 1", "faded: after clipping at 1"]
    assert_legends_clear_of_the_axes(fig)
    assert plot_flow(flows(), tmp_path / "flow.png", 1.0, "x") is True


def test_gradient_flow_leaves_out_steps_that_no_gradient_reaches():
    flow = Flow([[1e-3, 1e-2, 1e-1]], [[0.5, 0.4, 0.0]], 1.0, 0.5)  # the last is padding
    fig = make_flow_figure({"gru": flow})
    (line,) = plotting_axes(fig)[1].lines
    assert list(line.get_ydata()[:2]) == [0.5, 0.4] and np.isnan(line.get_ydata()[2])


def test_gradflow_titles_its_figure_with_the_pairs(tiny_corpus, tmp_path, capsys,
                                                   monkeypatch):
    import minis2s.gradflow as gradflow

    seen = {}

    def spy(named, path, clip=None, title=""):
        seen.update(names=list(named), title=title)
        return plot_flow(named, path, clip, title)

    monkeypatch.setattr(gradflow, "plot_flow", spy)
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--compare-cells", "--batch-size",
                 "16", "--num-steps", "8", "--plot", str(tmp_path / "flow.png")]) == 0
    assert seen["title"] == (f"16 pairs of {tiny_corpus}; freshly initialised, preset zh, "
                             "seq2seq decoder")
    assert len(seen["names"]) == 3
    assert (tmp_path / "flow.png").stat().st_size > 1000
    capsys.readouterr()


# --- paths matplotlib cannot write, and counts of one ----------------------------------

def one_error_line(err, *words):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minis2s: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a folder\n")
    return path


@pytest.mark.parametrize("name", ["flow.txt", "flow", "notes.txt/flow.png"])
def test_gradflow_refuses_a_plot_it_cannot_write_before_any_work(name, tiny_corpus, a_file,
                                                                 capsys):
    plot = a_file.parent / name
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--plot", str(plot)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no table: refused before any gradient was measured
    line = one_error_line(err, str(plot))
    if name.startswith("flow"):
        assert ".png" in line and ".pdf" in line and ".svg" in line
    else:
        assert f"{a_file} is a file, not a folder" in line
    assert not plot.exists()


def test_evaluate_refuses_a_plot_before_any_model_is_scored(attention_model, tiny_corpus,
                                                            tmp_path, capsys, monkeypatch):
    import minis2s.evaluate as evaluation

    scored = []
    monkeypatch.setattr(evaluation, "evaluate_model", lambda *a, **k: scored.append(a))
    plot = tmp_path / "by_length.txt"
    assert main(["evaluate", "--model", str(attention_model), "--model", str(attention_model),
                 "--data", str(tiny_corpus), "--plot", str(plot)]) == 2
    out, err = capsys.readouterr()
    assert scored == [] and out == ""
    one_error_line(err, str(plot), ".txt is not a format", ".png", ".pdf")


def test_translate_refuses_an_attention_plot_folder_that_is_a_file(attention_model, a_file,
                                                                   capsys, monkeypatch):
    import minis2s.decode as decode

    monkeypatch.setattr(decode, "translations", lambda *a, **k: pytest.fail("translated"))
    assert main(["translate", "--model", str(attention_model), "--attention-plot",
                 str(a_file), "go ."]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    one_error_line(err, str(a_file), "is a file, not a folder")
    assert a_file.read_text() == "not a folder\n"


def test_a_figure_that_fails_to_save_is_one_error_line(tiny_corpus, tmp_path, capsys,
                                                        monkeypatch):
    from matplotlib.figure import Figure

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    plot = tmp_path / "flow.png"
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--plot", str(plot)]) == 2
    out, err = capsys.readouterr()
    assert "enc L0" in out  # the table came first; the figure is what failed
    one_error_line(err, f"cannot write the figure {plot}", "No space left on device")


def test_a_loss_curve_that_cannot_be_written_is_a_warning(a_file):
    said = []
    assert plot_history(history(2), a_file / "loss.png", said.append) is False
    assert said == [f"no loss curve: cannot draw a figure in {a_file / 'loss.png'}: "
                    f"{a_file} is a file, not a folder"]


def test_figure_titles_count_one_pair_as_one():
    fig = make_history_figure(history(1), get_preset("zh"), 1)
    assert title_of(fig).endswith("; 1 training pair")
    named = {"a": score(["a"], ["a"], [1])}
    assert by_length_title("test", named) == "test part, 1 pair"
    fig = make_by_length_figure(named, by_length_title("test", named))
    assert "test part, 1 pair; a" in title_of(fig)
