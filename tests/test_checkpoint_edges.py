"""Checkpoints at their edges: the folder a path names, the temporary file beside the
checkpoint, the file's permissions, no pickles, a format-1 record whose settings were
kept only in preset_config, and the words of each refusal."""

import json
import os
import tempfile

import numpy as np
import pytest

from minis2s import checkpoint
from minis2s.checkpoint import CheckpointError
from tests.test_checkpoint import ck, read_meta, rewrite, set_meta, version_1_meta  # noqa: F401


def test_a_folder_names_its_checkpoint_or_the_files_to_give(tmp_path, ck):  # noqa: F811
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(CheckpointError) as caught:
        checkpoint.resolve(folder)
    assert str(caught.value) == (f"no checkpoint at {folder / 'checkpoint.npz'}: the folder "
                                 "holds no .npz file (minis2s train --out writes one)")
    (folder / "sub.npz").mkdir()  # a folder, not a file: not offered
    checkpoint.save(folder / "b.npz", ck)
    checkpoint.save(folder / "a.npz", ck)
    with pytest.raises(CheckpointError) as caught:
        checkpoint.resolve(folder)
    assert str(caught.value) == (
        f"no checkpoint at {folder / 'checkpoint.npz'}; the folder holds "
        f"{folder / 'a.npz'}, {folder / 'b.npz'}: give one of these files")
    checkpoint.save(folder / "checkpoint.npz", ck)
    assert checkpoint.resolve(folder) == folder / "checkpoint.npz"
    assert checkpoint.resolve(folder / "a.npz") == folder / "a.npz"


def test_the_file_is_written_beside_itself_then_renamed(tmp_path, ck, monkeypatch):  # noqa: F811
    """A temporary file in the checkpoint's own folder (so the rename is atomic), named
    after the checkpoint; folders are made as needed."""
    made = []
    real = tempfile.mkstemp

    def spy(**kwargs):
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    path = tmp_path / "deep" / "er" / "ck.npz"
    assert checkpoint.save(path, ck) == path
    assert made == [{"prefix": "ck.npz.", "suffix": ".tmp", "dir": path.parent}]
    assert sorted(p.name for p in path.parent.iterdir()) == ["ck.npz"]


