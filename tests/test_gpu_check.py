"""benchmarks/gpu_check.sh, the one script for a GPU machine, checked without one: its
shell parses, its dry run names every part with a time limit that fits the stated
budget, each command it names is one the project takes, and its test selection skips
cleanly where there is no GPU."""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
PARTS = ["preflight", "tests", "gradcheck", "train", "bench-zh", "bench-en", "bench-big"]


def _dry_run(tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_script_parses():
    r = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_dry_run_lists_every_part_within_ten_minutes_and_runs_nothing(tmp_path):
    out = _dry_run(tmp_path)
    budget = int(re.search(r"at most (\d+) s in all", out).group(1))
    limits, commands = {}, {}
    for line in out.splitlines():
        m = re.match(r"\s+(\S+)\s+(\d+) s  (.*)$", line)
        if m:
            limits[m.group(1)], commands[m.group(1)] = int(m.group(2)), m.group(3)
    assert list(limits) == PARTS
    # gradcheck runs beside the tests and the training; the rest one after another
    longest = limits["preflight"] + max(limits["gradcheck"], limits["tests"] + limits["train"])
    assert longest + limits["bench-zh"] + limits["bench-en"] + limits["bench-big"] <= budget
    assert budget <= 600
    assert "-m gpu tests/test_on_the_double.py tests/test_gpu.py" in commands["tests"]
    assert commands["gradcheck"].endswith("-m minis2s gradcheck --backend cupy")
    assert "--backend cupy --models seq2seq" in commands["train"]
    for preset in ("zh", "en", "big"):
        assert f"bench --backend cupy --vs-torch --preset {preset}" in commands[f"bench-{preset}"]
    assert not (tmp_path / "out").exists()  # nothing written, nothing run


def test_the_commands_it_names_are_ones_the_project_takes(tmp_path):
    from minis2s.cli.parser import build_parser

    commands = {m.group(1): m.group(3) for m in re.finditer(
        r"^\s+(\S+)\s+(\d+) s  (.*)$", _dry_run(tmp_path), re.M)}
    for name in ("gradcheck", "bench-zh", "bench-en", "bench-big"):
        argv = shlex.split(commands[name])
        args = build_parser().parse_args(argv[argv.index("minis2s") + 1:])
        assert args.backend == "cupy"
    for path in ("tests/test_on_the_double.py", "tests/test_gpu.py"):
        assert (ROOT / path).is_file()
    if importlib.util.find_spec("cupy") is not None:
        return  # the example would train on the GPU: enough that its arguments parse
    example = shlex.split(commands["train"].replace("$OUT_DIR", str(tmp_path)))
    r = subprocess.run([sys.executable, *example[1:]], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    # the arguments are taken; without CuPy the example stops at the backend, in one line
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(
        "minis2s: error: the 'cupy' backend needs CuPy")


def test_without_a_gpu_its_test_selection_skips_cleanly():
    """``pytest -m gpu`` on these two files, here: every GPU test collected and skipped,
    none failing, exit 0 (and the double's own tests left out)."""
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here: the selection runs, it does not skip")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                        "-m", "gpu", "tests/test_on_the_double.py", "tests/test_gpu.py"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=*\s*\d+ skipped, \d+ deselected in .*", last), last
    assert "CuPy" in r.stdout
