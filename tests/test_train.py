import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.data import iterate_batches, load_data
from minis2s.presets import get_preset
from minis2s.train import Trainer, model_config


def _trainer(corpus, epochs, seed=0):
    preset = get_preset("zh").with_overrides(epochs=epochs)
    data = load_data(corpus, preset.data_spec())
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


def test_same_random_seed_gives_bit_identical_parameters(tiny_corpus):
    a, data = _trainer(tiny_corpus, 2, seed=4)
    b, _ = _trainer(tiny_corpus, 2, seed=4)
    a.fit(data, 2, progress=False)
    b.fit(data, 2, progress=False)
    np.testing.assert_array_equal(a.params.flat, b.params.flat)
    c, _ = _trainer(tiny_corpus, 2, seed=5)
    c.fit(data, 2, progress=False)
    assert not np.array_equal(a.params.flat, c.params.flat)


def test_the_preset_drives_the_optimiser_and_the_batches(tiny_corpus):
    """--lr, --grad-clip and --batch-size reach training: one epoch takes
    ceil(pairs / batch_size) steps; after a step the gradient buffer holds the gradients
    clipped to grad_clip; Adam's first step moves each parameter by about lr."""
    import math

    preset = get_preset("zh").with_overrides(epochs=1, batch_size=48, lr=0.0123,
                                             grad_clip=0.25, dropout=0.0)
    data = load_data(tiny_corpus, preset.data_spec(), warn=lambda m: None)
    trainer = Trainer(model_config(preset, data), preset, get_backend("numpy"), seed=0)
    before = trainer.params.flat.copy()
    batch = next(iterate_batches(data.train, preset.batch_size, np.random.default_rng(0),
                                 bos=data.tgt_vocab.bos))
    trainer.step(batch)
    g = trainer.grads.flat.astype(np.float64)
    assert np.linalg.norm(g) == pytest.approx(0.25, rel=1e-5)  # clipped (it was larger)
    moved = np.abs(trainer.params.flat - before)[np.abs(g) > 1e-4]
    np.testing.assert_allclose(moved, 0.0123, rtol=1e-2)  # first Adam step: lr·sign(g)
    trainer.run_epoch(data)
    assert trainer.opt.t == 1 + math.ceil(len(data.train) / 48)


def test_lr_decay_sets_each_epochs_learning_rate(tiny_corpus):
    """--lr-decay F: epoch e trains at lr * F^(e-1); F = 1 keeps the rate."""
    for decay, expected in ((0.5, [0.01, 0.005, 0.0025]), (1.0, [0.01, 0.01, 0.01])):
        preset = get_preset("zh").with_overrides(epochs=3, lr=0.01, lr_decay=decay)
        data = load_data(tiny_corpus, preset.data_spec(), warn=lambda m: None)
        trainer = Trainer(model_config(preset, data), preset, get_backend("numpy"), seed=0)
        rates = []
        trainer.fit(data, 3, progress=False, on_epoch=lambda t, s, seen=rates:
                    seen.append(t.opt.lr))
        assert rates == pytest.approx(expected), decay


def test_lr_decay_is_kept_by_the_checkpoint_and_resumed(tiny_corpus, tmp_path):
    """A decaying run stopped after one epoch and resumed ends where a straight run does;
    a checkpoint that records no lr_decay (older files) resumes with none."""
    from minis2s import checkpoint
    from minis2s.cli import main
    from minis2s.train.resume import saved_settings

    args = ["--preset", "zh", "--examples", "199", "--lr", "0.01", "--lr-decay", "0.3",
            "--quiet", "--data", str(tiny_corpus)]
    assert main(["train", *args, "--epochs", "3", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *args, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert main(["train", "--resume", "--epochs", "3", "--quiet", "--data", str(tiny_corpus),
                 "--out", str(tmp_path / "run")]) == 0
    straight = checkpoint.load(tmp_path / "straight" / "checkpoint.npz")
    resumed = checkpoint.load(tmp_path / "run" / "checkpoint.npz")
    assert resumed.training["lr_decay"] == 0.3
    for name, value in straight.params.items():
        np.testing.assert_array_equal(resumed.params[name], value, err_msg=name)
    del resumed.training["lr_decay"]
    assert saved_settings(resumed)[0].lr_decay == 1.0
