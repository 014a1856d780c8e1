"""The seed's GRU encoder-decoder, forward and backward by hand.

Derivation of the parts that are the model's own (the context concatenation and the
state hand-over): docs/derivations.md#seq2seq.

Encoder: embedding (V_src, E) -> GRU stack (L layers, 1 or 2 directions, H units).
Decoder: its initial state is the encoder's final state; its input at every step is
``[embedding of the previous token ; context]`` where the context is the encoder's
top-layer final state, the same at every step; a dense layer maps each output to the
target vocabulary.

Sizing to a bidirectional encoder: the encoder's layer k ends in a forward state and a
backward state (each H). The decoder has ``dirs * H`` units (H, or 2H when the encoder is
bidirectional); its layer k starts from ``[forward_k ; backward_k]`` and its context is
``[forward_{L-1} ; backward_{L-1}]``, so decoder layer 0 reads E + dirs * H features.

Parameters carry ``torch.nn`` names and shapes (see :func:`param_shapes`), so weights
move to and from a PyTorch model built from nn.Embedding, nn.GRU and nn.Linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .backend import Backend, array_module, to_numpy
from .ops import (
    dense_backward,
    dense_forward,
    gru_backward,
    gru_forward,
    masked_softmax_ce_backward,
    masked_softmax_ce_forward,
    reduction_scale,
    softmax_ce_backward,
    softmax_ce_forward,
)
from .params import ParamSet


@dataclass(frozen=True)
class ModelConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    embed_size: int = 32
    num_hiddens: int = 32
    num_layers: int = 2
    dropout: float = 0.1
    bidirectional: bool = False

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def decoder_hiddens(self) -> int:
        """Units of the decoder GRU: the width of one encoder layer's final state."""
        return self.num_directions * self.num_hiddens


def _gru_shapes(prefix, input_size, hidden, layers, dirs) -> dict:
    shapes = {}
    for k in range(layers):
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            d_in = input_size if k == 0 else hidden * dirs
            shapes[f"{prefix}weight_ih{sfx}"] = (3 * hidden, d_in)
            shapes[f"{prefix}weight_hh{sfx}"] = (3 * hidden, hidden)
            shapes[f"{prefix}bias_ih{sfx}"] = (3 * hidden,)
            shapes[f"{prefix}bias_hh{sfx}"] = (3 * hidden,)
    return shapes


def param_shapes(cfg: ModelConfig) -> dict[str, tuple]:
    """Every parameter's name and shape, in PyTorch's state_dict order."""
    E, H, Hd, L = cfg.embed_size, cfg.num_hiddens, cfg.decoder_hiddens, cfg.num_layers
    shapes = {"encoder.embedding.weight": (cfg.src_vocab_size, E)}
    shapes.update(_gru_shapes("encoder.rnn.", E, H, L, cfg.num_directions))
    shapes["decoder.embedding.weight"] = (cfg.tgt_vocab_size, E)
    shapes.update(_gru_shapes("decoder.rnn.", E + Hd, Hd, L, 1))
    shapes["decoder.dense.weight"] = (cfg.tgt_vocab_size, Hd)
    shapes["decoder.dense.bias"] = (cfg.tgt_vocab_size,)
    return shapes


