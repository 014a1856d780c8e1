"""What a benchmark ran on: the CPU, and which kernels NumPy's matrix products ran.

NumPy's wheels bring OpenBLAS, which picks its kernels for the CPU when it loads, unless
``OPENBLAS_CORETYPE`` names them. On a CPU with AVX-512 its AVX-512 kernels ("SkylakeX",
"Cooperlake", "SapphireRapids") compute a float32 product about twice as fast as its AVX2
ones ("Haswell", "Zen"), as measured in docs/performance.md ("Which kernels the products
run"); an environment that sets ``OPENBLAS_CORETYPE=Haswell``, or an OpenBLAS too old to
know the CPU, leaves that speed unused. The benchmark says which kernels ran, and says so
when faster ones were there to be had.

Which kernels OpenBLAS loaded is read with threadpoolctl (the ``mpi`` extra brings it);
without it the line says they are not known.
"""

from __future__ import annotations

import os
import platform

ENV_CORE = "OPENBLAS_CORETYPE"
# the instruction sets OpenBLAS's AVX-512 kernels need
AVX512 = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")
# OpenBLAS's x86-64 kernels that use AVX-512 (the others use AVX2 at best)
AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")


def cpu_info(text: str | None = None) -> dict:
    """The first processor of /proc/cpuinfo (``text`` instead, where given) as
    {"model": name with family and model numbers, "flags": set}; where there is no such
    file, the platform's name and no flags."""
    if text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
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
    """One line saying which kernels the products ran, and, where the CPU has AVX-512
    and they are AVX2 kernels, how to get the faster ones."""
    forced = environ.get(ENV_CORE)
    chosen = f" (set by {ENV_CORE}={forced})" if forced else " (OpenBLAS's choice)"
    if libs is None:
        return ("matrix products: OpenBLAS kernels not known (threadpoolctl reads them: "
                "pip install threadpoolctl)" + (f"; {ENV_CORE}={forced}" if forced else ""))
    if not libs:
        return "matrix products: not OpenBLAS (NumPy's BLAS is another library)"
    lib = libs[0]
    core = str(lib.get("architecture") or "unknown")
    line = (f"matrix products: OpenBLAS {lib.get('version') or '?'}, {core} kernels{chosen}, "
            f"{lib.get('num_threads', '?')} threads")
    if all(f in flags for f in AVX512) and core.lower() not in AVX512_CORES:
        fix = f"unset {ENV_CORE}" if forced else f"set {ENV_CORE}=SkylakeX"
        line += (f"; this CPU has AVX-512, which these kernels leave unused: {fix} before "
                 "Python starts for products about 2x faster")
    return line


def describe(environ=os.environ) -> list[str]:
    """Lines naming the machine: the CPU, its cores, the products' kernels."""
    cpu = cpu_info()
    return [f"machine: {cpu['model']}, {os.cpu_count()} logical CPUs",
            blas_line(openblas_libraries(), cpu["flags"], environ)]
