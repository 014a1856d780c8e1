"""Named configurations: the model, the data and the optimisation of one experiment.

A :class:`Preset` is a complete, checked training configuration; the named ones in
:data:`PRESETS` are starting points that ``minis2s train`` flags override field by field
(``--num-hiddens 64`` sets ``num_hiddens``). Nonsense values are refused when a preset is
made, with a :class:`ConfigError` naming the flag, before any data is read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from .model.config import MODELS
from .ops import CELLS

MAX_LAYERS = 32  # a guard against typos (``--num-layers 200``): plain stacks this deep
#                  do not train without residual connections


class ConfigError(ValueError):
    """A training setting that cannot be used."""


def flag(field: str) -> str:
    """The command-line flag of a field: ``num_hiddens`` -> ``--num-hiddens``."""
    return "--examples" if field == "num_examples" else "--" + field.replace("_", "-")


def _whole(value, least: int, most: int | None = None) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return value >= least and (most is None or value <= most)


def _positive(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and value > 0)


@dataclass(frozen=True)
class Preset:
    name: str
    embed_size: int
    num_hiddens: int
    num_layers: int
    dropout: float
    batch_size: int
    num_steps: int
    lr: float
    epochs: int
    num_examples: int | None  # lines read from the corpus (the seed's rule: 0..n), None = all
    valid_size: int | float = 0  # a count, or a fraction of all pairs
    test_size: int | float = 0
    bidirectional: bool = False
    grad_clip: float = 1.0  # global gradient norm after clipping
    split_seed: int = 0  # random seed of the train / validation / test split
    min_freq: int = 2  # vocabulary: tokens seen fewer times map to <unk>
    cell: str = "gru"  # the recurrent cell of encoder and decoder: gru, lstm or rnn
    model: str = "seq2seq"  # the decoder: the seed's (seq2seq) or Bahdanau attention

    def __post_init__(self):
        problems = [(name, "a whole number >= 1") for name in (
            "embed_size", "num_hiddens", "batch_size", "num_steps", "epochs", "min_freq")
            if not _whole(getattr(self, name), 1)]
        if not _whole(self.num_layers, 1, MAX_LAYERS):
            problems.append(("num_layers", f"a whole number from 1 to {MAX_LAYERS}"))
        if (isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float))
                or not 0 <= self.dropout < 1):
            problems.append(("dropout", "in [0, 1)"))
        problems += [(name, "a number > 0") for name in ("lr", "grad_clip")
                     if not _positive(getattr(self, name))]
        if self.num_examples is not None and not _whole(self.num_examples, 0):
            problems.append(("num_examples", "a whole number >= 0"))
        problems += [(name, "a count >= 0 or a fraction in [0, 1)")
                     for name in ("valid_size", "test_size")
                     if not (_whole(getattr(self, name), 0)
                             or (isinstance(getattr(self, name), float)
                                 and 0 <= getattr(self, name) < 1))]
        if not _whole(self.split_seed, 0):
            problems.append(("split_seed", "a whole number >= 0"))
        if not isinstance(self.bidirectional, bool):
            problems.append(("bidirectional", "true or false"))
        if self.cell not in CELLS:
            problems.append(("cell", f"one of {', '.join(CELLS)}"))
        if self.model not in MODELS:
            problems.append(("model", f"one of {', '.join(MODELS)}"))
        if problems:
            lines = [f"{flag(name)} must be {rule}, got {getattr(self, name)!r}"
                     for name, rule in problems]
            raise ConfigError("; ".join(lines))

    def with_overrides(self, **changes) -> Preset:
        """A copy with the given fields changed (None leaves a field as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, base: Preset | None = None) -> str:
        """One line with every field; a field that differs from ``base`` shows both."""
        parts = []
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            text = f"{f.name} {value}"
            if base is not None and getattr(base, f.name) != value:
                text += f" (preset: {getattr(base, f.name)})"
            parts.append(text)
        return f"preset {self.name}: " + ", ".join(parts)


PRESETS = {
    # the seed's chapter: 600 examples (601 pairs), all used for training
    "zh": Preset("zh", 32, 32, 2, 0.1, batch_size=64, num_steps=10, lr=0.005, epochs=300,
                 num_examples=600),
    # d2l-en: 512 training + 128 validation pairs
    "en": Preset("en", 256, 256, 2, 0.2, batch_size=128, num_steps=9, lr=0.005, epochs=30,
                 num_examples=639, valid_size=128),
    # a larger model on the first 20,000 pairs (also the speed benchmark's third preset)
    "big": Preset("big", 256, 256, 2, 0.2, batch_size=128, num_steps=12, lr=0.005,
                  epochs=10, num_examples=19999, valid_size=1000, test_size=1000),
    # the whole corpus with held-out validation and test parts, about 20 minutes on a
    # 2-core CPU; min_freq 5 halves the French vocabulary (17.8k -> 9.5k), and with it the
    # cost of the output layer, which dominates at this size
    "full": Preset("full", 128, 256, 2, 0.2, batch_size=128, num_steps=10, lr=0.005,
                   epochs=3, num_examples=None, valid_size=2000, test_size=5000,
                   min_freq=5),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of "
                          f"{', '.join(PRESETS)}") from None
