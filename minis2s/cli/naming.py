"""How the commands name a checkpoint in their tables, JSON and figures: by the path
given, its decoder and its cell, ``runs/a (seq2seq, gru)``. ``evaluate`` and
``gradflow`` both use :func:`checkpoint_names`, so one checkpoint has one name in both."""

from __future__ import annotations

from pathlib import Path

__all__ = ["checkpoint_name", "checkpoint_names", "distinct", "short_path"]


def short_path(given) -> str:
    """A ``--model`` as given, less a final ``checkpoint.npz`` (``runs/a``)."""
    path = Path(given)
    return str(path.parent if path.name == "checkpoint.npz" else path)


def checkpoint_name(given, config, *more: str) -> str:
    """The checkpoint given as ``given``, of model settings ``config``, by name:
    ``runs/a (seq2seq, gru)``; ``more`` words join the decoder and the cell in the
    brackets (``runs/a (seq2seq, gru, greedy)``)."""
    return f"{short_path(given)} ({', '.join([config.model, config.cell, *more])})"


def distinct(labels: list[str]) -> list[str]:
    """``labels`` with a repeated one numbered (``a``, ``a #2``), so none is lost as a
    key."""
    result: list[str] = []
    for label in labels:
        candidate, number = label, 1
        while candidate in result:
            number += 1
            candidate = f"{label} #{number}"
        result.append(candidate)
    return result


def checkpoint_names(given: list, configs: list, labels: list[str] | None = None,
                     more: tuple[str, ...] = ()) -> list[str]:
    """One name per checkpoint, none repeated: each ``labels`` entry where given (one per
    checkpoint), else :func:`checkpoint_name` of ``given[i]`` and ``configs[i]`` (with
    ``more``); the same checkpoint given twice is numbered, ``runs/a (seq2seq, gru) #2``."""
    if labels:
        if len(labels) != len(given):
            raise ValueError(f"{len(labels)} labels for {len(given)} checkpoints")
        return distinct(list(labels))
    return distinct([checkpoint_name(g, c, *more) for g, c in zip(given, configs)])
