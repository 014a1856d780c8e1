"""The model one step at a time, as translation runs it (no caches, no dropout).

:func:`start` reads the source once; :func:`step` feeds one token per row and returns the
next-token logits; :func:`select_rows` keeps, repeats or reorders rows (beam search does,
as hypotheses are extended or dropped). The same three work for both decoders: for the
seed's the memory is the context (the encoder's top-layer final h), for attention it is
what each step attends to.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..ops import dense_forward, embed_project_forward, param_suffix
from .attention import Memory, attention_step_forward, memory_forward
from .config import ModelConfig, map_state, top_h
from .decoder import decoder_forward
from .encoder import encoder_forward


class Start(NamedTuple):
    state: Any  # the decoder's state, (L, B, W) or a pair (h, c)
    memory: Any  # the context (B, W), or a Memory


def start(params, cfg: ModelConfig, src, src_valid_len) -> Start:
    """Encode src (B, S) ids (valid lengths (B,)) for decoding."""
    (state, outputs), _ = encoder_forward(params, cfg, src)
    if cfg.attention:
        return Start(state, memory_forward(params, outputs, src_valid_len))
    return Start(state, top_h(state))


def step(params, cfg: ModelConfig, ids, state, memory):
    """ids (B,): each row's previous token -> ``(logits (B, V), state after, attention
    weights (B, S) or None)``."""
    if not cfg.attention:
        (logits, state), _ = decoder_forward(params, cfg, ids[:, None], state, memory)
        return logits[:, 0], state, None
    Hk, sfx = cfg.decoder_hiddens, param_suffix(0, 0)
    gi_emb, _ = embed_project_forward(ids, params["decoder.embedding.weight"],
                                      params["decoder.rnn.weight_ih" + sfx][:, Hk:],
                                      params["decoder.rnn.bias_ih" + sfx])
    (out, state, alpha), _ = attention_step_forward(params, cfg, gi_emb, state, memory)
    logits, _ = dense_forward(out, params["decoder.dense.weight"],
                              params["decoder.dense.bias"])
    return logits, state, alpha


def select_rows(state, memory, rows):
    """The state and memory of rows ``rows`` (an index array, repeats allowed)."""
    state = map_state(lambda s: s[:, rows], state)
    if isinstance(memory, Memory):
        return state, Memory(*(part[rows] for part in memory))
    return state, memory[rows]
