"""The CuPy double (tests/cupy_double.py) refuses what CuPy refuses, counts what makes the
host wait, and otherwise computes NumPy's numbers: each of its rules, one test each."""

import operator
import sys
import warnings

import numpy as np
import pytest

from minis2s.backend import array_module, get_backend, index_add, to_numpy

from . import cupy_double


@pytest.fixture
def cp(cupy_double):
    return cupy_double


def _dev(cp, *shape):
    return cp.asarray(np.arange(np.prod(shape), dtype=np.float64).reshape(shape))


# ------------------------------------------------------------ no implicit conversion


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda a: a.__array__(),
                                     lambda a: np.ascontiguousarray(a)],
                         ids=["asarray", "array", "__array__", "ascontiguousarray"])
def test_a_device_array_does_not_become_a_numpy_array_unasked(cp, convert):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        convert(_dev(cp, 3))


@pytest.mark.parametrize("call", [np.exp, np.tanh, np.negative],
                         ids=["exp", "tanh", "negative"])
def test_numpys_ufuncs_refuse_a_device_array(cp, call):
    with pytest.raises(TypeError):
        call(_dev(cp, 3))


@pytest.mark.parametrize("call", [np.sum, lambda a: np.concatenate([a, a]), np.shape,
                                  lambda a: np.where(a > 0, a, 0)],
                         ids=["sum", "concatenate", "shape", "where"])
def test_numpys_functions_refuse_a_device_array(cp, call):
    with pytest.raises(TypeError, match="device array"):
        call(_dev(cp, 3))


# ------------------------------------------------------------ no host operands


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv,
                                operator.matmul, operator.lt, operator.eq],
                         ids=["add", "sub", "mul", "truediv", "matmul", "lt", "eq"])
def test_an_operator_refuses_a_numpy_array_on_either_side(cp, op):
    dev, host = _dev(cp, 3, 3), np.ones((3, 3))
    with pytest.raises(TypeError):
        op(dev, host)
    with pytest.raises(TypeError):
        op(host, dev)


@pytest.mark.parametrize("op", ["__iadd__", "__isub__", "__imul__", "__itruediv__"])
def test_an_inplace_operator_refuses_a_numpy_array(cp, op):
    dev = _dev(cp, 2, 2)
    with pytest.raises(TypeError, match="Unsupported type"):
        getattr(dev, op)(np.ones((2, 2)))


def test_a_list_is_no_operand_either(cp):
    with pytest.raises(TypeError, match="Unsupported type"):
        _dev(cp, 3) + [1, 2, 3]


@pytest.mark.parametrize("name,args", [
    ("multiply", lambda d, h: (d, h)), ("add", lambda d, h: (h, d)),
    ("matmul", lambda d, h: (d, h)), ("where", lambda d, h: (d > 0, d, h)),
    ("concatenate", lambda d, h: ([d, h],)), ("stack", lambda d, h: ([d, h],)),
    ("exp", lambda d, h: (h,)), ("tanh", lambda d, h: (d,), ), ("zeros_like", lambda d, h: (h,))])
def test_the_modules_functions_refuse_a_numpy_array(cp, name, args):
    dev, host = _dev(cp, 2, 2), np.ones((2, 2))
    call = getattr(cp, name)
    if name == "tanh":  # the output must be a device array too
        with pytest.raises(TypeError, match="out must be a cupy.ndarray"):
            call(dev, out=host)
        return
    with pytest.raises(TypeError, match="Unsupported type"):
        call(*args(dev, host))


def test_a_numpy_array_cannot_be_assigned_into_a_device_array(cp):
    dev = _dev(cp, 2, 3)
    for key in (Ellipsis, slice(None), (0, slice(None))):
        with pytest.raises(TypeError, match="Unsupported type"):
            dev[key] = np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.add.at(dev, cp.asarray([0, 1]), np.ones((2, 3)))


def test_scalars_python_and_numpy_are_operands(cp):
    dev = _dev(cp, 3)
    for s in (2, 2.0, np.float32(2), np.int64(2), True):
        assert np.array_equal((dev * s).get(), np.arange(3.0) * s)
        assert np.array_equal(cp.multiply(dev, s).get(), np.arange(3.0) * s)
    dev[1] = np.float64(7.0)
    assert dev.get().tolist() == [0.0, 7.0, 2.0]


