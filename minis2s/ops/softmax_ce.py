"""Masked softmax cross-entropy. Derivation: docs/derivations.md#masked-softmax-cross-entropy.

Positions ``t >= valid_len[i]`` are padding: they add exactly 0 to the loss and get
exactly 0 gradient. Two reductions:

* ``"seq"`` (the seed's): each sequence's loss is the sum of its valid tokens' losses
  divided by T (the padded length); the batch objective is the sum over sequences.
* ``"token"``: the mean over all valid tokens of the batch (0 when there are none).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module

REDUCTIONS = ("seq", "token")


class SoftmaxCECache(NamedTuple):
    probs: Any  # (N, T, V) softmax of the logits
    labels: Any  # (N, T) int
    weights: Any  # (N, T) each position's factor in the loss, 0 where masked


def sequence_mask(valid_len, T: int):
    """(N, T) boolean: True where ``t < valid_len[i]``."""
    xp = array_module(valid_len)
    return xp.arange(T)[None, :] < valid_len[:, None]


def masked_softmax_ce_forward(logits, labels, valid_len, reduction: str = "seq"):
    """Loss (a 0-d array) of logits (N, T, V) against labels (N, T) with valid_len (N,)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
    xp = array_module(logits)
    N, T, V = logits.shape
    shifted = logits - logits.max(axis=-1, keepdims=True)  # max-shift: exp never overflows
    exp = xp.exp(shifted)
    sumexp = exp.sum(axis=-1)  # (N, T), each >= 1
    label_logit = xp.take_along_axis(shifted, labels[..., None], axis=-1)[..., 0]
    nll = xp.log(sumexp) - label_logit  # -log softmax(logits)[label]
    mask = sequence_mask(valid_len, T)
    if reduction == "seq":
        scale = 1.0 / T
    else:
        scale = 1.0 / max(int(mask.sum()), 1)
    weights = mask.astype(logits.dtype) * logits.dtype.type(scale)
    loss = (xp.where(mask, nll, 0) * weights).sum()
    probs = exp / sumexp[..., None]
    return loss, SoftmaxCECache(probs, labels, weights)


def masked_softmax_ce_backward(dloss, cache: SoftmaxCECache):
    """dL/dlogits = dloss * w[n, t] * (softmax - onehot(label)); 0 where w = 0."""
    xp = array_module(cache.probs)
    probs, labels, weights = cache
    N, T, V = probs.shape
    d = probs.copy().reshape(N * T, V)
    d[xp.arange(N * T), labels.reshape(-1)] -= 1  # softmax - onehot
    d *= (weights.reshape(N * T, 1) * dloss).astype(d.dtype)  # masked rows become exactly 0
    return d.reshape(N, T, V)
