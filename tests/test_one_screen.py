"""The whole model on one screen (minis2s/ops/reference/seq2seq.py): right by finite
differences, equal to the fast model on the same parameters and batch (loss and every
gradient, by name), exact zeros where the target is padded, and other configurations
refused."""

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.data import make_batch
from minis2s.gradcheck import TOLERANCE, check_backward
from minis2s.model import ModelConfig, init_params, seq2seq_backward, seq2seq_forward
from minis2s.ops.reference import seq2seq as one

F64 = get_backend("numpy", "float64")
PAD, BOS = 1, 2
FAST_TOL = 1e-10


def _cfg(L, E=4, H=5, V_src=6, V_tgt=7, **changes):
    settings = {"dropout": 0.0, **changes}
    return ModelConfig(src_vocab_size=V_src, tgt_vocab_size=V_tgt, embed_size=E,
                       num_hiddens=H, num_layers=L, **settings)


def _params(cfg, rng, scale=0.8):
    """The fast model's parameter dict, redrawn wider than initialisation so that every
    gradient, the lowest encoder layer's included, is well away from 0."""
    params = init_params(cfg, F64, rng)
    for name in params:
        params[name] = rng.uniform(-scale, scale, params[name].shape)
    return params


def _batch(rng, cfg, src_valid, tgt_valid, S, T):
    """Random ids, PAD after each sentence's valid length (source and target)."""
    src = rng.integers(3, cfg.src_vocab_size, (len(src_valid), S))
    tgt = rng.integers(3, cfg.tgt_vocab_size, (len(tgt_valid), T))
    src[np.arange(S)[None, :] >= np.asarray(src_valid)[:, None]] = PAD
    tgt[np.arange(T)[None, :] >= np.asarray(tgt_valid)[:, None]] = PAD
    return make_batch(src, src_valid, tgt, tgt_valid, bos=BOS)


# ------------------------------------------------------------------ finite differences


@pytest.mark.parametrize("L", [1, 2])
def test_one_screen_matches_finite_differences(L):
    """Every parameter through the scalar loss times a random upstream gradient, N=3, S=4,
    T=5, E=4, H=5, V=7, padding in the source and the target (one target empty)."""
    rng = np.random.default_rng(L)
    cfg = _cfg(L)
    params = {k: np.array(v) for k, v in _params(cfg, rng, scale=0.5).items()}
    batch = _batch(rng, cfg, src_valid=[4, 2, 1], tgt_valid=[5, 0, 3], S=4, T=5)

    def forward(**p):
        return one.seq2seq_forward(p, cfg, batch)

    rows = check_backward(forward, one.seq2seq_backward, params, rng, case=f"one screen, L={L}")
    assert sorted(r.name for r in rows) == sorted(params)
    bad = [(r.name, r.error) for r in rows if r.error > TOLERANCE]
    assert not bad, bad


# ------------------------------------------------------------------ one screen == fast model

SHAPES = [  # (N, S, T, E, H, V_src, V_tgt, L, source lengths, target lengths)
    (3, 4, 5, 4, 5, 6, 7, 1, [4, 2, 1], [5, 0, 3]),
    (3, 4, 5, 4, 5, 6, 7, 2, [4, 2, 1], [5, 0, 3]),
    (5, 6, 3, 3, 4, 9, 5, 3, [6, 6, 1, 3, 2], [3, 1, 3, 2, 1]),
    (4, 7, 6, 6, 8, 11, 10, 2, [7, 7, 7, 7], [6, 6, 6, 6]),  # no padding at all
    (1, 2, 1, 2, 3, 4, 5, 2, [2], [1]),  # one sentence, one target step
]


@pytest.mark.parametrize("reduction", ["seq", "token"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}-S{}-T{}-E{}-H{}-Vs{}-Vt{}-L{}".format(
    *s[:8]))
