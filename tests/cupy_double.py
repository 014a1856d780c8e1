"""A strict stand-in for CuPy, so that the model's CuPy path runs in the tests on a machine
without a GPU.

:func:`install` puts two modules in ``sys.modules`` under the names ``cupy`` and
``cupyx``; minis2s imports them as it would the real ones (``get_backend("cupy")``,
:func:`minis2s.backend.array_module`). Their arrays (:class:`ndarray`) hold a NumPy array
and compute with NumPy, so every result is NumPy's bit for bit, but they behave as
CuPy's do where a mix-up between host and device would hide:

* no implicit conversion to NumPy: ``numpy.asarray(a)``, ``__array__`` and NumPy
  functions or ufuncs called on a device array (``__array_function__``,
  ``__array_ufunc__``) raise ``TypeError``;
* a NumPy array is refused as an operand of the module's functions and of the arrays'
  operators (``TypeError``), and as a value assigned into a device array; NumPy integer
  and boolean arrays are accepted as indices, as CuPy accepts them;
* no ``__index__``: a device scalar cannot stand where Python wants an int;
* every ``float()``, ``int()``, ``bool()``, ``complex()``, ``.item()``, ``.get()``,
  ``.tolist()``, ``asnumpy``, ``repr`` or format, ``nonzero`` and device synchronisation
  is counted in :data:`syncs`: each one makes the host wait for the GPU;
* a reduction with no identity (max, min, argmax, argmin) of an array with a zero-size
  axis raises ``ValueError`` with CuPy's words. CuPy raises when the input has a
  zero-size axis and the output is not empty (older versions whatever the output); the
  double takes the stricter rule, so code that passes here passes on every CuPy;
* ``cupyx.scatter_add`` warns that it is deprecated (CuPy's advice: ``cupy.add.at``).

What the double lacks raises ``AttributeError`` naming itself, so a CuPy function new to
minis2s shows up here first. Its limits: it computes on the host, so it cannot show what
is slow on a GPU, nor results that differ because a GPU sums in another order (atomic
adds, cuBLAS); ``add.at`` sums each index's rows in the order NumPy's
:func:`minis2s.backend.index_add` does (one of the orders a GPU's atomic adds may take),
so that results stay NumPy's exactly. Its random generator draws NumPy's stream for the
seed (real CuPy draws another), so masks drawn on either are the same. It is stricter
than CuPy in one place: CuPy would dispatch a NumPy function called on its array to its
own (``__array_function__``); the double refuses it, as production code should call
``xp``'s function.
"""

from __future__ import annotations

import sys
import threading
import types
import warnings

import numpy as np

# ---------------------------------------------------------------------- synchronisations


