"""The decoder's output layer, from its top-layer outputs to the logits
(``cfg.output_layer``, ``train --output-layer``): ``"dense"``, the seed's dense layer
``decoder.dense``, or ``"deep"``, Pascanu et al.'s deep output: a tanh layer
``decoder.deep`` of Wd units that reads the decoder's output, the step's context and the
embedding of the step's input token (:mod:`minis2s.ops.deep_output`), then the dense
layer. Both decoders call it, the seed's with its one context per sequence, attention with
a context per step.

Derivation: docs/derivations.md#deep-output.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..ops import deep_output_backward, deep_output_forward, dense_backward, dense_forward
from ..settings import CHOICES
from .weights import dense_params

OUTPUT_LAYERS = {"dense": "the seed's: a dense layer of the decoder's output",
                 "deep": "a tanh layer of [output ; context ; embedding], then the dense one"}
CHOICES["output_layer"] = OUTPUT_LAYERS  # what --output-layer and ModelConfig may name
DEEP = "decoder.deep."
DENSE = "decoder.dense."


class OutputCache(NamedTuple):
    deep: Any  # the DeepOutputCache, or None for the dense layer alone
    dense: Any


def output_params(cfg) -> dict:
    """``decoder.deep.*`` ((Wd, Wd + W + E) and (Wd,), deep only) and ``decoder.dense.*``
    ((V, Wd) and (V,)), as nn.Linear initialises them."""
    Wd = cfg.decoder_units
    deep = {} if cfg.output_layer == "dense" else dense_params(
        DEEP, Wd + cfg.encoder_width + cfg.embed_size, Wd)
    return {**deep, **dense_params(DENSE, Wd, cfg.tgt_vocab_size)}


def output_forward(params, cfg, out, context, ids, batch_sizes=None,
                   per_sequence: bool = False):
    """out (..., Wd) -> ``logits (..., V), cache``. The deep layer also reads ``context``
    ((N, W) once per sequence when ``per_sequence``, laid out by ``batch_sizes``; else a
    row per row of ``out``) and ``ids`` (the step's input tokens, out's leading shape);
    the dense layer reads neither."""
    x, deep = out, None
    if cfg.output_layer == "deep":
        x, deep = deep_output_forward(out, context, ids, params["decoder.embedding.weight"],
                                      params[DEEP + "weight"], params[DEEP + "bias"],
                                      batch_sizes, per_sequence)
    logits, dense = dense_forward(x, params[DENSE + "weight"], params[DENSE + "bias"])
    return logits, OutputCache(deep, dense)


def output_backward(dlogits, cache: OutputCache):
    """-> ``(dout, dcontext, grads, dembedding)``: dcontext and dembedding (the
    embedding table's share, for the caller to add to the decoder input's) None for the
    dense layer alone; grads of the layer's own parameters by full name."""
    dx, g = dense_backward(dlogits, cache.dense)
    grads = {DENSE + k: v for k, v in g.items()}
    if cache.deep is None:
        return dx, None, grads, None
    dout, dcontext, g = deep_output_backward(dx, cache.deep)
    grads[DEEP + "weight"], grads[DEEP + "bias"] = g["weight"], g["bias"]
    return dout, dcontext, grads, g["embedding"]


def output_flops(cfg, T: int) -> float:
    """Matrix-product FLOPs of the output layer over T steps of one sequence."""
    Wd = cfg.decoder_units
    deep = 0 if cfg.output_layer == "dense" else \
        2 * T * (Wd + cfg.encoder_width + cfg.embed_size) * Wd
    return 2 * T * Wd * cfg.tgt_vocab_size + deep
