"""GRU in PyTorch's formulation, with backprop through time.

Derivation: docs/derivations.md#gru (one step), #bptt (across time) and #gru-stack
(layers, directions, dropout, the static input and packed sequences).

Gate order r, z, n, as ``torch.nn.GRU``::

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Two levels:

* :func:`gru_layer_forward` / :func:`gru_layer_backward`: the recurrence of one direction of
  one layer, given the input projections ``gi = x W_ih^T + b_ih`` of all steps at once.
* :func:`gru_forward` / :func:`gru_backward`: a stack of layers, optionally bidirectional,
  with inverted dropout between layers and an optional *static* input: an (N, S) array
  concatenated to every step's input of layer 0 (the decoder's context). Its share of the
  input projection is computed once per sequence instead of once per step.

Sequences come in one of two layouts:

* padded, time-major: x (T, N, D); every step runs all N rows.
* packed (``batch_sizes`` given, as PyTorch's PackedSequence): x (M, D) holds step 0's
  rows, then step 1's, ...; step t has ``batch_sizes[t]`` rows, non-increasing in t, so
  rows are sorted by length and a finished sequence simply drops off the end. No work is
  spent on padding. Forward direction only.

Parameters use ``torch.nn.GRU``'s names: ``weight_ih_l{k}`` (3H, D_k), ``weight_hh_l{k}``
(3H, H), ``bias_ih_l{k}`` (3H,), ``bias_hh_l{k}`` (3H,), and ``..._reverse`` for the
backward direction.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module, overflow_ignored
from .dropout import dropout_backward, dropout_forward
from .embed_project import embed_project_backward, embed_project_forward


class Schedule(NamedTuple):
    """Where each step's rows live in a (M, ·) array, in processing order."""

    offsets: list  # first row of each processed step
    sizes: list  # rows of each processed step (a prefix of the batch)
    reverse: bool  # steps processed from the last to the first


def _schedule(T: int, N: int, batch_sizes, reverse: bool) -> Schedule:
    if batch_sizes is None:
        batch_sizes = [N] * T
    offsets, o = [], 0
    for n in batch_sizes:
        offsets.append(o)
        o += n
    steps = list(zip(offsets, batch_sizes))
    if reverse:
        steps.reverse()
    return Schedule([o for o, _ in steps], [n for _, n in steps], reverse)


class GRULayerCache(NamedTuple):
    h0: Any  # (N, H) state before the first processed step
    hs: Any  # (M, H) state after each row's step
    rz: Any  # (2, M, H) gates r (rz[0]) and z (rz[1])
    n: Any  # (M, H) candidate state
    ghn: Any  # (M, H) W_hn h + b_hn, the term that r scales
    weight_hh: Any  # (3H, H)
    schedule: Schedule


def _hprev(cache: GRULayerCache):
    """(M, H): the state each row's step started from (h0's rows, or the previous step's)."""
    xp = array_module(cache.hs)
    pieces, prev = [], None
    for o, k in zip(cache.schedule.offsets, cache.schedule.sizes):
        pieces.append(cache.h0[:k] if prev is None else cache.hs[prev:prev + k])
        prev = o
    if cache.schedule.reverse:
        pieces.reverse()  # back to row order
    if not pieces:
        return cache.hs[:0]
    return xp.concatenate(pieces, axis=0)


