"""The training loop: teacher forcing, the seed's loss, clipping at global norm, Adam.

A :class:`Trainer` owns the parameters, the optimiser and the generators of one run. It
can stop between two steps and go on exactly where it was: :meth:`Trainer.resume_state`
gives the optimiser's moments, the generators' states and the position inside the
current epoch, and :meth:`Trainer.load_resume_state` puts them back, so that a resumed
run computes bit for bit what an uninterrupted one would (on the NumPy backend; see
docs/reliability.md). Writing and checking checkpoints is :mod:`.resume`'s job.

While it trains, :meth:`Trainer.fit` says where it is: a progress bar on a terminal, and
otherwise (a log file, a batch job, ``--quiet``) one line per epoch with its loss, speed
and the time left, plus a line every ``log_every`` seconds inside long epochs
(:class:`ProgressLog`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..backend import Backend, keep_freed_memory, to_numpy
from ..data import Batch, Part, TranslationData, iterate_batches
from ..model import (
    ModelConfig,
    draw_dropout_masks,
    init_params,
    seq2seq_backward,
    seq2seq_forward,
)
from ..optim import Adam, clip_grad_norm_
from ..params import ParamSet
from ..presets import Preset
from ..wording import plural
from .progress import ProgressLog
from .ranks import SINGLE, Ranks, shard_rows
from .signals import InterruptRequest

RESUME_ARRAYS = ("adam.m", "adam.v")  # saved beside the parameters to resume exactly


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN or Inf loss or gradient norm)."""


class StateError(ValueError):
    """A saved training state that does not fit this trainer."""


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


