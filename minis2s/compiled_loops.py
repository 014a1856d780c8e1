"""The compiled loops of :mod:`minis2s.compiled` (imported only when they are asked for:
this module needs numba). Module-level, so that Numba's cache keeps them between runs.

``exp_parts(v)`` gives exp(v) as (p, bits), p times the float32 whose bits are ``bits``:
in float32 p is a polynomial and the bits 2^k, so that the loops vectorise; in float64 p
is the C library's exp and the bits 1.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

F = np.float32
ONE_BITS = np.int32(127 << 23)  # 1.0 as float32 bits: p * 1.0 = p
LN2_HI, LN2_LO = F(0.693145751953125), F(1.428606765330187e-06)
LOG2E = F(1.4426950408889634)
# fast-math without its no-inf and no-NaN promises (exp(-a) = inf is the sigmoid's exact
# limit) and without reassociation (it would lose the two-part ln 2's precision)
OPTS = {"fastmath": {"nsz", "arcp", "contract", "afn"}, "error_model": "numpy"}


def exp_parts(v):
    """exp(v) as (p, bits); compiled by the overload below, by v's type."""
    raise NotImplementedError("only inside compiled code")


@overload(exp_parts, inline="always", fastmath=OPTS["fastmath"])
def _exp_parts(v):
    if isinstance(v, types.Float) and v.bitwidth == 32:
        def polynomial(v):
            """2^k p(r): k = round(v / ln 2), r = v - k ln 2, p degree-6 Taylor."""
            v = min(max(v, F(-87.0)), F(88.0))
            k = np.floor(v * LOG2E + F(0.5))
            r = v - k * LN2_HI - k * LN2_LO  # ln 2 in two parts: k ln2_hi is exact
            p = F(1.0 / 720)
            p = p * r + F(1.0 / 120)
            p = p * r + F(1.0 / 24)
            p = p * r + F(1.0 / 6)
            p = p * r + F(0.5)
            p = p * r + F(1.0)
            p = p * r + F(1.0)
            return p, (np.int32(k) + np.int32(127)) << np.int32(23)
        return polynomial

    def exact(v):
        return math.exp(v), ONE_BITS
    return exact


@numba.njit(inline="always", **OPTS)
def _add_rows(dst, src, lo, n):
    """dst[:n] += src[lo:lo + n]."""
    for i in range(n):
        for j in range(dst.shape[1]):
            dst[i, j] += src[lo + i, j]


@numba.njit(inline="always", **OPTS)
def _add_row_sums(total, src, lo, n):
    """total += the sum of src's rows lo to lo + n (b_hh's gradient, step by step)."""
    for i in range(n):
        for j in range(total.shape[0]):
            total[j] += src[lo + i, j]


@numba.njit(inline="always", **OPTS)
def _tanh(p, k, a, one):
    """tanh(a) from exp(-2|a|) = p * (float32 of bits k): (1 - e) / (1 + e), a's sign."""
    e = p * k
    t = (one - e) / (one + e)
    return t if a >= 0 else -t


@numba.njit(cache=True, **OPTS)
def gru_forward(gi, h0, w_hh_t, b_hh, offsets, sizes, hs, rz, n_out, ghn, one):
    """:func:`minis2s.ops.gru.gru_layer_forward`'s loop; fills hs, rz, n, ghn.
    ``one`` is 1 in the arrays' float type."""
    H, N, dt = gi.shape[1] // 3, h0.shape[0], gi.dtype
    minus_two = -(one + one)
    gh = np.empty((N, 3 * H), dt)  # the step's product
    p_rz, k_rz = np.empty((N, 2 * H), dt), np.empty((N, 2 * H), np.int32)
    g_rz = np.empty((N, 2 * H), dt)  # the step's r and z, row-major
    p_n, k_n = np.empty((N, H), dt), np.empty((N, H), np.int32)
    f_rz, f_n = k_rz.view(np.float32), k_n.view(np.float32)
    h = h0
    for s in range(offsets.size):
        lo, n = offsets[s], sizes[s]
        hp = h[:n]
        np.dot(hp, w_hh_t, gh[:n])
        for i in range(n):  # exp(-a) for r and z
            for j in range(2 * H):
                p_rz[i, j], k_rz[i, j] = exp_parts(-(gi[lo + i, j] + b_hh[j] + gh[i, j]))
        for i in range(n):  # r, z = sigmoid(a) = 1 / (1 + exp(-a))
            for j in range(2 * H):
                g_rz[i, j] = one / (one + p_rz[i, j] * f_rz[i, j])
        for i in range(n):  # the cache keeps them gate-major
            for j in range(H):
                rz[0, lo + i, j] = g_rz[i, j]
                rz[1, lo + i, j] = g_rz[i, H + j]
        for i in range(n):  # n's pre-activation, and exp(-2|a_n|) for its tanh
            for j in range(H):
                v = gh[i, 2 * H + j] + b_hh[2 * H + j]
                ghn[lo + i, j] = v
                a = gi[lo + i, 2 * H + j] + g_rz[i, j] * v
                n_out[lo + i, j] = a
                p_n[i, j], k_n[i, j] = exp_parts(minus_two * abs(a))
        for i in range(n):  # n = tanh(a_n); h' = n + z (h - n)
            for j in range(H):
                t = _tanh(p_n[i, j], f_n[i, j], n_out[lo + i, j], one)
                n_out[lo + i, j] = t
                hs[lo + i, j] = t + g_rz[i, H + j] * (hp[i, j] - t)
        h = hs[lo:lo + n]


