"""The commands README.md and the tutorial give: they write under ``runs/``, which git
ignores, never over the files the repository ships; and the lines that make
``runs/long.txt`` work wherever the corpus is kept (a zip or a plain ``fra.txt`` named by
``$MINIS2S_DATA``, or the zip in the cache)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from .test_notebook_sync import spec_module

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/bptt.md", "docs/zh/README.md", "docs/zh/bptt.md"]
BASH = re.compile(r"^[ \t]*```bash\n(.*?)^[ \t]*```", re.M | re.S)  # in a list item too
OUTPUT_FLAGS = {"--plot", "--out", "--attention-plot", "-o", "--output"}


def bash_commands(page: str) -> list[list[list[str]]]:
    """Each ```bash block of a page as its commands, each a list of words; a command
    whose quotes span several lines is one command."""
    blocks = []
    for m in BASH.finditer((ROOT / page).read_text(encoding="utf-8")):
        commands, pending = [], ""
        for line in m.group(1).replace("\\\n", " ").splitlines():
            pending = f"{pending}\n{line}" if pending else line
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # a quote still open: the command goes on
                continue
            pending = ""
            if words:
                commands.append(words)
        assert not pending, f"{page}: a quote is never closed in {pending!r}"
        blocks.append(commands)
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


def _in_a_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    r = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT,
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "true"


needs_git = pytest.mark.skipif(not _in_a_git_checkout(), reason="needs git and a checkout")


def gitignored(path: str) -> bool:
    """Whether the project's ignore rules cover ``path``, as git itself says.
    ``--no-index`` asks the rules even about a file git tracks (a shipped figure)."""
    r = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode == 0


@needs_git
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


@needs_git
def test_generated_files_are_ignored_and_the_shipped_figures_are_not():
    for path in ["runs/french.txt", "runs/long.txt", "runs/zh/checkpoint.npz",
                 "runs/gradflow_fresh.png", "runs/bptt_notebook.ipynb", "long.txt",
                 "bptt_notebook.ipynb"]:
        assert gitignored(path), path
    for path in ["docs/gradflow_fresh.png", "docs/gradflow_trained.png", "README.md",
                 "docs/bptt_notebook.py", "docs/bptt_notebook.ipynb",
                 "docs/exercises_notebook.ipynb"]:
        assert not gitignored(path), path


def test_the_docs_make_their_notebooks_by_one_command_and_any_other_under_runs():
    """The shipped notebooks are made by ``python docs/make_notebooks.py``, which every
    page that tells how to remake one gives; a ``jupytext --to notebook`` command, where a
    page gives one, writes its .ipynb under runs/, never beside the shipped ones."""
    found, told = [], []
    for page in [*PAGES, "docs/bptt_notebook.py", "docs/contributing.md", "docs/exercises.md"]:
        text = (ROOT / page).read_text(encoding="utf-8")
        if page.endswith(".py"):  # the notebook's markdown is comment lines
            text = re.sub(r"^# ?", "", text, flags=re.M)
        text = " ".join(text.split())
        told += [page] * ("python docs/make_notebooks.py" in text)
        found += [(page, m.group(0)) for m in
                  re.finditer(r"jupytext --to notebook [^`]*?(?=`|$)", text)]
    assert {"docs/bptt.md", "docs/exercises.md", "docs/bptt_notebook.py",
            "docs/contributing.md"} <= set(told), told
    wrong = [f for f in found if not re.search(r" (-o|--output) runs/\S+\.ipynb", f[1])]
    assert not wrong, f"jupytext commands that write beside the script: {wrong}"
    make = spec_module("make_notebooks", ROOT / "docs" / "make_notebooks.py")
    assert {f"docs/{name}.ipynb" for name in make.NOTEBOOKS} == \
        {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.ipynb")}


CORPUS = "".join(f"Line {i}.\tLigne {i} .\tCC-BY 2.0 (France)\n" for i in range(100))


def _long_pairs_lines(page: str) -> str:
    """The page's lines up to the one that writes runs/long.txt, as the page shows them
    (a block inside a list item loses the item's indentation)."""
    block = next(b for b in BASH.findall((ROOT / page).read_text(encoding="utf-8"))
                 if "> runs/long.txt" in b)
    lines = block.splitlines()
    end = next(i for i, line in enumerate(lines) if "> runs/long.txt" in line)
    return textwrap.dedent("\n".join(lines[:end + 1]))


def _zipped(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fra-eng/fra.txt", CORPUS)
    return path


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("kept", ["zip", "plain fra.txt", "cache"])
@pytest.mark.parametrize("page", PAGES)
def test_the_long_pairs_command_finds_the_corpus_where_minis2s_keeps_it(page, kept,
                                                                        tmp_path):
    """The documented lines run in an empty folder with the corpus (100 lines) kept three
    ways: a zip named by $MINIS2S_DATA, a plain fra.txt named by it, or the zip in the
    cache of a home folder of its own (no $MINIS2S_DATA, no $MINIS2S_CACHE)."""
    home, work, shims = tmp_path / "home", tmp_path / "work", tmp_path / "bin"
    for folder in (home, work, shims):
        folder.mkdir()
    (shims / "python").symlink_to(sys.executable)  # the docs say python
    env = {k: v for k, v in os.environ.items() if k not in ("MINIS2S_DATA", "MINIS2S_CACHE")}
    # no download: the cache must be found, and a request would fail at once
    env.update(PATH=f"{shims}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT),
               HOME=str(home), http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    if kept == "zip":
        env["MINIS2S_DATA"] = str(_zipped(tmp_path / "data" / "fra-eng.zip"))
    elif kept == "plain fra.txt":
        (tmp_path / "fra.txt").write_text(CORPUS, encoding="utf-8")
        env["MINIS2S_DATA"] = str(tmp_path / "fra.txt")
    else:
        _zipped(home / ".cache" / "minis2s" / "fra-eng.zip")
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", _long_pairs_lines(page)],
                       cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (work / "runs" / "long.txt").read_text(encoding="utf-8").splitlines() == \
        CORPUS.splitlines()[-64:]
