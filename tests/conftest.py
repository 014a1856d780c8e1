import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


import pytest  # noqa: E402

from minis2s.data import ENV_DATA  # noqa: E402

# tqdm's write lock is by default a multiprocessing lock, shared by every process forked
# from the one that made it: mutation testing forks one process per mutant and kills
# those that run too long, and a process killed holding that lock would block every
# later one. The tests use a lock of each process's own, and no monitor thread (which
# takes the lock every few seconds, and could hold it at the moment of a fork).
try:
    import threading

    import tqdm

    tqdm.tqdm.set_lock(threading.RLock())
    tqdm.tqdm.monitor_interval = 0
except ImportError:  # pragma: no cover - tqdm is a dependency
    pass

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


@pytest.fixture(autouse=True)
def _backend_only_when_asked(request, monkeypatch):
    """``$MINIS2S_BACKEND`` reaches only the tests marked ``backend_from_environment``:
    for every other test (and the commands it starts) it is unset, so that setting it
    in the shell cannot move the suite onto another backend unseen."""
    if request.node.get_closest_marker("backend_from_environment") is None:
        monkeypatch.delenv("MINIS2S_BACKEND", raising=False)


@pytest.fixture
def cupy_double(monkeypatch):
    """The CuPy double (tests/cupy_double.py) installed as ``cupy`` and ``cupyx`` for
    this test; its ``syncs`` count the synchronisations."""
    from .cupy_double import install

    return install(monkeypatch)


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


# What a plain install does not check. tests/test_parity_torch.py needs PyTorch,
# tests/test_parity_jax.py JAX, and tests/test_mpi.py mpi4py and mpiexec; without them
# they skip, and the end of the run says so on a line of its own, "NOT CHECKED: ...",
# with what to install. CI (.ci/run) sets MINIS2S_REQUIRE_TORCH=1, MINIS2S_REQUIRE_JAX=1
# and MINIS2S_REQUIRE_MPI=1: there a skipped module fails the run instead.

TORCH_PIN = "torch==2.13.0"  # the PyTorch .ci/run installs
MPI_EXTRA = "pip install 'minis2s[mpi]'"


def _why_no_torch(reason: str) -> str:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return f"torch not installed; pip install {TORCH_PIN}"
    return reason


def _why_no_jax(reason: str) -> str:
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        return "jax not installed; pip install jax==0.10.2"
    return reason


def _why_no_mpi(reason: str) -> str:
    import importlib.util
    import shutil

    missing = [what for what, absent in [
        ("mpi4py not installed", importlib.util.find_spec("mpi4py") is None),
        ("mpiexec missing", shutil.which("mpiexec") is None)] if absent]
    return f"{' and '.join(missing)}; {MPI_EXTRA}" if missing else reason


def _why_no_browser(reason: str) -> str:
    import importlib.util
    import shutil

    if importlib.util.find_spec("selenium") is None:
        return "selenium not installed; pip install 'minis2s[explore]'"
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "no chromium; apt-get install -y chromium chromium-driver"
    return reason


def _why_no_numba(reason: str) -> str:
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        return "numba not installed; pip install 'minis2s[compiled]'"
    return reason


# test module: (what it checks, the variable that makes a skip fail, why it skipped)
OPTIONAL_CHECKS = {
    "test_parity_torch.py": ("PyTorch parity", "MINIS2S_REQUIRE_TORCH", _why_no_torch),
    "test_parity_jax.py": ("the JAX reference's parity", "MINIS2S_REQUIRE_JAX", _why_no_jax),
    "test_mpi.py": ("multi-rank training", "MINIS2S_REQUIRE_MPI", _why_no_mpi),
    "test_explore_browser.py": ("browser check of the explorer", "MINIS2S_REQUIRE_BROWSER",
                                _why_no_browser),
    "test_compiled.py": ("compiled-loop equality", "MINIS2S_REQUIRE_COMPILED", _why_no_numba),
}
_seen: dict[str, dict] = {}  # test module -> {"skipped": [reasons], "ran": bool}


def _note(report) -> None:
    """Remember whether a test of an optional module ran, or why it skipped."""
    module = report.nodeid.split("::")[0].rsplit("/", 1)[-1]
    if module not in OPTIONAL_CHECKS:
        return
    seen = _seen.setdefault(module, {"skipped": [], "ran": False})
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        seen["skipped"].append(reason.removeprefix("Skipped: "))
    elif report.failed or getattr(report, "when", None) == "call":
        seen["ran"] = True  # a failure is loud already


def not_checked() -> list[tuple[str, str, str]]:
    """(what, why, the variable that requires it) for each optional module whose tests
    all skipped in this run."""
    found = []
    for module, (what, variable, why) in OPTIONAL_CHECKS.items():
        seen = _seen.get(module)
        if seen and seen["skipped"] and not seen["ran"]:
            found.append((what, why(seen["skipped"][0]), variable))
    return found


def pytest_sessionstart(session):
    _seen.clear()


def pytest_collectreport(report):
    _note(report)


def pytest_runtest_logreport(report):
    _note(report)


def pytest_sessionfinish(session, exitstatus):
    if any(os.environ.get(variable) for _, _, variable in not_checked()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After pytest's own summary (failures, the short summary), just above the last line
    of counts: what was not checked and why."""
    yield
    missing = not_checked()
    if not missing:
        return
    terminalreporter.write_line(
        "NOT CHECKED: " + ", ".join(f"{what} ({why})" for what, why, _ in missing),
        yellow=True, bold=True)
    for what, _, variable in missing:
        if os.environ.get(variable):
            terminalreporter.write_line(f"{variable} is set, so a skipped {what} fails "
                                        "this run", red=True, bold=True)
