"""Training speed of minis2s against a PyTorch reference of the same model, side by side.

``minis2s bench --preset zh|en|big [--vs-torch]`` trains the identical model (same
initial weights, same data, same batch order) for a fixed number of epochs, each run in a
fresh process, alternating minis2s and PyTorch (A B A B ...) so that drift of the machine
hits both. It reports valid target tokens per second over whole epochs (the measure of
``minis2s train``'s closing line), the ratio, each process's peak resident memory and the
final losses.

``--ranks R`` adds a third contender to the alternation: minis2s on R processes under
``mpiexec -n R`` (one BLAS thread each on a machine of R cores), against one process and
against PyTorch with its default threads; it also reports the time each step spends
summing the gradients over the ranks, the same sum measured alone, and the bytes each
rank sends per step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from .model import DECODERS
from .ops import CELLS
from .presets import Preset, get_preset
from .train.ranks import RankError, launched_rank


class BenchError(RuntimeError):
    """A benchmark run could not be made."""


BENCH_EPOCHS = {"zh": 30, "en": 10, "big": 1}
BENCH_PRESETS = ("zh", "en", "big")


@dataclass
class Result:
    impl: str
    tokens_per_sec: float
    loss: float
    peak_rss_mb: float
    seconds: float
    epochs: int
    ranks: int = 1
    step_ms: float = 0.0  # training time per optimisation step
    allreduce_ms: float = 0.0  # per step, in training: the sums, and waiting for them
    pure_allreduce_ms: float = 0.0  # the gradients' sum alone, ranks lined up first
    gradient_bytes: int = 0  # each rank's gradient buffer (what one sum adds up)


def _peak_rss_mb() -> float:
    """This process's peak resident memory (libraries included)."""
    try:  # VmHWM is reset by exec, unlike ru_maxrss, which a child may inherit
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _bench_data(preset: Preset, data_path):
    from .data import Part, load_data, resolve_data_path

    data = load_data(resolve_data_path(data_path), preset.data_spec(), warn=lambda m: None)
    empty = Part(data.train.src[:0], data.train.src_valid_len[:0], data.train.tgt[:0],
                 data.train.tgt_valid_len[:0], [], [])
    data.valid = data.test = empty  # only training is timed
    return data


def run_minis2s(preset: Preset, data, epochs: int, seed: int) -> Result:
    """Train in this process, or as one of the ranks when started by ``mpiexec``."""
    from .backend import get_backend
    from .train import Trainer, model_config
    from .train.ranks import limit_blas_threads, world

    ranks = world()
    said = limit_blas_threads(ranks)
    if said and ranks.rank == 0:
        print(said, file=sys.stderr)
    trainer = Trainer(model_config(preset, data), preset, get_backend("numpy"), seed=seed,
                      ranks=ranks)
    trainer.fit(data, epochs, progress=False)
    tokens = sum(s.tokens for s in trainer.history)
    seconds = sum(s.seconds for s in trainer.history)
    steps = trainer.opt.t
    result = Result("minis2s", tokens / seconds, trainer.history[-1].loss, _peak_rss_mb(),
                    seconds, epochs, ranks.size, 1e3 * seconds / steps)
    if ranks.size > 1:
        summed = np.zeros_like(trainer.grads.flat)  # what every step sums over the ranks
        result.allreduce_ms = 1e3 * trainer.allreduce_seconds / steps
        result.pure_allreduce_ms = 1e3 * time_allreduce(ranks, summed)
        result.gradient_bytes = int(summed.nbytes)
        result.impl = f"minis2s-{ranks.size}ranks"
    return result


