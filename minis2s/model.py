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
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .backend import Backend, array_module
from .ops import (
    dense_backward,
    dense_forward,
    embed_project_backward,
    embed_project_forward,
    gru_backward,
    gru_forward,
    gru_param_shapes,
    masked_softmax_ce_backward,
    masked_softmax_ce_forward,
    param_suffix,
    reduction_scale,
    repeat_steps_add_backward,
    repeat_steps_add_forward,
    softmax_ce_backward,
    softmax_ce_forward,
)
from .params import ParamSet

if TYPE_CHECKING:  # the model reads a batch's fields; it never builds one
    from .data.batches import Batch


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


def param_shapes(cfg: ModelConfig) -> dict[str, tuple]:
    """Every parameter's name and shape, in PyTorch's state_dict order."""
    E, H, Hd, L = cfg.embed_size, cfg.num_hiddens, cfg.decoder_hiddens, cfg.num_layers
    shapes = {"encoder.embedding.weight": (cfg.src_vocab_size, E)}
    shapes.update(gru_param_shapes(E, H, L, cfg.num_directions, prefix="encoder.rnn."))
    shapes["decoder.embedding.weight"] = (cfg.tgt_vocab_size, E)
    shapes.update(gru_param_shapes(E + Hd, Hd, L, 1, prefix="decoder.rnn."))
    shapes["decoder.dense.weight"] = (cfg.tgt_vocab_size, Hd)
    shapes["decoder.dense.bias"] = (cfg.tgt_vocab_size,)
    return shapes


def init_params(cfg: ModelConfig, backend: Backend, rng: np.random.Generator) -> ParamSet:
    """Initialise as the seed does: Xavier-uniform GRU and dense weight matrices, N(0, 1)
    embeddings, PyTorch's default U(-1/sqrt(fan), 1/sqrt(fan)) biases.

    Draws come from ``rng`` (a NumPy generator, in name order) so that the same random
    seed gives the same initial parameters on every backend.
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
    embedded: list  # per direction: the EmbedProjectCache of layer 0's projections
    gru: Any
    num_directions: int


def encoder_forward(params, cfg: ModelConfig, src, masks=None):
    """src (N, T) ids -> ``(state, context), cache``.

    state (L, N, dirs * H): the decoder's initial state; context (N, dirs * H) = state[-1].
    """
    ids = src.T  # (T, N): time-major, as the GRU stack reads
    emb = params["encoder.embedding.weight"]
    proj, embedded = [], []
    for d in range(cfg.num_directions):  # layer 0's input: the embeddings, projected
        sfx = param_suffix(0, d)
        gi, ecache = embed_project_forward(ids, emb, params["encoder.rnn.weight_ih" + sfx],
                                           params["encoder.rnn.bias_ih" + sfx])
        proj.append(gi)  # (T, N, 3H)
        embedded.append(ecache)
    (_, h_n), gru_cache = gru_forward(None, _scope(params, "encoder.rnn."), cfg.num_layers,
                                      cfg.bidirectional, None, masks, input_proj=proj)
    L, dirs, (_, N, H) = cfg.num_layers, cfg.num_directions, h_n.shape
    # (L * dirs, N, H) -> (L, N, dirs * H): layer k's directions side by side
    state = h_n.reshape(L, dirs, N, H).transpose(0, 2, 1, 3).reshape(L, N, dirs * H)
    return (state, state[-1]), EncoderCache(embedded, gru_cache, dirs)


def encoder_backward(dstate, cache: EncoderCache):
    """dstate (L, N, dirs * H), the gradient of the final state -> grads by full name."""
    L, N, W = dstate.shape
    dirs = cache.num_directions
    H = W // dirs
    dh_n = dstate.reshape(L, N, dirs, H).transpose(0, 2, 1, 3).reshape(L * dirs, N, H)
    dproj, _, g_rnn = gru_backward(None, dh_n, cache.gru)  # outputs unused: only h_n
    grads = {"encoder.rnn." + k: v for k, v in g_rnn.items()}
    demb = None
    for d, ecache in enumerate(cache.embedded):
        ge = embed_project_backward(dproj[d], ecache)
        sfx = param_suffix(0, d)
        grads["encoder.rnn.weight_ih" + sfx] = ge["weight"]
        grads["encoder.rnn.bias_ih" + sfx] = ge["bias"]
        demb = ge["embedding"] if demb is None else demb + ge["embedding"]
    grads["encoder.embedding.weight"] = demb  # both directions read the same embeddings
    return grads


# ----------------------------------------------------------------------------- decoder


class DecoderInputCache(NamedTuple):
    embedded: Any  # EmbedProjectCache of the ids' share
    repeat: Any  # RepeatStepsCache of the context's share
    context: Any  # (N, Hd)
    w_context: Any  # (3Hd, Hd): the context's columns of weight_ih_l0


def decoder_input_forward(params, cfg: ModelConfig, ids, context, batch_sizes=None):
    """Layer 0's input projections of the decoder, ``[emb(y_t) ; context] W_ihᵀ + b_ih``,
    without forming the concatenation: the embedding's share through the fused lookup and
    the context's share ``context W_cᵀ`` once per sequence, added at each of its steps.

    ids (T, N) padded or (M,) packed by ``batch_sizes``; context (N, Hd).
    Returns projections (T, N, 3Hd) or (M, 3Hd) and the cache.
    """
    w_ih, E = params["decoder.rnn.weight_ih_l0"], cfg.embed_size
    gi, ecache = embed_project_forward(ids, params["decoder.embedding.weight"], w_ih[:, :E],
                                       params["decoder.rnn.bias_ih_l0"])
    w_c = w_ih[:, E:]
    gi, rcache = repeat_steps_add_forward(gi, context @ w_c.T, batch_sizes)
    return gi, DecoderInputCache(ecache, rcache, context, w_c)


def decoder_input_backward(dgi, cache: DecoderInputCache):
    """-> ``(dcontext, grads)`` with the embedding's, ``weight_ih_l0``'s and
    ``bias_ih_l0``'s gradients by full name."""
    xp = array_module(dgi)
    ge = embed_project_backward(dgi, cache.embedded)
    dsp = repeat_steps_add_backward(dgi, cache.repeat)  # (N, 3Hd): context W_cᵀ's gradient
    grads = {"decoder.embedding.weight": ge["embedding"],
             "decoder.rnn.weight_ih_l0": xp.concatenate([ge["weight"], dsp.T @ cache.context],
                                                        axis=1),
             "decoder.rnn.bias_ih_l0": ge["bias"]}
    return dsp @ cache.w_context, grads


