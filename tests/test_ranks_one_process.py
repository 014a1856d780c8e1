"""minis2s.train.ranks in one process: the collective operations of :class:`Ranks` over a
stand-in for an mpi4py communicator, and how :func:`world` and
:func:`limit_blas_threads` read the launcher's environment.

``ThreadComm`` has the few methods of ``MPI.Comm`` that ranks.py calls; R of them, one
per thread, meet in a shared :class:`Meeting`, so the R ranks of a job run here as R
threads. A stand-in ``mpi4py`` module (put in ``sys.modules``) gives ``MPI.IN_PLACE``,
``MPI.SUM``, ``MPI.LOR`` and ``MPI.COMM_TYPE_SHARED``, so no MPI is needed.
"""

import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from minis2s.train import ranks as ranks_mod
from minis2s.train.ranks import (
    SINGLE,
    RankError,
    Ranks,
    launched_rank,
    launched_ranks,
    limit_blas_threads,
    world,
)

IN_PLACE = object()


def _sum(values):
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


SUM, LOR = _sum, any  # what each MPI reduction op does to the ranks' values
COMM_TYPE_SHARED = "shared"
FAKE_MPI = types.SimpleNamespace(IN_PLACE=IN_PLACE, SUM=SUM, LOR=LOR,
                                 COMM_TYPE_SHARED=COMM_TYPE_SHARED)


class Meeting:
    """Where R threads exchange one value each, in rank order."""

    def __init__(self, size):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=20)
        self.slots = [None] * size

    def exchange(self, rank, value):
        self.barrier.wait()  # the previous exchange has been read by all
        self.slots[rank] = value
        self.barrier.wait()  # every rank has given its value
        return list(self.slots)


class ThreadComm:
    """Rank ``rank`` of a meeting: the parts of mpi4py's ``Comm`` that ranks.py uses."""

    def __init__(self, meeting, rank, local=None):
        self.meeting, self.rank = meeting, rank
        self.local = meeting.size if local is None else local  # ranks on "this machine"
        self.calls = []

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.meeting.size

    def allgather(self, value):
        self.calls.append("allgather")
        return self.meeting.exchange(self.rank, value)

    def allreduce(self, value, op):
        self.calls.append("allreduce")
        assert op in (SUM, LOR), op
        return op(self.meeting.exchange(self.rank, value))

    def Allreduce(self, sendbuf, recvbuf, op):
        self.calls.append("Allreduce")
        assert sendbuf is IN_PLACE and op is SUM, (sendbuf, op)
        recvbuf[...] = _sum(self.meeting.exchange(self.rank, recvbuf.copy()))

    def Barrier(self):
        self.calls.append("Barrier")
        self.meeting.exchange(self.rank, None)

    def Abort(self, code):
        self.calls.append(("Abort", code))

    def Split_type(self, split_type):
        assert split_type == COMM_TYPE_SHARED, split_type
        return types.SimpleNamespace(Get_size=lambda: self.local)


@pytest.fixture
def fake_mpi(monkeypatch):
    """mpi4py, as far as ranks.py imports it, without MPI."""
    module = types.ModuleType("mpi4py")
    module.MPI = FAKE_MPI
    monkeypatch.setitem(sys.modules, "mpi4py", module)
    return module


