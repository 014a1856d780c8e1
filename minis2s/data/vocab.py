"""Vocabularies and id arrays: tokens to ids, ``<eos>`` appended, padded to num_steps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import DataError

UNK, PAD, BOS, EOS = "<unk>", "<pad>", "<bos>", "<eos>"
RESERVED_TOKENS = (UNK, PAD, BOS, EOS)

class Vocab:
    """Token <-> id mapping with ``<unk>``, ``<pad>``, ``<bos>``, ``<eos>`` at ids 0-3.

    Other tokens follow in order of descending frequency; equal frequencies keep the
    order of first appearance. Tokens seen fewer than ``min_freq`` times map to
    ``<unk>``.
    """

    def __init__(self, sentences: Iterable[Sequence[str]] = (), min_freq: int = 2) -> None:
        counter: Counter[str] = Counter()
        for sentence in sentences:
            counter.update(sentence)
        # sorted() is stable, so ties keep the Counter's first-seen order.
        self.token_freqs: list[tuple[str, int]] = sorted(
            counter.items(), key=lambda item: item[1], reverse=True
        )
        self.idx_to_token: list[str] = list(RESERVED_TOKENS)
        self.token_to_idx: dict[str, int] = {t: i for i, t in enumerate(self.idx_to_token)}
        for token, freq in self.token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.token_to_idx[token] = len(self.idx_to_token)
                self.idx_to_token.append(token)

    @classmethod
    def from_tokens(cls, tokens: Sequence[str]) -> Vocab:
        """Rebuild a vocabulary from its tokens listed in id order (e.g. from a checkpoint)."""
        tokens = list(tokens)
        if not all(isinstance(t, str) for t in tokens):
            raise DataError("vocabulary tokens must all be strings")
        if tuple(tokens[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
            raise DataError(
                f"vocabulary must start with {list(RESERVED_TOKENS)}, "
                f"got {tokens[: len(RESERVED_TOKENS)]}"
            )
        if len(set(tokens)) != len(tokens):
            dupes = sorted(t for t, c in Counter(tokens).items() if c > 1)
            raise DataError(f"vocabulary has duplicate tokens: {dupes[:10]}")
        vocab = cls()
        vocab.idx_to_token = tokens
        vocab.token_to_idx = {t: i for i, t in enumerate(tokens)}
        vocab.token_freqs = []
        return vocab

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens: str | Sequence[str]) -> Any:
        """Id of one token, or a list of ids for a list/tuple of tokens (unknown -> 0)."""
        if isinstance(tokens, (list, tuple)):
            return [self.token_to_idx.get(t, 0) for t in tokens]
        return self.token_to_idx.get(tokens, 0)

    def to_tokens(self, ids: int | Iterable[int]) -> Any:
        """Token of one id, or a list of tokens for a sequence (or array) of ids."""
        if isinstance(ids, (int, np.integer)):
            return self.idx_to_token[int(ids)]
        return [self.idx_to_token[int(i)] for i in ids]

    @property
    def unk(self) -> int:
        """Id of ``<unk>``."""
        return self.token_to_idx[UNK]

    @property
    def pad(self) -> int:
        """Id of ``<pad>``."""
        return self.token_to_idx[PAD]

    @property
    def bos(self) -> int:
        """Id of ``<bos>``."""
        return self.token_to_idx[BOS]

    @property
    def eos(self) -> int:
        """Id of ``<eos>``."""
        return self.token_to_idx[EOS]

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"


def build_array(
    lines: Sequence[Sequence[str]], vocab: Vocab, num_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Map sentences to ``(N, num_steps)`` ids with ``<eos>`` appended, truncated or padded.

    Returns the id array and the valid lengths (number of non-``<pad>`` ids per row),
    both ``int64``.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    array = np.full((len(lines), num_steps), vocab.pad, dtype=np.int64)
    for row, line in enumerate(lines):
        ids = (vocab[list(line)] + [vocab.eos])[:num_steps]
        array[row, : len(ids)] = ids
    valid_len = (array != vocab.pad).sum(axis=1).astype(np.int64)
    return array, valid_len
