"""The corpus as the model learns from it: sentence pairs, their split, and id arrays.

Dive into Deep Learning's rules: each line ``English<TAB>French`` is preprocessed and
tokenized (:mod:`.text`); pairs are split into training, validation and test parts by a
permutation drawn from a random seed; vocabularies come from the training part only
(:mod:`.vocab`); each part becomes id arrays padded to ``num_steps``. A :class:`DataSpec`
holds every one of those choices; :func:`load_data` takes it. Opening the file safely is
:mod:`.files`' job, finding or downloading it :mod:`.fetch`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

import numpy as np

from ..settings import DATA_FIELDS, check
from ..wording import plural
from .errors import DataError, Warn, warn_stderr
from .files import open_lines
from .text import Pair, preprocess, tokenize
from .vocab import Vocab, build_array

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    """How the corpus is read, split and indexed: the same spec gives the same data."""

    num_steps: int = 10  # tokens per sentence after padding or truncation
    num_examples: int | None = None  # lines 0..num_examples read (the seed's rule); None: all
    valid_size: int | float = 0  # held-out pairs: a count, or a fraction of all pairs
    test_size: int | float = 0
    split_seed: int = 0  # the random seed of the split's permutation
    min_freq: int = 2  # tokens seen fewer times in the training part become <unk>

    def __post_init__(self):
        check({name: getattr(self, name) for name in DATA_FIELDS}, name=str)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------- pairs


def parse_pairs(
    lines: Iterable[str], num_examples: int | None, where: str, name: str, warn: Warn,
    rules=None,
) -> list[Pair]:
    """Turn raw lines into token pairs, counting and reporting the lines skipped.

    ``where`` names the input in the error raised when no pair is left; ``name`` names it
    in the warning about skipped lines. ``rules`` (a :class:`~minis2s.data.TaskSpec`)
    reads each side as a generated task does; None, as the corpus is read."""
    pairs: list[Pair] = []
    blank = no_tab = empty_side = 0
    if num_examples is not None:
        # islice stops without pulling (and decoding) the line after the last one used.
        lines = islice(lines, num_examples + 1)
    for line in lines:
        text = preprocess(line) if rules is None else line
        if not text.strip():
            blank += 1
            continue
        columns = text.split("\t")
        if len(columns) < 2:
            no_tab += 1
            continue
        if rules is None:
            src, tgt = tokenize(columns[0]), tokenize(columns[1])
        else:
            src, tgt = rules.source_tokens(columns[0]), rules.target_tokens(columns[1])
        if not src or not tgt:
            empty_side += 1
            continue
        pairs.append((src, tgt))
    skipped = blank + no_tab + empty_side
    if skipped:
        parts = []
        if blank:
            parts.append(f"{blank} blank")
        if no_tab:
            parts.append(f"{no_tab} without a tab")
        if empty_side:
            parts.append(f"{empty_side} with an empty side")
        warn(f"minis2s: skipped {plural(skipped, 'line')} of {name} ({', '.join(parts)})")
    if not pairs:
        sides = "English<TAB>French" if rules is None else "SOURCE<TAB>TARGET"
        raise DataError(f"{where}: no valid '{sides}' line found")
    return pairs


def read_pairs(
    path: PathLike, num_examples: int | None = None, *, warn: Warn = warn_stderr,
    rules=None,
) -> list[Pair]:
    """Read ``(source tokens, target tokens)`` pairs from a tab-separated corpus, each
    side read as ``rules`` (a generated task's) says, or by the corpus's rules.

    ``path`` is either a ``.zip`` holding ``fra-eng/fra.txt`` (as published for the book)
    or a plain UTF-8 text file with one ``English<TAB>French[<TAB>...]`` pair per line;
    columns after the second are ignored. Blank lines, lines without a tab and lines
    with an empty side are skipped and reported once through ``warn``.

    As in the book, the 0-based line index ``i`` (counted over every line, skipped or
    not) is read while ``i <= num_examples``; ``None`` reads the whole file.
    """
    if num_examples is not None and num_examples < 0:
        raise DataError(f"num_examples must be >= 0 or None, got {num_examples}")
    with open_lines(path) as (lines, where, name):
        return parse_pairs(lines, num_examples, where, name, warn, rules)


# -------------------------------------------------------------------- splits


@dataclass
class Split:
    """Token lists of the training, validation and test parts."""

    train_src: list[list[str]]
    train_tgt: list[list[str]]
    valid_src: list[list[str]]
    valid_tgt: list[list[str]]
    test_src: list[list[str]]
    test_tgt: list[list[str]]


def _part_size(size: int | float, total: int, what: str) -> int:
    """Turn a count (int) or fraction (float) into a number of examples."""
    if isinstance(size, bool):
        raise TypeError(f"{what} must be an int or a float, not bool")
    if isinstance(size, (int, np.integer)):
        if size < 0:
            raise DataError(f"{what} must be >= 0, got {size}")
        return int(size)
    if isinstance(size, float):
        if not 0.0 <= size < 1.0:
            raise DataError(f"{what} as a fraction must be in [0, 1), got {size}")
        return int(round(size * total))
    raise TypeError(f"{what} must be an int or a float, got {type(size).__name__}")


def split_pairs(
    pairs: Sequence[Pair], valid_size: int | float = 0, test_size: int | float = 0, seed: int = 0
) -> Split:
    """Split pairs into train/valid/test with a permutation drawn from ``seed``.

    Integer sizes are counts, floats are fractions of all pairs. Each part keeps the
    corpus order of its pairs; with both sizes 0 everything is training data.
    """
    total = len(pairs)
    n_valid = _part_size(valid_size, total, "valid_size")
    n_test = _part_size(test_size, total, "test_size")
    if n_valid + n_test >= total:
        raise DataError(
            f"valid ({n_valid}) + test ({n_test}) examples leave no training data "
            f"out of {total} pairs"
        )
    if n_valid == 0 and n_test == 0:
        order = np.arange(total)
    else:
        order = np.random.default_rng(seed).permutation(total)
    test_idx = np.sort(order[:n_test])
    valid_idx = np.sort(order[n_test : n_test + n_valid])
    train_idx = np.sort(order[n_test + n_valid :])

    def take(idx: np.ndarray, side: int) -> list[list[str]]:
        return [list(pairs[i][side]) for i in idx]

    return Split(
        train_src=take(train_idx, 0),
        train_tgt=take(train_idx, 1),
        valid_src=take(valid_idx, 0),
        valid_tgt=take(valid_idx, 1),
        test_src=take(test_idx, 0),
        test_tgt=take(test_idx, 1),
    )


# -------------------------------------------------------------------- arrays


@dataclass
class Part:
    """One part of the data as id arrays, with the token lists kept for BLEU."""

    src: np.ndarray
    src_valid_len: np.ndarray
    tgt: np.ndarray
    tgt_valid_len: np.ndarray
    src_tokens: list[list[str]]
    tgt_tokens: list[list[str]]

    def __len__(self) -> int:
        return int(self.src.shape[0])


@dataclass
class TranslationData:
    """Vocabularies (built on the training part) and the three parts as arrays; ``task``,
    the :class:`~minis2s.data.TaskSpec` that made the pairs (None: the corpus)."""

    src_vocab: Vocab
    tgt_vocab: Vocab
    spec: DataSpec
    train: Part
    valid: Part
    test: Part
    task: Any = None


def make_part(
    src_tokens: list[list[str]],
    tgt_tokens: list[list[str]],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    num_steps: int,
) -> Part:
    """Convert parallel token lists to a :class:`Part`."""
    src, src_valid_len = build_array(src_tokens, src_vocab, num_steps)
    tgt, tgt_valid_len = build_array(tgt_tokens, tgt_vocab, num_steps)
    return Part(src, src_valid_len, tgt, tgt_valid_len, src_tokens, tgt_tokens)


def load_data(path: PathLike, spec: DataSpec, *, warn: Warn = warn_stderr) -> TranslationData:
    """Read, split and index the corpus as ``spec`` says; vocabularies come from the
    training part only."""
    pairs = read_pairs(path, spec.num_examples, warn=warn)
    split = split_pairs(pairs, spec.valid_size, spec.test_size, spec.split_seed)
    src_vocab = Vocab(split.train_src, min_freq=spec.min_freq)
    tgt_vocab = Vocab(split.train_tgt, min_freq=spec.min_freq)

    def part(src: list[list[str]], tgt: list[list[str]]) -> Part:
        return make_part(src, tgt, src_vocab, tgt_vocab, spec.num_steps)

    return TranslationData(
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        spec=spec,
        train=part(split.train_src, split.train_tgt),
        valid=part(split.valid_src, split.valid_tgt),
        test=part(split.test_src, split.test_tgt),
    )
