"""The generated tasks' accuracy targets, each trained from scratch and timed.

    python benchmarks/task_targets.py [--out runs/targets] [--only NAME ...]

For each target (docs/experiments.md): the ``minis2s train`` command, its wall seconds
and CPU seconds (user + system, of the training process), then the held-out test part's
exact match from ``minis2s evaluate``, the target and whether it was reached. The runs
are those of benchmarks/experiments.py with the target's epochs (:data:`TARGETS`), trained
afresh into OUT (``--overwrite``), so that each time is a whole run's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments import Runner, train_args, with_epochs  # noqa: E402

# name: (the run of benchmarks/experiments.py, the exact match to reach in per cent, the
# epochs of the target's run); date's run takes the task's 20,000 training pairs
TARGETS = {
    "add": ("add_reversed", 99.0, 8),
    "date": ("date_attention", 99.0, 4),
    "reverse": ("reverse_attention_gru", 99.0, 5),
}


def target_args(name: str) -> list[str]:
    """``minis2s train``'s options (less ``--out``) of target ``name``: its run's, with the
    target's epochs and, for date, the task's default number of training pairs."""
    run, _, epochs = TARGETS[name]
    args = with_epochs(train_args(run), epochs)
    if "--train-size" in args:
        i = args.index("--train-size")
        args = args[:i] + args[i + 2:]
    return args
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
    args = parser.parse_args(argv)
    run = Runner(Path(args.out))
    rows = []
    for name in args.only or TARGETS:
        experiment, target, _ = TARGETS[name]
        folder = run.folder(experiment)
        run("train", *target_args(name), "--quiet", "--overwrite", "--out", folder)
        trained = run.log[-1]
        found = run.evaluate("--model", folder)[0]
        rows.append((name, trained, found["exact_match"], target))
    print()
    for name, trained, exact, target in rows:
        print(f"{name}: {trained['command']}")
        print(f"  {trained['wall_s']:.1f} s wall, {trained['cpu_s']:.1f} s CPU; exact match "
              f"{exact:.2f}% (target {target:g}%): "
              f"{verdict(exact, target, trained['cpu_s'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
