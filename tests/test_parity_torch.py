"""minis2s against the same model in PyTorch with identical weights, in float64."""

import os

import numpy as np
import pytest

if os.environ.get("MINIS2S_REQUIRE_TORCH"):
    import torch  # CI sets this: a missing PyTorch must fail, not skip
else:
    torch = pytest.importorskip("torch")

from minis2s import gradcheck as gc  # noqa: E402
from minis2s.backend import get_backend, map_arrays  # noqa: E402
from minis2s.model import (  # noqa: E402
    DECODERS,
    DropoutMasks,
    ModelConfig,
    draw_dropout_masks,
    encoder_forward,
    init_params,
    seq2seq_backward,
    seq2seq_forward,
)
from minis2s.model.attention import AttentionMasks  # noqa: E402
from minis2s.ops import CELLS, State  # noqa: E402
from minis2s.optim import Adam, clip_grad_norm_  # noqa: E402
from minis2s.torch_reference import (  # noqa: E402
    TORCH_DECODERS,
    TorchSeq2Seq,
    masked_ce,
    seed_grad_clipping,
)

F64 = get_backend("numpy", "float64")
# every decoder that has a PyTorch twin, with every cell
MODEL_NAMES = tuple(m for m in DECODERS if m in TORCH_DECODERS)
CELL_NAMES = tuple(CELLS)


def _config(shape, **kw):
    """A ModelConfig from (src vocab, tgt vocab, embed, hiddens, layers, dropout,
    bidirectional)."""
    Vs, Vt, E, H, L, p, bi = shape
    return ModelConfig(src_vocab_size=Vs, tgt_vocab_size=Vt, embed_size=E, num_hiddens=H,
                       num_layers=L, dropout=p, bidirectional=bi, **kw)


CONFIGS = [_config(shape, cell=cell, model=model)
           for model in MODEL_NAMES for cell in CELL_NAMES for shape in [
               (11, 13, 5, 6, 1, 0.0, False),
               (11, 13, 5, 6, 2, 0.0, False),
               (9, 12, 4, 5, 2, 0.0, True),
               (9, 12, 4, 3, 3, 0.0, True),
           ]]
DROPOUT_CONFIGS = [_config(shape, cell=cell, model=model)
                   for model in MODEL_NAMES for cell in CELL_NAMES for shape in [
                       (11, 13, 5, 6, 2, 0.3, False),
                       (11, 13, 5, 6, 3, 0.3, False),
                       (9, 12, 4, 5, 2, 0.3, True),
                       (9, 12, 4, 3, 3, 0.3, True),
                   ]]

# the model switches of d2l's exercises: a decoder of other units than the encoder's state
# (smaller, and larger, than the bidirectional encoder's 2H = 6), a deep output, both
SWITCH_CONFIGS = [_config((9, 12, 4, 3, 2, 0.0, True), cell=cell, model=model, **switch)
                  for model in MODEL_NAMES for cell in CELL_NAMES for switch in (
                      {"decoder_hiddens": 4}, {"output_layer": "deep"},
                      {"decoder_hiddens": 7, "output_layer": "deep"})]


def name(cfg):
    switches = (f"-Wd{cfg.decoder_hiddens}" if cfg.decoder_hiddens else "") + (
        "" if cfg.output_layer == "dense" else f"-{cfg.output_layer}")
    return f"{cfg.model}-{cfg.cell}-L{cfg.num_layers}-bi{cfg.bidirectional}{switches}"


def test_every_decoder_and_cell_is_covered():
    """The tables above come from the registries: no decoder with a PyTorch twin and no
    cell is left out."""
    assert "seq2seq" in MODEL_NAMES and "attention" in MODEL_NAMES
    assert {(c.model, c.cell) for c in CONFIGS} == {
        (m, c) for m in MODEL_NAMES for c in CELLS}
    assert {(c.model, c.cell) for c in DROPOUT_CONFIGS} == {
        (m, c) for m in MODEL_NAMES for c in CELLS}
    assert {(c.model, c.cell) for c in SWITCH_CONFIGS} == {
        (m, c) for m in MODEL_NAMES for c in CELLS}


