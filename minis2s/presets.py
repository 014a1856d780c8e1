"""Named configurations: the model, the data and the optimisation of one experiment."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


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
    valid_size: int | float = 0
    test_size: int | float = 0
    bidirectional: bool = False
    grad_clip: float = 1.0
    split_seed: int = 0  # seed of the train / validation / test split
    min_freq: int = 2  # vocabulary: tokens seen fewer times map to <unk>

    def with_overrides(self, **changes) -> Preset:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)


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
    # the whole corpus with held-out validation and test parts, sized for 30 minutes on a
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
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
