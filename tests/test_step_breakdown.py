"""benchmarks/step_breakdown.py: the parts of a step it prints, and the time loops it
times inside them with --layers; benchmarks/thread_halves.py runs."""

import contextlib
import importlib
import io
import re
import sys
from pathlib import Path

import pytest

from minis2s.ops import CELLS, GRU

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
breakdown = importlib.import_module("step_breakdown")


def _run(argv) -> str:
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert breakdown.main(argv) == 0
    return text.getvalue()


def _ms(text: str, label: str) -> float:
    return float(re.search(rf"^\s*{label}\s+([\d.]+) ms", text, re.M).group(1))


def test_layers_are_timed_inside_forward_and_backward(corpus):
    text = _run(["--preset", "zh", "--repeats", "3", "--layers", "--data", str(corpus)])
    loops = re.findall(r"^    gru time loops\s+([\d.]+) ms\s+([\d.]+)% of the (\w+)$", text,
                       re.M)
    assert [part for _, _, part in loops] == ["forward", "backward"]
    for ms, share, part in loops:
        assert 0 < float(ms) <= _ms(text, part)  # a part of the part, and not nothing
        assert 0 < float(share) <= 100
    assert CELLS["gru"] is GRU  # the cell is put back


def test_without_layers_no_loop_lines(corpus):
    text = _run(["--preset", "zh", "--repeats", "2", "--data", str(corpus)])
    assert "time loops" not in text
    for part in breakdown.PARTS:
        assert _ms(text, part) >= 0
    assert "tokens/sec" in text


def test_the_cell_is_put_back_when_a_step_fails():
    spent = dict.fromkeys(breakdown.LOOPS, 0.0)
    with pytest.raises(RuntimeError), breakdown.timed_loops("gru", spent):
        assert CELLS["gru"] is not GRU
        raise RuntimeError("a step failed")
    assert CELLS["gru"] is GRU


def test_thread_halves_times_every_way(corpus):
    """benchmarks/thread_halves.py, the trial behind the two-threads row of
    docs/performance.md: it runs, and prints a time for each way it compares."""
    pytest.importorskip("threadpoolctl")  # the mpi extra's, which the trial needs
    halves = importlib.import_module("thread_halves")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert halves.main(["--preset", "zh", "--repeats", "1", "--data", str(corpus)]) == 0
    for way in halves.WAYS:
        assert float(re.search(rf"  {re.escape(way)}\s+([\d.]+) ms", text.getvalue())
                     .group(1)) > 0


def test_default_malloc_leaves_the_allocator_alone(corpus, monkeypatch):
    """--default-malloc: the trainer does not ask for freed memory to be kept (without
    it, it does); the comparison behind performance.md's row."""
    import minis2s.train.trainer as trainer_module

    calls = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append(1))
    _run(["--preset", "zh", "--repeats", "1", "--data", str(corpus)])
    assert calls == [1]
    _run(["--preset", "zh", "--repeats", "1", "--data", str(corpus), "--default-malloc"])
    assert calls == [1]
