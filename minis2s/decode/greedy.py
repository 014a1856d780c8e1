"""Greedy decoding: many sentences at once, each taking its most likely next token until
``<eos>`` or num_steps tokens."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..backend import Backend, to_numpy
from ..data import Vocab
from ..model import ModelConfig
from ..model.steps import start, step


class Decoded(NamedTuple):
    tokens: list  # output ids, without <eos>
    weights: Any  # (steps, S) attention weights of each token emitted, <eos> included;
    #               None unless asked for and the decoder attends


def greedy_decode(params, cfg: ModelConfig, src, tgt_vocab: Vocab, num_steps: int,
                  backend: Backend, src_valid_len=None,
                  return_weights: bool = False) -> list[Decoded]:
    """Decode a batch of source ids (N, S) greedily; one :class:`Decoded` per row.
    ``src_valid_len`` (N,): what attention may read (default: every position). With
    ``return_weights``, decoders that attend also give each output's attention weights."""
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
