"""The grader: ``check(name, what) -> Report``.

``what`` is the learner's function, a module holding it, or the path of their file
(default: ``NAME.py`` in the current folder). The exercise's own grading
(:mod:`.catalog`) runs it on fixed random inputs, compares it with finite differences
and with the shipped solution, and says what is wrong and where, never what the right
values are. Whatever the learner's code does (raise, loop over the wrong axis, return
nonsense, not compile) ends in a report, never in an exception out of :func:`check`.
Given a ``timeout``, an answer that runs longer (an endless loop) is stopped and reported
too (:func:`time_limit`).
"""

from __future__ import annotations

import _thread
import copy
import importlib
import os
import signal
import sys
import threading
import traceback
import types
import warnings
from contextlib import contextmanager
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


class TimedOut(BaseException):
    """The time limit of a check ran out. A BaseException, as KeyboardInterrupt is, so
    that the ``except Exception`` of the learner's code (or of the grader) lets it by."""

    def __init__(self, seconds: float):
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds


@contextmanager
def time_limit(seconds: float | None):
    """Stop the block with :class:`TimedOut` once ``seconds`` have passed, and again every
    half second after that until it ends (in case a bare ``except:`` in the learner's code
    caught the first). ``None`` or 0: no limit.

    A watchdog thread interrupts the main thread with :func:`_thread.interrupt_main`, which
    works alike on POSIX and Windows and stops pure-Python loops at their next bytecode;
    the block's own SIGINT handler turns the interruption into :class:`TimedOut` (a real
    Ctrl-C before the limit stays a KeyboardInterrupt). A long call into compiled code is
    stopped only when it returns. Python handles signals in the main thread only, so off
    it (and where no handler can be set) the block runs without a limit.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    state = {"over": False, "done": False}

    def on_interrupt(signum, frame):
        if state["done"]:
            return  # a late interruption, after the block: nothing to stop
        if state["over"]:
            raise TimedOut(seconds)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except (ValueError, OSError):  # no handler can be set here
        yield
        return
    stop = threading.Event()

    def watch():
        if stop.wait(seconds):
            return
        state["over"] = True
        while True:
            _thread.interrupt_main()
            if stop.wait(0.5):
                return

    watchdog = threading.Thread(target=watch, name="minis2s-exercise-time-limit", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        state["done"] = True
        stop.set()
        watchdog.join()
        # signal.signal runs an interruption still pending (a no-op now) before replacing
        # the handler, so none reaches the previous one
        signal.signal(signal.SIGINT, previous)


def stopped(exc: TimedOut, files: set[str], what: str) -> list[str]:
    """A time limit that ran out, in words, and the learner's own lines it stopped in."""
    lines = explain(exc, files, what)[1:]
    where = " It was stopped in:" if lines else ""
    return [f"{what} took longer than {exc.seconds:g} s — an endless loop?{where}", *lines]


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
        except TimedOut as exc:
            raise Stop(stopped(exc, self.files, f"your {self.name}")) from None
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
    except TimedOut as exc:
        raise Stop(stopped(exc, {_real(path)}, f"running {path.name}")) from None
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


def check(name: str, what=None, *, show: bool = True, timeout: float | None = None) -> Report:
    """Grade exercise ``name``: ``what`` is the learner's function, a module holding it, or
    the path of their file (default: ``NAME.py`` in the current folder). Prints the
    report (unless ``show`` is false) and returns it; ``report.passed`` is the verdict.

    ``timeout``: seconds the whole check may take (None: no limit, the default from
    Python; ``minis2s exercise check`` gives one). Past it the answer is stopped and the
    report says so, with the learner's line it was stopped in (:func:`time_limit`).

    Example (in a notebook)::

        from minis2s.exercises import check
        check("gru_step", gru_step_backward)
    """
    from .catalog import exercise

    ex = exercise(name)
    try:
        with time_limit(timeout):
            learner = learner_of(ex, what)
            passed, lines = ex.grade(learner, solution_of(ex))
        report = Report(ex.name, passed, lines)
    except Stop as stop:
        report = Report(ex.name, False, stop.lines, stop.written)
    except TimedOut as exc:  # out of the learner's code, in the grader's own
        report = Report(ex.name, False, [f"grading took longer than {exc.seconds:g} s and "
                                         "was stopped."])
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
