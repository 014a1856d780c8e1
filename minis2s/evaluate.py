"""Scoring a model on a held-out part: corpus BLEU and chrF (sacrebleu), the seed's
sentence BLEU, and both scores by source length, the way Bahdanau et al. plot BLEU
against sentence length. :func:`evaluate_model` does it all for a checkpoint: the corpus
read again as the checkpoint's data spec says, its part translated and scored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .bleu import bleu, corpus_scores
from .data import DataError, load_data, resolve_data_path
from .decode import translate
from .figures import new_figure, save_figure
from .wording import plural

# source lengths (tokens, <eos> not counted) that share a bucket: 1-3, 4-5, ... 16 and more
LENGTH_EDGES = (1, 4, 6, 8, 11, 16)
# the parts of the corpus a model can be scored on (``evaluate --part``, Model.evaluate)
PARTS = ("test", "valid", "train")


@dataclass
class Bucket:
    label: str  # "4-5", "16+"
    pairs: int
    bleu: float
    chrf: float


@dataclass
class Report:
    pairs: int
    scores: dict  # corpus_scores(): bleu, chrf and their signatures
    seed_bleu: float  # mean sentence BLEU, the seed's formula with k = 2
    buckets: list  # Bucket per non-empty source-length bucket


def length_label(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else (f"{lo}" if hi - 1 == lo else f"{lo}-{hi - 1}")


def score(hyps: list[str], refs: list[str], source_lengths: list[int],
          edges=LENGTH_EDGES) -> Report:
    """Every score of ``hyps`` against ``refs`` (tokenized, as the corpus gives them)."""
    buckets = []
    bounds = [*edges, None]
    for lo, hi in zip(bounds, bounds[1:]):
        picked = [i for i, n in enumerate(source_lengths)
                  if n >= lo and (hi is None or n < hi)]
        if picked:
            s = corpus_scores([hyps[i] for i in picked], [refs[i] for i in picked])
            buckets.append(Bucket(length_label(lo, hi), len(picked), s["bleu"], s["chrf"]))
    seed_bleu = sum(bleu(h, r, 2) for h, r in zip(hyps, refs)) / len(refs)
    return Report(len(refs), corpus_scores(hyps, refs), seed_bleu, buckets)


def by_length_table(report: Report) -> str:
    lines = ["source tokens   pairs    BLEU    chrF"]
    for b in report.buckets:
        lines.append(f"{b.label:>13}  {b.pairs:>6}  {b.bleu:6.2f}  {b.chrf:6.2f}")
    return "\n".join(lines)


def by_length_title(part: str, reports: dict[str, Report]) -> str:
    """The data line of :func:`plot_by_length`'s title: the part and its pair count (each
    model's, where they differ)."""
    counts = sorted({r.pairs for r in reports.values()})
    if len(counts) == 1:
        return f"{part} part, {plural(counts[0], 'pair', ',')}"
    return f"{part} part, " + " / ".join(f"{n:,}" for n in counts) + " pairs"


