"""Checkpoints hold arrays and text only, are written atomically, and are validated."""

import json
import re
import zipfile
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis2s import checkpoint
from minis2s.backend import get_backend, to_numpy
from minis2s.checkpoint import Checkpoint, CheckpointError
from minis2s.data import RESERVED_TOKENS, DataSpec, Vocab
from minis2s.model import ModelConfig, init_params, param_shapes
from minis2s.ops import CELLS
from minis2s.presets import Preset
from minis2s.settings import DATA_FIELDS, MAX_LAYERS, MODEL_FIELDS


@pytest.fixture
def ck():
    src = Vocab([["go", "go", "run", "run", "é", "é"]])
    tgt = Vocab([["va", "va", "cours", "cours"]])
    cfg = ModelConfig(src_vocab_size=len(src), tgt_vocab_size=len(tgt), embed_size=3,
                      num_hiddens=4, num_layers=2, dropout=0.1, bidirectional=True)
    params = init_params(cfg, get_backend("numpy"), np.random.default_rng(0))
    return Checkpoint({k: to_numpy(v).copy() for k, v in params.items()}, cfg,
                      DataSpec(num_steps=7, num_examples=10), src, tgt, {"epochs": 1})


def rewrite(path, mutate):
    """Load a checkpoint's raw entries, change them, and write them back."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mutate(arrays)
    np.savez(path, **arrays)


def read_meta(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz["meta"]))


def set_meta(meta):
    """A ``rewrite`` mutation that replaces the file's meta with ``meta``."""
    return lambda arrays: arrays.__setitem__("meta", np.array(json.dumps(meta)))


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
    assert back.config == ck.config and back.data.num_steps == 7
    assert back.data == ck.data == DataSpec(num_steps=7, num_examples=10)
    assert back.training == ck.training == {"epochs": 1}
    assert (back.config.cell, back.config.model) == (cell, model)
    assert back.src_vocab.idx_to_token == ck.src_vocab.idx_to_token
    assert back.tgt_vocab.idx_to_token == ck.tgt_vocab.idx_to_token
    assert set(back.params) == set(ck.params)
    for k, v in ck.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    meta = read_meta(path)
    assert meta["format_version"] == checkpoint.FORMAT_VERSION == 2
    assert set(meta) == {"format_version", "model", "data", "src_vocab", "tgt_vocab",
                         "training"}
    # each setting once: the model's under "model", the data's (num_steps too) under "data"
    assert meta["model"] == {"model": model, "cell": cell, "embed_size": 3, "num_hiddens": 4,
                             "num_layers": 2, "dropout": 0.1, "bidirectional": True}
    assert meta["data"] == {"num_steps": 7, "num_examples": 10, "valid_size": 0,
                            "test_size": 0, "split_seed": 0, "min_freq": 2}
    assert meta["training"] == {"epochs": 1}
    assert not list(tmp_path.glob("a/*.tmp"))


# A format-1 meta, as minis2s wrote it before format 2 (``minis2s train``'s record, with
# the old layout): every model setting and num_steps under "config", the data settings and
# the pairs counted under "data", and every setting of the run again under
# "training.preset_config". Its vocabularies are the ``ck`` fixture's.
def version_1_meta(ck, **config) -> dict:
    return {
        "format_version": 1,
        "config": {"embed_size": 3, "num_hiddens": 4, "num_layers": 2, "dropout": 0.1,
                   "num_steps": 7, "bidirectional": True, "cell": "gru",
                   "model": "seq2seq", **config},
        "src_vocab": list(ck.src_vocab.idx_to_token),
        "tgt_vocab": list(ck.tgt_vocab.idx_to_token),
        "data": {"num_examples": 10, "valid_size": 3, "test_size": 0.25, "split_seed": 5,
                 "min_freq": 1, "train_pairs": 6},
        "training": {
            "preset": "zh", "epochs": 1, "seed": 4, "lr": 0.02, "batch_size": 16,
            "loss": 2.5, "total_epochs": 3,
            "preset_config": {
                "name": "zh", "embed_size": 3, "num_hiddens": 4, "num_layers": 2,
                "dropout": 0.1, "batch_size": 16, "num_steps": 7, "lr": 0.02, "epochs": 3,
                "num_examples": 10, "valid_size": 3, "test_size": 0.25,
                "bidirectional": True, "grad_clip": 0.5, "split_seed": 5, "min_freq": 1,
                "cell": "gru", "model": "seq2seq", **config},
            "history": [{"epoch": 1, "loss": 2.5}], "state": {"batch": 0}},
    }