@numba.njit(cache=True, **OPTS)
def gru_backward(dhs, has_dhs, dh, hprev, rz, n_out, ghn, weight_hh, offsets, sizes, dgh,
                 dgin, dbias, one):
    """:func:`minis2s.ops.gru.gru_layer_backward`'s loop; fills dgh, dgin, dh, and adds
    dgh's rows into dbias (b_hh's gradient)."""
    H, dt = hprev.shape[1], hprev.dtype
    back = np.empty((dh.shape[0], H), dt)
    for s in range(offsets.size - 1, -1, -1):
        lo, n = offsets[s], sizes[s]
        if has_dhs:  # from above, and from the next step (carried)
            _add_rows(dh, dhs, lo, n)
        for i in range(n):  # da_n = dh (1 - z)(1 - n²), da_z = dh (hprev - n) z (1 - z)
            for j in range(H):
                z, nn = rz[1, lo + i, j], n_out[lo + i, j]
                d = dh[i, j]
                dgin[lo + i, j] = d * (one - z) * (one - nn * nn)
                dgh[lo + i, H + j] = d * (hprev[lo + i, j] - nn) * z * (one - z)
                dh[i, j] = d * z  # to hprev directly; the product's share below
        for i in range(n):  # da_r = da_n ghn r (1 - r); dgh_n = da_n r
            for j in range(H):
                r, da_n = rz[0, lo + i, j], dgin[lo + i, j]
                dgh[lo + i, j] = da_n * ghn[lo + i, j] * r * (one - r)
                dgh[lo + i, 2 * H + j] = da_n * r
        _add_row_sums(dbias, dgh, lo, n)  # b_hh's gradient
        np.dot(dgh[lo:lo + n], weight_hh, back[:n])
        for i in range(n):
            for j in range(H):
                dh[i, j] += back[i, j]


@numba.njit(cache=True, **OPTS)
def lstm_forward(gi, h0, c0, w_inner_t, b_hh, offsets, sizes, hs, cs, tanh_c, acts, one):
    """:func:`minis2s.ops.lstm.lstm_layer_forward`'s loop; fills hs, cs, tanh_c and acts
    (gate-major, the inner order i, f, o, g). gi and b_hh are in PyTorch's order i, f, g,
    o; w_inner_t is W_hh^T with its columns in the inner order."""
    H, N, dt = h0.shape[1], h0.shape[0], gi.dtype
    minus_two = -(one + one)
    gh = np.empty((N, 4 * H), dt)  # the step's product, inner order
    p_s, k_s = np.empty((N, 3 * H), dt), np.empty((N, 3 * H), np.int32)
    g_s = np.empty((N, 3 * H), dt)  # the step's i, f, o, row-major
    p_t, k_t = np.empty((N, H), dt), np.empty((N, H), np.int32)
    g_t = np.empty((N, H), dt)  # the step's g
    f_s, f_t = k_s.view(np.float32), k_t.view(np.float32)
    h, c = h0, c0
    for s in range(offsets.size):
        lo, n = offsets[s], sizes[s]
        hp, cp = h[:n], c[:n]
        np.dot(hp, w_inner_t, gh[:n])
        for q in range(3):  # exp(-a) for i, f, o (PyTorch's blocks 0, 1, 3)
            src = q if q < 2 else 3
            for i in range(n):
                for j in range(H):
                    v = gi[lo + i, src * H + j] + b_hh[src * H + j] + gh[i, q * H + j]
                    p_s[i, q * H + j], k_s[i, q * H + j] = exp_parts(-v)
        for i in range(n):  # i, f, o = sigmoid(a) = 1 / (1 + exp(-a))
            for j in range(3 * H):
                g_s[i, j] = one / (one + p_s[i, j] * f_s[i, j])
        for i in range(n):  # g's pre-activation, and exp(-2|a_g|) for its tanh
            for j in range(H):
                a = gi[lo + i, 2 * H + j] + b_hh[2 * H + j] + gh[i, 3 * H + j]
                g_t[i, j] = a
                p_t[i, j], k_t[i, j] = exp_parts(minus_two * abs(a))
        for i in range(n):  # g = tanh(a_g); c' = f c + i g, and exp(-2|c'|) for tanh(c')
            for j in range(H):
                g = _tanh(p_t[i, j], f_t[i, j], g_t[i, j], one)
                g_t[i, j] = g
                cc = g_s[i, H + j] * cp[i, j] + g_s[i, j] * g
                cs[lo + i, j] = cc
                p_t[i, j], k_t[i, j] = exp_parts(minus_two * abs(cc))
        for i in range(n):  # h' = o tanh(c')
            for j in range(H):
                t = _tanh(p_t[i, j], f_t[i, j], cs[lo + i, j], one)
                tanh_c[lo + i, j] = t
                hs[lo + i, j] = g_s[i, 2 * H + j] * t
        for i in range(n):  # the cache keeps the gates gate-major
            for j in range(H):
                acts[0, lo + i, j] = g_s[i, j]
                acts[1, lo + i, j] = g_s[i, H + j]
                acts[2, lo + i, j] = g_s[i, 2 * H + j]
                acts[3, lo + i, j] = g_t[i, j]
        h, c = hs[lo:lo + n], cs[lo:lo + n]


