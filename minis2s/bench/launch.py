"""Each run in a fresh process — ``python -m minis2s.bench --worker IMPL`` — or, for
several ranks, under ``mpiexec -n R``; its :class:`~.runs.Result` comes back as one JSON
line on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from ..compiled import ENV_VAR, in_use
from ..presets import get_preset
from ..train.ranks import launched_rank, launched_ranks
from .runs import Result, bench_data, run_jax, run_minis2s, run_torch


class BenchError(RuntimeError):
    """A benchmark run could not be made."""


def worker(args) -> int:
    """One run: the preset with the fields ``--overrides`` sets, and its ``task`` (a
    :meth:`~minis2s.data.TaskSpec.to_dict`) where it gives one."""
    from ..data import TaskSpec

    overrides = json.loads(args.overrides or "{}")
    task = overrides.pop("task", None)
    preset = get_preset(args.preset).with_task(
        None if task is None else TaskSpec.from_dict(task), **overrides)
    data = bench_data(preset, args.data)
    run = {"minis2s": run_minis2s, "pytorch": run_torch, "jax": run_jax}[args.worker]
    result = run(preset, data, args.epochs, args.seed, args.backend or "numpy")
    if launched_rank() == 0:  # one line, from the root
        print(json.dumps(result.__dict__))
        sys.stdout.flush()
    return 0


def refuse_a_launcher(ranks: int) -> None:
    """The benchmark starts its own processes (under its own ``mpiexec -n R`` for
    ``--ranks R``); started by an MPI launcher with several ranks, each rank would start a
    whole benchmark of its own. Refused, with the command to give instead, by the rule
    :func:`~minis2s.train.ranks.world` goes by: more than one rank launched. One rank
    (``mpiexec -n 1``, a shell under ``srun``) runs as a plain process would."""
    if launched_ranks() > 1:
        plain = "minis2s bench" + (f" --ranks {ranks}" if ranks > 1 else "")
        raise BenchError(f"it starts its own processes, so it does not run under mpiexec "
                         f"with {launched_ranks()} ranks: run it as plain {plain}")


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


def spawn(impl: str, preset: str, epochs: int, seed: int, data, overrides=None,
           ranks: int = 1, backend: str = "numpy") -> Result:
    launcher = mpiexec_command(ranks) if ranks > 1 else []
    cmd = [*launcher, sys.executable, "-m", "minis2s.bench", "--worker", impl, "--preset",
           preset, "--epochs", str(epochs), "--seed", str(seed), "--backend", backend]
    if data:
        cmd += ["--data", str(data)]
    if overrides:
        cmd += ["--overrides", json.dumps(overrides)]
    start = time.perf_counter()
    # the workers run the kernels this process runs ($MINIS2S_KERNELS, or compiled.use())
    env = {**os.environ, ENV_VAR: in_use()}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start  # end to end: the interpreter, imports, compiling
    if proc.returncode != 0:
        raise BenchError(f"{impl} run failed:\n{proc.stderr[-3000:]}")
    try:
        result = Result(**json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError, TypeError):
        raise BenchError(f"{impl} run gave no result line:\n{proc.stdout[-1500:]}"
                         f"{proc.stderr[-1500:]}") from None
    result.wall_seconds = wall
    if result.ranks != ranks:
        raise BenchError(f"{impl} ran on {result.ranks} process(es), not {ranks}: "
                         f"{' '.join(launcher)} did not start one MPI job")
    return result


def measure_pair(preset: str, epochs: int, seed: int = 0, data=None,
                 overrides: dict | None = None, backend: str = "numpy"
                 ) -> tuple[Result, Result]:
    """One minis2s run, then one PyTorch run, of a preset with some fields overridden
    (on the GPU for ``backend`` cupy)."""
    return (spawn("minis2s", preset, epochs, seed, data, overrides, backend=backend),
            spawn("pytorch", preset, epochs, seed, data, overrides, backend=backend))
