"""What a run tells its log: off a terminal (a log file, a batch job), or on one with
``--quiet``, training prints one line per epoch with its loss, speed and the time left,
and a line every ``log_every`` seconds inside an epoch (minis2s/train/progress.py)."""

import io
import re
import sys

import pytest

from minis2s import checkpoint
from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.presets import get_preset
from minis2s.train import run_experiment
from minis2s.train.progress import ProgressLog
from minis2s.train.trainer import EpochProgress, EpochStats

EPOCH_LINE = re.compile(r"minis2s: epoch (\d+)/(\d+): loss (\d+\.\d{3})(, validation \d+\.\d{3})?"
                        r", [\d,]+ tokens/sec, [\d.]+ s(?:, about (.+) left)?")
BATCH_LINE = re.compile(r"minis2s: epoch (\d+)/(\d+): batch (\d+)/(\d+), loss \d+\.\d{3} so far"
                        r", about (.+) left")
DURATION = re.compile(r"\d+ s|\d+ min \d\d s|\d+ h \d\d min")


def _train(corpus, out, *flags) -> int:
    """200 pairs of the tiny corpus: 4 batches of at most 64 pairs an epoch."""
    return main(["train", "--data", str(corpus), "--preset", "zh", "--examples", "199",
                 *flags, "--out", str(out)])


@pytest.mark.parametrize("flags", [["--quiet"], [], ["--valid-size", "40"]],
                         ids=["quiet", "no-terminal", "validation"])
def test_training_off_a_terminal_prints_one_line_per_epoch(tiny_corpus, tmp_path, capsys,
                                                           flags):
    assert _train(tiny_corpus, tmp_path, "--epochs", "3", *flags) == 0
    err = capsys.readouterr().err.splitlines()
    lines = [m for m in map(EPOCH_LINE.fullmatch, err) if m]
    assert [(m[1], m[2]) for m in lines] == [("1", "3"), ("2", "3"), ("3", "3")], err
    history = checkpoint.load(tmp_path / "checkpoint.npz").training["history"]
    assert [m[3] for m in lines] == [f"{h['loss']:.3f}" for h in history]
    assert all(bool(m[4]) == ("--valid-size" in flags) for m in lines)
    left = [m[5] for m in lines]
    assert all(t is not None and DURATION.fullmatch(t) for t in left[:-1]), left
    assert left[-1] is None  # nothing left after the last epoch
    assert not any(BATCH_LINE.fullmatch(line) for line in err)  # epochs of well under 300 s
    assert "1 epochs" not in " ".join(err) and "3 epochs on numpy" in " ".join(err)


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a shell's is."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [True, False], ids=["quiet", "bar"])
def test_on_a_terminal_quiet_prints_the_epoch_lines_instead_of_the_bar(
        tiny_corpus, tmp_path, monkeypatch, quiet):
    """With ``--quiet`` a terminal gets the lines a log gets; without it, the bar alone
    (which shows that this stderr passes for a terminal)."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _train(tiny_corpus, tmp_path, "--epochs", "2",
                  *(["--quiet"] if quiet else [])) == 0
    err = terminal.getvalue()
    epochs = [m[1] for m in map(EPOCH_LINE.fullmatch, err.splitlines()) if m]
    bar = "\r" in err and "batch/s" in err
    if quiet:
        assert epochs == ["1", "2"] and not bar, err
    else:
        assert epochs == [] and bar, err


def test_one_epoch_is_one_epoch(tiny_corpus, tmp_path, capsys):
    assert _train(tiny_corpus, tmp_path, "--quiet", "--epochs", "1") == 0
    err = capsys.readouterr().err
    assert ", 1 epoch on numpy" in err and "1 epochs" not in err


def test_a_line_every_log_every_seconds_inside_an_epoch(tiny_corpus, tmp_path):
    said = []
    preset = get_preset("zh").with_overrides(num_examples=199, epochs=2)
    run_experiment(preset, tiny_corpus, get_backend("numpy"), tmp_path, progress=False,
                   warn=said.append, log_every=0)
    progress = [s for s in said if s.startswith("epoch ")]
    shapes = [("batch", m[1], m[3], m[4]) if (m := BATCH_LINE.fullmatch("minis2s: " + s))
              else ("epoch", EPOCH_LINE.fullmatch("minis2s: " + s)[1]) for s in progress]
    # after each batch but an epoch's last, whose epoch line follows
    assert shapes == [("batch", "1", "1", "4"), ("batch", "1", "2", "4"),
                      ("batch", "1", "3", "4"), ("epoch", "1"),
                      ("batch", "2", "1", "4"), ("batch", "2", "2", "4"),
                      ("batch", "2", "3", "4"), ("epoch", "2")], progress


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_time_left_and_the_interval_follow_the_clock():
    clock, said = _Clock(), []
    log = ProgressLog(said.append, every=300, last_epoch=3, batches_per_epoch=10,
                      batches_left=30, clock=clock)
    p = EpochProgress({}, loss_sum=12.0, tokens=24)
    for batch in range(1, 11):
        clock.now += 62 / 10 * 2  # 12.4 s a batch: 2 min 04 s an epoch
        p.batches = batch
        log.batch(1, p)
    assert said == []  # 124 s in epoch 1, less than every 300 s
    log.epoch(EpochStats(1, 0.5, 4000, 124.0))
    assert said == ["epoch 1/3: loss 0.500, 32 tokens/sec, 2 min 04 s, about 4 min 08 s left"]
    for batch in range(1, 6):
        clock.now += 100
        p.batches = batch
        log.batch(2, p)
    # 300 s after the epoch line, at batch 3: 13 batches done in 424 s, 17 to go
    assert said[1:] == ["epoch 2/3: batch 3/10, loss 0.500 so far, about 9 min 14 s left"]