class DecoderCache(NamedTuple):
    inputs: DecoderInputCache
    gru: Any
    dense: Any
    packed: bool  # logits are (M, V) rows, not (N, T, V)


def decoder_forward(params, cfg: ModelConfig, tgt_in, state, context, masks=None):
    """tgt_in (N, T) previous tokens -> ``(logits (N, T, V), h_n (L, N, Hd)), cache``.

    Each step reads ``[embedding of tgt_in_t ; context]``, starting from ``state``."""
    gi, in_cache = decoder_input_forward(params, cfg, tgt_in.T, context)
    (out, h_n), gru_cache = gru_forward(None, _scope(params, "decoder.rnn."), cfg.num_layers,
                                        False, state, masks, input_proj=[gi])
    logits, dense_cache = dense_forward(out, params["decoder.dense.weight"],
                                        params["decoder.dense.bias"])  # (T, N, V)
    cache = DecoderCache(in_cache, gru_cache, dense_cache, False)
    return (logits.transpose(1, 0, 2), h_n), cache


def decoder_forward_packed(params, cfg: ModelConfig, ids, batch_sizes, state, context,
                           masks=None):
    """The decoder on packed rows only: ids (M,) with ``batch_sizes`` per step (rows sorted
    by length, longest first) -> logits (M, V) and the cache. Padding costs nothing."""
    gi, in_cache = decoder_input_forward(params, cfg, ids, context, batch_sizes)
    (out, _), gru_cache = gru_forward(None, _scope(params, "decoder.rnn."), cfg.num_layers,
                                      False, state, masks, batch_sizes=batch_sizes,
                                      input_proj=[gi])
    logits, dense_cache = dense_forward(out, params["decoder.dense.weight"],
                                        params["decoder.dense.bias"])  # (M, V)
    return logits, DecoderCache(in_cache, gru_cache, dense_cache, True)


