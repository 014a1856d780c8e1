"""Training: the loop, Ctrl-C, checkpoints to resume from, and whole experiments.

* :mod:`.trainer` — :class:`Trainer`: teacher-forced steps, Adam, clipping, epochs;
* :mod:`.signals` — Ctrl-C stops between two steps;
* :mod:`.resume` — checkpoints of a run, and going on from one exactly;
* :mod:`.ranks` — the processes training together under ``mpiexec`` (or just one);
* :mod:`.plot` — the loss curve;
* :mod:`.run` — :func:`run_experiment`: data, training and saving, end to end.
"""

from .plot import plot_history
from .ranks import SINGLE, RankError, Ranks, world
from .resume import (
    ResumeError,
    check_resumable,
    checkpoint_of,
    resume_trainer,
    settings_to_resume,
)
from .run import INPUT_ERRORS, Run, run_experiment
from .signals import Interrupted, InterruptRequest
from .trainer import EpochStats, Trainer, TrainingError, model_config

__all__ = [
    "INPUT_ERRORS",
    "SINGLE",
    "RankError",
    "Ranks",
    "world",
    "EpochStats",
    "InterruptRequest",
    "Interrupted",
    "ResumeError",
    "Run",
    "Trainer",
    "TrainingError",
    "check_resumable",
    "checkpoint_of",
    "model_config",
    "plot_history",
    "resume_trainer",
    "run_experiment",
    "settings_to_resume",
]
