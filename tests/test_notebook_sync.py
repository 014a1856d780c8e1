"""The committed notebooks (docs/*.ipynb) are the ones their jupytext sources make with
``python docs/make_notebooks.py``: the same cells, run in order, and the outputs a new run
gives. The exercises notebook carries each exercise's stub as the learner gets it, shows
on each what the grader says of an untouched stub, holds no solution, and passes every
check with the shipped solutions in the stubs' places."""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from minis2s.exercises import EXERCISES, solution_path, stub_text

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NAMES = ["bptt_notebook", "exercises_notebook"]
EXERCISES_SOURCE = DOCS / "exercises_notebook.py"
EXERCISES_NOTEBOOK = DOCS / "exercises_notebook.ipynb"

# Where the notebook's cell is not its stub word for word, and why: in one namespace the
# project's step backward, imported under the stub's name, would replace the learner's
# answer to rnn_step, and a later check of rnn_step would grade the project's own.
NOTEBOOK_CHANGES = {
    "bptt": [("import rnn_step_backward\n", "import rnn_step_backward as step_backward\n"),
             ("calling rnn_step_backward", "calling step_backward")],
}


def spec_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make():
    return spec_module("make_notebooks", DOCS / "make_notebooks.py")


@pytest.fixture(scope="module")
def built(make):
    """Each notebook made anew from its source, in a fresh process: {name: .ipynb text}."""
    return {name: make.build(DOCS / f"{name}.py") for name in NAMES}


def committed(name: str):
    path = DOCS / f"{name}.ipynb"
    assert path.is_file(), f"docs/{name}.ipynb is missing: run python docs/make_notebooks.py"
    return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)


def cell_mismatches(make, source_nb, notebook) -> list[str]:
    """Where the notebook's cells are not its source's (type, text, id), or its metadata."""
    found = []
    if source_nb.metadata != notebook.metadata:
        found.append(f"metadata {dict(notebook.metadata)}, the source makes "
                     f"{dict(source_nb.metadata)}")
    if len(source_nb.cells) != len(notebook.cells):
        found.append(f"{len(notebook.cells)} cells, the source has {len(source_nb.cells)}")
    for number, (a, b) in enumerate(zip(source_nb.cells, notebook.cells)):
        if (a.cell_type, a.source, a.id, a.metadata) != (b.cell_type, b.source, b.id,
                                                        b.metadata):
            found.append(f"cell {number} is not the source's: {make.first_change(a, b)}")
    return found


# ------------------------------------------------------------------ in sync with the sources


@pytest.mark.parametrize("name", NAMES)
def test_the_committed_notebook_has_its_sources_cells(make, name):
    """Cheap, no execution: a source edited without making the notebook again fails here."""
    problems = cell_mismatches(make, make.from_source(DOCS / f"{name}.py"), committed(name))
    assert not problems, f"docs/{name}.ipynb is stale (run python docs/make_notebooks.py):\n" \
        + "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_every_code_cell_has_run_in_order_without_an_error(name):
    nb = committed(name)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [o for cell in code for o in cell.outputs]
    assert outputs, f"docs/{name}.ipynb has no outputs"
    assert all(o.output_type in ("stream", "execute_result") for o in outputs)
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]


@pytest.mark.parametrize("name", NAMES)
def test_a_new_run_gives_the_committed_outputs(make, built, name):
    text = (DOCS / f"{name}.ipynb").read_text(encoding="utf-8")
    problems = make.differences(built[name], text)
    assert not problems, f"docs/{name}.ipynb is stale (run python docs/make_notebooks.py):\n" \
        + "\n".join(problems)


def test_two_builds_are_the_same_file(make, built):
    """No timestamp, random id or version in the file: making a notebook again on the same
    machine writes the same bytes (the exercises notebook, the quicker of the two)."""
    assert make.build(EXERCISES_SOURCE) == built["exercises_notebook"]
    nb = nbformat.reads(built["exercises_notebook"], as_version=4)
    assert nb.metadata == {"kernelspec": {"display_name": "Python 3", "language": "python",
                                          "name": "python3"},
                           "language_info": {"name": "python"}}
    assert [cell.id for cell in nb.cells] == [f"cell-{i}" for i in range(len(nb.cells))]


