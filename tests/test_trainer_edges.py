"""The trainer at its edges: an unfinished epoch saved and put back field by field, a
saved state that does not fit, the dropout stream after a resume, and where training
stands in words."""

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.data import iterate_batches, load_data
from minis2s.data.corpus import Part
from minis2s.model import seq2seq_forward
from minis2s.presets import get_preset
from minis2s.train import Trainer, model_config
from minis2s.train import trainer as trainer_mod
from minis2s.train.trainer import RESUME_ARRAYS, StateError

NUMPY = get_backend("numpy")


class StopAfter:
    """An interrupt request that turns on after ``steps`` steps have been asked about."""

    def __init__(self, steps):
        self.left = steps

    @property
    def requested(self):
        self.left -= 1
        return self.left < 0


def _trainer(corpus, seed=3, backend=NUMPY, **over):
    preset = get_preset("zh").with_overrides(epochs=3, batch_size=16, **over)
    data = load_data(corpus, preset.data_spec(), warn=lambda m: None)
    return Trainer(model_config(preset, data), preset, backend, seed=seed), data


def _stopped(corpus, steps, **over):
    """A trainer stopped after one whole epoch and ``steps`` steps of the next."""
    trainer, data = _trainer(corpus, **over)
    trainer.fit(data, 1, progress=False)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(data, 1, progress=False, interrupt=StopAfter(steps))
    return trainer, data


def test_an_unfinished_epoch_is_put_back_field_by_field(tiny_corpus):
    a, data = _stopped(tiny_corpus, 2)
    assert a.position() == "in epoch 2/3 after 2 batches"
    arrays, state = a.resume_state()
    assert state["batch"] == 2 and state["epoch_seconds"] > 0
    assert state["backend"] == "numpy"
    b, _ = _trainer(tiny_corpus, seed=3)
    assert b.load_resume_state(arrays, state, [h.__dict__ for h in a.history]) is True
    assert b.epoch_progress == a.epoch_progress
    assert b.epoch_progress.seconds == state["epoch_seconds"]
    assert b.history == a.history
    assert b.opt.t == a.opt.t
    assert b.dropout_gen.bit_generator.state == a.dropout_gen.bit_generator.state
    assert b.position() == "in epoch 2/3 after 2 batches"


def test_without_a_dropout_state_a_resume_draws_a_fresh_reproducible_stream(tiny_corpus):
    """A checkpoint whose dropout generator had no state to save (CuPy's): the resumed
    trainer says the run is not exact and draws from a stream of its own, the same on
    every resume and different from the first epoch's."""
    a, _ = _stopped(tiny_corpus, 1)
    arrays, state = a.resume_state()
    state["dropout_rng"] = None
    streams = []
    for _ in range(2):
        b, _ = _trainer(tiny_corpus, seed=3)
        assert b.load_resume_state(arrays, state, []) is False
        assert isinstance(b.dropout_gen, np.random.Generator)
        streams.append(b.dropout_gen.random(8))
    np.testing.assert_array_equal(streams[0], streams[1])
    first, _ = _trainer(tiny_corpus, seed=3)
    assert not np.array_equal(streams[0], first.dropout_gen.random(8))


def test_a_dropout_state_is_not_forced_on_a_generator_without_one(tiny_corpus):
    """A saved dropout state reaches only a NumPy generator; another kind of generator
    (CuPy's) gets a fresh stream, and the run is said not to be exact."""
    a, _ = _stopped(tiny_corpus, 1)
    arrays, state = a.resume_state()
    b, _ = _trainer(tiny_corpus, seed=3)

    class Opaque:  # a generator whose state cannot be set
        pass

    b.dropout_gen = Opaque()
    assert b.load_resume_state(arrays, state, []) is False
    assert isinstance(b.dropout_gen, np.random.Generator)


@pytest.mark.parametrize("broken", ["shape", "dtype", "nan"])
def test_an_optimiser_state_that_does_not_fit_is_refused(tiny_corpus, broken):
    a, _ = _stopped(tiny_corpus, 1)
    arrays, state = a.resume_state()
    name = RESUME_ARRAYS[1]
    size = a.params.flat.size
    if broken == "shape":
        arrays[name] = arrays[name][:-1]
        message = f"optimiser state {name} has shape ({size - 1},) and dtype float32"
    elif broken == "dtype":
        arrays[name] = arrays[name].astype(np.int64)
        message = f"optimiser state {name} has shape ({size},) and dtype int64"
    else:
        arrays[name] = arrays[name].copy()
        arrays[name][3] = np.nan
        message = f"optimiser state {name} holds NaN or Inf"
    b, _ = _trainer(tiny_corpus, seed=3)
    with pytest.raises(StateError) as caught:
        b.load_resume_state(arrays, state, [])
    assert str(caught.value).startswith(message)


