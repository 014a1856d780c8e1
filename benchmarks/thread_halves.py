"""A trial kept for its measurements: both cores for one process without MPI, as two
Python threads that each run the forward and backward of half of a batch's rows (the
shards two ranks would take), against one process running the whole batch.

    python benchmarks/thread_halves.py [--preset en] [--repeats 20] [--data PATH]

Prints, in ms per batch (medians of alternating rounds on one batch): one process with
the whole batch (BLAS's own threads); two threads, one half each, with BLAS limited to
one thread (so that the two threads have a core each) and at its default; and, for
scale, the whole batch and the two halves one after the other on one BLAS thread.
docs/performance.md ("Changes, predicted and measured") has what it measured: the
threads are slower than one process in every form. Needs threadpoolctl (the mpi extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from types import SimpleNamespace

from step_breakdown import trainer_and_batch  # the same trainer and batch

from minis2s.model import draw_dropout_masks, seq2seq_backward, seq2seq_forward
from minis2s.train.ranks import shard_rows

WAYS = ("one process, whole batch", "two threads, halves, 1 BLAS thread",
        "two threads, halves, BLAS default", "whole batch, 1 BLAS thread",
        "halves one after the other, 1 BLAS thread")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="en")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data")
    args = parser.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is missing: pip install 'minis2s[mpi]'", file=sys.stderr)
        return 1
    trainer, batch = trainer_and_batch(args.preset, args.data)
    preset = trainer.preset
    masks = draw_dropout_masks(trainer.cfg, trainer.backend, trainer.dropout_gen,
                               *batch.src.shape, batch.tgt.shape[1])
    halves = []
    for rank in range(2):  # the shards two ranks would train
        rows = shard_rows(batch.packing.order, SimpleNamespace(rank=rank, size=2))
        halves.append((batch.take(rows), masks.take(rows)))

    def forward_backward(b, m):
        _, cache = seq2seq_forward(trainer.params, trainer.cfg, b, m)
        return seq2seq_backward(1.0, cache, consume=True).params

    def threads():
        grads = [None, None]

        def run(i):
            grads[i] = forward_backward(*halves[i])

        workers = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return {name: grads[0][name] + grads[1][name] for name in grads[0]}  # the sum

    def whole():
        forward_backward(batch, masks)

    def one_after_the_other():
        forward_backward(*halves[0])
        forward_backward(*halves[1])

    def timed(fn, blas_threads=None):
        limit = threadpool_limits(blas_threads, user_api="blas") if blas_threads else None
        try:
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e3
        finally:
            if limit is not None:
                limit.restore_original_limits()

    runs = [(whole, None), (threads, 1), (threads, None), (whole, 1),
            (one_after_the_other, 1)]
    times = {way: [] for way in WAYS}
    for _ in range(args.repeats + 1):  # the first round warms up and is not counted
        for way, (fn, blas) in zip(WAYS, runs):
            times[way].append(timed(fn, blas))
    print(f"preset {preset.name}: one batch of {len(batch.src)} pairs, medians of "
          f"{args.repeats} alternating rounds")
    for way, ms in times.items():
        print(f"  {way:<44}{statistics.median(ms[1:]):8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
