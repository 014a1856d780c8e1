import numpy as np

from minis2s.backend import get_backend
from minis2s.data import load_data
from minis2s.presets import get_preset
from minis2s.train import Trainer, model_config


def _trainer(corpus, epochs, seed=0):
    preset = get_preset("zh").with_overrides(epochs=epochs)
    data = load_data(corpus, preset.num_steps, preset.num_examples)
    return Trainer(model_config(preset, data), preset, get_backend("numpy"), seed=seed), data


def test_zh_preset_loss_falls(corpus):
    trainer, data = _trainer(corpus, 8)
    trainer.fit(data, 8, progress=False)
    losses = [s.loss for s in trainer.history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert all(np.isfinite(losses))
    assert trainer.history[-1].tokens == int(data.train.tgt_valid_len.sum())
    line = trainer.summary_line()
    assert line.startswith("loss ") and line.endswith("tokens/sec on cpu")


def test_same_seed_gives_bit_identical_parameters(tiny_corpus):
    a, data = _trainer(tiny_corpus, 2, seed=4)
    b, _ = _trainer(tiny_corpus, 2, seed=4)
    a.fit(data, 2, progress=False)
    b.fit(data, 2, progress=False)
    np.testing.assert_array_equal(a.params.flat, b.params.flat)
    c, _ = _trainer(tiny_corpus, 2, seed=5)
    c.fit(data, 2, progress=False)
    assert not np.array_equal(a.params.flat, c.params.flat)
