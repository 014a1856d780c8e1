"""Stacks of recurrent layers: layers, directions, dropout between layers, and the two
sequence layouts. The cell itself (GRU, LSTM, vanilla RNN) is a :class:`Cell`, given by
its own module; the stack only runs it.

Derivation: docs/derivations.md#recurrent-stack.

Sequences come in one of two layouts:

* padded, time-major: x (T, N, D); every step runs all N rows.
* packed (``batch_sizes`` given, as PyTorch's PackedSequence): x (M, D) holds step 0's
  rows, then step 1's, ...; step t has ``batch_sizes[t]`` rows, non-increasing in t, so
  rows are sorted by length and a finished sequence simply drops off the end. No work is
  spent on padding. Forward direction only.

A cell's state is its hidden state h (GRU, vanilla RNN) or the pair (h, c) (LSTM); a
stack's state holds one per (layer, direction), ``(L * dirs, N, H)`` arrays in PyTorch's
order. Parameters have ``torch.nn.GRU`` / ``LSTM`` / ``RNN``'s names and shapes
(:func:`stack_param_shapes`): ``weight_ih_l{k}`` (G·H, D_k), ``weight_hh_l{k}`` (G·H, H),
``bias_ih_l{k}``, ``bias_hh_l{k}`` (G·H,), ``..._reverse`` for the backward direction,
with G the cell's number of gate blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..backend import array_module
from .dropout import dropout_backward, dropout_forward

# ------------------------------------------------------------------------ parameter names


def param_suffix(layer: int, direction: int) -> str:
    """PyTorch's suffix of layer ``layer``, direction ``direction`` (1: reverse)."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def stack_param_shapes(gates: int, input_size: int, hidden: int, layers: int, dirs: int = 1,
                       prefix: str = "") -> dict[str, tuple]:
    """Every parameter of a stack by name (after ``prefix``), in PyTorch's order and
    shapes: layer 0 reads ``input_size`` features, layer k > 0 reads ``dirs * hidden``
    (both directions of the layer below); each weight has ``gates * hidden`` rows."""
    shapes = {}
    for k in range(layers):
        for d in range(dirs):
            sfx = param_suffix(k, d)
            d_in = input_size if k == 0 else hidden * dirs
            shapes[f"{prefix}weight_ih{sfx}"] = (gates * hidden, d_in)
            shapes[f"{prefix}weight_hh{sfx}"] = (gates * hidden, hidden)
            shapes[f"{prefix}bias_ih{sfx}"] = (gates * hidden,)
            shapes[f"{prefix}bias_hh{sfx}"] = (gates * hidden,)
    return shapes


# ------------------------------------------------------------------------ schedules


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


def previous_rows(first, rows, schedule: Schedule):
    """(M, H): for every row, the value its step started from — ``first``'s rows (N, H)
    for the first processed step, else the rows of the step processed before."""
    xp = array_module(rows)
    pieces, prev = [], None
    for o, k in zip(schedule.offsets, schedule.sizes):
        pieces.append(first[:k] if prev is None else rows[prev:prev + k])
        prev = o
    if schedule.reverse:
        pieces.reverse()  # back to row order
    if not pieces:
        return rows[:0]
    return xp.concatenate(pieces, axis=0)


# ------------------------------------------------------------------------ cells


class Cell(NamedTuple):
    """What a stack needs of a cell. ``layer_forward(gi, state0, weight_hh, bias_hh,
    schedule, probe) -> (hs, cache)`` runs one direction of one layer over the input
    projections gi (M, G·H); ``layer_backward(dhs, dstate_last, cache, record) -> (dgi,
    dstate0, {"weight_hh", "bias_hh"})`` is its backprop through time; ``state_at(cache,
    lo, hi)`` is the state after the step that wrote rows lo:hi."""

    name: str
    gates: int  # G: gate blocks in the weights (1 RNN, 3 GRU, 4 LSTM)
    paired: bool  # the state is (h, c)
    layer_forward: Callable
    layer_backward: Callable
    state_at: Callable


def _part(state, i):
    """The (layer, direction) ``i`` of a stack state: h0[i], or (h0[i], c0[i])."""
    return tuple(s[i] for s in state) if isinstance(state, tuple) else state[i]


def _stacked(xp, parts, paired):
    """One stack state from per-(layer, direction) states."""
    if paired:
        return tuple(xp.stack([p[j] for p in parts]) for j in range(2))
    return xp.stack(parts)


# ------------------------------------------------------------------------ the stack


class StackCache(NamedTuple):
    cell: Cell
    x_shape: Any  # (T, N, D) or (M, D); None when layer 0's projections came ready-made
    proj_shape: tuple  # (T, N, G·H) or (M, G·H): layer 0's input projections
    inputs: list  # (M, D_k) input of each layer (after dropout); None for layer 0 if given
    layers: list  # the layer caches per (layer, direction), in h_n order
    dropouts: list  # DropoutCache between layer k and k+1
    params: Any  # the parameter mapping
    batch_sizes: Any  # None (padded) or the packed step sizes
    num_layers: int
    num_directions: int


