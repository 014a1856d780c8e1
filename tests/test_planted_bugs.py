"""The checker must fail on a wrong backward: each planted bug is caught."""

import numpy as np
import pytest

from minis2s import gradcheck as gc
from minis2s.ops import gru as gru_mod


def worst(rows):
    return max(r.error for r in rows)


def test_transposed_weight_in_dense_backward_is_caught(monkeypatch):
    def wrong(dy, cache):
        x, w = cache
        dx = dy @ w[::-1]  # rows of W in the wrong order: shapes still agree
        dW = dy.reshape(-1, dy.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        return dx, {"weight": dW, "bias": dy.reshape(-1, dy.shape[-1]).sum(0)}

    monkeypatch.setattr("minis2s.ops.dense_backward", wrong)
    assert worst(gc.check_dense(np.random.default_rng(0))) > 1e-2


def test_transposed_recurrent_weight_is_caught(monkeypatch):
    """BPTT with W_hh's blocks read transposed: a square (H, H) block per gate."""
    real = gru_mod.gru_layer_backward

    def wrong(dhs, dh_last, cache):
        H = cache.hs.shape[-1]
        w = cache.weight_hh.copy()
        for g in range(3):  # transpose each gate's (H, H) block
            w[g * H:(g + 1) * H] = w[g * H:(g + 1) * H].T.copy()
        return real(dhs, dh_last, cache._replace(weight_hh=w))

    monkeypatch.setattr(gru_mod, "gru_layer_backward", wrong)
    rows = gc.check_gru(np.random.default_rng(1), T=4, N=2, D=3, H=3, L=1,
                        bidirectional=False, S=0, p=0.0)
    assert worst(rows) > 1e-3


def test_missing_context_gradient_is_caught(monkeypatch):
    from minis2s import model

    real = model.decoder_backward

    def wrong(dlogits, cache):
        dstate, dcontext, grads = real(dlogits, cache)
        return dstate, dcontext * 0, grads  # forget that the context came from the encoder

    monkeypatch.setattr(model, "decoder_backward", wrong)
    rows = gc.check_seq2seq(np.random.default_rng(2))
    bad = {r.name for r in rows if r.error > gc.TOLERANCE}
    assert any(n.startswith("encoder.") for n in bad)
    assert not any(n.startswith("decoder.") for n in bad)


def test_wrong_sigmoid_derivative_is_caught(monkeypatch):
    """z (1 - z) replaced by z in BPTT: a classic slip."""
    src = gru_mod.gru_layer_backward

    def wrong(dhs, dh_last, cache):
        # z nudged: the backward then uses factors that do not belong to the forward's z
        rz_wrong = cache.rz.copy()
        rz_wrong[1] += 1e-2
        return src(dhs, dh_last, cache._replace(rz=rz_wrong))

    monkeypatch.setattr(gru_mod, "gru_layer_backward", wrong)
    assert worst(gc.check_gru(np.random.default_rng(3), L=1, bidirectional=False, S=0,
                              p=0.0)) > 1e-4


def test_command_fails_on_a_planted_bug(monkeypatch, capsys):
    real = gru_mod.gru_layer_backward

    def wrong(dhs, dh_last, cache):
        dgi, dh0, g = real(dhs, dh_last, cache)
        return dgi, dh0 * 1.001, g

    monkeypatch.setattr(gru_mod, "gru_layer_backward", wrong)
    assert gc.main() == 1
    out = capsys.readouterr().out
    assert "FAIL" in out


@pytest.mark.parametrize("case", ["dense", "gru"])
def test_correct_backward_passes(case):
    rows = (gc.check_dense if case == "dense" else gc.check_gru)(np.random.default_rng(0))
    assert worst(rows) <= gc.TOLERANCE
