"""The seed's encoder-decoder, and d2l's attention decoder on the same encoder, forward
and backward by hand (one module per part):

* :mod:`.config` — what a model is: :class:`ModelConfig`, parameters by name and shape,
  their initialisation, the dropout masks of a batch;
* :mod:`.encoder` — the embedding and the recurrent stack over the source;
* :mod:`.decoder` — the seed's decoder (the encoder's final h as a context at every step);
* :mod:`.attention` — the Bahdanau decoder (an attention-weighted context at every step);
* :mod:`.seq2seq` — the whole model: a batch in, the loss out, and its backward;
* :mod:`.steps` — the model one step at a time, as translation runs it.
"""

from .attention import (
    Memory,
    attention_decoder_backward,
    attention_decoder_forward,
    attention_step_forward,
    memory_forward,
)
from .config import (
    MODELS,
    DropoutMasks,
    ModelConfig,
    draw_dropout_masks,
    init_params,
    map_state,
    param_shapes,
    scope,
    top_h,
)
from .decoder import (
    decoder_backward,
    decoder_forward,
    decoder_forward_packed,
    decoder_input_backward,
    decoder_input_forward,
)
from .encoder import encoder_backward, encoder_forward
from .seq2seq import Seq2SeqCache, seq2seq_backward, seq2seq_forward

__all__ = [
    "MODELS",
    "DropoutMasks",
    "Memory",
    "ModelConfig",
    "Seq2SeqCache",
    "attention_decoder_backward",
    "attention_decoder_forward",
    "attention_step_forward",
    "decoder_backward",
    "decoder_forward",
    "decoder_forward_packed",
    "decoder_input_backward",
    "decoder_input_forward",
    "draw_dropout_masks",
    "encoder_backward",
    "encoder_forward",
    "init_params",
    "map_state",
    "memory_forward",
    "param_shapes",
    "scope",
    "seq2seq_backward",
    "seq2seq_forward",
    "top_h",
]
