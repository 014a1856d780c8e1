"""Backprop exercises in student form, graded with precise feedback.

Each exercise is a stub a learner edits (``stubs/NAME.py``: the task in a docstring, the
project's own forward, and the function to write), a worked solution
(``solutions/NAME.py``) and a grader (:mod:`.catalog`). :func:`check` grades a function,
a module or a file and says which output is wrong, how and where, never the answer::

    from minis2s.exercises import check
    report = check("gru_step", gru_step_backward)   # prints the report
    report.passed

From the command line: ``minis2s exercise list``, ``minis2s exercise start DIR``,
``minis2s exercise check NAME``. docs/exercises.md describes them.
"""

from .catalog import EXERCISES, Exercise, exercise
from .grader import ExerciseError, Report, check, solution_path, start, stub_text

__all__ = ["EXERCISES", "Exercise", "ExerciseError", "Report", "check", "exercise",
           "solution_path", "start", "stub_text"]
