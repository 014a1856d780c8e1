"""Where one training step of a preset spends its time: forward, backward, gradient copy,
clipping, Adam, each the median over repeated steps on the same batch.

    python benchmarks/step_breakdown.py --preset en [--repeats 30] [--data PATH]

Whole-epoch throughput on a shared machine drifts by ±25% between runs; a median over
many steps of one fixed batch in one process is steady enough to compare two versions of
an op (run this script on each, one after the other, twice).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from minis2s.backend import get_backend
from minis2s.bench import bench_data
from minis2s.data import iterate_batches
from minis2s.model import draw_dropout_masks, seq2seq_backward, seq2seq_forward
from minis2s.optim import clip_grad_norm_
from minis2s.presets import get_preset
from minis2s.train import Trainer, model_config

PARTS = ("forward", "backward", "copy grads", "clip", "adam")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="en")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--data")
    args = parser.parse_args(argv)
    preset = get_preset(args.preset)
    data = bench_data(preset, args.data)
    backend = get_backend("numpy")
    trainer = Trainer(model_config(preset, data), preset, backend, seed=0)
    batch = next(iter(iterate_batches(data.train, preset.batch_size,
                                      np.random.default_rng(0), bos=data.tgt_vocab.bos)))
    times = {p: [] for p in PARTS}
    for _ in range(args.repeats + 1):  # the first step warms up and is not counted
        masks = draw_dropout_masks(trainer.cfg, backend, trainer.dropout_gen,
                                   *batch.src.shape, batch.tgt.shape[1])
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
    medians = {p: statistics.median(v[1:]) for p, v in times.items()}
    tokens = batch.num_tokens
    total = sum(medians.values())
    print(f"preset {preset.name}: one batch of {len(batch.src)} pairs, {tokens} target tokens, "
          f"median of {args.repeats} steps")
    for part, ms in medians.items():
        print(f"  {part:<11}{ms:8.2f} ms  {100 * ms / total:5.1f}%")
    print(f"  {'total':<11}{total:8.2f} ms  = {tokens / total * 1e3:,.0f} tokens/sec")
    return 0


if __name__ == "__main__":
    sys.exit(main())
