"""What a model is: its configuration, its parameters by name, their initial values, and
the dropout masks of one batch.

A model is the encoder and one decoder of :data:`~.registry.DECODERS` (``cfg.model``):
``"seq2seq"``, the seed's (its decoder reads the encoder's final top-layer h as a context
at every step), or ``"attention"``, d2l's Bahdanau decoder (its context at every step is
an additive-attention average of the encoder's top-layer outputs). Either runs with any
cell of :data:`minis2s.ops.CELLS` (``cfg.cell``): a GRU (the seed's), an LSTM or a
vanilla RNN. Its settings are checked when it is made, by the rules every setting
follows (:mod:`minis2s.settings`).

Sizing to a bidirectional encoder: the encoder's layer k ends in a forward state and a
backward state (each H), ``W = dirs * H`` wide side by side. By default the decoder has
W units too (H, or 2H when the encoder is bidirectional), and its layer k starts from
``[forward_k ; backward_k]``. ``decoder_hiddens`` gives it another number of units, Wd:
then every decoder layer starts from the encoder's top-layer final state through a
learned tanh layer (:mod:`.bridge`). Whatever Wd, the context the decoder reads (the
seed's final h, attention's average of the encoder's outputs) is W wide.

Parameters carry ``torch.nn`` names and shapes (see :func:`param_shapes`), so weights
move to and from a PyTorch model built from nn.Embedding, nn.GRU (nn.LSTM, nn.RNN),
nn.Linear and, for attention, d2l's ``AdditiveAttention``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..backend import Backend, map_arrays
from ..ops import CELLS, Cell
from ..params import ParamSet
from ..settings import MODEL_FIELDS, check
from .bridge import bridge_params
from .encoder import encoder_params
from .registry import DECODERS, Decoder


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    embed_size: int = 32
    num_hiddens: int = 32  # H, per direction of the encoder
    num_layers: int = 2
    dropout: float = 0.1
    bidirectional: bool = False
    cell: str = "gru"  # a key of minis2s.ops.CELLS
    model: str = "seq2seq"  # the decoder: a key of DECODERS
    decoder_hiddens: int | None = None  # Wd, the decoder's units; None: W (no bridge)
    output_layer: str = "dense"  # a key of OUTPUT_LAYERS: dense, or deep (a tanh layer first)

    def __post_init__(self):
        check({name: getattr(self, name) for name in MODEL_FIELDS}, name=str)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def encoder_width(self) -> int:
        """W, the width of one encoder layer's state and of its outputs: dirs·H."""
        return self.num_directions * self.num_hiddens

    @property
    def decoder_units(self) -> int:
        """Wd, the units of the decoder's cell: ``decoder_hiddens``, or W when not set."""
        return self.encoder_width if self.decoder_hiddens is None else self.decoder_hiddens

    @property
    def has_bridge(self) -> bool:
        """Whether the decoder starts from the encoder's state through a bridge
        (:mod:`.bridge`): when its units differ from the encoder's width."""
        return self.decoder_units != self.encoder_width

    @property
    def recurrent(self) -> Cell:
        """The recurrent cell of encoder and decoder."""
        return CELLS[self.cell]

    @property
    def decoder(self) -> Decoder:
        return DECODERS[self.model]


def param_specs(cfg: ModelConfig) -> dict:
    """Every parameter's :class:`~.weights.Param` (shape, initialiser), in PyTorch's
    state_dict order: the encoder's, then the decoder's, then the bridge's (if any)."""
    return {**encoder_params(cfg), **cfg.decoder.param_specs(cfg), **bridge_params(cfg)}


def param_shapes(cfg: ModelConfig) -> dict[str, tuple]:
    """Every parameter's name and shape, in PyTorch's state_dict order."""
    return {name: spec.shape for name, spec in param_specs(cfg).items()}


def init_params(cfg: ModelConfig, backend: Backend, rng: np.random.Generator) -> ParamSet:
    """Initialise as the seed does (:mod:`.weights`): draws come from ``rng`` (a NumPy
    generator) in name order, so the same random seed gives the same initial parameters
    on every backend."""
    specs = param_specs(cfg)
    params = ParamSet({name: spec.shape for name, spec in specs.items()}, backend.xp,
                      backend.dtype)
    for name, spec in specs.items():
        params[name] = spec.init(rng, spec.shape)
    return params


class DropoutMasks(NamedTuple):
    encoder: Any = None  # None, or L - 1 masks (T_src, N, W) between the encoder's layers
    decoder: Any = None  # the decoder's own (its dropout_masks): arrays (T_tgt, N, ·)

    def take(self, rows) -> DropoutMasks:
        """The masks of batch rows ``rows`` (an index array on the masks' device)."""
        return DropoutMasks(*(map_arrays(lambda m: m[:, rows], part) for part in self))


def draw_dropout_masks(cfg: ModelConfig, backend: Backend, gen, N: int, T_src: int,
                       T_tgt: int) -> DropoutMasks:
    """Masks for one training batch, drawn from the caller's generator ``gen``: between
    the encoder's layers, then the decoder's own."""
    if cfg.dropout <= 0:
        return DropoutMasks()
    enc = None
    if cfg.num_layers > 1:
        enc = [backend.dropout_mask(gen, (T_src, N, cfg.encoder_width), cfg.dropout)
               for _ in range(cfg.num_layers - 1)]
    return DropoutMasks(enc, cfg.decoder.dropout_masks(cfg, backend, gen, N, T_src, T_tgt))
