"""Translation scores: the book's sentence-level BLEU and sacrebleu's corpus BLEU / chrF."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sacrebleu.metrics import BLEU, CHRF


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All contiguous n-grams of ``tokens``, in order."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def bleu(pred_seq: str, label_seq: str, k: int) -> float:
    """Sentence BLEU as defined in Dive into Deep Learning (section on seq2seq).

    Both strings are split on single spaces. The score is the brevity factor
    ``exp(min(0, 1 - len_label / len_pred))`` times, for ``n = 1 .. min(k, len_pred)``,
    ``p_n ** (1 / 2**n)``, where ``p_n`` is the share of the prediction's n-grams found
    in the label (each label n-gram matched at most as often as it occurs there).
    An empty prediction scores 0.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pred_tokens = pred_seq.split(" ")
    label_tokens = label_seq.split(" ")
    if not any(pred_tokens):  # "" or only spaces: nothing was predicted
        return 0.0
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    score = math.exp(min(0.0, 1.0 - len_label / len_pred))
    for n in range(1, min(k, len_pred) + 1):
        remaining = Counter(_ngrams(label_tokens, n))
        matches = 0
        for gram in _ngrams(pred_tokens, n):
            if remaining[gram] > 0:
                matches += 1
                remaining[gram] -= 1
        score *= (matches / (len_pred - n + 1)) ** (0.5**n)
    return score


_SPACE_BEFORE_PUNCT = re.compile(r" ([,.!?])")


def detokenize(text: str) -> str:
    """Undo the corpus preprocessing's one split: ``"va !"`` -> ``"va!"``.

    sacrebleu expects plain text and applies its own tokenizer (13a) to both sides.
    """
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str],
                  tokenized: bool = True) -> dict[str, Any]:
    """Corpus BLEU and chrF (0-100) from sacrebleu, with their signatures.

    One reference per hypothesis. With ``tokenized`` (our own outputs and references:
    punctuation split off by preprocessing) both sides are detokenized first. Returns
    ``bleu``, ``chrf`` (floats), ``bleu_signature``, ``chrf_signature`` and the printable
    ``bleu_text`` / ``chrf_text``.
    """
    hyps, refs = list(hypotheses), list(references)
    if tokenized:
        hyps, refs = [detokenize(h) for h in hyps], [detokenize(r) for r in refs]
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("corpus_scores needs at least one sentence")
    bleu_metric, chrf_metric = BLEU(), CHRF()
    bleu_score = bleu_metric.corpus_score(hyps, [refs])
    chrf_score = chrf_metric.corpus_score(hyps, [refs])
    return {
        "bleu": float(bleu_score.score),
        "chrf": float(chrf_score.score),
        "bleu_signature": str(bleu_metric.get_signature()),
        "chrf_signature": str(chrf_metric.get_signature()),
        "bleu_text": str(bleu_score),
        "chrf_text": str(chrf_score),
    }
