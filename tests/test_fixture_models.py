"""tests/fixture_models.py: a fixture's model trained once per mutation run, copied after;
in a plain run, trained every time."""

from pathlib import Path

from . import fixture_models
from .fixture_models import MODELS_ENV, train_for_fixture


def _fake_training(monkeypatch):
    """``main`` replaced by a stand-in that writes OUT/checkpoint.npz (its arguments as
    its content) and counts its calls."""
    calls = []

    def main(argv):
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "checkpoint.npz").write_text(" ".join(argv[:-2]), encoding="utf-8")
        (out / "log.txt").write_text("trained", encoding="utf-8")
        calls.append(argv)
        return 0

    monkeypatch.setattr(fixture_models, "main", main)
    return calls


def _corpus(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fra.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_the_variable_every_fixture_trains(tmp_path, monkeypatch):
    calls = _fake_training(monkeypatch)
    monkeypatch.delenv(MODELS_ENV, raising=False)
    corpus = _corpus(tmp_path / "a", "go .\tva !\n")
    for n in range(2):
        found = train_for_fixture(["--data", str(corpus), "--epochs", "1"], tmp_path / f"r{n}")
        assert found == tmp_path / f"r{n}" / "checkpoint.npz" and found.is_file()
    assert len(calls) == 2  # nothing kept: the second trained again


def test_with_the_variable_a_run_is_made_once_and_copied_whole(tmp_path, monkeypatch):
    """The same arguments over a corpus of the same content, at another path (another test
    process's temporary folder): copied, every file of the run, not trained again. Other
    content or other arguments: trained."""
    calls = _fake_training(monkeypatch)
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "kept"))
    first = _corpus(tmp_path / "one", "go .\tva !\n")
    same = _corpus(tmp_path / "two", "go .\tva !\n")
    other = _corpus(tmp_path / "three", "hi .\tsalut !\n")
    train_for_fixture(["--data", str(first), "--epochs", "1"], tmp_path / "r1")
    copied = train_for_fixture(["--data", str(same), "--epochs", "1"], tmp_path / "r2")
    assert len(calls) == 1
    assert copied.read_text(encoding="utf-8") == \
        (tmp_path / "r1" / "checkpoint.npz").read_text(encoding="utf-8")
    assert (tmp_path / "r2" / "log.txt").read_text(encoding="utf-8") == "trained"
    train_for_fixture(["--data", str(other), "--epochs", "1"], tmp_path / "r3")
    train_for_fixture(["--data", str(first), "--epochs", "2"], tmp_path / "r4")
    assert len(calls) == 3
    assert len(list((tmp_path / "kept").iterdir())) == 3  # nothing half-kept beside them
