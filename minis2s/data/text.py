"""The text rules of Dive into Deep Learning's machine-translation chapter.

Normalise non-breaking spaces, lowercase, put a space before ``, . ! ?``, and split into
word tokens. The same rules serve training data and sentences given to ``translate``.
:data:`CORPUS_TEXT` holds them under the names a generated task's rules have
(:class:`~minis2s.data.TaskSpec`), so that code reading and writing text takes either.
"""

from __future__ import annotations

import re

Tokens = list[str]
Pair = tuple[Tokens, Tokens]  # (source tokens, target tokens)

# A mark preceded by any character other than a space (so never at position 0).
_SPACE_BEFORE = re.compile(r"(?<=[^ ])([,.!?])")


def preprocess(text: str) -> str:
    """Normalise spaces, lowercase, and put a space before ``, . ! ?`` that lack one.

    U+202F (narrow no-break space) and U+00A0 (no-break space) become ordinary spaces.
    A punctuation mark at position 0 is never prefixed.
    """
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    return _SPACE_BEFORE.sub(r" \1", text)


def tokenize(line: str) -> Tokens:
    """Split a preprocessed sentence into word tokens.

    Uses ``str.split()`` (any run of whitespace separates tokens) rather than
    ``split(' ')``, so repeated or leading spaces never produce empty tokens.
    """
    return line.split()


class CorpusText:
    """The corpus's text rules under the names of a task's: a source or target is read
    by :func:`preprocess` and :func:`tokenize`, tokens are written joined by spaces."""

    name = "corpus"

    @staticmethod
    def source_tokens(text: str) -> Tokens:
        return tokenize(preprocess(text))

    target_tokens = source_tokens

    @staticmethod
    def source_text(tokens) -> str:
        return " ".join(tokens)

    target_text = source_text


CORPUS_TEXT = CorpusText()


def text_rules(task):
    """How the data of ``task`` (a :class:`~minis2s.data.TaskSpec`, or None for the
    corpus) is read and written."""
    return CORPUS_TEXT if task is None else task