def stack_forward(cell: Cell, x, params, num_layers, bidirectional=False, state0=None,
                  dropout_masks=None, batch_sizes=None, input_proj=None, probes=None):
    """A stack of ``cell`` layers over x: (T, N, D) padded, or (M, D) packed.

    params: mapping with PyTorch's names (without a prefix).
    input_proj: None, or layer 0's input projections made by the caller, one array per
    direction shaped (T, N, G·H) or (M, G·H), read only; x is then None and the stack does
    not touch ``weight_ih_l0`` or ``bias_ih_l0`` (the caller owns that part).
    state0: the initial state, h0 or (h0, c0), each (L * dirs, N, H); None for zeros.
    dropout_masks: None, or L - 1 masks shaped like a layer's output (T, N, dirs * H) or
    (M, dirs * H), applied to the outputs of every layer but the last (inverted dropout).
    probes: None, or one (M, H) array per (layer, direction) added to that layer's states
    as they are made (zeros change nothing; their gradient is the total gradient of each
    state, which :func:`stack_backward` can record).
    Returns ``(out, state_n), cache``: out (T, N, dirs * H) or (M, dirs * H), the top
    layer's outputs; state_n the final state like state0 (None when packed).
    """
    if batch_sizes is not None and bidirectional:
        raise ValueError("packed sequences run forward only")
    if (x is None) == (input_proj is None):
        raise ValueError("give either x or input_proj")
    w_hh0 = params["weight_hh" + param_suffix(0, 0)]
    H = w_hh0.shape[1]
    dirs = 2 if bidirectional else 1
    first = x if x is not None else input_proj[0]
    xp = array_module(first)
    proj_shape = (*first.shape[:-1], cell.gates * H)
    if batch_sizes is None:
        T, N = first.shape[:2]
    else:
        T = len(batch_sizes)
        h0 = None if state0 is None else (state0[0] if cell.paired else state0)
        N = h0.shape[1] if h0 is not None else (batch_sizes[0] if T else 0)
    if state0 is None:
        zeros = xp.zeros((num_layers * dirs, N, H), dtype=w_hh0.dtype)
        state0 = (zeros, zeros) if cell.paired else zeros
    inp = None if x is None else x.reshape(-1, x.shape[-1])
    inputs, layers, dropouts, finals = [], [], [], []
    for k in range(num_layers):
        inputs.append(inp)
        outs = []
        for d in range(dirs):
            sfx, i = param_suffix(k, d), k * dirs + d
            if inp is None:  # layer 0, projections given
                gi = input_proj[d].reshape(-1, cell.gates * H)
            else:
                gi = inp @ params["weight_ih" + sfx].T  # all steps' projections at once
                gi += params["bias_ih" + sfx]
            sched = _schedule(T, N, batch_sizes, reverse=bool(d))
            hs, cache = cell.layer_forward(gi, _part(state0, i), params["weight_hh" + sfx],
                                           params["bias_hh" + sfx], sched,
                                           None if probes is None else probes[i])
            layers.append(cache)
            if batch_sizes is None:
                last = sched.offsets[-1] if T else 0
                finals.append(cell.state_at(cache, last, last + N) if T
                              else _part(state0, i))
            outs.append(hs)
        out = outs[0] if dirs == 1 else xp.concatenate(outs, axis=1)
        if k < num_layers - 1:
            mask = None if dropout_masks is None else dropout_masks[k]
            if mask is not None:
                mask = mask.reshape(out.shape)
            out, dcache = dropout_forward(out, mask)
            dropouts.append(dcache)
        inp = out
    cache = StackCache(cell, None if x is None else x.shape, proj_shape, inputs, layers,
                       dropouts, params, batch_sizes, num_layers, dirs)
    out = inp.reshape(T, N, dirs * H) if batch_sizes is None else inp
    state_n = _stacked(xp, finals, cell.paired) if batch_sizes is None else None
    return (out, state_n), cache


def stack_backward(dout, dstate_n, cache: StackCache, record: bool = False):
    """Backward of :func:`stack_forward`: the forward read in reverse.

    dout: like the forward's out, or None; dstate_n: like state_n, or None.
    Returns ``(dx, dstate0, grads)``: dx like x — or, when the forward took
    ``input_proj``, a list of the projections' gradients, one per direction, shaped like
    them —, dstate0 like state0, and grads under the parameter names. With ``record``, a
    fourth value: per (layer, direction), the total gradient of every state h (M, H) —
    from above and from later steps — as the backprop through time carried it.
    """
    cell, x_shape, proj_shape, inputs, layers, dropouts, params, batch_sizes, L, dirs = cache
    H = params["weight_hh" + param_suffix(0, 0)].shape[1]
    grads, dstates = {}, [None] * (L * dirs)
    recorded = [None] * (L * dirs)
    dinp = None if dout is None else dout.reshape(-1, dirs * H)
    for k in reversed(range(L)):
        if k < L - 1 and dinp is not None:
            dinp = dropout_backward(dinp, dropouts[k])
        inp = inputs[k]
        dbelow = []  # per direction: the gradient of this layer's input (or projections)
        for d in range(dirs):
            sfx, i = param_suffix(k, d), k * dirs + d
            dhs = None if dinp is None else dinp[:, d * H:(d + 1) * H]
            if record:
                recorded[i] = array_module(layers[i].hs).empty_like(layers[i].hs)
            dgi, dstates[i], g = cell.layer_backward(
                dhs, None if dstate_n is None else _part(dstate_n, i), layers[i],
                recorded[i])
            grads["weight_hh" + sfx], grads["bias_hh" + sfx] = g["weight_hh"], g["bias_hh"]
            if inp is None:  # projections given: their gradient goes back to the caller
                dbelow.append(dgi.reshape(proj_shape))
                continue
            grads["bias_ih" + sfx] = dgi.sum(axis=0)
            grads["weight_ih" + sfx] = dgi.T @ inp  # sum over rows of dgi^T x
            dbelow.append(dgi @ params["weight_ih" + sfx])
        if inp is None:
            dinp = dbelow
            break
        dinp = dbelow[0] if dirs == 1 else dbelow[0] + dbelow[1]  # both read the same inp
    xp = array_module(layers[0].hs)
    dx = dinp if inputs[0] is None else dinp.reshape(x_shape)
    result = (dx, _stacked(xp, dstates, cell.paired), grads)
    return (*result, recorded) if record else result
