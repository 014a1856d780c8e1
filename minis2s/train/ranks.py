"""The processes that train one model together: one, or R under ``mpiexec -n R``.

Data-parallel training needs few collective operations, and they are all here: the sum
of the gradients (and of the losses) over the ranks, whether any rank asks to stop, and
checks that every rank holds the same thing. :func:`world` finds MPI (``mpi4py``) only
when the process was started by an MPI launcher with more than one rank; otherwise it
returns :data:`SINGLE`, whose operations do nothing, so a run without MPI is exactly
what it was.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ..wording import plural

# environment variables by which MPI launchers (MPICH's, Open MPI's, PMIx ones) tell a
# process its rank and how many ranks there are
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
# and its rank among the ranks on its own machine (MPICH's Hydra and Intel MPI, Open MPI,
# MVAPICH, Slurm)
_LOCAL_RANK_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_LOCAL_RANK",
                    "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")


class RankError(RuntimeError):
    """The ranks cannot go on together (one failed, or they disagree)."""


class Ranks:
    """A group of ``size`` processes; this one is ``rank``. Rank 0 is the root: it alone
    prints, draws the progress bar and writes files."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()

    @property
    def root(self) -> bool:
        return self.rank == 0

    def sum_(self, array) -> None:
        """``array`` (a host float array) summed over the ranks, in place."""
        if self.size > 1:
            MPI = _mpi()
            self.comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)

    def sum_scalar(self, value: float) -> float:
        """``value`` summed over the ranks."""
        if self.size == 1:
            return value
        total = np.array([value], dtype=np.float64)
        self.sum_(total)
        return float(total[0])

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any."""
        if self.size == 1:
            return bool(flag)
        return bool(self.comm.allreduce(bool(flag), op=_mpi().LOR))

    def gather(self, value) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        return [value] if self.size == 1 else self.comm.allgather(value)

    def barrier(self) -> None:
        if self.size > 1:
            self.comm.Barrier()

    def raise_any(self, error: BaseException | None, what: str) -> None:
        """If any rank has an error, raise on every rank, naming the first failing rank
        and its message (so no rank is left waiting for the others)."""
        if self.size == 1:
            if error is not None:
                raise error
            return
        errors = self.gather(None if error is None else str(error))
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        if not failed:
            return
        if len(failed) == self.size and len(set(errors)) == 1:
            raise RankError(errors[0])  # every rank failed alike: the message is enough
        r, message = failed[0]
        raise RankError(f"rank {r} of {self.size} could not {what}: {message}")

    def together(self, what: str, task, errors: tuple):
        """``task()`` on every rank; if it fails on any with one of ``errors``, it fails on
        all, with that rank's message (no rank is left waiting for the others)."""
        try:
            result, error = task(), None
        except errors as exc:
            result, error = None, exc
        self.raise_any(error, what)
        return result

    def abort(self, code: int) -> None:
        """End every rank of the job now (one rank failed alone; the others would wait)."""
        if self.size > 1:
            self.comm.Abort(code)
            os._exit(code)  # Abort returns only when MPI cannot reach the launcher: leave

    def check_same(self, what: str, value) -> None:
        """Refuse unless every rank has the same ``value`` (compared by a digest)."""
        digest = hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()
                              ).hexdigest()
        digests = self.gather(digest)
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise RankError(f"the ranks disagree on {what}: rank {differ[0]} differs from "
                            f"rank 0; give every rank the same settings and the same data")


def _mpi():
    from mpi4py import MPI

    return MPI


SINGLE = Ranks()


def _from_launcher(names: tuple, default: int) -> int:
    for var in names:
        value = os.environ.get(var, "").strip()
        if value.isdigit():
            return int(value)
    return default


def launched_rank() -> int:
    """This process's rank as the MPI launcher numbered it (0 without one)."""
    return _from_launcher(_RANK_VARS, 0)


def launched_ranks() -> int:
    """How many ranks the MPI launcher started (1 without one)."""
    return _from_launcher(_SIZE_VARS, 1)


def launched_local_rank() -> int:
    """This process's rank among those the launcher started on the same machine (what
    chooses its GPU); the rank itself when the launcher does not say, 0 without one."""
    return _from_launcher(_LOCAL_RANK_VARS, launched_rank())


def world() -> Ranks:
    """All the ranks of this job: MPI's COMM_WORLD under a launcher with R > 1, else
    :data:`SINGLE`. Under a launcher without mpi4py, a clear error."""
    if launched_ranks() <= 1:
        return SINGLE
    try:
        from mpi4py import MPI
    except ImportError:
        raise RankError("this process was started by mpiexec with several ranks, but "
                        "mpi4py is not installed: pip install 'minis2s[mpi]'") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() != launched_ranks():
        raise RankError(f"mpiexec started {launched_ranks()} ranks, but MPI sees a job of "
                        f"{comm.Get_size()}: the mpiexec on the PATH belongs to another MPI "
                        "than mpi4py's ('mpiexec -n 2 python -m mpi4py.bench helloworld' "
                        "shows what each rank sees)")
    return Ranks(comm)


def limit_blas_threads(ranks: Ranks) -> str:
    """With several ranks on one machine, give each rank its share of the cores for its
    BLAS threads (ranks × threads ≤ cores); returns a line saying what was set. One rank
    keeps the BLAS's own default."""
    if ranks.size == 1:
        return ""
    cores = os.cpu_count() or 1
    local = ranks.comm.Split_type(_mpi().COMM_TYPE_SHARED).Get_size()  # on this machine
    threads = max(1, cores // local)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return (f"{ranks.size} ranks on {cores} cores; threadpoolctl is missing, so the "
                "BLAS threads are not limited (pip install 'minis2s[mpi]')")
    threadpool_limits(limits=threads, user_api="blas")
    return f"{ranks.size} ranks, {local} on this machine of {cores} cores: " \
           f"{plural(threads, 'BLAS thread')} each"


def shard_rows(order: np.ndarray, ranks: Ranks) -> np.ndarray:
    """This rank's rows of a batch: every size-th row of ``order`` (the rows sorted by
    target length), starting at its rank, so each shard has long and short rows alike."""
    return np.sort(order[ranks.rank::ranks.size])