@numba.njit(cache=True, **OPTS)
def lstm_backward(dhs, has_dhs, dh, dc, hprev, cprev, acts, tanh_c, weight_hh, offsets,
                  sizes, dgh, dbias, one):
    """:func:`minis2s.ops.lstm.lstm_layer_backward`'s loop; fills dgh (PyTorch's order
    i, f, g, o), dh, dc, and adds dgh's rows into dbias (b_hh's gradient)."""
    H = hprev.shape[1]
    for s in range(offsets.size - 1, -1, -1):
        lo, n = offsets[s], sizes[s]
        if has_dhs:  # from above, and from the next step (carried)
            _add_rows(dh, dhs, lo, n)
        for i in range(n):  # dc += dh o (1 - tanh(c)²); da_o = dh tanh(c) o (1 - o)
            for j in range(H):
                o, t, d = acts[2, lo + i, j], tanh_c[lo + i, j], dh[i, j]
                dc[i, j] += d * o * (one - t * t)
                dgh[lo + i, 3 * H + j] = d * t * o * (one - o)
        for i in range(n):  # da_i = dc g i (1 - i), da_g = dc i (1 - g²)
            for j in range(H):
                ig, g, d = acts[0, lo + i, j], acts[3, lo + i, j], dc[i, j]
                dgh[lo + i, j] = d * g * ig * (one - ig)
                dgh[lo + i, 2 * H + j] = d * ig * (one - g * g)
        for i in range(n):  # da_f = dc c_prev f (1 - f); to c_prev: dc f
            for j in range(H):
                f, d = acts[1, lo + i, j], dc[i, j]
                dgh[lo + i, H + j] = d * cprev[lo + i, j] * f * (one - f)
                dc[i, j] = d * f
        _add_row_sums(dbias, dgh, lo, n)  # b_hh's gradient
        np.dot(dgh[lo:lo + n], weight_hh, dh[:n])  # to h_prev: only through the gates


@numba.njit(cache=True, **OPTS)
def rnn_forward(gi, h0, w_hh_t, b_hh, offsets, sizes, hs, one):
    """:func:`minis2s.ops.rnn.rnn_layer_forward`'s loop; fills hs."""
    H, N, dt = h0.shape[1], h0.shape[0], gi.dtype
    minus_two = -(one + one)
    gh = np.empty((N, H), dt)
    p, k = np.empty((N, H), dt), np.empty((N, H), np.int32)
    f = k.view(np.float32)
    h = h0
    for s in range(offsets.size):
        lo, n = offsets[s], sizes[s]
        np.dot(h[:n], w_hh_t, gh[:n])
        for i in range(n):  # a = gi + b_hh + h W_hh^T, and exp(-2|a|) for its tanh
            for j in range(H):
                a = gi[lo + i, j] + b_hh[j] + gh[i, j]
                gh[i, j] = a
                p[i, j], k[i, j] = exp_parts(minus_two * abs(a))
        for i in range(n):  # h' = tanh(a)
            for j in range(H):
                hs[lo + i, j] = _tanh(p[i, j], f[i, j], gh[i, j], one)
        h = hs[lo:lo + n]


@numba.njit(cache=True, **OPTS)
def rnn_backward(dhs, has_dhs, dh, hs, weight_hh, offsets, sizes, da, dbias, one):
    """:func:`minis2s.ops.rnn.rnn_layer_backward`'s loop; fills da, dh, and adds da's rows
    into dbias (b_hh's gradient)."""
    H = hs.shape[1]
    for s in range(offsets.size - 1, -1, -1):
        lo, n = offsets[s], sizes[s]
        for i in range(n):  # da = (dh + dhs) (1 - h²): through tanh
            for j in range(H):
                d = dh[i, j] + dhs[lo + i, j] if has_dhs else dh[i, j]
                h = hs[lo + i, j]
                da[lo + i, j] = d * (one - h * h)
        _add_row_sums(dbias, da, lo, n)  # b_hh's gradient
        np.dot(da[lo:lo + n], weight_hh, dh[:n])  # to h_prev: through W_hh only
