#!/usr/bin/env bash
# Reproduce docs/performance.md: every preset, minis2s against PyTorch, alternating runs.
# Needs the corpus (--data or $MINIS2S_DATA) and PyTorch (pip install torch).
set -euo pipefail
for preset in zh en big; do
    python -m minis2s bench --preset "$preset" --vs-torch --repeats "${REPEATS:-3}" "$@"
done
python benchmarks/hidden_sweep.py "$@"  # draws runs/hidden_sweep.png
