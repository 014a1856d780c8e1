"""The encoder: an embedding and a recurrent stack over the source, forward and backward.

Derivation: docs/derivations.md#seq2seq (the encoder, and the bidirectional reshape).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from ..ops import (
    State,
    embed_project_backward,
    embed_project_forward,
    param_suffix,
    stack_backward,
    stack_flops,
    stack_forward,
)
from .weights import embedding_param, scope, stack_params


class Encoded(NamedTuple):
    """What every decoder gets from the source."""

    state: State  # (L, N, W): the final state of each layer, both directions side by side
    outputs: Any  # (S, N, W): the top layer's output at every source step
    valid_len: Any  # (N,): source positions that hold tokens (what attention may read)


class EncoderCache(NamedTuple):
    embedded: list  # per direction: the EmbedProjectCache of layer 0's projections
    rnn: Any  # the recurrent stack's cache
    num_directions: int


class EncoderGrads(NamedTuple):
    params: dict  # by full name
    recorded: Any  # the stack's recorded state gradients, or None


def encoder_params(cfg) -> dict:
    """The encoder's parameters: ``encoder.embedding.weight`` and ``encoder.rnn.*``."""
    return {"encoder.embedding.weight": embedding_param(cfg.src_vocab_size, cfg.embed_size),
            **stack_params("encoder.rnn.", cfg.recurrent.gates, cfg.embed_size,
                           cfg.num_hiddens, cfg.num_layers, cfg.num_directions)}


def encoder_forward(params, cfg, src, valid_len=None, *, masks=None, probes=None):
    """src (N, S) ids, valid_len (N,) (None: every position) -> ``Encoded, cache``.

    The state is what the decoder starts from: (L, N, dirs * H) per array, a layer's
    forward and backward final states side by side; its top layer's h
    (``state.top``) is the seed's context. ``masks``: None or L - 1 dropout masks (S, N,
    dirs * H) between layers; ``probes``: see :func:`minis2s.ops.stack_forward`.
    """
    ids = src.T  # (S, N): time-major, as the stack reads
    emb = params["encoder.embedding.weight"]
    proj, embedded = [], []
    for d in range(cfg.num_directions):  # layer 0's input: the embeddings, projected
        sfx = param_suffix(0, d)
        gi, ecache = embed_project_forward(ids, emb, params["encoder.rnn.weight_ih" + sfx],
                                           params["encoder.rnn.bias_ih" + sfx])
        proj.append(gi)  # (S, N, G·H)
        embedded.append(ecache)
    (outputs, state_n), rnn_cache = stack_forward(cfg.recurrent, None,
                                                  scope(params, "encoder.rnn."),
                                                  cfg.num_layers, cfg.bidirectional, None,
                                                  masks, input_proj=proj, probes=probes)
    L, dirs = cfg.num_layers, cfg.num_directions

    def side_by_side(s):  # (L * dirs, N, H) -> (L, N, dirs * H): layer k's directions
        _, N, H = s.shape
        return s.reshape(L, dirs, N, H).transpose(0, 2, 1, 3).reshape(L, N, dirs * H)

    if valid_len is None:
        valid_len = array_module(src).full(src.shape[0], src.shape[1])
    encoded = Encoded(state_n.map(side_by_side), outputs, valid_len)
    return encoded, EncoderCache(embedded, rnn_cache, dirs)


def encoder_backward(dstate: State, doutputs, cache: EncoderCache,
                     record: bool = False) -> EncoderGrads:
    """dstate: the gradient of the final state, shaped like it; doutputs: that of the
    outputs (S, N, dirs * H), or None when nothing read them. With ``record``, the
    stack's recorded state gradients come back too."""
    dirs = cache.num_directions

    def apart(ds):  # the inverse move: (L, N, dirs * H) -> (L * dirs, N, H)
        L, N, W = ds.shape
        return ds.reshape(L, N, dirs, W // dirs).transpose(0, 2, 1, 3).reshape(
            L * dirs, N, W // dirs)

    g = stack_backward(doutputs, dstate.map(apart), cache.rnn, record)
    grads = {"encoder.rnn." + k: v for k, v in g.params.items()}
    demb = None
    for d, ecache in enumerate(cache.embedded):
        ge = embed_project_backward(g.dproj[d], ecache)
        sfx = param_suffix(0, d)
        grads["encoder.rnn.weight_ih" + sfx] = ge["weight"]
        grads["encoder.rnn.bias_ih" + sfx] = ge["bias"]
        demb = ge["embedding"] if demb is None else demb + ge["embedding"]
    grads["encoder.embedding.weight"] = demb  # both directions read the same embeddings
    return EncoderGrads(grads, g.recorded)


def encoder_flops(cfg, S: int) -> float:
    """Matrix-product FLOPs of the encoder's forward over one source of S steps."""
    return stack_flops(cfg.recurrent.gates, S, cfg.embed_size, cfg.num_hiddens,
                       cfg.num_layers, cfg.num_directions)
