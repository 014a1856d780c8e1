"""Progress for a log: one line per epoch, and one now and then inside a long epoch, for
whoever reads a run's log rather than a terminal (where the progress bar says it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..wording import format_duration

if TYPE_CHECKING:
    from .trainer import EpochProgress, EpochStats


class ProgressLog:
    """Lines that say where a run is, for whoever reads its log rather than a terminal.

    :meth:`epoch` makes one line per finished epoch, e.g. ``epoch 3/10: loss 0.412,
    validation 0.398, 41,230 tokens/sec, 12.3 s, about 1 min 02 s left`` (the last epoch
    has nothing left to announce); :meth:`batch` makes one inside an epoch when ``every``
    seconds have passed since the last line (``epoch 3/10: batch 120/400, loss 0.523 so
    far, about 5 min 10 s left``), so a long epoch is not silent either. The time left
    is the wall-clock time per batch so far in this run (validation and saving included)
    times the batches still to go."""

    def __init__(self, say: Callable[[str], None], every: float, last_epoch: int,
                 batches_per_epoch: int, batches_left: int, clock=time.monotonic):
        self.say, self.every, self.clock = say, every, clock
        self.last_epoch, self.per_epoch = last_epoch, batches_per_epoch
        self.left, self.done = batches_left, 0
        self.start = self.said = clock()

    def _left(self, now: float) -> str:
        if self.left <= 0 or self.done == 0:
            return ""
        seconds = (now - self.start) / self.done * self.left
        return f", about {format_duration(seconds, tenths=False)} left"

    def batch(self, epoch: int, progress: EpochProgress) -> None:
        """After each step: a line if ``every`` seconds have passed (not after an epoch's
        last batch, whose epoch line follows)."""
        self.done += 1
        self.left -= 1
        now = self.clock()
        if now - self.said < self.every or progress.batches >= self.per_epoch:
            return
        loss = progress.loss_sum / max(progress.tokens, 1)
        self.said = now
        self.say(f"epoch {epoch}/{self.last_epoch}: batch {progress.batches}/"
                 f"{self.per_epoch}, loss {loss:.3f} so far{self._left(now)}")

    def epoch(self, stats: EpochStats) -> None:
        """After each epoch: its line."""
        now = self.clock()
        valid = "" if stats.valid_loss is None else f", validation {stats.valid_loss:.3f}"
        self.said = now
        self.say(f"epoch {stats.epoch}/{self.last_epoch}: loss {stats.loss:.3f}{valid}, "
                 f"{stats.tokens_per_sec:,.0f} tokens/sec, {format_duration(stats.seconds)}"
                 f"{self._left(now)}")
