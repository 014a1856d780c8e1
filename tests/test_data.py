"""Tests for reading, cleaning, indexing, splitting and fetching the corpus."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis2s import data
from minis2s.data import (
    Batch,
    DataError,
    DataSpec,
    Vocab,
    build_array,
    download,
    fetch,
    files,
    iterate_batches,
    load_data,
    preprocess,
    read_pairs,
    resolve_data_path,
    split_pairs,
    tokenize,
)


class Recorder:
    """Collects warning lines instead of printing them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)


def write(tmp_path: Path, content: str | bytes, name: str = "fra.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def make_zip(tmp_path: Path, members: dict[str, bytes], name: str = "corpus.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, payload in members.items():
            zf.writestr(member, payload)
    return path


SMALL = "Go.\tVa !\nHi.\tSalut !\nRun!\tCours\u202f!\n"
SMALL_PAIRS = [
    (["go", "."], ["va", "!"]),
    (["hi", "."], ["salut", "!"]),
    (["run", "!"], ["cours", "!"]),
]


# ----------------------------------------------------------------------------- text rules


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Go.", "go ."),
        ("Hi, you!", "hi , you !"),
        ("Va !", "va !"),
        ("Cours\u202f!", "cours !"),
        ("A\xa0B", "a b"),
        (".Start", ".start"),  # position 0 is never prefixed
        ("Wait...", "wait . . ."),
        ("Why?!", "why ? !"),
        ("ÉTÉ.", "été ."),
    ],
)
def test_preprocess(raw: str, expected: str) -> None:
    assert preprocess(raw) == expected


def test_tokenize_ignores_repeated_whitespace() -> None:
    assert tokenize("  go  . ") == ["go", "."]
    assert tokenize("") == []


# ----------------------------------------------------------------------------- reading text


def test_read_two_columns(tmp_path: Path) -> None:
    warn = Recorder()
    assert read_pairs(write(tmp_path, SMALL), warn=warn) == SMALL_PAIRS
    assert warn.lines == []


def test_read_three_columns_uses_first_two(tmp_path: Path) -> None:
    text = "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272\n"
    assert read_pairs(write(tmp_path, text)) == [(["go", "."], ["va", "!"])]


def test_crlf_and_bom(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbf" + SMALL.replace("\n", "\r\n").encode("utf-8")
    warn = Recorder()
    assert read_pairs(write(tmp_path, raw), warn=warn) == SMALL_PAIRS
    assert warn.lines == []


def test_no_final_newline(tmp_path: Path) -> None:
    assert read_pairs(write(tmp_path, SMALL.rstrip("\n"))) == SMALL_PAIRS


def test_skipped_lines_are_reported_once(tmp_path: Path) -> None:
    text = "Go.\tVa !\n\nno tab here\nalso none\n\tempty source\nHi.\t  \nHi.\tSalut !\n"
    warn = Recorder()
    pairs = read_pairs(write(tmp_path, text), warn=warn)
    assert pairs == [(["go", "."], ["va", "!"]), (["hi", "."], ["salut", "!"])]
    assert warn.lines == [
        "minis2s: skipped 5 lines of fra.txt (1 blank, 2 without a tab, 2 with an empty side)"
    ]


def test_skip_message_omits_zero_categories(tmp_path: Path) -> None:
    warn = Recorder()
    read_pairs(write(tmp_path, "Go.\tVa !\njunk\n"), warn=warn)
    assert warn.lines == ["minis2s: skipped 1 line of fra.txt (1 without a tab)"]


def test_trailing_blank_line_is_skipped_but_final_newline_is_not(tmp_path: Path) -> None:
    warn = Recorder()
    read_pairs(write(tmp_path, "Go.\tVa !\n\n"), warn=warn)
    assert warn.lines == ["minis2s: skipped 1 line of fra.txt (1 blank)"]


def test_default_warning_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    read_pairs(write(tmp_path, "Go.\tVa !\njunk\n"))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "minis2s: skipped 1 line of fra.txt (1 without a tab)\n"


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    raw = b"Go.\tVa !\nHi.\tSalut !\nBad\t\xff\xfe\n"
    with pytest.raises(DataError, match=r"fra\.txt: line 3: invalid UTF-8"):
        read_pairs(write(tmp_path, raw))


def test_nothing_valid(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no valid"):
        read_pairs(write(tmp_path, "just words\n\n\t\n"), warn=Recorder())
    with pytest.raises(DataError, match="no valid"):
        read_pairs(write(tmp_path, ""))


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match="nope.txt"):
        read_pairs(missing)
    with pytest.raises(DataError, match="not a regular file"):
        read_pairs(tmp_path)


def test_num_examples_counts_every_line(tmp_path: Path) -> None:
    lines = [f"e{i}\tf{i}" for i in range(10)]
    lines[2] = "skipped line"
    path = write(tmp_path, "\n".join(lines) + "\n")
    warn = Recorder()
    pairs = read_pairs(path, num_examples=4, warn=warn)
    # lines 0..4 are read (index <= 4); line 2 is skipped
    assert [p[0][0] for p in pairs] == ["e0", "e1", "e3", "e4"]
    assert warn.lines == ["minis2s: skipped 1 line of fra.txt (1 without a tab)"]
    assert len(read_pairs(path, num_examples=0)) == 1
    assert len(read_pairs(path, num_examples=100, warn=warn)) == 9
    assert len(read_pairs(path, warn=warn)) == 9
    with pytest.raises(DataError):
        read_pairs(path, num_examples=-1)


def test_num_examples_stops_before_later_bad_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, b"Go.\tVa !\nHi.\tSalut !\n\xff\n")
    assert len(read_pairs(path, num_examples=1)) == 2


