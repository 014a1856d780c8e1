"""Encoder-decoder models, forward and backward by hand, one module per part:

* :mod:`.weights` — parameters by name: shapes and initial values;
* :mod:`.encoder` — the embedding and the recurrent stack over the source;
* :mod:`.registry` — what every decoder implements, and :data:`DECODERS`, the table of
  them by name;
* :mod:`.decoder` — the seed's decoder, ``"seq2seq"`` (the encoder's final h as a
  context at every step);
* :mod:`.attention` — the Bahdanau decoder, ``"attention"`` (an attention-weighted
  context at every step);
* :mod:`.config` — what a model is: :class:`ModelConfig`, its parameters, the dropout
  masks of a batch;
* :mod:`.seq2seq` — the whole model: a batch in, the loss out, and its backward;
* :mod:`.steps` — the model one step at a time, as translation runs it.

A new decoder is one module: a :class:`Decoder` subclass passed to
:func:`register_decoder` (see docs/contributing.md).
"""

from . import attention, decoder  # noqa: F401  (each registers its decoder)
from .config import (
    DropoutMasks,
    ModelConfig,
    draw_dropout_masks,
    init_params,
    param_shapes,
    param_specs,
)
from .encoder import Encoded, encoder_backward, encoder_forward
from .registry import DECODERS, Decoder, DecoderGrads, StepOutput, register_decoder
from .seq2seq import Gradients, Seq2SeqCache, seq2seq_backward, seq2seq_forward

__all__ = [
    "DECODERS",
    "Decoder",
    "DecoderGrads",
    "DropoutMasks",
    "Encoded",
    "Gradients",
    "ModelConfig",
    "Seq2SeqCache",
    "StepOutput",
    "draw_dropout_masks",
    "encoder_backward",
    "encoder_forward",
    "init_params",
    "param_shapes",
    "param_specs",
    "register_decoder",
    "seq2seq_backward",
    "seq2seq_forward",
]
