"""What every figure of minis2s shares: a matplotlib Figure drawn off screen
(:func:`new_figure`, None without matplotlib, the ``plot`` extra), a check of the path
before any work (:func:`check_figure_path`, :func:`check_figure_folder`) and the save
(:func:`save_figure`). A path matplotlib cannot write is a :class:`FigureError`, which the
command line reports in one line."""

from __future__ import annotations

import os
from pathlib import Path


class FigureError(ValueError):
    """A figure cannot be written where it was asked for: a file name whose ending is no
    format matplotlib writes, a folder that cannot be made or written to."""


def supported_formats() -> list[str] | None:
    """The file endings matplotlib writes (``png``, ``pdf``, ``svg``, ...), sorted; None
    without matplotlib."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return None
    return sorted(FigureCanvasBase.get_supported_filetypes())


def new_figure(**kwargs):
    """A matplotlib Figure with the Agg canvas (no display needed) and the constrained
    layout; ``kwargs`` go to ``Figure`` (``figsize``, say). None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_folder(folder: Path, path) -> None:
    """``folder`` is a folder, or can be made as one: its nearest existing ancestor is a
    folder that can be written to."""
    nearest = _nearest_existing(folder)
    if not nearest.is_dir():
        raise FigureError(f"cannot draw a figure in {path}: {nearest} is a file, not a "
                          "folder")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise FigureError(f"cannot draw a figure in {path}: {nearest} is not writable")


def check_figure_path(path) -> None:
    """Raise :class:`FigureError` unless matplotlib can write a figure to the file
    ``path``: its name ends in a format matplotlib writes (``.png``, ``.pdf``, ...; the
    case does not matter), it is not a folder, and its folder exists or can be made.
    Nothing is checked for no ``path`` (None: no figure asked for) or without matplotlib
    (no figure will be drawn)."""
    formats = supported_formats() if path else None
    if formats is None:
        return
    path = Path(path)
    ending = path.suffix[1:].lower()
    if ending not in formats:
        said = (f".{ending} is not a format matplotlib writes" if ending
                else "the name has no ending to say the format")
        raise FigureError(f"cannot draw a figure in {path}: {said}; it writes "
                          + ", ".join(f".{f}" for f in formats))
    if path.is_dir():
        raise FigureError(f"cannot draw a figure in {path}: it is a folder")
    _check_folder(path.parent, path)


def check_figure_folder(path) -> None:
    """Raise :class:`FigureError` unless ``path`` is a folder figures can be written to,
    or can be made as one. Nothing is checked for no ``path`` or without matplotlib."""
    if path and supported_formats() is not None:
        _check_folder(Path(path), path)


def save_figure(fig, path, *, tight: bool = True) -> None:
    """Write ``fig`` to ``path`` at 100 dpi, in the format its ending names, making its
    folder if need be; ``tight``: cropped to what is drawn (else the whole figure, its
    size as set). A path that cannot be written raises :class:`FigureError`."""
    check_figure_path(path)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, **({"bbox_inches": "tight"} if tight else {}))
    except (OSError, ValueError) as exc:
        raise FigureError(f"cannot write the figure {path}: {exc}") from None
