"""``minis2s train`` under ``mpiexec`` when one rank fails alone: that rank says what
happened and on which rank, and ends the whole job (the others would wait for it for
ever) with 130 for Ctrl-C and 2 otherwise; errors every rank meets alike end each rank the
usual way; one process re-raises as it is. Run here in one process: a rank whose ``abort``
is recorded stands in for MPI's."""

import argparse

import pytest

from minis2s import train as train_pkg
from minis2s.cli import commands
from minis2s.data import DataError
from minis2s.train import RankError, Ranks, TrainingError


class Rank(Ranks):
    """Rank ``rank`` of ``size``; ``abort`` records its code instead of ending the job."""

    def __init__(self, rank=1, size=2):
        super().__init__()
        self.rank, self.size, self.aborted = rank, size, []

    def abort(self, code):
        self.aborted.append(code)


class MPIError(Exception):
    """An exception as mpi4py raises them (its module is mpi4py's)."""


MPIError.__module__ = "mpi4py.MPI"


def _fail_with(monkeypatch, ranks, exc):
    """``commands.train`` on ``ranks`` with its work raising ``exc``."""
    def work(args, given):
        assert given is ranks
        raise exc

    monkeypatch.setattr(train_pkg, "world", lambda: ranks)
    monkeypatch.setattr(commands, "_train", work)
    with pytest.raises(type(exc)) as raised:
        commands.train(argparse.Namespace())
    assert raised.value is exc  # the error itself goes on up


@pytest.mark.parametrize("exc, kind, said, code, traceback", [
    (RuntimeError("boom"), "error", "RuntimeError: boom", 2, True),
    (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt: ", 130, False),
    (DataError("fra.txt: no pairs"), "error", "DataError: fra.txt: no pairs", 2, False),
    (MPIError("peer gone"), "error",
     "lost contact with another rank during a sum over the ranks (did it die?)", 2, False),
], ids=["unexpected", "ctrl-c", "bad-input", "mpi"])
def test_one_rank_failing_alone_says_so_and_ends_every_rank(monkeypatch, capsys, exc, kind,
                                                            said, code, traceback):
    ranks = Rank(rank=1, size=2)
    _fail_with(monkeypatch, ranks, exc)
    err = capsys.readouterr().err
    line = f"minis2s: {kind} on rank 1 of 2: {said}; ending every rank"
    assert err.splitlines()[0] == line
    assert ("Traceback (most recent call last)" in err) is traceback
    assert ranks.aborted == [code]


@pytest.mark.parametrize("exc", [RankError("rank 0 of 2 could not start: bad"),
                                 TrainingError("loss nan")])
def test_errors_every_rank_meets_alike_end_no_job(monkeypatch, capsys, exc):
    ranks = Rank(rank=1, size=2)
    _fail_with(monkeypatch, ranks, exc)
    assert capsys.readouterr().err == "" and ranks.aborted == []


def test_one_process_raises_as_it_is(monkeypatch, capsys):
    ranks = Rank(rank=0, size=1)
    _fail_with(monkeypatch, ranks, RuntimeError("boom"))
    assert capsys.readouterr().err == "" and ranks.aborted == []


def test_a_rank_that_cannot_start_is_named_on_every_rank(monkeypatch, tiny_corpus,
                                                          tmp_path, capsys):
    """Rank 0 read its settings; rank 1 could not (its message comes back in the
    gather): rank 0 stops too, naming rank 1, what it could not do and why."""
    from minis2s.cli import main

    class Zero(Rank):
        def gather(self, value):
            return [value, "fra.txt: no pairs"]

    ranks = Zero(rank=0, size=2)
    monkeypatch.setattr(train_pkg, "world", lambda: ranks)
    assert main(["train", "--data", str(tiny_corpus), "--epochs", "1", "--out",
                 str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "minis2s: error: rank 1 of 2 could not start: fra.txt: no pairs")
    assert not (tmp_path / "run").exists()
