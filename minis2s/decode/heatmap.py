"""Attention weights drawn as d2l's ``show_heatmaps`` draws them: one image per sentence,
source tokens along the x axis, output tokens along the y axis, the source sentence and
the model in the title."""

from __future__ import annotations

import textwrap

from ..figures import new_figure, save_figure

# inches per character of a tick label (10 pt DejaVu Sans averages about 0.6 em)
_INCH_PER_CHAR = 0.085


def attention_title(translation, sentence: str | None = None, model: str = "") -> str:
    """What the heat map shows: the model (``model``, as "attention decoder, gru cell,
    greedy") and the source sentence (``sentence`` as typed, else the tokens read)."""
    source = sentence if sentence is not None else " ".join(translation.source[:-1])
    lines = ["Attention weights", f"model: {model}"] if model else ["Attention weights"]
    lines += textwrap.wrap(f"source: {source.strip()}", width=50, break_long_words=False,
                           break_on_hyphens=False)
    return "\n".join(lines)


def make_attention_figure(translation, sentence: str | None = None, model: str = ""):
    """The heat map of ``translation`` (a :class:`~.translate.Translation`) as a matplotlib
    Figure, or None without matplotlib. The figure is sized from the tokens so that every
    tick label and the title lie inside it."""
    w = translation.weights  # (output steps, source tokens)
    rows = [*translation.tokens, "<eos>"][:w.shape[0]]
    cols = list(translation.source)
    title = attention_title(translation, sentence, model)
    longest_col = max((len(t) for t in cols), default=1)
    longest_row = max((len(t) for t in rows), default=1)
    lines = title.count("\n") + 1
    width = 0.45 * w.shape[1] + _INCH_PER_CHAR * longest_row + 2.2  # colour bar, y label
    width = max(width, 0.09 * max(len(line) for line in title.split("\n")) + 0.4)
    height = 0.4 * w.shape[0] + _INCH_PER_CHAR * longest_col + 0.25 * lines + 1.0
    fig = new_figure(figsize=(width, height))
    if fig is None:
        return None
    ax = fig.add_subplot()
    image = ax.imshow(w, cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(w.shape[1]), cols, rotation=90)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("source tokens (keys)")
    ax.set_ylabel("output tokens (queries)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    fig.suptitle(title, fontsize=10)
    return fig


def draw_attention(translation, path, sentence: str | None = None, model: str = "") -> bool:
    """Write ``translation``'s attention weights (a :class:`~.translate.Translation`) to
    the PNG ``path``, titled with ``sentence`` and ``model`` (see :func:`attention_title`);
    returns False without matplotlib (the ``plot`` extra). The PNG is the whole figure,
    its size set from the tokens; a path that cannot be written raises
    :class:`~minis2s.figures.FigureError`."""
    fig = make_attention_figure(translation, sentence, model)
    if fig is None:
        return False
    save_figure(fig, path, tight=False)
    return True