def test_an_edited_source_or_output_is_caught(make, tmp_path):
    """The two checks fail on what they are for: a source cell changed after the notebook
    was made, and an output that is not a new run's."""
    source = tmp_path / "exercises_notebook.py"
    text = EXERCISES_SOURCE.read_text(encoding="utf-8")
    edited = text.replace('report = check("clip", clip_grad_norm)',
                          'report = check("clip", clip_grad_norm, show=True)')
    assert edited != text
    source.write_text(edited, encoding="utf-8")
    problems = cell_mismatches(make, make.from_source(source), committed("exercises_notebook"))
    assert len(problems) == 1 and "check(\"clip\", clip_grad_norm, show=True)" in problems[0]

    notebook = EXERCISES_NOTEBOOK.read_text(encoding="utf-8")
    assert make.differences(notebook, notebook) == []
    for old, new in [("clip: not written yet", "clip: passed"),
                     ("rnn_step: not written", "rnn_step:  not written")]:
        assert notebook.count(old) == 1
        (found,) = make.differences(notebook, notebook.replace(old, new))
        assert found.startswith(f"cell {cell_of(notebook, old)}: its outputs differ from a "
                                f"new run's: 'stdout: {new}")


def cell_of(notebook: str, text: str) -> int:
    nb = nbformat.reads(notebook, as_version=4)
    return next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
                and any(text in o.get("text", "") for o in cell.outputs))


def test_numbers_may_differ_in_their_last_digit_only(make):
    same = make.same_text
    assert same("ratio 7.4e-01, 0.1800", "ratio 7.5e-01, 0.1801")
    assert same("worst relative error 1.3e-12", "worst relative error 2.9e-12")  # round-off
    assert not same("ratio 7.4e-01", "ratio 7.6e-01")
    assert not same("over 6 gradients", "over 7 gradients")  # counts are exact
    assert not same("GRU 0.21", "LSTM 0.21")


# ------------------------------------------------------------------ the exercises notebook


def stub_cell(name: str) -> str:
    """The code of exercise NAME's stub, as its cell in the notebook holds it: the
    docstring (the task, in the markdown above the cell) and the ``__main__`` block (the
    check, the cell below) left out."""
    text = stub_text(name)
    code = text.split('"""', 2)[2].split("\n\n\nif __name__", 1)[0].strip("\n")
    for old, new in NOTEBOOK_CHANGES.get(name, []):
        assert code.count(old) == 1, f"{name}: {old!r} is not once in the stub"
        code = code.replace(old, new)
    return code


def check_cell(name: str) -> str:
    return f'report = check("{name}", {EXERCISES[name].function})'


def test_the_notebook_carries_each_stub_then_its_check(make):
    code = [cell.source for cell in make.from_source(EXERCISES_SOURCE).cells
            if cell.cell_type == "code"]
    assert code[0] == "from minis2s.exercises import check"
    expected = [part for name in EXERCISES for part in (stub_cell(name), check_cell(name))]
    assert code[1:] == expected


def test_each_check_shows_what_a_learner_sees_on_the_stub():
    nb = committed("exercises_notebook")
    for name, ex in EXERCISES.items():
        (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source == check_cell(name)]
        (output,) = cell.outputs
        assert output.output_type == "stream" and output.name == "stdout"
        assert output.text == (f"{name}: not written yet\n  {ex.function} still raises "
                               "NotImplementedError: write it where the stub says so, then "
                               "check again.\n")


def test_the_notebook_holds_no_solution(make):
    text = EXERCISES_SOURCE.read_text(encoding="utf-8")
    code = "\n".join(cell.source for cell in make.from_source(EXERCISES_SOURCE).cells
                     if cell.cell_type == "code")
    assert code.count("raise NotImplementedError") == len(EXERCISES)
    for name in EXERCISES:
        stub = stub_text(name)
        lines = {line.strip() for line in solution_path(name).read_text(
            encoding="utf-8").splitlines()}
        answer = [line for line in lines if len(line) > 12 and line not in stub
                  and not line.startswith(("#", '"', "def ", "import ", "from "))
                  and re.search(r"[=(]", line)]
        assert answer, f"{name}: found no line of the solution to look for"
        shown = [line for line in answer if line in text]
        assert not shown, f"the notebook shows {name}'s solution: {shown}"


def test_with_the_solutions_in_place_every_check_passes(make):
    nb = make.from_source(EXERCISES_SOURCE)
    stubs = {stub_cell(name): name for name in EXERCISES}
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source in stubs:
            cell.source = solution_path(stubs[cell.source]).read_text(encoding="utf-8")
            replaced += 1
    assert replaced == len(EXERCISES)
    make.execute(nb, "exercises_notebook")
    for name in EXERCISES:
        (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source == check_cell(name)]
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert text.startswith(f"{name}: passed\n"), text