def gru_layer_forward(gi, h0, weight_hh, bias_hh, schedule: Schedule):
    """Run one GRU direction over precomputed input projections.

    gi (M, 3H) = x W_ih^T + b_ih for every row (overwritten: its r and z columns become
    -(gi + b_hh), see below); h0 (N, H); ``schedule`` orders the steps.
    Returns hs (M, H), the state after every row's step, and the cache.
    """
    xp = array_module(gi)
    M, H3 = gi.shape
    H, N = H3 // 3, h0.shape[0]
    dtype = gi.dtype
    # r and z only ever see the sum b_ih + b_hh: fold b_hh in once. The sigmoid is computed
    # as 1 / (1 + exp(-a)), so their columns of gi are negated at the same time:
    # gi_rz <- -b_hh_rz - gi_rz, and each step forms -a = gi_rz - (h W_hh^T)_rz.
    gi_rz = gi[:, :2 * H]
    xp.subtract(-bias_hh[:2 * H], gi_rz, out=gi_rz)
    w_hh_t = weight_hh.T  # a transposed view: the product reads it as it is
    b_hn = bias_hh[2 * H:]
    hs = xp.empty((M, H), dtype=dtype)
    rz = xp.empty((2, M, H), dtype=dtype)  # gate-major: r = rz[0], z = rz[1], contiguous
    n, ghn = xp.empty((M, H), dtype=dtype), xp.empty((M, H), dtype=dtype)
    gh = xp.empty((N, 3 * H), dtype=dtype)
    # r, z columns seen gate-major, (2, rows, H): the loop only slices their rows. gh is
    # contiguous, so its reshape is a view and follows every step's product.
    gi_rz_g = gi.reshape(M, 3, H)[:, :2].transpose(1, 0, 2)
    gh_rz_g = gh.reshape(N, 3, H)[:, :2].transpose(1, 0, 2)
    one = dtype.type(1)
    h = h0
    with overflow_ignored():  # exp(-a) = inf for a << 0 gives sigmoid(a) = 1 / inf = 0
        for o, k in zip(schedule.offsets, schedule.sizes):
            e = o + k
            hp = h[:k]
            g = xp.matmul(hp, w_hh_t, out=gh[:k])  # (k, 3H) = h W_hh^T
            s = rz[:, o:e]  # (2, k, H) = -a_r, -a_z
            xp.subtract(gi_rz_g[:, o:e], gh_rz_g[:, :k], out=s)
            xp.exp(s, out=s)
            s += one
            xp.divide(one, s, out=s)  # r and z = sigmoid(a)
            gn = xp.add(g[:, 2 * H:], b_hn, out=ghn[o:e])
            nn = xp.multiply(s[0], gn, out=n[o:e])
            nn += gi[o:e, 2 * H:]
            xp.tanh(nn, out=nn)  # n
            hh = xp.subtract(hp, nn, out=hs[o:e])  # h' = n + z (h - n) = (1 - z) n + z h
            hh *= s[1]
            hh += nn
            h = hh
    return hs, GRULayerCache(h0, hs, rz, n, ghn, weight_hh, schedule)


def gru_layer_backward(dhs, dh_last, cache: GRULayerCache):
    """Backprop through time for :func:`gru_layer_forward`.

    dhs (M, H): upstream gradient of every row's output (or None);
    dh_last (N, H): upstream gradient of the state after the last processed step (or None).
    Returns ``(dgi, dh0, {"weight_hh": dW_hh, "bias_hh": db_hh})`` with dgi (M, 3H).
    """
    h0, hs, rz, n, ghn, weight_hh, schedule = cache
    xp = array_module(hs)
    hprev = _hprev(cache)
    M, H = hs.shape
    N, dtype = h0.shape[0], hs.dtype
    r, z = rz[0], rz[1]
    # Factors that depend on the forward values only, for every row at once (big, cheap
    # operations); the time loop then only multiplies them by the carried gradient.
    one_minus_z = 1 - z
    a_n = xp.multiply(n, n)
    xp.subtract(1, a_n, out=a_n)
    a_n *= one_minus_z  # d a_n / d h  = (1 - z)(1 - n^2)
    a_z = xp.subtract(hprev, n)
    one_minus_z *= z
    a_z *= one_minus_z  # d a_z / d h  = (h_prev - n) z (1 - z)
    a_r = xp.subtract(1, r)
    a_r *= r
    a_r *= ghn  # d a_r / d a_n = ghn r (1 - r)
    dgh = xp.empty((M, 3 * H), dtype=dtype)  # gradient of gh = h W_hh^T + b_hh
    dgin = xp.empty((M, H), dtype=dtype)  # gradient of gi's n part (differs from gh's)
    dh = xp.zeros((N, H), dtype=dtype)  # gradient reaching the current state
    if dh_last is not None:
        dh += dh_last
    back = xp.empty((N, H), dtype=dtype)
    for o, k in zip(reversed(schedule.offsets), reversed(schedule.sizes)):
        e = o + k
        d = dh[:k]
        if dhs is not None:
            d += dhs[o:e]  # from above (the output) and from the next step (carried)
        an = xp.multiply(d, a_n[o:e], out=dgin[o:e])  # da_n = dh (1 - z)(1 - n^2)
        xp.multiply(d, a_z[o:e], out=dgh[o:e, H:2 * H])  # da_z = dh (h_prev - n) z (1 - z)
        xp.multiply(an, a_r[o:e], out=dgh[o:e, :H])  # da_r = da_n ghn r (1 - r)
        xp.multiply(an, r[o:e], out=dgh[o:e, 2 * H:])  # dgh_n = da_n r; dgh_rz = dgi_rz
        d *= z[o:e]  # to h_prev: directly, dh z ...
        d += xp.matmul(dgh[o:e], weight_hh, out=back[:k])  # ... and through gh
    # weight gradients as one product over all rows instead of one per step
    grads = {"weight_hh": dgh.T @ hprev, "bias_hh": dgh.sum(axis=0)}
    dgi = dgh  # r and z: gi and gh enter as a sum, so their gradients agree
    dgi[:, 2 * H:] = dgin  # n: gi_n is not scaled by r
    return dgi, dh, grads