def on_ranks(size, task):
    """``task(Ranks)`` on ``size`` ranks, one thread each; each rank's result or the
    exception it raised, in rank order."""
    meeting = Meeting(size)
    results = [None] * size

    def run(rank):
        try:
            results[rank] = task(Ranks(ThreadComm(meeting, rank)))
        except Exception as exc:  # a rank's failure is its result
            results[rank] = exc

    threads = [threading.Thread(target=run, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


# ---------------------------------------------------------------- one process, no MPI


def test_a_single_process_is_rank_0_of_1_and_never_asks_for_mpi(monkeypatch):
    def no_mpi():
        raise AssertionError("a single process asked for MPI")

    monkeypatch.setattr(ranks_mod, "_mpi", no_mpi)
    assert (SINGLE.rank, SINGLE.size, SINGLE.root, SINGLE.comm) == (0, 1, True, None)
    array = np.array([1.0, 2.0])
    SINGLE.sum_(array)
    np.testing.assert_array_equal(array, [1.0, 2.0])
    assert SINGLE.sum_scalar(2.5) == 2.5
    assert SINGLE.any(True) is True and SINGLE.any(0) is False
    assert SINGLE.gather("x") == ["x"]
    SINGLE.barrier()
    SINGLE.abort(3)  # nothing to end: a single process goes on
    SINGLE.check_same("settings", {"a": 1})
    assert SINGLE.together("read", lambda: 7, (ValueError,)) == 7
    assert SINGLE.raise_any(None, "read") is None


def test_a_single_process_raises_its_own_error_unchanged():
    error = ValueError("bad")
    with pytest.raises(ValueError) as caught:
        SINGLE.raise_any(error, "read")
    assert caught.value is error

    def fail():
        raise error

    with pytest.raises(ValueError) as caught:
        SINGLE.together("read", fail, (ValueError,))
    assert caught.value is error
    with pytest.raises(KeyError):  # an error not named is not caught
        SINGLE.together("read", lambda: {}["x"], (ValueError,))


# ---------------------------------------------------------------- R ranks as R threads


@pytest.mark.parametrize("size", [2, 3])
def test_ranks_sum_arrays_and_scalars_and_see_any_flag(fake_mpi, size):
    def task(r):
        array = np.array([1.0, 10.0 * r.rank])
        r.sum_(array)
        total = r.sum_scalar(0.5 + r.rank)
        return (r.rank, r.size, r.root, array.tolist(), total, r.any(r.rank == size - 1),
                r.any(False), r.gather(r.rank * 2))

    results = on_ranks(size, task)
    tens = 10.0 * sum(range(size))
    for rank, got in enumerate(results):
        assert got == (rank, size, rank == 0, [float(size), tens],
                        0.5 * size + sum(range(size)), True, False,
                        [2 * k for k in range(size)])
        assert isinstance(got[4], float)


def test_a_barrier_meets_every_rank(fake_mpi):
    comms = []

    def task(r):
        comms.append(r.comm)
        r.barrier()
        return True

    assert on_ranks(2, task) == [True, True]
    assert all(c.calls == ["Barrier"] for c in comms)


def test_one_failing_rank_makes_every_rank_fail_naming_it(fake_mpi):
    def task(r):
        def work():
            if r.rank == 1:
                raise ValueError("disk full")
            return "ok"

        return r.together("write the checkpoint", work, (ValueError,))

    results = on_ranks(3, task)
    for got in results:
        assert isinstance(got, RankError)
        assert str(got) == "rank 1 of 3 could not write the checkpoint: disk full"


def test_ranks_that_all_fail_alike_give_the_message_alone(fake_mpi):
    def task(r):
        r.raise_any(ValueError("no corpus"), "read the data")

    assert [str(e) for e in on_ranks(2, task)] == ["no corpus", "no corpus"]
    assert all(type(e) is RankError for e in on_ranks(2, task))


def test_ranks_that_all_fail_differently_name_the_first(fake_mpi):
    def task(r):
        r.raise_any(ValueError(f"error {r.rank}"), "read the data")

    assert [str(e) for e in on_ranks(2, task)] == \
        ["rank 0 of 2 could not read the data: error 0"] * 2


def test_ranks_without_an_error_go_on(fake_mpi):
    def task(r):
        return r.raise_any(None, "read"), r.together("read", lambda: r.rank, (ValueError,))

    assert on_ranks(2, task) == [(None, 0), (None, 1)]


def test_check_same_compares_values_not_key_order(fake_mpi):
    def same(r):  # the same settings, their keys in another order on rank 1
        r.check_same("settings", {"a": 1, "b": 2} if r.rank == 0 else {"b": 2, "a": 1})
        return "ok"

    assert on_ranks(2, same) == ["ok", "ok"]

    def differ(r):
        r.check_same("settings", {"lr": 0.01 if r.rank != 2 else 0.02})

    for error in on_ranks(3, differ):
        assert isinstance(error, RankError)
        assert str(error) == ("the ranks disagree on settings: rank 2 differs from rank 0; "
                              "give every rank the same settings and the same data")


def test_abort_ends_the_job_through_mpi_then_leaves(fake_mpi, monkeypatch):
    left = []
    monkeypatch.setattr(ranks_mod.os, "_exit", left.append)
    comm = ThreadComm(Meeting(2), 1)
    Ranks(comm).abort(5)
    assert comm.calls == [("Abort", 5)] and left == [5]


# ---------------------------------------------------------------- the launcher's word

LAUNCHER_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_SIZE",
                 "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


@pytest.fixture
def no_launcher(monkeypatch):
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_without_a_launcher_this_is_rank_0_of_1(no_launcher):
    assert (launched_rank(), launched_ranks()) == (0, 1)
    assert world() is SINGLE


@pytest.mark.parametrize(("env", "rank", "size"), [
    ({"PMI_RANK": "3", "PMI_SIZE": "4"}, 3, 4),  # MPICH
    ({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}, 1, 2),  # Open MPI
    ({"PMIX_RANK": " 2 ", "PMIX_SIZE": "5\n"}, 2, 5),  # PMIx, with blanks around
    ({"PMI_RANK": "x", "OMPI_COMM_WORLD_RANK": "1", "PMI_SIZE": "",
      "OMPI_COMM_WORLD_SIZE": "6"}, 1, 6),  # a value that is no count is passed over
    ({"PMI_RANK": "0", "OMPI_COMM_WORLD_RANK": "7", "PMI_SIZE": "2",
      "PMIX_SIZE": "9"}, 0, 2),  # the first variable set wins
    ({"PMI_RANK": "-1", "PMI_SIZE": "-2"}, 0, 1),  # not a count: the defaults
])
def test_the_launchers_variables_give_rank_and_size(no_launcher, env, rank, size):
    for var, value in env.items():
        no_launcher.setenv(var, value)
    assert (launched_rank(), launched_ranks()) == (rank, size)


def test_one_rank_under_a_launcher_needs_no_mpi(no_launcher):
    no_launcher.setenv("PMI_SIZE", "1")
    no_launcher.setitem(sys.modules, "mpi4py", None)  # importing it would fail
    assert world() is SINGLE


def test_several_ranks_without_mpi4py_is_a_clear_error(no_launcher):
    no_launcher.setenv("PMI_SIZE", "2")
    no_launcher.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(RankError, match=r"^this process was started by mpiexec with "
                       r"several ranks, but mpi4py is not installed: pip install "
                       r"'minis2s\[mpi\]'$") as caught:
        world()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_several_ranks_use_mpis_world(no_launcher, fake_mpi):
    no_launcher.setenv("PMI_SIZE", "2")
    fake_mpi.MPI = types.SimpleNamespace(**vars(FAKE_MPI),
                                         COMM_WORLD=ThreadComm(Meeting(2), 1))
    ranks = world()
    assert ranks.comm is fake_mpi.MPI.COMM_WORLD and (ranks.rank, ranks.size) == (1, 2)


def test_an_mpiexec_of_another_mpi_is_refused(no_launcher, fake_mpi):
    no_launcher.setenv("PMI_SIZE", "2")
    fake_mpi.MPI = types.SimpleNamespace(**vars(FAKE_MPI),
                                         COMM_WORLD=ThreadComm(Meeting(1), 0))
    with pytest.raises(RankError) as caught:
        world()
    assert str(caught.value) == (
        "mpiexec started 2 ranks, but MPI sees a job of 1: the mpiexec on the PATH "
        "belongs to another MPI than mpi4py's ('mpiexec -n 2 python -m mpi4py.bench "
        "helloworld' shows what each rank sees)")


# ---------------------------------------------------------------- BLAS threads


@pytest.fixture
def threadpool(monkeypatch):
    """A stand-in threadpoolctl that records the limits set."""
    calls = []
    module = types.ModuleType("threadpoolctl")
    module.threadpool_limits = lambda limits=None, user_api=None: \
        calls.append((limits, user_api))
    monkeypatch.setitem(sys.modules, "threadpoolctl", module)
    return calls


def test_one_rank_keeps_the_blas_default(threadpool):
    assert limit_blas_threads(SINGLE) == ""
    assert threadpool == []


@pytest.mark.parametrize(("cores", "size", "local", "threads", "line"), [
    (8, 4, 2, 4, "4 ranks, 2 on this machine of 8 cores: 4 BLAS threads each"),
    (8, 2, 2, 4, "2 ranks, 2 on this machine of 8 cores: 4 BLAS threads each"),
    (7, 3, 3, 2, "3 ranks, 3 on this machine of 7 cores: 2 BLAS threads each"),
    (2, 4, 4, 1, "4 ranks, 4 on this machine of 2 cores: 1 BLAS thread each"),
    (None, 2, 2, 1, "2 ranks, 2 on this machine of 1 cores: 1 BLAS thread each"),
])
def test_several_ranks_share_the_cores_of_their_machine(fake_mpi, threadpool, monkeypatch,
                                                        cores, size, local, threads, line):
    monkeypatch.setattr(ranks_mod.os, "cpu_count", lambda: cores)
    ranks = Ranks(ThreadComm(Meeting(size), 0, local=local))
    assert limit_blas_threads(ranks) == line
    assert threadpool == [(threads, "blas")]


def test_without_threadpoolctl_the_blas_threads_are_left_alone(fake_mpi, monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    monkeypatch.setattr(ranks_mod.os, "cpu_count", lambda: 4)
    ranks = Ranks(ThreadComm(Meeting(2), 1, local=2))
    assert limit_blas_threads(ranks) == (
        "2 ranks on 4 cores; threadpoolctl is missing, so the BLAS threads are not "
        "limited (pip install 'minis2s[mpi]')")


def test_ranks_without_a_communicator_are_rank_0_of_1():
    r = Ranks()
    assert (r.rank, r.size, r.root) == (0, 1, True)
    assert r.sum_scalar(2.5) == 2.5


def test_a_scalar_is_summed_in_float64_whatever_its_type(fake_mpi):
    """A float32 loss from each rank: the sum keeps what float32 arithmetic would round
    away (1 + 1e-8 is 1 in float32)."""
    small = np.float32(1e-8)
    got = on_ranks(2, lambda r: r.sum_scalar(np.float32(1.0) if r.root else small))
    assert got == [1.0 + float(small)] * 2
    assert got[0] != 1.0


def test_check_same_digests_values_json_cannot_spell(fake_mpi):
    """Settings holding paths (or anything else JSON lacks) are compared by their text."""
    def same(r):
        r.check_same("data", {"path": Path("data") / "fra.txt"})
        return "ok"

    assert on_ranks(2, same) == ["ok", "ok"]

    def differ(r):
        r.check_same("data", {"path": Path(f"rank{min(r.rank, 1)}.txt")})

    assert all(isinstance(e, RankError) for e in on_ranks(2, differ))
