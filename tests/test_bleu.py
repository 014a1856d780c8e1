"""Tests for the sentence BLEU of the book and the sacrebleu corpus scores."""

from __future__ import annotations

import math

import pytest

from minis2s.bleu import bleu, corpus_scores


def test_exact_match_is_one() -> None:
    assert bleu("il est calme .", "il est calme .", k=2) == pytest.approx(1.0)
    assert bleu("va !", "va !", k=4) == pytest.approx(1.0)


def test_one_word_differs() -> None:
    # pred "il est bon ." vs label "il est calme .", k=2; equal lengths -> no penalty.
    # unigrams: il, est, . match -> p1 = 3/4
    # bigrams: (il est) matches, (est bon), (bon .) do not -> p2 = 1/3
    # score = (3/4) ** (1/2) * (1/3) ** (1/4) ~= 0.866 * 0.760 ~= 0.658
    expected = (3 / 4) ** 0.5 * (1 / 3) ** 0.25
    assert bleu("il est bon .", "il est calme .", k=2) == pytest.approx(expected)
    assert expected == pytest.approx(0.6580, abs=1e-4)


def test_short_prediction_brevity_penalty() -> None:
    # pred "il est" (2 tokens) vs 4-token label: penalty exp(1 - 4/2) = exp(-1);
    # p1 = 2/2 and p2 = 1/1, so the score is the penalty alone.
    assert bleu("il est", "il est calme .", k=2) == pytest.approx(math.exp(-1))


def test_long_prediction_has_no_penalty() -> None:
    # pred "a b c d" vs label "a b": p1 = 2/4, p2 = 1/3 (only "a b"), no penalty.
    expected = (2 / 4) ** 0.5 * (1 / 3) ** 0.25
    assert bleu("a b c d", "a b", k=2) == pytest.approx(expected)


def test_single_token_prediction_uses_unigrams_only() -> None:
    # len_pred = 1 < k = 2, so only n = 1 counts: p1 = 1; penalty exp(1 - 2/1) = exp(-1).
    assert bleu("il", "il est", k=2) == pytest.approx(math.exp(-1))
    assert bleu("x", "il est", k=2) == 0.0


def test_matches_are_clipped_by_label_counts() -> None:
    # "le" occurs once in the label, so only one of the three predicted "le" counts:
    # p1 = 1/3; penalty exp(min(0, 1 - 2/3)) = 1.
    assert bleu("le le le", "le chat", k=1) == pytest.approx((1 / 3) ** 0.5)


def test_empty_prediction_scores_zero() -> None:
    assert bleu("", "il est calme .", k=2) == 0.0
    assert bleu("   ", "il est calme .", k=2) == 0.0


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError):
        bleu("a", "a", k=0)


def test_corpus_scores() -> None:
    hyps = ["il est calme .", "je suis chez moi .", "va !"]
    refs = ["il est calme .", "je suis à la maison .", "va !"]
    scores = corpus_scores(hyps, refs)
    assert 0.0 <= scores["bleu"] <= 100.0
    assert 0.0 <= scores["chrf"] <= 100.0
    assert 0.0 < scores["bleu"] < 100.0
    assert "nrefs:1" in scores["bleu_signature"]
    assert "nrefs:1" in scores["chrf_signature"]
    assert scores["bleu_text"].startswith("BLEU = ")
    assert scores["chrf_text"].startswith("chrF2 = ")
    perfect = corpus_scores(refs, refs)
    assert perfect["bleu"] == pytest.approx(100.0)
    assert perfect["chrf"] == pytest.approx(100.0)


def test_corpus_scores_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        corpus_scores(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        corpus_scores([], [])


def test_detokenize_undoes_the_punctuation_split():
    from minis2s.bleu import detokenize

    assert detokenize("va !") == "va!"
    assert detokenize("j'ai perdu , je crois .") == "j'ai perdu, je crois."
    # tokenized and detokenized text score the same, and sacrebleu is not warned
    from minis2s.bleu import corpus_scores

    a = corpus_scores(["il est calme ."], ["il est riche ."])
    b = corpus_scores(["il est calme."], ["il est riche."], tokenized=False)
    assert a["bleu"] == b["bleu"] and a["chrf"] == b["chrf"]
