"""Attention weights drawn as d2l's ``show_heatmaps`` draws them: one image per sentence,
source tokens along the x axis, output tokens along the y axis."""

from __future__ import annotations

from pathlib import Path


def draw_attention(translation, path) -> bool:
    """Write ``translation``'s attention weights (a :class:`~.translate.Translation`) to
    the PNG ``path``; returns False without matplotlib (the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    w = translation.weights  # (output steps, source tokens)
    rows = [*translation.tokens, "<eos>"][:w.shape[0]]
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * w.shape[1], 1.0 + 0.4 * w.shape[0]))
    image = ax.imshow(w, cmap="Reds", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(w.shape[1]), translation.source, rotation=90)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("source tokens (keys)")
    ax.set_ylabel("output tokens (queries)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
