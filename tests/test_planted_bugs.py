"""The checker must fail on a wrong backward: each planted bug is caught."""

import numpy as np
import pytest

from minis2s import gradcheck as gc
from minis2s.ops import CELLS
from minis2s.ops import gru as gru_mod
from minis2s.ops import lstm as lstm_mod


def worst(rows):
    return max(r.error for r in rows)


def test_dense_backward_reading_weight_rows_reversed_is_caught(monkeypatch):
    def wrong(dy, cache):
        x, w = cache
        dx = dy @ w[::-1]  # rows of W in the wrong order: shapes still agree
        dW = dy.reshape(-1, dy.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        return dx, {"weight": dW, "bias": dy.reshape(-1, dy.shape[-1]).sum(0)}

    monkeypatch.setattr("minis2s.ops.dense_backward", wrong)
    assert worst(gc.check_dense(np.random.default_rng(0))) > 1e-2


def _plant(monkeypatch, cell, layer_backward):
    """Run ``cell``'s stacks with another layer backward (CELLS is where stacks find it)."""
    monkeypatch.setitem(CELLS, cell, CELLS[cell]._replace(layer_backward=layer_backward))


@pytest.mark.parametrize("cell", list(CELLS))
def test_transposed_recurrent_weight_is_caught(monkeypatch, cell):
    """BPTT with W_hh's blocks read transposed: a square (H, H) block per gate."""
    real = CELLS[cell].layer_backward

    def wrong(dhs, dstate_last, cache, record=None):
        H = cache.hs.shape[-1]
        w = cache.weight_hh.copy()
        for g in range(w.shape[0] // H):  # transpose each gate's (H, H) block
            w[g * H:(g + 1) * H] = w[g * H:(g + 1) * H].T.copy()
        return real(dhs, dstate_last, cache._replace(weight_hh=w), record)

    _plant(monkeypatch, cell, wrong)
    rows = gc.check_stack(np.random.default_rng(1), T=4, N=2, D=3, H=3, L=1,
                          bidirectional=False, p=0.0, cell=cell)
    assert worst(rows) > 1e-3


def test_missing_context_gradient_is_caught(monkeypatch):
    """The seed's decoder forgets that its context is the encoder's top-layer h: the
    context's gradient (from the decoder's input projection) never reaches the encoder."""
    from minis2s.model import decoder as model

    real = model.decoder_input_backward
    calls = []

    def wrong(dgi, cache):
        dcontext, grads = real(dgi, cache)
        calls.append(1)
        return dcontext * 0, grads  # forget that the context came from the encoder

    monkeypatch.setattr(model, "decoder_input_backward", wrong)
    rows = gc.check_seq2seq(np.random.default_rng(2))
    assert calls, "the plant was not reached"
    bad = {r.name for r in rows if r.error > gc.TOLERANCE}
    assert any(n.startswith("encoder.") for n in bad)
    assert not any(n.startswith("decoder.") for n in bad)


def _factors(sigmoid_grad):
    """BPTT's hoisted factors (``gru.bptt_factors``) written out plainly, with the
    sigmoid's derivative given as a function of the gate's value."""

    def factors(rz, n, ghn, hprev):
        r, z = rz[0], rz[1]
        return ((1 - z) * (1 - n * n), (hprev - n) * sigmoid_grad(z),
                ghn * sigmoid_grad(r))

    return factors


@pytest.mark.parametrize(("sigmoid_grad", "caught"), [
    (lambda s: s * (1 - s), False),  # the right derivative: the replacement itself is sound
    (lambda s: s, True),  # sigma'(a) written as sigma(a): the classic slip
    (lambda s: 1 - s, True),  # ... or as 1 - sigma(a)
])
def test_wrong_sigmoid_derivative_is_caught(monkeypatch, sigmoid_grad, caught):
    """σ'(a) = σ(1 - σ) replaced in BPTT by σ or by 1 - σ, for both gates."""
    monkeypatch.setattr(gru_mod, "bptt_factors", _factors(sigmoid_grad))
    error = worst(gc.check_stack(np.random.default_rng(3), L=1, bidirectional=False, p=0.0))
    assert (error > 1e-3) if caught else (error <= gc.TOLERANCE)


def test_wrong_forget_gate_derivative_is_caught(monkeypatch):
    """The LSTM's k_f = c_prev σ'(a_f) written with σ(a_f) = f for σ'(a_f)."""
    real = lstm_mod.lstm_bptt_factors

    def wrong(acts, tanh_c, cprev):
        k_o, k_c, k_i, _, k_g = real(acts, tanh_c, cprev)
        return k_o, k_c, k_i, cprev * acts[1], k_g

    monkeypatch.setattr(lstm_mod, "lstm_bptt_factors", wrong)
    rows = gc.check_stack(np.random.default_rng(4), L=1, bidirectional=False, p=0.0,
                          cell="lstm")
    assert worst(rows) > 1e-3


def test_command_fails_on_a_planted_bug(monkeypatch, capsys):
    real = CELLS["gru"].layer_backward

    def wrong(dhs, dstate_last, cache, record=None):
        dgi, dstate0, g = real(dhs, dstate_last, cache, record)
        return dgi, dstate0.map(lambda d: d * 1.001), g

    _plant(monkeypatch, "gru", wrong)
    # the stacks' cases find it; the whole models' cases (most of the command's time)
    # would too, and are left out here to keep this test short
    monkeypatch.setattr(gc.cases, "check_seq2seq", lambda *a, **k: [])
    assert gc.main() == 1
    out = capsys.readouterr().out
    assert "FAIL" in out


@pytest.mark.parametrize("case", ["dense", "gru", "lstm", "rnn"])
def test_correct_backward_passes(case):
    rng = np.random.default_rng(0)
    rows = gc.check_dense(rng) if case == "dense" else gc.check_stack(rng, cell=case)
    assert worst(rows) <= gc.TOLERANCE