def assert_same_state(mine, theirs):
    """A model State (h, and c for the LSTM) against torch's (a tensor, or a pair)."""
    assert isinstance(mine, State), type(mine)
    if mine.c is not None:
        assert isinstance(theirs, tuple) and len(theirs) == 2
        for a, b in zip(mine, theirs):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=1e-10)
    else:
        assert not isinstance(theirs, tuple)
        np.testing.assert_allclose(mine.h, theirs.detach().numpy(), rtol=0, atol=1e-10)


def torch_model(cfg, params):
    net = TorchSeq2Seq(cfg).double()
    state = {k: torch.tensor(np.asarray(v)) for k, v in params.items()}
    net.load_state_dict(state, strict=True)  # the same names and shapes, or this fails
    return net


def padded_logits(params, cfg, src, src_valid_len, tgt_in, masks=None):
    """minis2s's teacher-forced logits (N, T, V) over the padded target, the encoder and
    the decoder run one after the other, and the encoder's final state."""
    masks = masks or DropoutMasks()
    encoded, _ = encoder_forward(params, cfg, src, src_valid_len, masks=masks.encoder)
    logits, _ = cfg.decoder.forward(params, cfg, tgt_in, encoded, masks.decoder)
    assert logits.shape == (*tgt_in.shape, cfg.tgt_vocab_size)
    return logits, encoded.state