def test_numpy_index_arrays_are_accepted_as_cupy_accepts_them(cp):
    dev = _dev(cp, 4, 2)
    assert dev[np.array([3, 0])].get().tolist() == [[6.0, 7.0], [0.0, 1.0]]
    assert dev[np.array([True, False, False, True])].get().tolist() == [[0.0, 1.0],
                                                                        [6.0, 7.0]]
    assert dev[cp.asarray([1]), cp.asarray([0])].get().tolist() == [2.0]
    dev[np.array([0, 0])] = 5.0
    assert dev.get()[0].tolist() == [5.0, 5.0]
    with pytest.raises(IndexError, match="integer or boolean"):
        dev[np.array([0.0])]


# ------------------------------------------------------------ no __index__


def test_a_device_scalar_is_no_python_index(cp):
    k = cp.asarray(1)
    with pytest.raises(TypeError):
        operator.index(k)
    with pytest.raises(TypeError):
        [10, 20, 30][k]
    with pytest.raises(TypeError):
        range(k)


# ------------------------------------------------------------ synchronisations


@pytest.mark.parametrize("what,call", [
    ("float", lambda cp, a: float(a.sum())), ("int", lambda cp, a: int(a[0])),
    ("bool", lambda cp, a: bool(a[1] > 0)), ("complex", lambda cp, a: complex(a[0])),
    ("item", lambda cp, a: a[0].item()), ("get", lambda cp, a: a.get()),
    ("tolist", lambda cp, a: a.tolist()), ("asnumpy", lambda cp, a: cp.asnumpy(a)),
    ("nonzero", lambda cp, a: a.nonzero()), ("flatnonzero", lambda cp, a: cp.flatnonzero(a)),
    ("repr", lambda cp, a: repr(a)), ("format", lambda cp, a: f"{a[0]:.2f}"),
    ("synchronize", lambda cp, a: cp.cuda.Device().synchronize()),
    ("get", lambda cp, a: to_numpy(a))])
def test_every_wait_for_the_device_is_counted(cp, what, call):
    a = _dev(cp, 3)
    cupy_double.syncs.reset()
    call(cp, a)
    assert cupy_double.syncs.kinds() == [what]


def test_work_on_the_device_makes_the_host_wait_for_nothing(cp):
    a = cp.asarray(np.linspace(-1, 1, 12).reshape(3, 4))  # host to device: no wait
    cupy_double.syncs.reset()
    b = cp.tanh(a @ a.T) + 1.0
    b[0] = a[1, :3]
    c = cp.concatenate([b, b]).sum(axis=0) * cp.exp(a[:, 0])
    _ = (c.shape, c.dtype, c.ndim, c.size, len(c), a[cp.arange(2)], a.T, a.reshape(4, 3))
    cp.add.at(cp.zeros((3, 4)), cp.asarray([0, 0, 2]), a)
    assert cupy_double.syncs.kinds() == []


# ------------------------------------------------------------ reductions over nothing


@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin"])
@pytest.mark.parametrize("shape,axis", [((3, 0), 1), ((0, 4), 1), ((0, 4), 0), ((0,), None)])
def test_a_reduction_without_identity_over_a_zero_size_array_raises(cp, name, shape, axis):
    a = cp.zeros(shape)
    with pytest.raises(ValueError, match="zero-size array to reduction operation cupy_"):
        getattr(a, name)(axis=axis)
    with pytest.raises(ValueError, match="which has no identity"):
        getattr(cp, name)(a, axis=axis)


def test_a_sum_over_nothing_is_zero(cp):
    assert cp.zeros((0, 4)).sum(axis=0).get().tolist() == [0.0] * 4
    assert cp.zeros((3, 0)).sum(axis=1).get().tolist() == [0.0] * 3


# ------------------------------------------------------------ scatter-add


