"""Checkpoints hold arrays and text only, are written atomically, and are validated."""

import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis2s import checkpoint
from minis2s.backend import get_backend, to_numpy
from minis2s.checkpoint import Checkpoint, CheckpointError
from minis2s.data import Vocab
from minis2s.model import ModelConfig, init_params


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


def test_round_trip(tmp_path, ck):
    path = checkpoint.save(tmp_path / "a" / "checkpoint.npz", ck)
    back = checkpoint.load(path)
    assert back.config == ck.config and back.num_steps == 7
    assert back.src_vocab.idx_to_token == ck.src_vocab.idx_to_token
    assert back.tgt_vocab.idx_to_token == ck.tgt_vocab.idx_to_token
    for k, v in ck.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    meta = json.loads(str(np.load(path, allow_pickle=False)["meta"]))
    assert meta["format_version"] == 1
    assert set(meta["config"]) == {"embed_size", "num_hiddens", "num_layers", "dropout",
                                   "num_steps", "bidirectional"}
    assert not list(tmp_path.glob("a/*.tmp"))


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
    "bad vocabulary": (lambda ck: _set_meta("src_vocab", ["a", "b"]), None),
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
_WHERE = st.sampled_from([(), ("format_version",), ("config",), ("src_vocab",),
                          ("tgt_vocab",), ("data",), ("training",),
                          *[("config", k) for k in checkpoint.CONFIG_KEYS]])
_FUZZ = settings(max_examples=120, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(where=_WHERE, value=_JSON)
def test_any_malformed_meta_is_a_checkpoint_error(tmp_path, ck, where, value):
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
    try:
        checkpoint.load(path)
    except CheckpointError:
        pass


@_FUZZ
@given(data=st.data())
def test_any_corrupted_byte_is_a_checkpoint_error(tmp_path, ck, data):
    path = checkpoint.save(tmp_path / "c.npz", ck)
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    path.write_bytes(bytes(raw[:cut]))
    try:
        checkpoint.load(path)
    except CheckpointError:
        pass


def test_saved_file_has_ordinary_permissions(tmp_path, ck):
    import os

    umask = os.umask(0o022)
    try:
        path = checkpoint.save(tmp_path / "c.npz", ck)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
