"""A trial kept for its measurements: a stack of GRU layers run as a wavefront, every
layer in the same NumPy calls, timed against the layer-by-layer stack minis2s uses.

    python benchmarks/wavefront.py [--repeats 200]

Layer k's step t needs layer k's step t - 1 and layer k - 1's step t, so step t of layer
k and step t + 1 of layer k - 1 can run together. At *wave* w layer k runs step
t = w - k, for every layer at once: a step's dozen small operations are made once per
wave on stacked (layers, rows, ·) arrays, and the layers' products h W_hh^T are one
batched product. A stack of L layers over T steps takes T + L - 1 waves instead of L·T
layer steps. The hope was that at the seed's size, where a NumPy call costs its dispatch
rather than its arithmetic, fewer calls would be less time. docs/performance.md
("Changes, predicted and measured") has what this script measured: slower, because
NumPy's time on these arrays follows the contiguous runs it walks, not the calls.

Everything a wave touches is stored *skewed*, wave-major: layer k's step t lives at
``[t + k, k]`` of an (S, L, N, ·) array, S = T + L - 1, so wave w's operands are the
block ``[w]``. The state is stored one slot later (layer k's h0 at ``[k, k]``), so the
state a step starts from is ``hs[w]`` and the one it makes ``hs[w + 1]``. Packed
sequences are laid out padded here (every step has N row slots, a finished sequence's
slots computed and thrown away); what they hold stays finite (layer 0's are zero where
they come in, those above carry biases and what came from below) and their gradient is
exactly zero, so they change no sum. tests/test_wavefront.py holds every
output and gradient equal to :func:`minis2s.ops.stack_forward` /
:func:`~minis2s.ops.stack_backward`'s to 1e-12 in float64.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, NamedTuple

import numpy as np

from minis2s.backend import array_module, overflow_ignored
from minis2s.ops import GRU, State, stack_backward, stack_forward, stack_param_shapes
from minis2s.ops.gru import bptt_factors


class Layout(NamedTuple):
    """Where the stack's rows live: T steps of up to N rows; ``rows`` gives each packed
    row's (step, position) in the padded (T, N) grid, None when the rows come padded."""

    T: int
    N: int
    sizes: list  # rows of each step
    rows: Any  # two (M,) index arrays, or None


def layout(T: int, N: int, batch_sizes, xp) -> Layout:
    if batch_sizes is None:
        return Layout(T, N, [N] * T, None)
    sizes = [int(n) for n in batch_sizes]
    steps = [t for t, n in enumerate(sizes) for _ in range(n)]
    places = [i for n in sizes for i in range(n)]
    return Layout(T, N, sizes, (xp.asarray(steps, dtype=xp.intp),
                                xp.asarray(places, dtype=xp.intp)))


def to_padded(a, lay: Layout, out):
    """Packed (M, F) or padded (T·N, F) rows into ``out`` (T, N, F), which may be a
    strided view; padded slots not given stay as out had them (zeros)."""
    if lay.rows is None:
        out[...] = a.reshape(out.shape)
    else:
        out[lay.rows] = a
    return out


def from_padded(a, lay: Layout):
    """(T, N, F) to the caller's rows: (T·N, F) padded, (M, F) packed."""
    return a.reshape(-1, a.shape[-1]) if lay.rows is None else a[lay.rows]


def _waves(lay: Layout, L: int):
    """(w, a, b, n) for every wave: layers a..b-1 are active (layer k at step w - k), on
    the first n rows (the rows of the earliest active step, which has the most)."""
    for w in range(lay.T + L - 1):
        a, b = max(0, w - lay.T + 1), min(L - 1, w) + 1
        yield w, a, b, lay.sizes[w - b + 1]


class WaveCache(NamedTuple):
    lay: Layout
    hs: Any  # (S + 1, L, N, H): layer k's state after step t at [t + k + 1, k], h0 at [k, k]
    rz: Any  # (S, 2, L, N, H): gates r, z of layer k's step t at [t + k, :, k]
    n: Any  # (S, L, N, H): candidate state
    ghn: Any  # (S, L, N, H): W_hn h + b_hn
    x: Any  # (S + 1, L - 1, N, H): layer k's output after dropout, as hs; or None
    masks: Any  # (S + 1, L - 1, N, H) skewed like x; None without dropout
    weight_ih: list  # layers 1.. L-1: (3H, H)
    weight_hh: list  # (3H, H) per layer