# what format 2 reads in ``version_1_meta``'s training record: preset_config gone, its
# optimisation fields (epochs as total_epochs) kept once, the pairs counted moved here
VERSION_1_TRAINING = {"preset": "zh", "epochs": 1, "seed": 4, "lr": 0.02, "batch_size": 16,
                      "grad_clip": 0.5, "loss": 2.5, "total_epochs": 3, "train_pairs": 6,
                      "history": [{"epoch": 1, "loss": 2.5}], "state": {"batch": 0}}
VERSION_1_SPEC = DataSpec(num_steps=7, num_examples=10, valid_size=3, test_size=0.25,
                          split_seed=5, min_freq=1)


@pytest.mark.parametrize(("cell", "model"), [("gru", "seq2seq"), ("lstm", "attention"),
                                             ("rnn", "seq2seq")])
def test_a_format_1_file_loads_as_it_did(tmp_path, ck, cell, model):
    """Config, data spec, vocabularies and parameters of a format-1 file come out as its
    meta says; what it kept twice (preset_config) is read once."""
    cfg = replace(ck.config, cell=cell, model=model)
    params = init_params(cfg, get_backend("numpy"), np.random.default_rng(3))
    ck = replace(ck, config=cfg, params={k: to_numpy(v).copy() for k, v in params.items()})
    path = checkpoint.save(tmp_path / "c.npz", ck)
    rewrite(path, set_meta(version_1_meta(ck, cell=cell, model=model)))
    back = checkpoint.load(path)
    assert back.config == cfg
    assert back.data == VERSION_1_SPEC
    assert back.src_vocab.idx_to_token == ck.src_vocab.idx_to_token
    assert back.tgt_vocab.idx_to_token == ck.tgt_vocab.idx_to_token
    assert back.training == VERSION_1_TRAINING
    _assert_same_params(back, ck)
    # saved again, it is a format-2 file that reads back the same
    again = checkpoint.load(checkpoint.save(tmp_path / "again.npz", back))
    assert read_meta(tmp_path / "again.npz")["format_version"] == 2
    assert (again.config, again.data, again.training) == (back.config, back.data,
                                                          back.training)
    _assert_same_params(again, ck)


def _as_written_by_format_1(path) -> dict:
    """The meta ``minis2s train`` wrote in format 1 for the run a format-2 file records."""
    meta = read_meta(path)
    model, data, tr = meta["model"], meta["data"], dict(meta["training"])
    preset = Preset.from_parts(tr["preset"], checkpoint.load(path).config, DataSpec(**data),
                               {"epochs": tr["total_epochs"], "batch_size": tr["batch_size"],
                                "lr": tr["lr"], "grad_clip": tr["grad_clip"]})
    config = {k: model[k] for k in ("embed_size", "num_hiddens", "num_layers", "dropout")}
    config.update(num_steps=data["num_steps"], bidirectional=model["bidirectional"],
                  cell=model["cell"], model=model["model"])
    old_data = {k: data[k] for k in ("num_examples", "valid_size", "test_size", "split_seed",
                                     "min_freq")}
    old_data["train_pairs"] = tr.pop("train_pairs")
    training = {"preset": tr["preset"], "epochs": tr["epochs"], "seed": tr["seed"],
                "lr": tr["lr"], "batch_size": tr["batch_size"], "loss": tr["loss"],
                "total_epochs": tr["total_epochs"],
                # format 1 predates --loss-reduction and --lr-decay: its runs used the
                # seed's loss and a constant learning rate
                "preset_config": {k: v for k, v in preset.to_dict().items()
                                  if k not in ("loss_reduction", "lr_decay")},
                "history": tr["history"], "state": tr["state"]}
    return {"format_version": 1, "config": config, "src_vocab": meta["src_vocab"],
            "tgt_vocab": meta["tgt_vocab"], "data": old_data, "training": training}


