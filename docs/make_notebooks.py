"""Make the docs' notebooks, outputs included, from their jupytext sources.

    python docs/make_notebooks.py            # writes docs/bptt_notebook.ipynb and
                                             # docs/exercises_notebook.ipynb
    python docs/make_notebooks.py --check    # writes nothing; exit 1 if one is stale

Each ``docs/NAME.py`` (jupytext's percent format) is the file to edit; ``docs/NAME.ipynb``
is made from it, with every cell's output, so that it reads on GitHub without running
anything. ``tests/test_notebook_sync.py`` fails when a source changed and its notebook
was not made again.

The cells run in a fresh Python process per notebook, in one namespace, top to bottom, as
a kernel would run them, but by the few lines of :func:`execute` rather than through
Jupyter's kernel machinery (nbclient, ipykernel, pyzmq): the notebooks print text only,
and a plain executor needs no dependency beyond jupytext (already in the ``dev`` extra),
starts in a fraction of a second, and leaves nothing in the file that changes from run to
run. What it does of a kernel's work: stdout and stderr become stream outputs, in the
order written; a cell's last expression, unless it is None or the line ends in ``;``,
becomes its ``execute_result`` (its ``repr``); execution counts run from 1. Figures are
not captured (matplotlib draws with Agg, off screen). A cell that raises stops the build
with the cell's number and the error: the notebooks must run top to bottom.

What makes the file the same on every build: cell ids are the cells' positions, the
metadata is fixed (the kernel ``python3``, the language ``python``, no jupytext or
interpreter version, no timestamps), the cells run in an empty temporary folder with
this checkout first on ``sys.path``, and the notebooks draw their random numbers from
seeded generators. Across machines the last printed digit of a number may still differ
(another BLAS); :func:`differences` allows one unit of it.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
NOTEBOOKS = ("bptt_notebook", "exercises_notebook")  # docs/NAME.py -> docs/NAME.ipynb
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE = {"name": "python"}
TEXT_ONLY_METADATA = ("lines_to_next_cell",)  # jupytext's layout of the text file


class BuildError(RuntimeError):
    """A notebook that cannot be made: one of its cells raised."""


def pairs() -> list[tuple[Path, Path]]:
    """(source, notebook) of every notebook made here."""
    return [(DOCS / f"{name}.py", DOCS / f"{name}.ipynb") for name in NOTEBOOKS]


def from_source(source: Path):
    """The notebook of a jupytext source, without outputs, its metadata fixed."""
    import jupytext

    nb = jupytext.read(source)
    nb.metadata = {"kernelspec": dict(KERNEL), "language_info": dict(LANGUAGE)}
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
        for key in TEXT_ONLY_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


class Streams(io.TextIOBase):
    """Where a cell's stdout and stderr go: chunks of (name, text), in the order written,
    those of one stream one after the other merged into one output."""

    def __init__(self, chunks: list, name: str):
        self.chunks, self.name = chunks, name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.chunks and self.chunks[-1][0] == self.name:
            self.chunks[-1][1].append(text)
        else:
            self.chunks.append((self.name, [text]))
        return len(text)


def run_cell(source: str, namespace: dict, filename: str):
    """Run one cell's code in ``namespace``: (its outputs' chunks, its last value, shown?)."""
    tree = ast.parse(source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    chunks: list = []
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Streams(chunks, "stdout"), Streams(chunks, "stderr")
    try:
        exec(compile(tree, filename, "exec"), namespace)
        value = eval(compile(last, filename, "eval"), namespace) if last else None
    finally:
        sys.stdout, sys.stderr = saved
    shown = value is not None and not source.rstrip().endswith(";")
    return chunks, value, shown


def execute(nb, name: str = "notebook"):
    """Run ``nb``'s code cells in order, in one namespace and in an empty temporary folder,
    and fill in their outputs and execution counts (in place; also returned). Raises
    :class:`BuildError` naming the first cell that raises."""
    import nbformat

    namespace = {"__name__": "__main__"}
    count = 0
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="minis2s-notebook-") as folder:
        os.chdir(folder)
        try:
            for number, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                count += 1
                try:
                    chunks, value, shown = run_cell(cell.source, namespace,
                                                    f"<{name} cell {number}>")
                except Exception as exc:
                    raise BuildError(f"{name}: cell {number} (code cell {count}) raised "
                                     f"{type(exc).__name__}: {exc}") from exc
                cell.execution_count = count
                cell.outputs = [nbformat.v4.new_output("stream", name=stream,
                                                       text="".join(texts))
                                for stream, texts in chunks if "".join(texts)]
                if shown:
                    cell.outputs.append(nbformat.v4.new_output(
                        "execute_result", data={"text/plain": repr(value)},
                        execution_count=count))
        finally:
            os.chdir(here)
    return nb


def render(nb) -> str:
    """The .ipynb file's text: nbformat's layout (sorted keys, one-space indent, each
    text split into lines), ending in a newline."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def build(source: Path) -> str:
    """The notebook of ``source``, run in a fresh Python process: the .ipynb file's text.
    Raises :class:`BuildError` if a cell raises."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory(prefix="minis2s-notebook-") as folder:
        out = Path(folder) / "out.ipynb"
        r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--run",
                            str(source), str(out)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise BuildError(r.stderr.strip() or f"make_notebooks: error: {source.name}: the "
                             f"build stopped (exit {r.returncode})")
        return out.read_text(encoding="utf-8")


# --------------------------------------------------------------- comparing two builds

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _unit(text: str) -> float:
    """One unit of a printed number's last digit (2.6e-06: 1e-07; 0.180: 0.001; 42: 1)."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