def wave_forward(gi0, state0: State, weights_ih, biases_ih, weights_hh, biases_hh, T, N,
                 batch_sizes=None, dropout_masks=None):
    """All L layers of a one-direction GRU stack, as a wavefront.

    gi0 (T·N or M, 3H): layer 0's input projections x W_ih^T + b_ih (read only);
    state0: h0 (L, N, H); weights_ih, biases_ih: layers 1 to L - 1; weights_hh,
    biases_hh: every layer; batch_sizes: None (padded) or the packed step sizes;
    dropout_masks: None, or L - 1 masks like a layer's output (rows as gi0's), applied
    to every layer's output but the last's.
    Returns ``(out, h_n), cache``: out (rows, H) the top layer's states, h_n (L, N, H)
    each layer's state after step T - 1 (None when packed).
    """
    xp = array_module(gi0)
    L, H, dtype = len(weights_hh), weights_hh[0].shape[1], gi0.dtype
    lay = layout(T, N, batch_sizes, xp)
    S = T + L - 1
    # a: what each step reads from its input, rz columns as -(gi_rz + b_hh_rz) (the
    # sigmoid is taken as 1 / (1 + exp(-a))), n columns gi_n
    a = xp.zeros((S, L, N, 3 * H), dtype=dtype)
    first = xp.empty_like(gi0)
    xp.subtract(-biases_hh[0][:2 * H], gi0[:, :2 * H], out=first[:, :2 * H])
    first[:, 2 * H:] = gi0[:, 2 * H:]
    to_padded(first, lay, a[:T, 0])
    # layers above: x W_ih^T, then + c, made at each wave; the rz columns negated
    sign = xp.ones(3 * H, dtype=dtype)
    sign[:2 * H] = -1
    w_ih_t = [None] + [w.T * sign for w in weights_ih]  # (H, 3H), rz columns negated
    c = [None] + [xp.concatenate([-(b_ih[:2 * H] + b_hh[:2 * H]), b_ih[2 * H:]])
                  for b_ih, b_hh in zip(biases_ih, biases_hh[1:])]
    w_ih_t = xp.stack(w_ih_t[1:]) if L > 1 else None  # (L - 1, H, 3H)
    c = xp.stack(c[1:])[:, None] if L > 1 else None  # (L - 1, 1, 3H)
    w_hh_t = xp.stack([w.T for w in weights_hh])  # (L, H, 3H)
    b_hn = xp.stack([b[2 * H:] for b in biases_hh])[:, None]  # (L, 1, H)

    hs = xp.zeros((S + 1, L, N, H), dtype=dtype)
    for k in range(L):
        hs[k, k] = state0.h[k]
    rz = xp.zeros((S, 2, L, N, H), dtype=dtype)
    n, ghn = xp.zeros((S, L, N, H), dtype=dtype), xp.zeros((S, L, N, H), dtype=dtype)
    masks = x = None
    if dropout_masks is not None and L > 1:
        masks = xp.zeros((S + 1, L - 1, N, H), dtype=dtype)
        for k in range(L - 1):
            to_padded(dropout_masks[k].reshape(-1, H), lay, masks[k + 1:k + 1 + T, k])
        x = xp.zeros((S + 1, L - 1, N, H), dtype=dtype)
    gh = xp.empty((L, N, 3 * H), dtype=dtype)
    one = dtype.type(1)
    with overflow_ignored():  # exp(-a) = inf for a << 0 gives sigmoid(a) = 1 / inf = 0
        for w, lo, hi, m in _waves(lay, L):
            hp = hs[w, lo:hi, :m]  # (layers, m, H): the states the steps start from
            g = xp.matmul(hp, w_hh_t[lo:hi], out=gh[lo:hi, :m])  # h W_hh^T, every layer
            aw = a[w, lo:hi, :m]
            s = rz[w, :, lo:hi, :m]  # (2, layers, m, H)
            xp.subtract(_rz(aw, H), _rz(g, H), out=s)  # -a_r, -a_z
            xp.exp(s, out=s)
            s += one
            xp.divide(one, s, out=s)  # r and z
            gn = xp.add(g[..., 2 * H:], b_hn[lo:hi], out=ghn[w, lo:hi, :m])
            nn = xp.multiply(s[0], gn, out=n[w, lo:hi, :m])
            nn += aw[..., 2 * H:]
            xp.tanh(nn, out=nn)  # n
            hh = xp.subtract(hp, nn, out=hs[w + 1, lo:hi, :m])  # h' = n + z (h - n)
            hh *= s[1]
            hh += nn
            up = min(hi, L - 1)  # layers lo..up-1 feed the layer above, at the same step
            if up > lo:
                inp = hs[w + 1, lo:up, :m]
                if masks is not None:
                    inp = xp.multiply(inp, masks[w + 1, lo:up, :m], out=x[w + 1, lo:up, :m])
                nxt = xp.matmul(inp, w_ih_t[lo:up], out=a[w + 1, lo + 1:up + 1, :m])
                nxt += c[lo:up]
    out = from_padded(hs[L:L + T, L - 1], lay)
    # layer k's state after step T - 1 is in slot T + k
    h_n = None if batch_sizes is not None else hs[xp.arange(T, T + L), xp.arange(L)]
    cache = WaveCache(lay, hs, rz, n, ghn, x, masks, list(weights_ih), list(weights_hh))
    return (out, h_n), cache


