"""Every setting of a run, what it may hold, checked in one place.

A run's settings come from a preset and ``minis2s train`` flags (:mod:`.presets`), from a
checkpoint's meta (:mod:`.checkpoint`) or from Python; all go through :func:`check`,
which knows the rule of every field, so that a value is refused the same way wherever it
comes from, with every problem named in one message, before any data is read. The fields
fall into three groups: the model (:data:`MODEL_FIELDS`, a
:class:`~minis2s.model.ModelConfig` with the vocabulary sizes, which checks them when it is
made), the data (:data:`DATA_FIELDS`, a :class:`~minis2s.data.DataSpec`, likewise) and
the optimisation (:data:`OPTIMISATION_FIELDS`); a generated task's (:data:`TASK_FIELDS`,
a :class:`~minis2s.data.TaskSpec`, likewise) where the data is a task's rather than the
corpus; and the options of decoding, of the random seed and of the clipping threshold
``gradflow --clip`` shows.

Four fields name an entry of a table that lives above this module: ``cell`` one of
:data:`minis2s.ops.CELLS`, ``model`` one of :data:`minis2s.model.DECODERS`,
``output_layer`` one of :data:`minis2s.model.output.OUTPUT_LAYERS`, ``task`` one of
:data:`minis2s.data.TASKS`. Each table is
entered in :data:`CHOICES` by its own package, and read when a value is checked, so that a
decoder or cell registered later is a valid choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

MAX_LAYERS = 32  # a guard against typos (``--num-layers 200``): plain stacks this deep
#                  do not train without residual connections

MODEL_FIELDS = ("model", "cell", "embed_size", "num_hiddens", "num_layers", "dropout",
                "bidirectional", "decoder_hiddens", "output_layer")
DATA_FIELDS = ("num_steps", "num_examples", "valid_size", "test_size", "split_seed",
               "min_freq")
OPTIMISATION_FIELDS = ("epochs", "batch_size", "lr", "lr_decay", "grad_clip",
                       "loss_reduction")
# a generated task instead of the corpus (:mod:`minis2s.data.tasks`): its name, its
# sizes and random seed, and the options of one task or another
TASK_FIELDS = ("task", "train_size", "task_seed", "symbols", "min_len", "max_len", "digits",
               "min_year", "max_year", "reverse_source")

CHOICES: dict[str, Mapping] = {}  # field -> the table its value must be a key of


class ConfigError(ValueError):
    """A setting that cannot be used."""


def flag(field: str) -> str:
    """The command-line flag of a field: ``num_hiddens`` -> ``--num-hiddens``."""
    return "--examples" if field == "num_examples" else "--" + field.replace("_", "-")


def _whole(least: int, most: int | None = None) -> Callable:
    def ok(value) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return value >= least and (most is None or value <= most)
    return ok


def _positive(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and value > 0)


def _fraction_below_one(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and 0 <= value < 1)


def _size(value) -> bool:
    return _whole(0)(value) or (isinstance(value, float) and 0 <= value < 1)


def _choice(field: str) -> tuple[Callable, Callable[[], str]]:
    def ok(value) -> bool:
        return isinstance(value, str) and value in CHOICES[field]
    return ok, lambda: f"one of {', '.join(CHOICES[field])}"


def _finite_at_least_zero(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and value >= 0)


# field -> (test, what the value must be)
RULES: dict[str, tuple[Callable, Callable[[], str]]] = {
    "model": _choice("model"),
    "cell": _choice("cell"),
    "embed_size": (_whole(1), lambda: "a whole number >= 1"),
    "num_hiddens": (_whole(1), lambda: "a whole number >= 1"),
    "num_layers": (_whole(1, MAX_LAYERS), lambda: f"a whole number from 1 to {MAX_LAYERS}"),
    "dropout": (_fraction_below_one, lambda: "in [0, 1)"),
    "output_layer": _choice("output_layer"),
    "bidirectional": (lambda v: isinstance(v, bool), lambda: "true or false"),
    "decoder_hiddens": (lambda v: v is None or _whole(1)(v),
                        lambda: "a whole number >= 1 (or left out: the encoder's width)"),
    "num_steps": (_whole(1), lambda: "a whole number >= 1"),
    "num_examples": (lambda v: v is None or _whole(0)(v), lambda: "a whole number >= 0"),
    "valid_size": (_size, lambda: "a count >= 0 or a fraction in [0, 1)"),
    "test_size": (_size, lambda: "a count >= 0 or a fraction in [0, 1)"),
    "split_seed": (_whole(0), lambda: "a whole number >= 0"),
    "min_freq": (_whole(1), lambda: "a whole number >= 1"),
    "epochs": (_whole(1), lambda: "a whole number >= 1"),
    "batch_size": (_whole(1), lambda: "a whole number >= 1"),
    "lr": (_positive, lambda: "a number > 0"),
    "lr_decay": (lambda v: _positive(v) and v <= 1, lambda: "a number in (0, 1]"),
    "grad_clip": (_positive, lambda: "a number > 0"),
    "loss_reduction": _choice("loss_reduction"),
    "seed": (_whole(0), lambda: "a whole number >= 0"),
    "beam": (_whole(1), lambda: "a whole number >= 1"),
    "length_penalty": (_finite_at_least_zero, lambda: "a number >= 0"),
    "clip": (_positive, lambda: "a number > 0"),
    "task": _choice("task"),
    "train_size": (_whole(1), lambda: "a whole number >= 1"),
    "task_seed": (_whole(0), lambda: "a whole number >= 0"),
    "symbols": (_whole(2, 62), lambda: "a whole number from 2 to 62"),
    "min_len": (_whole(1), lambda: "a whole number >= 1"),
    "max_len": (_whole(1), lambda: "a whole number >= 1"),
    "digits": (_whole(1, 30), lambda: "a whole number from 1 to 30"),
    "min_year": (_whole(1000, 9999), lambda: "a whole number from 1000 to 9999"),
    "max_year": (_whole(1000, 9999), lambda: "a whole number from 1000 to 9999"),
    "reverse_source": (lambda v: isinstance(v, bool), lambda: "true or false"),
}


def problems(values: Mapping, name: Callable[[str], str] = flag) -> list[str]:
    """One line per field of ``values`` that breaks its rule (fields without a rule are
    not looked at), naming each field by ``name(field)``."""
    out = []
    for field, value in values.items():
        rule = RULES.get(field)
        if rule is not None and not rule[0](value):
            out.append(f"{name(field)} must be {rule[1]()}, got {value!r}")
    return out


def check(values: Mapping, name: Callable[[str], str] = flag) -> None:
    """Raise :class:`ConfigError` naming every field of ``values`` that breaks its rule."""
    found = problems(values, name)
    if found:
        raise ConfigError("; ".join(found))