ROUND_OFF = 1e-9  # numbers this small (relative errors of float64 checks) are round-off


def same_text(a: str, b: str) -> bool:
    """Two outputs' texts alike but for the last digit of their numbers: the words and
    the layout equal, integers equal, each other number within one unit of its last
    printed digit, or both below :data:`ROUND_OFF` in size (a finite-difference check's
    relative error of 1e-12 on one machine may be 3e-12 on another)."""
    if NUMBER.split(a) != NUMBER.split(b):
        return False
    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
        u, v = float(x), float(y)
        if x == y or max(abs(u), abs(v)) < ROUND_OFF:
            continue
        if not re.search(r"[.eE]", x + y):  # integers (counts, steps) are exact
            return False
        if abs(u - v) > max(_unit(x), _unit(y)) * (1 + 1e-9):
            return False
    return True


def _texts(output) -> list[str]:
    if output.get("output_type") == "stream":
        return [f"{output['name']}: {output['text']}"]
    data = output.get("data", {})
    return [f"{output['output_type']} {kind}: {data[kind]}" for kind in sorted(data)]


def first_change(source_cell, cell) -> str:
    """The first line where a cell differs from its source's, in words."""
    if source_cell.cell_type != cell.cell_type:
        return f"a {cell.cell_type} cell where the source has a {source_cell.cell_type} cell"
    new, old = source_cell.source.splitlines(), cell.source.splitlines()
    for number, (a, b) in enumerate(zip(new, old), 1):
        if a != b:
            return f"line {number} is {b.strip()!r}, the source's {a.strip()!r}"
    if len(new) != len(old):
        return f"{len(old)} lines, the source's {len(new)}"
    return "its id differs"


def differences(made: str, committed: str) -> list[str]:
    """Where the committed notebook's text differs from a new build's, one line each
    (empty: in sync). Cells and metadata must be equal; outputs alike by
    :func:`same_text`."""
    import nbformat

    new, old = nbformat.reads(made, as_version=4), nbformat.reads(committed, as_version=4)
    found = []
    if new.metadata != old.metadata:
        found.append("the notebook's metadata differ")
    if len(new.cells) != len(old.cells):
        found.append(f"{len(old.cells)} cells where the source has {len(new.cells)}")
    for number, (a, b) in enumerate(zip(new.cells, old.cells)):
        where = f"cell {number}"
        if (a.cell_type, a.source, a.get("id")) != (b.cell_type, b.source, b.get("id")):
            found.append(f"{where}: not the source's {a.cell_type} cell; {first_change(a, b)}")
            continue
        if a.metadata != b.metadata:
            found.append(f"{where}: its metadata differ")
        if a.cell_type != "code":
            continue
        if a.execution_count != b.execution_count:
            found.append(f"{where}: execution count {b.execution_count}, "
                         f"not {a.execution_count}")
        texts_a = [t for o in a.outputs for t in _texts(o)]
        texts_b = [t for o in b.outputs for t in _texts(o)]
        if len(texts_a) != len(texts_b) or not all(map(same_text, texts_a, texts_b)):
            lines_a, lines_b = "\n".join(texts_a).splitlines(), "\n".join(texts_b).splitlines()
            line = next(((x, y) for x, y in zip(lines_b, lines_a) if not same_text(x, y)),
                        None)
            said = f": {line[0].strip()!r} where a new run gives {line[1].strip()!r}" \
                if line else f": {len(lines_b)} lines where a new run gives {len(lines_a)}"
            found.append(f"{where}: its outputs differ from a new run's{said}")
    return found


# --------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python docs/make_notebooks.py",
        description="Make docs/*.ipynb, with their outputs, from their jupytext sources.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a "
                        "committed notebook differs from a new build")
    parser.add_argument("--run", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:  # one notebook, in this (fresh) process, as a kernel would run it
        if sys.path and Path(sys.path[0]).resolve() == DOCS:
            del sys.path[0]  # this script's folder: no module of docs/ is importable there
        source, out = map(Path, args.run)
        try:
            nb = execute(from_source(source), source.stem)
        except BuildError as exc:
            traceback.print_exception(exc.__cause__)
            print(f"make_notebooks: error: {exc}", file=sys.stderr)
            return 1
        out.write_text(render(nb), encoding="utf-8")
        return 0
    stale = 0
    for source, notebook in pairs():
        start = time.monotonic()
        try:
            text = build(source)
        except BuildError as exc:
            print(exc, file=sys.stderr)
            return 1
        seconds = time.monotonic() - start
        name = notebook.relative_to(ROOT)
        if args.check:
            committed = notebook.read_text(encoding="utf-8") if notebook.exists() else None
            found = ["it is missing"] if committed is None else differences(text, committed)
            for line in found:
                print(f"{name}: {line}")
            stale += bool(found)
            if not found:
                print(f"{name}: in sync with {source.name} ({seconds:.1f} s)")
            continue
        notebook.write_text(text, encoding="utf-8")
        cells = json.loads(text)["cells"]
        print(f"wrote {name}: {len(cells)} cells, run in {seconds:.1f} s")
    if stale:
        print("make them again: python docs/make_notebooks.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