def _rz(a, H):
    """The r and z columns of (..., 3H) as a gate-major (2, ..., H) view."""
    v = a[..., :2 * H].reshape(*a.shape[:-1], 2, H)
    return v.transpose(v.ndim - 2, *range(v.ndim - 2), v.ndim - 1)


class WaveGrads(NamedTuple):
    dgi0: Any  # (rows, 3H): layer 0's input projections
    dh0: Any  # (L, N, H)
    weight_ih: list  # layers 1..L-1
    bias_ih: list
    weight_hh: list  # every layer
    bias_hh: list
    recorded: Any  # list per layer of (rows, H) total gradients of every state, or None


def wave_backward(dout, dh_n, cache: WaveCache, record: bool = False) -> WaveGrads:
    """Backprop through time of :func:`wave_forward`, as a wavefront run backwards: at
    wave w layer k takes step t = w - k, the top layer first.

    dout (rows, H): gradient of the top layer's outputs, or None; dh_n (L, N, H): of the
    final states, or None. With ``record``, every layer's total gradient of every state
    (from above and from later steps) as BPTT carried it, rows as the caller's.
    """
    lay, hs, rz, n, ghn, x, masks, weights_ih, weights_hh = cache
    xp = array_module(hs)
    S1, L, N, H = hs.shape
    T, S, dtype = lay.T, S1 - 1, hs.dtype
    hprev = hs[:S]  # the state each slot's step started from
    k_n, k_z, k_r = bptt_factors(rz.transpose(1, 0, 2, 3, 4), n, ghn, hprev)
    # gradient of each step's pre-activations, columns [dgh_n, da_r, da_z, da_n]: the
    # first three are the gradient of gh = h W_hh^T + b_hh in the order (n, r, z), the
    # last three that of gi = x W_ih^T + b_ih in the order (r, z, n)
    g = xp.zeros((S, L, N, 4 * H), dtype=dtype)
    up = xp.zeros((S, L, N, H), dtype=dtype)  # gradient from above, skewed like g
    if dout is not None:
        to_padded(dout, lay, up[L - 1:L - 1 + T, L - 1])
    dh = xp.zeros((L, N, H), dtype=dtype)  # carried to the state each layer is at
    if dh_n is not None:
        dh += dh_n
    rec = xp.zeros((S, L, N, H), dtype=dtype) if record else None
    perm = xp.concatenate([xp.arange(2 * H, 3 * H), xp.arange(2 * H)])  # (n, r, z) rows
    w_hh = xp.stack([w[perm] for w in weights_hh])  # (L, 3H, H) in g's gh order
    w_ih = xp.stack(weights_ih) if L > 1 else None  # (L - 1, 3H, H)
    back = xp.empty((L, N, H), dtype=dtype)
    for w, lo, hi, m in reversed(list(_waves(lay, L))):
        d = dh[lo:hi, :m]
        d += up[w, lo:hi, :m]  # from above, and from the next step (carried)
        if rec is not None:
            rec[w, lo:hi, :m] = d
        gw = g[w, lo:hi, :m]
        da_n = xp.multiply(d, k_n[w, lo:hi, :m], out=gw[..., 3 * H:])  # dh (1 - z)(1 - n²)
        xp.multiply(d, k_z[w, lo:hi, :m], out=gw[..., 2 * H:3 * H])  # da_z
        xp.multiply(da_n, k_r[w, lo:hi, :m], out=gw[..., H:2 * H])  # da_r = da_n ghn r(1-r)
        xp.multiply(da_n, rz[w, 0, lo:hi, :m], out=gw[..., :H])  # dgh_n = da_n r
        d *= rz[w, 1, lo:hi, :m]  # to the previous state: directly, dh z ...
        d += xp.matmul(gw[..., :3 * H], w_hh[lo:hi], out=back[lo:hi, :m])  # ... through gh
        below = max(lo, 1)  # layers below..hi-1 send their input's gradient down
        if hi > below:
            dx = xp.matmul(g[w, below:hi, :m, H:], w_ih[below - 1:hi - 1],
                           out=up[w - 1, below - 1:hi - 1, :m])
            if masks is not None:
                dx *= masks[w, below - 1:hi - 1, :m]
    gw_hh, gb_hh, gw_ih, gb_ih = [], [], [], []
    unperm = xp.concatenate([xp.arange(H, 3 * H), xp.arange(H)])  # (n, r, z) to (r, z, n)
    for k in range(L):
        gk = g[k:k + T, k].reshape(T * N, 4 * H)
        dgh = gk[:, :3 * H]
        gw_hh.append((dgh.T @ hprev[k:k + T, k].reshape(T * N, H))[unperm])
        gb_hh.append(dgh.sum(axis=0)[unperm])
        if k:
            dgi = gk[:, H:]
            inp = (hs if x is None else x)[k:k + T, k - 1].reshape(T * N, H)
            gw_ih.append(dgi.T @ inp)
            gb_ih.append(dgi.sum(axis=0))
    dgi0 = from_padded(g[:T, 0, :, H:], lay)
    recorded = None if rec is None else [from_padded(rec[k:k + T, k], lay) for k in range(L)]
    return WaveGrads(dgi0, dh, gw_ih, gb_ih, gw_hh, gb_hh, recorded)


