"""The decoder's first state: the encoder's final state itself, or, when the decoder has
another number of units (``cfg.decoder_hiddens``), that state mapped by a learned bridge.

Derivation: docs/derivations.md#bridge.

With equal widths (the default) the decoder starts from the encoder's final state, layer
k from layer k, as the seed does, and there are no bridge parameters. Otherwise every
decoder layer l starts from ``tanh(h_top W_lᵀ + b_l)``, h_top (N, W) the encoder's
top-layer final h (both directions side by side), W_l (Wd, W): one product
``decoder.bridge`` of (L·Wd, W) gives all L layers. The top layer's final state is the
one that has read the whole source through every layer, and it is the one Bahdanau et al.
start their decoder from; the lower layers' final states then reach the decoder through
it only. An LSTM's cell state c is mapped the same way from the top layer's final c, by
its own ``decoder.bridge_c``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from ..ops import State, bridge_backward, bridge_forward
from .weights import dense_params

BRIDGES = ("decoder.bridge.", "decoder.bridge_c.")  # h's, then the LSTM's c's


class InitialStateCache(NamedTuple):
    encoder_state: State  # (L, N, W): what the gradient's shape follows
    bridges: Any  # per array of the state (h, and c), its BridgeCache


def bridge_params(cfg) -> dict:
    """``decoder.bridge.*`` (and ``decoder.bridge_c.*`` for the LSTM): nn.Linear's weight
    (L·Wd, W) and bias (L·Wd,) each; none when the widths are equal."""
    if not cfg.has_bridge:
        return {}
    parts = BRIDGES[:2 if cfg.recurrent.paired else 1]
    return {name: spec for prefix in parts for name, spec in dense_params(
        prefix, cfg.encoder_width, cfg.num_layers * cfg.decoder_units).items()}


def initial_state_forward(params, cfg, state: State):
    """The encoder's final state (L, N, W) -> ``(the decoder's first state (L, N, Wd),
    cache)``; the state itself (and a None cache) when there is no bridge."""
    if not cfg.has_bridge:
        return state, None
    L, Wd = cfg.num_layers, cfg.decoder_units
    out, caches = [], []
    for prefix, top in zip(BRIDGES, state.map(lambda s: s[-1])):
        if top is None:
            continue
        s0, cache = bridge_forward(top, params[prefix + "weight"], params[prefix + "bias"])
        N = s0.shape[0]  # (N, L·Wd) -> (L, N, Wd): layer l's columns l·Wd to (l+1)·Wd
        out.append(s0.reshape(N, L, Wd).transpose(1, 0, 2).copy())
        caches.append(cache)
    return State(*out), InitialStateCache(state, caches)


def initial_state_backward(dstate0: State, cache: InitialStateCache | None):
    """dstate0, the gradient of the decoder's first state -> ``(the gradient of the
    encoder's final state, the bridge's parameter gradients by full name)``. Without a
    bridge, dstate0 itself and no parameters."""
    if cache is None:
        return dstate0, {}
    dstate = cache.encoder_state.map(array_module(dstate0.h).zeros_like)
    grads = {}
    for prefix, d, bcache, dst in zip(BRIDGES, dstate0, cache.bridges, dstate):
        L, N, Wd = d.shape
        dtop, g = bridge_backward(d.transpose(1, 0, 2).reshape(N, L * Wd), bcache)
        dst[-1] = dtop  # only the top layer's final state was read
        grads.update({prefix + k: v for k, v in g.items()})
    return dstate, grads


def bridge_flops(cfg) -> float:
    """Matrix-product FLOPs of the bridge (0 without one)."""
    if not cfg.has_bridge:
        return 0.0
    parts = 2 if cfg.recurrent.paired else 1
    return 2.0 * parts * cfg.encoder_width * cfg.num_layers * cfg.decoder_units
