"""A stack of recurrent layers, written to be read: layer after layer, each direction its
own loop over time, the two directions' outputs side by side, dropout between layers.

This is what :func:`minis2s.ops.stack_forward` / :func:`~minis2s.ops.stack_backward`
compute on a padded batch, without their tricks (layer 0's projections made by the
caller, packed rows, the flat layout); those are tested against this to 1e-12.

Shapes: T steps, N batch, D input features, H hidden units, L layers, dirs 1 or 2.
Parameters have ``torch.nn.GRU``'s names (``weight_ih_l0``, ``weight_hh_l1_reverse``, ...);
a state is h, or (h, c) for the LSTM, each (L·dirs, N, H), row ``l · dirs + direction``
for layer l and direction 0 (forward) or 1 (reverse); docs/derivations.md writes the
direction ``dir``.
"""

from __future__ import annotations

from ...backend import array_module
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .rnn import rnn_backward, rnn_forward

LOOPS = {"rnn": (rnn_forward, rnn_backward), "gru": (gru_forward, gru_backward),
         "lstm": (lstm_forward, lstm_backward)}
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _suffix(l, direction):
    return f"_l{l}" + ("_reverse" if direction else "")


def _row(state, i):
    """Row i (one layer, one direction) of a stacked state: h, or (h, c)."""
    return tuple(part[i] for part in state) if isinstance(state, tuple) else state[i]


def _stack(rows):
    """Rows of per-direction states back into one stacked state."""
    xp = array_module(rows[0][0] if isinstance(rows[0], tuple) else rows[0])
    if isinstance(rows[0], tuple):
        return tuple(xp.stack([r[j] for r in rows]) for j in range(len(rows[0])))
    return xp.stack(rows)


def stack_forward(cell, x, params, num_layers, bidirectional, state0, dropout_masks=None):
    """x (T, N, D) -> ``(out (T, N, dirs·H), final state like state0), cache``.
    dropout_masks: None, or L - 1 masks (T, N, dirs·H) for the outputs of every layer
    but the last."""
    loop_forward, _ = LOOPS[cell]
    dirs = 2 if bidirectional else 1
    xp = array_module(x)
    inp, finals, steps = x, [], []
    for l in range(num_layers):
        outs = []
        for direction in range(dirs):
            p = {name: params[name + _suffix(l, direction)] for name in NAMES}
            hs, last, caches = loop_forward(inp, _row(state0, l * dirs + direction), p,
                                            reverse=bool(direction))  # 1 reads from the end
            outs.append(hs)
            finals.append(last)
            steps.append(caches)
        out = xp.concatenate(outs, axis=2)  # (T, N, dirs·H): forward, then reverse
        if l < num_layers - 1 and dropout_masks is not None:
            out = out * dropout_masks[l]  # inverted dropout on the next layer's input
        inp = out
    return (inp, _stack(finals)), (cell, steps, dropout_masks, num_layers, dirs)


def stack_backward(dout, dstate_n, cache):
    """dout (T, N, dirs·H), dstate_n like the final state -> ``(dx, dstate0, grads)``:
    the forward read from the top layer down."""
    cell, steps, dropout_masks, num_layers, dirs = cache
    _, loop_backward = LOOPS[cell]
    H = dout.shape[2] // dirs
    grads, dstate0 = {}, [None] * (num_layers * dirs)
    for l in range(num_layers - 1, -1, -1):
        if l < num_layers - 1 and dropout_masks is not None:
            dout = dout * dropout_masks[l]  # out = out · mask: the same mask
        dinp = 0
        for direction in range(dirs):
            i = l * dirs + direction
            dhs = dout[:, :, direction * H:(direction + 1) * H]  # this direction's share
            dx, dstate0[i], layer_grads = loop_backward(dhs, _row(dstate_n, i), steps[i],
                                                        reverse=bool(direction))
            dinp = dinp + dx  # both directions read the same input
            grads.update({name + _suffix(l, direction): layer_grads[name] for name in NAMES})
        dout = dinp  # the gradient of this layer's input is that of the layer below's output
    return dout, _stack(dstate0), grads
