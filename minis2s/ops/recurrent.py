"""Stacks of recurrent layers: layers, directions, dropout between layers, and the two
sequence layouts. The cell itself (GRU, LSTM, vanilla RNN) is a :class:`Cell`, given by
its own module; the stack only runs it.

Derivation: docs/derivations.md#recurrent-stack.

Sequences come padded, x (T, N, D), or packed, x (M, D) with ``batch_sizes`` (forward
direction only), as :mod:`.layout` describes; packed, no work is spent on padding.

A cell's state is a :class:`~.state.State`: h (GRU, vanilla RNN), or h and c (LSTM); a
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
from .layout import spans
from .state import State

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


def stack_flops(gates: int, T: int, input_size: int, hidden: int, layers: int,
                dirs: int = 1) -> float:
    """Matrix-product FLOPs of a stack's forward over T steps of one sequence: each
    layer's input and state products, every gate (the benchmark's nominal work)."""
    return sum(2 * T * ((input_size if k == 0 else dirs * hidden) + hidden) * gates * hidden
               * dirs for k in range(layers))


# ------------------------------------------------------------------------ schedules


class Schedule(NamedTuple):
    """Where each step's rows live in a (M, ·) array, in processing order."""

    offsets: list  # first row of each processed step
    sizes: list  # rows of each processed step (a prefix of the batch)
    reverse: bool  # steps processed from the last to the first


def schedule(T: int, N: int, batch_sizes, reverse: bool) -> Schedule:
    """The steps of one direction: time order, or (``reverse``) from the last step."""
    steps = spans(T, N, batch_sizes)
    if reverse:
        steps.reverse()
    return Schedule([lo for lo, _ in steps], [n for _, n in steps], reverse)


def previous_rows(first, rows, schedule: Schedule):
    """(M, H): for every row, the value its step started from — ``first``'s rows (N, H)
    for the first processed step, else the rows of the step processed before."""
    xp = array_module(rows)
    pieces, prev = [], None
    for lo, n in zip(schedule.offsets, schedule.sizes):
        pieces.append(first[:n] if prev is None else rows[prev:prev + n])
        prev = lo
    if schedule.reverse:
        pieces.reverse()  # back to row order
    if not pieces:
        return rows[:0]
    return xp.concatenate(pieces, axis=0)


# ------------------------------------------------------------------------ cells


class Cell(NamedTuple):
    """What a stack needs of a cell. ``layer_forward(gi, state0, weight_hh, bias_hh,
    schedule, probe) -> (hs, cache)`` runs one direction of one layer over the input
    projections gi (M, G·H) from ``state0`` (a :class:`State` of (N, H) arrays);
    ``layer_backward(dhs, dstate_last, cache, record) -> (dgi, dstate0, {"weight_hh",
    "bias_hh"})`` is its backprop through time; ``state_at(cache, lo, hi)`` is the State
    after the step that wrote rows lo:hi."""

    name: str
    gates: int  # G: gate blocks in the weights (1 RNN, 3 GRU, 4 LSTM)
    paired: bool  # the state has a cell state c beside h
    layer_forward: Callable
    layer_backward: Callable
    state_at: Callable


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
    state0: the initial :class:`State`, each array (L * dirs, N, H); None for zeros.
    dropout_masks: None, or L - 1 masks shaped like a layer's output (T, N, dirs * H) or
    (M, dirs * H), applied to the outputs of every layer but the last (inverted dropout).
    probes: None, or one (M, H) array per (layer, direction) added to that layer's states
    as they are made (zeros change nothing; their gradient is the total gradient of each
    state, which :func:`stack_backward` can record); a paired cell also takes a
    :class:`State` of two such arrays, the second added to its cell state c.
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
        N = state0.h.shape[1] if state0 is not None else (batch_sizes[0] if T else 0)
    if state0 is None:
        state0 = State.zeros((num_layers * dirs, N, H), w_hh0.dtype, xp, cell.paired)
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
            sched = schedule(T, N, batch_sizes, reverse=bool(d))
            hs, cache = cell.layer_forward(gi, state0.part(i), params["weight_hh" + sfx],
                                           params["bias_hh" + sfx], sched,
                                           None if probes is None else probes[i])
            layers.append(cache)
            if batch_sizes is None:
                last = sched.offsets[-1] if T else 0
                finals.append(cell.state_at(cache, last, last + N) if T
                              else state0.part(i))
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
    state_n = State.stack(finals) if batch_sizes is None else None
    return (out, state_n), cache


class StackGrads(NamedTuple):
    """What :func:`stack_backward` returns, whatever it was asked to record."""

    dx: Any  # like x; None when the forward took input_proj
    dproj: Any  # list per direction, shaped like input_proj; None when it took x
    dstate0: State  # like state0
    params: dict  # by parameter name (without the caller's prefix)
    recorded: Any  # list per (layer, direction) of (M, H) arrays; None unless recorded


def stack_backward(dout, dstate_n, cache: StackCache, record: bool | str = False
                   ) -> StackGrads:
    """Backward of :func:`stack_forward`: the forward read in reverse.

    dout: like the forward's out, or None; dstate_n: like state_n, or None.
    Returns :class:`StackGrads`. With ``record``, its ``recorded`` holds, per (layer,
    direction), the total gradient of every state h (M, H) — from above and from later
    steps — as the backprop through time carried it. With ``record="state"`` each entry
    is a :class:`State` instead: h's, and for a paired cell the total gradient of every
    cell state c too (c None for the others).
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
            fill = None
            if record:
                recorded[i] = _record_arrays(cell, layers[i].hs, record)
                # a cell without c fills h's array; a paired one, the State
                fill = recorded[i].h if isinstance(recorded[i], State) and not cell.paired \
                    else recorded[i]
            dgi, dstates[i], g = cell.layer_backward(
                dhs, None if dstate_n is None else dstate_n.part(i), layers[i], fill)
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
    given = inputs[0] is None
    return StackGrads(None if given else dinp.reshape(x_shape), dinp if given else None,
                      State.stack(dstates), grads, recorded if record else None)


def _record_arrays(cell: Cell, hs, record: bool | str):
    """What one layer's backward fills: an array like ``hs`` for h, or with ``record ==
    "state"`` a :class:`State` of them (a cell state's too where the cell has one)."""
    xp = array_module(hs)
    if record == "state":
        return State(xp.empty_like(hs), xp.empty_like(hs) if cell.paired else None)
    if record is not True:
        raise ValueError(f"record must be False, True or 'state', not {record!r}")
    return xp.empty_like(hs)
