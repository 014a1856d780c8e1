"""Which OpenBLAS kernels NumPy's products run, and what each set of kernels costs.

    python benchmarks/blas_kernels.py                      # the kernels loaded now
    python benchmarks/blas_kernels.py --cores Haswell auto [--rounds 3]

OpenBLAS picks its kernels when it loads, unless ``OPENBLAS_CORETYPE`` names them, so
each set runs in a fresh process of its own (``auto``: the variable unset, OpenBLAS's
own choice); with ``--cores`` the processes alternate
(A B A B ...) and the table gives each shape's fastest time over the rounds. The shapes
are minis2s's products: the per-step recurrent products of `zh` (64 rows, 32 units) and
`en`/`big` (128 rows, 256 units), and the products over all of a layer's rows. Needs
threadpoolctl (the mpi extra) to name the kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import timeit

import numpy as np

# (rows, inner, columns) of x @ w, with a name
SHAPES = [
    ("zh step, h W_hh^T", 64, 32, 96),
    ("zh step, dgh W_hh", 64, 96, 32),
    ("zh layer, dgh^T hprev", 96, 640, 32),
    ("en step, h W_hh^T", 128, 256, 768),
    ("en step, dgh W_hh", 128, 768, 256),
    ("en layer, x W_ih^T", 1152, 256, 768),
    ("en layer, dgi^T x", 768, 1152, 256),
]


def measure(threads: int | None, seconds: float) -> dict:
    """µs per product of each shape (fastest of 5 loops), in this process."""
    from contextlib import nullcontext

    limit = nullcontext()
    core = "unknown (threadpoolctl is missing)"
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        libs = [lib for lib in threadpool_info() if "numpy" in lib.get("filepath", "")]
        core = libs[0]["architecture"] if libs else "not OpenBLAS"
        if threads:
            limit = threadpool_limits(threads)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    times = {}
    with limit:
        for name, m, k, n in SHAPES:
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            out = np.empty((m, n), np.float32)
            number = max(1, int(seconds / (2 * m * k * n / 2e11)))
            def product(a=a, b=b, out=out):
                np.matmul(a, b, out=out)

            best = min(timeit.repeat(product, number=number, repeat=5)) / number
            times[name] = best * 1e6
    return {"core": core, "times": times}


def table(results: dict, shapes=SHAPES) -> list[str]:
    """Lines: each shape's µs and GFLOP/s under each set of kernels."""
    cores = list(results)
    lines = [f"{'product':<24} {'m x k x n':>17}  " + "  ".join(f"{c:>22}" for c in cores)]
    for name, m, k, n in shapes:
        cells = []
        for c in cores:
            us = results[c]["times"][name]
            cells.append(f"{us:9.1f} us {2 * m * k * n / us / 1e3:5.0f} GF/s")
        lines.append(f"{name:<24} {f'{m}x{k}x{n}':>17}  " + "  ".join(cells))
    return lines


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
    if args.worker:
        print(json.dumps(measure(args.threads, args.seconds)))
        return 0
    if not args.cores:
        result = measure(args.threads, args.seconds)
        print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}: "
              f"{result['core']} kernels")
        print("\n".join(table({result["core"]: result})))
        return 0
    best: dict = {}
    for _ in range(args.rounds):
        for core in args.cores:
            env = {**os.environ, "OPENBLAS_CORETYPE": core}
            if core == "auto":
                del env["OPENBLAS_CORETYPE"]
            cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.splitlines()[-1])
            if core in best:
                result["times"] = {k: min(v, best[core]["times"][k])
                                   for k, v in result["times"].items()}
            best[core] = result
    print(", ".join(f"OPENBLAS_CORETYPE={c}: {r['core']} kernels" for c, r in best.items())
          + f"; fastest of {args.rounds} alternating processes")
    print("\n".join(table(best)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
