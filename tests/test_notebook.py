"""The BPTT walk-through runs top to bottom as a script and opens as a notebook; its
exercises' solutions check themselves, and the tutorial cites what it computes."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "bptt_notebook.py"
TUTORIAL = ROOT / "docs" / "bptt.md"
FLOAT = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def run_notebook(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The notebook run as a script: (the finished process, seconds, its working folder)."""
    cwd = tmp_path_factory.mktemp("notebook")
    start = time.monotonic()
    r = run_notebook(NOTEBOOK, cwd)
    return r, time.monotonic() - start, cwd


def exercise_line(out: str, n: int, pattern: str) -> re.Match:
    """The line ``Exercise n: ...`` of the notebook's output, matched against ``pattern``."""
    lines = [line for line in out.splitlines() if line.startswith(f"Exercise {n}: ")]
    assert len(lines) == 1, f"the notebook printed {len(lines)} lines 'Exercise {n}: ...'"
    m = re.fullmatch(f"Exercise {n}: {pattern}", lines[0])
    assert m, f"unexpected: {lines[0]}"
    return m


def test_the_notebook_runs_as_a_script_in_under_two_minutes(notebook):
    r, seconds, cwd = notebook
    assert r.returncode == 0, r.stderr[-3000:]
    assert seconds < 120
    assert "dh_last J_{T-1} ⋯ J_1 equals the carried gradient: True" in r.stdout
    assert list(cwd.iterdir()) == []  # it writes nothing


def test_each_exercise_solution_passes_its_checks(notebook):
    """The notebook asserts each solution's claims; here the lines it prints after the
    assertions are read back and checked again, so a check dropped from the notebook
    fails too."""
    r, _, _ = notebook
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    m = exercise_line(out, 1, rf"d2l's GRU passes, worst relative error ({FLOAT}) over "
                              r"(\d+) gradients")
    assert float(m[1]) <= 1e-6 and int(m[2]) == 6
    m = exercise_line(out, 2, rf"all (\d+) gradients fail; corrected, the worst relative "
                              rf"error is ({FLOAT})")
    assert int(m[1]) == 6 and float(m[2]) <= 1e-6
    m = exercise_line(out, 3, rf"losses and gradients differ by T / N = ({FLOAT}); Adam's "
                              rf"steps by ({FLOAT}) \(relative\); clipped at 1 \(norms "
                              rf"({FLOAT}) and ({FLOAT})\), the gradients differ by ({FLOAT})")
    ratio, adam, below, above, clipped = map(float, m.groups())
    assert ratio == pytest.approx(6 / 4) and adam < 1e-4
    assert below < 1 < above and clipped != pytest.approx(ratio, rel=1e-3)
    m = exercise_line(out, 4, rf"K = T is full BPTT; dW_hh's change for K = 1, 5, 15: "
                              rf"({FLOAT}), ({FLOAT}), ({FLOAT})")
    k1, k5, k15 = map(float, m.groups())
    assert k1 > k5 > k15 > 0


def test_a_wrong_solution_stops_the_notebook(tmp_path):
    """Exercise 4's truncation left out: the notebook fails with its assertion."""
    text = NOTEBOOK.read_text(encoding="utf-8")
    truncation = "        if back == K:\n            break"
    assert truncation in text
    wrong = tmp_path / "bptt_notebook.py"
    wrong.write_text(text.replace(truncation, "        pass"), encoding="utf-8")
    r = run_notebook(wrong, tmp_path)
    assert r.returncode != 0
    assert "AssertionError: the error does not shrink as K grows" in r.stderr


def cited(text: str) -> tuple[float, float]:
    """A number as the tutorial writes it (2.6e−6, 0.18, 54%): its value and one unit of
    its last digit."""
    percent = text.endswith("%")
    mantissa, _, exponent = text.rstrip("%").replace("−", "-").partition("e")
    decimals = len(mantissa.partition(".")[2])
    scale = 10.0 ** int(exponent or 0) / (100 if percent else 1)
    return float(mantissa) * scale, 10.0 ** -decimals * scale


