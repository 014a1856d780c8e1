"""Timed training runs, one contender in this process: minis2s (alone, or as one rank
under ``mpiexec``) or the PyTorch reference of the same model, on the same data, batches
and initial weights. A run measures; it prints nothing but its :class:`Result`, which
:mod:`.launch` reads and :mod:`.report` summarises.
"""

from __future__ import annotations

import math
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..presets import Preset

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
    device: str = "cpu"  # where it trained: cpu, or gpu
    compile_seconds: float = 0.0  # compiling (JAX's step; minis2s's compiled loops), not
    # in the epochs
    wall_seconds: float = 0.0  # the whole run: data, model, compiling and every epoch


def peak_rss_mb() -> float:
    """This process's peak resident memory (libraries included)."""
    try:  # VmHWM is reset by exec, unlike ru_maxrss, which a child may inherit
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_data(preset: Preset, data_path):
    """The training pairs a run of ``preset`` times: its task's, made from the task's
    seed (``data_path`` is then not read), else the corpus's; the held-out parts emptied."""
    from ..data import Part, load_data, load_task_data, resolve_data_path

    if preset.task is not None:
        data = load_task_data(preset.task, preset.data_spec())
    else:
        data = load_data(resolve_data_path(data_path), preset.data_spec(),
                         warn=lambda m: None)
    empty = Part(data.train.src[:0], data.train.src_valid_len[:0], data.train.tgt[:0],
                 data.train.tgt_valid_len[:0], [], [])
    data.valid = data.test = empty  # only training is timed
    return data


def run_minis2s(preset: Preset, data, epochs: int, seed: int,
                backend: str = "numpy") -> Result:
    """Train in this process, or as one of the ranks when started by ``mpiexec``, on
    ``backend`` (float32; under ``mpiexec`` with CuPy each rank takes its own GPU)."""
    from ..backend import get_backend
    from ..compiled import from_environment, runs_compiled, warm_up
    from ..train import Trainer, model_config
    from ..train.ranks import limit_blas_threads, world

    ranks = world()
    on = get_backend(backend)
    from_environment()
    # compiled loops ($MINIS2S_KERNELS=compiled): compiled before the timed epochs, as
    # JAX's step is, and that time reported apart; before the BLAS threads are limited,
    # so that the limit reaches the BLAS that Numba loads too
    compiling = warm_up(on.dtype, [preset.cell]) \
        if on.name == "numpy" and runs_compiled(preset.cell) else 0.0
    said = limit_blas_threads(ranks)
    if said and ranks.rank == 0:
        print(said, file=sys.stderr)
    ranks.barrier()  # every rank done compiling before the first step
    trainer = Trainer(model_config(preset, data), preset, on, seed=seed, ranks=ranks)
    trainer.fit(data, epochs, progress=False)
    tokens = sum(s.tokens for s in trainer.history)
    seconds = sum(s.seconds for s in trainer.history)
    steps = trainer.opt.t
    result = Result("minis2s", tokens / seconds, trainer.history[-1].loss, peak_rss_mb(),
                    seconds, epochs, ranks.size, 1e3 * seconds / steps, device=on.device,
                    compile_seconds=compiling)
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


def run_torch(preset: Preset, data, epochs: int, seed: int, backend: str = "numpy") -> Result:
    """The PyTorch reference of the same model, on the CPU, or with ``backend`` cupy on
    the GPU (CUDA; cuDNN for the recurrent layers, as PyTorch chooses by default)."""
    import torch

    from ..backend import get_backend, to_numpy
    from ..data import iterate_batches
    from ..model import init_params
    from ..torch_reference import TorchSeq2Seq, masked_ce, seed_grad_clipping
    from ..train import model_config

    cfg = model_config(preset, data)
    init = init_params(cfg, get_backend("numpy"), np.random.default_rng(seed))
    device = torch.device("cuda" if backend == "cupy" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("PyTorch here has no CUDA: the GPU reference cannot run")
    net = TorchSeq2Seq(cfg)  # float32, like minis2s
    net.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in init.items()})
    net.to(device)
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
            src, tgt = torch.from_numpy(b.src).to(device), torch.from_numpy(b.tgt).to(device)
            valid = torch.from_numpy(b.tgt_valid_len).to(device)
            dec_in = torch.from_numpy(b.tgt_in).to(device)
            src_valid = torch.from_numpy(b.src_valid_len).to(device)
            opt.zero_grad()
            loss = masked_ce(net(src, dec_in, None, src_valid), tgt, valid)
            loss.backward()
            seed_grad_clipping(net, preset.grad_clip)
            opt.step()
            loss_sum += loss.item()
            epoch_tokens += b.num_tokens
            steps += 1
        seconds += time.perf_counter() - start
        tokens += epoch_tokens
    return Result("pytorch", tokens / seconds, loss_sum / epoch_tokens, peak_rss_mb(),
                  seconds, epochs, step_ms=1e3 * seconds / steps, device=device.type.replace(
                      "cuda", "gpu"))


def run_jax(preset: Preset, data, epochs: int, seed: int, backend: str = "numpy") -> Result:
    """The JAX reference of the seed's model (:mod:`minis2s.jax_reference`), on JAX's
    default device, float32: the same initial weights and batch order as minis2s; every
    batch shape compiled before the epochs are timed, and that time reported apart."""
    from ..backend import get_backend
    from ..data import iterate_batches
    from ..jax_reference import check_config, train
    from ..model import init_params
    from ..train import model_config

    if backend != "numpy":
        raise RuntimeError("the JAX reference runs on the CPU here (--backend numpy)")
    cfg = model_config(preset, data)
    check_config(cfg)
    init = init_params(cfg, get_backend("numpy"), np.random.default_rng(seed))
    shuffle = np.random.default_rng([seed, 1])  # the same batch order as minis2s
    bos = data.tgt_vocab.bos
    every = (iterate_batches(data.train, preset.batch_size, shuffle, bos=bos)
             for _ in range(epochs))
    _, history, compile_seconds = train(cfg, {k: np.asarray(v) for k, v in init.items()},
                                        every, preset.lr, preset.grad_clip, seed)
    tokens = sum(n for _, n, _ in history)
    seconds = sum(t for _, _, t in history)
    steps = epochs * math.ceil(len(data.train) / preset.batch_size)
    last_loss, last_tokens, _ = history[-1]
    return Result("jax", tokens / seconds, last_loss / last_tokens, peak_rss_mb(), seconds,
                  epochs, step_ms=1e3 * seconds / steps, compile_seconds=compile_seconds)


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def have_jax() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True