def time_allreduce(ranks, buffer, repeats: int = 20) -> float:
    """Median seconds of one sum of ``buffer`` over the ranks, every rank lined up at a
    barrier first (so no rank's lateness is counted)."""
    times = []
    for _ in range(repeats):
        ranks.barrier()
        start = time.perf_counter()
        ranks.sum_(buffer)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_torch(preset: Preset, data, epochs: int, seed: int) -> Result:
    import torch

    from .backend import get_backend, to_numpy
    from .data import iterate_batches
    from .model import init_params
    from .torch_reference import TorchSeq2Seq, masked_ce, seed_grad_clipping
    from .train import model_config

    cfg = model_config(preset, data)
    init = init_params(cfg, get_backend("numpy"), np.random.default_rng(seed))
    net = TorchSeq2Seq(cfg)  # float32, like minis2s
    net.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in init.items()})
    net.train()
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=preset.lr)
    shuffle = np.random.default_rng([seed, 1])  # the same batch order as minis2s
    bos = data.tgt_vocab.bos
    tokens, seconds, loss_sum, epoch_tokens, steps = 0, 0.0, 0.0, 0, 0
    for _ in range(epochs):
        start = time.perf_counter()
        loss_sum, epoch_tokens = 0.0, 0
        for b in iterate_batches(data.train, preset.batch_size, shuffle, bos=bos):
            src, tgt = torch.from_numpy(b.src), torch.from_numpy(b.tgt)
            valid = torch.from_numpy(b.tgt_valid_len)
            dec_in = torch.from_numpy(b.tgt_in)
            opt.zero_grad()
            loss = masked_ce(net(src, dec_in, None, torch.from_numpy(b.src_valid_len)), tgt,
                             valid)
            loss.backward()
            seed_grad_clipping(net, preset.grad_clip)
            opt.step()
            loss_sum += loss.item()
            epoch_tokens += b.num_tokens
            steps += 1
        seconds += time.perf_counter() - start
        tokens += epoch_tokens
    return Result("pytorch", tokens / seconds, loss_sum / epoch_tokens, _peak_rss_mb(),
                  seconds, epochs, step_ms=1e3 * seconds / steps)


def _worker(args) -> int:
    preset = get_preset(args.preset).with_overrides(**json.loads(args.overrides or "{}"))
    data = _bench_data(preset, args.data)
    run = run_minis2s if args.worker == "minis2s" else run_torch
    result = run(preset, data, args.epochs, args.seed)
    if launched_rank() == 0:  # one line, from the root
        print(json.dumps(result.__dict__))
        sys.stdout.flush()
    return 0