# ----------------------------------------------------------------------------- reading zips


def test_zip_with_expected_member(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path, {"fra-eng/_about.txt": b"about", "fra-eng/fra.txt": SMALL.encode("utf-8")}
    )
    assert read_pairs(path) == SMALL_PAIRS


def test_zip_with_single_other_fra_member(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"data/fra.txt": SMALL.encode("utf-8"), "README": b"x"})
    assert read_pairs(path) == SMALL_PAIRS


def test_zip_skip_message_names_member(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"fra-eng/fra.txt": b"Go.\tVa !\njunk\n"})
    warn = Recorder()
    read_pairs(path, warn=warn)
    assert warn.lines == ["minis2s: skipped 1 line of fra.txt (1 without a tab)"]


def test_zip_bad_utf8_names_member_and_line(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"fra-eng/fra.txt": b"Go.\tVa !\n\xc3\n"})
    with pytest.raises(DataError, match=r"fra-eng/fra\.txt: line 2"):
        read_pairs(path)


def test_zip_missing_member_lists_members(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"fra-eng/_about.txt": b"about", "other.txt": b"x"})
    with pytest.raises(DataError, match=r"_about\.txt.*other\.txt"):
        read_pairs(path)


def test_zip_with_two_candidates_is_ambiguous(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"a/fra.txt": b"Go.\tVa !\n", "b/fra.txt": b"Go.\tVa !\n"})
    with pytest.raises(DataError, match="members"):
        read_pairs(path)


@pytest.mark.parametrize("evil", ["../evil", "fra-eng/../../fra.txt", "/etc/fra.txt", "C:/x"])
def test_zip_unsafe_member_names(tmp_path: Path, evil: str) -> None:
    path = make_zip(tmp_path, {"fra-eng/fra.txt": SMALL.encode("utf-8"), evil: b"x"})
    with pytest.raises(DataError, match="unsafe member"):
        read_pairs(path)


def test_zip_compression_ratio_refused(tmp_path: Path) -> None:
    payload = b"Go.\tVa !\n" + b"\0" * 3_000_000
    path = make_zip(tmp_path, {"fra-eng/fra.txt": payload})
    with pytest.raises(DataError, match="compression ratio"):
        read_pairs(path)


def test_zip_uncompressed_size_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_zip(tmp_path, {"fra-eng/fra.txt": SMALL.encode("utf-8")})
    monkeypatch.setattr(files, "MAX_MEMBER_SIZE", 10)
    with pytest.raises(DataError, match="uncompressed size"):
        read_pairs(path)


