"""What a run tells its log, what it refuses to replace, and where the documented
commands write.

1. Off a terminal (a log file, a batch job) training prints one line per epoch, with its
   loss, speed and the time left, and a line every ``log_every`` seconds inside an epoch.
2. ``train --out DIR`` over a checkpoint refuses without ``--resume`` or ``--overwrite``,
   before the corpus is read, and leaves the file as it was.
3. The commands of README.md and the tutorial write under ``runs/``, which git ignores,
   never over the files the repository ships.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from minis2s import checkpoint
from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.presets import get_preset
from minis2s.train import ResumeError, run_experiment
from minis2s.train import run as run_module
from minis2s.train.progress import ProgressLog
from minis2s.train.trainer import EpochProgress, EpochStats
from minis2s.wording import format_duration

ROOT = Path(__file__).resolve().parents[1]
# 200 pairs of the tiny corpus: 4 batches of at most 64 pairs an epoch
SHORT = ["--preset", "zh", "--examples", "199", "--quiet"]

# ------------------------------------------------------------------ 1. progress in a log

EPOCH_LINE = re.compile(r"minis2s: epoch (\d+)/(\d+): loss (\d+\.\d{3})(, validation \d+\.\d{3})?"
                        r", [\d,]+ tokens/s, [\d.]+ s(?:, about (.+) left)?")
BATCH_LINE = re.compile(r"minis2s: epoch (\d+)/(\d+): batch (\d+)/(\d+), loss \d+\.\d{3} so far"
                        r", about (.+) left")
DURATION = re.compile(r"\d+ s|\d+ min \d\d s|\d+ h \d\d min")


@pytest.mark.parametrize("flags", [["--quiet"], [], ["--valid-size", "40"]],
                         ids=["quiet", "no-terminal", "validation"])
def test_training_off_a_terminal_prints_one_line_per_epoch(tiny_corpus, tmp_path, capsys,
                                                           flags):
    rc = main(["train", "--data", str(tiny_corpus), "--preset", "zh", "--examples", "199",
               "--epochs", "3", *flags, "--out", str(tmp_path)])
    assert rc == 0
    err = capsys.readouterr().err.splitlines()
    lines = [m for m in map(EPOCH_LINE.fullmatch, err) if m]
    assert [(m[1], m[2]) for m in lines] == [("1", "3"), ("2", "3"), ("3", "3")], err
    history = checkpoint.load(tmp_path / "checkpoint.npz").training["history"]
    assert [m[3] for m in lines] == [f"{h['loss']:.3f}" for h in history]
    assert all(bool(m[4]) == ("--valid-size" in flags) for m in lines)
    left = [m[5] for m in lines]
    assert all(t is not None and DURATION.fullmatch(t) for t in left[:-1]), left
    assert left[-1] is None  # nothing left after the last epoch
    assert not any(BATCH_LINE.fullmatch(line) for line in err)  # epochs of well under 300 s
    assert "1 epochs" not in " ".join(err) and "3 epochs on numpy" in " ".join(err)


def test_one_epoch_is_one_epoch(tiny_corpus, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_corpus), *SHORT, "--epochs", "1", "--out",
                 str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert ", 1 epoch on numpy" in err and "1 epochs" not in err


def test_a_line_every_log_every_seconds_inside_an_epoch(tiny_corpus, tmp_path):
    said = []
    preset = get_preset("zh").with_overrides(num_examples=199, epochs=2)
    run_experiment(preset, tiny_corpus, get_backend("numpy"), tmp_path, progress=False,
                   warn=said.append, log_every=0)
    progress = [s for s in said if s.startswith("epoch ")]
    shapes = [("batch", m[1], m[3], m[4]) if (m := BATCH_LINE.fullmatch("minis2s: " + s))
              else ("epoch", EPOCH_LINE.fullmatch("minis2s: " + s)[1]) for s in progress]
    # after each batch but an epoch's last, whose epoch line follows
    assert shapes == [("batch", "1", "1", "4"), ("batch", "1", "2", "4"),
                      ("batch", "1", "3", "4"), ("epoch", "1"),
                      ("batch", "2", "1", "4"), ("batch", "2", "2", "4"),
                      ("batch", "2", "3", "4"), ("epoch", "2")], progress


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_time_left_and_the_interval_follow_the_clock():
    clock, said = _Clock(), []
    log = ProgressLog(said.append, every=300, last_epoch=3, batches_per_epoch=10,
                      batches_left=30, clock=clock)
    p = EpochProgress({}, loss_sum=12.0, tokens=24)
    for batch in range(1, 11):
        clock.now += 62 / 10 * 2  # 12.4 s a batch: 2 min 04 s an epoch
        p.batches = batch
        log.batch(1, p)
    assert said == []  # 124 s in epoch 1, less than every 300 s
    log.epoch(EpochStats(1, 0.5, 4000, 124.0))
    assert said == ["epoch 1/3: loss 0.500, 32 tokens/s, 2 min 04 s, about 4 min 08 s left"]
    for batch in range(1, 6):
        clock.now += 100
        p.batches = batch
        log.batch(2, p)
    # 300 s after the epoch line, at batch 3: 13 batches done in 424 s, 17 to go
    assert said[1:] == ["epoch 2/3: batch 3/10, loss 0.500 so far, about 9 min 14 s left"]


@pytest.mark.parametrize(("seconds", "text", "whole"), [
    (0.2, "0.2 s", "1 s"), (12.34, "12.3 s", "12 s"), (61.6, "1 min 02 s", "1 min 02 s"),
    (7500, "2 h 05 min", "2 h 05 min")])
def test_durations_read_as_people_say_them(seconds, text, whole):
    assert format_duration(seconds) == text
    assert format_duration(seconds, tenths=False) == whole


# ------------------------------------------------------------------ 2. refusing to lose work


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    """A checkpoint of one short epoch."""
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", "--data", str(tiny_corpus), *SHORT, "--epochs", "1", "--out",
                 str(out)]) == 0
    return out / "checkpoint.npz"


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
        f"minis2s: {ckpt} exists and will be replaced (--resume goes on from it)"]
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


# ------------------------------------------------------------------ 3. where the docs write

PAGES = ["README.md", "docs/bptt.md", "docs/zh/README.md", "docs/zh/bptt.md"]
BASH = re.compile(r"^[ \t]*```bash\n(.*?)^[ \t]*```", re.M | re.S)  # in a list item too
OUTPUT_FLAGS = {"--plot", "--out", "--attention-plot", "-o", "--output"}


def bash_commands(page: str) -> list[list[list[str]]]:
    """Each ```bash block of a page as its commands, each a list of words."""
    blocks = []
    for m in BASH.finditer((ROOT / page).read_text(encoding="utf-8")):
        text = m.group(1).replace("\\\n", " ")
        blocks.append([words for line in text.splitlines()
                       if (words := shlex.split(line, comments=True))])
    return blocks


def outputs(words: list[str]) -> list[str]:
    """What one command writes: the values of --plot, --out, ... and > or >> targets."""
    found = []
    for before, word in zip(["", *words], words):
        if before in OUTPUT_FLAGS or before in (">", ">>"):
            found.append(word)
        elif re.fullmatch(r">>?\S+", word):
            found.append(word.lstrip(">"))
    return found


def gitignored(path: str) -> bool:
    """Whether the project's .gitignore ignores ``path`` (relative, with /), by git's
    rules for the patterns it uses: the last matching pattern wins, ``!`` re-includes, a
    trailing / matches a folder, a pattern with a / inside is anchored at the root."""
    ignored = False
    parts = path.split("/")
    for raw in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        folder = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if "/" in pattern:
            candidates = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
            hit = any(fnmatch(c, pattern.lstrip("/")) for c in candidates
                      if not folder or c != path)
        else:
            names = parts[:-1] if folder else parts
            hit = any(fnmatch(name, pattern) for name in names)
        if hit:
            ignored = not negate
    return ignored


@pytest.mark.parametrize("page", PAGES)
def test_documented_commands_write_under_runs(page):
    written = [(" ".join(words), target) for block in bash_commands(page)
               for words in block for target in outputs(words)]
    assert len(written) >= 4, f"{page}: found only {written}: is the scan broken?"
    outside = [w for w in written if not w[1].startswith("runs/")]
    assert not outside, f"{page}: commands that write outside runs/: {outside}"
    tracked = [t for _, t in written if (ROOT / t).exists() and not gitignored(t)]
    assert not tracked, f"{page}: commands that write over files of the project: {tracked}"


@pytest.mark.parametrize("page", PAGES)
def test_a_redirect_into_a_folder_comes_after_the_folder_is_made(page):
    """``> runs/x`` fails where runs/ does not exist: the block makes it first (mkdir -p, or
    a command that writes under it)."""
    for block in bash_commands(page):
        made = set()
        for words in block:
            redirects = [words[i + 1] for i, w in enumerate(words[:-1]) if w in (">", ">>")]
            for target in redirects:
                assert str(Path(target).parent) in made, \
                    f"{page}: {' '.join(words)!r} writes into a folder not made before it"
            if words[:2] == ["mkdir", "-p"]:
                made.update(words[2:])
            for target in outputs(words):
                made.update(str(p) for p in Path(target).parents)


def test_generated_files_are_ignored_and_the_shipped_figures_are_not():
    for path in ["runs/long.txt", "runs/zh/checkpoint.npz", "runs/gradflow_fresh.png",
                 "runs/bptt_notebook.ipynb", "docs/bptt_notebook.ipynb", "long.txt",
                 "bptt_notebook.ipynb"]:
        assert gitignored(path), path
    for path in ["docs/gradflow_fresh.png", "docs/gradflow_trained.png", "README.md",
                 "docs/bptt_notebook.py"]:
        assert not gitignored(path), path


def test_the_notebook_is_made_under_runs():
    """Every ``jupytext --to notebook`` the docs give writes its .ipynb under runs/."""
    found = []
    for page in [*PAGES, "docs/bptt_notebook.py"]:
        text = (ROOT / page).read_text(encoding="utf-8")
        if page.endswith(".py"):  # the notebook's markdown is comment lines
            text = re.sub(r"^# ?", "", text, flags=re.M)
        text = " ".join(text.split())
        found += [(page, m.group(0)) for m in
                  re.finditer(r"jupytext --to notebook [^`]*?(?=`|$)", text)]
    assert len(found) >= 3, found
    wrong = [f for f in found if not re.search(r" (-o|--output) runs/\S+\.ipynb", f[1])]
    assert not wrong, f"jupytext commands that write beside the script: {wrong}"


@pytest.mark.skipif(shutil.which("unzip") is None or shutil.which("bash") is None,
                    reason="needs unzip and bash")
@pytest.mark.parametrize("page", PAGES)
def test_the_long_pairs_command_finds_the_corpus_where_minis2s_keeps_it(page, tmp_path):
    """The documented lines up to the one that writes runs/long.txt, run in an empty
    folder while $MINIS2S_DATA names the corpus (a small zip of 100 lines)."""
    block = next(b for b in BASH.findall((ROOT / page).read_text(encoding="utf-8"))
                 if "> runs/long.txt" in b)
    lines = block.splitlines()
    end = next(i for i, line in enumerate(lines) if "> runs/long.txt" in line)
    corpus = "".join(f"Line {i}.\tLigne {i} .\n" for i in range(100))
    zipped = tmp_path / "data" / "fra-eng.zip"
    zipped.parent.mkdir()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("fra-eng/fra.txt", corpus)
    work, shims = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    shims.mkdir()
    (shims / "python").symlink_to(sys.executable)  # the docs say python
    env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "MINIS2S_DATA": str(zipped)}
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines[:end + 1])],
                       cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (work / "runs" / "long.txt").read_text(encoding="utf-8").splitlines() == \
        corpus.splitlines()[-64:]
