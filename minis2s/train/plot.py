"""The loss curve of a run, as a PNG (when matplotlib, the ``plot`` extra, is installed)."""

from __future__ import annotations

from ..figures import FigureError, new_figure, save_figure
from ..wording import plural
from .trainer import EpochStats

# What EpochStats.loss is, in words: the seed sums each sequence's token losses and
# divides by the padded length num_steps, sums that over the sequences, and the epoch
# figure divides the total by the number of valid target tokens.
LOSS_LABEL = ("loss (the seed's): per sequence, the sum of\n"
              "its token losses ÷ num_steps; summed over\n"
              "the sequences ÷ valid target tokens")


def history_title(preset=None, pairs: int | None = None) -> str:
    """The figure's title: what it shows, and for which run (``preset``, a
    :class:`~minis2s.presets.Preset`: its name, decoder and cell; ``pairs``: training
    pairs)."""
    title = "Loss per epoch"
    if preset is not None:
        title += f"\npreset {preset.name}: {preset.model} decoder, {preset.cell} cell"
    if pairs is not None:
        title += ("; " if preset is not None else "\n") + plural(pairs, "training pair", ",")
    return title


def make_history_figure(history: list[EpochStats], preset=None, pairs: int | None = None):
    """The loss curve as a matplotlib Figure (None without matplotlib): the training loss
    and, where the run had a validation part, the validation loss, each epoch a marker,
    the legend to the right of the axes."""
    fig = new_figure(figsize=(6.4, 3.8))
    if fig is None:
        return None
    from matplotlib.ticker import MaxNLocator

    ax = fig.add_subplot()
    epochs = [s.epoch for s in history]
    ax.plot(epochs, [s.loss for s in history], "o-", markersize=5, label="training part")
    if any(s.valid_loss is not None for s in history):
        ax.plot(epochs, [s.valid_loss for s in history], "s--", markersize=5,
                label="validation part")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if epochs and min(epochs) == max(epochs):  # one epoch: a point, with room around it
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(LOSS_LABEL, fontsize=8.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              fontsize=8.5)
    fig.suptitle(history_title(preset, pairs), fontsize=10)
    return fig


def plot_history(history: list[EpochStats], path, warn=None, *, preset=None,
                 pairs: int | None = None) -> bool:
    """Save the loss curve (:func:`make_history_figure`) as PNG when matplotlib is
    installed; returns whether it did. A path that cannot be written (a
    :class:`~minis2s.figures.FigureError`) is a warning through ``warn``, not an error:
    the checkpoint matters, the figure does not."""
    fig = make_history_figure(history, preset, pairs)
    if fig is None:
        return False
    try:
        save_figure(fig, path)
    except FigureError as exc:
        if warn is not None:
            warn(f"no loss curve: {exc}")
        return False
    return True