def test_not_a_zip(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL, name="corpus.zip")
    with pytest.raises(DataError, match="not a valid zip"):
        read_pairs(path)


def test_corrupt_zip_data(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"fra-eng/fra.txt": (SMALL * 50).encode("utf-8")})
    raw = bytearray(path.read_bytes())
    offset = raw.index(b"fra-eng/fra.txt") + len("fra-eng/fra.txt") + 10
    raw[offset : offset + 20] = b"\xff" * 20
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError):
        read_pairs(path)


# ----------------------------------------------------------------------------- robustness

_TEXT = st.text(
    alphabet=st.sampled_from(list("ab .,!?\t\n\r\ufeff\u202f\xa0 É\x0b\x85\u2028"))
    | st.characters(),
    max_size=200,
)
_PIECES = [b"a", b"\t", b"\n", b"\r", b"\xff", b"\xef\xbb\xbf", b"\xc3", b"\xe2\x80\xaf", b"."]
_BYTES = st.binary(max_size=200) | st.lists(st.sampled_from(_PIECES), max_size=60).map(b"".join)


def _check_result(path: Path) -> None:
    try:
        pairs = read_pairs(path, warn=Recorder())
    except DataError:
        return
    assert isinstance(pairs, list) and pairs
    for src, tgt in pairs:
        assert src and tgt
        assert all(isinstance(t, str) and t and not any(c.isspace() for c in t) for t in src)
        assert all(isinstance(t, str) and t and not any(c.isspace() for c in t) for t in tgt)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_TEXT)
def test_property_random_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "random.txt"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    _check_result(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=_BYTES)
def test_property_random_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "random.txt"
    path.write_bytes(raw)
    _check_result(path)


# ----------------------------------------------------------------------------- vocabulary


def test_vocab_order_min_freq_and_ties() -> None:
    sentences = [["b", "a", "c"], ["a", "b", "d"], ["c", "e", "a"], ["e"]]
    # counts: a=3, b=2, c=2, e=2, d=1; ties b, c, e keep first-seen order
    vocab = Vocab(sentences, min_freq=2)
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", "a", "b", "c", "e"]
    assert (vocab.unk, vocab.pad, vocab.bos, vocab.eos) == (0, 1, 2, 3)
    assert len(vocab) == 8
    assert vocab["a"] == 4
    assert vocab["d"] == 0
    assert vocab[["c", "zzz"]] == [6, 0]
    assert vocab[("e",)] == [7]
    assert vocab.to_tokens(5) == "b"
    assert vocab.to_tokens(np.int64(5)) == "b"
    assert vocab.to_tokens([4, 0, 3]) == ["a", "<unk>", "<eos>"]
    assert vocab.to_tokens(np.array([6, 7])) == ["c", "e"]
    assert Vocab(sentences, min_freq=1)["d"] == 8
    assert len(Vocab(sentences, min_freq=4)) == 4


def test_vocab_does_not_duplicate_reserved_tokens() -> None:
    vocab = Vocab([["<pad>", "<pad>", "x", "x"]])
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", "x"]


def test_vocab_from_tokens_round_trip() -> None:
    vocab = Vocab([["x", "y", "x", "y", "z", "z"]])
    again = Vocab.from_tokens(vocab.idx_to_token)
    assert again.idx_to_token == vocab.idx_to_token
    assert again.token_to_idx == vocab.token_to_idx
    assert again["z"] == vocab["z"]


@pytest.mark.parametrize(
    "tokens",
    [
        ["<pad>", "<unk>", "<bos>", "<eos>"],
        ["<unk>", "<pad>", "<bos>"],
        ["<unk>", "<pad>", "<bos>", "<eos>", "a", "a"],
        ["<unk>", "<pad>", "<bos>", "<eos>", 5],
    ],
)
def test_vocab_from_tokens_rejects_bad_lists(tokens: list) -> None:
    with pytest.raises(DataError):
        Vocab.from_tokens(tokens)