def test_one_screen_equals_the_fast_model(shape, reduction):
    """Same parameters, same batch, dropout 0: the loss and every parameter's gradient
    equal the fast model's (packed, as training runs it, and padded) to 1e-10."""
    N, S, T, E, H, V_src, V_tgt, L, src_valid, tgt_valid = shape
    rng = np.random.default_rng(N * 100 + L)
    cfg = _cfg(L, E, H, V_src, V_tgt)
    params = _params(cfg, rng)
    batch = _batch(rng, cfg, src_valid, tgt_valid, S, T)
    dloss = rng.uniform(0.5, 2.0)

    loss, cache = one.seq2seq_forward(params, cfg, batch, reduction)
    grads = one.seq2seq_backward(dloss, cache)
    assert sorted(grads) == sorted(params)
    for name, g in grads.items():
        assert g.shape == params[name].shape, name
        assert np.abs(g).max() > 1e-4, f"{name}: too small a gradient to compare"
    for packed in (True, False):
        fast_loss, fast_cache = seq2seq_forward(params, cfg, batch, reduction=reduction,
                                                packed=packed)
        fast = seq2seq_backward(dloss, fast_cache).params
        assert abs(float(loss) - float(fast_loss)) <= FAST_TOL, (packed, loss, fast_loss)
        assert sorted(fast) == sorted(grads)
        for name in params:
            np.testing.assert_allclose(grads[name], fast[name], rtol=0, atol=FAST_TOL,
                                       err_msg=f"{name} (packed={packed})")


# ------------------------------------------------------------------ padding


def test_padded_target_positions_get_exactly_zero_gradient():
    """The logits' gradient is exactly 0 at every padded target position, and whatever
    stands there (labels, decoder inputs) changes neither the loss nor any gradient."""
    rng = np.random.default_rng(7)
    cfg = _cfg(2)
    params = _params(cfg, rng)
    tgt_valid = np.array([5, 0, 3, 1])
    batch = _batch(rng, cfg, [4, 2, 1, 3], tgt_valid, S=4, T=5)
    loss, cache = one.seq2seq_forward(params, cfg, batch)
    dlogits = one.loss_backward(1.0, cache)  # (T, N, V)
    padded = np.arange(5)[:, None] >= tgt_valid[None, :]  # (T, N)
    assert padded.sum() == 11 and np.all(dlogits[padded] == 0.0)
    assert np.all(np.abs(dlogits[~padded]).max(axis=1) > 0)

    other = rng.integers(0, cfg.tgt_vocab_size, batch.tgt.shape)  # anything at the padding
    moved = batch._replace(tgt=np.where(padded.T, other, batch.tgt),
                           tgt_in=np.where(padded.T, other[:, ::-1], batch.tgt_in))
    assert not np.array_equal(moved.tgt, batch.tgt)
    assert not np.array_equal(moved.tgt_in, batch.tgt_in)
    loss2, cache2 = one.seq2seq_forward(params, cfg, moved)
    assert float(loss2) == float(loss)
    grads, grads2 = one.seq2seq_backward(1.0, cache), one.seq2seq_backward(1.0, cache2)
    for name in grads:
        np.testing.assert_array_equal(grads2[name], grads[name], err_msg=name)


# ------------------------------------------------------------------ what it covers


@pytest.mark.parametrize("change,named", [
    ({"cell": "lstm"}, "cell='lstm'"), ({"cell": "rnn"}, "cell='rnn'"),
    ({"model": "attention"}, "model='attention'"),
    ({"bidirectional": True}, "bidirectional=True"), ({"dropout": 0.1}, "dropout=0.1")])
def test_other_configurations_are_refused(change, named):
    rng = np.random.default_rng(0)
    cfg = _cfg(2, **change)
    batch = _batch(rng, cfg, [4, 2], [5, 3], S=4, T=5)
    with pytest.raises(ValueError, match=f"GRU seq2seq model .* got {named}"):
        one.seq2seq_forward(init_params(cfg, F64, rng), cfg, batch)


def test_an_unknown_reduction_is_refused():
    rng = np.random.default_rng(0)
    cfg = _cfg(1)
    with pytest.raises(ValueError, match="reduction must be"):
        one.seq2seq_forward(init_params(cfg, F64, rng), cfg,
                            _batch(rng, cfg, [4], [5], S=4, T=5), reduction="mean")
