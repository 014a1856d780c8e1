"""The English-French corpus: reading, cleaning, vocabularies, arrays, splits and batches.

The text rules follow Dive into Deep Learning's machine-translation chapter: normalise
non-breaking spaces, lowercase, put a space before ``, . ! ?``, split into tokens, keep
tokens seen at least ``min_freq`` times, append ``<eos>`` and pad or truncate every
sentence to ``num_steps`` ids.

Reading is strict about its input: every problem with a file is reported as a
:class:`DataError` that names the file (and the line, where there is one).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import IO, Any, NamedTuple

import numpy as np

DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"
DATA_SHA1 = "94646ad1522d915e7b0f9296181140edcf86a4f5"
DATA_FILENAME = "fra-eng.zip"
ZIP_MEMBER = "fra-eng/fra.txt"
ENV_DATA = "MINIS2S_DATA"
ENV_CACHE = "MINIS2S_CACHE"

MAX_MEMBER_SIZE = 1 << 30  # 1 GiB uncompressed
MAX_COMPRESSION_RATIO = 200

UNK, PAD, BOS, EOS = "<unk>", "<pad>", "<bos>", "<eos>"
RESERVED_TOKENS = (UNK, PAD, BOS, EOS)

# A mark preceded by any character other than a space (so never at position 0).
_SPACE_BEFORE = re.compile(r"(?<=[^ ])([,.!?])")
_UTF8_BOM = b"\xef\xbb\xbf"

Pair = tuple[list[str], list[str]]
Warn = Callable[[str], None]
PathLike = str | os.PathLike[str]


class DataError(ValueError):
    """Bad input data: unreadable, malformed or unsafe files, or unusable settings."""


def _warn_stderr(message: str) -> None:
    """Write one diagnostic line to standard error."""
    print(message, file=sys.stderr)


# ----------------------------------------------------------------------------- text


def preprocess(text: str) -> str:
    """Normalise spaces, lowercase, and put a space before ``, . ! ?`` that lack one.

    U+202F (narrow no-break space) and U+00A0 (no-break space) become ordinary spaces.
    A punctuation mark at position 0 is never prefixed.
    """
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    return _SPACE_BEFORE.sub(r" \1", text)


def tokenize(line: str) -> list[str]:
    """Split a preprocessed sentence into word tokens.

    Uses ``str.split()`` (any run of whitespace separates tokens) rather than
    ``split(' ')``, so repeated or leading spaces never produce empty tokens.
    """
    return line.split()


# ----------------------------------------------------------------------------- reading


def _is_unsafe_name(name: str) -> bool:
    """True if a zip member name is absolute or climbs out of its folder."""
    if name.startswith(("/", "\\")) or (len(name) >= 2 and name[1] == ":"):
        return True
    parts = name.replace("\\", "/").split("/")
    return ".." in parts


def _pick_member(zf: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    """Check every member name, choose the corpus member and check its size records."""
    infos = zf.infolist()
    for info in infos:
        if _is_unsafe_name(info.filename):
            raise DataError(f"{path}: refusing zip with unsafe member name {info.filename!r}")
    names = [info.filename for info in infos]
    if ZIP_MEMBER in names:
        info = zf.getinfo(ZIP_MEMBER)
    else:
        candidates = [i for i in infos if not i.is_dir() and i.filename.endswith("fra.txt")]
        if len(candidates) != 1:
            listing = ", ".join(repr(n) for n in names) or "(none)"
            raise DataError(
                f"{path}: zip has no member {ZIP_MEMBER!r} (nor a single '*fra.txt'); "
                f"members: {listing}"
            )
        info = candidates[0]
    if info.file_size > MAX_MEMBER_SIZE:
        raise DataError(
            f"{path}: refusing member {info.filename!r}: uncompressed size "
            f"{info.file_size} bytes exceeds {MAX_MEMBER_SIZE}"
        )
    if info.file_size > 0:
        if info.compress_size <= 0:
            ratio = float("inf")
        else:
            ratio = info.file_size / info.compress_size
        if ratio > MAX_COMPRESSION_RATIO:
            raise DataError(
                f"{path}: refusing member {info.filename!r}: compression ratio "
                f"{ratio:.0f} exceeds {MAX_COMPRESSION_RATIO}"
            )
    return info


def _decoded_lines(stream: IO[bytes], where: str) -> Iterator[str]:
    """Yield the lines of a UTF-8 byte stream without their line endings.

    Lines end at ``\\n`` only (a preceding ``\\r`` is dropped), so the count matches
    line numbers as editors show them. A leading BOM is ignored. Text after the final
    newline forms one more line; nothing after it forms none.
    """
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM) :]
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            yield raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{where}: line {number}: invalid UTF-8 at byte {err.start} ({err.reason})"
            ) from None


def _parse_lines(
    lines: Iterable[str], num_examples: int | None, where: str, name: str, warn: Warn
) -> list[Pair]:
    """Turn raw lines into token pairs, counting and reporting the lines skipped."""
    pairs: list[Pair] = []
    blank = no_tab = empty_side = 0
    if num_examples is not None:
        # islice stops without pulling (and decoding) the line after the last one used.
        lines = islice(lines, num_examples + 1)
    for line in lines:
        text = preprocess(line)
        if not text.strip():
            blank += 1
            continue
        columns = text.split("\t")
        if len(columns) < 2:
            no_tab += 1
            continue
        src, tgt = tokenize(columns[0]), tokenize(columns[1])
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
        noun = "line" if skipped == 1 else "lines"
        warn(f"minis2s: skipped {skipped} {noun} of {name} ({', '.join(parts)})")
    if not pairs:
        raise DataError(f"{where}: no valid 'English<TAB>French' line found")
    return pairs


def read_pairs(
    path: PathLike, num_examples: int | None = None, *, warn: Warn = _warn_stderr
) -> list[Pair]:
    """Read ``(source tokens, target tokens)`` pairs from a tab-separated corpus.

    ``path`` is either a ``.zip`` holding ``fra-eng/fra.txt`` (as published for the book)
    or a plain UTF-8 text file with one ``English<TAB>French[<TAB>...]`` pair per line;
    columns after the second are ignored. Blank lines, lines without a tab and lines
    with an empty side are skipped and reported once through ``warn``.

    As in the book, the 0-based line index ``i`` (counted over every line, skipped or
    not) is read while ``i <= num_examples``; ``None`` reads the whole file.
    """
    if num_examples is not None and num_examples < 0:
        raise DataError(f"num_examples must be >= 0 or None, got {num_examples}")
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise DataError(f"{path}: not a regular file")
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix.lower() == ".zip":
            return _read_zip(path, num_examples, warn)
        with open(path, "rb") as stream:
            lines = _decoded_lines(stream, str(path))
            return _parse_lines(lines, num_examples, str(path), path.name, warn)
    except DataError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise DataError(f"{path}: cannot read: {err}") from err


def _read_zip(path: Path, num_examples: int | None, warn: Warn) -> list[Pair]:
    """Read the corpus member of a zip archive in memory, after the safety checks."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise DataError(f"{path}: not a valid zip file ({err})") from None
    with zf:
        info = _pick_member(zf, path)
        where = f"{path}:{info.filename}"
        name = PurePosixPath(info.filename).name
        try:
            with zf.open(info) as stream:
                lines = _decoded_lines(stream, where)
                return _parse_lines(lines, num_examples, where, name, warn)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as err:
            raise DataError(f"{where}: cannot decompress: {err}") from None