def test_cupyx_scatter_add_warns_that_it_is_deprecated(cp):
    import cupyx

    a = cp.zeros((3, 2))
    with pytest.warns(DeprecationWarning, match="cupy.add.at"):
        cupyx.scatter_add(a, cp.asarray([0, 0]), cp.ones((2, 2)))
    assert a.get().tolist() == [[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("V", [1, 7, 1000])
def test_add_at_counts_every_repeat_and_sums_as_numpys_index_add(cp, V):
    rng = np.random.default_rng(V)
    ids = rng.integers(0, V, 300)
    ids[:5] = ids[0]
    rows = rng.standard_normal((300, 6))
    want = np.zeros((V, 6))
    index_add(want, ids, rows)
    got = cp.zeros((V, 6))
    cp.add.at(got, cp.asarray(ids), cp.asarray(rows))
    assert np.array_equal(got.get(), want)  # bit for bit: the same order of sums
    np.add.at(check := np.zeros((V, 6)), ids, rows)
    np.testing.assert_allclose(got.get(), check, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ what it lacks


@pytest.mark.parametrize("name", ["fft", "linalg", "cumprod", "random.permutation",
                                  "cuda.nccl", "add.reduceat"])
def test_a_function_the_double_lacks_raises_attribute_error_naming_it(cp, name):
    obj = cp
    *parents, last = name.split(".")
    for part in parents:
        obj = getattr(obj, part)
    with pytest.raises(AttributeError, match="CuPy double"):
        getattr(obj, last)


def test_a_generator_method_the_double_lacks_raises_attribute_error(cp):
    with pytest.raises(AttributeError, match="CuPy double"):
        cp.random.default_rng(0).permutation(3)


# ------------------------------------------------------------ NumPy's numbers, CuPy's types


def test_minis2s_takes_it_for_cupy(cp):
    a = cp.zeros(2)
    assert array_module(a) is cp and array_module(np.zeros(2), a) is cp
    assert type(a).__module__ == "cupy" and sys.modules["cupy"] is cp
    b = get_backend("cupy", "float64")
    assert b.xp is cp and b.device == "gpu"


def test_results_are_numpys_bit_for_bit_and_reductions_stay_on_the_device(cp):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    got = cp.tanh(cp.asarray(x) @ cp.asarray(w).T).sum(axis=0)
    assert np.array_equal(got.get(), np.tanh(x @ w.T).sum(axis=0))
    total = cp.asarray(x).sum()
    assert isinstance(total, cp.ndarray) and total.shape == ()  # not a host scalar


def test_views_and_out_write_through_as_on_a_gpu(cp):
    a = cp.zeros((3, 4))
    a[1:][...] = 2.0
    cp.multiply(cp.ones((2, 4)), 3.0, out=a[:2])
    a.T[0] += 1.0
    assert a.get().tolist() == [[4, 3, 3, 3], [4, 3, 3, 3], [3, 2, 2, 2]]


def test_asarray_keeps_a_device_array_and_copies_host_data(cp):
    d = cp.zeros(3)
    assert cp.asarray(d) is d and cp.asarray(d, dtype=np.float32).dtype == np.float32
    host = np.zeros(3)
    dev = cp.asarray(host)
    host[0] = 1.0  # the device copy does not see it
    assert dev.get().tolist() == [0.0, 0.0, 0.0]
    assert cp.asnumpy(host) is host


def test_its_generator_draws_numpys_stream_as_device_arrays(cp):
    g = cp.random.default_rng(5)
    r = g.random((2, 3), dtype=np.float32)
    assert isinstance(r, cp.ndarray) and r.dtype == np.float32
    assert np.array_equal(r.get(), np.random.default_rng(5).random((2, 3), dtype=np.float32))


def test_devices_can_be_counted_chosen_and_broken(cp, monkeypatch):
    cupy_double.state.count = 3
    assert cp.cuda.runtime.getDeviceCount() == 3
    cp.cuda.Device(2).use()
    assert cp.cuda.Device().id == 2 and cupy_double.state.current == 2
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="invalid device"):
        cp.cuda.Device(3).use()
    cupy_double.state.faults["getDeviceCount"] = RuntimeError("no CUDA-capable device")
    with pytest.raises(RuntimeError, match="no CUDA-capable"):
        cp.cuda.runtime.getDeviceCount()


def test_the_double_leaves_when_its_test_ends():
    """Outside a test that asks for it, no double is installed (the real CuPy, or none)."""
    cupy = sys.modules.get("cupy")
    assert cupy is None or not hasattr(cupy, "_double_state")


def test_no_warning_from_plain_use(cp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = cp.zeros((4, 2))
        cp.add.at(a, cp.asarray([1, 1]), cp.ones((2, 2)))
        assert a.get()[1].tolist() == [2.0, 2.0]
