"""The generated tasks' accuracy targets, each trained from scratch and timed.

    python benchmarks/task_targets.py [--out runs/targets] [--only NAME ...] [--plain]

For each target (docs/experiments.md): the ``minis2s train`` command, its wall seconds
and CPU seconds (user + system, of the training process), then the held-out test part's
exact match from ``minis2s evaluate``, the target and whether it was reached. Each target
has its own run (:data:`TARGETS`: a small attention model, for add and reverse with a
learning rate that decays every epoch), trained afresh into OUT/NAME (``--overwrite``),
so that each time is a whole run's. ``--plain`` also trains each target's settings with
the plain seq2seq decoder (OUT/NAME_plain) and prints its exact match by source length.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments import Runner  # noqa: E402

# the model of every target: one GRU layer, embeddings of 32, attention (its units: 96
# for add, 64 for the others)
SMALL = ["--model", "attention", "--cell", "gru", "--num-layers", "1", "--embed-size", "32"]
# name: (the exact match to reach in per cent, ``minis2s train``'s options less --out);
# add keeps the task's 50,000 training pairs, date takes 5,000 of its 20,000
TARGETS = {
    "add": (99.0, ["--task", "add", "--reverse-source", *SMALL, "--num-hiddens", "96",
                   "--batch-size", "128", "--lr", "0.01", "--lr-decay", "0.7",
                   "--epochs", "8"]),
    "date": (99.0, ["--task", "date", "--train-size", "5000", *SMALL, "--num-hiddens", "64",
                    "--batch-size", "128", "--lr", "0.01", "--epochs", "6"]),
    "reverse": (99.0, ["--task", "reverse", "--max-len", "20", *SMALL, "--num-hiddens", "64",
                       "--bidirectional", "--batch-size", "128", "--lr", "0.005",
                       "--lr-decay", "0.5", "--epochs", "4"]),
}


def target_args(name: str) -> list[str]:
    """``minis2s train``'s options (less ``--out``) of target ``name``."""
    return list(TARGETS[name][1])


def plain_args(name: str) -> list[str]:
    """Target ``name``'s options with the plain seq2seq decoder in attention's place."""
    args = target_args(name)
    i = args.index("--model")
    return [*args[:i + 1], "seq2seq", *args[i + 2:]]


BUDGET_S = 120  # each target's training run, on a 2-core machine


def verdict(exact_match: float, target: float, seconds: float,
            budget: float = BUDGET_S) -> str:
    """``reached`` when the accuracy is at least the target and the run's CPU seconds
    (what it costs whatever else the machine runs) are under the budget; otherwise what
    was missed."""
    missed = []
    if exact_match < target:
        missed.append(f"accuracy {exact_match:.2f}% < {target:g}%")
    if seconds >= budget:
        missed.append(f"{seconds:.0f} s >= {budget:g} s")
    return "reached" if not missed else "missed: " + ", ".join(missed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/targets", help="the trained runs (default: "
                        "runs/targets)")
    parser.add_argument("--only", nargs="+", choices=list(TARGETS), metavar="NAME",
                        help=f"these targets only: {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--plain", action="store_true", help="also train each target's "
                        "settings with the plain seq2seq decoder and print its exact match "
                        "by source length")
    args = parser.parse_args(argv)
    run = Runner(Path(args.out))
    rows, plain = [], []
    for name in args.only or TARGETS:
        target = TARGETS[name][0]
        folder = run.folder(name)
        run("train", *target_args(name), "--quiet", "--overwrite", "--out", folder)
        trained = run.log[-1]
        found = run.evaluate("--model", folder)[0]
        rows.append((name, trained, found["exact_match"], target))
        if args.plain:
            folder = run.folder(name + "_plain")
            run("train", *plain_args(name), "--quiet", "--overwrite", "--out", folder)
            plain.append((name, run.evaluate("--model", folder, "--by-length")[0]))
    print()
    for name, trained, exact, target in rows:
        print(f"{name}: {trained['command']}")
        print(f"  {trained['wall_s']:.1f} s wall, {trained['cpu_s']:.1f} s CPU; exact match "
              f"{exact:.2f}% (target {target:g}%): "
              f"{verdict(exact, target, trained['cpu_s'])}")
    for name, found in plain:
        lengths = ", ".join(f"{b['label']}: {b['exact_match']:.1f}%"
                            for b in found.get("by_length", []))
        print(f"{name}, plain seq2seq: exact match {found['exact_match']:.2f}%; by source "
              f"length {lengths}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
