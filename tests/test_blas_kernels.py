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


def test_each_core_runs_in_its_own_process_and_is_named():
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info

    if not any(lib.get("internal_api") == "openblas" and "numpy" in lib.get("filepath", "")
               for lib in threadpool_info()):
        pytest.skip("NumPy's BLAS is not OpenBLAS here")
    from minis2s.bench.machine import cpu_info

    text = _run(["--cores", "Haswell", "auto", "--rounds", "1", "--seconds", "0.0001"])
    named = re.search(r"OPENBLAS_CORETYPE=Haswell: (\w+) kernels", text).group(1)
    if {"avx2", "fma"} <= cpu_info()["flags"]:
        assert named == "Haswell"  # the variable reached the process that measured
    assert re.search(r"OPENBLAS_CORETYPE=auto: \w+ kernels", text)
    rows = [line for line in text.splitlines() if " GF/s" in line]
    assert len(rows) == len(kernels.SHAPES)
    assert all(line.count(" us ") == 2 for line in rows)
