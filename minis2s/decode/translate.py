"""Translation: sentences in, translations out, by greedy decoding or beam search.

Text is read and written by the corpus's rules, or by a generated task's (``rules``: a
:class:`~minis2s.data.TaskSpec`, or anything with its ``source_tokens`` and
``target_text``), so that a task's model reads ``123+45`` and writes ``168``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..backend import Backend
from ..data import CORPUS_TEXT, Vocab
from ..model import ModelConfig
from .beam import beam_search
from .greedy import check_context_from, greedy_decode


def _preview(sentence: str, words: int = 5, chars: int = 40) -> str:
    """The first few words of a sentence, to name it in a message."""
    parts = sentence.split()
    text = " ".join(parts[:words])
    cut = len(parts) > words or len(text) > chars
    return text[:chars] + (" ..." if cut else "")


def encode_sentences(sentences: Sequence[str], src_vocab: Vocab, num_steps: int,
                     warn: Callable[[str], None] | None = None,
                     numbers: Sequence[int] | None = None, rules=CORPUS_TEXT):
    """Read each sentence as ``rules`` says (default: the corpus's preprocessing and
    tokens), map to ids (unknown words -> ``<unk>``), append ``<eos>``, truncate or pad
    to num_steps, as the seed does (so a sentence of num_steps tokens or more loses its
    ``<eos>``). Returns ids (N, num_steps) int64.

    A truncated sentence is reported through ``warn`` by its number (``numbers[i]``,
    default ``i + 1``) and first words.
    """
    ids = np.full((len(sentences), num_steps), src_vocab.pad, dtype=np.int64)
    for i, s in enumerate(sentences):
        row = src_vocab[rules.source_tokens(s)] + [src_vocab.eos]
        if len(row) > num_steps and warn is not None:
            n = numbers[i] if numbers is not None else i + 1
            warn(f'sentence {n} ("{_preview(s)}") has {len(row) - 1} tokens; the model '
                 f"reads only the first {num_steps}, without <eos>")
        row = row[:num_steps]
        ids[i, :len(row)] = row
    return ids


class Translation(NamedTuple):
    source: list  # the source tokens the model read (after truncation), <eos> included
    tokens: list  # the output tokens, without <eos>
    text: str  # the output as text: tokens joined by single spaces (a task's: its own text)
    weights: Any  # (output steps, source tokens) attention weights, or None


def translations(params, cfg: ModelConfig, src_vocab: Vocab, tgt_vocab: Vocab,
                 sentences: Sequence[str], num_steps: int, backend: Backend,
                 batch_size: int = 512, warn: Callable[[str], None] | None = None,
                 beam: int = 1, length_penalty: float = 0.75,
                 with_weights: bool = False, rules=CORPUS_TEXT,
                 context_from: str = "encoder") -> list[Translation]:
    """Translate sentences, greedily (``beam`` 1) or by beam search (``beam`` K > 1, score
    log P / L^``length_penalty``). Each output is its tokens joined by single spaces
    (never a line break), so there is exactly one output per input. With
    ``with_weights``, each carries its attention weights, if the model's decoder attends.
    ``rules`` reads the sentences and writes the outputs (a task's: ``123+45`` read as
    characters, ``168`` written without spaces). ``context_from``: see
    :func:`~.greedy.greedy_decode` (``"decoder"``: greedy decoding only).

    An empty or whitespace-only sentence gives an empty translation; words the source
    vocabulary lacks (any script, emoji) are read as ``<unk>``; a sentence too long for
    num_steps is truncated with a warning that gives its 1-based position in
    ``sentences``.
    """
    check_context_from(context_from, cfg, beam)
    results = [Translation([], [], "", None)] * len(sentences)
    todo = [i for i, s in enumerate(sentences) if s.strip()]
    for first in range(0, len(todo), batch_size):
        chunk = todo[first:first + batch_size]
        src = encode_sentences([sentences[i] for i in chunk], src_vocab, num_steps, warn,
                               numbers=[i + 1 for i in chunk], rules=rules)
        valid = (src != src_vocab.pad).sum(axis=1)
        if beam == 1:
            found = greedy_decode(params, cfg, src, tgt_vocab, num_steps, backend, valid,
                                  return_weights=with_weights, context_from=context_from)
        else:
            found = beam_search(params, cfg, src, tgt_vocab, num_steps, backend, beam,
                                length_penalty, valid, return_weights=with_weights)
        outs, weights = [h.tokens for h in found], [h.weights for h in found]
        for row, (i, ids, w) in enumerate(zip(chunk, outs, weights)):
            words = tgt_vocab.to_tokens(ids)
            source = src_vocab.to_tokens(src[row, :valid[row]])
            results[i] = Translation(source, words, rules.target_text(words),
                                     None if w is None else w[:, :valid[row]])
    return results


def translate(params, cfg: ModelConfig, src_vocab: Vocab, tgt_vocab: Vocab,
              sentences: Sequence[str], num_steps: int, backend: Backend,
              batch_size: int = 512, warn: Callable[[str], None] | None = None,
              beam: int = 1, length_penalty: float = 0.75,
              rules=CORPUS_TEXT, context_from: str = "encoder") -> list[str]:
    """The texts of :func:`translations`: one line of output per sentence."""
    return [t.text for t in translations(params, cfg, src_vocab, tgt_vocab, sentences,
                                         num_steps, backend, batch_size, warn, beam,
                                         length_penalty, rules=rules,
                                         context_from=context_from)]


def predict_seq2seq(params, cfg: ModelConfig, src_sentence: str, src_vocab: Vocab,
                    tgt_vocab: Vocab, num_steps: int, backend: Backend) -> str:
    """The seed's one-sentence function: a sentence in, its greedy translation out."""
    return translate(params, cfg, src_vocab, tgt_vocab, [src_sentence], num_steps,
                     backend)[0]
