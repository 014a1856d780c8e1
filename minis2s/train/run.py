"""One experiment from start to end: read the data, train, save after every epoch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoint
from ..backend import Backend
from ..data import TranslationData, load_data, resolve_data_path
from ..presets import PRESETS, Preset
from .plot import plot_history
from .resume import ResumeError, check_resumable, checkpoint_of, resume_trainer
from .signals import Interrupted, InterruptRequest, sigint_ignored
from .trainer import EpochStats, Trainer, TrainingError, model_config


@dataclass
class Run:
    trainer: Trainer
    data: TranslationData
    checkpoint_path: Path


def run_experiment(preset: Preset, data_path, backend: Backend, out_dir,
                   seed: int | None = 0, progress: bool = True,
                   warn: Callable[[str], None] = print, resume: bool = False) -> Run:
    """Read the data, train ``preset.epochs`` epochs in all, and keep
    ``out_dir/checkpoint.npz`` saved after every epoch (and a loss curve when matplotlib
    is there). With ``resume`` the run goes on from that checkpoint, which must have been
    trained with ``preset`` (its epochs aside).

    The settings are printed first, through ``warn``. Ctrl-C stops between two steps,
    saves the current state (with SIGINT ignored while it is written) and raises
    :class:`Interrupted`. A NaN or Inf raises :class:`TrainingError` and leaves the last
    epoch's checkpoint as it was."""
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoint.npz"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot use {out_dir} as the output folder: {exc.strerror or exc}") \
            from None
    ck = None
    if resume:  # fail before reading the corpus
        if not ckpt_path.is_file():
            raise ResumeError(f"cannot resume: no checkpoint at {ckpt_path}")
        ck = checkpoint.load(ckpt_path)
        seed = check_resumable(ck, preset, seed, str(ckpt_path))
    seed = 0 if seed is None else seed
    warn(f"{preset.describe(PRESETS.get(preset.name))}; random seed {seed}")
    path = resolve_data_path(data_path)
    data = load_data(path, preset.num_steps, preset.num_examples, preset.valid_size,
                     preset.test_size, preset.split_seed, preset.min_freq, warn=warn)
    if ck is not None:
        trainer = resume_trainer(ck, preset, data, backend, seed, warn, str(ckpt_path))
    else:
        if ckpt_path.exists():
            warn(f"{ckpt_path} exists and will be replaced (--resume goes on from it)")
        trainer = Trainer(model_config(preset, data), preset, backend, seed=seed)
    done = len(trainer.history)
    remaining = preset.epochs - done
    if resume:
        warn(f"resuming {trainer.position()} from {ckpt_path}")
    warn(f"{len(data.train)} training pairs, vocabularies {len(data.src_vocab)} / "
         f"{len(data.tgt_vocab)}, {preset.epochs} epochs on {backend.name}")
    if remaining < 1:
        warn(f"{ckpt_path} already holds {done} finished epochs of the {preset.epochs} "
             "asked for; nothing to train (raise --epochs to go on)")
        return Run(trainer, data, ckpt_path)

    def save(tr: Trainer, _stats: EpochStats) -> None:
        checkpoint.save(ckpt_path, checkpoint_of(tr, data, seed))

    with InterruptRequest() as interrupt:
        try:
            trainer.fit(data, remaining, progress=progress, on_epoch=save,
                        interrupt=interrupt)
        except KeyboardInterrupt:
            with sigint_ignored():
                checkpoint.save(ckpt_path, checkpoint_of(trainer, data, seed))
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
    if plot_history(trainer.history, out_dir / "loss.png"):
        warn(f"loss curve in {out_dir / 'loss.png'}")
    warn(f"checkpoint in {ckpt_path}")
    return Run(trainer, data, ckpt_path)
