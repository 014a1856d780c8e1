"""Layers with hand-derived forward and backward passes, one op per module.

Each op is a pair ``*_forward(...) -> (out, cache)`` and ``*_backward(dout, cache)``;
caches are NamedTuples, and a backward leaves its cache as it found it unless its
signature says it consumes it. Ops take the array module from their inputs
(:func:`minis2s.backend.array_module`), so they run unchanged on NumPy and CuPy.
Shapes use one alphabet: N batch, T steps, E embedding, H hidden, V vocabulary,
D input features, L layers, M rows (positions laid out along one axis).

The recurrent cells (:mod:`.gru`, :mod:`.lstm`, :mod:`.rnn`) are fast kernels of one
layer; each runs inside the stacks of :mod:`.recurrent`, and each has a plain twin in
:mod:`.reference` that it is tested against. :data:`CELLS` names them: a new cell is its
kernel module, its plain twin (entered in the reference stack's ``LOOPS``) and one entry
here (docs/contributing.md). A cell's state is a :class:`State`;
:mod:`.layout` says where each step's rows live.
"""

from ..settings import CHOICES
from .additive_attention import additive_attention_backward, additive_attention_forward
from .bridge import BridgeCache, bridge_backward, bridge_forward
from .deep_output import DeepOutputCache, deep_output_backward, deep_output_forward
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward
from .embed_project import embed_project_backward, embed_project_forward
from .embedding import embedding_backward, embedding_forward
from .gru import GRU
from .layout import spans
from .lstm import LSTM
from .recurrent import (
    Cell,
    StackGrads,
    param_suffix,
    stack_backward,
    stack_flops,
    stack_forward,
    stack_param_shapes,
)
from .repeat_steps import repeat_steps_add_backward, repeat_steps_add_forward
from .rnn import RNN
from .softmax_ce import (
    REDUCTIONS,
    TRAINING_REDUCTIONS,
    CacheConsumedError,
    loss_weights,
    masked_softmax_ce_backward,
    masked_softmax_ce_forward,
    reduction_scale,
    softmax_ce_backward,
    softmax_ce_forward,
)
from .state import State

CELLS = {cell.name: cell for cell in (RNN, GRU, LSTM)}
CHOICES["cell"] = CELLS  # what --cell and ModelConfig.cell may name
CHOICES["loss_reduction"] = dict.fromkeys(TRAINING_REDUCTIONS)  # train --loss-reduction

__all__ = [
    "CELLS",
    "REDUCTIONS",
    "TRAINING_REDUCTIONS",
    "additive_attention_backward",
    "additive_attention_forward",
    "BridgeCache",
    "bridge_backward",
    "bridge_forward",
    "CacheConsumedError",
    "Cell",
    "GRU",
    "LSTM",
    "RNN",
    "StackGrads",
    "State",
    "DeepOutputCache",
    "deep_output_backward",
    "deep_output_forward",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "embed_project_backward",
    "embed_project_forward",
    "embedding_backward",
    "embedding_forward",
    "loss_weights",
    "masked_softmax_ce_backward",
    "masked_softmax_ce_forward",
    "param_suffix",
    "reduction_scale",
    "repeat_steps_add_backward",
    "repeat_steps_add_forward",
    "softmax_ce_backward",
    "softmax_ce_forward",
    "spans",
    "stack_backward",
    "stack_flops",
    "stack_forward",
    "stack_param_shapes",
]
