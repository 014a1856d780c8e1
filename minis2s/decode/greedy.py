"""Greedy decoding: many sentences at once, each taking its most likely next token until
``<eos>`` or num_steps tokens.

``context_from="decoder"`` reproduces a pitfall of d2l's ``predict_seq2seq`` for the
seed's decoder: there the decoder computes its context from the state it is given, which
at prediction time is its own state after the previous step rather than the encoder's
final state it was trained with. The first step is the same either way (the state is the
encoder's); from the second on the context is the decoder's top-layer h. minis2s keeps the
encoder's (the default), as training does."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..backend import Backend, to_numpy
from ..data import Vocab
from ..model import ModelConfig
from ..model.steps import start, step

CONTEXTS = ("encoder", "decoder")  # where the seed's decoder takes its context at each step


def check_context_from(context_from: str, cfg: ModelConfig, beam: int = 1) -> None:
    """Refuse a ``context_from`` other than :data:`CONTEXTS`, and ``"decoder"`` for a
    decoder other than the seed's, for a decoder of other units than the encoder's width
    (its state cannot stand in for the context) or with beam search (ValueError, one
    line)."""
    if context_from not in CONTEXTS:
        raise ValueError(f"context_from must be one of {', '.join(CONTEXTS)}, not "
                         f"{context_from!r}")
    if context_from == "decoder" and not cfg.decoder.memory_is_context:
        raise ValueError("the context from the decoder's state is the seed's decoder's "
                         f"(seq2seq); this model's decoder is {cfg.decoder.name}")
    if context_from == "decoder" and cfg.has_bridge:
        raise ValueError("the context from the decoder's state needs a decoder as wide as "
                         f"the encoder's state ({cfg.encoder_width}); this one has "
                         f"{cfg.decoder_units} units")
    if context_from == "decoder" and beam != 1:
        raise ValueError("the context from the decoder's state is for greedy decoding "
                         "(--beam 1)")


class Decoded(NamedTuple):
    tokens: list  # output ids, without <eos>
    weights: Any  # (steps, S) attention weights of each token emitted, <eos> included;
    #               None unless asked for and the decoder attends


def greedy_decode(params, cfg: ModelConfig, src, tgt_vocab: Vocab, num_steps: int,
                  backend: Backend, src_valid_len=None,
                  return_weights: bool = False, context_from: str = "encoder"
                  ) -> list[Decoded]:
    """Decode a batch of source ids (N, S) greedily; one :class:`Decoded` per row.
    ``src_valid_len`` (N,): what attention may read (default: every position). With
    ``return_weights``, decoders that attend also give each output's attention weights.
    ``context_from``: ``"encoder"`` (as trained) or ``"decoder"`` (d2l's prediction
    pitfall, the seed's decoder only; see the module's docstring)."""
    check_context_from(context_from, cfg)
    xp = backend.xp
    src = xp.asarray(src)
    N, S = src.shape
    valid = xp.full(N, S) if src_valid_len is None else xp.asarray(src_valid_len)
    state, memory = start(params, cfg, src, valid)
    prev = xp.full(N, tgt_vocab.bos, dtype=src.dtype)
    out = np.empty((N, num_steps), dtype=np.int64)
    weights = np.zeros((N, num_steps, S)) if return_weights and cfg.decoder.attends \
        else None
    done = np.zeros(N, dtype=bool)
    lengths = np.full(N, num_steps)
    for t in range(num_steps):
        if context_from == "decoder" and t > 0:
            memory = state.top  # the decoder's own top-layer h, as d2l's prediction has it
        logits, state, alpha = step(params, cfg, prev, state, memory)
        pred = logits.argmax(axis=-1)  # (N,) the most likely next token
        pred_np = to_numpy(pred)
        out[:, t] = pred_np
        if weights is not None:
            weights[:, t] = to_numpy(alpha)
        ended = (~done) & (pred_np == tgt_vocab.eos)
        lengths[ended] = t
        done |= ended
        if done.all():
            break
        prev = pred.astype(src.dtype)
    steps = np.minimum(lengths + 1, num_steps)  # the <eos> step's weights too
    return [Decoded(out[i, :lengths[i]].tolist(),
                    None if weights is None else weights[i, :steps[i]]) for i in range(N)]
