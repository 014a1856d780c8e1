"""The grader: ``check(name, what) -> Report``.

``what`` is the learner's function, a module holding it, or the path of their file
(default: ``NAME.py`` in the current folder). The exercise's own grading
(:mod:`.catalog`) runs it on fixed random inputs, compares it with finite differences
and with the shipped solution, and says what is wrong and where, never what the right
values are. Whatever the learner's code does (raise, loop over the wrong axis, return
nonsense, not compile) ends in a report, never in an exception out of :func:`check`.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
import traceback
import types
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np


class ExerciseError(ValueError):
    """Input the grader cannot work with: an unknown exercise, a file that is not there,
    a folder that would be overwritten. One line, said to the user as is."""


class Stop(Exception):
    """Grading ends here, with these lines: the learner's code raised, or returned
    something that is not of the form the exercise asks for."""

    def __init__(self, lines: list[str], written: bool = True):
        super().__init__("; ".join(lines))
        self.lines, self.written = list(lines), written


@dataclass
class Report:
    """What :func:`check` found. ``passed`` is the verdict; ``str(report)`` the text."""

    exercise: str
    passed: bool
    lines: list[str] = field(default_factory=list)
    written: bool = True  # False while the function still raises NotImplementedError

    @property
    def status(self) -> str:
        if self.passed:
            return "passed"
        return "not passed" if self.written else "not written yet"

    def __str__(self) -> str:
        return "\n".join([f"{self.exercise}: {self.status}", *(f"  {ln}" for ln in self.lines)])

    def __repr__(self) -> str:
        return f"Report({self.exercise!r}, passed={self.passed})"


def _real(path) -> str:
    return os.path.realpath(str(path))


class Learner:
    """The learner's function, called on copies of its arguments (so that a function that
    changes its inputs cannot spoil the check), its exceptions turned into :class:`Stop`.

    ``files`` are the files whose lines are the learner's: those a traceback shows."""

    def __init__(self, fn, name: str, files: set[str], copy_args: bool = True):
        self.fn, self.name, self.files, self.copy_args = fn, name, files, copy_args

    def __call__(self, *args):
        if self.copy_args:
            args = copy.deepcopy(args)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.fn(*args)
        except NotImplementedError:
            raise Stop([f"{self.name} still raises NotImplementedError: write it where the "
                        "stub says so, then check again."], written=False) from None
        except (Exception, SystemExit) as exc:
            raise Stop(explain(exc, self.files, f"your {self.name} raised")) from None


def explain(exc: BaseException, files: set[str], what: str) -> list[str]:
    """An exception as one line, and the learner's own lines that led to it (their files'
    frames only, the last three)."""
    message = " ".join(str(exc).split()) or "(no message)"
    if len(message) > 300:
        message = message[:297] + "..."
    lines = [f"{what} {type(exc).__name__}: {message}"]
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _real(f.filename) in files]
    for f in frames[-3:]:
        code = f" {f.line.strip()}" if f.line else ""
        lines.append(f"  {Path(f.filename).name}, line {f.lineno}, in {f.name}:{code}")
    return lines


def load_file(path, function: str) -> Learner:
    """The learner's file run as a module; its ``function``. Raises :class:`Stop` if the
    file does not compile, raises when run, or lacks the function."""
    path = Path(path)
    if not path.exists():
        raise ExerciseError(f"{path}: no such file")
    if not path.is_file():
        raise ExerciseError(f"{path} is not a file")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise Stop([f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})"]) \
            from None
    except OSError as exc:
        raise ExerciseError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        lines = [f"{path.name} does not compile: line {exc.lineno}: {exc.msg}"]
        if exc.text and exc.text.strip():
            lines.append(f"  {exc.text.strip()}")
        raise Stop(lines) from None
    module = types.ModuleType(f"minis2s_exercise_{path.stem}")
    module.__file__ = str(path)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # the learner's file may import its neighbours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(code, module.__dict__)
    except (Exception, SystemExit) as exc:
        raise Stop(explain(exc, {_real(path)}, f"running {path.name} raised")) from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return from_module(module, function, {_real(path)}, path.name)


