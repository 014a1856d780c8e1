"""benchmarks/experiments.py and benchmarks/task_targets.py, the scripts behind
docs/experiments.md: the runs they name are commands minis2s takes, the page gives every
command the script runs and shows the figures it draws, and the helpers say what they
should."""

import contextlib
import importlib
import io
import re
import sys
from pathlib import Path

import pytest

from minis2s.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts, as they import each other
experiments = importlib.import_module("experiments")
targets = importlib.import_module("task_targets")
PAGE = ROOT / "docs" / "experiments.md"
RUNS = ["add_plain", "add_reversed", "date_attention",
        *[f"reverse_{d}_{c}" for d in experiments.DECODERS for c in experiments.CELLS],
        *[f"loss_{r}" for r in experiments.REDUCTIONS]]


def dry_run(out="runs/experiments") -> list[str]:
    """The commands a dry run prints, each without its ``$ ``."""
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        experiments.main(["--dry-run", "--out", out])
    return [line[2:] for line in text.getvalue().splitlines() if line.startswith("$ ")]


@pytest.mark.parametrize("name", RUNS)
def test_every_run_is_a_train_command_minis2s_takes(name):
    args = build_parser().parse_args(["train", *experiments.train_args(name), "--out", "x"])
    assert args.task == ("reverse" if name.startswith("loss_") else name.split("_")[0])
    assert args.loss_reduction == (name[5:] if name.startswith("loss_") else None)
    if name.startswith("reverse_"):
        assert (args.model, args.cell) == tuple(name.split("_")[1:])
    assert args.reverse_source is (True if name == "add_reversed" else None)


def test_an_unknown_run_is_refused():
    for name in ("reverse_seq2seq_tanh", "reverse_bahdanau_gru", "add", "copy", "loss_token",
                 "french_unmasked", "french"):
        with pytest.raises(ValueError, match="no run called"):
            experiments.train_args(name)


@pytest.mark.parametrize("reduction", experiments.FRENCH_REDUCTIONS)
def test_each_french_run_is_the_big_preset_on_the_corpus_with_its_loss(reduction):
    args = build_parser().parse_args(
        ["train", *experiments.train_args(f"french_{reduction}"), "--out", "x"])
    assert (args.preset, args.task, args.loss_reduction) == ("big", None, reduction)
    assert args.data is None  # the corpus of $MINIS2S_DATA: no path in the page's commands
    assert "seq" in experiments.FRENCH_REDUCTIONS  # d2l's own loss is among them


def test_output_lengths_are_counted_against_the_references():
    refs = ["a b c", "a b c d e f g h i j", "a b", "a b c d e f g h i j k l"] + ["a"] * 6
    hyps = ["a b", "a b c d e f g h i j k l", "a b c d", "a b c d e f"] + ["a b"] * 6
    # 2+12+4+6+12 = 36 output tokens for 3+10+2+12+6 = 33; the longest tenth of the ten
    # references: 12 tokens and more, one pair, 6 tokens for 12; one output of 12 tokens
    # reaches a limit of 12
    assert experiments.length_stats(hyps, refs, limit=12) == {
        "length_ratio": round(36 / 33, 4), "long_from": 12, "long_pairs": 1,
        "long_length_ratio": 0.5, "at_limit": 10.0}
    assert experiments.length_stats(hyps, refs, limit=13)["at_limit"] == 0.0
    # ties at the threshold all count as long
    tied = experiments.length_stats(["a"] * 4, ["a b", "a b", "a", "a"], limit=5)
    assert (tied["long_from"], tied["long_pairs"], tied["long_length_ratio"]) == (2, 2, 0.5)


def test_with_epochs_changes_the_epochs_only():
    args = experiments.train_args("add_plain")
    changed = experiments.with_epochs(args, 7)
    i = args.index("--epochs")
    assert changed[i + 1] == "7" and len(changed) == len(args)
    assert changed[:i + 1] + changed[i + 2:] == args[:i + 1] + args[i + 2:]


def test_reverse_pairs_are_strings_and_their_reverses():
    lines = experiments.reverse_pairs(50, length=20)
    assert lines == experiments.reverse_pairs(50, length=20)  # the same from the seed
    assert len(set(lines)) == 50
    for line in lines:
        source, target = line.split("\t")
        assert len(source) == 20 and set(source) <= set("abcdefghij")
        assert target == source[::-1]


