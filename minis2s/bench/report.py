"""The benchmark as a user runs it: contenders alternated run after run (A B A B ...)
so that drift of the machine hits both, medians, the ratio, and the work done against
this machine's matrix-product ceiling, printed.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from ..compiled import runs_compiled
from ..data import TaskSpec
from ..presets import Preset, get_preset
from ..wording import plural
from .launch import BenchError, mpiexec_command, spawn
from .machine import describe
from .runs import BENCH_EPOCHS, Result, bench_data, have_jax, have_torch


def nominal_flops_per_token(preset: Preset, data) -> float:
    """Matrix-product FLOPs of one training step of the plain (padded) model, as the seed
    and a framework compute it, per valid target token: forward + backward (x3), every
    position of every sequence (the encoder's and the decoder's own count,
    :meth:`minis2s.model.Decoder.flops`). Elementwise work is not counted."""
    from ..model.encoder import encoder_flops
    from ..train import model_config

    cfg = model_config(preset, data)
    N, T = data.train.src.shape[0], preset.num_steps  # counted over the whole epoch
    per_pair = encoder_flops(cfg, T) + cfg.decoder.flops(cfg, T, T)
    return 3 * N * per_pair / float(data.train.tgt_valid_len.sum())


def gemm_ceiling_gflops(n: int | None = None, repeats: int = 20,
                        backend: str = "numpy") -> float:
    """Measured float32 matrix-product rate of this machine, n x n products (default
    1024): NumPy's BLAS on all threads, or with ``backend`` cupy the GPU's (default n
    4096, as a GPU needs larger products to reach its rate; each product waited for)."""
    from ..backend import get_backend

    xp = get_backend(backend).xp
    if n is None:
        n = 1024 if backend == "numpy" else 4096
    rng = np.random.default_rng(0)
    a = xp.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = xp.asarray(rng.standard_normal((n, n), dtype=np.float32))
    out = xp.empty((n, n), dtype=np.float32)

    def wait() -> None:
        if xp is not np:
            xp.cuda.Device().synchronize()

    xp.matmul(a, b, out=out)
    wait()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        xp.matmul(a, b, out=out)
        wait()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def bench(preset: str, epochs: int | None = None, repeats: int = 2, vs_torch: bool = True,
          seed: int = 0, data=None, out=sys.stdout, cell: str = "gru",
          model: str = "seq2seq", ranks: int = 1, backend: str = "numpy",
          vs_jax: bool = False, task: TaskSpec | None = None,
          sizes: dict | None = None) -> dict:
    """Alternate runs of ``preset`` with ``cell``, ``model`` and the fields ``sizes``
    gives (``embed_size``, ``num_hiddens`` ...) and print a summary; returns the medians.
    With a ``task``, every run trains on its pairs (the settings it sets, then ``sizes``,
    over the preset's) and ``data`` must be None; epochs then default to 1. With ``ranks``
    > 1, minis2s also runs on that many processes; with ``backend`` cupy, minis2s and
    PyTorch run on the GPU."""
    if task is not None and data is not None:
        raise BenchError(f"--data names a corpus to read, and --task {task.name} makes "
                         "pairs of its own: give one or the other")
    overrides = {"cell": cell, "model": model, **(sizes or {})}
    full = get_preset(preset).with_task(task, **overrides)  # checked before any run
    if task is not None:
        overrides["task"] = task.to_dict()  # what each run builds its preset from
    made = []  # the parent's data, made once where it is needed

    def full_data():
        if not made:
            made.append(bench_data(full, data))
        return made[0]

    epochs = epochs or (1 if task is not None else BENCH_EPOCHS.get(preset, 1))
    if ranks < 1:
        raise BenchError(f"--ranks must be at least 1, got {ranks}")
    contenders = [("minis2s", 1)]
    if ranks > 1:
        mpiexec_command(ranks)  # before any run: a missing MPI is said at once
        contenders.append((f"minis2s-{ranks}ranks", ranks))
    if vs_torch:
        if not have_torch():
            raise BenchError("--vs-torch needs PyTorch, which is not installed: pip install "
                             "torch")
        contenders.append(("pytorch", 1))
    if vs_jax:
        if not have_jax():
            raise BenchError("--vs-jax needs JAX, which is not installed: pip install jax")
        if backend != "numpy":
            raise BenchError("--vs-jax runs on the CPU only (--backend numpy)")
        from ..jax_reference import check_config
        from ..train import model_config

        try:
            check_config(model_config(full, full_data()))
        except ValueError as e:
            raise BenchError(f"--vs-jax: {e}") from None
        contenders.append(("jax", 1))
    results: dict[str, list[Result]] = {name: [] for name, _ in contenders}
    width = max(len(name) for name in results)
    for r in range(repeats):
        for name, n in contenders:
            impl = name if name in ("pytorch", "jax") else "minis2s"
            res = spawn(impl, preset, epochs, seed, data, overrides, ranks=n,
                        backend=backend)
            results[name].append(res)
            print(f"run {r + 1}/{repeats} {name:{width}s} {res.tokens_per_sec:10.1f} "
                  f"tokens/sec  loss {res.loss:.4f}  peak RSS {res.peak_rss_mb:.0f} MB",
                  file=out)
    summary = {}
    for name, rs in results.items():
        summary[name] = {
            "tokens_per_sec": statistics.median(x.tokens_per_sec for x in rs),
            "loss": statistics.median(x.loss for x in rs),
            "peak_rss_mb": max(x.peak_rss_mb for x in rs),
            "step_ms": statistics.median(x.step_ms for x in rs),
            "wall_seconds": statistics.median(x.wall_seconds for x in rs),
            "compile_seconds": statistics.median(x.compile_seconds for x in rs)}
    where = "" if backend == "numpy" else f" on the GPU ({backend})"
    if backend == "numpy" and runs_compiled(cell):
        where += " (its loops compiled)"
    if task is not None:
        print(f"task {task.describe()}", file=out)
    shape = f"embed {full.embed_size}, {full.num_layers} x {full.num_hiddens} units, " \
        f"batches of {full.batch_size}, " if sizes else ""
    print(f"preset {preset}, {model} model, cell {cell}{where}, {shape}"
          f"{plural(epochs, 'epoch')} per run, "
          f"{plural(repeats, 'run')} each "
          f"(medians; peak RSS is the largest, of rank 0 under mpiexec)", file=out)
    machine = describe()
    for line in machine:
        print(f"  {line}", file=out)
    for name, s in summary.items():
        compiled = f", of which compiling {s['compile_seconds']:.1f} s" \
            if s["compile_seconds"] else ""
        print(f"  {name:{width}s} {s['tokens_per_sec']:10.1f} tokens/sec  loss "
              f"{s['loss']:.4f}  peak RSS {s['peak_rss_mb']:.0f} MB  whole run "
              f"{s['wall_seconds']:.1f} s{compiled}", file=out)
    summary["machine"] = machine
    if ranks > 1:
        summary["ranks"] = ranks_summary(results[f"minis2s-{ranks}ranks"],
                                          summary["minis2s"], ranks, out)
    flops = nominal_flops_per_token(full, full_data())
    ceiling = gemm_ceiling_gflops(backend=backend)
    summary["flops_per_token"], summary["gemm_ceiling_gflops"] = flops, ceiling
    print(f"  nominal work {flops / 1e6:.1f} MFLOP per target token; float32 GEMM ceiling "
          f"{ceiling:.0f} GFLOP/s" + ("" if backend == "numpy" else " (the GPU's)"),
          file=out)
    for name in results:
        rate = summary[name]["tokens_per_sec"] * flops / 1e9
        summary[name]["nominal_gflops"] = rate
        print(f"  {name:{width}s} {rate:6.1f} nominal GFLOP/s = {100 * rate / ceiling:.0f}% "
              f"of the ceiling", file=out)
    if vs_torch:
        ratio = summary["minis2s"]["tokens_per_sec"] / summary["pytorch"]["tokens_per_sec"]
        lm, lt = summary["minis2s"]["loss"], summary["pytorch"]["loss"]
        summary["ratio"] = ratio
        summary["loss_gap"] = abs(lm - lt) / max(lt, 1e-12)
        print(f"  ratio minis2s / pytorch: {ratio:.2f}x; final losses differ by "
              f"{100 * summary['loss_gap']:.1f}%", file=out)
        if ranks > 1:
            name = f"minis2s-{ranks}ranks"
            summary["ranks_ratio"] = (summary[name]["tokens_per_sec"]
                                      / summary["pytorch"]["tokens_per_sec"])
            print(f"  ratio {name} / pytorch: {summary['ranks_ratio']:.2f}x", file=out)
    if vs_jax:
        fast, slow = summary["minis2s"], summary["jax"]
        summary["jax_ratio"] = fast["tokens_per_sec"] / slow["tokens_per_sec"]
        summary["jax_wall_ratio"] = slow["wall_seconds"] / fast["wall_seconds"]
        print(f"  ratio minis2s / jax: {summary['jax_ratio']:.2f}x in the epochs; "
              f"{summary['jax_wall_ratio']:.2f}x end to end (jax's whole run / minis2s's)",
              file=out)
    return summary


def ranks_summary(runs: list[Result], single: dict, ranks: int, out) -> dict:
    """What R ranks gain over one process, and what their sums cost."""
    med = statistics.median
    step = med(x.step_ms for x in runs)
    summed = med(x.allreduce_ms for x in runs)
    pure = med(x.pure_allreduce_ms for x in runs)
    nbytes = runs[0].gradient_bytes
    ring = 2 * (ranks - 1) / ranks * nbytes  # what a ring allreduce sends from each rank
    info = {"speedup": med(x.tokens_per_sec for x in runs) / single["tokens_per_sec"],
            "step_ms": step, "allreduce_ms": summed, "pure_allreduce_ms": pure,
            "allreduce_share": summed / step, "gradient_bytes": nbytes,
            "ring_bytes_per_rank": ring}
    print(f"  {ranks} ranks / 1 process: {info['speedup']:.2f}x; a step takes {step:.1f} ms, "
          f"of which {summed:.2f} ms ({100 * summed / step:.1f}%) in the sums over the ranks "
          f"(waiting included); the gradients' sum alone takes {pure:.2f} ms", file=out)
    print(f"  the gradients are {nbytes / 1e6:.2f} MB; a ring allreduce sends "
          f"{ring / 1e6:.2f} MB from each rank per step", file=out)
    return info
