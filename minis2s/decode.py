"""Greedy translation: many sentences at once, each stopping at ``<eos>`` or num_steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .backend import Backend, to_numpy
from .data import Vocab, preprocess, tokenize
from .model import ModelConfig, decoder_forward, encoder_forward


def _preview(sentence: str, words: int = 5, chars: int = 40) -> str:
    """The first few words of a sentence, to name it in a message."""
    parts = sentence.split()
    text = " ".join(parts[:words])
    cut = len(parts) > words or len(text) > chars
    return text[:chars] + (" ..." if cut else "")


def encode_sentences(sentences: Sequence[str], src_vocab: Vocab, num_steps: int,
                     warn: Callable[[str], None] | None = None,
                     numbers: Sequence[int] | None = None):
    """Preprocess, map to ids (unknown words -> ``<unk>``), append ``<eos>``, truncate or
    pad to num_steps, as the seed does (so a sentence of num_steps tokens or more loses
    its ``<eos>``). Returns ids (N, num_steps) int64.

    A truncated sentence is reported through ``warn`` by its number (``numbers[i]``,
    default ``i + 1``) and first words.
    """
    ids = np.full((len(sentences), num_steps), src_vocab.pad, dtype=np.int64)
    for i, s in enumerate(sentences):
        row = src_vocab[tokenize(preprocess(s))] + [src_vocab.eos]
        if len(row) > num_steps and warn is not None:
            n = numbers[i] if numbers is not None else i + 1
            warn(f'sentence {n} ("{_preview(s)}") has {len(row) - 1} tokens; the model '
                 f"reads only the first {num_steps}, without <eos>")
        row = row[:num_steps]
        ids[i, :len(row)] = row
    return ids


def greedy_decode(params, cfg: ModelConfig, src, tgt_vocab: Vocab, num_steps: int,
                  backend: Backend) -> list[list[int]]:
    """Decode a batch of source ids (N, T) greedily; returns each output's ids, no <eos>."""
    xp = backend.xp
    src = xp.asarray(src)
    N = src.shape[0]
    (state, context), _ = encoder_forward(params, cfg, src)
    prev = xp.full((N, 1), tgt_vocab.bos, dtype=src.dtype)
    out = np.empty((N, num_steps), dtype=np.int64)
    done = np.zeros(N, dtype=bool)
    lengths = np.full(N, num_steps)
    for t in range(num_steps):
        (logits, state), _ = decoder_forward(params, cfg, prev, state, context)
        pred = logits[:, 0].argmax(axis=-1)  # (N,) the most likely next token
        pred_np = to_numpy(pred)
        out[:, t] = pred_np
        ended = (~done) & (pred_np == tgt_vocab.eos)
        lengths[ended] = t
        done |= ended
        if done.all():
            break
        prev = pred[:, None].astype(src.dtype)
    return [out[i, :lengths[i]].tolist() for i in range(N)]


def translate(params, cfg: ModelConfig, src_vocab: Vocab, tgt_vocab: Vocab,
              sentences: Sequence[str], num_steps: int, backend: Backend,
              batch_size: int = 512, warn: Callable[[str], None] | None = None) -> list[str]:
    """Translate sentences; each output is its tokens joined by single spaces (never a
    line break), so there is exactly one output per input.

    An empty or whitespace-only sentence gives an empty translation; words the source
    vocabulary lacks (any script, emoji) are read as ``<unk>``; a sentence too long for
    num_steps is truncated with a warning that gives its 1-based position in
    ``sentences``.
    """
    results = [""] * len(sentences)
    todo = [i for i, s in enumerate(sentences) if s.strip()]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        src = encode_sentences([sentences[i] for i in chunk], src_vocab, num_steps, warn,
                               numbers=[i + 1 for i in chunk])
        for i, ids in zip(chunk, greedy_decode(params, cfg, src, tgt_vocab, num_steps,
                                               backend)):
            results[i] = " ".join(tgt_vocab.to_tokens(ids))
    return results


def predict_seq2seq(params, cfg: ModelConfig, src_sentence: str, src_vocab: Vocab,
                    tgt_vocab: Vocab, num_steps: int, backend: Backend) -> str:
    """The seed's one-sentence function: a sentence in, its greedy translation out."""
    return translate(params, cfg, src_vocab, tgt_vocab, [src_sentence], num_steps,
                     backend)[0]
