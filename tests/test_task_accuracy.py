"""Exact match and token accuracy (minis2s/evaluate.py) against a hand-made oracle: a
few outputs and references whose accuracies were counted by hand, on the whole, by
source length and in the table and figure that show them."""

import pytest

from minis2s import evaluate as ev
from minis2s.evaluate import (
    AccuracyBucket,
    AccuracyReport,
    accuracy,
    by_length_table,
    score,
    token_matches,
)

# (source length, reference, output), each counted by hand: positions right of positions
# counted, the longer of the two sequences
ORACLE = [
    (5, "168", "168"),  # 3 of 3, exact
    (4, "1000", "100"),  # 1 0 0 right, the fourth missing: 3 of 4
    (3, "42", "420"),  # 4 2 right, one too many: 2 of 3
    (5, "57", "75"),  # both wrong: 0 of 2
    (1, "9", ""),  # nothing written: 0 of 1
    (12, "1994-09-27", "1994-09-72"),  # the last two swapped: 8 of 10
    (7, "12345", "2345"),  # the first dropped, the rest one place early: 0 of 5
]
HYPS = [list(h) for _, _, h in ORACLE]
REFS = [list(r) for _, r, _ in ORACLE]
LENGTHS = [n for n, _, _ in ORACLE]


def test_token_matches_counts_the_longer_sequence():
    assert [token_matches(h, r) for h, r in zip(HYPS, REFS)] == [
        (3, 3), (3, 4), (2, 3), (0, 2), (0, 1), (8, 10), (0, 5)]


def test_accuracy_on_the_whole_is_the_hand_count():
    report = accuracy(HYPS, REFS, LENGTHS)
    assert report.pairs == 7
    assert report.exact_match == pytest.approx(100 * 1 / 7)  # only "168"
    # (3 + 3 + 2 + 0 + 0 + 8 + 0) right of (3 + 4 + 3 + 2 + 1 + 10 + 5) counted
    assert report.token_accuracy == pytest.approx(100 * 16 / 28)


def test_accuracy_by_source_length_is_the_hand_count():
    """One bucket per source length, shortest first, each scored on its own pairs."""
    report = accuracy(HYPS, REFS, LENGTHS)
    assert report.buckets == [
        AccuracyBucket("1", 1, 0.0, 0.0),  # "9" -> "": 0 of 1
        AccuracyBucket("3", 1, 0.0, pytest.approx(100 * 2 / 3)),  # "42" -> "420"
        AccuracyBucket("4", 1, 0.0, 75.0),  # "1000" -> "100"
        AccuracyBucket("5", 2, 50.0, pytest.approx(100 * 3 / 5)),  # "168" right, "57" not
        AccuracyBucket("7", 1, 0.0, 0.0),  # "12345" -> "2345"
        AccuracyBucket("12", 1, 0.0, 80.0),  # 8 of 10
    ]


def test_other_edges_bucket_as_bleu_does():
    """Edges as BLEU's: the same buckets, labelled alike, as score() gives."""
    report = accuracy(HYPS, REFS, LENGTHS, edges=ev.LENGTH_EDGES)
    assert [(b.label, b.pairs) for b in report.buckets] == [
        ("1-3", 2), ("4-5", 3), ("6-7", 1), ("11-15", 1)]
    words = [" ".join(r) for r in REFS]
    assert [(b.label, b.pairs) for b in score(words, words, LENGTHS).buckets] == \
        [(b.label, b.pairs) for b in report.buckets]
    four_five = report.buckets[1]
    assert four_five.exact_match == pytest.approx(100 / 3)
    assert four_five.token_accuracy == pytest.approx(100 * 6 / 9)  # 3 + 3 + 0 of 3 + 4 + 2


def test_every_output_right_is_one_hundred_and_none_is_zero():
    report = accuracy(REFS, REFS, LENGTHS)
    assert (report.exact_match, report.token_accuracy) == (100.0, 100.0)
    wrong = accuracy([["x"] * len(r) for r in REFS], REFS, LENGTHS)
    assert (wrong.exact_match, wrong.token_accuracy) == (0.0, 0.0)


