"""The benchmark runs end to end (its figures are not asserted: no timed tests)."""

import io
import json
import subprocess

import pytest

from minis2s import bench
from minis2s.bench import launch, report


def test_bench_runs_and_reports(tiny_corpus):
    out = io.StringIO()
    vs_torch = bench.have_torch()
    summary = bench.bench("zh", epochs=1, repeats=1, vs_torch=vs_torch, data=tiny_corpus,
                          out=out)
    text = out.getvalue()
    assert "minis2s" in text and "tokens/sec" in text and "nominal work" in text
    assert "  machine: " in text and "  matrix products: " in text
    assert [line.split(":")[0] for line in summary["machine"]] == ["machine", "matrix products"]
    assert summary["minis2s"]["tokens_per_sec"] > 0
    assert summary["flops_per_token"] > 0 and summary["gemm_ceiling_gflops"] > 0
    if vs_torch:
        assert "ratio minis2s / pytorch" in text and summary["ratio"] > 0


def test_vs_torch_without_torch_is_a_clear_error(monkeypatch, tiny_corpus):
    monkeypatch.setattr(report, "have_torch", lambda: False)
    with pytest.raises(bench.BenchError, match="PyTorch"):
        bench.bench("zh", epochs=1, repeats=1, vs_torch=True, data=tiny_corpus)


def test_ranks_without_a_launcher_is_a_clear_error_before_any_run(monkeypatch, tiny_corpus):
    monkeypatch.setattr(launch.shutil, "which", lambda name: None)
    monkeypatch.setattr(report, "spawn", lambda *a, **k: pytest.fail("a run was started"))
    with pytest.raises(bench.BenchError, match="--ranks needs"):
        bench.bench("zh", epochs=1, repeats=1, vs_torch=False, data=tiny_corpus, ranks=2)


def test_ranks_below_one_are_refused(tiny_corpus):
    with pytest.raises(bench.BenchError, match="at least 1"):
        bench.bench("zh", epochs=1, repeats=1, vs_torch=False, data=tiny_corpus, ranks=0)


def test_what_four_ranks_gain_and_what_their_sums_cost():
    """The ranks' summary from made-up runs: the speedup is the ratio of the tokens/sec
    medians, the sums' share is per step, and a ring over 4 ranks sends 2 (4 - 1) / 4 =
    1.5 times the gradient buffer from each rank."""
    runs = [bench.Result("minis2s-4ranks", tps, 1.0, 10.0, 1.0, 1, 4, step, summed, 1.5,
                         8_000_000)
            for tps, step, summed in [(300.0, 50.0, 5.0), (280.0, 52.0, 6.0),
                                      (400.0, 40.0, 2.0)]]  # medians, not means
    info = report.ranks_summary(runs, {"tokens_per_sec": 100.0}, 4, io.StringIO())
    assert info["speedup"] == pytest.approx(3.0)
    assert info["step_ms"] == 50.0 and info["allreduce_ms"] == 5.0
    assert info["allreduce_share"] == pytest.approx(0.1)
    assert info["ring_bytes_per_rank"] == pytest.approx(12_000_000)


def test_a_launcher_that_starts_no_mpi_job_is_a_clear_error(monkeypatch):
    """mpiexec from another MPI than mpi4py's starts R lone processes: each reports one
    rank, and the benchmark says so rather than printing a lone process's figures."""
    lone = bench.Result("minis2s", 100.0, 1.0, 10.0, 1.0, 1)

    def run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, json.dumps(lone.__dict__) + "\n", "")

    monkeypatch.setattr(launch, "mpiexec_command", lambda ranks: ["mpiexec", "-n", "2"])
    monkeypatch.setattr(launch.subprocess, "run", run)
    with pytest.raises(bench.BenchError, match="did not start one MPI job"):
        launch.spawn("minis2s", "zh", 1, 0, None, ranks=2)


@pytest.mark.parametrize("stdout", ["", "not json\n", '{"impl": "minis2s"}\n'])
def test_a_worker_without_its_result_line_is_a_clear_error(monkeypatch, stdout):
    def run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, stdout, "a warning")

    monkeypatch.setattr(launch.subprocess, "run", run)
    with pytest.raises(bench.BenchError, match="gave no result line"):
        launch.spawn("minis2s", "zh", 1, 0, None)


def test_vs_jax_without_jax_is_a_clear_error(monkeypatch, tiny_corpus):
    monkeypatch.setattr(report, "have_jax", lambda: False)
    monkeypatch.setattr(report, "spawn", lambda *a, **k: pytest.fail("a run was started"))
    with pytest.raises(bench.BenchError, match="needs JAX"):
        bench.bench("zh", epochs=1, repeats=1, vs_torch=False, vs_jax=True, data=tiny_corpus)


@pytest.mark.parametrize("change, says", [({"model": "attention"}, "seq2seq"),
                                          ({"backend": "cupy"}, "CPU only")])
def test_vs_jax_refuses_what_its_reference_does_not_model(monkeypatch, tiny_corpus, change,
                                                          says):
    pytest.importorskip("jax")
    monkeypatch.setattr(report, "spawn", lambda *a, **k: pytest.fail("a run was started"))
    with pytest.raises(bench.BenchError, match=says):
        bench.bench("zh", epochs=1, repeats=1, vs_torch=False, vs_jax=True,
                    data=tiny_corpus, **change)
