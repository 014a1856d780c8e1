"""The benchmark names its machine: the CPU, and the OpenBLAS core type of the products."""

import pytest

from minis2s.bench import machine

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl

processor\t: 1
model name\t: another
flags\t\t: fpu
"""
AVX512 = set(machine.AVX512) | {"avx2"}


def lib(core, path="/site-packages/numpy.libs/libscipy_openblas64_.so"):
    return {"internal_api": "openblas", "architecture": core, "version": "0.3.31",
            "num_threads": 2, "filepath": path}


def test_the_first_processor_is_read():
    cpu = machine.cpu_info(CPUINFO)
    assert cpu["model"] == "AMD EPYC 9B45 (family 26, model 2)"
    assert set(machine.AVX512) <= cpu["flags"] and "fpu" in cpu["flags"]


def test_without_cpuinfo_the_platform_is_named(tmp_path):
    for cpu in (machine.cpu_info(""), machine.cpu_info(path=str(tmp_path / "no-such-file"))):
        assert cpu["model"] and cpu["flags"] == set()


def test_an_avx2_core_type_set_on_an_avx512_cpu_says_to_unset_the_variable():
    line = machine.blas_line([lib("Haswell")], AVX512, {machine.ENV_CORE: "Haswell"})
    assert "OpenBLAS 0.3.31, core type Haswell (set by OPENBLAS_CORETYPE=Haswell)" in line
    assert "2 threads" in line and "unset OPENBLAS_CORETYPE" in line


def test_an_avx2_core_type_chosen_by_openblas_on_an_avx512_cpu_says_which_to_set():
    line = machine.blas_line([lib("Zen")], AVX512, {})
    assert "core type Zen (OpenBLAS's choice)" in line
    assert "set OPENBLAS_CORETYPE=SkylakeX" in line


def test_a_variable_that_openblas_did_not_follow_is_said():
    line = machine.blas_line([lib("Prescott")], AVX512, {machine.ENV_CORE: "SkylakeX"})
    assert "core type Prescott (OPENBLAS_CORETYPE=SkylakeX asked for another)" in line


@pytest.mark.parametrize("core", ["SkylakeX", "Cooperlake", "SAPPHIRERAPIDS"])
def test_avx512_core_types_get_no_advice(core):
    line = machine.blas_line([lib(core)], AVX512, {})
    assert f"core type {core}" in line and "AVX-512" not in line


def test_a_cpu_without_all_of_avx512_gets_no_advice():
    flags = AVX512 - {"avx512vl"}
    assert "AVX-512" not in machine.blas_line([lib("Haswell")], flags, {})


def test_an_unknown_core_type_gets_no_advice():
    line = machine.blas_line([lib(None)], AVX512, {})
    assert "core type unknown (OpenBLAS's choice)" in line and "AVX-512" not in line
    line = machine.blas_line([lib(None)], AVX512, {machine.ENV_CORE: "Haswell"})
    assert "core type unknown (OPENBLAS_CORETYPE=Haswell)" in line and "AVX-512" not in line


def test_numpys_openblas_comes_first_and_other_libraries_are_left_out(monkeypatch):
    import sys
    import types

    scipys = lib("Prescott", "/site-packages/scipy.libs/libscipy_openblas.so")
    mkl = {"internal_api": "mkl", "filepath": "/lib/libmkl_rt.so"}
    fake = types.ModuleType("threadpoolctl")
    fake.threadpool_info = lambda: [scipys, mkl, lib("Haswell")]
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    libs = machine.openblas_libraries()
    assert libs == [lib("Haswell"), scipys]
    assert "core type Haswell" in machine.blas_line(libs, set(), {})


def test_without_threadpoolctl_the_core_type_is_not_known():
    line = machine.blas_line(None, AVX512, {machine.ENV_CORE: "Haswell"})
    assert "not known" in line and "OPENBLAS_CORETYPE=Haswell" in line


def test_another_blas_is_said():
    assert "not OpenBLAS" in machine.blas_line([], AVX512, {})


def test_without_threadpoolctl_no_libraries_are_known(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    assert machine.openblas_libraries() is None


def test_describe_names_cpu_and_products():
    lines = machine.describe()
    assert lines[0].startswith("machine: ") and lines[1].startswith("matrix products: ")