# ------------------------------------------------------------------------ as a stack


def stack_params(params: dict, L: int):
    """A stack's parameters (PyTorch's names, as :func:`minis2s.ops.stack_forward` takes
    them) as the wavefront's lists: W_ih and b_ih of layers 1.., W_hh and b_hh of all."""
    return ([params[f"weight_ih_l{k}"] for k in range(1, L)],
            [params[f"bias_ih_l{k}"] for k in range(1, L)],
            [params[f"weight_hh_l{k}"] for k in range(L)],
            [params[f"bias_hh_l{k}"] for k in range(L)])


def wave_grads(w: WaveGrads) -> dict:
    """The wavefront's parameter gradients under the stack's names (layer 0's input
    projection is the caller's, as with ``input_proj``)."""
    grads = {}
    for k in range(len(w.weight_hh)):
        grads[f"weight_hh_l{k}"], grads[f"bias_hh_l{k}"] = w.weight_hh[k], w.bias_hh[k]
        if k:
            grads[f"weight_ih_l{k}"] = w.weight_ih[k - 1]
            grads[f"bias_ih_l{k}"] = w.bias_ih[k - 1]
    return grads


# ------------------------------------------------------------------------ the timing


def shapes(rng, dtype, T=10, N=64, D=32, H=32, L=2):
    """A zh-shaped stack (the seed's encoder and decoder: 2 layers, 64 rows, 32 units, up
    to 10 steps): parameters, layer 0's projections and dropout masks, padded and packed
    (step sizes of 64 target lengths drawn from 2..10, as the decoder packs them)."""
    params = {k: (rng.standard_normal(s) * 0.3).astype(dtype)
              for k, s in stack_param_shapes(3, D, H, L).items()}
    lengths = np.sort(rng.integers(2, T + 1, N))[::-1]
    sizes = [int((lengths > t).sum()) for t in range(T)]
    out = {}
    for name, bs in (("padded (encoder)", None), ("packed (decoder)", sizes)):
        M = T * N if bs is None else sum(bs)
        proj = rng.standard_normal((M, 3 * H)).astype(dtype)
        masks = [(rng.random((M, H)) > 0.2).astype(dtype) / dtype(0.8) for _ in range(L - 1)]
        out[name] = (proj, masks, bs, rng.standard_normal((M, H)).astype(dtype))
    return params, out, T, N, H, L


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    params, cases, T, N, H, L = shapes(rng, np.float32)
    lists = stack_params(params, L)
    state0 = State(np.zeros((L, N, H), np.float32))
    print(f"GRU stack, {L} layers, up to {T} steps of {N} rows, H {H}, float32; "
          f"medians of {args.repeats}, the two alternating (ms)")
    for name, (proj, masks, bs, dout) in cases.items():
        given = proj if bs is not None else proj.reshape(T, N, 3 * H)  # as the stack takes it
        times = {"layers forward": [], "layers backward": [], "wave forward": [],
                 "wave backward": []}
        for _ in range(args.repeats + 1):
            t0 = time.perf_counter()
            _, cache = stack_forward(GRU, None, params, L, state0=state0,
                                     dropout_masks=masks, batch_sizes=bs, input_proj=[given])
            t1 = time.perf_counter()
            stack_backward(dout, None, cache)
            t2 = time.perf_counter()
            _, wcache = wave_forward(proj, state0, *lists, T, N, bs, masks)
            t3 = time.perf_counter()
            wave_backward(dout, None, wcache)
            t4 = time.perf_counter()
            for key, a, b in zip(times, (t0, t1, t2, t3), (t1, t2, t3, t4)):
                times[key].append((b - a) * 1e3)
        med = {k: statistics.median(v[1:]) for k, v in times.items()}
        print(f"  {name}: forward {med['layers forward']:.3f} -> {med['wave forward']:.3f}, "
              f"backward {med['layers backward']:.3f} -> {med['wave backward']:.3f} "
              "(layer by layer -> wavefront)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
