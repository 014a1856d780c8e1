"""benchmarks/product_share.py: the products' share of the steps in a py-spy raw profile."""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
share = importlib.import_module("product_share")

STEP = "<module> (step_breakdown.py:138);main (step_breakdown.py:117);step (step_breakdown.py:85)"
RAW = "\n".join([
    f"{STEP};gru_layer_forward (minis2s/ops/gru.py:73);cblas_sgemm (libopenblas.so);"
    "sgemm_kernel_SKYLAKEX (libopenblas.so) 6",
    f"{STEP};gru_layer_forward (minis2s/ops/gru.py:73);exec_blas (libopenblas.so) 1",
    f"{STEP};gru_layer_backward (minis2s/ops/gru.py:150);inner_thread (libopenblas.so) 2",
    f"{STEP};Adam.step (minis2s/optim.py:70);FLOAT_sqrt (numpy.so) 2",
    f"{STEP};index_add (minis2s/backend.py:51) 1",
    "<module> (step_breakdown.py:138);main (step_breakdown.py:110);bench_data (x.py:3) 50",
    "a line that is not a sample",
]) + "\n"


def test_products_are_counted_inside_the_steps_only():
    total, products, rest = share.shares(RAW.splitlines())
    assert (total, products) == (12, 9)
    assert rest.most_common() == [("Adam.step (minis2s/optim.py:70)", 2),
                                  ("index_add (minis2s/backend.py:51)", 1)]


def test_the_command_prints_the_share_and_the_rest(tmp_path, capsys):
    raw = tmp_path / "steps.txt"
    raw.write_text(RAW)
    assert share.main([str(raw), "--lines", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["12 samples inside the steps; products 75.0%",
                   "   16.7%  Adam.step (minis2s/optim.py:70)"]


def test_a_profile_of_something_else_or_no_file_is_said(tmp_path, capsys):
    raw = tmp_path / "other.txt"
    raw.write_text("<module> (train.py:1);main (train.py:2) 9\n")
    assert share.main([str(raw)]) == 1
    assert "no samples inside" in capsys.readouterr().err
    assert share.main([str(tmp_path / "missing.txt")]) == 1
    assert "missing.txt" in capsys.readouterr().err
