"""The loss curve of a run, as a PNG (when matplotlib, the ``plot`` extra, is installed)."""

from __future__ import annotations

from .trainer import EpochStats

# What EpochStats.loss is: the seed sums each sequence's token losses, divides by the
# padded length num_steps, and sums over sequences; the epoch figure divides that sum
# by the number of valid target tokens.
LOSS_LABEL = "loss per token / num_steps (the seed's)"


def plot_history(history: list[EpochStats], path, warn=None) -> bool:
    """Save a loss curve as PNG when matplotlib is installed; returns whether it did. A
    figure that cannot be written is reported through ``warn`` (the checkpoint matters,
    the figure does not)."""
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
    ax.set_ylabel(LOSS_LABEL)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except (OSError, ValueError) as exc:
        if warn is not None:
            warn(f"no loss curve: cannot write {path} ({exc})")
        return False
    finally:
        plt.close(fig)
    return True
