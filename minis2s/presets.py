"""Named configurations: the model, the data and the optimisation of one experiment.

A :class:`Preset` is a complete, checked training configuration; the named ones in
:data:`PRESETS` are starting points that ``minis2s train`` flags override field by field
(``--num-hiddens 64`` sets ``num_hiddens``). Nonsense values are refused when a preset is
made (by :func:`minis2s.settings.check`), with a :class:`ConfigError` naming the flag,
before any data is read. A preset splits into the model's settings
(:meth:`Preset.model_config`), the data's (:meth:`Preset.data_spec`) and the
optimisation's. A preset's ``task`` (a :class:`~minis2s.data.TaskSpec`) makes it train on
a generated task's pairs instead of the corpus; :meth:`Preset.with_task` sets one, with
the data settings it needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .data import DataSpec, TaskSpec, task_preset_fields
from .model import ModelConfig
from .settings import DATA_FIELDS, MODEL_FIELDS, ConfigError, check


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
    lr_decay: float = 1.0  # the learning rate is multiplied by this after every epoch
    loss_reduction: str = "seq"  # the loss's weighting of tokens (ops.softmax_ce): the seed's
    split_seed: int = 0  # random seed of the train / validation / test split
    min_freq: int = 2  # vocabulary: tokens seen fewer times map to <unk>
    cell: str = "gru"  # the recurrent cell of encoder and decoder: a key of ops.CELLS
    model: str = "seq2seq"  # the decoder: a key of model.DECODERS
    decoder_hiddens: int | None = None  # the decoder's units; None: the encoder's width
    output_layer: str = "dense"  # the decoder's output layer: dense (the seed's) or deep
    task: TaskSpec | None = None  # generated pairs instead of the corpus (None: the corpus)

    def __post_init__(self):
        check({f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("name", "task")})
        if self.task is not None:  # a TaskSpec is checked when made; here, with the data
            problems = self.task.problems(self.valid_size, self.test_size, self.num_steps)
            if self.num_examples is not None:
                problems.append("--examples counts corpus lines; with --task the training "
                                "pairs are --train-size")
            if problems:
                raise ConfigError("; ".join(problems))

    def with_task(self, task: TaskSpec | None, **changes) -> Preset:
        """A copy that trains on ``task``'s pairs, with the data settings and epochs the
        task sets (:func:`~minis2s.data.task_preset_fields`), then the fields ``changes``
        gives (None leaves a field as it is), all checked together; a ``task`` of None
        leaves the preset's data as it is (:meth:`with_overrides`)."""
        if task is None:
            return self.with_overrides(**changes)
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **{**task_preset_fields(task), "task": task, **given})

    def data_spec(self) -> DataSpec:
        """How this run reads, splits and indexes the corpus."""
        return DataSpec(**{name: getattr(self, name) for name in DATA_FIELDS})

    def model_config(self, src_vocab_size: int, tgt_vocab_size: int) -> ModelConfig:
        """The model this run builds for vocabularies of these sizes."""
        return ModelConfig(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                           **{name: getattr(self, name) for name in MODEL_FIELDS})

    @classmethod
    def from_parts(cls, name: str, cfg: ModelConfig, spec: DataSpec,
                   training: dict, task: TaskSpec | None = None) -> Preset:
        """The preset that builds ``cfg`` and reads ``spec`` (from ``task``'s pairs, if
        given), with the optimisation fields of ``training`` (a checkpoint's record of a
        run)."""
        return cls(name=name, **{f: getattr(cfg, f) for f in MODEL_FIELDS},
                   **spec.to_dict(), **training, task=task)

    def with_overrides(self, **changes) -> Preset:
        """A copy with the given fields changed (None leaves a field as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """Every field; ``task`` as its :meth:`~minis2s.data.TaskSpec.to_dict`, and left
        out where there is none (a corpus run's dict is as it was before tasks), and
        ``decoder_hiddens`` and ``output_layer`` likewise where they hold their defaults
        (a decoder as wide as the encoder's state, a dense output layer)."""
        found = asdict(self)
        found.pop("task")
        if self.decoder_hiddens is None:
            found.pop("decoder_hiddens")
        if self.output_layer == "dense":
            found.pop("output_layer")
        if self.task is not None:
            found["task"] = self.task.to_dict()
        return found

    def describe(self, base: Preset | None = None) -> str:
        """One line with every field; a field that differs from ``base`` shows both. A
        task comes last, where there is one."""
        parts = []
        for f in fields(self):
            if f.name == "name" or f.name == "task" or (
                    f.name == "decoder_hiddens" and self.decoder_hiddens is None) or (
                    f.name == "output_layer" and self.output_layer == "dense"):
                continue
            value = getattr(self, f.name)
            text = f"{f.name} {value}"
            if base is not None and getattr(base, f.name) != value:
                text += f" (preset: {getattr(base, f.name)})"
            parts.append(text)
        if self.task is not None:
            parts.append(f"task {self.task.describe()}")
        return f"preset {self.name}: " + ", ".join(parts)


PRESETS = {
    # the seed's chapter: 600 examples (601 pairs), all used for training
    "zh": Preset("zh", embed_size=32, num_hiddens=32, num_layers=2, dropout=0.1,
                 batch_size=64, num_steps=10, lr=0.005, epochs=300, num_examples=600),
    # d2l-en: 512 training + 128 validation pairs
    "en": Preset("en", embed_size=256, num_hiddens=256, num_layers=2, dropout=0.2,
                 batch_size=128, num_steps=9, lr=0.005, epochs=30, num_examples=639,
                 valid_size=128),
    # a larger model on the first 20,000 pairs (also the speed benchmark's third preset)
    "big": Preset("big", embed_size=256, num_hiddens=256, num_layers=2, dropout=0.2,
                  batch_size=128, num_steps=12, lr=0.005, epochs=10, num_examples=19999,
                  valid_size=1000, test_size=1000),
    # the whole corpus with held-out validation and test parts, about 20 minutes on a
    # 2-core CPU; min_freq 5 halves the French vocabulary (17.8k -> 9.5k), and with it the
    # cost of the output layer, which dominates at this size
    "full": Preset("full", embed_size=128, num_hiddens=256, num_layers=2, dropout=0.2,
                   batch_size=128, num_steps=10, lr=0.005, epochs=3, num_examples=None,
                   valid_size=2000, test_size=5000, min_freq=5),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of "
                          f"{', '.join(PRESETS)}") from None
