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
