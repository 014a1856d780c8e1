"""The text rules of Dive into Deep Learning's machine-translation chapter.

Normalise non-breaking spaces, lowercase, put a space before ``, . ! ?``, and split into
word tokens. The same rules serve training data and sentences given to ``translate``.
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
