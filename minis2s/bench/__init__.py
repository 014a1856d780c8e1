"""Training speed of minis2s against a PyTorch reference of the same model, side by side.

``minis2s bench --preset zh|en|big [--vs-torch] [--vs-jax]`` trains the identical model
(same initial weights, same data, same batch order) for a fixed number of epochs, each run
in a fresh process, alternating minis2s, PyTorch and JAX (A B C A B C ...) so that drift
of the machine hits each. It reports valid target tokens per second over whole epochs (the
measure of ``minis2s train``'s closing line), the ratios, each process's peak resident
memory, the final losses, and each run's wall time end to end (the process started, the
library imported, the data read, JAX's compiling: what a user waits for). JAX compiles
its step before the timed epochs; that time is reported apart.

``--backend cupy`` trains minis2s on the GPU through CuPy, and PyTorch on the same GPU
(CUDA, its recurrent layers through cuDNN); the float32 matrix-product ceiling is then
the GPU's.

``--task NAME`` (with the task options of ``minis2s train``: ``--digits``, ``--max-len``,
``--train-size`` ...) trains every contender on a generated task's training pairs instead
of the corpus, the preset's model sized by ``--embed-size``, ``--num-hiddens``,
``--num-layers`` and ``--batch-size`` where given; the task travels to each run in its
``--overrides``.

``--ranks R`` adds a third contender to the alternation: minis2s on R processes under
``mpiexec -n R`` (one BLAS thread each on a machine of R cores), against one process and
against PyTorch with its default threads; it also reports the time each step spends
summing the gradients over the ranks, the same sum measured alone, and the bytes each
rank sends per step.

Three modules: :mod:`.runs` times one contender in this process, :mod:`.launch` starts
each run as its own process (or MPI job), :mod:`.report` alternates them and prints the
summary.
"""

from __future__ import annotations

import argparse
import sys

from ..argparsing import Parser
from ..backend import BackendError, get_backend
from ..compiled import CompiledError, from_environment
from ..data import DataError
from ..model import DECODERS
from ..ops import CELLS
from ..presets import get_preset
from ..settings import ConfigError
from ..train.ranks import RankError, launched_rank
from .launch import BenchError, measure_pair, refuse_a_launcher, worker
from .report import bench, nominal_flops_per_token
from .runs import BENCH_PRESETS, Result, bench_data, have_jax, have_torch

__all__ = ["BENCH_PRESETS", "BenchError", "Result", "bench", "bench_data", "build_parser",
           "have_jax", "have_torch", "main", "measure_pair", "nominal_flops_per_token", "run"]


# the model-size flags of ``bench``: (flag, help, metavar); each sets the preset's field of
# the flag's name
SIZE_FLAGS = (("--embed-size", "embedding size", "E"),
              ("--num-hiddens", "units per direction of the encoder's cell", "H"),
              ("--num-layers", "recurrent layers of encoder and decoder", "L"),
              ("--batch-size", "pairs per step", "N"))


def size_fields(args) -> dict:
    """The preset fields the model-size flags in ``args`` set (those given)."""
    found = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
             for flag, _, _ in SIZE_FLAGS}
    return {k: v for k, v in found.items() if v is not None}


def task_of(args):
    """The :class:`~minis2s.data.TaskSpec` that ``--task`` and the task options in
    ``args`` name (None: the corpus), checked as ``minis2s train`` checks it; a
    :class:`ConfigError` names a bad one."""
    from ..cli.commands import TASK_FLAG_FIELDS
    from ..data import make_task

    return make_task(args.task, {f: getattr(args, f) for f in TASK_FLAG_FIELDS})


def build_parser(parser=None) -> argparse.ArgumentParser:
    """The options of ``minis2s bench``, added to ``parser`` (the ``bench`` command of
    ``minis2s``), or to a parser of their own for ``python -m minis2s.bench``: the same
    :class:`~minis2s.argparsing.Parser` as ``minis2s``'s, so whole option names only and
    defaults in ``--help``."""
    parser = parser or Parser(prog="minis2s bench", description="Training speed against a "
                              "PyTorch reference of the same model.")
    parser.add_argument("--preset", choices=BENCH_PRESETS, default="zh",
                        help="the model and data to train")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: zh 30, en 10, "
                        "big 1; with --task 1)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--vs-torch", action="store_true", help="also run the PyTorch "
                        "reference")
    parser.add_argument("--vs-jax", action="store_true", help="also run the JAX reference "
                        "(the seed's decoder, one direction; compile time reported apart)")
    parser.add_argument("--cell", choices=list(CELLS), default="gru",
                        help="the recurrent cell (PyTorch: nn.GRU, nn.LSTM, nn.RNN)")
    parser.add_argument("--model", choices=list(DECODERS), default="seq2seq",
                        help="the decoder (PyTorch: d2l's, a loop over steps for attention)")
    parser.add_argument("--ranks", type=int, default=1, help="also train minis2s on this "
                        "many processes under mpiexec (needs the mpi extra)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the runs")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                        help="minis2s's array library (default: $MINIS2S_BACKEND, else "
                        "numpy); with cupy, PyTorch runs on the GPU too")
    parser.add_argument("--data", help="fra.txt or fra-eng.zip (default: $MINIS2S_DATA, ...)")
    sizes = parser.add_argument_group("model size", "fields of the preset's model and "
                                      "batches, overridden")
    for flag, text, metavar in SIZE_FLAGS:
        zh = getattr(get_preset("zh"), flag[2:].replace("-", "_"))
        sizes.add_argument(flag, type=int, default=None, metavar=metavar,
                           help=f"{text} (default: the preset's; zh: {zh})")
    from ..cli.parser import task_options  # train's, so names and checks are the same

    task_options(parser, command="bench")
    parser.add_argument("--worker", choices=["minis2s", "pytorch", "jax"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--overrides", help=argparse.SUPPRESS)
    return parser


def run(args) -> int:
    """Run the benchmark ``args`` (of :func:`build_parser`) asks for; its exit status.
    ``minis2s bench`` and ``python -m minis2s.bench`` both come here, so both refuse to
    run under a launcher of several ranks and report an error alike, in one line
    ``minis2s bench: error: ...`` (from rank 0 alone), exit status 2."""
    try:
        if args.worker:
            return worker(args)
        refuse_a_launcher(args.ranks)
        from_environment()  # $MINIS2S_KERNELS, checked before any run (workers read it)
        task = task_of(args)  # bad task options are said before any run
        backend = get_backend(args.backend).name  # a missing CuPy is said before any run
        bench(args.preset, args.epochs, args.repeats, args.vs_torch, args.seed, args.data,
              cell=args.cell, model=args.model, ranks=args.ranks, backend=backend,
              vs_jax=args.vs_jax, task=task, sizes=size_fields(args))
    except (BenchError, BackendError, CompiledError, RankError, ConfigError, DataError) as e:
        if launched_rank() == 0:  # under mpiexec every rank stops; rank 0 says why
            print(f"minis2s bench: error: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    """``python -m minis2s.bench``."""
    return run(build_parser().parse_args(argv))