# ----------------------------------------------------------------------------- arrays


def test_build_array_eos_pad_truncate() -> None:
    vocab = Vocab([["a", "b", "c"]] * 2)  # a=4, b=5, c=6
    array, valid_len = build_array([["a"], ["a", "b", "c"], ["c", "x"], []], vocab, 3)
    assert array.dtype == np.int64 and valid_len.dtype == np.int64
    assert array.tolist() == [[4, 3, 1], [4, 5, 6], [6, 0, 3], [3, 1, 1]]
    assert valid_len.tolist() == [2, 3, 3, 1]
    empty, empty_len = build_array([], vocab, 5)
    assert empty.shape == (0, 5) and empty_len.shape == (0,)
    with pytest.raises(ValueError):
        build_array([["a"]], vocab, 0)


# ----------------------------------------------------------------------------- splits


def _pairs(n: int) -> list[tuple[list[str], list[str]]]:
    return [([f"s{i}", "."], [f"t{i}", "!"]) for i in range(n)]


def test_split_all_train_keeps_order() -> None:
    split = split_pairs(_pairs(5), 0, 0, seed=3)
    assert split.train_src == [p[0] for p in _pairs(5)]
    assert split.train_tgt == [p[1] for p in _pairs(5)]
    assert split.valid_src == split.test_src == []


def test_split_counts_fractions_and_determinism() -> None:
    pairs = _pairs(100)
    a = split_pairs(pairs, 10, 0.2, seed=7)
    b = split_pairs(pairs, 10, 0.2, seed=7)
    c = split_pairs(pairs, 10, 0.2, seed=8)
    assert a == b
    assert a != c
    assert (len(a.train_src), len(a.valid_src), len(a.test_src)) == (70, 10, 20)
    everything = a.train_src + a.valid_src + a.test_src
    assert sorted(s[0] for s in everything) == sorted(p[0][0] for p in pairs)
    for src, tgt in zip(a.valid_src, a.valid_tgt, strict=True):
        assert src[0][1:] == tgt[0][1:]  # pairs stay aligned


@pytest.mark.parametrize(("valid", "test"), [(5, 5), (-1, 0), (0, 1.5), (0.6, 0.4)])
def test_split_rejects_bad_sizes(valid: float, test: float) -> None:
    with pytest.raises(DataError):
        split_pairs(_pairs(10), valid, test, seed=0)


