"""``train --out DIR`` over a checkpoint: refused without ``--resume`` or ``--overwrite``,
before the corpus is read, leaving the file as it was; with ``--overwrite`` a new run
that says once that it replaces the file."""

import shutil

import pytest

from minis2s import checkpoint
from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.presets import get_preset
from minis2s.train import ResumeError, run_experiment
from minis2s.train import run as run_module

from .fixture_models import train_for_fixture

# 200 pairs of the tiny corpus: 4 batches of at most 64 pairs an epoch
SHORT = ["--preset", "zh", "--examples", "199", "--quiet"]


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    """A checkpoint of one short epoch."""
    return train_for_fixture(["--data", str(tiny_corpus), *SHORT, "--epochs", "1"],
                             tmp_path_factory.mktemp("trained"))


def _corpus_never_read(monkeypatch):
    def read(*args, **kwargs):
        raise AssertionError("the corpus was read")

    monkeypatch.setattr(run_module, "load_data", read)
    monkeypatch.setattr(run_module, "resolve_data_path", read)


def test_a_fresh_run_over_a_checkpoint_is_refused_before_the_corpus_is_read(
        tiny_corpus, trained, tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / "checkpoint.npz"
    shutil.copyfile(trained, ckpt)
    before = ckpt.read_bytes()
    _corpus_never_read(monkeypatch)
    assert main(["train", "--data", str(tiny_corpus), *SHORT, "--epochs", "2", "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"minis2s: error: {ckpt} exists: --resume goes on from it, "
                                "--overwrite starts again and replaces it"]
    assert ckpt.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_overwrite_starts_again_and_says_so_once(tiny_corpus, trained, tmp_path, capsys):
    ckpt = tmp_path / "checkpoint.npz"
    shutil.copyfile(trained, ckpt)
    capsys.readouterr()
    assert main(["train", "--data", str(tiny_corpus), *SHORT, "--epochs", "2", "--seed", "5",
                 "--overwrite", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if str(ckpt) in line and "replace" in line] == [
        f"minis2s: {ckpt} exists and will be replaced by this new run (--overwrite)"]
    assert not any("--resume" in line for line in err)  # the user chose to start again
    training = checkpoint.load(ckpt).training
    assert training["seed"] == 5 and training["epochs"] == 2  # a new run, not the old one


def test_overwrite_into_an_empty_folder_just_trains(tiny_corpus, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_corpus), *SHORT, "--epochs", "1", "--overwrite",
                 "--out", str(tmp_path)]) == 0
    assert "replaced" not in capsys.readouterr().err
    assert (tmp_path / "checkpoint.npz").is_file()


def test_resume_and_overwrite_together_are_refused(tiny_corpus, trained, tmp_path):
    shutil.copyfile(trained, tmp_path / "checkpoint.npz")
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(ResumeError, match="give one or the other"):
        run_experiment(get_preset("zh").with_overrides(num_examples=199, epochs=2),
                       tiny_corpus, get_backend("numpy"), tmp_path, resume=True,
                       overwrite=True, warn=lambda message: None)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
