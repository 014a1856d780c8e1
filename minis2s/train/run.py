"""One experiment from start to end: read the data, train, save after every epoch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import checkpoint
from ..backend import Backend, BackendError
from ..checkpoint import CheckpointError
from ..data import DataError, TranslationData, load_data, load_task_data, resolve_data_path
from ..presets import PRESETS, Preset
from ..settings import ConfigError
from ..wording import plural
from .plot import plot_history
from .ranks import SINGLE, Ranks, limit_blas_threads
from .resume import ResumeError, check_resumable, checkpoint_of, resume_trainer
from .signals import Interrupted, InterruptRequest, sigint_ignored
from .trainer import EpochStats, Trainer, TrainingError, model_config

# the errors that are the input's or the machine's fault: every rank stops with them
INPUT_ERRORS = (BackendError, CheckpointError, ConfigError, DataError, ResumeError, OSError)


@dataclass
class Run:
    trainer: Trainer
    data: TranslationData
    checkpoint_path: Path


def _data_digest(data: TranslationData) -> str:
    """What every rank must have read alike: the vocabularies and the training arrays."""
    h = hashlib.sha1()
    for vocab in (data.src_vocab, data.tgt_vocab):
        h.update("\n".join(vocab.idx_to_token).encode())
    for array in (data.train.src, data.train.tgt, data.valid.src, data.valid.tgt):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _checkpoint_digest(ck) -> str:
    """What every rank must resume from alike: the parameters, Adam's moments and the
    training state (a stale copy on another machine would differ)."""
    h = hashlib.sha1()
    for name in sorted(ck.params):
        h.update(np.ascontiguousarray(ck.params[name]).tobytes())
    for name in sorted(ck.extra):
        h.update(np.ascontiguousarray(ck.extra[name]).tobytes())
    h.update(json.dumps(ck.training, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _together(ranks: Ranks, what: str, task: Callable):
    """``task()`` on every rank, failing on all if it fails on any (see Ranks.together)."""
    return ranks.together(what, task, INPUT_ERRORS)


def run_experiment(preset: Preset, data_path, backend: Backend, out_dir,
                   seed: int | None = 0, progress: bool = True,
                   warn: Callable[[str], None] = print, resume: bool = False,
                   ranks: Ranks = SINGLE, overwrite: bool = False,
                   log_every: float = 300.0) -> Run:
    """Read the data, train ``preset.epochs`` epochs in all, and keep
    ``out_dir/checkpoint.npz`` saved after every epoch (and a loss curve when matplotlib
    is there). With ``resume`` the run goes on from that checkpoint, which must have been
    trained with ``preset`` (its epochs aside). Without ``resume``, a checkpoint already
    there is refused with a :class:`ResumeError` before the corpus is read, and left as it
    is, unless ``overwrite`` says to start again and replace it.

    The settings are printed first, through ``warn``; so is progress where there is no
    progress bar (no ``progress``, or stderr not a terminal): one line per epoch with its
    loss, speed and the time left, and one every ``log_every`` seconds inside an epoch
    (see :class:`~minis2s.train.progress.ProgressLog`). Ctrl-C stops between two steps,
    saves the current state (with SIGINT ignored while it is written) and raises
    :class:`Interrupted`. A NaN or Inf raises :class:`TrainingError` and leaves the last
    epoch's checkpoint as it was.

    With several ``ranks`` (``mpiexec -n R``) every rank runs this; each trains on its
    shard of every batch, and rank 0 alone prints, draws the progress bar and writes
    files. The ranks check that they were given the same settings and read the same
    data, and a rank that fails to start makes every rank stop with its message.

    A preset with a ``task`` trains on that task's generated pairs: no corpus is read,
    and a ``data_path`` given with it is refused (:class:`DataError`) before any work."""
    if preset.task is not None and data_path is not None:
        raise DataError(f"--data names a corpus to read, and --task {preset.task.name} makes "
                        "pairs of its own: give one or the other")
    if not ranks.root:
        warn, progress = (lambda message: None), False
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoint.npz"

    def make_folder():
        if ranks.root:
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OSError(f"cannot use {out_dir} as the output folder: "
                              f"{exc.strerror or exc}") from None

    if resume and overwrite:
        raise ResumeError("--resume goes on from the checkpoint and --overwrite replaces "
                          "it: give one or the other")

    def refuse_to_replace():
        """Rank 0 writes the checkpoints, so its folder is the one to keep safe."""
        if ranks.root and not resume and not overwrite and ckpt_path.exists():
            raise ResumeError(f"{ckpt_path} exists: --resume goes on from it, --overwrite "
                              "starts again and replaces it")

    _together(ranks, "check the output folder", refuse_to_replace)  # before the corpus
    _together(ranks, "make the output folder", make_folder)
    ck = None
    if resume:  # fail before reading the corpus

        def read_checkpoint():
            if not ckpt_path.is_file():
                raise ResumeError(f"cannot resume: no checkpoint at {ckpt_path}")
            found = checkpoint.load(ckpt_path)
            return found, check_resumable(found, preset, seed, str(ckpt_path))

        ck, seed = _together(ranks, "read the checkpoint", read_checkpoint)
        ranks.check_same("the checkpoint", _checkpoint_digest(ck))
    seed = 0 if seed is None else seed
    ranks.check_same("the settings", {"preset": preset.to_dict(), "seed": seed,
                                      "resume": resume, "backend": backend.name})
    warn(f"{preset.describe(PRESETS.get(preset.name))}; random seed {seed}")
    threads = limit_blas_threads(ranks)
    if threads:
        warn(threads)
    if preset.task is not None:
        data = _together(ranks, "make the task's pairs", lambda: load_task_data(
            preset.task, preset.data_spec()))
    else:
        data = _together(ranks, "read the data", lambda: load_data(
            resolve_data_path(data_path), preset.data_spec(), warn=warn))
    ranks.check_same("the data", _data_digest(data))
    if ck is not None:
        trainer = _together(ranks, "resume", lambda: resume_trainer(
            ck, preset, data, backend, seed, warn, str(ckpt_path)))
        trainer.ranks = ranks
    else:
        if ckpt_path.exists():
            warn(f"{ckpt_path} exists and will be replaced by this new run (--overwrite)")
        trainer = Trainer(model_config(preset, data), preset, backend, seed=seed,
                          ranks=ranks)
    done = len(trainer.history)
    remaining = preset.epochs - done
    if resume:
        warn(f"resuming {trainer.position()} from {ckpt_path}")
    on = f"{backend.name}" + (f", {ranks.size} ranks" if ranks.size > 1 else "")
    warn(f"{plural(len(data.train), 'training pair')}, vocabularies "
         f"{len(data.src_vocab)} / {len(data.tgt_vocab)}, {plural(preset.epochs, 'epoch')} "
         f"on {on}")
    if remaining < 1:
        warn(f"{ckpt_path} already holds {plural(done, 'finished epoch')} of the "
             f"{preset.epochs} asked for; nothing to train (raise --epochs to go on)")
        return Run(trainer, data, ckpt_path)

    def save(tr: Trainer, _stats: EpochStats) -> None:
        """Rank 0 writes; if it cannot, every rank stops with its message."""
        def write():
            if ranks.root:
                checkpoint.save(ckpt_path, checkpoint_of(tr, data, seed))

        _together(ranks, "write the checkpoint", write)

    with InterruptRequest() as interrupt:
        try:
            trainer.fit(data, remaining, progress=progress, on_epoch=save,
                        interrupt=interrupt, log=warn, log_every=log_every)
        except KeyboardInterrupt:
            with sigint_ignored():
                save(trainer, None)
                ranks.barrier()  # the others wait until the checkpoint is written
            raise Interrupted(f"interrupted {trainer.position()}; "
                              f"checkpoint in {ckpt_path} (go on with --resume)") from None
        except TrainingError as exc:
            if len(trainer.history) > done:
                kept = f"{ckpt_path} holds epoch {len(trainer.history)}, the last good one"
            elif resume:
                kept = f"{ckpt_path} is left as it was"
            else:
                kept = "no checkpoint was written"
            raise TrainingError(f"{trainer.position()}: {exc}; {kept}") from None
    if ranks.root and plot_history(trainer.history, out_dir / "loss.png", warn,
                                   preset=preset, pairs=len(data.train)):
        warn(f"loss curve in {out_dir / 'loss.png'}")
    warn(f"checkpoint in {ckpt_path}")
    ranks.barrier()  # every rank ends when the last checkpoint is written
    return Run(trainer, data, ckpt_path)