def from_module(module, function: str, files: set[str] | None = None,
                where: str | None = None) -> Learner:
    fn = getattr(module, function, None)
    where = where or getattr(module, "__name__", "the module")
    if fn is None:
        raise Stop([f"{where} has no function {function}: keep the name the stub gives it."])
    if not callable(fn):
        raise Stop([f"{function} in {where} is not a function."])
    if files is None:
        files = {_real(module.__file__)} if getattr(module, "__file__", None) else set()
    return Learner(fn, function, files)


def learner_of(exercise, what) -> Learner:
    """The function to grade, from what :func:`check` was given."""
    if what is None:
        path = Path.cwd() / f"{exercise.name}.py"
        if not path.is_file():
            raise ExerciseError(f"no {exercise.name}.py in {Path.cwd()}: run 'minis2s exercise "
                                "start DIR' to copy the exercises into DIR and work there, or "
                                "give the file")
        return load_file(path, exercise.function)
    if isinstance(what, (str, os.PathLike)):
        return load_file(what, exercise.function)
    if isinstance(what, types.ModuleType):
        return from_module(what, exercise.function)
    if callable(what):
        code = getattr(what, "__code__", None)
        files = {_real(code.co_filename)} if code is not None else set()
        return Learner(what, getattr(what, "__name__", exercise.function), files)
    raise ExerciseError(f"check takes a function, a module or the path of a file, not "
                        f"{type(what).__name__}")


def solution_of(exercise):
    """The shipped solution's function (what the learner's is compared with)."""
    module = importlib.import_module(f"{__package__}.solutions.{exercise.name}")
    return getattr(module, exercise.function)


def solution_path(name: str) -> Path:
    """The file of the shipped solution to exercise ``name``."""
    return Path(str(resources.files(__package__) / "solutions" / f"{name}.py"))


def stub_text(name: str) -> str:
    """The stub of exercise ``name``, as the learner gets it."""
    return (resources.files(__package__) / "stubs" / f"{name}.py").read_text(encoding="utf-8")


def check(name: str, what=None, *, show: bool = True) -> Report:
    """Grade exercise ``name``: ``what`` is the learner's function, a module holding it, or
    the path of their file (default: ``NAME.py`` in the current folder). Prints the
    report (unless ``show`` is false) and returns it; ``report.passed`` is the verdict.

    Example (in a notebook)::

        from minis2s.exercises import check
        check("gru_step", gru_step_backward)
    """
    from .catalog import exercise

    ex = exercise(name)
    try:
        learner = learner_of(ex, what)
        passed, lines = ex.grade(learner, solution_of(ex))
        report = Report(ex.name, passed, lines)
    except Stop as stop:
        report = Report(ex.name, False, stop.lines, stop.written)
    except ExerciseError:
        raise
    except Exception as exc:  # the learner returned something the grader cannot read
        report = Report(ex.name, False, [
            f"the grader could not read what {ex.function} returned "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            "check that it returns what the stub's docstring says"])
    if show:
        print(report)
    return report


def start(folder, overwrite: bool = False) -> list[Path]:
    """Copy every stub into ``folder`` (made if missing); the files written. Refuses,
    writing nothing, where one of them exists already, unless ``overwrite``."""
    from .catalog import EXERCISES

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExerciseError(f"{folder} is a file, not a folder")
    targets = [folder / f"{name}.py" for name in EXERCISES]
    present = [t for t in targets if t.exists()]
    if present and not overwrite:
        more = f" (and {len(present) - 1} more)" if len(present) > 1 else ""
        raise ExerciseError(f"{present[0]} exists{more}; nothing was copied. Keep working "
                            "there, or give --overwrite to replace them with fresh stubs "
                            "(your work in them is lost)")
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in zip(EXERCISES, targets):
        target.write_text(stub_text(name), encoding="utf-8")
    return targets
