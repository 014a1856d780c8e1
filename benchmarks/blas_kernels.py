"""Which OpenBLAS core type NumPy's products run, and what each core type costs.

    python benchmarks/blas_kernels.py                      # the core type loaded now
    python benchmarks/blas_kernels.py --cores Haswell auto [--rounds 3]

OpenBLAS picks its core type (a set of kernels) when it loads, unless
``OPENBLAS_CORETYPE`` names one, so each core type runs in a fresh process of its own
(``auto``: the variable unset, OpenBLAS's own choice); with ``--cores`` the processes
alternate (A B A B ...) and the table gives each shape's fastest time over the rounds.
The shapes are those of minis2s's products: the per-step recurrent products of `zh` (64
rows, 32 units) and `en`/`big` (128 rows, 256 units), and the products over all of a
layer's rows; the operands are contiguous, and the per-step h W_hh^T also as the NumPy
GRU kernel reads it, through the transposed view of W_hh. Needs threadpoolctl (the mpi
extra) to name the core type and to limit the threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import timeit
from contextlib import nullcontext

import numpy as np

from minis2s.bench.machine import ENV_CORE, openblas_libraries

# (rows, inner, columns) of x @ w, with a name; w is contiguous, or (a last field True)
# the transposed view of a contiguous (columns, inner) array, as the NumPy GRU kernel
# reads W_hh^T
SHAPES = [
    ("zh step, h W_hh^T", 64, 32, 96),
    ("zh step, h W_hh^T (view)", 64, 32, 96, True),
    ("zh step, dgh W_hh", 64, 96, 32),
    ("zh layer, dgh^T hprev", 96, 640, 32),
    ("en step, h W_hh^T", 128, 256, 768),
    ("en step, h W_hh^T (view)", 128, 256, 768, True),
    ("en step, dgh W_hh", 128, 768, 256),
    ("en layer, x W_ih^T", 1152, 256, 768),
    ("en layer, dgi^T x", 768, 1152, 256),
]


def core_type() -> str:
    """The core type of NumPy's OpenBLAS, as OpenBLAS reports it."""
    libs = openblas_libraries()
    if libs is None:
        return "unknown (threadpoolctl is missing)"
    return str(libs[0].get("architecture") or "unknown") if libs else "not OpenBLAS"


def operands(rng, m: int, k: int, n: int, view: bool = False):
    """x (m, k) and w (k, n), float32; with ``view`` w is the transposed view of a
    contiguous (n, k) array."""
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if view else (k, n)).astype(np.float32)
    return a, (b.T if view else b)


def measure(threads: int | None, seconds: float) -> dict:
    """µs per product of each shape (fastest of 5 loops), in this process."""
    limit = nullcontext()
    if threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(threads)
    rng = np.random.default_rng(0)
    times = {}
    with limit:
        for name, m, k, n, *view in SHAPES:
            a, b = operands(rng, m, k, n, bool(view))
            out = np.empty((m, n), np.float32)
            number = max(1, int(seconds / (2 * m * k * n / 2e11)))

            def product(a=a, b=b, out=out):
                np.matmul(a, b, out=out)

            best = min(timeit.repeat(product, number=number, repeat=5)) / number
            times[name] = best * 1e6
    return {"core": core_type(), "times": times}


def table(results: dict, shapes=SHAPES) -> list[str]:
    """Lines: each shape's µs and GFLOP/s under each set of kernels."""
    cores = list(results)
    lines = [f"{'product':<24} {'m x k x n':>17}  " + "  ".join(f"{c:>22}" for c in cores)]
    for name, m, k, n, *_ in shapes:
        cells = []
        for c in cores:
            us = results[c]["times"][name]
            cells.append(f"{us:9.1f} us {2 * m * k * n / us / 1e3:5.0f} GF/s")
        lines.append(f"{name:<24} {f'{m}x{k}x{n}':>17}  " + "  ".join(cells))
    return lines


def _label(core: str) -> str:
    return f"{ENV_CORE} unset" if core == "auto" else f"{ENV_CORE}={core}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", nargs="+", metavar="CORE",
                        help="OPENBLAS_CORETYPE values to compare, each in its own process "
                        "(auto: unset)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations (default 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads (default: OpenBLAS's own)")
    parser.add_argument("--seconds", type=float, default=0.02,
                        help="time per loop, about (default 0.02)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or (args.threads is not None and args.threads < 1):
        parser.error("--rounds and --threads must be at least 1, --seconds above 0")
    if args.threads and openblas_libraries() is None:
        parser.error("--threads needs threadpoolctl: pip install threadpoolctl")
    if args.worker:
        print(json.dumps(measure(args.threads, args.seconds)))
        return 0
    if not args.cores:
        result = measure(args.threads, args.seconds)
        print(f"{_label(os.environ.get(ENV_CORE) or 'auto')}: core type {result['core']}")
        print("\n".join(table({result["core"]: result})))
        return 0
    best: dict = {}
    for _ in range(args.rounds):
        for core in args.cores:
            env = {**os.environ, ENV_CORE: core}
            if core == "auto":
                del env[ENV_CORE]
            cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"the process for {_label(core)} failed:\n{done.stderr.strip()}",
                      file=sys.stderr)
                return 1
            result = json.loads(done.stdout.splitlines()[-1])
            if core in best:
                result["times"] = {k: min(v, best[core]["times"][k])
                                   for k, v in result["times"].items()}
            best[core] = result
    print(", ".join(f"{_label(c)}: core type {r['core']}" for c, r in best.items())
          + f"; fastest of {args.rounds} alternating processes")
    print("\n".join(table(best)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
