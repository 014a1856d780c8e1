"""Beam search, as d2l describes it, for every decoder, batched over sentences and beams.

At every step, all one-token extensions of a sentence's live hypotheses are ranked by
their total log-probability and the best K kept. A kept hypothesis whose new token is
``<eos>`` leaves the beam as finished; the others stay live, so a sentence's beam
narrows as hypotheses finish and finished ones cost no more decoder work. The search
ends when no hypothesis is live or after num_steps tokens. The output is, among the
finished and the still-live hypotheses, the one with the highest score
``log P(y) / L^alpha``, L counting its tokens, ``<eos>`` included (a hypothesis still
live after num_steps tokens has no ``<eos>`` term in log P(y), as in d2l's rule).

All live hypotheses of all sentences are rows of one batch (at most N·K rows); one
decoder step serves them all. Each row's log-probabilities and its K best extensions are
found where the logits are (on the GPU with CuPy), so only (rows, K) candidates come to
the host, where each sentence ranks its rows' candidates side by side, (N, K·K) arrays
rather than a Python loop over sentences.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..backend import Backend, array_module, to_numpy
from ..data import Vocab
from ..model import ModelConfig
from ..model.steps import select_rows, start, step


class Hypothesis(NamedTuple):
    tokens: list  # output ids, without <eos>
    log_prob: float  # log P(y), <eos> included when finished
    score: float  # log P(y) / L^alpha
    finished: bool  # ended with <eos>
    weights: Any  # (L, S) attention weights of each emitted token, or None


def _best_extensions(logits, logp, C: int):
    """Each row's C best one-token extensions, ranked on the device: log-probabilities
    of logits (B, V) in float64, plus each row's total so far ``logp`` (B,) (host), and
    the C largest per row. Only (B, C) token ids and totals come back to the host, not
    the (B, V) logits."""
    xp = array_module(logits)
    z = logits.astype(xp.float64)
    z -= z.max(axis=1, keepdims=True)
    cand = xp.asarray(logp)[:, None] + (z - xp.log(xp.exp(z).sum(axis=1, keepdims=True)))
    best_tok = xp.argpartition(-cand, C - 1, axis=1)[:, :C]
    return to_numpy(best_tok), to_numpy(xp.take_along_axis(cand, best_tok, axis=1))


def beam_search(params, cfg: ModelConfig, src, tgt_vocab: Vocab, num_steps: int,
                backend: Backend, beam_size: int, length_penalty: float = 0.75,
                src_valid_len=None, return_weights: bool = False) -> list[Hypothesis]:
    """The best hypothesis for each row of src (N, S); ``src_valid_len`` as for greedy
    decoding. ``beam_size`` K >= 1; K = 1 is greedy decoding."""
    if beam_size < 1:
        raise ValueError(f"beam size must be at least 1, got {beam_size}")
    if not 0 <= length_penalty < float("inf"):  # NaN fails too
        raise ValueError(f"length penalty must be a number >= 0, got {length_penalty}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    xp = backend.xp
    src = xp.asarray(src)
    N, S = src.shape
    K, V = beam_size, cfg.tgt_vocab_size
    valid = xp.full(N, S) if src_valid_len is None else xp.asarray(src_valid_len)
    state, memory = start(params, cfg, src, valid)
    want_weights = return_weights and cfg.decoder.attends
    # the live hypotheses, one row each, grouped by sentence in sentence order
    sent = np.arange(N)  # (B,) the sentence of each row
    tokens = np.zeros((N, 0), dtype=np.int64)  # (B, t) ids so far
    logp = np.zeros(N)  # (B,) total log-probability so far
    history = np.zeros((N, 0, S)) if want_weights else None  # (B, t, S)
    prev = xp.full(N, tgt_vocab.bos, dtype=src.dtype)
    best: list[Hypothesis | None] = [None] * N

    def offer(i, tokens, log_prob, finished, weights):
        """Hypothesis of sentence i, kept if it scores above the best so far."""
        score = log_prob / (len(tokens) + finished) ** length_penalty  # L counts <eos>
        if best[i] is None or score > best[i].score:
            best[i] = Hypothesis(tokens, log_prob, score, finished, weights)

    for _ in range(num_steps):
        logits, state, alpha = step(params, cfg, prev, state, memory)
        # a sentence's K best extensions are among its rows' K best each: take those
        # first (B, C) on the device, then rank each sentence's rows side by side, (N, K,
        # C), -inf where a sentence has fewer than K live rows
        C = min(K, V)  # candidates kept per row
        best_tok, best_logp = _best_extensions(logits, logp, C)
        slot = np.arange(len(sent)) - np.searchsorted(sent, sent)  # row's place in its group
        table = np.full((N, K, C), -np.inf)
        table[sent, slot] = best_logp
        tokens_of = np.zeros((N, K, C), dtype=np.int64)
        tokens_of[sent, slot] = best_tok
        flat = table.reshape(N, K * C)
        top = np.argpartition(-flat, K - 1, axis=1)[:, :K]  # (N, K) each sentence's best
        scores = np.take_along_axis(flat, top, axis=1)
        row_of = np.full((N, K), -1)
        row_of[sent, slot] = np.arange(len(sent))
        n_idx, top_idx = np.nonzero(np.isfinite(scores))
        chosen = top[n_idx, top_idx]  # flat index = slot · C + place among that row's best
        parent = row_of[n_idx, chosen // C]
        new_tok = tokens_of[n_idx, chosen // C, chosen % C]
        new_logp = scores[n_idx, top_idx]
        alpha_np = to_numpy(alpha)[parent] if want_weights else None
        ends = new_tok == tgt_vocab.eos
        for j in np.flatnonzero(ends):  # finished: they leave the beam
            w = np.concatenate([history[parent[j]], alpha_np[j][None]]) if want_weights \
                else None
            offer(n_idx[j], tokens[parent[j]].tolist(), float(new_logp[j]), True, w)
        keep = ~ends
        if not keep.any():
            break
        rows = parent[keep]
        sent, logp = n_idx[keep], new_logp[keep]
        tokens = np.concatenate([tokens[rows], new_tok[keep][:, None]], axis=1)
        if want_weights:
            history = np.concatenate([history[rows], alpha_np[keep][:, None]], axis=1)
        state, memory = select_rows(cfg, state, memory, xp.asarray(rows))
        prev = xp.asarray(new_tok[keep]).astype(src.dtype)
    else:  # num_steps tokens and still live: these compete too
        for j in range(len(sent)):
            offer(sent[j], tokens[j].tolist(), float(logp[j]), False,
                  history[j] if want_weights else None)
    return best
