"""benchmarks/blas_kernels.py: each set of kernels in a process of its own, named as it ran."""

import contextlib
import importlib
import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
kernels = importlib.import_module("blas_kernels")


def _run(argv) -> str:
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert kernels.main(argv) == 0
    return text.getvalue()


def test_the_table_gives_each_shape_its_time_and_rate():
    results = {"A": {"times": {name: 2.0 for name, *_ in kernels.SHAPES[:1]}},
               "B": {"times": {name: 4.0 for name, *_ in kernels.SHAPES[:1]}}}
    name, m, k, n = kernels.SHAPES[0]
    lines = kernels.table(results, kernels.SHAPES[:1])
    assert lines[0].split()[-2:] == ["A", "B"]
    rate = 2 * m * k * n / 2.0 / 1e3  # GFLOP/s at 2 µs
    assert f"{rate:.0f} GF/s" in lines[1] and f"{rate / 2:.0f} GF/s" in lines[1]


def test_the_view_rows_read_w_transposed_as_the_kernel_does():
    import numpy as np

    views = [shape for shape in kernels.SHAPES if shape[4:] == (True,)]
    assert [name for name, *_ in views] == ["zh step, h W_hh^T (view)",
                                            "en step, h W_hh^T (view)"]
    for _, m, k, n, view in views:
        a, b = kernels.operands(np.random.default_rng(0), m, k, n, view)
        assert b.shape == (k, n) and b.base is not None and b.base.flags.c_contiguous
        assert not b.flags.c_contiguous and (a @ b).shape == (m, n)
    a, b = kernels.operands(np.random.default_rng(0), 2, 3, 4)
    assert b.shape == (3, 4) and b.flags.c_contiguous


def test_each_core_type_runs_in_its_own_process_and_is_named(monkeypatch):
    """A core type neither the environment nor OpenBLAS would choose (Sandybridge, AVX
    without AVX2) is the one the process that measured names: the variable reached it."""
    pytest.importorskip("threadpoolctl")
    from minis2s.bench.machine import cpu_info, openblas_libraries

    if not openblas_libraries():
        pytest.skip("NumPy's BLAS is not OpenBLAS here")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    text = _run(["--cores", "Sandybridge", "auto", "--rounds", "1", "--seconds", "0.0001"])
    named = re.search(r"OPENBLAS_CORETYPE=Sandybridge: core type (\w+)", text).group(1)
    if "avx" in cpu_info()["flags"]:
        assert named == "Sandybridge"
    assert re.search(r"OPENBLAS_CORETYPE unset: core type \w+", text)
    rows = [line for line in text.splitlines() if " GF/s" in line]
    assert len(rows) == len(kernels.SHAPES)
    assert all(line.count(" us ") == 2 for line in rows)


def test_bad_options_are_refused_before_any_run(capsys):
    for argv in (["--rounds", "0"], ["--seconds", "0"], ["--threads", "0"]):
        with pytest.raises(SystemExit) as stop:
            kernels.main(argv)
        assert stop.value.code == 2
        assert "at least 1" in capsys.readouterr().err
