"""What a model is: its configuration, its parameters by name, their initial values, and
the dropout masks of one batch.

Two models share the encoder: ``"seq2seq"``, the seed's (its decoder reads the encoder's
final top-layer h as a context at every step), and ``"attention"``, d2l's Bahdanau
decoder (its context at every step is an additive-attention average of the encoder's
top-layer outputs). Either runs with a GRU (the seed's), an LSTM or a vanilla RNN.

Sizing to a bidirectional encoder: the encoder's layer k ends in a forward state and a
backward state (each H). The decoder has ``dirs * H`` units (H, or 2H when the encoder is
bidirectional); its layer k starts from ``[forward_k ; backward_k]``, and its context —
the encoder's top-layer final h, or an average of its top-layer outputs — is dirs * H
wide, so decoder layer 0 reads E + dirs * H features.

Parameters carry ``torch.nn`` names and shapes (see :func:`param_shapes`), so weights
move to and from a PyTorch model built from nn.Embedding, nn.GRU (nn.LSTM, nn.RNN),
nn.Linear and, for attention, d2l's ``AdditiveAttention``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..backend import Backend
from ..ops import CELLS, stack_param_shapes
from ..params import ParamSet

MODELS = ("seq2seq", "attention")


@dataclass(frozen=True)
class ModelConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    embed_size: int = 32
    num_hiddens: int = 32
    num_layers: int = 2
    dropout: float = 0.1
    bidirectional: bool = False
    cell: str = "gru"  # "gru" (the seed's), "lstm" or "rnn" (vanilla, tanh)
    model: str = "seq2seq"  # "seq2seq" (the seed's) or "attention" (Bahdanau, as d2l)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of "
                             f"{', '.join(CELLS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of "
                             f"{', '.join(MODELS)}")

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def decoder_hiddens(self) -> int:
        """Units of the decoder's cell: the width of one encoder layer's final state."""
        return self.num_directions * self.num_hiddens

    @property
    def recurrent(self):
        """The recurrent cell, a :class:`minis2s.ops.Cell`."""
        return CELLS[self.cell]

    @property
    def attention(self) -> bool:
        return self.model == "attention"


def param_shapes(cfg: ModelConfig) -> dict[str, tuple]:
    """Every parameter's name and shape, in PyTorch's state_dict order."""
    E, H, Hd, L = cfg.embed_size, cfg.num_hiddens, cfg.decoder_hiddens, cfg.num_layers
    G = cfg.recurrent.gates
    shapes = {"encoder.embedding.weight": (cfg.src_vocab_size, E)}
    shapes.update(stack_param_shapes(G, E, H, L, cfg.num_directions, prefix="encoder.rnn."))
    if cfg.attention:  # d2l's AdditiveAttention(key Hd, query Hd, num_hiddens), no biases
        shapes["decoder.attention.W_k.weight"] = (H, Hd)
        shapes["decoder.attention.W_q.weight"] = (H, Hd)
        shapes["decoder.attention.w_v.weight"] = (1, H)
    shapes["decoder.embedding.weight"] = (cfg.tgt_vocab_size, E)
    shapes.update(stack_param_shapes(G, E + Hd, Hd, L, 1, prefix="decoder.rnn."))
    shapes["decoder.dense.weight"] = (cfg.tgt_vocab_size, Hd)
    shapes["decoder.dense.bias"] = (cfg.tgt_vocab_size,)
    return shapes


def init_params(cfg: ModelConfig, backend: Backend, rng: np.random.Generator) -> ParamSet:
    """Initialise as the seed does: Xavier-uniform recurrent and dense weight matrices,
    N(0, 1) embeddings, PyTorch's default U(-1/sqrt(fan), 1/sqrt(fan)) biases. The
    attention's weights are nn.Linear modules in d2l, so they are Xavier-uniform too.

    Draws come from ``rng`` (a NumPy generator, in name order) so that the same random
    seed gives the same initial parameters on every backend.
    """
    params = ParamSet(param_shapes(cfg), backend.xp, backend.dtype)
    for name, shape in params.shapes.items():
        if name.endswith("embedding.weight"):
            value = rng.standard_normal(shape)
        elif ".weight" in name:  # recurrent, dense, attention weights: Xavier uniform
            fan_out, fan_in = shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            value = rng.uniform(-bound, bound, shape)
        elif name.startswith("decoder.dense."):  # nn.Linear bias: 1/sqrt(in_features)
            bound = 1.0 / np.sqrt(params.shapes["decoder.dense.weight"][1])
            value = rng.uniform(-bound, bound, shape)
        else:  # nn.GRU / LSTM / RNN bias: 1/sqrt(hidden_size)
            bound = 1.0 / np.sqrt(shape[0] // cfg.recurrent.gates)
            value = rng.uniform(-bound, bound, shape)
        params[name] = value
    return params


def scope(params, prefix: str) -> dict:
    """The entries of ``params`` under ``prefix``, with the prefix removed."""
    n = len(prefix)
    return {k[n:]: v for k, v in params.items() if k.startswith(prefix)}


class DropoutMasks(NamedTuple):
    encoder: list | None  # L - 1 masks (T_src, N, dirs * H)
    decoder: list | None  # L - 1 masks (T_tgt, N, dirs * H)
    attention: Any = None  # (T_tgt, N, T_src): on each step's attention weights

    def take(self, rows) -> DropoutMasks:
        """The masks of batch rows ``rows`` (an index array on the masks' device)."""
        def pick(masks):
            return None if masks is None else [m[:, rows] for m in masks]

        return DropoutMasks(pick(self.encoder), pick(self.decoder),
                            None if self.attention is None else self.attention[:, rows])


def draw_dropout_masks(cfg: ModelConfig, backend: Backend, gen, N: int, T_src: int,
                       T_tgt: int) -> DropoutMasks:
    """Masks for one training batch, drawn from the caller's generator ``gen``: between
    the layers of both stacks and, for attention, on the attention weights (d2l's
    AdditiveAttention drops them too)."""
    if cfg.dropout <= 0:
        return DropoutMasks(None, None)
    enc = dec = att = None
    if cfg.num_layers > 1:
        W = cfg.decoder_hiddens
        enc = [backend.dropout_mask(gen, (T_src, N, W), cfg.dropout)
               for _ in range(cfg.num_layers - 1)]
        dec = [backend.dropout_mask(gen, (T_tgt, N, W), cfg.dropout)
               for _ in range(cfg.num_layers - 1)]
    if cfg.attention:
        att = backend.dropout_mask(gen, (T_tgt, N, T_src), cfg.dropout)
    return DropoutMasks(enc, dec, att)


# ----------------------------------------------------------------------------- states


def map_state(fn, state):
    """``fn`` applied to a state's arrays: to h, or to each of (h, c)."""
    return tuple(fn(part) for part in state) if isinstance(state, tuple) else fn(state)


def top_h(state):
    """The top layer's h of a model state (L, N, W), or of (h, c): the context."""
    return (state[0] if isinstance(state, tuple) else state)[-1]