def test_every_command_of_a_dry_run_parses(tmp_path):
    commands = dry_run(str(tmp_path))
    assert len(commands) > 30
    parser = build_parser()
    for command in commands:
        words = re.findall(r"'[^']*'|\S+", command)
        words = [w.strip("'") for w in words]
        assert words[0] == "minis2s"
        parser.parse_args(words[1:])


def test_the_page_gives_every_command_the_script_runs():
    page = PAGE.read_text(encoding="utf-8")
    assert "python benchmarks/experiments.py" in page
    missing = [c for c in dry_run() if c not in page]
    assert not missing, f"docs/experiments.md lacks the commands {missing[:3]} ..."


def test_the_page_shows_each_figure_the_script_draws_and_docs_ships_it():
    page = PAGE.read_text(encoding="utf-8")
    for figure in experiments.FIGURES.values():
        assert f"]({figure})" in page, figure
        assert (ROOT / "docs" / figure).is_file(), figure


@pytest.mark.parametrize("exact, seconds, expected", [
    (99.0, 119.9, "reached"),
    (100.0, 10.0, "reached"),
    (98.99, 60.0, "missed: accuracy 98.99% < 99%"),
    (99.5, 120.0, "missed: 120 s >= 120 s"),
    (50.0, 300.0, "missed: accuracy 50.00% < 99%, 300 s >= 120 s"),
])
def test_a_target_is_reached_at_its_accuracy_within_two_minutes(exact, seconds, expected):
    assert targets.verdict(exact, 99.0, seconds) == expected


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_each_target_is_a_train_command_of_its_task_as_the_target_words_it(name):
    target, _ = targets.TARGETS[name]
    assert target >= 99
    args = build_parser().parse_args(["train", *targets.target_args(name), "--out", "x"])
    assert args.task == name and args.epochs >= 1
    if name in ("date", "reverse"):
        assert args.model == "attention"
    if name == "add":
        assert args.train_size is None  # the task's own 50,000 pairs
    if name == "reverse":
        assert args.max_len == 20
    plain = build_parser().parse_args(["train", *targets.plain_args(name), "--out", "x"])
    assert plain.model == "seq2seq"
    assert {**vars(plain), "model": None} == {**vars(args), "model": None}


def test_the_scripts_own_figures_are_drawn_from_their_tables(tmp_path):
    pytest.importorskip("matplotlib")
    table = [{"beam": k, "length_penalty": a, "exact_match": 10.0 + k, "user_s": 1.0 + k}
             for a in experiments.PENALTIES for k in experiments.BEAMS
             if k > 1 or a == experiments.PENALTIES[0]]
    experiments.plot_beam(table, tmp_path / "beam.png")
    french = [{**row, "bleu": 20.0 + row["beam"] + row["length_penalty"]} for row in table]
    fig = experiments.plot_beam(french, tmp_path / "french.png", "bleu", "corpus BLEU",
                                "eng-fra")
    scores, seconds = fig.axes
    assert scores.get_ylabel() == "corpus BLEU" and fig._suptitle.get_text() == "eng-fra"
    for line, alpha in zip(scores.get_lines(), experiments.PENALTIES):
        assert line.get_label() == f"α = {alpha}"
        widths = list(line.get_xdata())
        assert widths == sorted(experiments.BEAMS)  # greedy, then this penalty's widths
        assert list(line.get_ydata()) == [20.0 + k + (alpha if k > 1 else 0.0)
                                          for k in widths]
    assert [list(line.get_ydata()) for line in seconds.get_lines()][0] == [
        1.0 + k for k in sorted(experiments.BEAMS)]
    curves = {name: {"valid_exact_match_by_epoch": [3.0, 5.0]}
              for name in experiments.ADD_RUNS}
    experiments.plot_curves(curves, tmp_path / "add.png")
    for name in ("beam.png", "french.png", "add.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_beam_against_greedy_counts_each_pair_where_they_part():
    refs = ["abc", "abc", "abc", "abc", "abc", "abc"]
    greedy = ["abc", "abc", "abc", "abd", "xyz", "abc"]
    beam = ["abc", "abcd", "ab", "abc", "xyz", "acb"]
    assert experiments.compare_outputs(greedy, beam, refs) == {
        "won": 1, "lost": 3, "lost_longer": 1, "lost_shorter": 1, "lost_same_length": 1}