class Syncs:
    """Every time the host waits for the device: what made it wait, in order, with the
    thread that did (ranks simulated in threads count apart) and the shape of what came
    back (None when nothing did)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, tuple | None]] = []
        self._lock = threading.Lock()

    def add(self, what: str, shape: tuple | None = None) -> None:
        with self._lock:
            self.events.append((what, threading.current_thread().name, shape))

    def reset(self) -> None:
        with self._lock:
            self.events.clear()

    @property
    def count(self) -> int:
        return len(self.events)

    def kinds(self, thread: str | None = None) -> list[str]:
        """What made the host wait, in order (only ``thread``'s if given)."""
        return [what for what, t, _ in self.events if thread is None or t == thread]

    def threads(self) -> dict[str, list[str]]:
        """What made the host wait, per thread, in order."""
        out: dict[str, list[str]] = {}
        for what, t, _ in self.events:
            out.setdefault(t, []).append(what)
        return out

    def copied(self) -> list[tuple]:
        """The shapes of the arrays copied to the host, in order."""
        return [shape for _, _, shape in self.events if shape is not None]


syncs = Syncs()


class _Device:
    """The double's devices: how many there are, which one is current, and faults to
    inject into the checks minis2s makes when it starts the backend."""

    def __init__(self) -> None:
        self.count = 1
        self.current = 0
        self.faults: dict[str, BaseException] = {}  # name of a call -> what it raises
        self.wrong_exp = False  # exp gives wrong numbers (a broken device)


state = _Device()


def _fault(name: str) -> None:
    if name in state.faults:
        raise state.faults[name]


# ---------------------------------------------------------------------- operands


def _refused(x) -> TypeError:
    return TypeError(f"Unsupported type {type(x)}")  # CuPy's words for a host array


def _operand(x):
    """An argument of a function: the double's arrays unwrapped, Python and NumPy scalars
    as they are, sequences element by element; a NumPy array is refused."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise _refused(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_operand(v) for v in x)
    return x


def _scalar_operand(x):
    """An operand of an operator: a device array or a scalar. Anything else (a NumPy
    array, a list) is refused, as CuPy's operators refuse it."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return x
    raise _refused(x)


def _index(key):
    """An index: the double's arrays unwrapped, NumPy integer or boolean arrays accepted
    (CuPy copies them to the device), slices, ints, None and Ellipsis as they are."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, ndarray):
        key = key._a
    elif isinstance(key, list):
        key = np.asarray(key)
    if isinstance(key, np.ndarray) and key.dtype.kind not in "iub":
        raise IndexError("arrays used as indices must be of integer or boolean type. "
                         f"(actual: {key.dtype.type})")
    return key


def _wrap(r):
    """A NumPy result as the double's: arrays and NumPy scalars become device arrays
    (CuPy's reductions give 0-d arrays, never host scalars)."""
    if isinstance(r, np.ndarray):
        return ndarray(r)
    if isinstance(r, np.generic):
        return ndarray(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _kwargs(kwargs: dict) -> dict:
    out = {}
    for k, v in kwargs.items():
        if k == "out" and v is not None and not isinstance(v, ndarray):
            raise TypeError(f"out must be a cupy.ndarray, not {type(v)}")
        out[k] = _operand(v)
    return out


_NO_IDENTITY = {"max": "cupy_max", "amax": "cupy_max", "min": "cupy_min",
                "amin": "cupy_min", "argmax": "cupy_argmax", "argmin": "cupy_argmin",
                "nanmax": "cupy_nanmax", "nanmin": "cupy_nanmin"}


def _check_reduction(name: str, a: np.ndarray) -> None:
    if name in _NO_IDENTITY and 0 in a.shape:
        raise ValueError(f"zero-size array to reduction operation {_NO_IDENTITY[name]} "
                         "which has no identity")


# ---------------------------------------------------------------------- the array


def _binary(name: str):
    def op(self, other):
        if "matmul" in name:
            _fault("matmul")
        r = getattr(self._a, name)(_scalar_operand(other))
        return NotImplemented if r is NotImplemented else _wrap(r)

    op.__name__ = name
    return op


def _inplace(name: str):
    def op(self, other):
        r = getattr(self._a, name)(_scalar_operand(other))
        if r is NotImplemented:
            return NotImplemented
        return self

    op.__name__ = name
    return op


def _unary(name: str):
    def op(self):
        return _wrap(getattr(self._a, name)())

    op.__name__ = name
    return op


def _method(name: str):
    def m(self, *args, **kwargs):
        _check_reduction(name, self._a)
        return _wrap(getattr(self._a, name)(*_operand(args), **_kwargs(kwargs)))

    m.__name__ = name
    return m


def _synced(what: str, convert):
    def m(self, *args, **kwargs):
        syncs.add(what, self._a.shape)
        return convert(self._a, *args, **kwargs)

    m.__name__ = what
    return m


class ndarray:
    """A device array of the double: a NumPy array inside, CuPy's manners outside."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy's ufuncs and operators give way, then refuse
    __hash__ = None

    def __init__(self, a):
        if not isinstance(a, np.ndarray):
            raise TypeError("the double's arrays are made by its functions "
                            "(cupy.asarray, cupy.zeros, ...), not by ndarray()")
        self._a = a

    # -- what CuPy refuses
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was given a device array (the CuPy "
                        "double refuses it): call the cupy function, or copy the array "
                        "to the host with .get()")

    # -- what it knows without the device
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: ndarray(self._a.T))
    device = property(lambda self: cuda_Device(state.current))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(len(self._a)):
            yield self[i]

    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        self._a[_index(key)] = _scalar_operand(value)

    # -- what makes the host wait
    __float__ = _synced("float", lambda a: float(a))
    __int__ = _synced("int", lambda a: int(a))
    __bool__ = _synced("bool", lambda a: bool(a))
    __complex__ = _synced("complex", lambda a: complex(a))
    item = _synced("item", lambda a, *args: a.item(*args))
    tolist = _synced("tolist", lambda a: a.tolist())
    __repr__ = _synced("repr", lambda a: repr(a))
    __str__ = _synced("str", lambda a: str(a))
    __format__ = _synced("format", lambda a, spec: format(a.item() if a.ndim == 0 else a,
                                                           spec))

    def get(self, stream=None, order="C", out=None):
        """A copy on the host (a synchronisation)."""
        syncs.add("get", self._a.shape)
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        """Copy the host array ``arr`` into this one."""
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, not {type(arr)}")
        self._a[...] = arr

    def nonzero(self):
        syncs.add("nonzero", self._a.shape)  # CuPy counts the nonzero elements on the host
        return _wrap(self._a.nonzero())

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ndarray(self._a.reshape(shape, order=order))

    def fill(self, value):
        self._a.fill(_scalar_operand(value))


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__",
              "__rmod__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__", "__and__",
              "__rand__", "__or__", "__ror__", "__xor__", "__rxor__", "__lt__", "__le__",
              "__gt__", "__ge__", "__eq__", "__ne__", "__lshift__", "__rshift__"):
    setattr(ndarray, _name, _binary(_name))
for _name in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__",
              "__imod__", "__ipow__", "__iand__", "__ior__", "__ixor__"):
    setattr(ndarray, _name, _inplace(_name))
for _name in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(ndarray, _name, _unary(_name))
for _name in ("transpose", "copy", "astype", "sum", "mean", "var", "std", "prod", "max",
              "min", "argmax", "argmin", "all", "any", "ravel", "flatten", "squeeze",
              "swapaxes", "cumsum", "clip", "dot", "take", "repeat", "argsort", "sort",
              "diagonal", "view", "conj", "round"):
    setattr(ndarray, _name, _method(_name))
ndarray.__module__ = "cupy"  # where minis2s.backend.array_module looks
ndarray.__qualname__ = "ndarray"


# ---------------------------------------------------------------------- functions


def _function(name: str, numpy_func=None):
    f = numpy_func or getattr(np, name)

    def call(*args, **kwargs):
        if args and isinstance(args[0], ndarray):
            _check_reduction(name, args[0]._a)
        return _wrap(f(*_operand(args), **_kwargs(kwargs)))

    call.__name__ = call.__qualname__ = name
    return call


class ufunc:
    """A CuPy ufunc: callable, and ``at`` for unbuffered in-place updates."""

    def __init__(self, name: str):
        self.__name__ = name
        self._call = _function(name)

    def __call__(self, *args, **kwargs):
        if self.__name__ == "exp":
            _fault("exp")
            if state.wrong_exp:
                return _wrap(np.zeros_like(_operand(args[0])))
        return self._call(*args, **kwargs)

    def at(self, a, indices, b=None):
        """``a[indices] op= b`` with repeated indices each counted."""
        if not isinstance(a, ndarray):
            raise TypeError(f"{self.__name__}.at needs a cupy.ndarray, not {type(a)}")
        ids = _index(indices)
        values = None if b is None else _scalar_operand(b)
        if (self.__name__ == "add" and isinstance(ids, np.ndarray) and ids.ndim == 1
                and ids.dtype.kind in "iu" and isinstance(values, np.ndarray)
                and values.shape == (len(ids), *a.shape[1:])):
            # each index's rows summed in NumPy's index_add order, then added once
            if ids.size == 0:
                return
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
            a._a[sorted_ids[starts]] += np.add.reduceat(values[order], starts, axis=0)
            return
        getattr(np, self.__name__).at(a._a, ids, *(() if b is None else (values,)))

    def __getattr__(self, name):
        raise AttributeError(f"cupy.{self.__name__}.{name} is not in the CuPy double "
                             "(tests/cupy_double.py): add it there, as CuPy behaves")


_UFUNCS = ("add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "power",
           "negative", "exp", "log", "log1p", "expm1", "tanh", "sqrt", "square", "abs",
           "absolute", "sign", "maximum", "minimum", "greater", "greater_equal", "less",
           "less_equal", "equal", "not_equal", "logical_and", "logical_or", "logical_not",
           "isfinite", "isnan", "isinf", "sin", "cos", "reciprocal")
_FUNCTIONS = ("zeros_like", "empty_like", "ones_like", "full_like", "concatenate", "stack",
              "where", "matmul", "dot", "einsum", "tensordot", "outer", "sum", "max",
              "amax", "min", "amin", "argmax", "argmin", "mean", "all", "any", "clip",
              "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "swapaxes",
              "moveaxis", "ascontiguousarray", "argpartition", "partition", "argsort",
              "sort", "take_along_axis", "take", "cumsum", "isclose", "array_equal", "repeat",
              "tile", "flip", "diff")


def _creation(name: str):
    f = getattr(np, name)

    def make(*args, **kwargs):
        return _wrap(f(*_operand(args), **_kwargs(kwargs)))

    make.__name__ = name
    return make


def asarray(a, dtype=None, order=None, *, blocking=False):
    """A device array: ``a`` itself when it is one of the right dtype, else a copy of
    the host data on the device."""
    if isinstance(a, ndarray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return ndarray(a._a.astype(dtype))
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(obj, ndarray):
        return ndarray(np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    return ndarray(np.array(obj, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """A host copy of a device array (a synchronisation); host data as it is."""
    if isinstance(a, ndarray):
        syncs.add("asnumpy", a._a.shape)
        return np.array(a._a, order=order, copy=True)
    return np.asarray(a, order=order)


def get_array_module(*args):
    for a in args:
        if isinstance(a, ndarray):
            return sys.modules["cupy"]
    return np


def nonzero(a):
    a = _operand(a)
    syncs.add("nonzero", np.shape(a))
    return _wrap(np.nonzero(a))


def flatnonzero(a):
    a = _operand(a)
    syncs.add("flatnonzero", np.shape(a))
    return _wrap(np.flatnonzero(a))


def matmul(a, b, out=None, **kwargs):
    _fault("matmul")
    return _function("matmul")(a, b, out=out, **kwargs)


# ---------------------------------------------------------------------- random


class Generator:
    """``cupy.random.Generator``: draws device arrays (NumPy's stream for the seed)."""

    def __init__(self, seed=None):
        self._g = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64, out=None):
        return ndarray(np.asarray(self._g.random(size, dtype=dtype)))

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return ndarray(np.asarray(self._g.standard_normal(size, dtype=dtype)))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return ndarray(np.asarray(self._g.uniform(low, high, size)).astype(dtype))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return ndarray(np.asarray(self._g.integers(low, high, size, dtype=dtype,
                                                   endpoint=endpoint)))

    def __getattr__(self, name):
        raise AttributeError(f"cupy.random.Generator.{name} is not in the CuPy double "
                             "(tests/cupy_double.py)")


def default_rng(seed=None):
    return Generator(seed)


# ---------------------------------------------------------------------- cuda


class CUDARuntimeError(RuntimeError):
    """``cupy.cuda.runtime.CUDARuntimeError``."""


def getDeviceCount() -> int:  # noqa: N802 - CuPy's name
    _fault("getDeviceCount")
    return state.count


class cuda_Device:  # noqa: N801 - exposed as cupy.cuda.Device
    """``cupy.cuda.Device``: a device by number (the current one by default)."""

    def __init__(self, device=None):
        self.id = state.current if device is None else int(device)

    def use(self) -> None:
        if not 0 <= self.id < state.count:
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        state.current = self.id

    def synchronize(self) -> None:
        syncs.add("synchronize")

    def __enter__(self):
        self._previous = state.current
        self.use()
        return self

    def __exit__(self, *exc):
        state.current = self._previous

    def __eq__(self, other):
        return isinstance(other, cuda_Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _Stream:
    def synchronize(self) -> None:
        syncs.add("synchronize")


# ---------------------------------------------------------------------- the modules


def _missing(module: str):
    def __getattr__(name):
        raise AttributeError(f"{module}.{name} is not in the CuPy double "
                             "(tests/cupy_double.py): add it there, as CuPy behaves")

    return __getattr__


def _module(name: str, attrs: dict) -> types.ModuleType:
    m = types.ModuleType(name, f"the CuPy double's {name} (tests/cupy_double.py)")
    m.__dict__.update(attrs)
    m.__dict__["__getattr__"] = _missing(name)
    return m


def build() -> tuple[types.ModuleType, types.ModuleType]:
    """Fresh ``cupy`` and ``cupyx`` modules of the double."""
    runtime = _module("cupy.cuda.runtime", {
        "getDeviceCount": getDeviceCount, "CUDARuntimeError": CUDARuntimeError})
    null = _Stream()
    cuda = _module("cupy.cuda", {
        "runtime": runtime, "Device": cuda_Device,
        "Stream": types.SimpleNamespace(null=null),
        "get_current_stream": lambda: null,
        "is_available": lambda: state.count > 0})
    random = _module("cupy.random", {"default_rng": default_rng, "Generator": Generator})
    attrs = {"ndarray": ndarray, "asarray": asarray, "array": array, "asnumpy": asnumpy,
             "get_array_module": get_array_module, "nonzero": nonzero,
             "flatnonzero": flatnonzero, "matmul": matmul, "random": random,
             "cuda": cuda, "ufunc": ufunc, "inf": np.inf, "nan": np.nan, "pi": np.pi,
             "e": np.e, "newaxis": None, "dtype": np.dtype, "float16": np.float16,
             "float32": np.float32, "float64": np.float64, "int8": np.int8,
             "int16": np.int16, "int32": np.int32, "int64": np.int64, "uint8": np.uint8,
             "bool_": np.bool_, "intp": np.intp, "__version__": "14.0.0 (test double)",
             "_double_state": state, "syncs": syncs}
    for name in ("zeros", "ones", "empty", "full", "arange", "eye", "linspace"):
        attrs[name] = _creation(name)
    for name in _UFUNCS:
        attrs[name] = ufunc(name)
    for name in _FUNCTIONS:
        if hasattr(np, name) and name not in attrs:
            attrs[name] = _function(name)
    cupy = _module("cupy", attrs)

    def scatter_add(a, slices, value):
        warnings.warn("cupyx.scatter_add is deprecated. Please use cupy.add.at instead.",
                      DeprecationWarning, stacklevel=2)
        cupy.add.at(a, slices, value)

    cupyx = _module("cupyx", {"scatter_add": scatter_add})
    return cupy, cupyx


def install(monkeypatch, devices: int = 1) -> types.ModuleType:
    """Put a fresh double in ``sys.modules`` as ``cupy`` and ``cupyx`` (for as long as
    ``monkeypatch`` lasts), with ``devices`` GPUs, device 0 current and the count of
    synchronisations at zero. Returns the ``cupy`` module."""
    state.__init__()
    state.count = devices
    syncs.reset()
    cupy, cupyx = build()
    for name in [m for m in sys.modules if m == "cupy" or m.startswith(("cupy.", "cupyx"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cupy.cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.runtime", cupy.cuda.runtime)
    monkeypatch.setitem(sys.modules, "cupy.random", cupy.random)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    return cupy
