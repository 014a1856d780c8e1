"""A GRU, plainly, in PyTorch's formulation (``torch.nn.GRU``, gate blocks r, z, n):

    r = σ(x W_irᵀ + b_ir + h_prev W_hrᵀ + b_hr)           reset gate       d2l: R_t
    z = σ(x W_izᵀ + b_iz + h_prev W_hzᵀ + b_hz)           update gate      d2l: Z_t
    n = tanh(x W_inᵀ + b_in + r ⊙ (h_prev W_hnᵀ + b_hn))  candidate state  d2l: H̃_t
    h = (1 − z) ⊙ n + z ⊙ h_prev                         new state        d2l: H_t

d2l's from-scratch GRU applies the reset gate before the product, ``(R_t ⊙ H_{t-1}) W_hh``;
PyTorch (and the seed, through ``nn.GRU``) applies it after, to ``h_prev W_hnᵀ + b_hn``. The
two are different functions of the weights; this is the second.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ...backend import array_module
from .loop import backward_over_time, forward_over_time


def sigmoid(a):
    """σ(a) = 1 / (1 + e^(−a)), written through tanh so that no exp can overflow."""
    return 0.5 * (1 + array_module(a).tanh(0.5 * a))


class GRUStepCache(NamedTuple):
    x: Any  # (N, D) this step's input
    h_prev: Any  # (N, H) the state it started from
    r: Any  # (N, H) reset gate
    z: Any  # (N, H) update gate
    n: Any  # (N, H) candidate state
    ghn: Any  # (N, H) h_prev W_hnᵀ + b_hn, the part the reset gate scales
    params: dict


def gru_step_forward(x, h_prev, params):
    """One step: x (N, D), h_prev (N, H) -> h (N, H) and the cache."""
    H = h_prev.shape[1]
    gi = x @ params["weight_ih"].T + params["bias_ih"]  # (N, 3H): the input's share
    gh = h_prev @ params["weight_hh"].T + params["bias_hh"]  # (N, 3H): the state's share
    gi_r, gi_z, gi_n = gi[:, :H], gi[:, H:2 * H], gi[:, 2 * H:]
    gh_r, gh_z, gh_n = gh[:, :H], gh[:, H:2 * H], gh[:, 2 * H:]
    r = sigmoid(gi_r + gh_r)
    z = sigmoid(gi_z + gh_z)
    n = array_module(x).tanh(gi_n + r * gh_n)
    h = (1 - z) * n + z * h_prev
    return h, GRUStepCache(x, h_prev, r, z, n, gh_n, params)


def gru_step_backward(dh, cache: GRUStepCache):
    """dh (N, H), the whole gradient of this step's h -> (dx, dh_prev, grads)."""
    xp = array_module(dh)
    x, h_prev, r, z, n, gh_n, params = cache
    dn = dh * (1 - z)  # h = (1 - z) n + z h_prev: through n ...
    dz = dh * (h_prev - n)  # ... through z (∂h/∂z = h_prev - n) ...
    dh_prev = dh * z  # ... and straight to h_prev
    da_n = dn * (1 - n * n)  # n = tanh(a_n): tanh' = 1 - n²
    dr = da_n * gh_n  # a_n = gi_n + r ⊙ gh_n: through r ...
    dgh_n = da_n * r  # ... and through gh_n
    da_r = dr * r * (1 - r)  # r = σ(a_r): σ' = σ (1 - σ)
    da_z = dz * z * (1 - z)  # z = σ(a_z)
    # a_r = gi_r + gh_r and a_z = gi_z + gh_z: both shares get the gate's gradient;
    # a_n = gi_n + r ⊙ gh_n: gi_n gets da_n, gh_n gets da_n ⊙ r
    dgi = xp.concatenate([da_r, da_z, da_n], axis=1)  # (N, 3H)
    dgh = xp.concatenate([da_r, da_z, dgh_n], axis=1)  # (N, 3H)
    dx = dgi @ params["weight_ih"]  # gi = x W_ihᵀ + b_ih
    dh_prev = dh_prev + dgh @ params["weight_hh"]  # gh = h_prev W_hhᵀ + b_hh: h_prev's 2nd use
    grads = {"weight_ih": dgi.T @ x, "weight_hh": dgh.T @ h_prev,  # summed over rows
             "bias_ih": dgi.sum(axis=0), "bias_hh": dgh.sum(axis=0)}
    return dx, dh_prev, grads


def gru_forward(x, h0, params, reverse=False):
    """Run T >= 1 steps over x (T, N, D) from h0 (N, H) -> hs (T, N, H), the final state
    and the step caches (:func:`.loop.forward_over_time`)."""
    return forward_over_time(gru_step_forward, x, h0, params, reverse)


def gru_backward(dhs, dh_last, caches, reverse=False):
    """Backprop through time (:func:`.loop.backward_over_time`): dhs (T, N, H) from above,
    dh_last (N, H) for the final state, or None -> (dx, dh0, grads)."""
    if dh_last is None:  # the final state is not used: no gradient reaches it
        dh_last = array_module(dhs).zeros_like(dhs[0])
    return backward_over_time(gru_step_backward, dhs, dh_last, caches, reverse)
