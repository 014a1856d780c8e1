"""Data-parallel training in one process: shards, and sums over simulated ranks.

No MPI here. R trainers run in R threads, each with a :class:`SimulatedRanks` of its
rank: an object with the :class:`~minis2s.train.ranks.Ranks` interface whose collective
operations meet in a shared :class:`Hub`. Its ``sum_`` adds the R buffers in rank order
and writes the sum back into each, as MPI's Allreduce does, and the hub records every
call, so the tests can check what was summed and how often the ranks met. A rank whose
thread ends while others wait for it makes them fail (:class:`RankGone`) rather than
hang.
"""

import functools
import threading
from typing import NamedTuple

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.data import make_batch, pack
from minis2s.model import DECODERS
from minis2s.train import SINGLE, InterruptRequest, Ranks, Trainer, model_config
from minis2s.train.ranks import shard_rows

from .mpi_steps import CLIPS, assert_same_steps, float64_setup, float64_steps

OFF = CLIPS[0]  # a clip no gradient here reaches


class RankGone(RuntimeError):
    """A rank waited for another whose thread had ended (under MPI: a hang)."""


class Call(NamedTuple):
    kind: str  # "sum", "any" or "gather"
    given: object = None  # sum: the array given (summed in place)
    before: object = None  # sum: a copy of it before the sum
    after: object = None  # sum: a copy after


class Hub:
    """What the simulated ranks share: where they meet, and a record of every call."""

    def __init__(self, size: int):
        self.size = size
        self.calls = [[] for _ in range(size)]  # per rank, in order
        self._cond = threading.Condition()
        self._slots = [None] * size
        self._values = None
        self._arrived = 0
        self._round = 0
        self._gone = []

    def exchange(self, rank: int, value) -> list:
        """Every rank's ``value``, in rank order, once every rank has given one."""
        with self._cond:
            if self._gone:
                raise RankGone(f"rank {rank} waits for rank {self._gone[0]}, which ended")
            self._slots[rank] = value
            self._arrived += 1
            this = self._round
            if self._arrived == self.size:
                self._values, self._slots = self._slots, [None] * self.size
                self._arrived, self._round = 0, this + 1
                self._cond.notify_all()
            else:
                self._cond.wait_for(lambda: self._round != this or self._gone)
                if self._round == this:
                    raise RankGone(f"rank {rank} waits for rank {self._gone[0]}, "
                                   "which ended")
            return self._values

    def leave(self, rank: int) -> None:
        with self._cond:
            self._gone.append(rank)
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._gone.clear()

    def sums(self, rank: int) -> list[Call]:
        return [c for c in self.calls[rank] if c.kind == "sum"]


class SimulatedRanks(Ranks):
    """Rank ``rank`` of the hub's ``size``; its collective operations meet in ``hub``."""

    def __init__(self, hub: Hub, rank: int):
        super().__init__()
        self.hub, self.rank, self.size = hub, rank, hub.size

    def sum_(self, array) -> None:
        before = array.copy()
        parts = self.hub.exchange(self.rank, before)
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        array[...] = total
        self.hub.calls[self.rank].append(Call("sum", array, before, array.copy()))

    def any(self, flag: bool) -> bool:
        self.hub.calls[self.rank].append(Call("any"))
        return any(self.hub.exchange(self.rank, bool(flag)))

    def gather(self, value) -> list:
        self.hub.calls[self.rank].append(Call("gather"))
        return list(self.hub.exchange(self.rank, value))

    def barrier(self) -> None:
        self.gather(None)