def init_params(cfg: ModelConfig, backend: Backend, rng: np.random.Generator) -> ParamSet:
    """Initialise as the seed does: Xavier-uniform GRU and dense weight matrices, N(0, 1)
    embeddings, PyTorch's default U(-1/sqrt(fan), 1/sqrt(fan)) biases.

    Draws come from ``rng`` (a NumPy generator, in name order) so that the same seed gives
    the same initial parameters on every backend.
    """
    params = ParamSet(param_shapes(cfg), backend.xp, backend.dtype)
    for name, shape in params.shapes.items():
        if name.endswith("embedding.weight"):
            value = rng.standard_normal(shape)
        elif ".weight" in name:  # GRU weight_ih/weight_hh and dense weight: Xavier uniform
            fan_out, fan_in = shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            value = rng.uniform(-bound, bound, shape)
        elif name.startswith("decoder.dense."):  # nn.Linear bias: 1/sqrt(in_features)
            bound = 1.0 / np.sqrt(params.shapes["decoder.dense.weight"][1])
            value = rng.uniform(-bound, bound, shape)
        else:  # nn.GRU bias: 1/sqrt(hidden_size)
            bound = 1.0 / np.sqrt(shape[0] // 3)
            value = rng.uniform(-bound, bound, shape)
        params[name] = value
    return params


def _scope(params, prefix: str) -> dict:
    """The entries of ``params`` under ``prefix``, with the prefix removed."""
    n = len(prefix)
    return {k[n:]: v for k, v in params.items() if k.startswith(prefix)}


class DropoutMasks(NamedTuple):
    encoder: list | None  # L - 1 masks (T_src, N, dirs * H)
    decoder: list | None  # L - 1 masks (T_tgt, N, dirs * H)


def draw_dropout_masks(cfg: ModelConfig, backend: Backend, gen, N: int, T_src: int,
                       T_tgt: int) -> DropoutMasks:
    """Masks for one training batch, drawn from the caller's generator ``gen``."""
    if cfg.dropout <= 0 or cfg.num_layers < 2:
        return DropoutMasks(None, None)
    W = cfg.decoder_hiddens
    enc = [backend.dropout_mask(gen, (T_src, N, W), cfg.dropout)
           for _ in range(cfg.num_layers - 1)]
    dec = [backend.dropout_mask(gen, (T_tgt, N, W), cfg.dropout)
           for _ in range(cfg.num_layers - 1)]
    return DropoutMasks(enc, dec)


# ----------------------------------------------------------------------------- encoder


class EncoderCache(NamedTuple):
    gru: Any
    num_directions: int


def encoder_forward(params, cfg: ModelConfig, src, masks=None):
    """src (N, T) ids -> ``(state, context), cache``.

    state (L, N, dirs * H): the decoder's initial state; context (N, dirs * H) = state[-1].
    """
    # layer 0 reads the embeddings of src.T (T, N): lookup and projection fused
    (_, h_n), gru_cache = gru_forward(src.T, _scope(params, "encoder.rnn."), cfg.num_layers,
                                      cfg.bidirectional, None, masks,
                                      embedding=params["encoder.embedding.weight"])
    L, dirs, (_, N, H) = cfg.num_layers, cfg.num_directions, h_n.shape
    # (L * dirs, N, H) -> (L, N, dirs * H): layer k's directions side by side
    state = h_n.reshape(L, dirs, N, H).transpose(0, 2, 1, 3).reshape(L, N, dirs * H)
    return (state, state[-1]), EncoderCache(gru_cache, dirs)


def encoder_backward(dstate, cache: EncoderCache):
    """dstate (L, N, dirs * H), the gradient of the final state -> grads by full name."""
    L, N, W = dstate.shape
    dirs = cache.num_directions
    H = W // dirs
    dh_n = dstate.reshape(L, N, dirs, H).transpose(0, 2, 1, 3).reshape(L * dirs, N, H)
    demb, _, _, g_rnn = gru_backward(None, dh_n, cache.gru)  # outputs unused: only h_n
    grads = {"encoder.rnn." + k: v for k, v in g_rnn.items()}
    grads["encoder.embedding.weight"] = demb
    return grads


# ----------------------------------------------------------------------------- decoder


class DecoderCache(NamedTuple):
    gru: Any
    dense: Any
    packed: bool  # logits are (M, V) rows, not (N, T, V)


def decoder_forward(params, cfg: ModelConfig, tgt_in, state, context, masks=None):
    """tgt_in (N, T) previous tokens -> ``(logits (N, T, V), h_n (L, N, Hd)), cache``."""
    # each step reads [embedding of tgt_in_t ; context]; the context is the GRU's static
    # input, projected once per sequence
    (out, h_n), gru_cache = gru_forward(tgt_in.T, _scope(params, "decoder.rnn."),
                                        cfg.num_layers, False, state, masks, static=context,
                                        embedding=params["decoder.embedding.weight"])
    logits, dense_cache = dense_forward(out, params["decoder.dense.weight"],
                                        params["decoder.dense.bias"])  # (T, N, V)
    cache = DecoderCache(gru_cache, dense_cache, False)
    return (logits.transpose(1, 0, 2), h_n), cache


def decoder_forward_packed(params, cfg: ModelConfig, ids, batch_sizes, state, context,
                           masks=None):
    """The decoder on packed rows only: ids (M,) with ``batch_sizes`` per step (rows sorted
    by length, longest first) -> logits (M, V) and the cache. Padding costs nothing."""
    (out, _), gru_cache = gru_forward(ids, _scope(params, "decoder.rnn."), cfg.num_layers,
                                      False, state, masks, static=context,
                                      batch_sizes=batch_sizes,
                                      embedding=params["decoder.embedding.weight"])
    logits, dense_cache = dense_forward(out, params["decoder.dense.weight"],
                                        params["decoder.dense.bias"])  # (M, V)
    return logits, DecoderCache(gru_cache, dense_cache, True)


def decoder_backward(dlogits, cache: DecoderCache):
    """dlogits (N, T, V), or (M, V) when packed -> ``(dstate, dcontext, grads)``."""
    if not cache.packed:
        dlogits = dlogits.transpose(1, 0, 2)
    dout, g_dense = dense_backward(dlogits, cache.dense)
    demb, dstate, dcontext, g_rnn = gru_backward(dout, None, cache.gru)
    grads = {"decoder.embedding.weight": demb}
    grads.update({"decoder.rnn." + k: v for k, v in g_rnn.items()})
    grads.update({"decoder.dense." + k: v for k, v in g_dense.items()})
    return dstate, dcontext, grads


# ----------------------------------------------------------------------- the whole model


class Packing(NamedTuple):
    """Rows of a batch sorted by target length, and its valid positions, step-major."""

    order: Any  # (N,) batch rows, longest target first
    batch_sizes: list  # rows still running at each step t < max(valid_len)
    steps: Any  # (M,) step t of each valid position
    rows: Any  # (M,) original batch row of each valid position


def pack(tgt_valid_len, xp) -> Packing:
    """Where the M = sum(valid_len) valid target positions of a batch go when packed."""
    lens = to_numpy(tgt_valid_len).astype(np.int64)
    order = np.argsort(-lens, kind="stable")
    lens = lens[order]
    T_eff = int(lens[0]) if lens.size else 0
    running = np.arange(T_eff)[:, None] < lens[None, :]  # (T_eff, N): step-major
    steps, sorted_rows = np.nonzero(running)
    return Packing(xp.asarray(order), running.sum(axis=1).tolist(), xp.asarray(steps),
                   xp.asarray(order[sorted_rows]))


class Seq2SeqCache(NamedTuple):
    encoder: EncoderCache
    decoder: DecoderCache
    loss: Any
    packed: bool


def seq2seq_forward(params, cfg: ModelConfig, src, tgt_in, tgt, tgt_valid_len,
                    masks: DropoutMasks | None = None, reduction: str = "seq",
                    packed: bool = True):
    """Teacher-forced loss of a batch: src (N, T_src), tgt_in and tgt (N, T_tgt).

    ``masks`` (from :func:`draw_dropout_masks`) are indexed by the batch's own rows and
    steps. With ``packed`` (the default) the decoder, the dense layer and the loss run on
    the valid target positions only, rows sorted by length: the decoder is causal and the
    loss masked, so the loss and the gradients are those of the plain (``packed=False``)
    computation over every padded position, which the seed's model does.
    """
    masks = masks or DropoutMasks(None, None)
    if not packed:
        (state, context), enc_cache = encoder_forward(params, cfg, src, masks.encoder)
        (logits, _), dec_cache = decoder_forward(params, cfg, tgt_in, state, context,
                                                 masks.decoder)
        loss, loss_cache = masked_softmax_ce_forward(logits, tgt, tgt_valid_len, reduction)
        return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, False)
    xp = array_module(tgt)
    p = pack(tgt_valid_len, xp)
    enc_masks = None if masks.encoder is None else [m[:, p.order] for m in masks.encoder]
    dec_masks = None if masks.decoder is None else [m[p.steps, p.rows] for m in masks.decoder]
    (state, context), enc_cache = encoder_forward(params, cfg, src[p.order], enc_masks)
    logits, dec_cache = decoder_forward_packed(params, cfg, tgt_in[p.rows, p.steps],
                                               p.batch_sizes, state, context, dec_masks)
    M, T = logits.shape[0], tgt.shape[1]
    weights = xp.full(M, reduction_scale(reduction, T, M), dtype=logits.dtype)
    loss, loss_cache = softmax_ce_forward(logits, tgt[p.rows, p.steps], weights,
                                          overwrite=True)
    return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, True)


def seq2seq_backward(dloss, cache: Seq2SeqCache) -> dict:
    """Gradients of every parameter by name: the forward read in reverse."""
    if cache.packed:
        dlogits = softmax_ce_backward(dloss, cache.loss, overwrite=True)
    else:
        dlogits = masked_softmax_ce_backward(dloss, cache.loss)
    dstate, dcontext, grads = decoder_backward(dlogits, cache.decoder)
    dstate[-1] += dcontext  # the context is state[-1]: its gradient joins the state's
    grads.update(encoder_backward(dstate, cache.encoder))
    return grads
