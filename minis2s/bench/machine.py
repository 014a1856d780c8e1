"""What a benchmark ran on: the CPU, and the OpenBLAS core type of NumPy's products.

NumPy's wheels bring OpenBLAS, which picks a core type (a set of kernels) for the CPU when
it loads, unless ``OPENBLAS_CORETYPE`` names one. On a CPU with AVX-512 its AVX-512 core
types ("SkylakeX", "Cooperlake", "SapphireRapids") compute a float32 product up to 2x as
fast as its AVX2 ones ("Haswell", "Zen"), as measured in docs/performance.md ("The
products' OpenBLAS core type"); an environment that sets ``OPENBLAS_CORETYPE=Haswell``,
or an OpenBLAS too old to know the CPU, leaves that speed unused. The benchmark says which
core type ran, and says so when a faster one was there to be had.

The core type OpenBLAS loaded is read with threadpoolctl (the ``mpi`` extra brings it);
without it the line says it is not known.
"""

from __future__ import annotations

import os
import platform

ENV_CORE = "OPENBLAS_CORETYPE"
# the instruction sets OpenBLAS's AVX-512 kernels need
AVX512 = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")
# OpenBLAS's x86-64 core types that use AVX-512 (the others use AVX2 at best)
AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")


def cpu_info(text: str | None = None, path: str = "/proc/cpuinfo") -> dict:
    """The first processor of ``path`` (``text`` instead, where given) as {"model": name
    with family and model numbers, "flags": set}; where there is no such file, the
    platform's name and no flags."""
    if text is None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    if "cpu family" in fields:  # a virtual machine's name may say little more than the maker
        model += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return {"model": model, "flags": set(fields.get("flags", "").split())}


def openblas_libraries() -> list[dict] | None:
    """The OpenBLAS libraries loaded in this process, as threadpoolctl describes them
    (``architecture``, ``version``, ``num_threads``, ``filepath``), NumPy's first; None
    where threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    libs = [lib for lib in threadpool_info() if lib.get("internal_api") == "openblas"]
    return sorted(libs, key=lambda lib: "numpy" not in lib.get("filepath", ""))


def blas_line(libs: list[dict] | None, flags: set, environ=os.environ) -> str:
    """One line saying which OpenBLAS core type the products ran, and, where the CPU has
    AVX-512 and that core type uses AVX2 at best, how to get a faster one."""
    asked = environ.get(ENV_CORE)
    if libs is None:
        return ("matrix products: OpenBLAS core type not known (threadpoolctl reads it: "
                "pip install threadpoolctl)" + (f"; {ENV_CORE}={asked}" if asked else ""))
    if not libs:
        return "matrix products: not OpenBLAS (NumPy's BLAS is another library)"
    lib = libs[0]
    core = lib.get("architecture")
    if not asked:
        chosen = "OpenBLAS's choice"
    elif not core:
        chosen = f"{ENV_CORE}={asked}"
    elif core.lower() == asked.lower():
        chosen = f"set by {ENV_CORE}={asked}"
    else:
        chosen = f"{ENV_CORE}={asked} asked for another"
    line = (f"matrix products: OpenBLAS {lib.get('version') or '?'}, core type "
            f"{core or 'unknown'} ({chosen}), {lib.get('num_threads', '?')} threads")
    if core and all(f in flags for f in AVX512) and core.lower() not in AVX512_CORES:
        fix = f"unset {ENV_CORE}" if asked else f"set {ENV_CORE}=SkylakeX"
        line += (f"; this CPU has AVX-512, which this core type leaves unused: {fix} before "
                 "Python starts for faster products (up to 2x on the AVX-512 EPYC of "
                 "docs/performance.md)")
    return line


def describe(environ=os.environ) -> list[str]:
    """Lines naming the machine: the CPU, the CPUs this process may run on, and the
    products' OpenBLAS core type."""
    cpu = cpu_info()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return [f"machine: {cpu['model']}, {usable} logical CPUs for this process",
            blas_line(openblas_libraries(), cpu["flags"], environ)]
