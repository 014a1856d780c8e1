"""A hidden tanh layer between the decoder's state and the vocabulary projection: Pascanu
et al.'s "deep output", ``train --output-layer deep``.

Derivation: docs/derivations.md#deep-output.

``hidden = tanh(state U_sᵀ + context U_cᵀ + emb(ids) U_eᵀ + b)``, with ``U = [U_s, U_c,
U_e]`` one (K, Wd + W + E) matrix whose columns read the decoder's top-layer output, the
context and the embedding of the step's input token, in that order; the logits are then a
dense layer of ``hidden``. Nothing is concatenated: the embedding's share goes through the
fused lookup (:mod:`.embed_project`), and a context that is the same at every step of a
sequence (the seed's decoder) is projected once per sequence and added at each of its
steps (:mod:`.repeat_steps`); a context that changes at every step (attention) has one
row per (step, sequence), as the state does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module
from .embed_project import embed_project_backward, embed_project_forward
from .repeat_steps import repeat_steps_add_backward, repeat_steps_add_forward


class DeepOutputCache(NamedTuple):
    state: Any  # (..., Wd) the decoder's top-layer outputs
    context: Any  # (N, W) per sequence, or (..., W) a row per state row
    repeat: Any  # the RepeatStepsCache of a per-sequence context, else None
    embedded: Any  # the EmbedProjectCache of the embeddings' share
    weight: Any  # (K, Wd + W + E)
    hidden: Any  # (..., K) tanh's output, whose derivative it gives


def deep_output_forward(state, context, ids, embedding, weight, bias, batch_sizes=None,
                        per_sequence: bool = False):
    """state (..., Wd) in the stacks' layout (padded (T, N, Wd) or rows (M, Wd)), ids of
    the same leading shape, embedding (V, E), weight (K, Wd + W + E), bias (K,); context
    (N, W) when ``per_sequence`` (laid out over the steps as
    :func:`~.repeat_steps.repeat_steps_add_forward` does, by ``batch_sizes``), else a row
    per state row (..., W). Returns ``hidden (..., K), cache``."""
    xp = array_module(state)
    Wd, W = state.shape[-1], context.shape[-1]
    a, embedded = embed_project_forward(ids, embedding, weight[:, Wd + W:], bias)
    w_c = weight[:, Wd:Wd + W]
    repeat = None
    if per_sequence:
        a, repeat = repeat_steps_add_forward(a, context @ w_c.T, batch_sizes)
    else:
        a += context @ w_c.T
    a += state @ weight[:, :Wd].T
    hidden = xp.tanh(a, out=a)
    return hidden, DeepOutputCache(state, context, repeat, embedded, weight, hidden)


def deep_output_backward(dhidden, cache: DeepOutputCache):
    """dhidden (..., K) -> ``(dstate, dcontext, {"weight", "bias", "embedding"})``, the
    context's gradient shaped as the context was given."""
    xp = array_module(dhidden)
    state, context, repeat, embedded, weight, hidden = cache
    Wd, W = state.shape[-1], context.shape[-1]
    K = weight.shape[0]
    da = dhidden * (1.0 - hidden * hidden)  # through tanh
    ge = embed_project_backward(da, embedded)  # the embedding, U_e, b
    da2 = da.reshape(-1, K)
    w_c = weight[:, Wd:Wd + W]
    if repeat is not None:  # context U_cᵀ was added at every step of its sequence
        dsp = repeat_steps_add_backward(da, repeat)  # (N, K)
        dcontext, dw_c = dsp @ w_c, dsp.T @ context
    else:
        dcontext, dw_c = da @ w_c, da2.T @ context.reshape(-1, W)
    dstate = da @ weight[:, :Wd]
    dw_s = da2.T @ state.reshape(-1, Wd)
    return dstate, dcontext, {"weight": xp.concatenate([dw_s, dw_c, ge["weight"]], axis=1),
                              "bias": ge["bias"], "embedding": ge["embedding"]}