def decoder_backward(dlogits, cache: DecoderCache):
    """dlogits (N, T, V), or (M, V) when packed -> ``(dstate, dcontext, grads)``."""
    if not cache.packed:
        dlogits = dlogits.transpose(1, 0, 2)
    dout, g_dense = dense_backward(dlogits, cache.dense)
    (dgi,), dstate, g_rnn = gru_backward(dout, None, cache.gru)
    dcontext, grads = decoder_input_backward(dgi, cache.inputs)
    grads.update({"decoder.rnn." + k: v for k, v in g_rnn.items()})
    grads.update({"decoder.dense." + k: v for k, v in g_dense.items()})
    return dstate, dcontext, grads


# ----------------------------------------------------------------------- the whole model


class Seq2SeqCache(NamedTuple):
    encoder: EncoderCache
    decoder: DecoderCache
    loss: Any
    packed: bool


def seq2seq_forward(params, cfg: ModelConfig, batch: Batch, masks: DropoutMasks | None = None,
                    reduction: str = "seq", packed: bool = True):
    """Teacher-forced loss of a batch (:class:`minis2s.data.batches.Batch`, its arrays on
    this backend): src (N, T_src), tgt_in and tgt (N, T_tgt), tgt_valid_len (N,).

    ``masks`` (from :func:`draw_dropout_masks`) are indexed by the batch's own rows and
    steps. With ``packed`` (the default) the decoder, the dense layer and the loss run on
    the valid target positions only, rows sorted by length (``batch.packing``): the
    decoder is causal and the loss masked, so the loss and the gradients are those of the
    plain (``packed=False``) computation over every padded position, which the seed's
    model does.
    """
    masks = masks or DropoutMasks(None, None)
    if not packed:
        (state, context), enc_cache = encoder_forward(params, cfg, batch.src, masks.encoder)
        (logits, _), dec_cache = decoder_forward(params, cfg, batch.tgt_in, state, context,
                                                 masks.decoder)
        loss, loss_cache = masked_softmax_ce_forward(logits, batch.tgt, batch.tgt_valid_len,
                                                     reduction)
        return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, False)
    xp = array_module(batch.tgt)
    p = batch.packing
    enc_masks = None if masks.encoder is None else [m[:, p.order] for m in masks.encoder]
    dec_masks = None if masks.decoder is None else [m[p.steps, p.rows] for m in masks.decoder]
    (state, context), enc_cache = encoder_forward(params, cfg, batch.src[p.order], enc_masks)
    logits, dec_cache = decoder_forward_packed(params, cfg, batch.tgt_in[p.rows, p.steps],
                                               p.batch_sizes, state, context, dec_masks)
    M, T = logits.shape[0], batch.tgt.shape[1]
    weights = xp.full(M, reduction_scale(reduction, T, M), dtype=logits.dtype)
    loss, loss_cache = softmax_ce_forward(logits, batch.tgt[p.rows, p.steps], weights,
                                          overwrite=True)
    return loss, Seq2SeqCache(enc_cache, dec_cache, loss_cache, True)


def seq2seq_backward(dloss, cache: Seq2SeqCache, consume: bool = False) -> dict:
    """Gradients of every parameter by name: the forward read in reverse.

    The cache is left intact, so a second call gives the same gradients. With ``consume``
    (the trainer's choice) the packed path reuses the loss cache's (M, V) buffer for the
    logits' gradient instead of copying it; the cache is then spent, and another backward
    on it raises :class:`minis2s.ops.CacheConsumedError`.
    """
    if cache.packed:
        dlogits = softmax_ce_backward(dloss, cache.loss, consume=consume)
    else:
        dlogits = masked_softmax_ce_backward(dloss, cache.loss)
    dstate, dcontext, grads = decoder_backward(dlogits, cache.decoder)
    dstate[-1] += dcontext  # the context is state[-1]: its gradient joins the state's
    grads.update(encoder_backward(dstate, cache.encoder))
    return grads
