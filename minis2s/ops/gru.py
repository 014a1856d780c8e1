"""GRU in PyTorch's formulation, with backprop through time.

Derivation: docs/derivations.md#gru (one step), #bptt (across time) and #gru-stack
(layers, directions, dropout and the static input).

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

Parameters use ``torch.nn.GRU``'s names: ``weight_ih_l{k}`` (3H, D_k), ``weight_hh_l{k}``
(3H, H), ``bias_ih_l{k}`` (3H,), ``bias_hh_l{k}`` (3H,), and ``..._reverse`` for the
backward direction. Sequences are time-major: x is (T, N, D).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from .dropout import dropout_backward, dropout_forward


def _sigmoid_(a):
    """In-place logistic function via tanh: sigma(a) = 0.5 tanh(a / 2) + 0.5 (no overflow)."""
    xp = array_module(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


class GRULayerCache(NamedTuple):
    h0: Any  # (N, H) state before step 0
    hs: Any  # (T, N, H) state after each step
    rz: Any  # (T, N, 2H) gates r and z
    n: Any  # (T, N, H) candidate state
    ghn: Any  # (T, N, H) W_hn h + b_hn, the term that r scales
    weight_hh: Any  # (3H, H)


def gru_layer_forward(gi, h0, weight_hh, bias_hh):
    """Run one GRU direction over precomputed input projections.

    gi (T, N, 3H) = x W_ih^T + b_ih for every step; h0 (N, H).
    Returns hs (T, N, H), the state after every step, and the cache.
    """
    xp = array_module(gi)
    T, N, H3 = gi.shape
    H = H3 // 3
    hs = xp.empty((T, N, H), dtype=gi.dtype)
    rz = xp.empty((T, N, 2 * H), dtype=gi.dtype)
    n = xp.empty((T, N, H), dtype=gi.dtype)
    ghn = xp.empty((T, N, H), dtype=gi.dtype)
    h = h0
    for t in range(T):
        gh = h @ weight_hh.T + bias_hh  # (N, 3H) hidden projections
        xp.add(gi[t, :, : 2 * H], gh[:, : 2 * H], out=rz[t])
        _sigmoid_(rz[t])  # r and z
        ghn[t] = gh[:, 2 * H :]
        xp.multiply(rz[t, :, :H], ghn[t], out=n[t])
        n[t] += gi[t, :, 2 * H :]
        xp.tanh(n[t], out=n[t])  # n
        # h' = (1 - z) n + z h  =  n + z (h - n)
        xp.subtract(h, n[t], out=hs[t])
        hs[t] *= rz[t, :, H:]
        hs[t] += n[t]
        h = hs[t]
    return hs, GRULayerCache(h0, hs, rz, n, ghn, weight_hh)


def gru_layer_backward(dhs, dh_last, cache: GRULayerCache):
    """Backprop through time for :func:`gru_layer_forward`.

    dhs (T, N, H): upstream gradient of every step's output (or None);
    dh_last (N, H): upstream gradient of the final state (or None).
    Returns ``(dgi, dh0, {"weight_hh": dW_hh, "bias_hh": db_hh})`` with dgi (T, N, 3H).
    """
    h0, hs, rz, n, ghn, weight_hh = cache
    xp = array_module(hs)
    T, N, H = hs.shape
    dgi = xp.empty((T, N, 3 * H), dtype=hs.dtype)
    dgh = xp.empty((T, N, 3 * H), dtype=hs.dtype)  # gradient of gh = h W_hh^T + b_hh
    dh = xp.zeros((N, H), dtype=hs.dtype) if dh_last is None else dh_last
    for t in reversed(range(T)):
        if dhs is not None:
            dh = dh + dhs[t]  # total gradient reaching h_t: from above and from step t+1
        h_prev = hs[t - 1] if t > 0 else h0
        r, z, n_t = rz[t, :, :H], rz[t, :, H:], n[t]
        dn = dh * (1 - z)  # h_t = (1 - z) n + z h_prev
        dz = dh * (h_prev - n_t)
        da_n = dn * (1 - n_t * n_t)  # through tanh: a_n = gi_n + r * ghn
        dgi[t, :, :H] = da_n * ghn[t] * r * (1 - r)  # dr, then through sigmoid
        dgi[t, :, H : 2 * H] = dz * z * (1 - z)  # through sigmoid
        dgi[t, :, 2 * H :] = da_n
        dgh[t, :, : 2 * H] = dgi[t, :, : 2 * H]  # r, z: gi and gh enter as a sum
        dgh[t, :, 2 * H :] = da_n * r  # n: gh_n is scaled by r
        dh = dh * z + dgh[t] @ weight_hh  # to h_prev: directly and through gh
    # weight gradients as one product over all steps instead of one per step
    h_prev_all = xp.concatenate([h0[None], hs[:-1]], axis=0).reshape(T * N, H)
    dgh2 = dgh.reshape(T * N, 3 * H)
    grads = {"weight_hh": dgh2.T @ h_prev_all, "bias_hh": dgh2.sum(axis=0)}
    return dgi, dh, grads


class GRUCache(NamedTuple):
    x: Any  # (T, N, D) input of layer 0
    static: Any  # (N, S) or None
    inputs: list  # input of each layer (after dropout), layer 0's is x
    layers: list  # GRULayerCache per (layer, direction), in h_n order
    dropouts: list  # DropoutCache between layer k and k+1
    params: Any  # the parameter mapping
    num_layers: int
    num_directions: int


def _suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction else "")


def gru_forward(x, params, num_layers, bidirectional=False, h0=None, dropout_masks=None,
                static=None):
    """A stack of GRU layers over x (T, N, D).

    params: mapping with ``torch.nn.GRU``'s names (without a prefix); when ``static``
    (N, S) is given, ``weight_ih_l0`` has D + S columns: x's first, then static's.
    h0: (L * dirs, N, H) initial states in ``torch.nn.GRU``'s order, or None for zeros.
    dropout_masks: None, or L - 1 masks (T, N, dirs * H) applied to the outputs of every
    layer but the last (inverted dropout; see :mod:`minis2s.ops.dropout`).
    Returns ``(out, h_n), cache`` with out (T, N, dirs * H) the top layer's outputs and
    h_n (L * dirs, N, H) the final states.
    """
    xp = array_module(x)
    T, N, D = x.shape
    dirs = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    if h0 is None:
        h0 = xp.zeros((num_layers * dirs, N, H), dtype=x.dtype)
    inp, inputs, layers, dropouts, h_n = x, [], [], [], []
    for k in range(num_layers):
        inputs.append(inp)
        outs = []
        for d in range(dirs):
            sfx = _suffix(k, d)
            w_ih, b_ih = params["weight_ih" + sfx], params["bias_ih" + sfx]
            if k == 0 and static is not None:
                # [x_t ; s] W^T = x_t W_x^T + s W_s^T: the static part once per sequence
                gi = inp @ w_ih[:, :D].T + (static @ w_ih[:, D:].T + b_ih)
            else:
                gi = inp @ w_ih.T + b_ih  # all steps' input projections in one product
            if d:
                gi = gi[::-1]  # the reverse direction reads time backwards
            hs, cache = gru_layer_forward(gi, h0[k * dirs + d], params["weight_hh" + sfx],
                                          params["bias_hh" + sfx])
            layers.append(cache)
            h_n.append(hs[-1])
            outs.append(hs[::-1] if d else hs)
        out = outs[0] if dirs == 1 else xp.concatenate(outs, axis=-1)
        if k < num_layers - 1:
            out, dcache = dropout_forward(out, None if dropout_masks is None
                                          else dropout_masks[k])
            dropouts.append(dcache)
        inp = out
    cache = GRUCache(x, static, inputs, layers, dropouts, params, num_layers, dirs)
    return (inp, xp.stack(h_n)), cache


def gru_backward(dout, dh_n, cache: GRUCache):
    """Backward of :func:`gru_forward`: the forward read in reverse.

    dout (T, N, dirs * H) or None; dh_n (L * dirs, N, H) or None.
    Returns ``(dx, dh0, dstatic, grads)``: dx (T, N, D), dh0 (L * dirs, N, H),
    dstatic (N, S) or None, and grads under the parameter names.
    """
    x, static, inputs, layers, dropouts, params, L, dirs = cache
    xp = array_module(x)
    T, N, D = x.shape
    H = params["weight_hh_l0"].shape[1]
    grads, dh0 = {}, xp.zeros((L * dirs, N, H), dtype=x.dtype)
    dstatic = None
    dinp = dout
    for k in reversed(range(L)):
        if k < L - 1 and dinp is not None:
            dinp = dropout_backward(dinp, dropouts[k])
        inp = inputs[k]
        Dk = inp.shape[-1]
        dbelow = xp.zeros((T, N, Dk), dtype=x.dtype)  # gradient of this layer's input
        for d in range(dirs):
            sfx, i = _suffix(k, d), k * dirs + d
            dhs = None if dinp is None else dinp[..., d * H:(d + 1) * H]
            if d and dhs is not None:
                dhs = dhs[::-1]
            dgi, dh0[i], g = gru_layer_backward(dhs, None if dh_n is None else dh_n[i],
                                                layers[i])
            if d:
                dgi = dgi[::-1]  # back to forward time order
            grads["weight_hh" + sfx], grads["bias_hh" + sfx] = g["weight_hh"], g["bias_hh"]
            w_ih = params["weight_ih" + sfx]
            dgi2 = dgi.reshape(T * N, 3 * H)
            grads["bias_ih" + sfx] = dgi2.sum(axis=0)
            dW_x = dgi2.T @ inp.reshape(T * N, Dk)  # sum over steps of dgi_t^T x_t
            if k == 0 and static is not None:
                dgi_sum = dgi.sum(axis=0)  # (N, 3H): static enters every step alike
                grads["weight_ih" + sfx] = xp.concatenate([dW_x, dgi_sum.T @ static], axis=1)
                ds = dgi_sum @ w_ih[:, Dk:]
                dstatic = ds if dstatic is None else dstatic + ds
                dbelow += dgi @ w_ih[:, :Dk]
            else:
                grads["weight_ih" + sfx] = dW_x
                dbelow += dgi @ w_ih
        dinp = dbelow
    return dinp, dh0, dstatic, grads
