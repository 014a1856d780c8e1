"""What every decoder implements, and the table of decoders by name.

A model is the encoder (:mod:`.encoder`) and one decoder from :data:`DECODERS`, chosen by
``ModelConfig.model``. Everything that works on a whole model — the loss and its backward
(:mod:`.seq2seq`), decoding step by step (:mod:`.steps`, greedy and beam search),
gradient flow, checkpoints, the benchmark, the gradient checks, the command line — reads
the decoder from the table and calls the methods below; none of it asks which decoder it
holds. The seed's decoder (:mod:`.decoder`, ``"seq2seq"``) and Bahdanau attention
(:mod:`.attention`, ``"attention"``) are entries; a new decoder is one module that
subclasses :class:`Decoder` and calls :func:`register_decoder`.

What a decoder gets from the source is an :class:`~.encoder.Encoded`: the encoder's final
state (L, N, W), its top layer's outputs (S, N, W) and the sources' valid lengths (N,),
W being ``cfg.encoder_width``; it starts from that state, or from the bridge's map of it
(:mod:`.bridge`) when its own units ``cfg.decoder_units`` differ. Shapes: N batch, S source
steps, T target steps, V target vocabulary, M packed rows; ids are previous target tokens,
``<bos>`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ..backend import map_arrays
from ..ops import State
from ..settings import CHOICES

if TYPE_CHECKING:
    from .encoder import Encoded


class DecoderGrads(NamedTuple):
    """What a decoder's backward returns."""

    dstate: State  # gradient of the encoder's final state (Encoded.state)
    doutputs: Any  # gradient of the encoder's outputs (S, N, W); None if never read
    params: dict  # gradients of the decoder's parameters, by full name
    recorded: Any  # per layer, the total gradient of every state h, (T·N or M, W) rows in
    #                time-major order (record="state": a State, c's too for a paired
    #                cell); None unless the backward was asked to record


class StepOutput(NamedTuple):
    """One decoding step of every row."""

    logits: Any  # (B, V) scores of the next token
    state: Any  # the decoder's state after the step
    weights: Any  # (B, S) attention weights over the source, or None


class Decoder:
    """The interface. A decoder's parameters are named ``decoder.*`` (PyTorch's names
    where a PyTorch twin exists); its methods take the model's ``cfg``
    (:class:`~.config.ModelConfig`) and never keep state of their own."""

    name: str = ""
    attends: bool = False  # its steps give attention weights over the source
    # its decoding memory is one context vector per row, of the decoder's top-layer size,
    # which greedy decoding may replace by the decoder's own state (d2l's prediction
    # pitfall, minis2s.decode.greedy's context_from="decoder")
    memory_is_context: bool = False

    # --------------------------------------------------------------- what it holds

    def param_specs(self, cfg) -> dict:
        """``{name: Param(shape, init)}`` (:mod:`.weights`) in state_dict order."""
        raise NotImplementedError

    def dropout_masks(self, cfg, backend, gen, N: int, T_src: int, T_tgt: int):
        """The masks of one training batch, drawn from ``gen``: None, or a list (or a
        NamedTuple of lists and arrays) of arrays laid out (T_tgt, N, ·), time first and
        batch second, so that the model can take rows or pack them without knowing what
        they are. By default, dropout between the layers of a ``cfg.num_layers`` stack
        of ``cfg.decoder_units`` units, as the seed's decoder has it."""
        if cfg.dropout <= 0 or cfg.num_layers < 2:
            return None
        shape = (T_tgt, N, cfg.decoder_units)
        return [backend.dropout_mask(gen, shape, cfg.dropout)
                for _ in range(cfg.num_layers - 1)]

    # --------------------------------------------------------------- training

    def forward(self, params, cfg, ids, encoded: Encoded, masks=None, batch_sizes=None,
                probes=None):
        """Teacher-forced logits of a whole target -> ``(logits, cache)``.

        Padded (``batch_sizes`` None): ids (N, T), logits (N, T, V), masks laid out (T, N,
        ·). Packed (the training path): ids (M,) in the stacks' packed layout
        (:mod:`minis2s.ops.layout`), rows sorted by target length, step t running the
        first ``batch_sizes[t]`` sequences; logits (M, V), masks as (M, ·) rows; encoded
        is in the same row order. ``probes`` (padded only): one (T·N, W) array per layer
        added to its states as they are made (zeros change nothing; see gradflow's test).
        """
        raise NotImplementedError

    def backward(self, dlogits, cache, record: bool = False) -> DecoderGrads:
        """The forward read in reverse; ``dlogits`` shaped like its logits. The cache is
        left intact. With ``record``, :attr:`DecoderGrads.recorded` is filled; ``record``
        is True (h's gradients) or ``"state"`` (a :class:`State` per layer, with
        c's for a paired cell), and goes to :func:`minis2s.ops.stack_backward` as given."""
        raise NotImplementedError

    # --------------------------------------------------------------- decoding

    def begin(self, params, cfg, encoded: Encoded):
        """``(state, memory)`` to start decoding from: the decoder's first state and what
        every step reads of the source. Memory is an array, or a NamedTuple of arrays,
        whose first axis is the batch row."""
        raise NotImplementedError

    def step(self, params, cfg, ids, state, memory) -> StepOutput:
        """One step for every row: ids (B,), each row's previous token. No dropout, no
        cache."""
        raise NotImplementedError

    def select(self, state, memory, rows):
        """``(state, memory)`` of batch rows ``rows`` (an index array; repeats allowed):
        what beam search keeps as hypotheses are extended, reordered or dropped."""
        return state.rows(rows), map_arrays(lambda a: a[rows], memory)

    # --------------------------------------------------------------- cost

    def flops(self, cfg, S: int, T: int) -> float:
        """Matrix-product FLOPs of one forward pass over one padded pair of S source and
        T target steps (the benchmark's nominal work; elementwise work not counted)."""
        raise NotImplementedError


DECODERS: dict[str, Decoder] = {}
CHOICES["model"] = DECODERS  # what --model and ModelConfig.model may name


def register_decoder(decoder: Decoder) -> Decoder:
    """Add ``decoder`` to :data:`DECODERS` under its name; returns it."""
    if not decoder.name or not isinstance(decoder.name, str):
        raise ValueError("a decoder needs a name")
    if decoder.name in DECODERS and DECODERS[decoder.name] is not decoder:
        raise ValueError(f"a decoder named {decoder.name!r} is registered already")
    DECODERS[decoder.name] = decoder
    return decoder
