"""minis2s.compiled's switch: $MINIS2S_KERNELS or use() chooses the cells' loops, a wrong
value and a missing numba are clear errors (these need no numba; tests/test_compiled.py
checks the compiled loops themselves)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minis2s import compiled
from minis2s.ops import CELLS, GRU, LSTM, RNN

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cells_restored():
    """Whatever a test switches, the NumPy cells afterwards."""
    yield
    CELLS.update(gru=GRU, lstm=LSTM, rnn=RNN)


def test_the_environment_chooses(monkeypatch, cells_restored):
    monkeypatch.delenv(compiled.ENV_VAR, raising=False)
    assert compiled.from_environment() == "numpy" and CELLS["gru"] is GRU
    monkeypatch.setenv(compiled.ENV_VAR, "numpy")
    assert compiled.from_environment() == "numpy" and CELLS["gru"] is GRU
    monkeypatch.setenv(compiled.ENV_VAR, "tensor-cores")
    with pytest.raises(compiled.CompiledError, match="numpy, compiled"):
        compiled.from_environment()
    assert not compiled.runs_compiled("gru")
    if importlib.util.find_spec("numba") is not None:
        monkeypatch.setenv(compiled.ENV_VAR, "compiled")
        assert compiled.from_environment() == "compiled"
        assert CELLS["gru"] is compiled.COMPILED_GRU
        assert CELLS["lstm"] is compiled.COMPILED_LSTM and CELLS["rnn"] is compiled.COMPILED_RNN
        assert all(compiled.runs_compiled(cell) for cell in ("gru", "lstm", "rnn"))
        assert not compiled.runs_compiled("transformer")
        monkeypatch.delenv(compiled.ENV_VAR)  # unset: the choice made stays
        assert compiled.from_environment() == "compiled"
        assert CELLS["gru"] is compiled.COMPILED_GRU
        assert compiled.use("numpy") == "numpy"  # and back, every cell
        assert (CELLS["gru"], CELLS["lstm"], CELLS["rnn"]) == (GRU, LSTM, RNN)


def test_without_numba_the_extra_is_named(monkeypatch, cells_restored):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba fails
    with pytest.raises(compiled.CompiledError, match=r"minis2s\[compiled\]"):
        compiled.use("compiled")
    assert CELLS["gru"] is GRU  # nothing switched


def test_the_command_refuses_an_unknown_choice():
    env = {**os.environ, compiled.ENV_VAR: "fast", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "minis2s", "gradcheck", "--help"],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0  # --help is answered before any command runs
    out = subprocess.run([sys.executable, "-m", "minis2s", "info", "no-such.npz"],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 2
    assert out.stderr == ("minis2s: error: MINIS2S_KERNELS must be one of numpy, compiled, "
                          "not 'fast'\n")
    assert "Traceback" not in out.stderr