# ----------------------------------------------------------------------------- vocabulary


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


# ----------------------------------------------------------------------------- splits


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


# ----------------------------------------------------------------------------- arrays


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
    """Vocabularies (built on the training part) and the three parts as arrays."""

    src_vocab: Vocab
    tgt_vocab: Vocab
    num_steps: int
    train: Part
    valid: Part
    test: Part


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


def load_data(
    path: PathLike,
    num_steps: int,
    num_examples: int | None = None,
    valid_size: int | float = 0,
    test_size: int | float = 0,
    seed: int = 0,
    min_freq: int = 2,
    *,
    warn: Warn = _warn_stderr,
) -> TranslationData:
    """Read, split and index the corpus; vocabularies come from the training part only."""
    pairs = read_pairs(path, num_examples, warn=warn)
    split = split_pairs(pairs, valid_size, test_size, seed)
    src_vocab = Vocab(split.train_src, min_freq=min_freq)
    tgt_vocab = Vocab(split.train_tgt, min_freq=min_freq)

    def part(src: list[list[str]], tgt: list[list[str]]) -> Part:
        return make_part(src, tgt, src_vocab, tgt_vocab, num_steps)

    return TranslationData(
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        num_steps=num_steps,
        train=part(split.train_src, split.train_tgt),
        valid=part(split.valid_src, split.valid_tgt),
        test=part(split.test_src, split.test_tgt),
    )


