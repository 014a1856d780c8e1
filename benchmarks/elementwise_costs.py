"""What NumPy's elementwise building blocks cost on this machine, per float32 element.

    python benchmarks/elementwise_costs.py

The figures behind docs/performance.md's "What holds it back": the GRU's transcendental
functions against cheap operations, the two ways to write a sigmoid, strided against
contiguous operands, and one `en`-sized per-step product for scale. Each is the fastest
of several timed loops.
"""

from __future__ import annotations

import sys
import timeit

import numpy as np


def _cost(stmt: str, env: dict, elements: int, budget: float = 0.2) -> float:
    """ns per element of ``stmt``: the fastest of 5 loops of about ``budget`` seconds."""
    timer = timeit.Timer(stmt, globals=env)
    number = max(1, int(budget / max(timer.timeit(1), 1e-7)))
    return min(timer.repeat(repeat=5, number=number)) / number / elements * 1e9


def main() -> int:
    rng = np.random.default_rng(0)
    f = np.float32
    print(f"NumPy {np.__version__}")
    for shape, what in (((64, 64), "zh step: 64 rows x 2H"), ((128, 512), "en step: 128 rows x 2H"),
                        ((716, 3542), "big softmax: 716 rows x V")):
        x = (rng.standard_normal(shape) * 2).astype(f)
        out = np.empty_like(x)
        wide = rng.standard_normal((shape[0], shape[1] * 3 // 2)).astype(f)
        env = {"np": np, "x": x, "o": out, "one": f(1), "half": f(0.5), "w": wide,
               "n": shape[1]}
        rows = {
            "tanh": "np.tanh(x, out=o)",
            "exp": "np.exp(x, out=o)",
            "sigmoid = 1 / (1 + exp(-a))": "np.exp(x, out=o); np.add(o, one, out=o); "
                                           "np.divide(one, o, out=o)",
            "sigmoid = 0.5 tanh(a / 2) + 0.5": "np.tanh(x, out=o); np.multiply(o, half, out=o);"
                                               " np.add(o, half, out=o)",
            "multiply (contiguous)": "np.multiply(x, x, out=o)",
            "add (strided operand)": "np.add(w[:, :n], x, out=o)",
        }
        print(f"{what}, {x.size:,} elements:")
        with np.errstate(over="ignore"):
            for name, stmt in rows.items():
                print(f"  {name:<34}{_cost(stmt, env, x.size):6.2f} ns/element")
    h = rng.standard_normal((128, 256)).astype(f)
    w_t = rng.standard_normal((256, 768)).astype(f)
    g = np.empty((128, 768), f)
    ns = _cost("np.matmul(h, w_t, out=g)", {"np": np, "h": h, "w_t": w_t, "g": g}, 1)
    flops = 2 * 128 * 256 * 768
    print(f"en per-step product (128 x 256) . (256 x 768): {ns / 1e3:.0f} us, "
          f"{flops / ns:.0f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
