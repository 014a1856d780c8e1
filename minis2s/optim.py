"""Adam and clipping by global norm, over the flat buffers of :class:`ParamSet`.

Both work on ``ParamSet.flat``, so a step is a handful of whole-buffer operations no
matter how many named parameters the model has. Neither is part of the loss.
"""

from __future__ import annotations

import math

from .params import ParamSet


def clip_grad_norm_(grads: ParamSet, max_norm: float) -> float:
    """Scale ``grads`` in place so that their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping (as the seed's ``grad_clipping`` computes it).
    """
    g = grads.flat
    norm = float(math.sqrt(float((g * g).sum())))
    if norm > max_norm:
        g *= grads.dtype.type(max_norm / norm)
    return norm


class Adam:
    """Adam with PyTorch's defaults (betas 0.9, 0.999, eps 1e-8, no weight decay)."""

    def __init__(self, params: ParamSet, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, tuple(betas), eps
        self.m = params.zeros_like()  # first moment
        self.v = params.zeros_like()  # second moment
        self.t = 0  # steps taken

    def step(self, grads: ParamSet) -> None:
        """One update from ``grads`` (same layout as the parameters)."""
        xp, dt = self.params.xp, self.params.dtype.type
        b1, b2 = self.betas
        self.t += 1
        g, m, v = grads.flat, self.m.flat, self.v.flat
        m += dt(1 - b1) * (g - m)  # m = b1 m + (1 - b1) g, written as torch's lerp
        v *= dt(b2)
        v += dt(1 - b2) * (g * g)  # v = b2 v + (1 - b2) g^2
        bc1 = 1 - b1 ** self.t
        bc2 = 1 - b2 ** self.t
        # p -= lr / bc1 * m / (sqrt(v / bc2) + eps), as torch.optim.Adam computes it
        denom = xp.sqrt(v)
        denom /= dt(math.sqrt(bc2))
        denom += dt(self.eps)
        self.params.flat -= dt(self.lr / bc1) * (m / denom)

    def state_dict(self) -> dict:
        return {"t": self.t, "m": self.m.flat, "v": self.v.flat}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        self.m.flat[...] = self.params.xp.asarray(state["m"], dtype=self.params.dtype)
        self.v.flat[...] = self.params.xp.asarray(state["v"], dtype=self.params.dtype)
