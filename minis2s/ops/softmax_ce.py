"""Masked softmax cross-entropy. Derivation: docs/derivations.md#masked-softmax-cross-entropy.

Positions ``t >= valid_len[i]`` are padding: they add exactly 0 to the loss and get
exactly 0 gradient (except under ``"unmasked"``). The reductions:

* ``"seq"`` (the seed's, d2l's ``MaskedSoftmaxCELoss`` then ``.mean(dim=1)``): each
  sequence's loss is the sum of its valid tokens' losses divided by T (the padded
  length); the batch objective is the sum over sequences. Every valid token weighs 1/T.
* ``"token"``: the mean over all valid tokens of the batch (0 when there are none).
* ``"sum"``: each sequence's loss is the sum of its valid tokens' losses (weight 1).
* ``"mean"``: each sequence's loss is the mean of its valid tokens' losses (weight
  1 / valid_len[i]): a short target's tokens, its ``<eos>`` among them, weigh more than a
  long one's.
* ``"unmasked"``: d2l's exercise without the mask: every position, padding included, weighs
  1/T, its label the padding token.

:func:`softmax_ce_forward` is the core on rows: logits (M, V), labels (M,) and a weight
per row. The model calls it on the valid rows only (packed); the masked op calls it on
every position with weight 0 for the padding.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module

REDUCTIONS = ("seq", "token", "sum", "mean", "unmasked")
# the reductions a training run may use (train --loss-reduction)
TRAINING_REDUCTIONS = ("seq", "sum", "mean", "unmasked")


class CacheConsumedError(RuntimeError):
    """A backward was asked of a cache whose buffers an earlier backward reused."""


class Consumed:
    """Whether a backward has reused the cache's buffers (then no backward may follow)."""

    def __init__(self) -> None:
        self.done = False


class SoftmaxCECache(NamedTuple):
    exp: Any  # (M, V) exp(logits - rowmax): softmax up to each row's normaliser
    sumexp: Any  # (M,) the normalisers
    labels: Any  # (M,) int
    weights: Any  # (M,) each row's factor in the loss, 0 where masked
    consumed: Consumed  # set by a backward with consume=True


def softmax_ce_forward(logits, labels, weights, overwrite: bool = False):
    """``sum_m weights[m] * -log softmax(logits[m])[labels[m]]`` as a 0-d array.

    With ``overwrite`` the logits buffer is reused (it then holds the cache's ``exp``).
    """
    xp = array_module(logits)
    M, V = logits.shape
    z = logits if overwrite else logits.copy()
    if M == 0:  # no row: the loss is 0, and there is nothing to reduce (CuPy refuses a
        #         max over a zero-size array)
        return xp.zeros((), dtype=z.dtype), SoftmaxCECache(
            z, xp.zeros(0, dtype=z.dtype), labels, weights, Consumed())
    z -= z.max(axis=1, keepdims=True)  # max-shift: exp never overflows, the value is unchanged
    label_z = z[xp.arange(M), labels]
    xp.exp(z, out=z)
    sumexp = z.sum(axis=1)  # each >= 1
    nll = xp.log(sumexp) - label_z  # -log softmax(logits)[label]
    loss = (nll * weights).sum()
    return loss, SoftmaxCECache(z, sumexp, labels, weights, Consumed())


def softmax_ce_backward(dloss, cache: SoftmaxCECache, consume: bool = False):
    """dL/dlogits = dloss * weights[m] * (softmax - onehot(label)); 0 rows where w = 0.

    The softmax's division is folded into the one scaling pass: exp * (w / sumexp).
    With ``consume`` the result is written into the cache's ``exp`` buffer (no (M, V)
    copy), which spends the cache: any later backward on it raises
    :class:`CacheConsumedError`. Without it the cache is left intact.
    """
    xp = array_module(cache.exp)
    exp, sumexp, labels, weights, consumed = cache
    if consumed.done:
        raise CacheConsumedError("this loss cache was consumed by an earlier backward "
                                 "(consume=True reuses its buffer); run the forward again")
    consumed.done = consume
    w = (weights * dloss).astype(exp.dtype)
    d = exp if consume else exp.copy()
    d *= (w / sumexp)[:, None]  # dloss * w * softmax
    d[xp.arange(d.shape[0]), labels] -= w  # ... minus dloss * w * onehot
    return d


def sequence_mask(valid_len, T: int):
    """(N, T) boolean: True where ``t < valid_len[i]``."""
    xp = array_module(valid_len)
    return xp.arange(T)[None, :] < valid_len[:, None]


def reduction_scale(reduction: str, T: int, num_valid: int) -> float:
    """Each valid token's factor in the loss under ``reduction`` (one of the reductions
    whose factor is the same for every token: seq, token, sum, unmasked)."""
    if reduction in ("seq", "unmasked"):
        return 1.0 / T
    if reduction == "token":
        return 1.0 / max(num_valid, 1)
    if reduction == "sum":
        return 1.0
    raise ValueError(f"reduction must be one of {', '.join(r for r in REDUCTIONS if r != 'mean')}"
                     f", not {reduction!r}")


def loss_weights(reduction: str, valid_len, T: int):
    """(N, T): each position's factor in the loss under ``reduction``, 0 on the padding
    (every position counted under ``"unmasked"``)."""
    xp = array_module(valid_len)
    if reduction == "unmasked":
        return xp.full((len(valid_len), T), 1.0 / T)
    mask = sequence_mask(valid_len, T)
    if reduction == "mean":
        return mask / xp.maximum(valid_len, 1)[:, None]
    if reduction == "token":  # the count stays where the arrays are: the host never waits
        return mask * (1.0 / xp.maximum(mask.sum(), 1))
    return mask * reduction_scale(reduction, T, 0)


class MaskedCECache(NamedTuple):
    rows: SoftmaxCECache  # the (N * T)-row problem
    shape: tuple  # (N, T, V)


def masked_softmax_ce_forward(logits, labels, valid_len, reduction: str = "seq"):
    """Loss (a 0-d array) of logits (N, T, V) against labels (N, T) with valid_len (N,)."""
    N, T, V = logits.shape
    weights = loss_weights(reduction, valid_len, T).reshape(-1).astype(logits.dtype)
    loss, cache = softmax_ce_forward(logits.reshape(N * T, V), labels.reshape(-1), weights)
    return loss, MaskedCECache(cache, (N, T, V))


def masked_softmax_ce_backward(dloss, cache: MaskedCECache):
    """Gradient (N, T, V) of :func:`masked_softmax_ce_forward`'s loss."""
    return softmax_ce_backward(dloss, cache.rows).reshape(cache.shape)
