"""Model-level properties: masking is exact, parameters are named like PyTorch's."""

import numpy as np
import pytest

from minis2s import gradcheck as gc
from minis2s.backend import get_backend
from minis2s.data import make_batch, pack
from minis2s.model import (
    DECODERS,
    DropoutMasks,
    ModelConfig,
    draw_dropout_masks,
    init_params,
    param_shapes,
    seq2seq_backward,
    seq2seq_forward,
)
from minis2s.ops import CELLS, masked_softmax_ce_backward, masked_softmax_ce_forward
from minis2s.params import ParamSet

F64 = get_backend("numpy", "float64")


def test_masked_positions_get_exactly_zero_gradient_in_the_loss():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 5, 7)) * 10
    labels = rng.integers(0, 7, (3, 5))
    valid = np.array([0, 2, 5])
    for reduction in ("seq", "token"):
        _, cache = masked_softmax_ce_forward(logits, labels, valid, reduction)
        d = masked_softmax_ce_backward(1.7, cache)
        for i, v in enumerate(valid):
            assert np.all(d[i, v:] == 0.0)
            if v:
                assert np.all(np.abs(d[i, :v]).sum(-1) > 0)


def test_masked_positions_do_not_change_the_loss():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 4, 5))
    labels = rng.integers(0, 5, (2, 4))
    valid = np.array([1, 3])
    loss, _ = masked_softmax_ce_forward(logits, labels, valid)
    logits2, labels2 = logits.copy(), labels.copy()
    logits2[0, 1:] = 1e3  # huge values past valid_len: max-shift keeps them finite
    labels2[1, 3] = (labels2[1, 3] + 1) % 5
    loss2, _ = masked_softmax_ce_forward(logits2, labels2, valid)
    assert float(loss) == float(loss2)


def test_empty_batch_of_valid_tokens():
    logits = np.zeros((2, 3, 4))
    labels = np.zeros((2, 3), dtype=int)
    for reduction in ("seq", "token"):
        loss, cache = masked_softmax_ce_forward(logits, labels, np.array([0, 0]), reduction)
        assert float(loss) == 0.0
        assert np.all(masked_softmax_ce_backward(1.0, cache) == 0.0)


def test_seed_reduction_value():
    """Per sequence: sum of valid tokens' losses / T; batch: the sum over sequences."""
    V, T = 4, 3
    logits = np.zeros((2, T, V))  # uniform softmax: every token costs log V
    labels = np.zeros((2, T), dtype=int)
    valid = np.array([1, 3])
    loss, _ = masked_softmax_ce_forward(logits, labels, valid, "seq")
    assert float(loss) == pytest.approx((1 + 3) * np.log(V) / T)
    loss, _ = masked_softmax_ce_forward(logits, labels, valid, "token")
    assert float(loss) == pytest.approx(np.log(V))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_decoder_inputs_past_valid_len_get_exactly_zero_gradient(bidirectional):
    """The decoder is causal and the loss masked: a token seen only at masked input
    positions must get an embedding gradient of exactly zero."""
    cfg = ModelConfig(src_vocab_size=8, tgt_vocab_size=9, embed_size=4, num_hiddens=5,
                      num_layers=2, dropout=0.2, bidirectional=bidirectional)
    rng = np.random.default_rng(2)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 3, 4, 6)
    tgt_in = batch.tgt_in.copy()
    tgt_in[tgt_in == 8] = 7
    valid = np.array([6, 2, 0])
    tgt_in[1, 3:] = 8  # token 8 only where the loss is masked (t >= 3 > valid_len 2)
    tgt_in[2, 1:] = 8
    batch = batch._replace(tgt_in=tgt_in, tgt_valid_len=valid, packing=pack(valid))
    masks = draw_dropout_masks(cfg, F64, F64.generator(0), 3, 4, 6)
    _, cache = seq2seq_forward(params, cfg, batch, masks)
    grads = seq2seq_backward(1.0, cache).params
    assert np.all(grads["decoder.embedding.weight"][8] == 0.0)
    assert np.any(grads["decoder.embedding.weight"][7] != 0.0)