@pytest.mark.parametrize("sentence,printed", [
    # section 2 of the tutorial and of the notebook: explosion with an orthogonal W_hh
    (r"×0\.8\s+keeps\s+(\S+)\s+of\s+it\s+\(0\.8²⁹\s+=\s+(\S+)\),\s+×1\.0\s+keeps\s+it\s+whole"
     r"\s+and\s+×1\.2\s+makes\s+it\s+(\S+)\s+times\s+larger\s+\(1\.2²⁹\s+=\s+(\S+)\)",
     rf"orthogonal W_hh × 0.8: ‖∂L/∂h_0‖ / ‖∂L/∂h_29‖ = ({FLOAT}) \(0.8\^29 = ({FLOAT});.*\n"
     rf".*\n"
     rf"orthogonal W_hh × 1.2: ‖∂L/∂h_0‖ / ‖∂L/∂h_29‖ = ({FLOAT}) \(1.2\^29 = ({FLOAT});"),
    # ... and the seed's initialisation, W_hh scaled by 0.5, 1 and 3: σ_max, the norm at
    # the first step (and at the last), the ratio of the two
    (r"gives\s+σ_max\(W_hh\)\s+=\s+(\S+),\s+(\S+)\s+and\s+(\S+),",
     rf"Xavier W_hh × 0.5: σ_max ({FLOAT}),.*\nXavier W_hh × 1.0: σ_max ({FLOAT}),.*\n"
     rf"Xavier W_hh × 3.0: σ_max ({FLOAT}),"),
    (r"norm\s+at\s+the\s+first\s+step\s+is\s+(\S+),\s+(\S+)\s+and\s+(\S+),\s+against\s+(\S+)\s+at"
     r"\s+the\s+last",
     rf"Xavier W_hh × 0.5: .*at t = 0, 10, 20, 29: ({FLOAT}),.*\n"
     rf"Xavier W_hh × 1.0: .*at t = 0, 10, 20, 29: ({FLOAT}),.*\n"
     rf"Xavier W_hh × 3.0: .*at t = 0, 10, 20, 29: ({FLOAT}), {FLOAT}, {FLOAT}, ({FLOAT});"),
    (r"ratios\s+of\s+(\S+),\s+(\S+)\s+and\s+(\d+)\.",
     rf"Xavier W_hh × 0.5: .*first / last ({FLOAT}),.*\n"
     rf"Xavier W_hh × 1.0: .*first / last ({FLOAT}),.*\n"
     rf"Xavier W_hh × 3.0: .*first / last ({FLOAT}),"),
    # section 2 of the tutorial, section 3 of the notebook
    (r"the\s+gradient\s+at\s+the\s+first\s+step\s+goes\s+from\s+(\S+)\s+\(GRU\)\s+and\s+"
     r"(\S+)\s+\(LSTM\)\s+with\s+bias\s+0,\s+to\s+(\S+)\s+and\s+(\S+)\s+with\s+bias\s+2",
     rf"gate bias 0.0: at t = 0 GRU ({FLOAT}), LSTM ({FLOAT}).*\n"
     rf"gate bias 2.0: at t = 0 GRU ({FLOAT}), LSTM ({FLOAT})"),
    # exercise 4
    (r"`dW_hh`\s+moves\s+by\s+(\S+)\s+for\s+K\s+=\s+1,\s+(\S+)\s+for\s+K\s+=\s+5\s+and\s+"
     r"(\S+)\s+for\s+K\s+=\s+15",
     rf"dW_hh's change for K = 1, 5, 15: ({FLOAT}), ({FLOAT}), ({FLOAT})"),
], ids=["orthogonal", "xavier-sigma", "xavier-norms", "xavier-ratios", "gate-bias",
        "truncation"])
def test_the_tutorial_cites_the_notebooks_numbers(notebook, sentence, printed):
    """Each number docs/bptt.md quotes from the notebook is the notebook's, to within
    one unit of its last digit."""
    r, _, _ = notebook
    words = re.search(sentence, TUTORIAL.read_text(encoding="utf-8"))
    assert words, f"docs/bptt.md no longer has the sentence /{sentence}/"
    values = re.search(printed, r.stdout)
    assert values, f"the notebook no longer prints /{printed}/"
    for text, value in zip(words.groups(), map(float, values.groups()), strict=True):
        number, unit = cited(text)
        assert abs(number - value) <= unit, f"docs/bptt.md says {text}, the notebook {value}"


def test_the_notebook_is_a_jupytext_percent_notebook():
    import jupytext

    nb = jupytext.read(NOTEBOOK)
    kinds = [cell.cell_type for cell in nb.cells]
    assert kinds.count("markdown") >= 8 and kinds.count("code") >= 10
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith("# Backprop through time")
    assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
