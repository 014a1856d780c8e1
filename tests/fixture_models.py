"""Models the test fixtures train, trained once per mutation run.

A fixture that needs a trained checkpoint (to translate, evaluate or read) calls
:func:`train_for_fixture` instead of ``main(["train", ...])``. In a plain test run that
is all it does. Mutation testing (benchmarks/mutation.py) runs the selected tests once per
mutant, each time in a fresh process, so every module fixture would train its models again
for every mutant: most of a mutant's time. There ``$MINIS2S_TEST_MODELS`` names a folder in
which each fixture's run is kept the first time it is made (by the code without a mutant:
mutmut runs the tests unmutated first) and copied from then on. A mutant of the training
code is then judged by the tests whose subject is training, not by a fixture's set-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from minis2s.cli import main

MODELS_ENV = "MINIS2S_TEST_MODELS"


def _key(argv: list[str]) -> str:
    """The run's arguments, each path of an existing file replaced by its content's hash
    (the corpus lives under another temporary folder in every test process)."""
    words = []
    for word in argv:
        path = Path(word)
        if os.sep in word and path.is_file():
            word = "file:" + hashlib.sha1(path.read_bytes()).hexdigest()
        words.append(word)
    return hashlib.sha1(json.dumps(words).encode()).hexdigest()[:16]


def train_for_fixture(argv: list[str], out: Path) -> Path:
    """``minis2s train ARGV --out OUT`` (it must succeed); OUT's checkpoint. With
    ``$MINIS2S_TEST_MODELS`` set, a run made before with the same arguments (and the same
    files behind them) is copied into OUT instead."""
    out = Path(out)
    store = os.environ.get(MODELS_ENV)
    kept = Path(store) / _key(argv) if store else None
    if kept is not None and (kept / "checkpoint.npz").is_file():
        shutil.copytree(kept, out, dirs_exist_ok=True)
        return out / "checkpoint.npz"
    assert main(["train", *argv, "--out", str(out)]) == 0
    if kept is not None:  # kept whole or not at all: two processes may race to keep it
        kept.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=kept.parent))
        shutil.copytree(out, staging, dirs_exist_ok=True)
        try:
            staging.rename(kept)
        except OSError:  # another process kept it first
            shutil.rmtree(staging, ignore_errors=True)
    return out / "checkpoint.npz"
