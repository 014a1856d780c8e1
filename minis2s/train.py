"""Training with teacher forcing, the seed's loss, Adam and clipping at global norm 1."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
    """Ctrl-C during training, after the last finished epoch was saved."""


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
        xp, bos = self.backend.xp, data.tgt_vocab.bos
        start = time.perf_counter()
        loss_sum, tokens = 0.0, 0
        for b in iterate_batches(data.train, self.preset.batch_size, self.shuffle_rng):
            loss_sum += self.step(xp.asarray(b.src), xp.asarray(b.tgt),
                                  xp.asarray(b.tgt_valid_len), bos)
            tokens += int(b.tgt_valid_len.sum())
            if progress is not None:
                progress(1)
        seconds = time.perf_counter() - start
        stats = EpochStats(len(self.history) + 1, loss_sum / max(tokens, 1), tokens, seconds)
        if len(data.valid):
            stats.valid_loss = self.evaluate_loss(data.valid, bos)
        self.history.append(stats)
        return stats

    def fit(self, data: TranslationData, epochs: int, progress: bool = True,
            on_epoch: Callable[[Trainer, EpochStats], None] | None = None) -> EpochStats:
        """Train ``epochs`` more epochs; calls ``on_epoch`` after each one."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        bar = None
        if progress:
            from tqdm import tqdm

            batches = math.ceil(len(data.train) / self.preset.batch_size)
            bar = tqdm(total=epochs * batches, unit="batch", leave=False, dynamic_ncols=True)
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


def checkpoint_of(trainer: Trainer, data: TranslationData, seed: int) -> Checkpoint:
    """A checkpoint of the trainer's parameters, with what is needed to redo the split."""
    preset = trainer.preset
    params = {k: to_numpy(v) for k, v in trainer.params.items()}
    data_meta = {"num_examples": preset.num_examples, "valid_size": preset.valid_size,
                 "test_size": preset.test_size, "split_seed": preset.split_seed,
                 "min_freq": preset.min_freq, "train_pairs": len(data.train)}
    training = {"preset": preset.name, "epochs": len(trainer.history), "seed": seed,
                "lr": preset.lr, "batch_size": preset.batch_size,
                "loss": trainer.history[-1].loss if trainer.history else None}
    return Checkpoint(params, trainer.cfg, preset.num_steps, data.src_vocab,
                      data.tgt_vocab, data_meta, training)


def run_experiment(preset: Preset, data_path, backend: Backend, out_dir, seed: int = 0,
                   progress: bool = True, warn: Callable[[str], None] = print) -> Run:
    """Read the data, train, and keep ``out_dir/checkpoint.npz`` saved after every epoch
    (and a loss curve when matplotlib is there). Ctrl-C raises :class:`Interrupted` once
    the last finished epoch is on disk."""
    path = resolve_data_path(data_path)
    data = load_data(path, preset.num_steps, preset.num_examples, preset.valid_size,
                     preset.test_size, preset.split_seed, preset.min_freq, warn=warn)
    trainer = Trainer(model_config(preset, data), preset, backend, seed=seed)
    ckpt_path = Path(out_dir) / "checkpoint.npz"
    warn(f"{len(data.train)} training pairs, vocabularies {len(data.src_vocab)} / "
         f"{len(data.tgt_vocab)}, {preset.epochs} epochs on {backend.name}")

    def save(tr: Trainer, _stats: EpochStats) -> None:
        checkpoint.save(ckpt_path, checkpoint_of(tr, data, seed))

    try:
        trainer.fit(data, preset.epochs, progress=progress, on_epoch=save)
    except KeyboardInterrupt:
        done = len(trainer.history)
        raise Interrupted(f"interrupted after {done} epochs; " + (
            f"checkpoint of epoch {done} in {ckpt_path}" if done else "nothing saved")) from None
    if plot_history(trainer.history, Path(out_dir) / "loss.png"):
        warn(f"loss curve in {Path(out_dir) / 'loss.png'}")
    warn(f"checkpoint in {ckpt_path}")
    return Run(trainer, data, ckpt_path)