def run_ranks(hub: Hub, task) -> list:
    """``task(rank)`` in one thread per rank of ``hub``; what each returned, in rank
    order. If a rank raised, its exception is raised here (one of its own rather than a
    :class:`RankGone` of a rank left waiting), unless ``task`` catches it."""
    hub.reopen()
    results = [None] * hub.size

    def run(rank):
        try:
            results[rank] = task(rank)
        except BaseException as exc:  # a rank's failure is its result
            results[rank] = exc
        finally:
            hub.leave(rank)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(hub.size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise next((e for e in failed if not isinstance(e, RankGone)), failed[0])
    return results


@functools.cache
def setup(corpus, model):
    return float64_setup(corpus, model)


def batch_of(part, rows, bos):
    """A batch of the part's rows ``rows``."""
    return make_batch(part.src[rows], part.src_valid_len[rows], part.tgt[rows],
                      part.tgt_valid_len[rows], bos)


def close(a, b, rel=1e-12) -> bool:
    """``a`` equals ``b`` to ``rel`` relative to ``b``'s largest element."""
    return np.abs(np.asarray(a) - b).max() <= rel * np.abs(b).max()


# ------------------------------------------------------------------------ the shards


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_shards_cover_every_row_once_and_keep_the_packed_order(size):
    """For every batch size, those smaller than the ranks included (the last ranks' shards
    are then empty): the shards together hold every row of the batch exactly once; shard
    r is the r-th, (r+R)-th, ... row by target length (so every shard gets long and short
    rows alike, and their sizes differ by one at most), in batch order; and the shard's
    own packing orders its rows as the whole batch's packing does."""
    rng = np.random.default_rng(size)
    for n in [*range(1, 13), 64]:
        lens = rng.integers(1, 6, n)  # ties included
        order = pack(lens).order
        shards = [shard_rows(order, SimulatedRanks(Hub(size), r)) for r in range(size)]
        assert sorted(np.concatenate(shards).tolist()) == list(range(n)), (n, shards)
        for r, shard in enumerate(shards):
            assert shard.tolist() == sorted(order[r::size].tolist()), (n, r)
            assert len(shard) == len(range(r, n, size))
            in_shard = set(shard.tolist())
            assert shard[pack(lens[shard]).order].tolist() == \
                [row for row in order.tolist() if row in in_shard], (n, r)


# ------------------------------------------------------------------------ the sums


@pytest.mark.parametrize("model", DECODERS)
@pytest.mark.parametrize("size", [2, 3, 5])
def test_the_shards_sums_are_the_whole_batchs(corpus, model, size):
    """R trainers, each on its shard of three batches, the second smaller than R (so the
    last rank's shard is empty, right after a step that left its gradients nonzero): at
    every step the shards' losses and gradients, summed over the ranks, equal one
    trainer's on the whole batch to 1e-12 relative (float64; every rank takes its rows of
    the dropout masks drawn for the whole batch, dropout 0.3). Each step meets the other
    ranks exactly twice, to sum the trainer's own gradient buffer in place and then its
    loss (a float64 scalar), and the summed gradients are what the step goes on with."""
    preset, data = setup(corpus, model)
    preset = preset.with_overrides(grad_clip=OFF)
    bos = data.tgt_vocab.bos
    batches = [batch_of(data.train, np.arange(k, k + n), bos)
               for k, n in ((0, 64), (100, size - 1), (200, 13))]
    cfg, backend = model_config(preset, data), get_backend("numpy", "float64")
    whole = Trainer(cfg, preset, backend, seed=3)
    expected = []
    for b in batches:
        loss = whole.step(b)
        expected.append((loss, whole.grads.flat.copy()))

    hub = Hub(size)
    trainers = [Trainer(cfg, preset, backend, seed=3, ranks=SimulatedRanks(hub, r))
                for r in range(size)]
    losses = run_ranks(hub, lambda r: [trainers[r].step(b) for b in batches])

    for r, trainer in enumerate(trainers):
        assert [c.kind for c in hub.calls[r]] == ["sum"] * 2 * len(batches), r
        calls = hub.sums(r)
        for grad in calls[0::2]:  # the trainer's own buffer, summed in place
            assert grad.given is trainer.grads.flat
            assert grad.given.shape == trainer.params.flat.shape
        for loss in calls[1::2]:
            assert loss.given.shape == (1,) and loss.given.dtype == np.float64
    for step, (loss, grads) in enumerate(expected):
        grad_calls = [hub.sums(r)[2 * step] for r in range(size)]
        loss_calls = [hub.sums(r)[2 * step + 1] for r in range(size)]
        assert close(sum(c.before for c in grad_calls), grads), step
        assert sum(float(c.before[0]) for c in loss_calls) == pytest.approx(loss, rel=1e-12)
        for r in range(size):
            assert close(grad_calls[r].after, grads), (step, r)
            assert losses[r][step] == pytest.approx(loss, rel=1e-12), (step, r)
        if step == 1:  # fewer rows than ranks: the last shard is empty and adds nothing
            assert not np.any(grad_calls[-1].before) and loss_calls[-1].before[0] == 0
    for trainer in trainers[1:]:
        assert np.array_equal(trainer.params.flat, trainers[0].params.flat)
    assert close(trainers[0].params.flat, whole.params.flat)


@pytest.mark.parametrize("clip", CLIPS, ids=["clip-off", "clip-on"])
@pytest.mark.parametrize("model,size", [*((m, 2) for m in DECODERS), ("seq2seq", 3)])
def test_simulated_ranks_equal_one_process_in_float64(corpus, model, size, clip):
    """tests/test_mpi.py's float64 steps, with the ranks simulated: five steps with
    clipping off (no step clipped, so a sum over the ranks scaled by any factor would
    show) and on (every step clipped to 1), equal to one process's to 1e-12 relative, and
    the ranks stay identical."""
    preset, data = setup(corpus, model)
    one = float64_steps(preset, data, 5, clip, SINGLE)
    if clip == OFF:
        assert np.all(one["norms"] > 1)  # a clip of 1 would have changed every step
    else:
        np.testing.assert_allclose(one["norms"], clip, rtol=1e-12)
    hub = Hub(size)
    runs = run_ranks(hub, lambda r: float64_steps(preset, data, 5, clip,
                                                  SimulatedRanks(hub, r)))
    assert_same_steps(runs[0], one, f"{size} simulated ranks")
    for run in runs[1:]:
        assert np.array_equal(run["flat"], runs[0]["flat"])


# ------------------------------------------------------------------------ stopping


def test_one_rank_interrupted_stops_every_rank_at_the_same_step(corpus):
    """Three ranks in an epoch; rank 1 alone is asked to stop after its second step: they
    agree on it before every step, so every rank stops there, with the same parameters
    and the same position. Going on finishes the epoch bit for bit as ranks that went
    straight through."""
    preset, data = setup(corpus, "seq2seq")
    cfg, backend = model_config(preset, data), get_backend("numpy", "float64")

    def trainers(hub):
        return [Trainer(cfg, preset, backend, seed=3, ranks=SimulatedRanks(hub, r))
                for r in range(hub.size)]

    hub = Hub(3)
    cut = trainers(hub)
    asked = InterruptRequest()  # not entered: no signal handler, only the flag
    cut[1].interrupt = asked

    def first_part(r):
        def progress():
            if r == 1 and cut[r].opt.t == 2:
                asked.requested = True

        try:
            cut[r].run_epoch(data, progress)
        except KeyboardInterrupt:
            return "stopped"
        return "finished"

    assert run_ranks(hub, first_part) == ["stopped"] * 3
    assert [t.opt.t for t in cut] == [2, 2, 2]
    assert [t.epoch_progress.batches for t in cut] == [2, 2, 2]
    assert [t.position() for t in cut] == [cut[0].position()] * 3
    for t in cut[1:]:
        assert np.array_equal(t.params.flat, cut[0].params.flat)
    assert [c.kind for c in hub.calls[0]] == ["any", "sum", "sum"] * 2 + ["any"]

    asked.requested = False
    run_ranks(hub, lambda r: cut[r].run_epoch(data))
    straight_hub = Hub(3)
    straight = trainers(straight_hub)
    run_ranks(straight_hub, lambda r: straight[r].run_epoch(data))
    batches = -(-len(data.train) // preset.batch_size)
    for a, b in zip(cut, straight, strict=True):
        assert a.opt.t == b.opt.t == batches
        assert np.array_equal(a.params.flat, b.params.flat)
        assert np.array_equal(a.opt.m.flat, b.opt.m.flat)
        assert a.history[-1].loss == b.history[-1].loss
