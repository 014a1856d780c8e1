"""Tokens/sec of minis2s and PyTorch against hidden size (32 -> 512), plotted to PNG.

    python benchmarks/hidden_sweep.py [--data PATH] [--out runs/hidden_sweep.png]

The model is the `en` preset's (2 layers, batch 128, 9 steps, 640 pairs) with
embed = hidden = H; each point alternates one minis2s run and one PyTorch run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from minis2s.bench import measure_pair


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--sizes", default="32,64,128,256,512")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="runs/hidden_sweep.png")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for h in sizes:
        ours, ref = measure_pair("en", args.epochs, data=args.data,
                                 overrides={"embed_size": h, "num_hiddens": h})
        rows.append({"hidden": h, "minis2s": ours.tokens_per_sec,
                     "pytorch": ref.tokens_per_sec})
        print(f"H={h:4d}  minis2s {ours.tokens_per_sec:9.1f}  pytorch "
              f"{ref.tokens_per_sec:9.1f}  ratio {ours.tokens_per_sec / ref.tokens_per_sec:.2f}x",
              flush=True)
    print(json.dumps(rows))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return 0
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(sizes, [r["minis2s"] for r in rows], "o-", label="minis2s (NumPy)")
    ax.plot(sizes, [r["pytorch"] for r in rows], "s-", label="PyTorch (CPU)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("embed = hidden size")
    ax.set_ylabel("training tokens / sec")
    ax.set_title("en preset shape, 2-core CPU")
    ax.legend()
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"plot in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