def mpiexec_command(ranks: int) -> list[str]:
    """The launcher for ``ranks`` processes; a clear error without MPI."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise BenchError("--ranks needs mpi4py and an MPI: pip install 'minis2s[mpi]'") \
            from None
    launcher = shutil.which("mpiexec") or shutil.which("mpirun")
    if launcher is None:
        raise BenchError("--ranks needs an MPI launcher (mpiexec) on the PATH: pip "
                         "install 'minis2s[mpi]' brings MPICH's")
    return [launcher, "-n", str(ranks)]


def _spawn(impl: str, preset: str, epochs: int, seed: int, data, overrides=None,
           ranks: int = 1) -> Result:
    launcher = mpiexec_command(ranks) if ranks > 1 else []
    cmd = [*launcher, sys.executable, "-m", "minis2s.bench", "--worker", impl, "--preset",
           preset, "--epochs", str(epochs), "--seed", str(seed)]
    if data:
        cmd += ["--data", str(data)]
    if overrides:
        cmd += ["--overrides", json.dumps(overrides)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise BenchError(f"{impl} run failed:\n{proc.stderr[-3000:]}")
    try:
        result = Result(**json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError, TypeError):
        raise BenchError(f"{impl} run gave no result line:\n{proc.stdout[-1500:]}"
                         f"{proc.stderr[-1500:]}") from None
    if result.ranks != ranks:
        raise BenchError(f"{impl} ran on {result.ranks} process(es), not {ranks}: "
                         f"{' '.join(launcher)} did not start one MPI job")
    return result


def measure_pair(preset: str, epochs: int, seed: int = 0, data=None,
                 overrides: dict | None = None) -> tuple[Result, Result]:
    """One minis2s run, then one PyTorch run, of a preset with some fields overridden."""
    return (_spawn("minis2s", preset, epochs, seed, data, overrides),
            _spawn("pytorch", preset, epochs, seed, data, overrides))


def nominal_flops_per_token(preset: Preset, data) -> float:
    """Matrix-product FLOPs of one training step of the plain (padded) model, as the seed
    and a framework compute it, per valid target token: forward + backward (x3), every
    position of every sequence (the encoder's and the decoder's own count,
    :meth:`minis2s.model.Decoder.flops`). Elementwise work is not counted."""
    from .model.encoder import encoder_flops
    from .train import model_config

    cfg = model_config(preset, data)
    N, T = data.train.src.shape[0], preset.num_steps  # counted over the whole epoch
    per_pair = encoder_flops(cfg, T) + cfg.decoder.flops(cfg, T, T)
    return 3 * N * per_pair / float(data.train.tgt_valid_len.sum())


def gemm_ceiling_gflops(n: int = 1024, repeats: int = 20) -> float:
    """Measured float32 matrix-product rate of this machine (NumPy's BLAS, all threads)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def bench(preset: str, epochs: int | None = None, repeats: int = 2, vs_torch: bool = True,
          seed: int = 0, data=None, out=sys.stdout, cell: str = "gru",
          model: str = "seq2seq", ranks: int = 1) -> dict:
    """Alternate runs of ``preset`` with ``cell`` and ``model`` and print a summary;
    returns the medians. With ``ranks`` > 1, minis2s also runs on that many processes."""
    epochs = epochs or BENCH_EPOCHS.get(preset, 1)
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
    results: dict[str, list[Result]] = {name: [] for name, _ in contenders}
    width = max(len(name) for name in results)
    for r in range(repeats):
        for name, n in contenders:
            impl = "pytorch" if name == "pytorch" else "minis2s"
            res = _spawn(impl, preset, epochs, seed, data, {"cell": cell, "model": model},
                         ranks=n)
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
            "step_ms": statistics.median(x.step_ms for x in rs)}
    print(f"preset {preset}, {model} model, cell {cell}, {epochs} epochs per run, "
          f"{repeats} runs each "
          f"(medians; peak RSS is the largest, of rank 0 under mpiexec)", file=out)
    for name, s in summary.items():
        print(f"  {name:{width}s} {s['tokens_per_sec']:10.1f} tokens/sec  loss "
              f"{s['loss']:.4f}  peak RSS {s['peak_rss_mb']:.0f} MB", file=out)
    if ranks > 1:
        summary["ranks"] = _ranks_summary(results[f"minis2s-{ranks}ranks"],
                                          summary["minis2s"], ranks, out)
    full = get_preset(preset).with_overrides(cell=cell, model=model)
    flops = nominal_flops_per_token(full, _bench_data(full, data))
    ceiling = gemm_ceiling_gflops()
    summary["flops_per_token"], summary["gemm_ceiling_gflops"] = flops, ceiling
    print(f"  nominal work {flops / 1e6:.1f} MFLOP per target token; float32 GEMM ceiling "
          f"{ceiling:.0f} GFLOP/s", file=out)
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
    return summary


def _ranks_summary(runs: list[Result], single: dict, ranks: int, out) -> dict:
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


def build_parser(parser=None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="minis2s bench")
    parser.add_argument("--preset", choices=BENCH_PRESETS, default="zh")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: zh 30, en 10, "
                        "big 1)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--vs-torch", action="store_true", help="also run the PyTorch "
                        "reference")
    parser.add_argument("--cell", choices=list(CELLS), default="gru",
                        help="the recurrent cell (PyTorch: nn.GRU, nn.LSTM, nn.RNN)")
    parser.add_argument("--model", choices=list(DECODERS), default="seq2seq",
                        help="the decoder (PyTorch: d2l's, a loop over steps for attention)")
    parser.add_argument("--ranks", type=int, default=1, help="also train minis2s on this "
                        "many processes under mpiexec (needs the mpi extra)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="fra.txt or fra-eng.zip (default: $MINIS2S_DATA, ...)")
    parser.add_argument("--worker", choices=["minis2s", "pytorch"], help=argparse.SUPPRESS)
    parser.add_argument("--overrides", help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.worker:
            return _worker(args)
        bench(args.preset, args.epochs, args.repeats, args.vs_torch, args.seed, args.data,
              cell=args.cell, model=args.model, ranks=args.ranks)
    except (BenchError, RankError) as e:
        print(f"minis2s bench: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
