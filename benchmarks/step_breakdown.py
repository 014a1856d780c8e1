"""Where one training step of a preset spends its time: forward, backward, gradient copy,
clipping, Adam, each the median over repeated steps on the same batch.

    python benchmarks/step_breakdown.py --preset en [--repeats 30] [--data PATH] [--layers]
                                        [--default-malloc]

With ``--layers`` it also times, inside the same steps, the recurrent layers' time loops
(every call of the cell's ``layer_forward`` and ``layer_backward``, encoder and decoder
together), the part of forward and backward that runs step by step. With ``--default-malloc`` the
trainer leaves the C allocator as glibc sets it (no
:func:`minis2s.backend.keep_freed_memory`), for comparing the two in fresh processes.

Whole-epoch throughput on a shared machine drifts by ±25% between runs; a median over
many steps of one fixed batch in one process is steady enough to compare two versions of
an op (run this script on each, one after the other, twice).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import numpy as np

from minis2s.backend import get_backend
from minis2s.bench import bench_data
from minis2s.data import iterate_batches
from minis2s.model import draw_dropout_masks, seq2seq_backward, seq2seq_forward
from minis2s.ops import CELLS
from minis2s.optim import clip_grad_norm_
from minis2s.presets import get_preset
from minis2s.train import Trainer, model_config

PARTS = ("forward", "backward", "copy grads", "clip", "adam")
LOOPS = ("layer_forward", "layer_backward")  # the cell's time loops, timed with --layers


@contextlib.contextmanager
def timed_loops(name: str, spent: dict):
    """While inside, every call of cell ``name``'s time loops adds its seconds to
    ``spent[loop]``; the cell is put back afterwards."""
    cell = CELLS[name]

    def timed(loop, fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[loop] += time.perf_counter() - start
        return run

    CELLS[name] = cell._replace(**{loop: timed(loop, getattr(cell, loop)) for loop in LOOPS})
    try:
        yield
    finally:
        CELLS[name] = cell


def trainer_and_batch(preset_name: str, data_path, keep_freed_memory: bool = True,
                      cell: str | None = None):
    """A fresh NumPy trainer of the preset (seed 0; its cell, or ``cell``) and the first
    batch of its data, in the order of a fixed generator: what every step here is timed
    on. Without ``keep_freed_memory`` the trainer does not ask glibc to keep freed
    memory."""
    if not keep_freed_memory:
        import minis2s.train.trainer as trainer_module

        trainer_module.keep_freed_memory = lambda: False
    preset = get_preset(preset_name).with_overrides(cell=cell)
    data = bench_data(preset, data_path)
    trainer = Trainer(model_config(preset, data), preset, get_backend("numpy"), seed=0)
    batch = next(iter(iterate_batches(data.train, preset.batch_size,
                                      np.random.default_rng(0), bos=data.tgt_vocab.bos)))
    return trainer, batch


def step(trainer, batch, preset, times) -> None:
    """One training step on ``batch``, each part's milliseconds appended to ``times``."""
    backend = trainer.backend
    masks = draw_dropout_masks(trainer.cfg, backend, trainer.dropout_gen, *batch.src.shape,
                               batch.tgt.shape[1])
    t = [time.perf_counter()]
    loss, cache = seq2seq_forward(trainer.params, trainer.cfg, batch, masks)
    t.append(time.perf_counter())
    grads = seq2seq_backward(1.0, cache, consume=True).params
    t.append(time.perf_counter())
    trainer.grads.assign(grads)
    t.append(time.perf_counter())
    clip_grad_norm_(trainer.grads, preset.grad_clip)
    t.append(time.perf_counter())
    trainer.opt.step(trainer.grads)
    t.append(time.perf_counter())
    for part, a, b in zip(PARTS, t, t[1:]):
        times[part].append((b - a) * 1e3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="en")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--data")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's allocator at its defaults (the comparison)")
    parser.add_argument("--layers", action="store_true",
                        help="also time the recurrent layers' time loops inside the step")
    args = parser.parse_args(argv)
    trainer, batch = trainer_and_batch(args.preset, args.data, not args.default_malloc)
    preset = trainer.preset
    times = {p: [] for p in PARTS + LOOPS}
    spent = dict.fromkeys(LOOPS, 0.0)
    timing = timed_loops(trainer.cfg.cell, spent) if args.layers else contextlib.nullcontext()
    with timing:
        for _ in range(args.repeats + 1):  # the first step warms up and is not counted
            spent.update(dict.fromkeys(LOOPS, 0.0))
            step(trainer, batch, preset, times)
            for loop in LOOPS:
                times[loop].append(spent[loop] * 1e3)
    medians = {p: statistics.median(v[1:]) for p, v in times.items()}
    tokens = batch.num_tokens
    total = sum(medians[p] for p in PARTS)
    print(f"preset {preset.name}: one batch of {len(batch.src)} pairs, {tokens} target tokens, "
          f"median of {args.repeats} steps")
    for part in PARTS:
        ms = medians[part]
        print(f"  {part:<11}{ms:8.2f} ms  {100 * ms / total:5.1f}%")
        loop = {"forward": "layer_forward", "backward": "layer_backward"}.get(part)
        if args.layers and loop:
            calls = f"{trainer.cfg.cell} time loops"
            print(f"    {calls:<22}{medians[loop]:8.2f} ms  "
                  f"{100 * medians[loop] / ms:5.1f}% of the {part}")
    print(f"  {'total':<11}{total:8.2f} ms  = {tokens / total * 1e3:,.0f} tokens/sec")
    return 0


if __name__ == "__main__":
    sys.exit(main())
