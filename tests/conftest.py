import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


import pytest  # noqa: E402

from minis2s.data import ENV_DATA  # noqa: E402

_WORDS_EN = ["i", "you", "he", "she", "we", "run", "go", "lost", "am", "home", "calm",
             "is", "are", "see", "it"]
_WORDS_FR = ["je", "tu", "il", "elle", "nous", "cours", "va", "perdu", "suis", "chez",
             "moi", "calme", "est", "sommes", "vois"]


def _tiny_corpus(path, n=400, seed=0):
    """A made-up parallel corpus: word-for-word 'translations' of random short lines."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        k = int(rng.integers(1, 5))
        idx = rng.integers(0, len(_WORDS_EN), k)
        en = " ".join(_WORDS_EN[i] for i in idx).capitalize() + "."
        fr = " ".join(_WORDS_FR[i] for i in idx).capitalize() + " !"
        lines.append(f"{en}\t{fr}\tCC-BY 2.0 (France) Attribution: tatoeba.org\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """The real corpus when MINIS2S_DATA names it (CI), else a tiny made-up one."""
    import os
    from pathlib import Path

    env = os.environ.get(ENV_DATA)
    if env and Path(env).is_file():
        return Path(env)
    return _tiny_corpus(tmp_path_factory.mktemp("corpus") / "fra.txt")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    return _tiny_corpus(tmp_path_factory.mktemp("tiny") / "fra.txt")
