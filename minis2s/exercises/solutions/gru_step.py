"""Solution: one step of a GRU, backward, in PyTorch's formulation (gate blocks r, z, n).

Forward (minis2s.ops.reference.gru.gru_step_forward):
    gi = x W_ihᵀ + b_ih,  gh = h_prev W_hhᵀ + b_hh      (N, 3H), blocks r | z | n
    r = σ(gi_r + gh_r)
    z = σ(gi_z + gh_z)
    n = tanh(gi_n + r ⊙ gh_n)
    h = (1 − z) ⊙ n + z ⊙ h_prev
"""

import numpy as np


def gru_step_backward(dh, cache):
    """dh (N, H) -> (dx (N, D), dh_prev (N, H), grads)."""
    x, h_prev, r, z, n, gh_n, params = cache
    # h = (1 − z) ⊙ n + z ⊙ h_prev
    dn = dh * (1 - z)  # through n
    dz = dh * (h_prev - n)  # through z: ∂h/∂z = h_prev − n
    dh_prev_direct = dh * z  # straight to h_prev (the z-path)
    # n = tanh(a_n), a_n = gi_n + r ⊙ gh_n
    da_n = dn * (1 - n ** 2)  # tanh' = 1 − n²
    dr = da_n * gh_n  # through r
    dgh_n = da_n * r  # through the state's share gh_n, which r scales
    # r = σ(a_r), z = σ(a_z): σ' = σ (1 − σ)
    da_r = dr * r * (1 - r)
    da_z = dz * z * (1 - z)
    # the input's share gi and the state's share gh, blocks in the order r, z, n
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)  # gi_n enters a_n unscaled
    dgh = np.concatenate([da_r, da_z, dgh_n], axis=1)  # gh_n enters a_n through r
    dx = dgi @ params["weight_ih"]  # gi = x W_ihᵀ + b_ih
    dh_prev = dh_prev_direct + dgh @ params["weight_hh"]  # gh = h_prev W_hhᵀ + b_hh
    grads = {
        "weight_ih": dgi.T @ x,  # (3H, D), summed over the batch rows
        "weight_hh": dgh.T @ h_prev,  # (3H, H)
        "bias_ih": np.sum(dgi, axis=0),  # (3H,)
        "bias_hh": np.sum(dgh, axis=0),  # (3H,)
    }
    return dx, dh_prev, grads
