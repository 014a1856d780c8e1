"""How much of a training step the matrix products take, from a sampling profile.

    pip install py-spy
    py-spy record --native -r 200 -f raw -o steps.txt -- \
        python benchmarks/step_breakdown.py --preset en --repeats 150
    python benchmarks/product_share.py steps.txt [--lines 12]

Reads py-spy's raw output (one line per distinct stack: frames joined by ";", then the
sample count), keeps the samples taken inside ``step_breakdown.py``'s ``step`` (one
training step: forward, backward, clipping, Adam), and counts as product every sample
with an OpenBLAS frame in its stack (its GEMM kernels and packing, and the threads' hand-
off, where the calling thread waits for the other). The rest is listed by the innermost
Python line, largest first: what is left when the products are set aside.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

BLAS_MARKS = ("gemm", "exec_blas", "inner_thread", "blas_thread")


def is_product(frames: list[str]) -> bool:
    return any(mark in frame.lower() for frame in frames for mark in BLAS_MARKS)


def shares(lines) -> tuple[int, int, Counter]:
    """(samples inside steps, of them in products, the others by innermost Python line)."""
    total, products, rest = 0, 0, Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if not any(frame.startswith("step (") for frame in frames):
            continue
        n = int(count)
        total += n
        if is_product(frames):
            products += n
            continue
        python = [frame for frame in frames if ".py:" in frame]
        where = python[-1] if python else "(no Python frame)"
        rest[where] += n
    return total, products, rest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", help="py-spy's output with -f raw")
    parser.add_argument("--lines", type=int, default=12, help="lines of the rest to show")
    args = parser.parse_args(argv)
    try:
        with open(args.raw, encoding="utf-8", errors="replace") as f:
            total, products, rest = shares(f)
    except OSError as e:
        print(f"product_share.py: {e}", file=sys.stderr)
        return 1
    if not total:
        print("no samples inside step_breakdown.py's step(): was it the profiled script?",
              file=sys.stderr)
        return 1
    print(f"{total} samples inside the steps; products {100 * products / total:.1f}%")
    for where, n in rest.most_common(args.lines):
        print(f"  {100 * n / total:5.1f}%  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
