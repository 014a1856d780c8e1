"""Solution: clipping by global norm, as the seed's grad_clipping and
minis2s.optim.clip_grad_norm_ do it."""

import math


def clip_grad_norm(grads, max_norm):
    """Scale every array of ``grads`` in place so that their global norm is at most
    ``max_norm``; return the norm before clipping."""
    total = 0.0
    for g in grads.values():
        total += float((g * g).sum())  # the squares of every entry of every array
    norm = math.sqrt(total)  # the global L2 norm
    if norm > max_norm:  # clip only when it is too large (never scale up)
        factor = max_norm / norm  # one factor for all: the direction is kept
        for g in grads.values():
            g *= factor  # in place: the caller's own arrays
    return norm