def make_by_length_figure(reports: dict[str, Report], title: str = ""):
    """BLEU and chrF against source length as a matplotlib Figure (None without
    matplotlib): one line per entry of ``reports`` (its key names the model and the
    decoding), both y axes from 0. ``title`` (the data, as :func:`by_length_title` says
    it) follows the figure's heading; one model's name joins it there, several are named
    by a legend in a panel of its own below the axes."""
    many = len(reports) > 1
    fig = new_figure(figsize=(9, 3.9 + (0.25 * len(reports) + 0.2 if many else 0)))
    if fig is None:
        return None
    if many:  # the legend gets a panel of its own, below the two axes
        grid = fig.add_gridspec(2, 2, height_ratios=[3.3, 0.25 * len(reports) + 0.1])
        axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
    else:
        axes = fig.subplots(1, 2)
    # every model's buckets on one axis, shortest sources first, whichever model has them
    order = sorted({b.label for r in reports.values() for b in r.buckets},
                   key=lambda label: int(label.rstrip("+").split("-")[0]))
    place = {label: x for x, label in enumerate(order)}
    for name, report in reports.items():
        xs = [place[b.label] for b in report.buckets]
        axes[0].plot(xs, [b.bleu for b in report.buckets], "o-", label=name,
                     clip_on=False)  # a score of 0 shows its whole marker
        axes[1].plot(xs, [b.chrf for b in report.buckets], "o-", label=name,
                     clip_on=False)  # a score of 0 shows its whole marker
    for ax in axes:
        ax.set_xticks(range(len(order)), order)
    for ax, what in zip(axes, ("BLEU", "chrF")):
        ax.set_title(f"{what} by source length", fontsize=10)
        ax.set_xlabel("source sentence length (tokens)")
        ax.set_ylabel(f"corpus {what} (0-100)")
        ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))  # from 0; all zeros still read as 0
        ax.grid(alpha=0.3)
    heading = "Scores by source sentence length"
    details = [title] if title else []
    if not many:
        details.extend(reports)
    fig.suptitle("\n".join([heading, "; ".join(details)]) if details else heading,
                 fontsize=10)
    if many:
        panel = fig.add_subplot(grid[1, :])
        panel.axis("off")
        panel.legend(*axes[0].get_legend_handles_labels(), loc="center", fontsize=8.5,
                     frameon=False, title="model, decoding", title_fontsize=8.5)
    return fig


def plot_by_length(reports: dict[str, Report], path, title: str = "") -> bool:
    """Save :func:`make_by_length_figure` to ``path`` (the format its ending names);
    returns False without matplotlib. A path that cannot be written raises
    :class:`~minis2s.figures.FigureError`."""
    fig = make_by_length_figure(reports, title)
    if fig is None:
        return False
    save_figure(fig, path)
    return True


@dataclass
class Evaluation:
    sources: list[str]  # the part's sources, tokens joined by spaces
    hyps: list[str]  # their translations
    refs: list[str]  # the references
    report: Report


def evaluate_model(ck, backend, data_path=None, *, part: str = "test", beam: int = 1,
                   length_penalty: float = 0.75, warn: Callable[[str], None] | None = None,
                   where: str = "the checkpoint", params=None) -> Evaluation:
    """Translate on ``backend`` and score part ``part`` (one of :data:`PARTS`) of the
    corpus that checkpoint ``ck`` (a :class:`minis2s.checkpoint.Checkpoint`) was trained
    on, with ``params`` (its parameters already on ``backend``; None puts them there).
    The part's name is checked before anything is read. The data is read again as
    ``ck.data`` says; a corpus that does not give the checkpoint's vocabulary is refused
    (``where`` names the checkpoint in the message), and so is a part the data settings
    leave empty, naming the parts that have pairs."""
    if part not in PARTS:
        raise DataError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    data = load_data(resolve_data_path(data_path), ck.data, warn=warn or (lambda m: None))
    if data.src_vocab.idx_to_token != ck.src_vocab.idx_to_token:
        raise DataError(f"this corpus does not give the vocabulary {where} was trained "
                        "with: it is not the same data")
    chosen = getattr(data, part)
    if not len(chosen):
        have = " or ".join(p for p in PARTS if len(getattr(data, p)))
        raise DataError(f"the checkpoint's data settings leave no {part} part (preset "
                        f"{ck.training.get('preset', '?')}); score the {have} part instead")
    sources = [" ".join(t) for t in chosen.src_tokens]
    refs = [" ".join(t) for t in chosen.tgt_tokens]
    if params is None:
        params = ck.params_on(backend)
    hyps = translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sources,
                     ck.data.num_steps, backend, beam=beam, length_penalty=length_penalty)
    return Evaluation(sources, hyps, refs,
                      score(hyps, refs, [len(t) for t in chosen.src_tokens]))
