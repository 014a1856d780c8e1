"""Checkpoints hold arrays and text only, are written atomically, and are validated."""

import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis2s import checkpoint
from minis2s.backend import get_backend, to_numpy
from minis2s.checkpoint import Checkpoint, CheckpointError
from minis2s.data import RESERVED_TOKENS, Vocab
from minis2s.model import ModelConfig, init_params, param_shapes


@pytest.fixture
def ck():
    src = Vocab([["go", "go", "run", "run", "é", "é"]])
    tgt = Vocab([["va", "va", "cours", "cours"]])
    cfg = ModelConfig(len(src), len(tgt), 3, 4, 2, 0.1, True)
    params = init_params(cfg, get_backend("numpy"), np.random.default_rng(0))
    return Checkpoint({k: to_numpy(v).copy() for k, v in params.items()}, cfg, 7, src, tgt,
                      {"num_examples": 10}, {"epochs": 1})


def rewrite(path, mutate):
    """Load a checkpoint's raw entries, change them, and write them back."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mutate(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize(("cell", "model"), [("gru", "seq2seq"), ("lstm", "seq2seq"),
                                             ("rnn", "seq2seq"), ("gru", "attention"),
                                             ("lstm", "attention")])
def test_round_trip(tmp_path, ck, cell, model):
    if (cell, model) != (ck.config.cell, ck.config.model):
        cfg = replace(ck.config, cell=cell, model=model)
        params = init_params(cfg, get_backend("numpy"), np.random.default_rng(1))
        ck = replace(ck, config=cfg, params={k: to_numpy(v).copy() for k, v in params.items()})
    path = checkpoint.save(tmp_path / "a" / "checkpoint.npz", ck)
    back = checkpoint.load(path)
    assert back.config == ck.config and back.num_steps == 7
    assert (back.config.cell, back.config.model) == (cell, model)
    assert back.src_vocab.idx_to_token == ck.src_vocab.idx_to_token
    assert back.tgt_vocab.idx_to_token == ck.tgt_vocab.idx_to_token
    assert set(back.params) == set(ck.params)
    for k, v in ck.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    meta = json.loads(str(np.load(path, allow_pickle=False)["meta"]))
    assert meta["format_version"] == 1
    assert set(meta["config"]) == {"embed_size", "num_hiddens", "num_layers", "dropout",
                                   "num_steps", "bidirectional", "cell", "model"}
    assert not list(tmp_path.glob("a/*.tmp"))


def test_a_checkpoint_without_cell_or_model_loads_as_the_seeds_gru(tmp_path, ck):
    path = checkpoint.save(tmp_path / "c.npz", ck)
    config = json.loads(str(np.load(path, allow_pickle=False)["meta"]))["config"]
    assert (config["cell"], config["model"]) == ("gru", "seq2seq")

    def drop(arrays):
        meta = json.loads(str(arrays["meta"]))
        del meta["config"]["cell"], meta["config"]["model"]
        arrays["meta"] = np.array(json.dumps(meta))

    rewrite(path, drop)
    back = checkpoint.load(path)
    assert back.config == ck.config
    assert (back.config.cell, back.config.model) == ("gru", "seq2seq")


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda a: a.pop("decoder.attention.W_q.weight"),
     "parameter decoder.attention.W_q.weight is missing"),
    (lambda a: a.__setitem__("decoder.attention.w_v.weight", np.zeros((2, 4))),
     r"decoder.attention.w_v.weight has shape \(2, 4\), the config and vocabularies "
     r"need \(1, 4\)"),
    (lambda a: a.__setitem__("decoder.attention.W_k.weight", np.zeros((4, 3))),
     "decoder.attention.W_k.weight has shape"),
])
def test_an_attention_checkpoint_with_a_bad_attention_weight_is_refused(tmp_path, ck,
                                                                          spoil, message):
    cfg = replace(ck.config, model="attention")
    params = init_params(cfg, get_backend("numpy"), np.random.default_rng(2))
    ck = replace(ck, config=cfg, params={k: to_numpy(v).copy() for k, v in params.items()})
    path = checkpoint.save(tmp_path / "c.npz", ck)
    assert checkpoint.load(path).config.model == "attention"
    rewrite(path, spoil)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


def test_a_seq2seq_checkpoint_with_attention_weights_is_refused(tmp_path, ck):
    """Weights that the config does not call for are not silently dropped."""
    path = checkpoint.save(tmp_path / "c.npz", ck)
    rewrite(path, lambda a: a.__setitem__("decoder.attention.W_q.weight", np.zeros((4, 8))))
    with pytest.raises(CheckpointError, match="unexpected entries decoder.attention.W_q"):
        checkpoint.load(path)


def test_pickled_object_is_refused(tmp_path, ck):
    path = checkpoint.save(tmp_path / "c.npz", ck)
    rewrite(path, lambda a: a.__setitem__("decoder.dense.bias",
                                          np.array([{"evil": 1}], dtype=object)))
    with pytest.raises(CheckpointError, match="pickled"):
        checkpoint.load(path)


def test_truncated_file(tmp_path, ck):
    path = checkpoint.save(tmp_path / "c.npz", ck)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        checkpoint.load(path)


@pytest.mark.parametrize("content", [b"hello", b"x", b"", b"\x93NUMPY"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "c.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable .npz checkpoint"):
        checkpoint.load(path)


def _set_meta(key, value):
    def mutate(arrays):
        meta = json.loads(str(arrays["meta"]))
        meta[key] = value
        arrays["meta"] = np.array(json.dumps(meta))
    return mutate


# each: how the saved file is spoiled (made from the checkpoint), what the error must name
SPOILED = {
    "wrong format version": (lambda ck: _set_meta("format_version", 99), "format_version 99"),
    "missing parameter": (lambda ck: lambda a: a.pop("encoder.rnn.weight_hh_l1_reverse"),
                          "weight_hh_l1_reverse is missing"),
    "misshaped parameter": (
        lambda ck: lambda a: a.__setitem__("decoder.dense.bias", np.zeros(3)),
        "decoder.dense.bias has shape"),
    "vocabulary that does not match the shapes": (
        lambda ck: _set_meta("tgt_vocab", [*ck.tgt_vocab.idx_to_token, "extra"]), "shape"),
    "bad vocabulary": (lambda ck: _set_meta("src_vocab", ["a", "b"]),
                       r"vocabulary must start with \['<unk>', '<pad>', '<bos>', '<eos>'\], "
                       r"got \['a', 'b'\]"),
    "missing meta": (lambda ck: lambda a: a.pop("meta"), "meta"),
}


@pytest.mark.parametrize("case", list(SPOILED))
def test_spoiled_file_is_refused(tmp_path, ck, case):
    spoil, message = SPOILED[case]
    path = checkpoint.save(tmp_path / "c.npz", ck)
    rewrite(path, spoil(ck))
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights(tmp_path, ck, bad):
    ck.params["encoder.embedding.weight"][1, 2] = bad
    path = checkpoint.save(tmp_path / "c.npz", ck)
    with pytest.raises(CheckpointError, match="NaN or Inf"):
        checkpoint.load(path)


def test_save_failure_keeps_the_previous_file(tmp_path, ck, monkeypatch):
    path = checkpoint.save(tmp_path / "c.npz", ck)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, ck)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    assert zipfile.is_zipfile(path)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=6)
# for each place in meta, values a loader could take: counts, dropout-like numbers, flags
# (and the numbers 0 and 1, and true and false, that JSON keeps apart from them), and
# vocabularies that start with the reserved tokens (some the saved length, some not)
_VOCAB = st.lists(st.sampled_from(["go", "run", "é", "va", "cours", "<unk>", "x"]),
                  min_size=1, max_size=4).map(lambda tail: [*RESERVED_TOKENS, *tail])
_FREE = st.dictionaries(st.text(max_size=4), _JSON)
_PLAUSIBLE = {"format_version": st.integers(0, 2) | st.booleans(),
              "src_vocab": _VOCAB, "tgt_vocab": _VOCAB,
              "embed_size": st.integers(-1, 5) | st.booleans(),
              "num_hiddens": st.integers(-1, 5) | st.booleans(),
              "num_layers": st.integers(-1, 3) | st.booleans(),
              "num_steps": st.integers(-1, 12) | st.booleans(),
              "dropout": st.floats(-0.25, 1.25) | st.sampled_from([0, 1, 0.5]) | st.booleans(),
              "bidirectional": st.booleans() | st.integers(0, 1),
              "cell": st.sampled_from(["gru", "lstm", "rnn", "GRU", "", "transformer"])
              | st.none() | st.integers(0, 2),
              "model": st.sampled_from(["seq2seq", "attention", "Attention", ""]) | st.none(),
              "data": _FREE, "training": _FREE}
_CONFIG = [("config", k) for k in (*checkpoint.CONFIG_KEYS, "cell", "model")]
_WHERE = st.sampled_from([(), ("format_version",), ("config",), ("src_vocab",),
                          ("tgt_vocab",), ("data",), ("training",), *_CONFIG, *_CONFIG])
_FUZZ = settings(max_examples=120, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def _assert_same_params(back, ck):
    """The loaded parameters are the saved ones: same names, dtypes, shapes and bytes."""
    assert set(back.params) == set(ck.params)
    for name, want in ck.params.items():
        got = back.params[name]
        assert got.dtype == want.dtype, name
        assert np.array_equal(got, want), name
    assert back.extra == {}


def _assert_loaded_as_meta_says(back, ck, meta):
    """A load that succeeds returns exactly what ``meta`` (the file's, as stored) says.

    ``data`` and ``training`` are optional: absent, or any false JSON value (null, {}, [], 0,
    ""), they load as ``{}``; otherwise (the loader requires an object) as they are.
    """
    assert isinstance(meta, dict) and meta["format_version"] == checkpoint.FORMAT_VERSION
    c = meta["config"]
    for key in ("embed_size", "num_hiddens", "num_layers"):
        got = getattr(back.config, key)
        assert type(got) is int and type(c[key]) is int and got == c[key], key
    assert type(back.num_steps) is int and type(c["num_steps"]) is int
    assert back.num_steps == c["num_steps"]
    assert type(c["dropout"]) in (int, float) and type(back.config.dropout) is float
    assert back.config.dropout == c["dropout"]
    assert type(c["bidirectional"]) is bool and back.config.bidirectional is c["bidirectional"]
    assert back.config.cell == c.get("cell", "gru")  # a file without "cell" holds a GRU
    assert back.config.model == c.get("model", "seq2seq")
    assert back.src_vocab.idx_to_token == meta["src_vocab"]
    assert back.tgt_vocab.idx_to_token == meta["tgt_vocab"]
    assert back.config.src_vocab_size == len(meta["src_vocab"])
    assert back.config.tgt_vocab_size == len(meta["tgt_vocab"])
    assert back.data == (meta.get("data") or {})
    assert back.training == (meta.get("training") or {})
    _assert_same_params(back, ck)
    assert {k: v.shape for k, v in back.params.items()} == param_shapes(back.config)


@_FUZZ
@given(where=_WHERE, data=st.data())
def test_any_malformed_meta_is_refused_or_loads_as_it_says(tmp_path, ck, where, data):
    """Each spoiled meta is either refused with CheckpointError, or loads as exactly what it
    says (e.g. another dropout or num_steps, free JSON under data/training) with the saved
    parameters unchanged. Any other exception, or a load that departs from the meta, fails."""
    plausible = _PLAUSIBLE.get(where[-1] if where else "", _JSON)
    value = data.draw(plausible if data.draw(st.integers(0, 3)) else _JSON)  # mostly plausible
    path = checkpoint.save(tmp_path / "c.npz", ck)

    def mutate(arrays):
        meta = json.loads(str(arrays["meta"]))
        if not where:
            meta = value
        else:
            target = meta
            for key in where[:-1]:
                target = target[key]
            target[where[-1]] = value
        arrays["meta"] = np.array(json.dumps(meta))

    rewrite(path, mutate)
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
    try:
        back = checkpoint.load(path)
    except CheckpointError:
        return
    _assert_loaded_as_meta_says(back, ck, meta)


@_FUZZ
@given(data=st.data())
def test_any_corrupted_byte_is_refused_or_harmless(tmp_path, ck, data):
    """A corrupted or truncated file is refused with CheckpointError, or (the bytes changed
    did not matter, e.g. a zip timestamp) loads as exactly the checkpoint saved. Any other
    exception fails."""
    path = checkpoint.save(tmp_path / "c.npz", ck)
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    # half of the files keep their full length, so that the changed bytes are what is read
    cut = data.draw(st.just(len(raw)) | st.integers(1, len(raw) - 1))
    path.write_bytes(bytes(raw[:cut]))
    try:
        back = checkpoint.load(path)
    except CheckpointError:
        return
    assert back.config == ck.config and back.num_steps == ck.num_steps
    assert back.src_vocab.idx_to_token == ck.src_vocab.idx_to_token
    assert back.tgt_vocab.idx_to_token == ck.tgt_vocab.idx_to_token
    assert back.data == ck.data and back.training == ck.training
    _assert_same_params(back, ck)


# (offset in a central-directory entry, byte written there): zip features zipfile refuses
# with NotImplementedError or RuntimeError rather than BadZipFile
UNSUPPORTED_ZIP = {
    "version needed to extract": (6, 0xFF),
    "encrypted": (8, 0x01),
    "strongly encrypted": (8, 0x41),
    "compressed patched data": (8, 0x20),
    "unknown compression method": (10, 99),
}


@pytest.mark.parametrize("case", list(UNSUPPORTED_ZIP))
def test_unsupported_zip_feature_is_a_checkpoint_error(tmp_path, ck, case):
    offset, byte = UNSUPPORTED_ZIP[case]
    path = checkpoint.save(tmp_path / "c.npz", ck)
    with zipfile.ZipFile(path) as z:
        start = z.start_dir
    raw = bytearray(path.read_bytes())
    assert raw[start:start + 4] == b"PK\x01\x02"  # the first central-directory entry
    raw[start + offset] = byte
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="not a readable .npz checkpoint"):
        checkpoint.load(path)


def test_saved_file_has_ordinary_permissions(tmp_path, ck):
    import os

    umask = os.umask(0o022)
    try:
        path = checkpoint.save(tmp_path / "c.npz", ck)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
