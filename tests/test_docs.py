"""The documentation names only tests and files that exist.

README.md and docs/**/*.md cite tests as `test_x.py::name` or `test_x.py::name[id]`
(backticked, optionally with a leading ``tests/``). Each name must be a test function of
that file (at top level or in a class), found with ``ast``; each ``[id]`` must be a case
that pytest collects: the same id exactly, or, for ``[prefix...]``, an id that starts
with ``prefix``.
"""

import ast
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
CITATION = re.compile(r"`(?:tests/)?(test_\w+\.py)::(\w+)(?:\[([^\]`]*)\])?`")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def citations() -> list[tuple[Path, int, str, str, str | None]]:
    """(doc, line number, test file, function, id or None) for every citation."""
    found = []
    for doc in doc_files():
        if not doc.is_file():
            continue
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for m in CITATION.finditer(line):
                found.append((doc, number, m.group(1), m.group(2), m.group(3)))
    return found


@functools.cache
def functions_in(test_file: str) -> frozenset[str]:
    """Names of the functions a test file defines at top level or in a class."""
    tree = ast.parse((TESTS / test_file).read_text(encoding="utf-8"), filename=test_file)
    names = set()
    for node in tree.body:
        bodies = node.body if isinstance(node, ast.ClassDef) else [node]
        names.update(n.name for n in bodies
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return frozenset(names)


@functools.cache
def collected_ids(test_file: str) -> frozenset[str]:
    """The node ids pytest collects from one test file (one collection per file)."""
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         f"tests/{test_file}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, f"collecting tests/{test_file} failed:\n{r.stdout}{r.stderr}"
    return frozenset(line.strip() for line in r.stdout.splitlines() if "::" in line)


def problem(test_file: str, name: str, case: str | None) -> str | None:
    """What is wrong with one citation, or None."""
    if not (TESTS / test_file).is_file():
        return f"tests/{test_file} does not exist"
    if name not in functions_in(test_file):
        return f"tests/{test_file} defines no function {name}"
    if case is None:
        return None
    node = f"tests/{test_file}::{name}"
    ids = {i[len(node) + 1:-1] for i in collected_ids(test_file)
           if i.startswith(node + "[") and i.endswith("]")}
    if case.endswith("..."):
        if any(i.startswith(case[:-3]) for i in ids):
            return None
    elif case in ids:
        return None
    return f"{node} has no case [{case}]; its cases: {sorted(ids) or 'none'}"


def test_every_cited_test_exists():
    found = citations()
    assert len(found) >= 30, f"only {len(found)} test citations found: is the scan broken?"
    problems = [f"{doc.relative_to(ROOT)}:{number}: `{test_file}::{name}"
                f"{f'[{case}]' if case is not None else ''}`: {why}"
                for doc, number, test_file, name, case in found
                if (why := problem(test_file, name, case)) is not None]
    assert not problems, "the docs cite tests that do not exist:\n" + "\n".join(problems)


# a file of the project named in backticks: `minis2s/ops/gru.py`, `docs/bptt.md`,
# `minis2s/model/` or a pattern such as `minis2s/ops/*.py`
PROJECT_PATH = re.compile(r"`((?:minis2s|docs|tests|benchmarks|examples)/[\w./*-]*)`")


def test_every_file_the_documentation_names_exists():
    missing = []
    for doc in doc_files():
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for m in PROJECT_PATH.finditer(line):
                if not any(ROOT.glob(m.group(1).rstrip("/"))):
                    missing.append(f"{doc.relative_to(ROOT)}:{number}: {m.group(1)}")
    assert not missing, "named but not in the project:\n" + "\n".join(missing)
