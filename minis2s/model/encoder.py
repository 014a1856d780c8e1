"""The encoder: an embedding and a recurrent stack over the source, forward and backward.

Derivation: docs/derivations.md#seq2seq (the encoder, and the bidirectional reshape).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..ops import (
    embed_project_backward,
    embed_project_forward,
    param_suffix,
    stack_backward,
    stack_forward,
)
from .config import ModelConfig, map_state, scope


class EncoderCache(NamedTuple):
    embedded: list  # per direction: the EmbedProjectCache of layer 0's projections
    rnn: Any  # the recurrent stack's cache
    num_directions: int


def encoder_forward(params, cfg: ModelConfig, src, masks=None, probes=None):
    """src (N, T) ids -> ``(state, outputs), cache``.

    state: the decoder's initial state, (L, N, dirs * H) — for the LSTM a pair (h, c) of
    them; its top layer's h (:func:`top_h`) is the seed's context. outputs (T, N, dirs * H):
    the top layer's output at every source step (what attention reads). ``probes``: see
    :func:`minis2s.ops.stack_forward` (the gradient-flow test adds them).
    """
    ids = src.T  # (T, N): time-major, as the stack reads
    emb = params["encoder.embedding.weight"]
    proj, embedded = [], []
    for d in range(cfg.num_directions):  # layer 0's input: the embeddings, projected
        sfx = param_suffix(0, d)
        gi, ecache = embed_project_forward(ids, emb, params["encoder.rnn.weight_ih" + sfx],
                                           params["encoder.rnn.bias_ih" + sfx])
        proj.append(gi)  # (T, N, G·H)
        embedded.append(ecache)
    (outputs, state_n), rnn_cache = stack_forward(cfg.recurrent, None,
                                                  scope(params, "encoder.rnn."),
                                                  cfg.num_layers, cfg.bidirectional, None,
                                                  masks, input_proj=proj, probes=probes)
    L, dirs = cfg.num_layers, cfg.num_directions

    def side_by_side(s):  # (L * dirs, N, H) -> (L, N, dirs * H): layer k's directions
        _, N, H = s.shape
        return s.reshape(L, dirs, N, H).transpose(0, 2, 1, 3).reshape(L, N, dirs * H)

    state = map_state(side_by_side, state_n)
    return (state, outputs), EncoderCache(embedded, rnn_cache, dirs)


def encoder_backward(dstate, cache: EncoderCache, record: bool = False, doutputs=None):
    """dstate: the gradient of the final state, shaped like it; doutputs: that of the
    outputs (T, N, dirs * H), or None when nothing read them -> grads by full name (and,
    with ``record``, the stack's recorded state gradients as well)."""
    dirs = cache.num_directions

    def apart(ds):  # the inverse move: (L, N, dirs * H) -> (L * dirs, N, H)
        L, N, W = ds.shape
        return ds.reshape(L, N, dirs, W // dirs).transpose(0, 2, 1, 3).reshape(
            L * dirs, N, W // dirs)

    dproj, _, g_rnn, *recorded = stack_backward(doutputs, map_state(apart, dstate),
                                                cache.rnn, record)
    grads = {"encoder.rnn." + k: v for k, v in g_rnn.items()}
    demb = None
    for d, ecache in enumerate(cache.embedded):
        ge = embed_project_backward(dproj[d], ecache)
        sfx = param_suffix(0, d)
        grads["encoder.rnn.weight_ih" + sfx] = ge["weight"]
        grads["encoder.rnn.bias_ih" + sfx] = ge["bias"]
        demb = ge["embedding"] if demb is None else demb + ge["embedding"]
    grads["encoder.embedding.weight"] = demb  # both directions read the same embeddings
    return (grads, recorded[0]) if record else grads
