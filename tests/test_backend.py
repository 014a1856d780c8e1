import ast
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minis2s.backend import BackendError, array_module, get_backend, to_numpy

ROOT = Path(__file__).resolve().parents[1]


def test_default_is_numpy_float32(monkeypatch):
    monkeypatch.delenv("MINIS2S_BACKEND", raising=False)
    b = get_backend()
    assert b.name == "numpy" and b.xp is np and b.dtype == np.float32 and b.device == "cpu"


def test_float64_for_checks():
    assert get_backend("numpy", "float64").dtype == np.float64


def test_environment_variable_chooses(monkeypatch):
    monkeypatch.setenv("MINIS2S_BACKEND", "numpy")
    assert get_backend().name == "numpy"
    monkeypatch.setenv("MINIS2S_BACKEND", "tensorflow")
    with pytest.raises(BackendError, match="unknown backend"):
        get_backend()


def test_unknown_dtype_is_refused():
    with pytest.raises(BackendError, match="dtype"):
        get_backend("numpy", "float16")


def test_cupy_without_cupy_names_the_extra():
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed here")
    except ImportError:
        pass
    with pytest.raises(BackendError, match=r"minis2s\[gpu\]"):
        get_backend("cupy")


def test_array_module_and_to_numpy():
    x = np.ones(3)
    assert array_module(x) is np and array_module(1.0, x) is np
    assert to_numpy(x) is x


def test_generator_is_seeded_and_owned():
    b = get_backend("numpy")
    state = np.random.get_state()[1].copy()
    m1 = b.dropout_mask(b.generator(5), (4, 6), 0.5)
    m2 = b.dropout_mask(b.generator(5), (4, 6), 0.5)
    np.testing.assert_array_equal(m1, m2)
    assert set(np.unique(m1)) <= {0.0, 2.0} and m1.dtype == np.float32
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched
    assert b.dropout_mask(b.generator(5), (2,), 0.0) is None


_ARRAY_LIBRARIES = {"numpy", "cupy", "cupyx"}


def _imported_modules(tree):
    """Absolute module names a module's source imports, at any depth (functions included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                   or (isinstance(node.func, ast.Attribute)
                       and node.func.attr == "import_module"))):
            yield node.args[0].value  # __import__("numpy"), importlib.import_module("cupy")


def test_ops_never_import_an_array_library():
    """The ops take the array module from their arguments, so they run on NumPy and CuPy."""
    paths = sorted((ROOT / "minis2s" / "ops").rglob("*.py"))
    assert len(paths) >= 5, paths  # the ops are where this test looks for them
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in _imported_modules(tree):
            assert name.split(".")[0] not in _ARRAY_LIBRARIES, \
                f"{path.relative_to(ROOT)} imports {name}"


def test_import_check_sees_every_form():
    """The check above catches each way of writing an import of an array library."""
    for source in ("import numpy", "import numpy as np", "import os, numpy.linalg as la",
                   "from numpy import zeros", "from numpy.linalg import norm as n",
                   "from cupyx.scipy import special", "import cupy",
                   "def f():\n    import numpy\n", "np = __import__('numpy')",
                   "import importlib\nxp = importlib.import_module('cupy')"):
        names = [n.split(".")[0] for n in _imported_modules(ast.parse(source))]
        assert _ARRAY_LIBRARIES & set(names), source
    for source in ("from . import numpy", "from .numpy_like import x", "import numbers",
                   "from typing import Any", "from ..backend import array_module"):
        names = [n.split(".")[0] for n in _imported_modules(ast.parse(source))]
        assert not _ARRAY_LIBRARIES & set(names), source


def test_import_needs_only_base_dependencies():
    code = ("import sys\n"
            "for m in ('torch', 'cupy', 'matplotlib', 'hypothesis', 'pytest', 'mpi4py',\n"
            "          'threadpoolctl', 'jupytext'):\n"
            "    sys.modules[m] = None\n"
            "import minis2s, minis2s.cli, minis2s.model, minis2s.gradcheck, minis2s.train\n"
            "import minis2s.gradflow, minis2s.decode, minis2s.evaluate\n"
            "print('ok')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("V", [1, 7, 1000])
def test_index_add_matches_add_at(V):
    from minis2s.backend import index_add

    rng = np.random.default_rng(V)
    ids = rng.integers(0, V, 300)
    ids[:5] = ids[0]  # repeats accumulate
    rows = rng.standard_normal((300, 6))
    start = rng.standard_normal((V, 6))
    got, want = start.copy(), start.copy()
    index_add(got, ids, rows)
    np.add.at(want, ids, rows)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    untouched = np.setdiff1d(np.arange(V), ids)
    assert np.array_equal(got[untouched], start[untouched])
    index_add(got, ids[:0], rows[:0])  # nothing to add
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# a fresh process that makes and writes four 8 MB arrays, then drops them, 20 times (as
# a step makes and drops its temporaries), and prints the page faults that took, with
# glibc's default or after keep_freed_memory (one process each, so that the setting of
# one run cannot reach the other). Transparent huge pages are turned off for it (and
# NumPy's request for them), so that a fresh page is a 4 KiB one on every machine.
_FAULTS = """
import ctypes, resource, sys
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
import numpy as np
from minis2s.backend import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():
    arrays = [np.empty(2 << 20, np.float32) for _ in range(4)]  # 8 MB each
    for a in arrays:
        a.fill(1.0)  # every page written
step()  # once, so that the heap has grown to it
start = faults()
for _ in range(20):
    step()
print(faults() - start)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux")
                    or platform.libc_ver()[0] != "glibc", reason="glibc's allocator")
def test_freed_memory_is_kept_for_the_next_step():
    """With glibc's default the freed temporaries go back to the system and come back as
    fresh pages, a fault per 4 KiB page written (8,192 per step of 32 MB); with the
    setting, the freed blocks are written again in place."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMPY_MADVISE_HUGEPAGE": "0"}

    def faults(mode):
        return int(subprocess.run([sys.executable, "-c", _FAULTS, mode], check=True,
                                  capture_output=True, text=True, env=env, cwd=ROOT
                                  ).stdout)

    default, kept = faults("default"), faults("keep")
    assert default > 20 * 4000  # fresh pages at every step
    assert kept < 1000  # the same pages again


def test_keep_freed_memory_is_asked_by_the_numpy_trainer(monkeypatch):
    import minis2s.train.trainer as trainer_module
    from minis2s.model import ModelConfig
    from minis2s.presets import get_preset
    from minis2s.train import Trainer

    calls = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append(1))
    cfg = ModelConfig(src_vocab_size=5, tgt_vocab_size=6, embed_size=3, num_hiddens=4,
                      num_layers=1)
    Trainer(cfg, get_preset("zh"), get_backend("numpy"))
    assert calls == [1]