def test_load_data_builds_vocab_from_train_only(tmp_path: Path) -> None:
    # "common" appears in every pair; each "onlyN" word appears twice within one pair.
    lines = [f"common only{i} only{i}\tcommun seul{i} seul{i}" for i in range(20)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    spec = DataSpec(num_steps=6, valid_size=5, test_size=5, split_seed=1)
    result = load_data(path, spec)
    assert len(result.train) == 10 and len(result.valid) == 5 and len(result.test) == 5
    train_words = {t for s in result.train.src_tokens for t in s}
    held_out = {t for s in result.valid.src_tokens + result.test.src_tokens for t in s}
    for word in held_out - {"common"}:
        assert word not in train_words
        assert result.src_vocab[word] == result.src_vocab.unk
    assert all(result.src_vocab[w] != 0 for w in train_words)
    assert result.train.src.shape == (10, 6)
    assert result.test.tgt_valid_len.tolist() == [4] * 5
    # the held-out arrays map unseen words to <unk>
    assert (result.valid.src[:, 1:3] == result.src_vocab.unk).all()
    assert result.spec.num_steps == 6
    assert result.spec == spec


# ----------------------------------------------------------------------------- batches


def _part(n: int):
    vocab = Vocab([[str(i) for i in range(n)]] * 2)
    tokens = [[str(i)] for i in range(n)]
    return data.make_part(tokens, tokens, vocab, vocab, 3)


def test_batches_cover_every_row_once_and_keep_last_partial() -> None:
    part = _part(23)
    batches = list(iterate_batches(part, 5, np.random.default_rng(0), bos=2))
    assert [len(b.src) for b in batches] == [5, 5, 5, 5, 3]
    assert all(isinstance(b, Batch) for b in batches)
    rows = np.concatenate([b.src[:, 0] for b in batches])
    assert sorted(rows.tolist()) == sorted(part.src[:, 0].tolist())
    for b in batches:
        assert b.src.shape[1] == 3 and b.tgt.shape == b.src.shape
        assert (b.src == b.tgt).all() and (b.src_valid_len == b.tgt_valid_len).all()


def test_batches_reproducible_and_independent_of_global_rng() -> None:
    part = _part(30)

    def order(seed: int) -> list[int]:
        gen = np.random.default_rng(seed)
        return np.concatenate([b.src[:, 0] for b in iterate_batches(part, 4, gen, bos=2)]).tolist()

    np.random.seed(1)
    first = order(42)
    np.random.seed(2)
    assert order(42) == first
    assert order(43) != first
    plain = list(iterate_batches(part, 7, None, shuffle=False, bos=2))
    assert np.concatenate([b.src for b in plain]).tolist() == part.src.tolist()
    with pytest.raises(ValueError):
        next(iterate_batches(part, 0, np.random.default_rng(0), bos=2))


def test_batch_carries_the_decoder_input_and_the_packing() -> None:
    """Made once on the host: <bos> then the target shifted right; rows sorted by target
    length (ties in batch order); the valid positions step-major."""
    tgt = np.array([[5, 6, 3, 1], [7, 3, 1, 1], [8, 9, 9, 3]])
    batch = data.make_batch(np.zeros((3, 2), int), [2, 2, 2], tgt, [3, 2, 4], bos=2)
    np.testing.assert_array_equal(batch.tgt_in, [[2, 5, 6, 3], [2, 7, 3, 1], [2, 8, 9, 9]])
    p = batch.packing
    assert p.order.tolist() == [2, 0, 1] and p.batch_sizes == [3, 3, 2, 1]
    assert list(zip(p.steps.tolist(), p.rows.tolist())) == [
        (0, 2), (0, 0), (0, 1), (1, 2), (1, 0), (1, 1), (2, 2), (2, 0), (3, 2)]
    assert batch.num_tokens == 9 == int(batch.tgt_valid_len.sum())
    moved = batch.to(np)
    assert moved.packing.batch_sizes == p.batch_sizes
    np.testing.assert_array_equal(moved.packing.rows, p.rows)
    empty = data.make_batch(np.zeros((2, 2), int), [1, 1], tgt[:2], [0, 0], bos=2)
    assert empty.packing.batch_sizes == [] and empty.num_tokens == 0


# ----------------------------------------------------------------------------- download

PAYLOAD = b"fake zip bytes " * 1000
PAYLOAD_SHA1 = hashlib.sha1(PAYLOAD).hexdigest()
URL = "http://example.invalid/fra-eng.zip"


class FakeResponse(io.BytesIO):
    """An in-memory HTTP response, optionally announcing a different length."""

    def __init__(self, body: bytes, length: int | None = None) -> None:
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body) if length is None else length)}


class FakeOpener:
    """Plays back a script of responses and exceptions, one per call."""

    def __init__(self, *script: bytes | FakeResponse | BaseException) -> None:
        self.script = list(script)
        self.calls: list[str] = []

    def __call__(self, url: str, timeout: float | None = None) -> FakeResponse:
        self.calls.append(url)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, bytes):
            return FakeResponse(step)
        return step


def test_download_success_renames(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "fra-eng.zip"
    sleeps: list[float] = []
    opener = FakeOpener(PAYLOAD)
    assert download(URL, dest, PAYLOAD_SHA1, opener=opener, sleep=sleeps.append) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "cache" / "fra-eng.zip.partial").exists()
    assert sleeps == [] and opener.calls == [URL]


def test_download_checksum_mismatch_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "fra-eng.zip"
    with pytest.raises(DataError, match="SHA-1"):
        download(URL, dest, "0" * 40, opener=FakeOpener(PAYLOAD), sleep=lambda s: None)
    assert os.listdir(tmp_path) == []


