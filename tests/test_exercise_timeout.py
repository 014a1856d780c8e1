"""An answer that never returns does not hang the grader: ``minis2s exercise check`` stops
it after ``--timeout SECONDS`` (default 30) with a report that says so and names the
learner's line it was stopped in, and exits 1; ``check(..., timeout=S)`` does the same
from Python. Each run that could hang is a process of its own, killed by the test if the
limit fails, so a broken limit fails here instead of hanging the suite."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minis2s.cli import main
from minis2s.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[1]
GUARD = 60  # seconds a process of these tests may take before it counts as hung


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def check_file(tmp_path, source: str, *flags, name="rnn_step") -> subprocess.CompletedProcess:
    """``minis2s exercise check NAME --file loop.py FLAGS`` on a file holding ``source``."""
    (tmp_path / "loop.py").write_text(source, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "minis2s", "exercise", "check", name,
                           "--file", "loop.py", *flags], capture_output=True, text=True,
                          cwd=tmp_path, env=env(), timeout=GUARD)


def test_an_endless_loop_is_stopped_and_said_so(tmp_path):
    r = check_file(tmp_path, "def rnn_step_backward(dh, cache):\n"
                             "    t = 0\n"
                             "    while t >= 0:\n"
                             "        t += 1\n", "--timeout", "0.5")
    assert r.returncode == 1, r.stderr
    assert r.stdout == ("rnn_step: not passed\n"
                        "  your rnn_step_backward took longer than 0.5 s — an endless loop? "
                        "It was stopped in:\n"
                        "    loop.py, line 3, in rnn_step_backward: while t >= 0:\n")
    assert r.stderr == ""


def test_a_file_that_loops_when_run_is_stopped_too(tmp_path):
    r = check_file(tmp_path, "while True:\n    pass\n", "--timeout", "0.5", name="clip")
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("clip: not passed\n  running loop.py took longer than 0.5 s "
                               "— an endless loop? It was stopped in:\n    loop.py, line ")
    assert "Traceback" not in r.stderr


def test_a_bare_except_around_the_loop_does_not_hold_it(tmp_path):
    """The first stop is swallowed by the learner's ``except BaseException``; the limit
    stops the loop after it again."""
    r = check_file(tmp_path, "def rnn_step_backward(dh, cache):\n"
                             "    try:\n"
                             "        while True:\n"
                             "            pass\n"
                             "    except BaseException:\n"
                             "        pass\n"
                             "    while True:\n"
                             "        pass\n", "--timeout", "0.5")
    assert r.returncode == 1, r.stderr
    assert "took longer than 0.5 s — an endless loop?" in r.stdout
    assert "loop.py, line 7, in rnn_step_backward: while True:" in r.stdout


def test_check_from_python_takes_a_timeout_and_puts_ctrl_c_back():
    """``check(..., timeout=S)`` reports the loop in the learner's own function, then the
    SIGINT handler is the one it found; a passing answer under a limit still passes."""
    script = "\n".join([
        "import signal",
        "from minis2s.exercises import check, solution_path",
        "before = signal.getsignal(signal.SIGINT)",
        "def my_clip(grads, max_norm):",
        "    while True:",
        "        pass",
        "report = check('clip', my_clip, timeout=0.3, show=False)",
        "print(report.passed, report.lines[0])",
        "print(signal.getsignal(signal.SIGINT) is before)",
        "print(check('clip', solution_path('clip'), timeout=30, show=False).passed)",
        "print(signal.getsignal(signal.SIGINT) is before)",
    ])
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       env=env(), timeout=GUARD)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "False your my_clip took longer than 0.3 s — an endless loop? It was stopped in:",
        "True", "True", "True"]


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix",
                    reason="sends a real SIGINT to a child process")
def test_ctrl_c_before_the_limit_is_still_an_interruption(tmp_path):
    """A Ctrl-C while the answer runs, before the limit, stops the command as Ctrl-C does
    everywhere (exit 130), not as a time limit."""
    started = tmp_path / "started"
    (tmp_path / "loop.py").write_text(
        "from pathlib import Path\n"
        "def rnn_step_backward(dh, cache):\n"
        f"    Path({str(started)!r}).touch()\n"
        "    while True:\n"
        "        pass\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "minis2s", "exercise", "check", "rnn_step",
                             "--file", "loop.py", "--timeout", str(GUARD)], cwd=tmp_path,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + GUARD
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the answer never started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=GUARD)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert err.strip() == "minis2s: interrupted"
    assert "took longer" not in out


def test_the_limit_is_30_s_unless_told_and_0_means_none(monkeypatch, capsys, tmp_path):
    import minis2s.exercises as exercises

    seen = []

    def recording_check(name, what, *, timeout=None, show=True):
        seen.append(timeout)
        return exercises.Report(name, True)

    monkeypatch.setattr(exercises, "check", recording_check)
    for flags in ([], ["--timeout", "0"], ["--timeout", "2.5"]):
        assert main(["exercise", "check", "clip", "--solutions", *flags]) == 0
    assert seen == [30, None, 2.5]
    assert build_parser().parse_args(["exercise", "check", "clip"]).timeout == 30


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_a_limit_that_is_no_number_of_seconds_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["exercise", "check", "clip", "--solutions", "--timeout", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert (f"minis2s exercise check: error: argument --timeout: not a number of seconds "
            f"(0 or more): '{value}'") in err
    assert "Traceback" not in err
