"""What one training step and one epoch compute, number by number: the step's gradient is
the model's for the batch with the dropout masks drawn for it, unscaled; the epoch's loss
sums every batch's; a resumed epoch's time adds up; the time spent summing over ranks is
the sum of the steps'; a non-finite step leaves the parameters as they were; and what
fit hands to the progress bar and to ``on_epoch``."""

import copy
import math

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.data import iterate_batches, load_data
from minis2s.data.corpus import Part
from minis2s.model import draw_dropout_masks, seq2seq_backward, seq2seq_forward
from minis2s.presets import get_preset
from minis2s.train import Trainer, model_config
from minis2s.train import trainer as trainer_mod
from minis2s.train.trainer import TrainingError

from .test_trainer_edges import StopAfter

F64 = get_backend("numpy", "float64")
NO_CLIP = 1e12  # a gradient norm no step here reaches


def _trainer(corpus, seed=5, **over):
    preset = get_preset("zh").with_overrides(epochs=3, batch_size=16, **over)
    data = load_data(corpus, preset.data_spec(), warn=lambda m: None)
    return Trainer(model_config(preset, data), preset, F64, seed=seed), data


def _first_batch(trainer, data):
    return next(iterate_batches(data.train, trainer.preset.batch_size, None, shuffle=False,
                                bos=data.tgt_vocab.bos))