def test_parameter_names_and_shapes_follow_pytorch():
    cfg = ModelConfig(src_vocab_size=10, tgt_vocab_size=12, embed_size=4, num_hiddens=6,
                      num_layers=2, dropout=0.1, bidirectional=True)
    shapes = param_shapes(cfg)
    assert shapes["encoder.embedding.weight"] == (10, 4)
    assert shapes["encoder.rnn.weight_ih_l0"] == (18, 4)
    assert shapes["encoder.rnn.weight_hh_l0_reverse"] == (18, 6)
    assert shapes["encoder.rnn.weight_ih_l1"] == (18, 12)
    assert shapes["decoder.rnn.weight_ih_l0"] == (36, 4 + 12)  # [embedding ; 2H context]
    assert shapes["decoder.rnn.weight_hh_l1"] == (36, 12)
    assert shapes["decoder.dense.weight"] == (12, 12)
    assert shapes["decoder.dense.bias"] == (12,)


def test_same_random_seed_same_parameters_and_gradients_are_views_of_one_buffer():
    cfg = ModelConfig(src_vocab_size=10, tgt_vocab_size=12, embed_size=4, num_hiddens=6,
                      num_layers=2, dropout=0.1, bidirectional=False)
    a = init_params(cfg, F64, np.random.default_rng(9))
    b = init_params(cfg, F64, np.random.default_rng(9))
    np.testing.assert_array_equal(a.flat, b.flat)
    a["decoder.dense.bias"][0] = 123.0
    assert 123.0 in a.flat
    with pytest.raises(ValueError, match="shape"):
        a["decoder.dense.bias"] = np.zeros(3)
    # the backward gives a gradient for every parameter, and the gradient buffer holds
    # each one in its parameter's place: flat[slot of name] is that name's gradient
    batch = gc.make_batch(np.random.default_rng(1), cfg, 3, 4, 5)
    masks = draw_dropout_masks(cfg, F64, F64.generator(2), 3, 4, 5)
    _, cache = seq2seq_forward(a, cfg, batch, masks)
    by_name = seq2seq_backward(1.0, cache).params
    assert set(by_name) == set(a)
    grads = a.zeros_like()
    grads.assign(by_name)
    offset = 0
    for name in a:  # every name's slot, in order, covering the whole buffer
        size = by_name[name].size
        assert np.shares_memory(grads[name], grads.flat)
        np.testing.assert_array_equal(grads.flat[offset:offset + size],
                                      by_name[name].reshape(-1), err_msg=name)
        offset += size
    assert offset == grads.flat.size
    grads.flat *= 2.0  # a whole-buffer operation (clipping, Adam) reaches every view
    np.testing.assert_array_equal(grads["encoder.embedding.weight"],
                                  2 * by_name["encoder.embedding.weight"])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_float32_agrees_with_float64(bidirectional):
    """The float32 path computes what float64 does, to float32's precision: the same
    parameters, batch and dropout masks give a loss within 1e-6 relative and every
    gradient within 1e-5 of its array's largest entry (measured: 1e-7 and 6e-7)."""
    cfg = ModelConfig(src_vocab_size=10, tgt_vocab_size=12, embed_size=8, num_hiddens=16,
                      num_layers=2, dropout=0.2, bidirectional=bidirectional)
    params64 = init_params(cfg, F64, np.random.default_rng(0))
    params32 = ParamSet(params64.shapes, np, np.dtype("float32"))
    params32.flat[...] = params64.flat
    batch = gc.make_batch(np.random.default_rng(1), cfg, 6, 7, 8)
    masks64 = draw_dropout_masks(cfg, F64, F64.generator(3), 6, 7, 8)
    assert len(masks64.encoder) == len(masks64.decoder) == 1  # both parts, one mask each
    masks32 = DropoutMasks(*([m.astype(np.float32) for m in ms] for ms in masks64))
    loss64, cache64 = seq2seq_forward(params64, cfg, batch, masks64)
    loss32, cache32 = seq2seq_forward(params32, cfg, batch, masks32)
    assert loss32.dtype == np.float32 and loss64.dtype == np.float64
    assert abs(float(loss32) - float(loss64)) <= 1e-6 * abs(float(loss64))
    g64, g32 = seq2seq_backward(1.0, cache64).params, seq2seq_backward(1.0, cache32).params
    assert set(g32) == set(g64)
    for name, g in g64.items():
        assert g32[name].dtype == np.float32, name
        scale = float(np.abs(g).max())
        assert scale > 0, name  # a gradient of zeros would agree vacuously
        assert float(np.abs(g32[name] - g).max()) <= 1e-5 * scale, name