def test_exact_match_needs_the_length_too():
    """A right prefix, or a right sequence with more after it, is no exact match."""
    report = accuracy([list("12"), list("1234")], [list("123"), list("123")], [3, 3])
    assert report.exact_match == 0.0
    assert report.token_accuracy == pytest.approx(100 * (2 + 3) / (3 + 4))


def test_the_table_lines_up_its_columns():
    report = AccuracyReport(3, 50.0, 60.0, [AccuracyBucket("3", 2, 100.0, 100.0),
                                            AccuracyBucket("12", 1001, 0.0, 12.345)])
    assert by_length_table(report) == (
        "source tokens   pairs   exact   token\n"
        "            3       2  100.00  100.00\n"
        "           12    1001    0.00   12.35")


def test_the_figure_draws_both_accuracies_per_length():
    pytest.importorskip("matplotlib")
    reports = {"a": accuracy(HYPS, REFS, LENGTHS),
               "b": accuracy(REFS, REFS, [2, 2, 2, 2, 2, 2, 2])}
    fig = ev.make_by_length_figure(reports, "test part, 7 pairs")
    fig.canvas.draw()
    exact_ax, token_ax = fig.axes[:2]
    assert exact_ax.get_title() == "exact match by source length"
    assert token_ax.get_title() == "token accuracy by source length"
    assert exact_ax.get_ylabel() == "outputs right (%)"
    assert token_ax.get_ylabel() == "tokens right (%)"
    assert exact_ax.get_xlabel() == "source length (tokens)"
    ticks = [t.get_text() for t in exact_ax.get_xticklabels()]
    assert ticks == ["1", "2", "3", "4", "5", "7", "12"]
    for ax, key in ((exact_ax, "exact_match"), (token_ax, "token_accuracy")):
        for line, report in zip(ax.get_lines(), reports.values()):
            assert [ticks[int(x)] for x in line.get_xdata()] == \
                [b.label for b in report.buckets]
            assert list(line.get_ydata()) == [getattr(b, key) for b in report.buckets]
    assert fig._suptitle.get_text() == "Accuracy by source length\ntest part, 7 pairs"


def test_one_figure_takes_one_kind_of_report():
    mixed = {"task": accuracy(HYPS, REFS, LENGTHS),
             "corpus": score(["a b"], ["a b"], [2])}
    with pytest.raises(ValueError) as refused:
        ev.make_by_length_figure(mixed)
    assert str(refused.value) == "one figure draws BLEU or accuracy: give reports of one kind"


def test_the_figures_text_is_ten_point_and_no_report_draws_empty_bleu_axes():
    fig = ev.make_by_length_figure({"task": accuracy(HYPS, REFS, LENGTHS)})
    assert fig._suptitle.get_fontsize() == 10
    assert [ax.title.get_fontsize() for ax in fig.axes] == [10, 10]
    empty = ev.make_by_length_figure({})  # nothing to draw: the corpus's axes, no line
    assert empty._suptitle.get_text() == ev.Report.HEADING
    assert [len(ax.get_lines()) for ax in empty.axes] == [0, 0]


def test_nothing_to_count_is_zero_not_an_error():
    empty = accuracy([], [], [])
    assert (empty.pairs, empty.exact_match, empty.token_accuracy, empty.buckets) == \
        (0, 0.0, 0.0, [])
    # an empty output for an empty reference: exact, but no position to count
    blank = accuracy([[]], [[]], [3])
    assert (blank.exact_match, blank.token_accuracy) == (100.0, 0.0)
    assert [(b.label, b.exact_match, b.token_accuracy) for b in blank.buckets] == \
        [("3", 100.0, 0.0)]


def test_a_source_of_no_token_counts_on_the_whole_and_in_no_length():
    report = accuracy([["a"], ["b"]], [["a"], ["c"]], [0, 2])
    assert (report.pairs, report.exact_match) == (2, 50.0)
    assert [(b.label, b.pairs) for b in report.buckets] == [("2", 1)]
