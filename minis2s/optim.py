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
    norm = math.sqrt(float(grads.xp.dot(g, g)))
    if norm > max_norm:
        g *= grads.dtype.type(max_norm / norm)
    return norm


CPU_BLOCK = 1 << 15  # Adam's elements per block on the CPU: 5 arrays of it stay in cache


class Adam:
    """Adam with PyTorch's defaults (betas 0.9, 0.999, eps 1e-8, no weight decay).

    On the CPU the update runs block by block (``CPU_BLOCK`` elements): each block's
    thirteen passes then stay in cache instead of streaming every buffer through memory
    thirteen times (a third less time on the ``big`` preset, see docs/performance.md). On
    a GPU it is one pass over the whole buffers per operation.
    """

    def __init__(self, params: ParamSet, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, tuple(betas), eps
        self.m = params.zeros_like()  # first moment
        self.v = params.zeros_like()  # second moment
        self.t = 0  # steps taken
        size = params.flat.size
        self._block = CPU_BLOCK if params.xp.__name__ == "numpy" else max(size, 1)
        self._scratch = params.xp.empty(min(size, self._block), dtype=params.dtype)

    def step(self, grads: ParamSet) -> None:
        """One update from ``grads`` (same layout as the parameters)."""
        xp, dt = self.params.xp, self.params.dtype.type
        b1, b2 = self.betas
        self.t += 1
        bc1 = 1 - b1 ** self.t
        bc2 = 1 - b2 ** self.t
        c1, c2, decay2 = dt(1 - b1), dt(1 - b2), dt(b2)
        root_bc2, eps, step_size = dt(math.sqrt(bc2)), dt(self.eps), dt(self.lr / bc1)
        flats = (self.params.flat, grads.flat, self.m.flat, self.v.flat)
        size, block = flats[0].size, self._block
        for i in range(0, size, block):
            p, g, m, v = (a[i:i + block] for a in flats)
            s = self._scratch[:p.size]
            xp.subtract(g, m, out=s)
            s *= c1
            m += s  # m = b1 m + (1 - b1) g, written as torch's lerp: m + (1 - b1)(g - m)
            xp.multiply(g, g, out=s)
            s *= c2
            v *= decay2
            v += s  # v = b2 v + (1 - b2) g^2
            # p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), as torch.optim.Adam has it
            xp.sqrt(v, out=s)
            s /= root_bc2
            s += eps
            xp.divide(m, s, out=s)
            s *= step_size
            p -= s

    def state_dict(self) -> dict:
        return {"t": self.t, "m": self.m.flat, "v": self.v.flat}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        self.m.flat[...] = self.params.xp.asarray(state["m"], dtype=self.params.dtype)
        self.v.flat[...] = self.params.xp.asarray(state["v"], dtype=self.params.dtype)
