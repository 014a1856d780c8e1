"""Checkpoints of a training run, and going on from one exactly.

:func:`checkpoint_of` writes down what resuming needs next to the parameters: the
training configuration, the random seed, the per-epoch history and the trainer's
:meth:`~minis2s.train.Trainer.resume_state`. :func:`resume_trainer` checks that a
checkpoint was trained with the same configuration, random seed and data, and rebuilds the
trainer from it. Every refusal is a :class:`ResumeError` and leaves the file untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from .. import checkpoint
from ..backend import Backend, to_numpy
from ..checkpoint import Checkpoint
from ..data import TranslationData
from ..model import init_params
from ..presets import Preset
from ..settings import ConfigError
from .trainer import RESUME_ARRAYS, StateError, Trainer, model_config


class ResumeError(ValueError):
    """A checkpoint that cannot be resumed with the requested settings."""


# recorded under training; with the model's settings and the data spec they make the
# run's preset again
OPTIMISATION = ("batch_size", "lr", "lr_decay", "grad_clip", "loss_reduction")

# the optimisation settings older files lack, and the value their runs had
MISSING_MEANS = {"loss_reduction": "seq", "lr_decay": 1.0}


def checkpoint_of(trainer: Trainer, data: TranslationData, seed: int) -> Checkpoint:
    """A checkpoint of the trainer's parameters, with what is needed to redo the split
    and to resume training exactly where it is."""
    preset = trainer.preset
    params = {k: to_numpy(v) for k, v in trainer.params.items()}
    arrays, state = trainer.resume_state()
    training = {"preset": preset.name, "epochs": len(trainer.history),
                "total_epochs": preset.epochs,
                **{name: getattr(preset, name) for name in OPTIMISATION}, "seed": seed,
                "train_pairs": len(data.train),
                "loss": trainer.history[-1].loss if trainer.history else None,
                "history": [asdict(h) for h in trainer.history], "state": state}
    return Checkpoint(params, trainer.cfg, data.spec, data.src_vocab, data.tgt_vocab,
                      training, arrays, data.task)


def saved_settings(ck: Checkpoint, where: str = "the checkpoint") -> tuple[Preset, int]:
    """The training configuration and the random seed ``ck`` was trained with."""
    tr = ck.training
    missing = [k for k in RESUME_ARRAYS if k not in ck.extra]
    if not isinstance(tr.get("state"), dict) or missing:
        raise ResumeError(f"{where} holds no optimiser state, so it cannot be resumed "
                          "(it was written by an older minis2s or edited); train afresh "
                          "without --resume")
    seed = tr.get("seed")
    try:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed {seed!r}")
        optimisation = {name: tr[name] if name not in MISSING_MEANS
                        else tr.get(name, MISSING_MEANS[name]) for name in OPTIMISATION}
        return Preset.from_parts(tr["preset"], ck.config, ck.data,
                                 {"epochs": tr["total_epochs"], **optimisation},
                                 ck.task), seed
    except KeyError as exc:
        raise ResumeError(f"{where}: unreadable training settings (no {exc})") from None
    except (TypeError, ConfigError) as exc:
        raise ResumeError(f"{where}: unreadable training settings ({exc})") from None


def settings_to_resume(path, preset_name: str | None, overrides: dict) -> Preset:
    """The configuration to go on with from the checkpoint at ``path``: its own, with
    ``overrides`` (the flags given) applied; only ``epochs`` may differ from it."""
    if not Path(path).is_file():
        raise ResumeError(f"cannot resume: no checkpoint at {path}")
    saved, _ = saved_settings(checkpoint.load(path), str(path))
    if preset_name is not None and preset_name != saved.name:
        raise ResumeError(f"{path} was trained with preset {saved.name!r}, not "
                          f"{preset_name!r}; resume with --preset {saved.name}")
    return saved.with_overrides(**overrides)


def check_resumable(ck: Checkpoint, preset: Preset, seed: int | None,
                    where: str = "the checkpoint") -> int:
    """Check that ``ck`` holds a training state made with ``preset`` (its epochs aside)
    and random seed ``seed`` (None: take the checkpoint's); returns that random seed."""
    saved, saved_seed = saved_settings(ck, where)
    if saved.name != preset.name:
        raise ResumeError(f"{where} was trained with preset {saved.name!r}, not "
                          f"{preset.name!r}; resume with --preset {saved.name}")
    differ = [f.name for f in fields(Preset)
              if f.name != "epochs" and getattr(saved, f.name) != getattr(preset, f.name)]
    if differ:
        detail = ", ".join(f"{k} {getattr(saved, k)!r} there, {getattr(preset, k)!r} asked"
                           for k in differ)
        raise ResumeError(f"{where} was trained with other settings than asked ({detail}); "
                          "resume with the settings it was trained with (leave the flags "
                          "out to take them from the checkpoint)")
    if seed is None:
        return saved_seed
    if seed != saved_seed:
        raise ResumeError(f"{where} was trained with --seed {saved_seed}, not {seed}")
    return seed


def resume_trainer(ck: Checkpoint, preset: Preset, data: TranslationData, backend: Backend,
                   seed: int | None, warn: Callable[[str], None] = print,
                   where: str = "the checkpoint") -> Trainer:
    """A trainer that goes on from ``ck`` exactly, after checking that ``ck`` was trained
    with ``preset`` (its epochs aside), ``seed`` (None: the checkpoint's) and this data."""
    seed = check_resumable(ck, preset, seed, where)
    tr = ck.training
    state = tr["state"]
    if (ck.src_vocab.idx_to_token != data.src_vocab.idx_to_token
            or ck.tgt_vocab.idx_to_token != data.tgt_vocab.idx_to_token
            or tr.get("train_pairs") != len(data.train)):
        raise ResumeError(f"{where} was trained on other data: this corpus gives other "
                          "vocabularies or another number of training pairs")
    cfg = model_config(preset, data)
    if cfg != ck.config or preset.data_spec() != ck.data:
        raise ResumeError(f"{where} holds a model of another shape than preset "
                          f"{preset.name!r} builds")
    params = init_params(cfg, backend, np.random.default_rng(seed))
    params.assign(ck.params)
    trainer = Trainer(cfg, preset, backend, seed=seed, params=params)
    try:
        exact = trainer.load_resume_state(ck.extra, state, tr.get("history") or [])
    except StateError as exc:
        raise ResumeError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResumeError(f"{where}: unreadable training state ({exc!r})") from None
    if not exact or state.get("backend") != backend.name:
        warn(f"resuming a {state.get('backend')} run on {backend.name}: the dropout masks "
             "will differ from an uninterrupted run's (resume is exact on numpy only)")
    return trainer