def test_where_training_stands_in_words(tiny_corpus):
    trainer, data = _trainer(tiny_corpus)
    assert trainer.position() == "before the first step"
    trainer.fit(data, 1, progress=False)
    assert trainer.position() == "after epoch 1/3"
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(data, 1, progress=False, interrupt=StopAfter(0))
    assert trainer.position() == "after epoch 1/3"  # an epoch begun, no batch done
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(data, 1, progress=False, interrupt=StopAfter(1))
    assert trainer.position() == "in epoch 2/3 after 1 batch"


def test_between_epochs_the_saved_position_is_the_epochs_start(tiny_corpus):
    trainer, data = _trainer(tiny_corpus)
    trainer.fit(data, 1, progress=False)
    _, state = trainer.resume_state()
    assert {k: state[k] for k in ("batch", "epoch_loss_sum", "epoch_tokens",
                                  "epoch_seconds")} == {"batch": 0, "epoch_loss_sum": 0.0,
                                                        "epoch_tokens": 0,
                                                        "epoch_seconds": 0.0}
    assert state["shuffle_rng"] == trainer.shuffle_rng.bit_generator.state


def test_the_validation_loss_is_the_loss_per_target_token_over_the_whole_part(tiny_corpus):
    """evaluate_loss: the summed loss of every pair over the number of target tokens
    (<eos> included), whatever the batches; an empty part gives 0."""
    F64 = get_backend("numpy", "float64")
    trainer, data = _trainer(tiny_corpus, backend=F64, dropout=0.0)
    part, bos = data.train, data.tgt_vocab.bos
    assert len(part) > 3
    total = tokens = 0
    for b in iterate_batches(part, 1, None, shuffle=False, bos=bos):  # pair by pair
        loss, _ = seq2seq_forward(trainer.params, trainer.cfg, b)
        total, tokens = total + float(loss), tokens + int(b.num_tokens)
    assert tokens == int(part.tgt_valid_len.sum())
    for batch_size in (1, 3, len(part), 512):
        assert trainer.evaluate_loss(part, bos, batch_size) == \
            pytest.approx(total / tokens, rel=1e-12)
    assert trainer.evaluate_loss(part, bos) == pytest.approx(total / tokens, rel=1e-12)
    empty = Part(part.src[:0], part.src_valid_len[:0], part.tgt[:0], part.tgt_valid_len[:0],
                 [], [])
    assert trainer.evaluate_loss(empty, bos) == 0.0


def test_fit_listens_for_ctrl_c_only_while_it_runs(tiny_corpus):
    """Without an interrupt request of the caller's, fit makes its own for the run and
    drops it afterwards; the caller's is used as given."""
    trainer, data = _trainer(tiny_corpus)
    seen = []
    trainer.fit(data, 1, progress=False, on_epoch=lambda t, s: seen.append(t.interrupt))
    assert isinstance(seen[0], trainer_mod.InterruptRequest)
    assert trainer.interrupt is None
    mine = StopAfter(10 ** 6)
    trainer.fit(data, 1, progress=False, on_epoch=lambda t, s: seen.append(t.interrupt))
    trainer.fit(data, 1, progress=False, interrupt=mine,
                on_epoch=lambda t, s: seen.append(t.interrupt))
    assert seen[2] is mine and trainer.interrupt is None


def test_fit_refuses_no_epochs(tiny_corpus):
    trainer, data = _trainer(tiny_corpus)
    with pytest.raises(ValueError) as caught:
        trainer.fit(data, 0, progress=False)
    assert str(caught.value) == "epochs must be >= 1, got 0"


def test_fit_shows_a_bar_by_default_and_logs_every_300_seconds(tiny_corpus, monkeypatch):
    """progress=True is the default (a bar, where stderr is a terminal); without a bar,
    the log gets ProgressLog's lines, inside an epoch every 300 seconds by default."""
    import tqdm

    bars, logs = [], []

    class Bar:  # tqdm on a terminal, as far as fit uses it
        disable = False

        def __init__(self, **kwargs):
            bars.append(kwargs)

        def update(self, n):
            pass

        def set_postfix(self, post):
            pass

        def close(self):
            pass

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    real_log = trainer_mod.ProgressLog
    monkeypatch.setattr(trainer_mod, "ProgressLog",
                        lambda *args: logs.append(args) or real_log(*args))
    trainer, data = _trainer(tiny_corpus)
    trainer.fit(data, 1)
    assert len(bars) == 1 and logs == []
    trainer.fit(data, 1, progress=False, log=lambda line: None)
    assert len(logs) == 1 and logs[0][1] == 300.0