def test_a_checkpoint_is_an_ordinary_file_under_the_umask(tmp_path, ck):  # noqa: F811
    old = os.umask(0o027)
    try:
        path = checkpoint.save(tmp_path / "ck.npz", ck)
        assert os.umask(0o027) == 0o027  # the umask is left as it was
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_no_pickle_is_ever_written_and_a_failed_save_leaves_nothing(tmp_path, ck):  # noqa: F811
    """An object array cannot be saved (it would need a pickle): the save fails, and
    neither a checkpoint nor a temporary file is left."""
    bad = ck.__class__(ck.params, ck.config, ck.data, ck.src_vocab, ck.tgt_vocab, ck.training,
                       {"odd": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError):
        checkpoint.save(tmp_path / "ck.npz", bad)
    assert list(tmp_path.iterdir()) == []


def test_meta_is_stored_as_readable_utf8(tmp_path, ck):  # noqa: F811
    """The vocabularies' accented words stay themselves in meta (not \\u escapes), so the
    record reads as text (unzip -p ck.npz meta.npy)."""
    path = checkpoint.save(tmp_path / "ck.npz", ck)
    with np.load(path, allow_pickle=False) as npz:
        text = str(npz["meta"])
    assert '"é"' in text and "\\u00e9" not in text
    assert read_meta(path)["src_vocab"] == list(ck.src_vocab.idx_to_token)


def test_unknown_and_missing_settings_are_all_named(tmp_path, ck):  # noqa: F811
    path = checkpoint.save(tmp_path / "ck.npz", ck)
    meta = read_meta(path)
    meta["model"] = {**meta["model"], "zeta": 1, "alpha": 2}
    rewrite(path, set_meta(meta))
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(path)
    assert str(caught.value) == f"{path}: model has unknown settings alpha, zeta"
    old = version_1_meta(ck)
    del old["config"]["embed_size"], old["config"]["num_steps"]
    rewrite(path, set_meta(old))
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(path)
    assert str(caught.value) == f"{path}: config lacks embed_size, num_steps"


def test_a_format_1_record_gives_the_settings_it_kept_only_in_preset_config(tmp_path,
                                                                            ck):  # noqa: F811
    """Some format-1 files kept batch size, learning rate, clipping and the epochs asked
    for only in preset_config: format 2 reads them from there."""
    path = checkpoint.save(tmp_path / "ck.npz", ck)
    old = version_1_meta(ck)
    for key in ("lr", "batch_size", "total_epochs"):
        del old["training"][key]
    old["training"]["preset_config"].update(lr=0.03, batch_size=12, grad_clip=0.7, epochs=9)
    rewrite(path, set_meta(old))
    training = checkpoint.load(path).training
    assert {k: training[k] for k in ("lr", "batch_size", "grad_clip", "total_epochs")} == \
        {"lr": 0.03, "batch_size": 12, "grad_clip": 0.7, "total_epochs": 9}
    del old["training"]["preset_config"]["epochs"]
    rewrite(path, set_meta(old))
    assert "total_epochs" not in checkpoint.load(path).training
    json.dumps(training)  # still JSON


def _spoil_meta(text):
    return lambda arrays: arrays.__setitem__("meta", np.array(text))


def _add_text_members(path):
    import zipfile

    with zipfile.ZipFile(path, "a") as z:
        z.writestr("notes.txt", "not an array")
        z.writestr("a.txt", "nor this")


def _pickled_member(path):
    import zipfile

    buf = tempfile.SpooledTemporaryFile()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    buf.seek(0)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("odd.npy", buf.read())


def _bad_npy_member(path):
    import zipfile

    with zipfile.ZipFile(path, "a") as z:
        z.writestr("odd.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': nonsense}\n")


def _cut_npy_member(path):
    """A member whose array data stops short: NumPy says so with a ValueError."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.save(buf, np.zeros(10))
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("odd.npy", buf.getvalue()[:-16])


def _as_int(name):
    return lambda arrays: arrays.__setitem__(name, arrays[name].astype(np.int64))


def _layers(n):
    def change(arrays):
        meta = json.loads(str(arrays["meta"]))
        meta["model"]["num_layers"] = n
        arrays["meta"] = np.array(json.dumps(meta))
    return change


def test_each_refusal_names_the_file_and_says_why(tmp_path, ck):  # noqa: F811
    """The words of each early refusal of load, whole: the path, then what is wrong."""
    path = checkpoint.save(tmp_path / "ck.npz", ck)
    stored = len(np.load(path).files) - 1  # the arrays beside meta
    first = next(iter(ck.params))
    cases = [
        (lambda p: p.unlink(), f"no checkpoint at {path}"),
        (lambda p: p.write_bytes(b"PK\x03\x04 cut short"),
         f"{path}: not a readable .npz checkpoint (not a zip archive: truncated, or another "
         "kind of file)"),
        (_add_text_members, f"{path}: entries a.txt, notes.txt are not .npy arrays"),
        (lambda p: rewrite(p, _spoil_meta("{not json")),
         f"{path}: 'meta' is not valid JSON (Expecting property name enclosed in double "
         "quotes: line 1 column 2 (char 1))"),
        (lambda p: rewrite(p, _spoil_meta("[1, 2]")), f"{path}: 'meta' is not a JSON object"),
        (lambda p: rewrite(p, lambda a: a.__setitem__(
            "meta", np.array(json.dumps({**read_meta(p), "src_vocab": 7})))),
         f"{path}: meta is malformed ("),
        (_pickled_member, f"{path}: refused, it holds pickled objects (Object arrays cannot be "
         "loaded when allow_pickle=False)"),
        (_bad_npy_member, f"{path}: not a readable .npz checkpoint ("),
        (_cut_npy_member, f"{path}: not a readable .npz checkpoint (EOF: reading array "
         "data, expected 80 bytes got 64)"),
        (lambda p: rewrite(p, _as_int(first)),
         f"{path}: parameter {first} has dtype int64"),
        (lambda p: rewrite(p, lambda a: a.update({"zz": np.zeros(1), "yy": np.zeros(1)})),
         f"{path}: unexpected entries yy, zz"),
        (lambda p: rewrite(p, _layers(stored // 4 + 1)),
         f"{path}: model num_layers {stored // 4 + 1} does not fit the {stored} arrays stored"),
    ]
    for spoil, words in cases:
        path = checkpoint.save(tmp_path / "ck.npz", ck)
        spoil(path)
        with pytest.raises(CheckpointError) as caught:
            checkpoint.load(path)
        said = str(caught.value)
        assert said == words or (words.endswith("(") and said.startswith(words)), said


def test_as_many_layers_as_the_arrays_allow_passes_the_first_guard(tmp_path, ck):  # noqa: F811
    """num_layers * 4 == the arrays stored is not refused as too many layers: the refusal
    that comes is the first missing parameter's."""
    path = checkpoint.save(tmp_path / "ck.npz", ck)
    stored = len(np.load(path).files) - 1
    assert stored % 4 == 0  # so that the guard's bound is met exactly
    rewrite(path, _layers(stored // 4))
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(path)
    assert "does not fit" not in str(caught.value)
    assert "is missing" in str(caught.value) or "has shape" in str(caught.value)


def test_a_task_checkpoint_keeps_its_task_and_a_bad_task_is_refused_by_name(tmp_path,
                                                                              ck):  # noqa: F811
    """A model of a generated task comes back with its task, equal and checked; a stored
    task that --task would refuse, or that the data settings leave impossible, is refused
    naming the file, the field (as ``task ...``) and why."""
    from dataclasses import replace

    from minis2s.data import DataSpec, make_task

    task = make_task("copy", {"max_len": 3, "train_size": 20, "task_seed": 4})
    spec = DataSpec(num_steps=task.min_num_steps(), num_examples=None, valid_size=5,
                    test_size=5)
    path = checkpoint.save(tmp_path / "ck.npz", replace(ck, task=task, data=spec))
    back = checkpoint.load(path)
    assert back.task == task and back.task.to_dict() == task.to_dict()
    stored = read_meta(path)["task"]
    assert stored == task.to_dict()

    def refused(change, words):
        meta = read_meta(path)
        meta["task"] = change(dict(stored))
        rewrite(path, set_meta(meta))
        with pytest.raises(CheckpointError) as caught:
            checkpoint.load(path)
        assert str(caught.value) == f"{path}: {words}"

    refused(lambda t: {**t, "name": "sort"},
            "task name must be one of copy, reverse, add, date, got 'sort'")
    refused(lambda t: {**t, "options": {**t["options"], "max_len": 0}},
            "task max_len must be a whole number >= 1, got 0")
    refused(lambda t: {**t, "options": {**t["options"], "max_len": spec.num_steps}},
            f"--num-steps {spec.num_steps} is too short for task copy: its sources have "
            f"up to {spec.num_steps} tokens and its targets up to {spec.num_steps}, each "
            f"with <eos> after; give at least {spec.num_steps + 1}")
    spec_before = spec
    rewrite(path, lambda a: a.__setitem__("meta", np.array(json.dumps(
        {**read_meta(path), "data": {**read_meta(path)["data"], "valid_size": 0.1,
                                     "test_size": 0.2}}))))
    refused(lambda t: t, "with --task, --valid-size is a count of pairs, got 0.1; with "
            "--task, --test-size is a count of pairs, got 0.2")
    rewrite(path, lambda a: a.__setitem__("meta", np.array(json.dumps(
        {**read_meta(path), "data": spec_before.to_dict()}))))
    refused(lambda t: {**t, "train_size": 10**6},
            "task copy has 1,000 distinct pairs with symbols 10, min_len 3, max_len 3, "
            "reverse_source off; 1,000,010 asked (train 1,000,000, valid 5, test 5)")


def test_an_interrupt_just_after_the_rename_leaves_the_new_file_and_stays_itself(
        tmp_path, ck, monkeypatch):  # noqa: F811
    """Ctrl-C landing after the temporary file was renamed into place, before save
    returns: the new checkpoint is there, no temporary file is left, and what the caller
    sees is the KeyboardInterrupt, not an error about the temporary file being gone."""
    real = os.replace

    def replace_then_interrupt(src, dst):
        real(src, dst)
        raise KeyboardInterrupt

    path = tmp_path / "ck.npz"
    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, ck)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]
    assert checkpoint.load(path).training == ck.training


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_parameters_come_onto_a_backend_in_its_dtype(ck, dtype):  # noqa: F811
    from minis2s.backend import get_backend

    backend = get_backend("numpy", dtype)
    params = ck.params_on(backend)
    assert list(params) == list(ck.params)
    for name, value in ck.params.items():
        got = params[name]
        assert got.dtype == np.dtype(dtype) and got.shape == value.shape
        np.testing.assert_array_equal(got, value.astype(dtype))
        assert not np.shares_memory(got, value)  # a copy: training it leaves ck as it was
