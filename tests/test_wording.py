"""How minis2s says counts and durations (minis2s/wording.py), and the messages that
count things with it."""

from types import SimpleNamespace

import pytest

from minis2s.data import read_pairs
from minis2s.train.trainer import EpochProgress, Trainer
from minis2s.wording import format_duration, plural


@pytest.mark.parametrize(("seconds", "text", "whole"), [
    (0.2, "0.2 s", "1 s"), (12.34, "12.3 s", "12 s"), (61.6, "1 min 02 s", "1 min 02 s"),
    (7500, "2 h 05 min", "2 h 05 min")])
def test_durations_read_as_people_say_them(seconds, text, whole):
    assert format_duration(seconds) == text
    assert format_duration(seconds, tenths=False) == whole


def test_plural_says_one_and_many():
    assert [plural(n, "pair") for n in (0, 1, 2)] == ["0 pairs", "1 pair", "2 pairs"]
    assert plural(12345, "pair", ",") == "12,345 pairs"
    assert [plural(n, "batch", many="batches") for n in (1, 2)] == ["1 batch", "2 batches"]


@pytest.mark.parametrize(("batches", "said"), [(1, "after 1 batch"), (2, "after 2 batches")])
def test_a_stopped_run_says_how_many_batches(batches, said):
    trainer = SimpleNamespace(history=[], preset=SimpleNamespace(epochs=3),
                              epoch_progress=EpochProgress({}, batches=batches))
    assert Trainer.position(trainer) == f"in epoch 1/3 {said}"


@pytest.mark.parametrize(("bad", "said"), [(1, "skipped 1 line of"), (2, "skipped 2 lines of")])
def test_skipped_lines_are_counted_in_words(tmp_path, bad, said):
    path = tmp_path / "pairs.txt"
    path.write_text("Go.\tVa !\n" + "no tab here\n" * bad, encoding="utf-8")
    warned = []
    read_pairs(path, warn=warned.append)
    assert warned == [f"minis2s: {said} pairs.txt ({bad} without a tab)"]
