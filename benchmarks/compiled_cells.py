"""The cells' compiled time loops (:mod:`minis2s.compiled`) against the NumPy kernels
(:mod:`minis2s.ops.gru`, ``.lstm``, ``.rnn``): one layer, or whole training steps.

    pip install 'minis2s[compiled]'
    python benchmarks/compiled_cells.py [--cell gru|lstm|rnn] [--repeats 300]
    python benchmarks/compiled_cells.py --step PRESET [--cell C] [--repeats 200] [--data PATH]

The first times one `zh`-shaped layer's forward and backward (T 10, N 64, H 32, float32;
padded as the encoder's, packed as the decoder's), fastest of 5 loops. With ``--step``
it times whole training steps of the preset, its cell ``--cell``, on one batch (as
``benchmarks/step_breakdown.py`` does), alternating the NumPy kernels, the compiled
forward alone and both compiled. Whole runs against the peers: ``MINIS2S_KERNELS=compiled
minis2s bench --preset zh --vs-torch --vs-jax``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit

import numpy as np

from minis2s import compiled
from minis2s.ops import CELLS, State
from minis2s.ops.recurrent import schedule

F = np.float32


def cases(rng, T=10, N=64, H=32, cell="gru"):
    """zh-shaped layers of the cell: padded (the encoder's) and packed (the decoder's,
    step sizes of 64 target lengths drawn from 2..10)."""
    G = compiled.NUMPY_CELLS[cell].gates
    lengths = np.sort(rng.integers(2, T + 1, N))[::-1]
    sizes = [int((lengths > t).sum()) for t in range(T)]
    weight_hh = (rng.standard_normal((G * H, H)) * 0.3).astype(F)
    bias_hh = (rng.standard_normal(G * H) * 0.1).astype(F)
    h0, c0 = ((rng.standard_normal((N, H)) * 0.5).astype(F) for _ in range(2))
    state = State(h0, c0) if cell == "lstm" else State(h0)
    for name, bs in (("padded (encoder)", None), ("packed (decoder)", sizes)):
        M = T * N if bs is None else sum(bs)
        gi = rng.standard_normal((M, G * H)).astype(F)
        yield name, (gi, state, weight_hh, bias_hh, schedule(T, N, bs, False))


def layer_times(layer, repeats: int, cell: str = "gru") -> dict:
    """µs per call, fastest of 5 loops, of each kernel on one layer."""
    plain, fast = compiled.NUMPY_CELLS[cell], compiled.COMPILED_CELLS[cell]
    hs, cache = plain.layer_forward(*layer)
    dhs = np.ones_like(hs)
    runs = {("forward", "NumPy"): lambda: plain.layer_forward(*layer),
            ("forward", "compiled"): lambda: fast.layer_forward(*layer),
            ("backward", "NumPy"): lambda: plain.layer_backward(dhs, None, cache),
            ("backward", "compiled"): lambda: fast.layer_backward(dhs, None, cache)}
    return {key: min(timeit.repeat(fn, number=repeats, repeat=5)) / repeats * 1e6
            for key, fn in runs.items()}


def time_steps(preset_name: str, data_path, repeats: int, cell: str = "gru") -> None:
    """Median training steps (forward and backward) on one batch, alternating the cell's
    NumPy kernels, the compiled forward alone, and both compiled."""
    from step_breakdown import PARTS, step, trainer_and_batch

    trainer, batch = trainer_and_batch(preset_name, data_path, cell=cell)
    plain, fast, before = compiled.NUMPY_CELLS[cell], compiled.COMPILED_CELLS[cell], CELLS[cell]
    cells = {"NumPy": plain,
             "forward": plain._replace(layer_forward=fast.layer_forward),
             "both": fast}
    times = {impl: {p: [] for p in PARTS} for impl in cells}
    try:
        for _ in range(repeats + 1):
            for impl, kernels in cells.items():
                CELLS[cell] = kernels
                step(trainer, batch, trainer.preset, times[impl])
    finally:
        CELLS[cell] = before
    print(f"preset {preset_name}, cell {cell}: one batch of {len(batch.src)} pairs, medians "
          f"of {repeats} alternating steps (ms)")
    for impl, parts in times.items():
        med = {p: statistics.median(v[1:]) for p, v in parts.items()}
        print(f"  {impl:<8} forward {med['forward']:.3f}, backward {med['backward']:.3f}, "
              f"step {sum(med.values()):.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="loops of each call (default 300), or steps with --step (200)")
    parser.add_argument("--step", metavar="PRESET",
                        help="time training steps of this preset instead")
    parser.add_argument("--cell", choices=sorted(compiled.COMPILED_CELLS), default="gru",
                        help="the cell (default gru)")
    parser.add_argument("--data")
    args = parser.parse_args(argv)
    try:
        compiled.warm_up(F, [args.cell])
    except compiled.CompiledError as e:
        print(e, file=sys.stderr)
        return 1
    if args.step:
        time_steps(args.step, args.data, args.repeats or 200, args.cell)
        return 0
    import numba

    repeats = args.repeats or 300
    print(f"one {args.cell.upper()} layer, T 10, N 64, H 32, float32, numba "
          f"{numba.__version__}; fastest of 5 loops of {repeats} (us)")
    for name, layer in cases(np.random.default_rng(0), cell=args.cell):
        times = layer_times(layer, repeats, args.cell)
        for way in ("forward", "backward"):
            numpy_us, compiled_us = times[way, "NumPy"], times[way, "compiled"]
            print(f"  {name} {way}: NumPy {numpy_us:.1f}, compiled {compiled_us:.1f} "
                  f"({numpy_us / compiled_us:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
