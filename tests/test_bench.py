"""The benchmark runs end to end (its figures are not asserted: no timed tests)."""

import io

import pytest

from minis2s import bench


def test_bench_runs_and_reports(tiny_corpus):
    out = io.StringIO()
    vs_torch = bench.have_torch()
    summary = bench.bench("zh", epochs=1, repeats=1, vs_torch=vs_torch, data=tiny_corpus,
                          out=out)
    text = out.getvalue()
    assert "minis2s" in text and "tokens/sec" in text and "nominal work" in text
    assert summary["minis2s"]["tokens_per_sec"] > 0
    assert summary["flops_per_token"] > 0 and summary["gemm_ceiling_gflops"] > 0
    if vs_torch:
        assert "ratio minis2s / pytorch" in text and summary["ratio"] > 0


def test_vs_torch_without_torch_is_a_clear_error(monkeypatch, tiny_corpus):
    monkeypatch.setattr(bench, "have_torch", lambda: False)
    with pytest.raises(bench.BenchError, match="PyTorch"):
        bench.bench("zh", epochs=1, repeats=1, vs_torch=True, data=tiny_corpus)


def test_ranks_without_a_launcher_is_a_clear_error_before_any_run(monkeypatch, tiny_corpus):
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    monkeypatch.setattr(bench, "_spawn", lambda *a, **k: pytest.fail("a run was started"))
    with pytest.raises(bench.BenchError, match="--ranks needs"):
        bench.bench("zh", epochs=1, repeats=1, vs_torch=False, data=tiny_corpus, ranks=2)


def test_ranks_below_one_are_refused(tiny_corpus):
    with pytest.raises(bench.BenchError, match="at least 1"):
        bench.bench("zh", epochs=1, repeats=1, vs_torch=False, data=tiny_corpus, ranks=0)
