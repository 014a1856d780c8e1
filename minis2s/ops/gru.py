"""GRU in PyTorch's formulation, with backprop through time.

Derivation: docs/derivations.md#gru (one step), #bptt (across time) and #gru-stack
(layers, directions, dropout and packed sequences).

Gate order r, z, n, as ``torch.nn.GRU``::

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Two levels:

* :func:`gru_layer_forward` / :func:`gru_layer_backward`: the recurrence of one direction of
  one layer, given the input projections ``gi = x W_ih^T + b_ih`` of all steps at once.
* :func:`gru_forward` / :func:`gru_backward`: a stack of layers, optionally bidirectional,
  with inverted dropout between layers. Layer 0 either projects its input ``x`` itself or
  takes its projections ready-made from the caller (``input_proj``): the model decides
  what goes into the recurrence (an embedding lookup, a context) and the stack only runs
  it.

Sequences come in one of two layouts:

* padded, time-major: x (T, N, D); every step runs all N rows.
* packed (``batch_sizes`` given, as PyTorch's PackedSequence): x (M, D) holds step 0's
  rows, then step 1's, ...; step t has ``batch_sizes[t]`` rows, non-increasing in t, so
  rows are sorted by length and a finished sequence simply drops off the end. No work is
  spent on padding. Forward direction only.

Parameters use ``torch.nn.GRU``'s names (:func:`gru_param_shapes`): ``weight_ih_l{k}``
(3H, D_k), ``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}`` (3H,), ``bias_hh_l{k}`` (3H,), and
``..._reverse`` for the backward direction.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module, overflow_ignored
from .dropout import dropout_backward, dropout_forward

# ------------------------------------------------------------------------ parameter names


def param_suffix(layer: int, direction: int) -> str:
    """``torch.nn.GRU``'s suffix of layer ``layer``, direction ``direction`` (1: reverse)."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def gru_param_shapes(input_size: int, hidden: int, layers: int, dirs: int = 1,
                     prefix: str = "") -> dict[str, tuple]:
    """Every parameter of a GRU stack by name (after ``prefix``), in ``torch.nn.GRU``'s
    order and shapes: layer 0 reads ``input_size`` features, layer k > 0 reads
    ``dirs * hidden`` (both directions of the layer below)."""
    shapes = {}
    for k in range(layers):
        for d in range(dirs):
            sfx = param_suffix(k, d)
            d_in = input_size if k == 0 else hidden * dirs
            shapes[f"{prefix}weight_ih{sfx}"] = (3 * hidden, d_in)
            shapes[f"{prefix}weight_hh{sfx}"] = (3 * hidden, hidden)
            shapes[f"{prefix}bias_ih{sfx}"] = (3 * hidden,)
            shapes[f"{prefix}bias_hh{sfx}"] = (3 * hidden,)
    return shapes


# ------------------------------------------------------------------------ one layer


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

    gi (M, 3H) = x W_ih^T + b_ih for every row (read only); h0 (N, H); ``schedule`` orders
    the steps. Returns hs (M, H), the state after every row's step, and the cache.
    """
    xp = array_module(gi)
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
        for o, k in zip(schedule.offsets, schedule.sizes):
            e = o + k
            hp = h[:k]
            g = xp.matmul(hp, w_hh_t, out=gh[:k])  # (k, 3H) = h W_hh^T
            s = rz[:, o:e]  # (2, k, H)
            s -= gh_rz_g[:, :k]  # -a_r, -a_z
            xp.exp(s, out=s)
            s += one
            xp.divide(one, s, out=s)  # r and z = sigmoid(a)
            gn = xp.add(g[:, 2 * H:], b_hn, out=ghn[o:e])
            nn = xp.multiply(s[0], gn, out=n[o:e])
            nn += gi_n[o:e]
            xp.tanh(nn, out=nn)  # n
            hh = xp.subtract(hp, nn, out=hs[o:e])  # h' = n + z (h - n) = (1 - z) n + z h
            hh *= s[1]
            hh += nn
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


def gru_layer_backward(dhs, dh_last, cache: GRULayerCache):
    """Backprop through time for :func:`gru_layer_forward` (the cache is left intact).

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
    k_n, k_z, k_r = bptt_factors(rz, n, ghn, hprev)
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
        an = xp.multiply(d, k_n[o:e], out=dgin[o:e])  # da_n = dh (1 - z)(1 - n²)
        xp.multiply(d, k_z[o:e], out=dgh[o:e, H:2 * H])  # da_z = dh (hprev - n) z (1 - z)
        xp.multiply(an, k_r[o:e], out=dgh[o:e, :H])  # da_r = da_n ghn r (1 - r)
        xp.multiply(an, r[o:e], out=dgh[o:e, 2 * H:])  # dgh_n = da_n r; dgh_rz = dgi_rz
        d *= z[o:e]  # to hprev: directly, dh z ...
        d += xp.matmul(dgh[o:e], weight_hh, out=back[:k])  # ... and through gh
    # weight gradients as one product over all rows instead of one per step
    grads = {"weight_hh": dgh.T @ hprev, "bias_hh": dgh.sum(axis=0)}
    dgi = dgh  # r and z: gi and gh enter as a sum, so their gradients agree
    dgi[:, 2 * H:] = dgin  # n: gi_n is not scaled by r
    return dgi, dh, grads


# ------------------------------------------------------------------------ the stack


