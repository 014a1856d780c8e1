"""Train the seed's English -> French encoder-decoder, and d2l's attention model beside it,
and translate four sentences with each, as d2l prints them.

    python examples/train_eng_fra.py                      # both models, preset zh
    python examples/train_eng_fra.py --models seq2seq     # the seed's experiment alone
    python examples/train_eng_fra.py --cell lstm          # both models with LSTM cells
    python examples/train_eng_fra.py --preset en --epochs 10 --out runs/en

Each run starts afresh and replaces the checkpoints of an earlier one in OUT (the
``minis2s train`` command refuses that unless told ``--overwrite``).

Data: --data PATH, else $MINIS2S_DATA, else the cache (~/.cache/minis2s), else a
download of d2l's fra-eng.zip (Tatoeba, CC-BY 2.0: manythings.org/anki, tatoeba.org).
"""

from __future__ import annotations

import argparse
import sys

from minis2s import compiled
from minis2s.backend import get_backend
from minis2s.bleu import bleu
from minis2s.decode import translate
from minis2s.model import DECODERS
from minis2s.ops import CELLS
from minis2s.presets import PRESETS, get_preset
from minis2s.train import INPUT_ERRORS, Interrupted, TrainingError, run_experiment

ENGLISH = ["go .", "i lost .", "he's calm .", "i'm home ."]
FRENCH = ["va !", "j'ai perdu .", "il est calme .", "je suis chez moi ."]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="fra.txt or fra-eng.zip")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="zh")
    parser.add_argument("--models", nargs="+", choices=list(DECODERS),
                        default=["seq2seq", "attention"], help="which models to train (by "
                        "their decoder)")
    parser.add_argument("--cell", choices=list(CELLS), help="the recurrent cell (default: "
                        "the preset's, gru)")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/eng_fra", help="folder for the checkpoints "
                        "(OUT/seq2seq/checkpoint.npz, OUT/attention/checkpoint.npz)")
    args = parser.parse_args(argv)

    def warn(message):
        print(f"minis2s: {message}", file=sys.stderr)

    try:
        compiled.from_environment()  # MINIS2S_KERNELS=compiled: the cells' loops compiled
    except compiled.CompiledError as exc:
        warn(f"error: {exc}")
        return 2
    for number, model in enumerate(args.models):
        try:
            preset = get_preset(args.preset).with_overrides(epochs=args.epochs, model=model,
                                                            cell=args.cell)
            backend = get_backend(args.backend)
            run = run_experiment(preset, args.data, backend, f"{args.out}/{model}",
                                 seed=args.seed, warn=warn, overwrite=True)
        except Interrupted as exc:
            warn(str(exc))
            return 130
        except (*INPUT_ERRORS, TrainingError) as exc:  # the input's fault: one line
            warn(f"error: {exc}")
            return 2
        if number:
            print()
        print(f"model: {model}")
        print(run.trainer.summary_line())
        tr, data = run.trainer, run.data
        outputs = translate(tr.params, tr.cfg, data.src_vocab, data.tgt_vocab, ENGLISH,
                            preset.num_steps, backend)
        for eng, fra, out in zip(ENGLISH, FRENCH, outputs):
            print(f"{eng} => {out}, bleu {bleu(out, fra, k=2):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