class GRUCache(NamedTuple):
    x_shape: tuple  # (T, N, D) or (M, D)
    embedded: list  # per direction: layer 0's EmbedProjectCache, when x came as ids
    static: Any  # (N, S) or None
    inputs: list  # (M, D_k) input of each layer (after dropout)
    layers: list  # GRULayerCache per (layer, direction), in h_n order
    dropouts: list  # DropoutCache between layer k and k+1
    params: Any  # the parameter mapping
    batch_sizes: Any  # None (padded) or the packed step sizes
    num_layers: int
    num_directions: int


def _suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction else "")


def _per_step_sum(rows, batch_sizes, N):
    """(M, C) rows -> (N, C): each sequence's sum over its steps."""
    xp = array_module(rows)
    if batch_sizes is None:
        return rows.reshape(-1, N, rows.shape[-1]).sum(axis=0)
    out = xp.zeros((N, rows.shape[-1]), dtype=rows.dtype)
    o = 0
    for k in batch_sizes:
        out[:k] += rows[o:o + k]
        o += k
    return out


def _add_per_step(rows, per_seq, batch_sizes):
    """rows (M, C) += per_seq (N, C) broadcast over every sequence's steps, in place."""
    if batch_sizes is None:
        rows.reshape(-1, per_seq.shape[0], rows.shape[-1])[...] += per_seq
        return
    o = 0
    for k in batch_sizes:
        rows[o:o + k] += per_seq[:k]
        o += k


def gru_forward(x, params, num_layers, bidirectional=False, h0=None, dropout_masks=None,
                static=None, batch_sizes=None, embedding=None):
    """A stack of GRU layers over x: (T, N, D) padded, or (M, D) packed by ``batch_sizes``.

    With ``embedding`` (a (V, D) weight), x holds token ids ((T, N) or (M,)) and layer 0
    reads their embeddings: the lookup is fused with layer 0's input projection
    (:mod:`minis2s.ops.embed_project`), and the backward returns the embedding's gradient
    in place of dx.

    params: mapping with ``torch.nn.GRU``'s names (without a prefix); when ``static``
    (N, S) is given, ``weight_ih_l0`` has D + S columns: x's first, then static's.
    h0: (L * dirs, N, H) initial states in ``torch.nn.GRU``'s order, or None for zeros.
    dropout_masks: None, or L - 1 masks shaped like a layer's output (T, N, dirs * H) or
    (M, dirs * H), applied to the outputs of every layer but the last (inverted dropout).
    Returns ``(out, h_n), cache``: out (T, N, dirs * H) or (M, dirs * H), the top layer's
    outputs; h_n (L * dirs, N, H) the final states (None when packed).
    """
    xp = array_module(x)
    if batch_sizes is not None and bidirectional:
        raise ValueError("packed sequences run forward only")
    H = params["weight_hh_l0"].shape[1]
    dirs = 2 if bidirectional else 1
    shape = x.shape if embedding is None else (*x.shape, embedding.shape[1])
    if batch_sizes is None:
        T, N, D = shape
        inp = None if embedding is not None else x.reshape(T * N, D)
    else:
        T, D = len(batch_sizes), shape[1]
        inp = None if embedding is not None else x
        if h0 is not None:
            N = h0.shape[1]
        else:
            N = batch_sizes[0] if T else 0
    if h0 is None:
        h0 = xp.zeros((num_layers * dirs, N, H), dtype=params["weight_hh_l0"].dtype)
    sp = None
    if static is not None:  # [x_t ; s] W^T = x_t W_x^T + s W_s^T: s's part once per sequence
        sp = [static @ params["weight_ih" + _suffix(0, d)][:, D:].T for d in range(dirs)]
    inputs, layers, dropouts, h_n, embedded = [], [], [], [], []
    for k in range(num_layers):
        inputs.append(inp)
        outs = []
        for d in range(dirs):
            sfx = _suffix(k, d)
            w_ih = params["weight_ih" + sfx]
            if k == 0 and sp is not None:
                w_ih = w_ih[:, :D]
            if k == 0 and embedding is not None:
                gi, ecache = embed_project_forward(x, embedding, w_ih, params["bias_ih" + sfx])
                gi = gi.reshape(-1, gi.shape[-1])
                embedded.append(ecache)
            else:
                gi = inp @ w_ih.T  # all steps' input projections in one product
                gi += params["bias_ih" + sfx]
            if k == 0 and sp is not None:
                _add_per_step(gi, sp[d], batch_sizes)
            sched = _schedule(T, N, batch_sizes, reverse=bool(d))
            hs, cache = gru_layer_forward(gi, h0[k * dirs + d], params["weight_hh" + sfx],
                                          params["bias_hh" + sfx], sched)
            layers.append(cache)
            if batch_sizes is None:
                last = sched.offsets[-1] if T else 0
                h_n.append(hs[last:last + N] if T else h0[k * dirs + d])
            outs.append(hs)
        out = outs[0] if dirs == 1 else xp.concatenate(outs, axis=1)
        if k < num_layers - 1:
            mask = None if dropout_masks is None else dropout_masks[k]
            if mask is not None:
                mask = mask.reshape(out.shape)
            out, dcache = dropout_forward(out, mask)
            dropouts.append(dcache)
        inp = out
    cache = GRUCache(shape, embedded, static, inputs, layers, dropouts, params, batch_sizes,
                     num_layers, dirs)
    out = inp.reshape(T, N, dirs * H) if batch_sizes is None else inp
    return (out, xp.stack(h_n) if batch_sizes is None else None), cache


