"""Training with teacher forcing, the seed's loss, Adam and clipping at global norm 1.

A run can stop and go on exactly where it was: :meth:`Trainer.resume_state` gives the
optimiser's moments, the generators' states and the position inside the current epoch,
and :func:`resume_trainer` puts them back, so that a resumed run computes bit for bit what
an uninterrupted one would (on the NumPy backend; see docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint
from .backend import Backend, to_numpy
from .checkpoint import Checkpoint
from .data import Part, TranslationData, iterate_batches, load_data, resolve_data_path
from .model import (
    ModelConfig,
    draw_dropout_masks,
    init_params,
    seq2seq_backward,
    seq2seq_forward,
)
from .optim import Adam, clip_grad_norm_
from .params import ParamSet
from .presets import Preset


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN or Inf loss or gradient norm)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, after a checkpoint of the current state was saved."""


class ResumeError(ValueError):
    """A checkpoint that cannot be resumed with the requested settings."""


@dataclass
class EpochStats:
    epoch: int  # 1-based
    loss: float  # sum of per-sequence losses / valid target tokens, as the seed counts
    tokens: int  # valid target tokens seen
    seconds: float
    valid_loss: float | None = None

    @property
    def tokens_per_sec(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class EpochProgress:
    """How far an unfinished epoch has got."""

    shuffle_state: dict  # the order generator's state when the epoch began
    batches: int = 0  # batches done
    loss_sum: float = 0.0
    tokens: int = 0
    seconds: float = 0.0


class InterruptRequest:
    """While entered (in the main thread), SIGINT does not raise: it sets ``requested``,
    and :meth:`Trainer.run_epoch` raises ``KeyboardInterrupt`` before its next batch. So
    an interrupted run always stops between two optimisation steps, never inside one."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None
        self._installed = False

    def _handler(self, signum, frame) -> None:
        self.requested = True

    def __enter__(self) -> InterruptRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc) -> bool:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGINT, previous)
            self._installed = False
        return False


@contextlib.contextmanager
def sigint_ignored():
    """Ignore SIGINT inside the block (main thread only), then put the handler back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def _generator_state(gen) -> dict | None:
    """A NumPy generator's state as JSON-able data; None for generators without one."""
    if isinstance(gen, np.random.Generator):
        return gen.bit_generator.state
    return None


@dataclass
class Trainer:
    """Owns the parameters, the optimiser and the generators of one training run."""

    cfg: ModelConfig
    preset: Preset
    backend: Backend
    seed: int = 0
    params: ParamSet = None
    history: list[EpochStats] = field(default_factory=list)

    def __post_init__(self):
        if self.params is None:
            self.params = init_params(self.cfg, self.backend, np.random.default_rng(self.seed))
        self.grads = self.params.zeros_like()
        self.opt = Adam(self.params, lr=self.preset.lr)
        self.shuffle_rng = np.random.default_rng([self.seed, 1])  # minibatch order
        self.dropout_gen = self.backend.generator(self.seed + 2)  # dropout masks
        self.epoch_progress: EpochProgress | None = None  # set while an epoch is unfinished
        self.interrupt: InterruptRequest | None = None

    def teacher_forcing_input(self, tgt, bos: int):
        """Decoder input: ``<bos>`` followed by the target without its last token."""
        xp = self.backend.xp
        return xp.concatenate([xp.full((tgt.shape[0], 1), bos, dtype=tgt.dtype),
                               tgt[:, :-1]], axis=1)

    def step(self, src, tgt, tgt_valid_len, bos: int) -> float:
        """One optimisation step on a batch; returns the batch's summed sequence loss."""
        N, T_src = src.shape
        masks = draw_dropout_masks(self.cfg, self.backend, self.dropout_gen, N, T_src,
                                   tgt.shape[1])
        loss, cache = seq2seq_forward(self.params, self.cfg, src,
                                      self.teacher_forcing_input(tgt, bos), tgt,
                                      tgt_valid_len, masks)
        loss = float(loss)
        self.grads.assign(seq2seq_backward(1.0, cache))
        norm = clip_grad_norm_(self.grads, self.preset.grad_clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            raise TrainingError(f"loss {loss} / gradient norm {norm} is not finite; "
                                "stopping before the parameters are spoiled")
        self.opt.step(self.grads)
        return loss

    def evaluate_loss(self, part: Part, bos: int, batch_size: int = 512) -> float:
        """The seed's loss measure on a part, without dropout or updates."""
        xp = self.backend.xp
        total, tokens = 0.0, 0
        for b in iterate_batches(part, batch_size, None, shuffle=False):
            tgt = xp.asarray(b.tgt)
            loss, _ = seq2seq_forward(self.params, self.cfg, xp.asarray(b.src),
                                      self.teacher_forcing_input(tgt, bos), tgt,
                                      xp.asarray(b.tgt_valid_len))
            total += float(loss)
            tokens += int(b.tgt_valid_len.sum())
        return total / max(tokens, 1)

    def run_epoch(self, data: TranslationData, progress=None) -> EpochStats:
        """Train one epoch, or the rest of an unfinished one (its batch order is drawn
        again from the generator's state at its start, and the batches done are skipped).

        A ``KeyboardInterrupt`` leaves the trainer between two steps, with
        :attr:`epoch_progress` saying where; calling this again goes on from there."""
        xp, bos = self.backend.xp, data.tgt_vocab.bos
        p = self.epoch_progress
        if p is None:
            p = self.epoch_progress = EpochProgress(self.shuffle_rng.bit_generator.state)
        else:
            self.shuffle_rng.bit_generator.state = p.shuffle_state
        start = time.perf_counter()
        try:
            batches = iterate_batches(data.train, self.preset.batch_size, self.shuffle_rng)
            for i, b in enumerate(batches):
                if i < p.batches:
                    continue
                if self.interrupt is not None and self.interrupt.requested:
                    raise KeyboardInterrupt
                p.loss_sum += self.step(xp.asarray(b.src), xp.asarray(b.tgt),
                                        xp.asarray(b.tgt_valid_len), bos)
                p.tokens += int(b.tgt_valid_len.sum())
                p.batches += 1
                if progress is not None:
                    progress(1)
        finally:
            p.seconds += time.perf_counter() - start
        stats = EpochStats(len(self.history) + 1, p.loss_sum / max(p.tokens, 1), p.tokens,
                           p.seconds)
        if len(data.valid):
            stats.valid_loss = self.evaluate_loss(data.valid, bos)
        self.epoch_progress = None
        self.history.append(stats)
        return stats

    def fit(self, data: TranslationData, epochs: int, progress: bool = True,
            on_epoch: Callable[[Trainer, EpochStats], None] | None = None,
            interrupt: InterruptRequest | None = None) -> EpochStats:
        """Train ``epochs`` more epochs (an unfinished one counts as one); calls
        ``on_epoch`` after each. Ctrl-C raises ``KeyboardInterrupt`` between two steps
        (through ``interrupt``, or one of its own)."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        with contextlib.ExitStack() as stack:
            if interrupt is None:
                interrupt = stack.enter_context(InterruptRequest())
            self.interrupt = interrupt
            stack.callback(setattr, self, "interrupt", None)
            return self._fit(data, epochs, progress, on_epoch)

    def _fit(self, data, epochs, progress, on_epoch) -> EpochStats:
        bar = None
        if progress:
            from tqdm import tqdm

            batches = math.ceil(len(data.train) / self.preset.batch_size)
            done = self.epoch_progress.batches if self.epoch_progress else 0
            bar = tqdm(total=epochs * batches - done, unit="batch", leave=False,
                       dynamic_ncols=True)
        stats = None
        try:
            for _ in range(epochs):
                stats = self.run_epoch(data, bar.update if bar else None)
                if bar is not None:
                    post = {"epoch": stats.epoch, "loss": f"{stats.loss:.3f}"}
                    if stats.valid_loss is not None:
                        post["valid"] = f"{stats.valid_loss:.3f}"
                    bar.set_postfix(post)
                if on_epoch is not None:
                    on_epoch(self, stats)
        finally:
            if bar is not None:
                bar.close()
        return stats

    def summary_line(self) -> str:
        """The seed's closing line, from the last epoch."""
        s = self.history[-1]
        return f"loss {s.loss:.3f}, {s.tokens_per_sec:.1f} tokens/sec on {self.backend.device}"

    # ------------------------------------------------------------ stopping and going on

    def resume_state(self) -> tuple[dict, dict]:
        """What a new trainer needs to go on exactly from here: arrays (Adam's moments)
        and JSON-able values (step count, history, generator states, epoch position)."""
        opt = self.opt.state_dict()
        arrays = {"adam.m": to_numpy(opt["m"]), "adam.v": to_numpy(opt["v"])}
        p = self.epoch_progress
        state = {
            "backend": self.backend.name,
            "adam_t": int(opt["t"]),
            "shuffle_rng": p.shuffle_state if p else self.shuffle_rng.bit_generator.state,
            "dropout_rng": _generator_state(self.dropout_gen),
            "batch": p.batches if p else 0,
            "epoch_loss_sum": p.loss_sum if p else 0.0,
            "epoch_tokens": p.tokens if p else 0,
            "epoch_seconds": p.seconds if p else 0.0,
        }
        return arrays, state

    def load_resume_state(self, arrays: dict, state: dict, history: list[dict]) -> bool:
        """Undo :meth:`resume_state`. Returns False when the dropout generator's state
        could not be restored (a CuPy generator), so the run will not be exact."""
        size = int(self.params.flat.size)
        for name in ("adam.m", "adam.v"):
            a = arrays[name]
            if a.shape != (size,) or not np.issubdtype(a.dtype, np.floating):
                raise ResumeError(f"optimiser state {name} has shape {a.shape} and dtype "
                                  f"{a.dtype}; the parameters need ({size},) floats")
            if not np.all(np.isfinite(a)):
                raise ResumeError(f"optimiser state {name} holds NaN or Inf")
        self.opt.load_state_dict({"t": state["adam_t"], "m": arrays["adam.m"],
                                  "v": arrays["adam.v"]})
        self.history = [EpochStats(**h) for h in history]
        self.shuffle_rng.bit_generator.state = state["shuffle_rng"]
        self.epoch_progress = None
        if state["batch"]:
            self.epoch_progress = EpochProgress(
                state["shuffle_rng"], int(state["batch"]), float(state["epoch_loss_sum"]),
                int(state["epoch_tokens"]), float(state["epoch_seconds"]))
        dropout = state.get("dropout_rng")
        if dropout is not None and isinstance(self.dropout_gen, np.random.Generator):
            self.dropout_gen.bit_generator.state = dropout
            return True
        # No state to restore (CuPy): a fresh stream, different from the first epoch's.
        self.dropout_gen = self.backend.generator(self.seed + 2 + 1_000_003 * self.opt.t)
        return False


def model_config(preset: Preset, data: TranslationData) -> ModelConfig:
    return ModelConfig(len(data.src_vocab), len(data.tgt_vocab), preset.embed_size,
                       preset.num_hiddens, preset.num_layers, preset.dropout,
                       preset.bidirectional)


def plot_history(history: list[EpochStats], path) -> bool:
    """Save a loss curve as PNG when matplotlib is installed; returns whether it did."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = [s.epoch for s in history]
    ax.plot(epochs, [s.loss for s in history], label="train")
    if any(s.valid_loss is not None for s in history):
        ax.plot(epochs, [s.valid_loss for s in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per token")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# ----------------------------------------------------------------- a whole experiment


@dataclass
class Run:
    trainer: Trainer
    data: TranslationData
    checkpoint_path: Path


RESUME_ARRAYS = ("adam.m", "adam.v")


def checkpoint_of(trainer: Trainer, data: TranslationData, seed: int) -> Checkpoint:
    """A checkpoint of the trainer's parameters, with what is needed to redo the split
    and to resume training exactly where it is."""
    preset = trainer.preset
    params = {k: to_numpy(v) for k, v in trainer.params.items()}
    data_meta = {"num_examples": preset.num_examples, "valid_size": preset.valid_size,
                 "test_size": preset.test_size, "split_seed": preset.split_seed,
                 "min_freq": preset.min_freq, "train_pairs": len(data.train)}
    arrays, state = trainer.resume_state()
    training = {"preset": preset.name, "epochs": len(trainer.history), "seed": seed,
                "lr": preset.lr, "batch_size": preset.batch_size,
                "loss": trainer.history[-1].loss if trainer.history else None,
                "total_epochs": preset.epochs, "preset_config": preset.to_dict(),
                "history": [asdict(h) for h in trainer.history], "state": state}
    return Checkpoint(params, trainer.cfg, preset.num_steps, data.src_vocab,
                      data.tgt_vocab, data_meta, training, arrays)


def check_resumable(ck: Checkpoint, preset: Preset, seed: int | None,
                    where: str = "the checkpoint") -> int:
    """Check that ``ck`` holds a training state made with ``preset`` (its epochs aside)
    and ``seed`` (None: take the checkpoint's); returns the seed."""
    tr = ck.training
    missing = [k for k in RESUME_ARRAYS if k not in ck.extra]
    if not isinstance(tr.get("state"), dict) or missing or "preset_config" not in tr:
        raise ResumeError(f"{where} holds no optimiser state, so it cannot be resumed "
                          "(it was written by an older minis2s or edited); train afresh "
                          "without --resume")
    saved, saved_seed = tr["preset_config"], tr.get("seed")
    if not isinstance(saved, dict) or isinstance(saved_seed, bool) \
            or not isinstance(saved_seed, int):
        raise ResumeError(f"{where}: unreadable training settings (preset_config, seed)")
    wanted = preset.to_dict()
    differ = sorted(k for k in set(saved) | set(wanted)
                    if k != "epochs" and saved.get(k) != wanted.get(k))
    if "name" in differ:
        raise ResumeError(f"{where} was trained with preset {saved.get('name')!r}, not "
                          f"{preset.name!r}; resume with --preset {saved.get('name')}")
    if differ:
        detail = ", ".join(f"{k} {saved.get(k)!r} there, {wanted.get(k)!r} asked"
                           for k in differ)
        raise ResumeError(f"{where} was trained with other settings than asked ({detail}); "
                          "resume with the same --preset and --examples")
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
            or ck.data.get("train_pairs") != len(data.train)):
        raise ResumeError(f"{where} was trained on other data: this corpus gives other "
                          "vocabularies or another number of training pairs")
    cfg = model_config(preset, data)
    if cfg != ck.config or preset.num_steps != ck.num_steps:
        raise ResumeError(f"{where} holds a model of another shape than preset "
                          f"{preset.name!r} builds")
    params = init_params(cfg, backend, np.random.default_rng(seed))
    params.assign(ck.params)
    trainer = Trainer(cfg, preset, backend, seed=seed, params=params)
    try:
        exact = trainer.load_resume_state(ck.extra, state, tr.get("history") or [])
    except ResumeError as exc:
        raise ResumeError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResumeError(f"{where}: unreadable training state ({exc!r})") from None
    if not exact or state.get("backend") != backend.name:
        warn(f"resuming a {state.get('backend')} run on {backend.name}: the dropout masks "
             "will differ from an uninterrupted run's (resume is exact on numpy only)")
    return trainer


def _position(trainer: Trainer) -> str:
    """Where training stands, e.g. 'in epoch 3/10 after 2 batches'."""
    done, total = len(trainer.history), trainer.preset.epochs
    p = trainer.epoch_progress
    if p is None or p.batches == 0:
        return f"after epoch {done}/{total}" if done else "before the first step"
    return f"in epoch {done + 1}/{total} after {p.batches} batch{'es' if p.batches > 1 else ''}"


def run_experiment(preset: Preset, data_path, backend: Backend, out_dir,
                   seed: int | None = 0, progress: bool = True,
                   warn: Callable[[str], None] = print, resume: bool = False) -> Run:
    """Read the data, train ``preset.epochs`` epochs in all, and keep
    ``out_dir/checkpoint.npz`` saved after every epoch (and a loss curve when matplotlib
    is there). With ``resume`` the run goes on from that checkpoint.

    Ctrl-C stops between two steps, saves the current state (with SIGINT ignored while
    it is written) and raises :class:`Interrupted`. A NaN or Inf raises
    :class:`TrainingError` and leaves the last epoch's checkpoint as it was."""
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
    path = resolve_data_path(data_path)
    data = load_data(path, preset.num_steps, preset.num_examples, preset.valid_size,
                     preset.test_size, preset.split_seed, preset.min_freq, warn=warn)
    if ck is not None:
        trainer = resume_trainer(ck, preset, data, backend, seed, warn, str(ckpt_path))
        seed = trainer.seed
    else:
        seed = 0 if seed is None else seed
        if ckpt_path.exists():
            warn(f"{ckpt_path} exists and will be replaced (--resume goes on from it)")
        trainer = Trainer(model_config(preset, data), preset, backend, seed=seed)
    done = len(trainer.history)
    remaining = preset.epochs - done
    if resume:
        warn(f"resuming {_position(trainer)} from {ckpt_path}")
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
            raise Interrupted(f"interrupted {_position(trainer)}; "
                              f"checkpoint in {ckpt_path} (go on with --resume)") from None
        except TrainingError as exc:
            if len(trainer.history) > done:
                kept = f"{ckpt_path} holds epoch {len(trainer.history)}, the last good one"
            elif resume:
                kept = f"{ckpt_path} is left as it was"
            else:
                kept = "no checkpoint was written"
            raise TrainingError(f"{_position(trainer)}: {exc}; {kept}") from None
    if plot_history(trainer.history, out_dir / "loss.png"):
        warn(f"loss curve in {out_dir / 'loss.png'}")
    warn(f"checkpoint in {ckpt_path}")
    return Run(trainer, data, ckpt_path)
