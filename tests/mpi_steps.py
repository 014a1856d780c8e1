"""Run by tests/test_mpi.py, under ``mpiexec -n R`` or alone: a few training steps in
float64 (dropout included) on a corpus; rank 0 writes the parameters, Adam's moments and
the validation loss after the steps to an .npz."""

import sys
from dataclasses import replace

import numpy as np

from minis2s.backend import get_backend
from minis2s.data import iterate_batches, load_data
from minis2s.presets import get_preset
from minis2s.train import Trainer, model_config, world


def main(corpus, out, steps, model="seq2seq"):
    ranks = world()
    preset = get_preset("zh").with_overrides(num_examples=399, dropout=0.3, model=model)
    data = load_data(corpus, replace(preset.data_spec(), valid_size=50),
                     warn=lambda m: None)
    trainer = Trainer(model_config(preset, data), preset, get_backend("numpy", "float64"),
                      seed=3, ranks=ranks)
    losses = []
    batches = iterate_batches(data.train, preset.batch_size, trainer.shuffle_rng,
                              bos=data.tgt_vocab.bos)
    for _, batch in zip(range(steps), batches):
        losses.append(trainer.step(batch))
    valid = trainer.evaluate_loss(data.valid, data.tgt_vocab.bos, batch_size=16)
    if ranks.root:
        np.savez(out, flat=trainer.params.flat, losses=np.array(losses), valid=valid,
                 ranks=ranks.size, m=trainer.opt.m.flat, v=trainer.opt.v.flat)
    else:  # every rank holds the same parameters: the others write theirs beside
        np.savez(out.replace(".npz", f".rank{ranks.rank}.npz"), flat=trainer.params.flat)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
