"""Ctrl-C during training: stop between two optimisation steps, never inside one."""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, after a checkpoint of the current state was saved."""


class InterruptRequest:
    """While entered (in the main thread), SIGINT does not raise: it sets ``requested``,
    and :meth:`minis2s.train.Trainer.run_epoch` raises ``KeyboardInterrupt`` before its
    next batch. So an interrupted run always stops between two optimisation steps."""

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
