"""The run says what it did not check: tests/conftest.py's summary line for the optional
modules (PyTorch parity, multi-rank training) when they skip, and the variables that make
such a skip fail in CI."""

import re
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CONFTEST = TESTS / "conftest.py"

# stand-ins for the two optional modules, each skipping as the real one does
PARITY = """
import pytest

torch = pytest.importorskip("torch")


def test_parity():
    pass
"""
MPI = """
import shutil

import pytest

try:
    import mpi4py  # noqa: F401
    HAVE_MPI = shutil.which("mpiexec") is not None
except ImportError:
    HAVE_MPI = False
if not HAVE_MPI:
    pytest.skip("needs mpi4py and mpiexec", allow_module_level=True)


def test_ranks():
    pass
"""
SKIPPED = ("NOT CHECKED: PyTorch parity (torch not installed; pip install torch==2.13.0), "
           "multi-rank training (mpi4py not installed and mpiexec missing; "
           "pip install 'minis2s[mpi]')")


@pytest.fixture
def project(pytester, monkeypatch, tmp_path):
    """A pytester folder with the project's conftest, the two stand-ins and one plain
    test, in a process where torch and mpi4py do not import and no mpiexec is on PATH."""
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_parity_torch=PARITY, test_mpi=MPI,
                        test_plain="def test_plain():\n    pass\n")
    monkeypatch.setitem(sys.modules, "torch", None)  # None: the import fails
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    for variable in ("MINIS2S_REQUIRE_TORCH", "MINIS2S_REQUIRE_MPI"):
        monkeypatch.delenv(variable, raising=False)
    return pytester


def test_skipped_optional_modules_are_named_with_what_to_install(project):
    result = project.runpytest("-q")
    assert result.ret == 0
    result.assert_outcomes(passed=1, skipped=2)
    assert SKIPPED in result.outlines


def test_the_line_is_printed_without_the_quiet_flag_too(project):
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert SKIPPED in result.outlines


def test_nothing_is_said_when_the_optional_modules_run(project):
    project.makepyfile(test_parity_torch="def test_parity():\n    pass\n",
                       test_mpi="def test_ranks():\n    pass\n")
    result = project.runpytest("-q")
    assert result.ret == 0
    result.assert_outcomes(passed=3)
    assert not [line for line in result.outlines if "NOT CHECKED" in line]


def test_one_skipped_test_of_a_module_that_ran_is_not_reported(project):
    project.makepyfile(test_parity_torch="def test_parity():\n    pass\n", test_mpi=(
        "import pytest\n\n\ndef test_ranks():\n    pass\n\n\n"
        "@pytest.mark.skip(reason='needs the data')\ndef test_long():\n    pass\n"))
    result = project.runpytest("-q")
    assert result.ret == 0
    assert not [line for line in result.outlines if "NOT CHECKED" in line]


@pytest.mark.parametrize("variable,what", [("MINIS2S_REQUIRE_TORCH", "PyTorch parity"),
                                           ("MINIS2S_REQUIRE_MPI", "multi-rank training")])
def test_a_required_module_that_skips_fails_the_run(project, monkeypatch, variable, what):
    """However the module comes to skip, the variable turns the skip into a failed run."""
    monkeypatch.setenv(variable, "1")
    result = project.runpytest("-q")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert SKIPPED in result.outlines
    assert f"{variable} is set, so a skipped {what} fails this run" in result.outlines


def test_ci_requires_both_and_installs_the_pinned_torch():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^export MINIS2S_REQUIRE_TORCH=1\b", ci, re.M)
    assert re.search(r"^export MINIS2S_REQUIRE_MPI=1\b", ci, re.M)
    assert re.search(r"^python3 -m pip install --quiet torch==2\.13\.0$", ci, re.M)
    assert "torch==2.13.0" in CONFTEST.read_text(encoding="utf-8")


def test_the_contributing_guide_documents_both_variables():
    guide = (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8")
    for variable in ("MINIS2S_REQUIRE_TORCH", "MINIS2S_REQUIRE_MPI"):
        assert variable in guide, f"docs/contributing.md does not mention {variable}"
    assert SKIPPED in guide, "docs/contributing.md does not show the summary line as printed"
