"""What NumPy's elementwise building blocks cost on this machine, per float32 element.

    python benchmarks/elementwise_costs.py

The figures behind docs/performance.md's "What holds it back": the GRU's transcendental
functions against cheap operations, the two ways to write a sigmoid, strided against
contiguous operands, and one `en`-sized per-step product for scale; then, per call at the
size of one `zh` step, what a GRU step's operations cost as the kernel lays them out
(views of the gates inside a step's rows) and on contiguous arrays of the same elements,
beside the step's product. Each is the fastest of several timed loops.
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
        _print_costs(rows, env, x.size, 1, "ns/element", 34)
    h = rng.standard_normal((128, 256)).astype(f)
    w_t = rng.standard_normal((256, 768)).astype(f)
    g = np.empty((128, 768), f)
    ns = _cost("np.matmul(h, w_t, out=g)", {"np": np, "h": h, "w_t": w_t, "g": g}, 1)
    flops = 2 * 128 * 256 * 768
    print(f"en per-step product (128 x 256) . (256 x 768): {ns / 1e3:.0f} us, "
          f"{flops / ns:.0f} GFLOP/s")
    zh_step(rng)
    return 0


def zh_step(rng) -> None:
    """Per call, one zh GRU step (64 rows, H 32): the gates' views the kernel works on
    (r and z of a (64, 3H) product, seen gate-major) against contiguous arrays."""
    f, N, H = np.float32, 64, 32

    def draw(*shape):
        return rng.standard_normal(shape).astype(f)

    gh = draw(N, 3 * H)  # a step's product h W_hh^T
    rz = draw(2, 10 * N, H)  # the gates of all ten steps, gate-major
    out = np.empty_like(rz)  # written, not read: the inputs stay as drawn
    env = {"np": np, "s": rz[:, 3 * N:4 * N], "t": out[:, 3 * N:4 * N], "gn": gh[:, 2 * H:],
           "g": gh.reshape(N, 3, H)[:, :2].transpose(1, 0, 2),  # r, z columns, gate-major
           "a": draw(2, N, H), "b": draw(2, N, H), "o": np.empty((2, N, H), f),
           "bias": draw(H), "on": np.empty((N, H), f), "h": draw(N, H),
           "w": draw(H, 3 * H), "p": np.empty((N, 3 * H), f)}
    rows = {
        "r, z -= their share of the product (views)": "np.subtract(s, g, out=t)",
        "the same, contiguous operands": "np.subtract(a, b, out=o)",
        "exp of r, z (a step's block of all steps')": "np.exp(s, out=t)",
        "exp of r, z, contiguous": "np.exp(a, out=o)",
        "n's share of the product + b_hn (view)": "np.add(gn, bias, out=on)",
        "the same, contiguous": "np.add(h, bias, out=on)",
        "the step's product (64 x 32) . (32 x 96)": "np.matmul(h, w, out=p)",
    }
    print(f"zh step, {N} rows, H {H}, per call:")
    _print_costs(rows, env, 1, 1e3, "us", 46)


def _print_costs(rows: dict, env: dict, elements: int, scale: float, unit: str,
                 width: int) -> None:
    """One line per row: its name and its cost (ns per element) / ``scale`` in ``unit``."""
    with np.errstate(over="ignore"):
        for name, stmt in rows.items():
            print(f"  {name:<{width}}{_cost(stmt, env, elements) / scale:6.2f} {unit}")


if __name__ == "__main__":
    sys.exit(main())
