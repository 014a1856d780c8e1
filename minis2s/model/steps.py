"""The model one step at a time, as translation runs it (no caches, no dropout).

:func:`start` reads the source once; :func:`step` feeds one token per row and returns the
next-token logits; :func:`select_rows` keeps, repeats or reorders rows (beam search does,
as hypotheses are extended or dropped). The three work for every decoder: each says what
its memory is (:meth:`~.registry.Decoder.begin`) — for the seed's the context, for
attention what each step attends to.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .config import ModelConfig
from .encoder import encoder_forward
from .registry import StepOutput


class Start(NamedTuple):
    state: Any  # the decoder's state (the seed's and attention: a State of (L, B, W))
    memory: Any  # what every step reads of the source (the decoder's choice)


def start(params, cfg: ModelConfig, src, src_valid_len) -> Start:
    """Encode src (B, S) ids (valid lengths (B,)) for decoding."""
    encoded, _ = encoder_forward(params, cfg, src, src_valid_len)
    return Start(*cfg.decoder.begin(params, cfg, encoded))


def step(params, cfg: ModelConfig, ids, state, memory) -> StepOutput:
    """ids (B,): each row's previous token -> ``(logits (B, V), state after, attention
    weights (B, S) or None)``."""
    return cfg.decoder.step(params, cfg, ids, state, memory)


def select_rows(cfg: ModelConfig, state, memory, rows) -> Start:
    """The state and memory of rows ``rows`` (an index array, repeats allowed)."""
    return Start(*cfg.decoder.select(state, memory, rows))