def model_config(preset: Preset, data: TranslationData) -> ModelConfig:
    """The model a preset builds for this data's vocabularies."""
    return preset.model_config(len(data.src_vocab), len(data.tgt_vocab))


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
    ranks: Ranks = SINGLE  # the processes training this model together

    def __post_init__(self):
        if self.backend.name == "numpy":
            keep_freed_memory()  # a step's temporaries reused, not mapped afresh each step
        if self.params is None:
            self.params = init_params(self.cfg, self.backend, np.random.default_rng(self.seed))
        self.grads = self.params.zeros_like()
        self.opt = Adam(self.params, lr=self.preset.lr)
        self.shuffle_rng = np.random.default_rng([self.seed, 1])  # minibatch order
        self.dropout_gen = self.backend.generator(self.seed + 2)  # dropout masks
        self.epoch_progress: EpochProgress | None = None  # set while an epoch is unfinished
        self.interrupt: InterruptRequest | None = None
        # time in the sums over the ranks, one per step (waiting for the slowest rank
        # included); read by the benchmark
        self.allreduce_seconds = 0.0

    def step(self, batch: Batch) -> float:
        """One optimisation step on a batch (host arrays, as :func:`iterate_batches` makes
        them); returns the batch's summed sequence loss.

        With several ranks, each computes the loss and the gradients of its shard of the
        batch (every R-th row by target length, :func:`shard_rows`), with its rows of the
        dropout masks drawn for the whole batch, and both are summed over the ranks: the
        seed's loss is a sum over sequences, so the sum of the shards' is the batch's.
        Every rank then clips and steps alike."""
        N, T_src = batch.src.shape
        masks = draw_dropout_masks(self.cfg, self.backend, self.dropout_gen, N, T_src,
                                   batch.tgt.shape[1])
        xp = self.backend.xp
        if self.ranks.size > 1:
            rows = shard_rows(batch.packing.order, self.ranks)
            batch, masks = batch.take(rows), masks.take(xp.asarray(rows))
        if len(batch.src):
            loss, cache = seq2seq_forward(self.params, self.cfg, batch.to(xp), masks,
                                          reduction=self.preset.loss_reduction)
            loss = float(loss)
            self.grads.assign(seq2seq_backward(1.0, cache, consume=True).params)
        else:  # a shard with no rows (a batch smaller than the ranks): nothing to add
            loss = 0.0
            self.grads.flat[...] = 0
        if self.ranks.size > 1:
            start = time.perf_counter()
            loss = self._sum_over_ranks(loss)
            self.allreduce_seconds += time.perf_counter() - start
        norm = clip_grad_norm_(self.grads, self.preset.grad_clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            raise TrainingError(f"loss {loss} / gradient norm {norm} is not finite; "
                                "stopping before the parameters are spoiled")
        self.opt.step(self.grads)
        return loss

    def _sum_over_ranks(self, loss: float) -> float:
        """The gradients (in place) and the loss summed over the ranks."""
        flat = self.grads.flat
        host = flat if isinstance(flat, np.ndarray) else to_numpy(flat)
        self.ranks.sum_(host)
        if host is not flat:
            flat[...] = self.backend.xp.asarray(host)
        return self.ranks.sum_scalar(loss)

    def evaluate_loss(self, part: Part, bos: int, batch_size: int = 512) -> float:
        """The seed's loss measure on a part, without dropout or updates (each rank
        computes its shard of every batch)."""
        total, tokens = 0.0, 0
        for b in iterate_batches(part, batch_size, None, shuffle=False, bos=bos):
            tokens += b.num_tokens
            if self.ranks.size > 1:
                b = b.take(shard_rows(b.packing.order, self.ranks))
            if len(b.src):
                loss, _ = seq2seq_forward(self.params, self.cfg, b.to(self.backend.xp))
                total += float(loss)
        return self.ranks.sum_scalar(total) / max(tokens, 1)

    def epoch_lr(self, epoch: int) -> float:
        """Adam's learning rate in epoch ``epoch`` (from 1): ``lr * lr_decay**(epoch - 1)``."""
        return self.preset.lr * self.preset.lr_decay ** (epoch - 1)

    def run_epoch(self, data: TranslationData,
                  progress: Callable[[], None] | None = None) -> EpochStats:
        """Train one epoch, or the rest of an unfinished one (its batch order is drawn
        again from the generator's state at its start, and the batches done are skipped);
        ``progress`` is called after each step. Adam's learning rate is the epoch's
        (:meth:`epoch_lr`).

        A ``KeyboardInterrupt`` leaves the trainer between two steps, with
        :attr:`epoch_progress` saying where; calling this again goes on from there."""
        bos = data.tgt_vocab.bos
        p = self.epoch_progress
        self.opt.lr = self.epoch_lr(len(self.history) + 1)
        if p is None:
            p = self.epoch_progress = EpochProgress(self.shuffle_rng.bit_generator.state)
        else:
            self.shuffle_rng.bit_generator.state = p.shuffle_state
        start = time.perf_counter()
        try:
            batches = iterate_batches(data.train, self.preset.batch_size, self.shuffle_rng,
                                      bos=bos)
            for i, b in enumerate(batches):
                if i < p.batches:
                    continue
                requested = self.interrupt is not None and self.interrupt.requested
                if self.ranks.any(requested):  # every rank stops at the same step
                    raise KeyboardInterrupt
                p.loss_sum += self.step(b)
                p.tokens += b.num_tokens
                p.batches += 1
                if progress is not None:
                    progress()
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
            interrupt: InterruptRequest | None = None,
            log: Callable[[str], None] | None = None, log_every: float = 300.0
            ) -> EpochStats:
        """Train ``epochs`` more epochs (an unfinished one counts as one); calls
        ``on_epoch`` after each. Ctrl-C raises ``KeyboardInterrupt`` between two steps
        (through ``interrupt``, or one of its own).

        The progress bar shows only when ``progress`` is set and stderr is a terminal; it
        counts batches, gives the time left and shows the last epoch's loss. Where it does
        not show, ``log`` (when given) gets :class:`ProgressLog`'s lines: one per epoch,
        and one every ``log_every`` seconds inside an epoch."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        with contextlib.ExitStack() as stack:
            if interrupt is None:
                interrupt = stack.enter_context(InterruptRequest())
            self.interrupt = interrupt
            stack.callback(setattr, self, "interrupt", None)
            return self._fit(data, epochs, progress, on_epoch, log, log_every)

    def _fit(self, data, epochs, progress, on_epoch, log, log_every) -> EpochStats:
        batches = math.ceil(len(data.train) / self.preset.batch_size)
        done = self.epoch_progress.batches if self.epoch_progress else 0
        bar = lines = None
        if progress:
            from tqdm import tqdm

            # disable=None: tqdm's convention, no bar when stderr is not a terminal
            bar = tqdm(total=epochs * batches - done, unit="batch", leave=False,
                       dynamic_ncols=True, disable=None)
            if bar.disable:
                bar = None
        if bar is None and log is not None:
            lines = ProgressLog(log, log_every, len(self.history) + epochs, batches,
                                epochs * batches - done)

        def after_step() -> None:
            if bar is not None:
                bar.update(1)
            if lines is not None:
                lines.batch(len(self.history) + 1, self.epoch_progress)

        try:
            for _ in range(epochs):
                stats = self.run_epoch(data, after_step)
                if bar is not None:
                    post = {"epoch": stats.epoch, "loss": f"{stats.loss:.3f}"}
                    if stats.valid_loss is not None:
                        post["valid"] = f"{stats.valid_loss:.3f}"
                    bar.set_postfix(post)
                if on_epoch is not None:
                    on_epoch(self, stats)
                if lines is not None:
                    lines.epoch(stats)
        finally:
            if bar is not None:
                bar.close()
        return stats

    def summary_line(self) -> str:
        """The seed's closing line, from the last epoch."""
        s = self.history[-1]
        return f"loss {s.loss:.3f}, {s.tokens_per_sec:.1f} tokens/sec on {self.backend.device}"

    def position(self) -> str:
        """Where training stands, e.g. 'in epoch 3/10 after 2 batches'."""
        done, total = len(self.history), self.preset.epochs
        p = self.epoch_progress
        if p is None or p.batches == 0:
            return f"after epoch {done}/{total}" if done else "before the first step"
        return f"in epoch {done + 1}/{total} after {plural(p.batches, 'batch', many='batches')}"

    # ------------------------------------------------------------ stopping and going on

    def resume_state(self) -> tuple[dict, dict]:
        """What a new trainer needs to go on exactly from here: arrays (Adam's moments)
        and JSON-able values (step count, generator states, epoch position)."""
        opt = self.opt.state_dict()
        arrays = dict(zip(RESUME_ARRAYS, (to_numpy(opt["m"]), to_numpy(opt["v"]))))
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
        could not be restored (a CuPy generator), so the run will not be exact. A state
        that does not fit raises :class:`StateError`."""
        size = int(self.params.flat.size)
        for name in RESUME_ARRAYS:
            a = arrays[name]
            if a.shape != (size,) or not np.issubdtype(a.dtype, np.floating):
                raise StateError(f"optimiser state {name} has shape {a.shape} and dtype "
                                 f"{a.dtype}; the parameters need ({size},) floats")
            if not np.all(np.isfinite(a)):
                raise StateError(f"optimiser state {name} holds NaN or Inf")
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