def assert_parity(cfg, reduction, seed=42):
    """Loss, logits, the encoder's final state and every gradient of minis2s and of the
    same model in torch.nn, from identical weights and one batch, to 1e-10."""
    rng = np.random.default_rng(seed)
    params = init_params(cfg, F64, rng)
    N, T_src, T_tgt = 5, 6, 7
    batch = gc.make_batch(rng, cfg, N, T_src, T_tgt)
    src, tgt_in, tgt, valid = batch.src, batch.tgt_in, batch.tgt, batch.tgt_valid_len
    src_valid = batch.src_valid_len

    loss, cache = seq2seq_forward(params, cfg, batch, reduction=reduction)
    grads = seq2seq_backward(1.0, cache).params
    logits, state = padded_logits(params, cfg, src, src_valid, tgt_in)

    net = torch_model(cfg, params)
    t_logits = net(torch.tensor(src), torch.tensor(tgt_in),
                   src_valid_len=torch.tensor(src_valid))
    t_loss = masked_ce(t_logits, torch.tensor(tgt), torch.tensor(valid), reduction)
    t_loss.backward()

    assert abs(float(loss) - t_loss.item()) <= 1e-10 * max(1.0, abs(t_loss.item()))
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=0, atol=1e-10)
    assert_same_state(state, net.encode(torch.tensor(src))[0])
    named = dict(net.named_parameters())
    assert set(named) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(g, named[name].grad.numpy(), rtol=0, atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("cfg", CONFIGS, ids=name)
@pytest.mark.parametrize("reduction", ["seq", "token"])
def test_parity_loss_outputs_and_gradients(cfg, reduction):
    assert_parity(cfg, reduction)


@pytest.mark.parametrize("cfg", SWITCH_CONFIGS, ids=name)
def test_parity_with_a_bridge_or_a_deep_output(cfg):
    """d2l's exercises as model switches: a decoder of other units than the encoder's state
    (the bridge, an nn.Linear under tanh in torch), a deep output layer (an nn.Linear under
    tanh before the dense one), and both at once."""
    assert cfg.decoder_hiddens is not None or cfg.output_layer == "deep"
    assert_parity(cfg, "seq", seed=4)


@pytest.mark.parametrize("cfg", DROPOUT_CONFIGS,
                         ids=name)
@pytest.mark.parametrize("reduction", ["seq", "token"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
def test_parity_with_dropout_masks(cfg, reduction, packed):
    """Dropout > 0 with the same masks on both sides: loss, logits, every gradient."""
    rng = np.random.default_rng(7)
    params = init_params(cfg, F64, rng)
    N, T_src, T_tgt = 5, 6, 7
    batch = gc.make_batch(rng, cfg, N, T_src, T_tgt)
    src, tgt_in, tgt, valid = batch.src, batch.tgt_in, batch.tgt, batch.tgt_valid_len
    src_valid = batch.src_valid_len
    masks = draw_dropout_masks(cfg, F64, F64.generator(11), N, T_src, T_tgt)
    L, W = cfg.num_layers, cfg.decoder_units
    scaled = {0.0, 1.0 / (1.0 - cfg.dropout)}
    layers, extra = masks.decoder, []
    if isinstance(layers, AttentionMasks):  # attention drops its weights too
        assert masks.decoder.weights.shape == (T_tgt, N, T_src)
        layers, extra = masks.decoder.layers, [masks.decoder.weights]
    assert len(masks.encoder) == len(layers) == L - 1
    for m, T in [(m, T_src) for m in masks.encoder] + [(m, T_tgt) for m in layers]:
        assert m.shape == (T, N, W)
        assert set(np.unique(m)) == scaled  # drops and keeps
    for m in extra:
        assert set(np.unique(m)) == scaled

    loss, cache = seq2seq_forward(params, cfg, batch, masks, reduction, packed)
    grads = seq2seq_backward(1.0, cache).params
    logits, state = padded_logits(params, cfg, src, src_valid, tgt_in, masks)
    plain_loss, _ = seq2seq_forward(params, cfg, batch, None, reduction, packed)
    assert abs(float(loss) - float(plain_loss)) > 1e-6  # the masks change the result

    net = torch_model(cfg, params).train()  # nn.GRU's own dropout must play no part
    t_logits = net(torch.tensor(src), torch.tensor(tgt_in), masks, torch.tensor(src_valid))
    t_loss = masked_ce(t_logits, torch.tensor(tgt), torch.tensor(valid), reduction)
    t_loss.backward()

    assert abs(float(loss) - t_loss.item()) <= 1e-10 * max(1.0, abs(t_loss.item()))
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=0, atol=1e-10)
    assert_same_state(state, net.encode(torch.tensor(src), masks)[0])
    named = dict(net.named_parameters())
    assert set(named) == set(grads)
    for name, g in grads.items():
        assert named[name].grad is not None, name
        np.testing.assert_allclose(g, named[name].grad.numpy(), rtol=0, atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("cfg", DROPOUT_CONFIGS[1::2],
                         ids=name)
def test_torch_layerwise_gru_matches_nn_gru(cfg):
    """With masks of ones (or none), the layer-by-layer stacks give nn.GRU's own result."""
    rng = np.random.default_rng(5)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 4, 5, 6)
    src, tgt_in = batch.src, batch.tgt_in
    net = torch_model(cfg, params).eval()  # eval: the plain nn.GRU drops nothing
    src, tgt_in = torch.tensor(src), torch.tensor(tgt_in)
    # every mask the model draws for this batch (the decoder's own, whatever they are),
    # as ones
    ones = map_arrays(np.ones_like, draw_dropout_masks(cfg, F64, F64.generator(0), 4, 5, 6))
    assert ones.encoder is not None and ones.decoder is not None
    assert len(ones.encoder) == cfg.num_layers - 1
    plain = net(src, tgt_in).detach().numpy()
    for masks in (ones, DropoutMasks(None, None)):
        np.testing.assert_allclose(net(src, tgt_in, masks).detach().numpy(), plain,
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("cfg", CONFIGS[1::4], ids=name)
def test_parity_adam_with_clipping(cfg):
    """Five steps of clip-then-Adam match torch.optim.Adam after the seed's clipping."""
    rng = np.random.default_rng(3)
    params = init_params(cfg, F64, rng)
    net = torch_model(cfg, params)
    opt, t_opt = Adam(params, lr=0.005), torch.optim.Adam(net.parameters(), lr=0.005)
    grads = params.zeros_like()
    for _ in range(5):
        batch = gc.make_batch(rng, cfg, 4, 5, 6)
        src, tgt_in, tgt, valid = batch.src, batch.tgt_in, batch.tgt, batch.tgt_valid_len
        loss, cache = seq2seq_forward(params, cfg, batch)
        grads.assign(seq2seq_backward(1.0, cache).params)
        norm = clip_grad_norm_(grads, 1.0)
        opt.step(grads)

        t_opt.zero_grad()
        masked_ce(net(torch.tensor(src), torch.tensor(tgt_in),
                      src_valid_len=torch.tensor(batch.src_valid_len)),
                  torch.tensor(tgt), torch.tensor(valid)).backward()
        t_norm = seed_grad_clipping(net, 1.0)
        t_opt.step()
        assert abs(norm - t_norm) <= 1e-10 * max(1.0, norm)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(params[name], p.detach().numpy(), rtol=0, atol=1e-10,
                                   err_msg=name)


def test_parity_initialisation_ranges():
    """Xavier-uniform bounds for weight matrices, PyTorch's default bias ranges."""
    cfg = ModelConfig(src_vocab_size=50, tgt_vocab_size=60, embed_size=16, num_hiddens=20,
                      num_layers=2, dropout=0.1, bidirectional=True)
    params = init_params(cfg, F64, np.random.default_rng(0))
    for name, v in params.items():
        v = np.asarray(v)
        if name.endswith("embedding.weight"):
            assert abs(v.std() - 1.0) < 0.1 and abs(v.mean()) < 0.1
        elif ".weight" in name:
            bound = np.sqrt(6.0 / sum(v.shape))
            assert np.abs(v).max() <= bound and np.abs(v).max() > 0.9 * bound
        elif name == "decoder.dense.bias":
            assert np.abs(v).max() <= 1 / np.sqrt(cfg.decoder_units)
        else:
            H = v.shape[0] // 3
            assert np.abs(v).max() <= 1 / np.sqrt(H) and np.abs(v).max() > 0.8 / np.sqrt(H)


ATTENTION_CONFIGS = [_config(shape, cell=cell, model="attention")
                     for cell, shape in [
                         ("gru", (11, 13, 5, 6, 1, 0.0, False)),
                         ("gru", (11, 13, 5, 6, 2, 0.3, False)),
                         ("gru", (9, 12, 4, 5, 2, 0.3, True)),
                         ("lstm", (9, 12, 4, 3, 2, 0.3, True)),
                         ("lstm", (11, 13, 5, 6, 1, 0.3, False)),
                         ("rnn", (9, 12, 4, 5, 2, 0.3, False)),
                     ]]


@pytest.mark.parametrize("cfg", ATTENTION_CONFIGS, ids=name)
@pytest.mark.parametrize("reduction", ["seq", "token"])
def test_attention_parity(cfg, reduction):
    """The attention model against d2l's written with torch.nn (a loop over decoder
    steps): loss, logits and every gradient to 1e-10, padded sources, the same dropout
    masks (between layers and on the attention weights) on both sides."""
    from minis2s.model.attention import attention_decoder_forward, attention_weights

    rng = np.random.default_rng(17)
    params = init_params(cfg, F64, rng)
    N, T_src, T_tgt = 5, 6, 7
    batch = gc.make_batch(rng, cfg, N, T_src, T_tgt)
    assert batch.src_valid_len.min() < T_src  # some sources are padded
    masks = draw_dropout_masks(cfg, F64, F64.generator(3), N, T_src, T_tgt)
    if cfg.dropout:
        assert isinstance(masks.decoder, AttentionMasks)
        assert masks.decoder.weights is not None and (masks.decoder.weights == 0).any()
    loss, cache = seq2seq_forward(params, cfg, batch, masks, reduction)
    grads = seq2seq_backward(1.0, cache).params
    encoded, _ = encoder_forward(params, cfg, batch.src, batch.src_valid_len,
                                 masks=masks.encoder)
    logits, cache = attention_decoder_forward(params, cfg, batch.tgt_in, encoded,
                                              masks.decoder)
    weights = attention_weights(cache)
    assert weights.shape == (N, T_tgt, T_src)
    past = np.arange(T_src)[None, None, :] >= batch.src_valid_len[:, None, None]
    assert np.all(weights[np.broadcast_to(past, weights.shape)] == 0.0)  # exactly 0

    net = torch_model(cfg, params).train()
    t_masks = masks if cfg.dropout else None
    if t_masks is None:
        net.eval()
    t_logits = net(torch.tensor(batch.src), torch.tensor(batch.tgt_in), t_masks,
                   torch.tensor(batch.src_valid_len))
    t_loss = masked_ce(t_logits, torch.tensor(batch.tgt), torch.tensor(batch.tgt_valid_len),
                       reduction)
    t_loss.backward()
    assert abs(float(loss) - t_loss.item()) <= 1e-10 * max(1.0, abs(t_loss.item()))
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=0, atol=1e-10)
    named = dict(net.named_parameters())
    assert set(named) == set(grads) and list(named) == list(params)  # names and order
    for key, g in grads.items():
        np.testing.assert_allclose(g, named[key].grad.numpy(), rtol=0, atol=1e-10,
                                   err_msg=key)
