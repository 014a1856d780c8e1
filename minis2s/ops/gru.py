"""GRU in PyTorch's formulation, with backprop through time: the fast kernel.

Derivation: docs/derivations.md#gru (one step) and #bptt (across time). The plain
version a student reads first is :mod:`minis2s.ops.reference.gru`; this one is tested
against it to 1e-12.

Gate order r, z, n, as ``torch.nn.GRU``::

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

:func:`gru_layer_forward` / :func:`gru_layer_backward` run the recurrence of one direction
of one layer, given the input projections ``gi = x W_ih^T + b_ih`` of all steps at once,
over the rows of a :class:`~.recurrent.Schedule`. :data:`GRU` hands them to the stacks of
:mod:`.recurrent`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module, overflow_ignored
from .recurrent import Cell, Schedule, previous_rows
from .state import State


class GRULayerCache(NamedTuple):
    h0: Any  # (N, H) state before the first processed step
    hs: Any  # (M, H) state after each row's step
    rz: Any  # (2, M, H) gates r (rz[0]) and z (rz[1])
    n: Any  # (M, H) candidate state
    ghn: Any  # (M, H) W_hn h + b_hn, the term that r scales
    weight_hh: Any  # (3H, H)
    schedule: Schedule


def gru_layer_forward(gi, state0: State, weight_hh, bias_hh, schedule: Schedule,
                      probe=None):
    """Run one GRU direction over precomputed input projections.

    gi (M, 3H) = x W_ih^T + b_ih for every row (read only); state0: h0 (N, H);
    ``schedule`` orders the steps; probe: None, or (M, H) added to each state as it is
    made. Returns hs (M, H), the state after every row's step, and the cache.
    """
    xp = array_module(gi)
    h0 = state0.h
    M, H3 = gi.shape
    H, N = H3 // 3, h0.shape[0]
    dtype = gi.dtype
    # r and z only ever see the sum b_ih + b_hh: fold b_hh in once. The sigmoid is computed
    # as 1 / (1 + exp(-a)), so rz starts as -(gi_rz + b_hh_rz), gate-major (2, M, H), in
    # one pass; each step subtracts (h W_hh^T)_rz to get -a and turns it into the gate.
    rz = xp.empty((2, M, H), dtype=dtype)  # gate-major: r = rz[0], z = rz[1], contiguous
    gi_rz_g = gi.reshape(M, 3, H)[:, :2].transpose(1, 0, 2)  # (2, M, H) view
    xp.subtract(-bias_hh[:2 * H].reshape(2, 1, H), gi_rz_g, out=rz)
    gi_n = gi[:, 2 * H:]
    w_hh_t = weight_hh.T  # a transposed view: the product reads it as it is
    b_hn = bias_hh[2 * H:]
    hs = xp.empty((M, H), dtype=dtype)
    n, ghn = xp.empty((M, H), dtype=dtype), xp.empty((M, H), dtype=dtype)
    gh = xp.empty((N, 3 * H), dtype=dtype)
    # gh's r, z columns seen gate-major, (2, rows, H): gh is contiguous, so its reshape is
    # a view and follows every step's product
    gh_rz_g = gh.reshape(N, 3, H)[:, :2].transpose(1, 0, 2)
    one = dtype.type(1)
    h = h0
    with overflow_ignored():  # exp(-a) = inf for a << 0 gives sigmoid(a) = 1 / inf = 0
        for lo, size in zip(schedule.offsets, schedule.sizes):  # step: rows lo to hi
            hi = lo + size
            hp = h[:size]
            g = xp.matmul(hp, w_hh_t, out=gh[:size])  # (size, 3H) = h W_hh^T
            s = rz[:, lo:hi]  # (2, size, H)
            s -= gh_rz_g[:, :size]  # -a_r, -a_z
            xp.exp(s, out=s)
            s += one
            xp.divide(one, s, out=s)  # r and z = sigmoid(a)
            gn = xp.add(g[:, 2 * H:], b_hn, out=ghn[lo:hi])
            nn = xp.multiply(s[0], gn, out=n[lo:hi])
            nn += gi_n[lo:hi]
            xp.tanh(nn, out=nn)  # n
            hh = xp.subtract(hp, nn, out=hs[lo:hi])  # h' = n + z (h - n) = (1 - z) n + z h
            hh *= s[1]
            hh += nn
            if probe is not None:
                hh += probe[lo:hi]
            h = hh
    return hs, GRULayerCache(h0, hs, rz, n, ghn, weight_hh, schedule)


def bptt_factors(rz, n, ghn, hprev):
    """The factors of one step's backward that depend on forward values only, for every
    row at once (a few large operations instead of many small ones inside the time loop):

    * ``k_n = ∂h/∂a_n = (1 - z)(1 - n²)``        so ``da_n = dh * k_n``
    * ``k_z = ∂h/∂a_z = (hprev - n) z (1 - z)``  so ``da_z = dh * k_z``
    * ``k_r = ∂a_n/∂a_r = ghn r (1 - r)``        so ``da_r = da_n * k_r``

    where ``a_r, a_z, a_n`` are the gates' pre-activations and ``σ'(a) = σ (1 - σ)``.
    """
    xp = array_module(n)
    r, z = rz[0], rz[1]
    sig_z = 1 - z
    k_n = xp.multiply(n, n)
    xp.subtract(1, k_n, out=k_n)
    k_n *= sig_z  # (1 - z)(1 - n²)
    sig_z *= z  # σ'(a_z) = z (1 - z)
    k_z = xp.subtract(hprev, n)
    k_z *= sig_z  # (hprev - n) z (1 - z)
    k_r = xp.subtract(1, r)
    k_r *= r  # σ'(a_r) = r (1 - r)
    k_r *= ghn  # ghn r (1 - r)
    return k_n, k_z, k_r


def gru_layer_backward(dhs, dstate_last: State | None, cache: GRULayerCache, record=None):
    """Backprop through time for :func:`gru_layer_forward` (the cache is left intact).

    dhs (M, H): upstream gradient of every row's output (or None); dstate_last: the
    gradient (N, H) of the state after the last processed step (or None); record: None,
    or an (M, H) array that receives every state's total gradient.
    Returns ``(dgi, State(dh0), {"weight_hh": dW_hh, "bias_hh": db_hh})``, dgi (M, 3H).
    """
    h0, hs, rz, n, ghn, weight_hh, schedule = cache
    xp = array_module(hs)
    hprev = previous_rows(h0, hs, schedule)
    M, H = hs.shape
    N, dtype = h0.shape[0], hs.dtype
    r, z = rz[0], rz[1]
    k_n, k_z, k_r = bptt_factors(rz, n, ghn, hprev)
    dgh = xp.empty((M, 3 * H), dtype=dtype)  # gradient of gh = h W_hh^T + b_hh
    dgin = xp.empty((M, H), dtype=dtype)  # gradient of gi's n part (differs from gh's)
    dh = xp.zeros((N, H), dtype=dtype)  # gradient reaching the current state
    if dstate_last is not None:
        dh += dstate_last.h
    back = xp.empty((N, H), dtype=dtype)
    for lo, size in zip(reversed(schedule.offsets), reversed(schedule.sizes)):
        hi = lo + size
        d = dh[:size]
        if dhs is not None:
            d += dhs[lo:hi]  # from above (the output) and from the next step (carried)
        if record is not None:
            record[lo:hi] = d
        da_n = xp.multiply(d, k_n[lo:hi], out=dgin[lo:hi])  # da_n = dh (1 - z)(1 - n²)
        xp.multiply(d, k_z[lo:hi], out=dgh[lo:hi, H:2 * H])  # da_z = dh (hprev - n) z (1 - z)
        xp.multiply(da_n, k_r[lo:hi], out=dgh[lo:hi, :H])  # da_r = da_n ghn r (1 - r)
        xp.multiply(da_n, r[lo:hi], out=dgh[lo:hi, 2 * H:])  # dgh_n = da_n r; dgh_rz = dgi_rz
        d *= z[lo:hi]  # to hprev: directly, dh z ...
        d += xp.matmul(dgh[lo:hi], weight_hh, out=back[:size])  # ... and through gh
    # weight gradients as one product over all rows instead of one per step
    grads = {"weight_hh": dgh.T @ hprev, "bias_hh": dgh.sum(axis=0)}
    dgi = dgh  # r and z: gi and gh enter as a sum, so their gradients agree
    dgi[:, 2 * H:] = dgin  # n: gi_n is not scaled by r
    return dgi, State(dh), grads


GRU = Cell("gru", 3, False, gru_layer_forward, gru_layer_backward,
           lambda cache, lo, hi: State(cache.hs[lo:hi]))
