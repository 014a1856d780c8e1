"""The one place that chooses the array module (NumPy or CuPy) and the dtype.

Ops never import numpy or cupy: they call :func:`array_module` on their inputs, so the
same code runs on either library. Everything else asks :func:`get_backend` for a
:class:`Backend`, which names the module, the floating dtype and how to draw random
numbers from a generator that the caller owns (never the global RNG).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy

BACKENDS = ("numpy", "cupy")
DTYPES = ("float32", "float64")
ENV_VAR = "MINIS2S_BACKEND"


class BackendError(RuntimeError):
    """The requested backend or dtype cannot be used here."""


def array_module(*arrays: Any):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy  # only reached when a CuPy array exists, so CuPy is installed

            return cupy
    return numpy


def index_add(target, ids, rows) -> None:
    """``target[ids[i]] += rows[i]`` for every i, repeated ids accumulating, in place.

    NumPy: a sorted segment sum (``np.add.at`` is several times slower); CuPy:
    ``cupy.add.at``, an atomic scatter-add on the GPU.
    """
    xp = array_module(target)
    if xp is not numpy:
        xp.add.at(target, ids, rows)
        return
    if ids.size == 0:
        return
    order = numpy.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = numpy.flatnonzero(numpy.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    target[sorted_ids[starts]] += numpy.add.reduceat(rows[order], starts, axis=0)


def overflow_ignored():
    """A context in which NumPy does not warn when a result overflows to inf (for ops
    where inf is the exact limit, as exp inside a sigmoid). CuPy never warns."""
    return numpy.errstate(over="ignore")


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BELOW = 32 << 20  # glibc's largest mmap threshold on 64-bit machines: 32 MiB
_freed_memory_kept = False


def keep_freed_memory() -> bool:
    """Ask the C library's allocator to keep the memory a training step frees, for the
    next step to use again; returns whether it could (glibc on Linux), once per process.

    A step makes and drops the same large temporaries every time (gates, factors,
    logits: up to ~10 MB each at `big`). By default glibc gives large freed blocks back
    to the system (unmapping them, or trimming the top of its heap) and takes fresh
    pages for the next, and every fresh page costs a page fault when first written
    (docs/performance.md, "Changes, predicted and measured", has what that cost). With
    this, blocks up to 32 MiB come from the heap and the heap is not trimmed, so the
    freed blocks are there for the next step. The process's peak memory stays what it
    was; it just does not shrink between steps. Elsewhere (macOS, Windows, musl) this
    does nothing.
    """
    global _freed_memory_kept
    if _freed_memory_kept:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        if not hasattr(libc, "gnu_get_libc_version"):  # glibc only: musl ignores these
            return False
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # a fixed mmap threshold stops glibc raising it by itself; the trim threshold at
    # its largest keeps freed memory at the top of the heap
    _freed_memory_kept = bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BELOW)
                              and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _freed_memory_kept


def to_numpy(x: Any) -> numpy.ndarray:
    """Copy an array of either backend to a NumPy array (no copy for NumPy input)."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return numpy.asarray(x)


def _import_cupy():
    """CuPy, once it has shown that the GPU computes: a 2x2 product and its ``exp``, made
    on the device (under ``mpiexec``, the rank's device, :func:`_select_device`) and
    copied back, must be NumPy's. Any failure on the way (CuPy missing or broken, no
    device, a driver or library that cannot run a kernel, wrong numbers) is a
    :class:`BackendError` that says what failed."""
    try:
        import cupy
    except ImportError as exc:
        if exc.name == "cupy":
            raise BackendError(
                "the 'cupy' backend needs CuPy, which is not installed; install the GPU "
                "extra for this machine's CUDA: pip install 'minis2s[gpu]' (CUDA 13) or "
                "'minis2s[gpu-cuda12]' (CUDA 12)") from exc
        raise BackendError(f"CuPy is installed but does not import: {exc}") from exc
    except Exception as exc:
        raise BackendError(f"CuPy is installed but does not import: "
                           f"{type(exc).__name__}: {exc}") from exc
    x = numpy.array([[0.5, -1.0], [0.25, 0.75]])
    want = numpy.exp(x @ x)
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise BackendError("the 'cupy' backend found no CUDA device")
        _select_device(cupy, count)
        on_device = cupy.asarray(x)
        got = cupy.asnumpy(cupy.exp(on_device @ on_device))
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"the 'cupy' backend cannot compute on the GPU: "
                           f"{type(exc).__name__}: {exc}") from exc
    if not numpy.allclose(got, want, rtol=1e-12, atol=0):
        raise BackendError("the 'cupy' backend computes wrong numbers on the GPU: a 2x2 "
                           "product and its exp differ from NumPy's")
    return cupy


def _select_device(cupy, count: int) -> None:
    """Under an MPI launcher with several ranks, make GPU ``local rank mod count`` this
    process's device (the rank within its machine, as the launcher numbers it), so the
    ranks on one machine share its GPUs out; a plain process keeps CuPy's current
    device."""
    from .train.ranks import launched_local_rank, launched_ranks

    if launched_ranks() > 1:
        cupy.cuda.Device(launched_local_rank() % count).use()


@dataclass(frozen=True)
class Backend:
    """An array module with a floating dtype, and the random draws made with it."""

    name: str
    xp: Any
    dtype: Any

    def asarray(self, x, dtype=None):
        """Move ``x`` onto this backend (floating arrays get the backend's dtype)."""
        return self.xp.asarray(x, dtype=self.dtype if dtype is None else dtype)

    def generator(self, seed: int | None):
        """A random generator started from the random seed ``seed``, living where this
        backend's arrays live."""
        return self.xp.random.default_rng(seed)

    def dropout_mask(self, gen, shape, p: float):
        """Inverted-dropout mask: 0 with probability ``p``, else ``1 / (1 - p)``."""
        if p <= 0.0:
            return None
        keep = gen.random(shape, dtype=self.dtype) >= p  # both libraries' generators
        return self.xp.multiply(keep, self.dtype.type(1.0 / (1.0 - p)), dtype=self.dtype)

    @property
    def device(self) -> str:
        return "cpu" if self.name == "numpy" else "gpu"


def get_backend(name: str | None = None, dtype: str = "float32") -> Backend:
    """Resolve a backend by name, else from ``$MINIS2S_BACKEND``, else NumPy."""
    if name is None:
        name = os.environ.get(ENV_VAR, "").strip() or "numpy"
    name = name.lower()
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if str(dtype) not in DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    xp = numpy if name == "numpy" else _import_cupy()
    return Backend(name=name, xp=xp, dtype=numpy.dtype(str(dtype)))


def map_arrays(fn, tree):
    """``fn`` applied to every array of a nest of lists and (named) tuples; None stays."""
    if tree is None:
        return None
    if isinstance(tree, list):
        return [map_arrays(fn, t) for t in tree]
    if isinstance(tree, tuple):
        items = [map_arrays(fn, t) for t in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else tuple(items)
    return fn(tree)