class GRUCache(NamedTuple):
    x_shape: Any  # (T, N, D) or (M, D); None when layer 0's projections came ready-made
    proj_shape: tuple  # (T, N, 3H) or (M, 3H): layer 0's input projections
    inputs: list  # (M, D_k) input of each layer (after dropout); None for layer 0 if given
    layers: list  # GRULayerCache per (layer, direction), in h_n order
    dropouts: list  # DropoutCache between layer k and k+1
    params: Any  # the parameter mapping
    batch_sizes: Any  # None (padded) or the packed step sizes
    num_layers: int
    num_directions: int


def gru_forward(x, params, num_layers, bidirectional=False, h0=None, dropout_masks=None,
                batch_sizes=None, input_proj=None):
    """A stack of GRU layers over x: (T, N, D) padded, or (M, D) packed by ``batch_sizes``.

    params: mapping with ``torch.nn.GRU``'s names (without a prefix).
    input_proj: None, or layer 0's input projections made by the caller, one array per
    direction shaped (T, N, 3H) or (M, 3H), read only; x is then None and the stack does
    not touch ``weight_ih_l0`` or ``bias_ih_l0`` (the caller owns that part).
    h0: (L * dirs, N, H) initial states in ``torch.nn.GRU``'s order, or None for zeros.
    dropout_masks: None, or L - 1 masks shaped like a layer's output (T, N, dirs * H) or
    (M, dirs * H), applied to the outputs of every layer but the last (inverted dropout).
    Returns ``(out, h_n), cache``: out (T, N, dirs * H) or (M, dirs * H), the top layer's
    outputs; h_n (L * dirs, N, H) the final states (None when packed).
    """
    if batch_sizes is not None and bidirectional:
        raise ValueError("packed sequences run forward only")
    if (x is None) == (input_proj is None):
        raise ValueError("give either x or input_proj")
    H = params["weight_hh_l0"].shape[1]
    dirs = 2 if bidirectional else 1
    first = x if x is not None else input_proj[0]
    xp = array_module(first)
    proj_shape = (*first.shape[:-1], 3 * H)
    if batch_sizes is None:
        T, N = first.shape[:2]
    else:
        T = len(batch_sizes)
        N = h0.shape[1] if h0 is not None else (batch_sizes[0] if T else 0)
    if h0 is None:
        h0 = xp.zeros((num_layers * dirs, N, H), dtype=params["weight_hh_l0"].dtype)
    inp = None if x is None else x.reshape(-1, x.shape[-1])
    inputs, layers, dropouts, h_n = [], [], [], []
    for k in range(num_layers):
        inputs.append(inp)
        outs = []
        for d in range(dirs):
            sfx = param_suffix(k, d)
            if inp is None:  # layer 0, projections given
                gi = input_proj[d].reshape(-1, 3 * H)
            else:
                gi = inp @ params["weight_ih" + sfx].T  # all steps' projections at once
                gi += params["bias_ih" + sfx]
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
    cache = GRUCache(None if x is None else x.shape, proj_shape, inputs, layers, dropouts,
                     params, batch_sizes, num_layers, dirs)
    out = inp.reshape(T, N, dirs * H) if batch_sizes is None else inp
    return (out, xp.stack(h_n) if batch_sizes is None else None), cache


def gru_backward(dout, dh_n, cache: GRUCache):
    """Backward of :func:`gru_forward`: the forward read in reverse.

    dout: like the forward's out, or None; dh_n (L * dirs, N, H) or None.
    Returns ``(dx, dh0, grads)``: dx like x — or, when the forward took ``input_proj``, a
    list of the projections' gradients, one per direction, shaped like them —, dh0
    (L * dirs, N, H), and grads under the parameter names.
    """
    x_shape, proj_shape, inputs, layers, dropouts, params, batch_sizes, L, dirs = cache
    xp = array_module(layers[0].hs)
    dtype = layers[0].hs.dtype
    H = params["weight_hh_l0"].shape[1]
    N = layers[0].h0.shape[0]
    grads, dh0 = {}, xp.empty((L * dirs, N, H), dtype=dtype)
    dinp = None if dout is None else dout.reshape(-1, dirs * H)
    for k in reversed(range(L)):
        if k < L - 1 and dinp is not None:
            dinp = dropout_backward(dinp, dropouts[k])
        inp = inputs[k]
        dbelow = []  # per direction: the gradient of this layer's input (or projections)
        for d in range(dirs):
            sfx, i = param_suffix(k, d), k * dirs + d
            dhs = None if dinp is None else dinp[:, d * H:(d + 1) * H]
            dgi, dh0[i], g = gru_layer_backward(dhs, None if dh_n is None else dh_n[i],
                                                layers[i])
            grads["weight_hh" + sfx], grads["bias_hh" + sfx] = g["weight_hh"], g["bias_hh"]
            if inp is None:  # projections given: their gradient goes back to the caller
                dbelow.append(dgi.reshape(proj_shape))
                continue
            grads["bias_ih" + sfx] = dgi.sum(axis=0)
            grads["weight_ih" + sfx] = dgi.T @ inp  # sum over rows of dgi^T x
            dbelow.append(dgi @ params["weight_ih" + sfx])
        if inputs[k] is None:
            return dbelow, dh0, grads
        dinp = dbelow[0] if dirs == 1 else dbelow[0] + dbelow[1]  # both read the same inp
    return dinp.reshape(x_shape), dh0, grads