@pytest.mark.parametrize("model", list(DECODERS))
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("reduction", ["seq", "token"])
def test_length_ordered_packed_batch_equals_the_plain_one(bidirectional, reduction, model):
    """Sorting rows by target length, skipping padded decoder steps and computing the dense
    layer and the loss on valid positions only changes nothing: same loss, same gradients
    (dropout included, since the masks are indexed by the batch's own rows and steps)."""
    cfg = ModelConfig(src_vocab_size=9, tgt_vocab_size=11, embed_size=4, num_hiddens=5,
                      num_layers=3, dropout=0.3, bidirectional=bidirectional, model=model)
    rng = np.random.default_rng(11)
    params = init_params(cfg, F64, rng)
    b = gc.make_batch(rng, cfg, 6, 5, 7)
    valid = np.array([3, 7, 0, 1, 7, 4])  # unsorted, with ties, a 0 and the full length
    batch = make_batch(b.src, b.src_valid_len, b.tgt, valid, bos=2)
    masks = draw_dropout_masks(cfg, F64, F64.generator(3), 6, 5, 7)
    loss_p, cache_p = seq2seq_forward(params, cfg, batch, masks, reduction, packed=True)
    loss_u, cache_u = seq2seq_forward(params, cfg, batch, masks, reduction, packed=False)
    assert abs(float(loss_p) - float(loss_u)) <= 1e-12 * abs(float(loss_u))
    gp, gu = seq2seq_backward(1.3, cache_p).params, seq2seq_backward(1.3, cache_u).params
    assert set(gp) == set(gu)
    for name in gu:
        np.testing.assert_allclose(gp[name], gu[name], rtol=0, atol=1e-12, err_msg=name)


def test_batch_with_no_valid_target_token():
    cfg = ModelConfig(src_vocab_size=6, tgt_vocab_size=7, embed_size=3, num_hiddens=4,
                      num_layers=2, dropout=0.0, bidirectional=False)
    rng = np.random.default_rng(0)
    params = init_params(cfg, F64, rng)
    b = gc.make_batch(rng, cfg, 3, 4, 5)
    batch = make_batch(b.src, b.src_valid_len, b.tgt, np.zeros(3, dtype=int), bos=2)
    loss, cache = seq2seq_forward(params, cfg, batch)
    grads = seq2seq_backward(1.0, cache).params
    assert float(loss) == 0.0
    assert all(np.all(g == 0) for g in grads.values())


def test_saturated_gates_are_exact_and_quiet():
    """Pre-activations far past float32's exp range: r and z come out exactly 0 or 1, with no
    overflow warning, and the step agrees with the textbook GRU computed in float64."""
    import warnings

    from minis2s.ops import State
    from minis2s.ops.gru import gru_layer_forward
    from minis2s.ops.recurrent import schedule

    rng = np.random.default_rng(0)
    N, H = 4, 3
    gi = rng.choice([-1e4, -50.0, -0.5, 0.0, 0.5, 50.0, 1e4], size=(N, 3 * H))
    h0 = rng.uniform(-1, 1, (N, H))
    w_hh = rng.uniform(-0.5, 0.5, (3 * H, H))
    b_hh = rng.uniform(-0.5, 0.5, 3 * H)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hs, cache = gru_layer_forward(gi.astype(np.float32), State(h0.astype(np.float32)),
                                      w_hh.astype(np.float32), b_hh.astype(np.float32),
                                      schedule(1, N, None, False))
    gh = h0 @ w_hh.T + b_hh
    with np.errstate(over="ignore"):
        r = 1 / (1 + np.exp(-(gi[:, :H] + gh[:, :H])))
        z = 1 / (1 + np.exp(-(gi[:, H:2 * H] + gh[:, H:2 * H])))
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    h = (1 - z) * n + z * h0
    np.testing.assert_allclose(cache.rz[0], r, atol=1e-6)
    np.testing.assert_allclose(cache.rz[1], z, atol=1e-6)
    np.testing.assert_allclose(hs, h, atol=1e-5)
    saturated = np.abs(gi[:, :2 * H]) == 1e4
    assert np.all(np.isin(np.concatenate([cache.rz[0], cache.rz[1]], axis=1)[saturated],
                          [0.0, 1.0]))


