"""Scoring a model on a held-out part: corpus BLEU and chrF (sacrebleu), the seed's
sentence BLEU, and both scores by source length, the way Bahdanau et al. plot BLEU
against sentence length. :func:`evaluate_model` does it all for a checkpoint: the corpus
read again as the checkpoint's data spec says, its part translated and scored.

A model of a generated task (:mod:`minis2s.data.tasks`), whose outputs are right or
wrong, is scored by accuracy instead (:func:`accuracy`, an :class:`AccuracyReport`):

* **exact match** — the per cent of outputs whose tokens are the reference's tokens, all
  of them and no more (``<eos>`` not counted);
* **token accuracy** — the per cent of positions right, over every pair of the part:
  position ``t`` of a pair is right when output and reference both have a token there and
  it is the same. Each pair counts ``max(len(output), len(reference))`` positions, so a
  token missing from the output, or one too many, is an error, and an output shifted by
  one position is wrong from there on. Token accuracy is 100 exactly when exact match
  is.

Both come by source length too, with the same buckets as BLEU's where the lengths are a
corpus's (:data:`LENGTH_EDGES`), and one bucket per source length for a task, whose
lengths are few."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .bleu import bleu, corpus_scores
from .data import DataError, load_data, load_task_data, resolve_data_path
from .decode import translate, translations
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

    # the two measures of a bucket: (its field, its column, the axes' title and label)
    MEASURES = (("bleu", "BLEU", "BLEU by source length", "corpus BLEU (0-100)"),
                ("chrf", "chrF", "chrF by source length", "corpus chrF (0-100)"))
    HEADING = "Scores by source sentence length"  # the by-length figure's
    LENGTHS = "source sentence length (tokens)"  # its x axis


@dataclass
class AccuracyBucket:
    label: str  # "4", as Bucket's
    pairs: int
    exact_match: float  # per cent
    token_accuracy: float  # per cent


@dataclass
class AccuracyReport:
    """A task model's scores (see the module's docstring), in per cent."""

    pairs: int
    exact_match: float
    token_accuracy: float
    buckets: list  # AccuracyBucket per non-empty source-length bucket

    MEASURES = (("exact_match", "exact", "exact match by source length",
                 "outputs right (%)"),
                ("token_accuracy", "token", "token accuracy by source length",
                 "tokens right (%)"))
    HEADING = "Accuracy by source length"
    LENGTHS = "source length (tokens)"


def length_label(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else (f"{lo}" if hi - 1 == lo else f"{lo}-{hi - 1}")


def length_buckets(source_lengths: list[int], edges=LENGTH_EDGES) -> list[tuple[str, list]]:
    """The non-empty buckets of ``edges`` (each from one edge to the next, the last with
    no end) as (label, the indices of the sources whose length falls in it); a length
    below the first edge falls in none."""
    buckets = []
    bounds = [*edges, None]
    for lo, hi in zip(bounds, bounds[1:]):
        picked = [i for i, n in enumerate(source_lengths)
                  if n >= lo and (hi is None or n < hi)]
        if picked:
            buckets.append((length_label(lo, hi), picked))
    return buckets


def score(hyps: list[str], refs: list[str], source_lengths: list[int],
          edges=LENGTH_EDGES) -> Report:
    """Every score of ``hyps`` against ``refs`` (tokenized, as the corpus gives them)."""
    buckets = []
    for label, picked in length_buckets(source_lengths, edges):
        s = corpus_scores([hyps[i] for i in picked], [refs[i] for i in picked])
        buckets.append(Bucket(label, len(picked), s["bleu"], s["chrf"]))
    seed_bleu = sum(bleu(h, r, 2) for h, r in zip(hyps, refs)) / len(refs)
    return Report(len(refs), corpus_scores(hyps, refs), seed_bleu, buckets)


def token_matches(hyp, ref) -> tuple[int, int]:
    """(positions right, positions counted) of one output against its reference: the
    positions are ``max(len(hyp), len(ref))``, and position ``t`` is right when both
    have a token there and it is the same."""
    return sum(h == r for h, r in zip(hyp, ref)), max(len(hyp), len(ref))


def _accuracies(hyps, refs) -> tuple[float, float]:
    """(exact match, token accuracy) in per cent; 0 where nothing is counted."""
    exact = sum(list(h) == list(r) for h, r in zip(hyps, refs))
    right = counted = 0
    for h, r in zip(hyps, refs):
        ok, n = token_matches(h, r)
        right, counted = right + ok, counted + n
    return (100.0 * exact / len(refs) if refs else 0.0,
            100.0 * right / counted if counted else 0.0)


def accuracy(hyps: list[list[str]], refs: list[list[str]], source_lengths: list[int],
             edges=None) -> AccuracyReport:
    """Exact match and token accuracy of output tokens ``hyps`` against ``refs`` (lists
    of tokens, ``<eos>`` left out), on the whole and by source length: with ``edges``
    None, one bucket per length (``edges`` as :func:`score` takes them otherwise)."""
    if edges is None:
        edges = tuple(range(1, max(source_lengths, default=0) + 2))
    buckets = []
    for label, picked in length_buckets(source_lengths, edges):
        exact, token = _accuracies([hyps[i] for i in picked], [refs[i] for i in picked])
        buckets.append(AccuracyBucket(label, len(picked), exact, token))
    return AccuracyReport(len(refs), *_accuracies(hyps, refs), buckets)


def by_length_table(report: Report | AccuracyReport) -> str:
    """The report's buckets as text: one row each, its two measures in columns."""
    lines = ["source tokens   pairs" + "".join(f"  {m[1]:>6}" for m in report.MEASURES)]
    for b in report.buckets:
        lines.append(f"{b.label:>13}  {b.pairs:>6}"
                     + "".join(f"  {getattr(b, m[0]):6.2f}" for m in report.MEASURES))
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
    by a legend in a panel of its own below the axes. Reports of task models
    (:class:`AccuracyReport`) give exact match and token accuracy instead; one figure
    takes reports of one kind (else a ValueError)."""
    kinds = {type(r) for r in reports.values()}
    if len(kinds) > 1:
        raise ValueError("one figure draws BLEU or accuracy: give reports of one kind")
    kind = kinds.pop() if kinds else Report
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
        for ax, (key, *_) in zip(axes, kind.MEASURES):
            ax.plot(xs, [getattr(b, key) for b in report.buckets], "o-", label=name,
                    clip_on=False)  # a score of 0 shows its whole marker
    for ax in axes:
        ax.set_xticks(range(len(order)), order)
    for ax, (_, _, what, unit) in zip(axes, kind.MEASURES):
        ax.set_title(what, fontsize=10)
        ax.set_xlabel(kind.LENGTHS)
        ax.set_ylabel(unit)
        ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))  # from 0; all zeros still read as 0
        ax.grid(alpha=0.3)
    heading = kind.HEADING
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
    sources: list[str]  # the part's sources, tokens joined by spaces (a task's: its text)
    hyps: list[str]  # their translations
    refs: list[str]  # the references
    report: Report | AccuracyReport


def evaluate_model(ck, backend, data_path=None, *, part: str = "test", beam: int = 1,
                   length_penalty: float = 0.75, warn: Callable[[str], None] | None = None,
                   where: str = "the checkpoint", params=None,
                   context_from: str = "encoder") -> Evaluation:
    """Translate on ``backend`` and score part ``part`` (one of :data:`PARTS`) of the
    corpus that checkpoint ``ck`` (a :class:`minis2s.checkpoint.Checkpoint`) was trained
    on, with ``params`` (its parameters already on ``backend``; None puts them there).
    The part's name is checked before anything is read. The data is read again as
    ``ck.data`` says; a corpus that does not give the checkpoint's vocabulary is refused
    (``where`` names the checkpoint in the message), and so is a part the data settings
    leave empty, naming the parts that have pairs.

    A checkpoint of a generated task (``ck.task``) makes its pairs again instead (no
    corpus is read: ``data_path`` is not looked at) and is scored by :func:`accuracy`.
    ``context_from``: as :func:`minis2s.decode.greedy_decode` takes it."""
    if part not in PARTS:
        raise DataError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    if ck.task is not None:
        data = load_task_data(ck.task, ck.data)
        unlike = f"the pairs of task {ck.task.name} do not give the vocabulary {where} " \
                 "was trained with: they are not the same data"
    else:
        data = load_data(resolve_data_path(data_path), ck.data,
                         warn=warn or (lambda m: None))
        unlike = f"this corpus does not give the vocabulary {where} was trained with: it " \
                 "is not the same data"
    if data.src_vocab.idx_to_token != ck.src_vocab.idx_to_token:
        raise DataError(unlike)
    chosen = getattr(data, part)
    if not len(chosen):
        have = " or ".join(p for p in PARTS if len(getattr(data, p)))
        raise DataError(f"the checkpoint's data settings leave no {part} part (preset "
                        f"{ck.training.get('preset', '?')}); score the {have} part instead")
    if params is None:
        params = ck.params_on(backend)
    # the decoding's own default unless asked otherwise
    context = {} if context_from == "encoder" else {"context_from": context_from}
    if ck.task is not None:
        task = ck.task
        sources = [task.source_text(t) for t in chosen.src_tokens]
        found = translations(params, ck.config, ck.src_vocab, ck.tgt_vocab, sources,
                             ck.data.num_steps, backend, beam=beam,
                             length_penalty=length_penalty, rules=task, **context)
        return Evaluation(sources, [t.text for t in found],
                          [task.target_text(t) for t in chosen.tgt_tokens],
                          accuracy([t.tokens for t in found], chosen.tgt_tokens,
                                   [len(t) for t in chosen.src_tokens]))
    sources = [" ".join(t) for t in chosen.src_tokens]
    refs = [" ".join(t) for t in chosen.tgt_tokens]
    hyps = translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sources,
                     ck.data.num_steps, backend, beam=beam, length_penalty=length_penalty,
                     **context)
    return Evaluation(sources, hyps, refs,
                      score(hyps, refs, [len(t) for t in chosen.src_tokens]))