class Clock:
    """A stand-in for the ``time`` module whose ``perf_counter`` moves one second a call."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


@pytest.mark.parametrize("model, reduction", [("seq2seq", "seq"), ("attention", "seq"),
                                              ("seq2seq", "mean")])
def test_a_step_takes_the_models_unscaled_gradient_with_the_masks_drawn_for_the_batch(
        tiny_corpus, model, reduction):
    """With clipping out of reach, the gradient a step hands to Adam is exactly the
    model's gradient of the batch's loss under the preset's reduction, computed with the
    dropout masks drawn from the trainer's generator for this batch (so dropout is on in
    training), and the step returns that loss."""
    trainer, data = _trainer(tiny_corpus, model=model, dropout=0.3, grad_clip=NO_CLIP,
                             loss_reduction=reduction)
    batch = _first_batch(trainer, data)
    gen = copy.deepcopy(trainer.dropout_gen)  # the draws the step is about to make
    N, T_src = batch.src.shape
    masks = draw_dropout_masks(trainer.cfg, F64, gen, N, T_src, batch.tgt.shape[1])
    loss, cache = seq2seq_forward(trainer.params, trainer.cfg, batch, masks,
                                  reduction=reduction)
    want = trainer.params.zeros_like()
    want.assign(seq2seq_backward(1.0, cache).params)
    no_dropout, _ = seq2seq_forward(trainer.params, trainer.cfg, batch, reduction=reduction)
    assert float(no_dropout) != pytest.approx(float(loss), rel=1e-6)  # the masks matter
    other = "sum" if reduction != "sum" else "seq"
    assert float(seq2seq_forward(trainer.params, trainer.cfg, batch, masks,
                                 reduction=other)[0]) != pytest.approx(float(loss), rel=1e-6)
    handed = []
    trainer.opt.step = lambda grads: handed.append(grads.flat.copy())
    got = trainer.step(batch)
    assert got == float(loss)
    assert len(handed) == 1
    np.testing.assert_array_equal(handed[0], want.flat)


def test_the_epoch_loss_sums_every_batch_over_every_target_token(tiny_corpus):
    """EpochStats.loss is the sum of every step's loss over the epoch's valid target
    tokens (the seed's measure), not the last batch's or a mean of means."""
    trainer, data = _trainer(tiny_corpus)
    real_step, losses, tokens = trainer.step, [], []

    def step(batch):
        losses.append(real_step(batch))
        tokens.append(int(batch.num_tokens))
        return losses[-1]

    trainer.step = step
    stats = trainer.run_epoch(data)
    assert len(losses) == math.ceil(len(data.train) / 16) > 2
    assert len(set(losses)) > 1
    assert stats.tokens == sum(tokens) == int(data.train.tgt_valid_len.sum())
    assert stats.loss == pytest.approx(sum(losses) / sum(tokens), rel=1e-12)


def test_a_one_token_part_is_not_divided_by_more_than_its_token(tiny_corpus):
    """A part whose only target is <eos> has one token: its loss per token is its loss
    (the guard against an empty part divides by one, not by more)."""
    trainer, data = _trainer(tiny_corpus, dropout=0.0)
    t = data.train
    tgt = t.tgt[:1].copy()
    tgt[0, 0] = data.tgt_vocab.eos
    tgt[0, 1:] = data.tgt_vocab.pad
    part = Part(t.src[:1], t.src_valid_len[:1], tgt, np.ones(1, dtype=t.tgt_valid_len.dtype),
                t.src_tokens[:1], [[]])
    bos = data.tgt_vocab.bos
    (b,) = iterate_batches(part, 4, None, shuffle=False, bos=bos)
    assert int(b.num_tokens) == 1
    loss, _ = seq2seq_forward(trainer.params, trainer.cfg, b)
    assert trainer.evaluate_loss(part, bos) == pytest.approx(float(loss), rel=1e-12)
    data.train, data.valid = part, part
    stats = trainer.run_epoch(data)
    assert stats.tokens == 1
    assert stats.loss == pytest.approx(float(loss), rel=1e-12)


def test_an_epoch_stopped_and_resumed_counts_the_time_of_both_parts(tiny_corpus, monkeypatch):
    """EpochStats.seconds of a resumed epoch adds the time before the stop to the time
    after it (its tokens per second are the whole epoch's)."""
    monkeypatch.setattr(trainer_mod, "time", Clock())
    trainer, data = _trainer(tiny_corpus)

    class StopAtSecond:
        asked = 0

        @property
        def requested(self):
            self.asked += 1
            return self.asked == 2

    trainer.interrupt = StopAtSecond()
    with pytest.raises(KeyboardInterrupt):
        trainer.run_epoch(data)
    assert trainer.epoch_progress.seconds == 1.0  # one clock tick from start to stop
    stats = trainer.run_epoch(data)
    assert stats.seconds == 2.0


class TwoRanksAlone:
    """Rank 0 of two, whose partner contributes nothing: the sums leave values as they
    are, and nobody asks to stop."""

    size, rank = 2, 0

    def sum_(self, array):
        pass

    def sum_scalar(self, value):
        return value

    def any(self, flag):
        return bool(flag)


def test_the_time_in_the_sums_over_ranks_adds_up_over_steps(tiny_corpus, monkeypatch):
    """allreduce_seconds (the benchmark reads it) starts at zero and grows by each
    step's time inside the sums, and only then."""
    trainer, data = _trainer(tiny_corpus)
    assert trainer.allreduce_seconds == 0.0
    batch = _first_batch(trainer, data)
    trainer.step(batch)
    assert trainer.allreduce_seconds == 0.0  # one rank: no sums
    trainer.ranks = TwoRanksAlone()
    monkeypatch.setattr(trainer_mod, "time", Clock())
    trainer.step(batch)
    trainer.step(batch)
    assert trainer.allreduce_seconds == 2.0  # one tick each


def test_a_step_with_a_non_finite_gradient_leaves_the_parameters_as_they_were(tiny_corpus):
    trainer, data = _trainer(tiny_corpus)
    batch = _first_batch(trainer, data)
    trainer.params.flat[0] = np.inf
    before = trainer.params.flat.copy()
    with pytest.raises(TrainingError) as caught, np.errstate(all="ignore"):
        trainer.step(batch)
    assert str(caught.value).endswith("is not finite; stopping before the parameters are "
                                      "spoiled")
    np.testing.assert_array_equal(trainer.params.flat, before)
    assert trainer.opt.t == 0


def test_fit_tells_the_bar_the_batches_left_and_each_epochs_losses(tiny_corpus, monkeypatch):
    """The bar (tqdm, where stderr is a terminal) is made for the batches left, resumed
    epochs included, moves one batch a step, leaves no line behind, and shows each
    epoch's number and losses; on_epoch gets each epoch's stats."""
    import tqdm

    bars = []

    class Bar:
        disable = False

        def __init__(self, **kwargs):
            self.kwargs, self.updates, self.posts, self.closed = kwargs, [], [], False
            bars.append(self)

        def update(self, n):
            self.updates.append(n)

        def set_postfix(self, post):
            self.posts.append(post)

        def close(self):
            self.closed = True

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    trainer, data = _trainer(tiny_corpus, valid_size=20)
    batches = math.ceil(len(data.train) / 16)

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(data, 2, interrupt=StopAfter(3))
    seen = []
    trainer.fit(data, 2, on_epoch=lambda t, s: seen.append(s))
    first, resumed = bars
    assert first.kwargs == dict(total=2 * batches, unit="batch", leave=False,
                                dynamic_ncols=True, disable=None)
    assert resumed.kwargs["total"] == 2 * batches - 3
    assert first.updates == [1] * 3 and resumed.updates == [1] * (2 * batches - 3)
    assert first.closed and resumed.closed
    assert seen == trainer.history[-2:]
    assert resumed.posts == [{"epoch": s.epoch, "loss": f"{s.loss:.3f}",
                              "valid": f"{s.valid_loss:.3f}"} for s in seen]
    assert [s.epoch for s in seen] == [1, 2]


def test_without_a_bar_the_log_counts_the_batches_left_of_a_resumed_run(tiny_corpus,
                                                                        monkeypatch):
    """ProgressLog is told the last epoch's number, the batches per epoch and the batches
    still to run, so that a resumed run's time left is its own."""
    made = []
    real_log = trainer_mod.ProgressLog
    monkeypatch.setattr(trainer_mod, "ProgressLog",
                        lambda *args: made.append(args[2:]) or real_log(*args))
    trainer, data = _trainer(tiny_corpus)
    batches = math.ceil(len(data.train) / 16)
    trainer.fit(data, 1, progress=False, log=lambda line: None)

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(data, 2, progress=False, log=lambda line: None, interrupt=StopAfter(2))
    trainer.fit(data, 2, progress=False, log=lambda line: None)
    assert made == [(1, batches, batches), (3, batches, 2 * batches),
                    (3, batches, 2 * batches - 2)]