def test_a_format_1_checkpoint_written_by_training_resumes(tiny_corpus, tmp_path, capsys):
    """A run saved in format 1 (settings in preset_config) goes on with --resume exactly
    as a run never stopped: the same parameters, optimiser state and losses."""
    from minis2s.cli import main
    from minis2s.presets import get_preset
    from minis2s.train.resume import saved_settings

    args = ["--preset", "zh", "--examples", "199", "--lr", "0.01", "--grad-clip", "2",
            "--batch-size", "50", "--quiet", "--data", str(tiny_corpus)]
    assert main(["train", *args, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *args, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    path = tmp_path / "run" / "checkpoint.npz"
    old = _as_written_by_format_1(path)
    assert old["training"]["preset_config"] == {
        "name": "zh", "embed_size": 32, "num_hiddens": 32, "num_layers": 2, "dropout": 0.1,
        "batch_size": 50, "num_steps": 10, "lr": 0.01, "epochs": 1, "num_examples": 199,
        "valid_size": 0, "test_size": 0, "bidirectional": False, "grad_clip": 2.0,
        "split_seed": 0, "min_freq": 2, "cell": "gru", "model": "seq2seq"}
    assert old["data"]["train_pairs"] == 200
    assert "grad_clip" not in old["training"]  # format 1 kept it in preset_config only
    rewrite(path, set_meta(old))
    ck = checkpoint.load(path)
    assert ck.data == DataSpec(num_steps=10, num_examples=199)
    assert ck.training["train_pairs"] == 200 and "preset_config" not in ck.training
    preset, seed = saved_settings(ck)
    assert preset == get_preset("zh").with_overrides(epochs=1, num_examples=199, lr=0.01,
                                                     grad_clip=2.0, batch_size=50)
    assert seed == 0
    capsys.readouterr()
    assert main(["train", *args, "--epochs", "2", "--out", str(tmp_path / "run"),
                 "--resume"]) == 0
    assert "minis2s: resuming after epoch 1/2" in capsys.readouterr().err
    a = checkpoint.load(tmp_path / "straight" / "checkpoint.npz")
    b = checkpoint.load(path)
    assert read_meta(path)["format_version"] == 2
    assert (a.config, a.data) == (b.config, b.data)
    assert list(a.params) == list(b.params)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    assert sorted(a.extra) == sorted(b.extra) == ["adam.m", "adam.v"]
    for name in a.extra:
        np.testing.assert_array_equal(a.extra[name], b.extra[name], err_msg=name)
    assert {k: v for k, v in a.training.items() if k != "history"} == {
        k: v for k, v in b.training.items() if k != "history"}
    assert [h["loss"] for h in a.training["history"]] == [
        h["loss"] for h in b.training["history"]]


def test_a_bare_format_1_file_reads_the_default_data_settings(tmp_path, ck):
    """A format-1 file made by hand kept no data settings ("data" {}, no training): it
    reads the defaults, with its own num_steps."""
    path = checkpoint.save(tmp_path / "c.npz", ck)
    meta = version_1_meta(ck)
    meta["data"], meta["training"] = {}, {"epochs": 2}
    rewrite(path, set_meta(meta))
    back = checkpoint.load(path)
    assert back.config == ck.config
    assert back.data == DataSpec(num_steps=7)
    assert back.training == {"epochs": 2}
    _assert_same_params(back, ck)


# each: how a format-1 meta is spoiled, what the refusal must name (None: any message)
SPOILED_VERSION_1 = {
    "no config": (lambda m: m.pop("config"), "meta 'config' is not a JSON object"),
    "config not an object": (lambda m: m.__setitem__("config", [3, 4]),
                             "meta 'config' is not a JSON object"),
    "config without embed_size": (lambda m: m["config"].pop("embed_size"),
                                  "config lacks embed_size"),
    "config without num_steps": (lambda m: m["config"].pop("num_steps"),
                                 "config lacks num_steps"),
    "bad dropout": (lambda m: m["config"].__setitem__("dropout", 1.5),
                    r"dropout must be in \[0, 1\), got 1.5"),
    "bad cell": (lambda m: m["config"].__setitem__("cell", "transformer"), "transformer"),
    "bad data setting": (lambda m: m["data"].__setitem__("min_freq", 0), "min_freq"),
    "data not an object": (lambda m: m.__setitem__("data", "all"),
                           "meta 'data' is not a JSON object"),
    "training not an object": (lambda m: m.__setitem__("training", [1]),
                               "meta 'training' is not a JSON object"),
    "no vocabulary": (lambda m: m.pop("tgt_vocab"), "tgt_vocab"),
}


@pytest.mark.parametrize("case", list(SPOILED_VERSION_1))
def test_a_spoiled_format_1_file_is_refused(tmp_path, ck, case):
    spoil, message = SPOILED_VERSION_1[case]
    path = checkpoint.save(tmp_path / "c.npz", ck)
    meta = version_1_meta(ck)
    spoil(meta)
    rewrite(path, set_meta(meta))
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


def test_a_checkpoint_without_cell_or_model_loads_as_the_seeds_gru(tmp_path, ck):
    """Format 1: a file without "cell" holds a GRU, one without "model" the seed's decoder
    (the only ones there were). Format 2 names both: a file without them is refused."""
    path = checkpoint.save(tmp_path / "c.npz", ck)
    assert (read_meta(path)["model"]["cell"], read_meta(path)["model"]["model"]) == (
        "gru", "seq2seq")
    meta = version_1_meta(ck)
    del meta["config"]["cell"], meta["config"]["model"]
    rewrite(path, set_meta(meta))
    back = checkpoint.load(path)
    assert back.config == ck.config
    assert (back.config.cell, back.config.model) == ("gru", "seq2seq")

    path = checkpoint.save(tmp_path / "d.npz", ck)
    meta = read_meta(path)
    del meta["model"]["cell"], meta["model"]["model"]
    rewrite(path, set_meta(meta))
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: model lacks model, cell")):
        checkpoint.load(path)


@pytest.mark.parametrize(("section", "fields"), [("model", MODEL_FIELDS),
                                                 ("data", DATA_FIELDS)])
def test_a_format_2_setting_missing_or_unknown_is_refused_by_name(tmp_path, ck, section,
                                                                  fields):
    """"model" and "data" hold exactly their settings: each one missing, and one more
    (train_pairs, format 1's place for it, under data), is refused with its name. A model
    setting added later (decoder_hiddens) is written only when it is not its default, and
    a file without it loads with the default."""
    path = checkpoint.save(tmp_path / "c.npz", ck)
    saved = read_meta(path)
    assert set(saved[section]) == set(fields) - set(checkpoint.LATER)
    fields = tuple(saved[section])
    for name in fields:
        rewrite(path, set_meta({**saved, section: {k: v for k, v in saved[section].items()
                                                   if k != name}}))
        with pytest.raises(CheckpointError, match=re.escape(f"{path}: {section} lacks {name}")):
            checkpoint.load(path)
    unknown = {"model": "attention_heads", "data": "train_pairs"}[section]
    meta = {**saved, section: {**saved[section], unknown: 4}}
    rewrite(path, set_meta(meta))
    with pytest.raises(CheckpointError,
                       match=re.escape(f"{path}: {section} has unknown settings {unknown}")):
        checkpoint.load(path)
    rewrite(path, set_meta(saved))
    assert checkpoint.load(path).data == ck.data


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
    """A mutation setting meta[key] (a key, or a tuple of keys into meta) to ``value``."""
    keys = key if isinstance(key, tuple) else (key,)

    def mutate(arrays):
        meta = json.loads(str(arrays["meta"]))
        target = meta
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
        arrays["meta"] = np.array(json.dumps(meta))
    return mutate


# each: how the saved file is spoiled (made from the checkpoint), what the error must name
SPOILED = {
    "wrong format version": (lambda ck: _set_meta("format_version", 99),
                             "format_version 99; this minis2s reads versions 1, 2"),
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
    "bad model setting": (lambda ck: _set_meta(("model", "dropout"), 1.5),
                          r"model dropout must be in \[0, 1\), got 1.5"),
    "bad data setting": (lambda ck: _set_meta(("data", "num_steps"), 0),
                         "data num_steps must be a whole number >= 1, got 0"),
    "two bad settings": (
        lambda ck: _set_meta("model", {**{k: getattr(ck.config, k) for k in MODEL_FIELDS},
                                       "cell": "transformer", "num_layers": 33}),
        f"model cell must be one of {', '.join(CELLS)}, got 'transformer'; model num_layers "
        f"must be a whole number from 1 to {MAX_LAYERS}, got 33"),
    "model that is not an object": (lambda ck: _set_meta("model", "seq2seq"),
                                    "meta 'model' is not a JSON object"),
    "no data settings": (lambda ck: _set_meta("data", None),
                         "meta 'data' is not a JSON object"),
    "training that is not an object": (lambda ck: _set_meta("training", [1]),
                                       "meta 'training' is not a JSON object"),
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
_COUNT = st.integers(-1, 5) | st.booleans() | st.sampled_from([1.0, 2.5])
_SIZE = (st.integers(-1, 5) | st.floats(-0.25, 1.25) | st.sampled_from([0, 1, 0.5, 1.0])
         | st.booleans())
_SETTING = {"embed_size": _COUNT, "num_hiddens": _COUNT,
            "num_layers": st.integers(-1, 3) | st.sampled_from([MAX_LAYERS + 1])
            | st.booleans(),
            "dropout": st.floats(-0.25, 1.25) | st.sampled_from([0, 1, 0.5]) | st.booleans(),
            "bidirectional": st.booleans() | st.integers(0, 1),
            "cell": st.sampled_from(["gru", "lstm", "rnn", "GRU", "", "transformer"])
            | st.none() | st.integers(0, 2),
            "model": st.sampled_from(["seq2seq", "attention", "Attention", ""]) | st.none(),
            "decoder_hiddens": st.none() | _COUNT,
            "output_layer": st.sampled_from(["dense", "deep", "Deep", ""]) | st.none(),
            "num_steps": st.integers(-1, 12) | st.booleans() | st.sampled_from([7.0]),
            "num_examples": st.none() | st.integers(-1, 12) | st.booleans()
            | st.sampled_from([10.0]),
            "valid_size": _SIZE, "test_size": _SIZE,
            "split_seed": st.integers(-1, 5) | st.booleans() | st.sampled_from([0.0]),
            "min_freq": st.integers(-1, 3) | st.booleans() | st.sampled_from([2.0])}
_PLAUSIBLE = {("format_version",): st.integers(0, 3) | st.booleans()
              | st.sampled_from([2.0, "2"]),
              ("src_vocab",): _VOCAB, ("tgt_vocab",): _VOCAB,
              # whole sections: every setting there, each a plausible value
              ("model",): st.fixed_dictionaries({k: _SETTING[k] for k in MODEL_FIELDS}),
              ("data",): st.fixed_dictionaries({k: _SETTING[k] for k in DATA_FIELDS}),
              ("training",): _FREE,
              **{("model", k): _SETTING[k] for k in MODEL_FIELDS},
              **{("data", k): _SETTING[k] for k in DATA_FIELDS}}
_SETTINGS = [*(("model", k) for k in MODEL_FIELDS), *(("data", k) for k in DATA_FIELDS)]
# where meta is spoiled: () the whole meta; (section, None) a setting of another name
# (some of them another section's, or format 1's) added to the section
_WHERE = st.sampled_from([(), ("format_version",), ("model",), ("data",), ("src_vocab",),
                          ("tgt_vocab",), ("training",), ("model", None), ("data", None),
                          *_SETTINGS, *_SETTINGS])
_OTHER_NAME = st.sampled_from(["train_pairs", "num_steps", "cell", "config", "attention"]) \
    | st.text(max_size=6)
_FUZZ = settings(max_examples=150, deadline=None,
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
    """A load that succeeds returns exactly what ``meta`` (the file's, as stored, format 2)
    says, every setting as its rule allows (:mod:`minis2s.settings`).

    "model" and "data" hold exactly their settings. ``training`` is optional: absent, or
    any false JSON value (null, {}, [], 0, ""), it loads as ``{}``; otherwise (the loader
    requires an object) as it is.
    """
    assert isinstance(meta, dict) and meta["format_version"] == checkpoint.FORMAT_VERSION
    assert type(meta["format_version"]) in (int, float)
    m, d = meta["model"], meta["data"]
    assert isinstance(m, dict) and set(m) <= set(MODEL_FIELDS)
    assert set(MODEL_FIELDS) - set(m) <= set(checkpoint.LATER)  # the later ones: optional
    assert isinstance(d, dict) and set(d) == set(DATA_FIELDS)
    for key in ("embed_size", "num_hiddens", "num_layers"):
        got = getattr(back.config, key)
        assert type(got) is int and type(m[key]) is int and got == m[key] >= 1, key
    assert back.config.num_layers <= MAX_LAYERS
    assert type(m["dropout"]) in (int, float) and type(back.config.dropout) is float
    assert back.config.dropout == m["dropout"] and 0 <= back.config.dropout < 1
    assert type(m["bidirectional"]) is bool and back.config.bidirectional is m["bidirectional"]
    assert type(m["cell"]) is str and back.config.cell == m["cell"]
    assert type(m["model"]) is str and back.config.model == m["model"]
    hd = m.get("decoder_hiddens")  # absent or null: as wide as the encoder's state
    assert hd is None or type(hd) is int and hd >= 1
    assert back.config.decoder_hiddens == hd
    assert back.config.output_layer == m.get("output_layer", "dense")  # absent: dense
    assert isinstance(back.data, DataSpec) and back.data.to_dict() == d
    for key in DATA_FIELDS:  # as stored: 0 and 0.0 are not the same size
        assert type(getattr(back.data, key)) is type(d[key]), key
    assert type(d["num_steps"]) is int and d["num_steps"] >= 1
    assert d["num_examples"] is None or (type(d["num_examples"]) is int
                                         and d["num_examples"] >= 0)
    for key in ("valid_size", "test_size"):
        assert type(d[key]) is int and d[key] >= 0 or type(d[key]) is float and 0 <= d[key] < 1
    assert type(d["split_seed"]) is int and d["split_seed"] >= 0
    assert type(d["min_freq"]) is int and d["min_freq"] >= 1
    assert back.src_vocab.idx_to_token == meta["src_vocab"]
    assert back.tgt_vocab.idx_to_token == meta["tgt_vocab"]
    assert back.config.src_vocab_size == len(meta["src_vocab"])
    assert back.config.tgt_vocab_size == len(meta["tgt_vocab"])
    assert back.training == (meta.get("training") or {})
    _assert_same_params(back, ck)
    assert {k: v.shape for k, v in back.params.items()} == param_shapes(back.config)


@_FUZZ
@given(where=_WHERE, data=st.data())
def test_any_malformed_meta_is_refused_or_loads_as_it_says(tmp_path, ck, where, data):
    """Each spoiled meta (a value replaced, a key removed, a setting added) is either
    refused with CheckpointError, or loads as exactly what it says (e.g. another dropout or
    num_steps, free JSON under training) with the saved parameters unchanged. Any other
    exception, or a load that departs from the meta, fails."""
    if where and where[-1] is None:
        where = (*where[:-1], data.draw(_OTHER_NAME))
    plausible = _PLAUSIBLE.get(where, _JSON)
    drop = bool(where) and data.draw(st.integers(0, 5)) == 0  # sometimes: the key removed
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
            if drop:
                target.pop(where[-1], None)
            else:
                target[where[-1]] = value
        arrays["meta"] = np.array(json.dumps(meta))

    rewrite(path, mutate)
    meta = read_meta(path)
    try:
        back = checkpoint.load(path)
    except CheckpointError:
        return
    _assert_loaded_as_meta_says(back, ck, meta)


def test_a_format_1_label_on_a_format_2_meta_is_refused(tmp_path, ck):
    """Format 1 kept the model's settings under "config" (the format-1 reader refused a
    file without it): a file that says it is format 1 and has none is not one."""
    path = checkpoint.save(tmp_path / "c.npz", ck)
    rewrite(path, _set_meta("format_version", 1))
    with pytest.raises(CheckpointError, match="config"):
        checkpoint.load(path)


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
    assert back.config == ck.config and back.data == ck.data
    assert back.data.num_steps == ck.data.num_steps == 7
    assert back.src_vocab.idx_to_token == ck.src_vocab.idx_to_token
    assert back.tgt_vocab.idx_to_token == ck.tgt_vocab.idx_to_token
    assert back.training == ck.training
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
