"""The BPTT walk-through runs top to bottom as a script and opens as a notebook."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "bptt_notebook.py"


def test_the_notebook_runs_as_a_script_in_under_two_minutes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    start = time.monotonic()
    r = subprocess.run([sys.executable, str(NOTEBOOK)], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert time.monotonic() - start < 120
    out = r.stdout
    assert "gᵀ J_T ⋯ J_1 equals the carried gradient: True" in out
    assert "d2l's GRU: worst relative error" in out
    assert list(tmp_path.iterdir()) == []  # it writes nothing


def test_the_notebook_is_a_jupytext_percent_notebook():
    import jupytext

    nb = jupytext.read(NOTEBOOK)
    kinds = [cell.cell_type for cell in nb.cells]
    assert kinds.count("markdown") >= 8 and kinds.count("code") >= 10
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith("# Backprop through time")
    assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