def test_download_retries_transient_failures(tmp_path: Path) -> None:
    dest = tmp_path / "fra-eng.zip"
    sleeps: list[float] = []
    opener = FakeOpener(
        urllib.error.URLError("temporary failure"),
        FakeResponse(PAYLOAD[:100], length=len(PAYLOAD)),  # truncated body
        ConnectionResetError("reset"),
        PAYLOAD,
    )
    download(URL, dest, PAYLOAD_SHA1, opener=opener, sleep=sleeps.append)
    assert dest.read_bytes() == PAYLOAD
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(opener.calls) == 4
    assert sorted(os.listdir(tmp_path)) == ["fra-eng.zip"]


def test_download_gives_up_after_retries(tmp_path: Path) -> None:
    dest = tmp_path / "fra-eng.zip"
    sleeps: list[float] = []
    opener = FakeOpener(http.client.IncompleteRead(b"", 5), TimeoutError("slow"))
    with pytest.raises(DataError, match=r"after 4 attempts.*--data.*MINIS2S_DATA"):
        download(URL, dest, PAYLOAD_SHA1, opener=opener, sleep=sleeps.append)
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(opener.calls) == 4
    assert os.listdir(tmp_path) == []


def test_download_does_not_retry_client_errors(tmp_path: Path) -> None:
    err = urllib.error.HTTPError(URL, 404, "Not Found", {}, None)  # type: ignore[arg-type]
    opener = FakeOpener(err)
    with pytest.raises(DataError, match="after 1 attempt"):
        download(URL, tmp_path / "x.zip", PAYLOAD_SHA1, opener=opener, sleep=lambda s: None)
    assert len(opener.calls) == 1


# ----------------------------------------------------------------------------- resolving


def test_resolve_prefers_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given_path = write(tmp_path, SMALL)
    monkeypatch.setenv("MINIS2S_DATA", str(tmp_path / "elsewhere"))
    assert resolve_data_path(str(given_path)) == given_path
    with pytest.raises(DataError, match="missing.zip"):
        resolve_data_path(str(tmp_path / "missing.zip"))


def test_resolve_env_then_cache_then_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = write(tmp_path, SMALL)
    monkeypatch.setenv("MINIS2S_DATA", str(env_file))
    assert resolve_data_path(None) == env_file
    monkeypatch.setenv("MINIS2S_DATA", str(tmp_path / "gone.zip"))
    with pytest.raises(DataError, match="MINIS2S_DATA"):
        resolve_data_path(None)

    monkeypatch.delenv("MINIS2S_DATA")
    cache = tmp_path / "cache"
    monkeypatch.setenv("MINIS2S_CACHE", str(cache))
    monkeypatch.setattr(fetch, "DATA_SHA1", PAYLOAD_SHA1)
    opener = FakeOpener(PAYLOAD)
    warn = Recorder()
    got = resolve_data_path(None, opener=opener, sleep=lambda s: None, warn=warn)
    assert got == cache / "fra-eng.zip" and got.read_bytes() == PAYLOAD
    assert opener.calls == [data.DATA_URL]
    assert len(warn.lines) == 1 and "downloading" in warn.lines[0]
    # second time the cached copy is used without any network access
    refuse = FakeOpener(AssertionError("network used"))
    assert resolve_data_path(None, opener=refuse) == got
    assert refuse.calls == []


# ----------------------------------------------------------------------------- real corpus


@pytest.mark.skipif(not os.environ.get("MINIS2S_DATA"), reason="MINIS2S_DATA not set")
def test_real_corpus() -> None:
    path = os.environ["MINIS2S_DATA"]
    pairs = read_pairs(path, num_examples=600)
    assert len(pairs) == 601
    assert pairs[0] == (["go", "."], ["va", "!"])
    tgt_vocab = Vocab([tgt for _, tgt in pairs], min_freq=2)
    assert tgt_vocab.idx_to_token[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    result = load_data(path, DataSpec(num_steps=8, num_examples=600))
    assert result.train.src.shape == (601, 8)
    assert len(result.tgt_vocab) == len(tgt_vocab)