class Batch(NamedTuple):
    """A minibatch of rows from a :class:`Part`."""

    src: np.ndarray
    src_valid_len: np.ndarray
    tgt: np.ndarray
    tgt_valid_len: np.ndarray


def iterate_batches(
    part: Part, batch_size: int, rng: np.random.Generator | None, shuffle: bool = True
) -> Iterator[Batch]:
    """Yield minibatches covering every row once; the last one may be smaller.

    Shuffling draws from ``rng`` only, never from NumPy's global state.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(part)
    if shuffle:
        if rng is None:
            raise ValueError("shuffle=True needs a numpy Generator")
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield Batch(part.src[idx], part.src_valid_len[idx], part.tgt[idx], part.tgt_valid_len[idx])


# ----------------------------------------------------------------------------- download


Opener = Callable[..., Any]
_CHUNK = 1 << 20


def _fetch_once(url: str, partial: Path, opener: Opener, timeout: float) -> str:
    """Download ``url`` into ``partial`` once; return the SHA-1 hex digest of the bytes."""
    digest = hashlib.sha1()
    received = 0
    with opener(url, timeout=timeout) as response:
        headers = getattr(response, "headers", None)
        length = headers.get("Content-Length") if headers is not None else None
        with open(partial, "wb") as out:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
    if length is not None and str(length).strip().isdigit() and received != int(length):
        raise http.client.IncompleteRead(b"", int(length) - received)
    return digest.hexdigest()


def download(
    url: str,
    dest: PathLike,
    sha1: str,
    *,
    opener: Opener = urllib.request.urlopen,
    sleep: Callable[[float], Any] = time.sleep,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.partial``, checking its SHA-1.

    Network failures are retried ``retries`` times, sleeping ``backoff * 2**k`` seconds
    before retry ``k``; client errors (HTTP 4xx) are not retried. The file appears at
    ``dest`` only once complete and verified; a checksum mismatch removes the partial
    file and raises :class:`DataError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    hint = f"download it by hand and pass --data PATH or set {ENV_DATA}"
    last_error: BaseException | None = None
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        try:
            digest = _fetch_once(url, partial, opener, timeout)
        except urllib.error.HTTPError as err:
            partial.unlink(missing_ok=True)
            last_error = err
            if 400 <= err.code < 500:
                break
            continue
        except (OSError, http.client.HTTPException) as err:
            # URLError, timeouts and connection resets are OSErrors; truncated bodies
            # raise IncompleteRead (an HTTPException).
            partial.unlink(missing_ok=True)
            last_error = err
            continue
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if digest != sha1.lower():
            partial.unlink(missing_ok=True)
            raise DataError(
                f"downloaded {url} but its SHA-1 is {digest}, expected {sha1}; "
                f"nothing was kept; {hint}"
            )
        os.replace(partial, dest)
        return dest
    attempts = attempt + 1
    raise DataError(
        f"could not download {url} to {dest} after {attempts} "
        f"attempt{'s' if attempts != 1 else ''} ({last_error!r}); {hint}"
    )


def cache_dir() -> Path:
    """Folder for downloaded data: ``$MINIS2S_CACHE`` or ``~/.cache/minis2s``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "minis2s"


def resolve_data_path(
    arg: PathLike | None = None,
    *,
    opener: Opener = urllib.request.urlopen,
    sleep: Callable[[float], Any] = time.sleep,
    warn: Warn = _warn_stderr,
) -> Path:
    """Find the corpus: ``arg``, else ``$MINIS2S_DATA``, else the cache, else download it."""
    if arg is not None and str(arg) != "":
        path = Path(arg).expanduser()
        if not path.exists():
            raise DataError(f"{path}: data file not found")
        return path
    env = os.environ.get(ENV_DATA)
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise DataError(f"{path}: data file not found (from {ENV_DATA})")
        return path
    cached = cache_dir() / DATA_FILENAME
    if cached.is_file():
        return cached
    warn(f"minis2s: downloading {DATA_URL} to {cached}")
    return download(DATA_URL, cached, DATA_SHA1, opener=opener, sleep=sleep)