def gru_backward(dout, dh_n, cache: GRUCache):
    """Backward of :func:`gru_forward`: the forward read in reverse.

    dout: like the forward's out, or None; dh_n (L * dirs, N, H) or None.
    Returns ``(dx, dh0, dstatic, grads)``: dx like x (the embedding's gradient when the
    forward took ids), dh0 (L * dirs, N, H), dstatic (N, S) or None, and grads under the
    parameter names.
    """
    x_shape, embedded, static, inputs, layers, dropouts, params, batch_sizes, L, dirs = cache
    xp = array_module(layers[0].hs)
    dtype = layers[0].hs.dtype
    H = params["weight_hh_l0"].shape[1]
    N = layers[0].h0.shape[0]
    D = x_shape[-1]
    grads, dh0 = {}, xp.empty((L * dirs, N, H), dtype=dtype)
    dstatic = None
    dinp = None if dout is None else dout.reshape(-1, dirs * H)
    for k in reversed(range(L)):
        if k < L - 1 and dinp is not None:
            dinp = dropout_backward(dinp, dropouts[k])
        inp = inputs[k]
        dbelow = None  # gradient of this layer's input
        for d in range(dirs):
            sfx, i = _suffix(k, d), k * dirs + d
            dhs = None if dinp is None else dinp[:, d * H:(d + 1) * H]
            dgi, dh0[i], g = gru_layer_backward(dhs, None if dh_n is None else dh_n[i],
                                                layers[i])
            grads["weight_hh" + sfx], grads["bias_hh" + sfx] = g["weight_hh"], g["bias_hh"]
            w_ih = params["weight_ih" + sfx]
            if k == 0 and embedded:
                ge = embed_project_backward(dgi, embedded[d])
                grads["bias_ih" + sfx], dW_x = ge["bias"], ge["weight"]
            else:
                grads["bias_ih" + sfx] = dgi.sum(axis=0)
                dW_x = dgi.T @ inp  # sum over rows of dgi^T x
            if k == 0 and static is not None:
                dsp = _per_step_sum(dgi, batch_sizes, N)  # (N, 3H): static is in every step
                grads["weight_ih" + sfx] = xp.concatenate([dW_x, dsp.T @ static], axis=1)
                ds = dsp @ w_ih[:, D:]
                dstatic = ds if dstatic is None else dstatic + ds
                w_ih = w_ih[:, :D]
            else:
                grads["weight_ih" + sfx] = dW_x
            below = ge["embedding"] if k == 0 and embedded else dgi @ w_ih
            if dbelow is None:
                dbelow = below
            else:
                dbelow += below
        dinp = dbelow
    if embedded:
        return dinp, dh0, dstatic, grads
    return dinp.reshape(x_shape), dh0, dstatic, grads
