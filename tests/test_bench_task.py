"""``minis2s bench --task NAME``: every contender trains on the task's pairs, the ones
``minis2s train --task NAME`` trains on; bad task options are refused before any run, and
without ``--task`` the benchmark is as it was (its figures are not asserted: no timed
tests)."""

import io
import json

import pytest

from minis2s import bench, checkpoint
from minis2s.bench import launch, report
from minis2s.cli import main
from minis2s.data import make_task

# a small task and model, so that each run takes about a second
TASK = ["--task", "reverse", "--train-size", "200", "--max-len", "5"]
SIZES = {"embed_size": 8, "num_hiddens": 16, "num_layers": 1, "batch_size": 32}
SIZE_FLAGS = ["--embed-size", "8", "--num-hiddens", "16", "--num-layers", "1",
              "--batch-size", "32"]


def test_bench_trains_every_contender_on_the_task_train_trains_on(tmp_path, monkeypatch):
    """minis2s's loss after one epoch is the one ``minis2s train`` records for the same
    task, model and seed (so the task's pairs, not the corpus's, reached the run), and
    PyTorch's, on the same pairs, batches and weights, is within float32's reach of it."""
    monkeypatch.delenv("MINIS2S_DATA", raising=False)  # no corpus to fall back on
    task = make_task("reverse", {"train_size": 200, "max_len": 5})
    out = io.StringIO()
    vs_torch = bench.have_torch()
    summary = bench.bench("zh", epochs=1, repeats=1, vs_torch=vs_torch, seed=3, out=out,
                          task=task, sizes=SIZES)
    text = out.getvalue()
    assert f"task {task.describe()}" in text
    assert "embed 8, 1 x 16 units, batches of 32" in text
    assert main(["train", *TASK, *SIZE_FLAGS, "--epochs", "1", "--seed", "3", "--quiet",
                 "--out", str(tmp_path)]) == 0
    trained = checkpoint.load(tmp_path / "checkpoint.npz").training["history"][0]["loss"]
    assert summary["minis2s"]["loss"] == pytest.approx(trained, rel=1e-6)
    if vs_torch:
        assert "ratio minis2s / pytorch" in text
        assert summary["pytorch"]["loss"] == pytest.approx(trained, rel=1e-3)


def test_the_task_travels_to_each_run_in_its_overrides(monkeypatch):
    """The command line of a run carries the task, and the worker that reads it trains
    on the task's pairs with the sizes given."""
    seen = []

    def run(cmd, **kwargs):
        seen.append(cmd)
        result = bench.Result("minis2s", 1.0, 1.0, 1.0, 1.0, 1)
        return launch.subprocess.CompletedProcess(cmd, 0, json.dumps(result.__dict__), "")

    monkeypatch.setattr(launch.subprocess, "run", run)
    task = make_task("add", {"digits": 2, "train_size": 300})
    monkeypatch.setattr(report, "gemm_ceiling_gflops", lambda **kwargs: 1.0)
    bench.bench("zh", repeats=1, vs_torch=False, task=task, sizes=SIZES, out=io.StringIO())
    (cmd,) = seen
    assert cmd[cmd.index("--epochs") + 1] == "1"  # a task's runs default to one epoch
    assert "--data" not in cmd
    args = bench.build_parser().parse_args(cmd[cmd.index("--worker"):])
    runs = []
    monkeypatch.setattr(launch, "run_minis2s", lambda preset, data, *rest: runs.append(
        (preset, data)) or bench.Result("minis2s", 1.0, 1.0, 1.0, 1.0, 1))
    launch.worker(args)
    (preset, data), = runs
    assert preset.task == task and preset.num_steps == task.min_num_steps()
    assert {k: getattr(preset, k) for k in SIZES} == SIZES
    assert len(data.train) == 300 and "+" in data.src_vocab.idx_to_token


@pytest.mark.parametrize("flags, says", [
    (["--task", "add", "--digits", "0"], "--digits must be a whole number from 1 to 30, got 0"),
    (["--task", "add", "--max-len", "5"], "--max-len is not an option of task add"),
    (["--task", "reverse", "--min-len", "6", "--max-len", "4"], "--max-len must be >= "
     "--min-len (6), got 4"),
    (["--digits", "3"], "--digits is an option of the generated tasks: give --task NAME too"),
    (["--task", "reverse", "--data", "fra.txt"], "--data names a corpus to read, and --task "
     "reverse makes pairs of its own"),
    (["--task", "copy", "--num-hiddens", "0"], "--num-hiddens"),
    (["--task", "add", "--digits", "2", "--train-size", "20000"], "task add has 10,000 "
     "distinct pairs"),
])
def test_bad_task_options_are_refused_in_one_line_before_any_run(monkeypatch, capsys, flags,
                                                                 says):
    monkeypatch.setattr(launch.subprocess, "run", lambda *a, **k: pytest.fail("a run started"))
    for run in (lambda: main(["bench", *flags]), lambda: bench.main(flags)):
        assert run() == 2
        captured = capsys.readouterr()
        (line,) = captured.err.splitlines()
        assert line.startswith("minis2s bench: error: ") and says in line
        assert captured.out == ""


def test_without_a_task_the_runs_are_the_corpus_runs_as_before(monkeypatch, tiny_corpus):
    """No task flag: each run is given only the cell and the model, and the preset's
    epochs, as before --task existed."""
    calls = []

    def spawn(impl, preset, epochs, seed, data, overrides=None, **kwargs):
        calls.append((impl, preset, epochs, data, overrides))
        return bench.Result(impl, 1.0, 1.0, 1.0, 1.0, epochs)

    monkeypatch.setattr(report, "spawn", spawn)
    monkeypatch.setattr(report, "gemm_ceiling_gflops", lambda **kwargs: 1.0)
    ran = []
    monkeypatch.setattr(bench, "bench", lambda *a, **k: ran.append(k) or report.bench(*a, **k))
    assert bench.main(["--repeats", "1", "--data", str(tiny_corpus)]) == 0
    assert ran[0]["task"] is None and ran[0]["sizes"] == {}
    assert calls == [("minis2s", "zh", 30, str(tiny_corpus),
                      {"cell": "gru", "model": "seq2seq"})]