def _arrays(obj) -> list:
    """Every array inside a cache (NamedTuples, lists, tuples and dicts, nested)."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [a for part in obj for a in _arrays(part)]
    return []


@pytest.mark.parametrize("model", list(DECODERS))
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("packed", [True, False])
def test_a_backward_leaves_its_cache_intact(packed, cell, model):
    """Backward twice from one forward: bit-identical gradients, the cache unchanged."""
    cfg = ModelConfig(src_vocab_size=9, tgt_vocab_size=11, embed_size=4, num_hiddens=5,
                      num_layers=2, dropout=0.3, bidirectional=True, cell=cell, model=model)
    rng = np.random.default_rng(4)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 5, 4, 6)
    masks = draw_dropout_masks(cfg, F64, F64.generator(5), 5, 4, 6)
    _, cache = seq2seq_forward(params, cfg, batch, masks, packed=packed)
    before = [a.copy() for a in _arrays(cache)]
    first = seq2seq_backward(1.0, cache).params
    after = _arrays(cache)
    assert len(after) == len(before) > 20
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    second = seq2seq_backward(1.0, cache).params
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


@pytest.mark.parametrize("model", list(DECODERS))
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("packed", [True, False])
def test_a_batch_of_empty_targets_gives_every_gradient_as_zeros(packed, cell, model):
    """No target token: loss 0, and every parameter's gradient present, shaped like the
    parameter, and exactly zero (the decoder ran no step)."""
    cfg = ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3, num_hiddens=3,
                      num_layers=2, dropout=0.0, bidirectional=False, cell=cell, model=model)
    rng = np.random.default_rng(0)
    params = init_params(cfg, F64, rng)
    batch = make_batch(rng.integers(0, 7, (3, 4)), np.array([4, 2, 3]),
                       rng.integers(0, 6, (3, 5)), np.zeros(3, dtype=np.int64), bos=2)
    loss, cache = seq2seq_forward(params, cfg, batch, packed=packed)
    grads = seq2seq_backward(1.0, cache).params
    assert float(loss) == 0.0
    assert sorted(grads) == sorted(params)
    for name, g in grads.items():
        assert g.shape == params[name].shape and not np.any(g), name


def test_a_consumed_cache_refuses_another_backward():
    """``consume=True`` reuses the loss cache's buffer: the same gradients once, then any
    further backward on that cache is refused instead of giving wrong gradients."""
    from minis2s.ops import CacheConsumedError

    cfg = ModelConfig(src_vocab_size=9, tgt_vocab_size=11, embed_size=4, num_hiddens=5,
                      num_layers=2, dropout=0.0, bidirectional=False)
    rng = np.random.default_rng(6)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 4, 3, 5)
    _, cache = seq2seq_forward(params, cfg, batch)
    kept = seq2seq_backward(1.0, cache).params
    spent = seq2seq_backward(1.0, cache, consume=True).params
    for name in kept:
        np.testing.assert_array_equal(kept[name], spent[name], err_msg=name)
    for consume in (False, True):
        with pytest.raises(CacheConsumedError, match="consumed"):
            seq2seq_backward(1.0, cache, consume=consume)


def test_gru_layer_leaves_its_input_and_cache_intact():
    from minis2s.ops import State
    from minis2s.ops.gru import gru_layer_backward, gru_layer_forward
    from minis2s.ops.recurrent import schedule

    rng = np.random.default_rng(0)
    T, N, H = 4, 3, 5
    gi = rng.standard_normal((T * N, 3 * H))
    h0, w_hh, b_hh = (rng.standard_normal(s) for s in [(N, H), (3 * H, H), (3 * H,)])
    gi_before = gi.copy()
    hs, cache = gru_layer_forward(gi, State(h0), w_hh, b_hh, schedule(T, N, None, False))
    np.testing.assert_array_equal(gi, gi_before)
    saved = [np.copy(a) for a in cache[:5]]
    dhs = rng.standard_normal(hs.shape)
    one, two = gru_layer_backward(dhs, None, cache), gru_layer_backward(dhs, None, cache)
    for a, b in zip(saved, cache[:5]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one[0], two[0])
    assert isinstance(one[1], State) and one[1].c is None and two[1].c is None
    np.testing.assert_array_equal(one[1].h, two[1].h)
    for name in one[2]:
        np.testing.assert_array_equal(one[2][name], two[2][name])
