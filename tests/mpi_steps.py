"""Training driven by hand, for tests/test_mpi.py (under ``mpiexec -n R`` or alone) and
tests/test_shards.py (in one process, its ranks simulated).

``python tests/mpi_steps.py CORPUS OUT STEPS MODEL [CLIP,CLIP...]``
    A few training steps in float64 (dropout included) on a corpus, once for each
    gradient clip (default ``1e9,1``: clipping off, then the preset's). Rank 0 writes,
    for each clip ``i``, the parameters, Adam's moments, the losses, the gradient norms
    after clipping and the validation loss after the steps to ``OUT`` (an .npz, keys
    ``flat_i``, ``m_i``, ...); the other ranks write their parameters beside it.

``python tests/mpi_steps.py interrupt RANK AFTER OUT TRAIN-ARGUMENTS...``
    ``minis2s train TRAIN-ARGUMENTS`` on every rank, where rank ``RANK`` alone sends
    itself SIGINT after its ``AFTER``-th step. Every rank writes ``OUT.rankR.json``: the
    steps it took, the checkpoints it saved, the status the command returned and a
    digest of its parameters; then it exits with that status.
"""

import hashlib
import json
import os
import signal
import sys
from dataclasses import replace

import numpy as np

CLIPS = (1e9, 1.0)  # clipping off (the gradient norms here are about 20), then on


def float64_setup(corpus, model: str):
    """The preset (with dropout) and the data the float64 steps train on."""
    from minis2s.data import load_data
    from minis2s.presets import get_preset

    preset = get_preset("zh").with_overrides(num_examples=399, dropout=0.3, model=model)
    data = load_data(corpus, replace(preset.data_spec(), valid_size=50),
                     warn=lambda m: None)
    return preset, data


def float64_steps(preset, data, steps: int, grad_clip: float, ranks) -> dict:
    """``steps`` optimisation steps in float64 at ``grad_clip`` by this rank of
    ``ranks``; what they leave: parameters, Adam's moments, the losses, the gradient
    norm after clipping at each step, and the validation loss the ranks compute
    together."""
    from minis2s.backend import get_backend
    from minis2s.data import iterate_batches
    from minis2s.train import Trainer, model_config

    preset = preset.with_overrides(grad_clip=grad_clip)
    trainer = Trainer(model_config(preset, data), preset, get_backend("numpy", "float64"),
                      seed=3, ranks=ranks)
    losses, norms = [], []
    batches = iterate_batches(data.train, preset.batch_size, trainer.shuffle_rng,
                              bos=data.tgt_vocab.bos)
    for _, batch in zip(range(steps), batches):
        losses.append(trainer.step(batch))
        norms.append(float(np.linalg.norm(trainer.grads.flat)))  # clipped, as used
    valid = trainer.evaluate_loss(data.valid, data.tgt_vocab.bos, batch_size=16)
    return {"flat": trainer.params.flat.copy(), "m": trainer.opt.m.flat.copy(),
            "v": trainer.opt.v.flat.copy(), "losses": np.array(losses),
            "norms": np.array(norms), "valid": valid}


def run_of(saved, i: int) -> dict:
    """The ``i``-th clip's run out of what :func:`steps_main` saved."""
    return {k: saved[f"{k}_{i}"] for k in ("flat", "m", "v", "losses", "norms", "valid")}


def assert_same_steps(many: dict, one: dict, what: str = "") -> None:
    """Two runs of :func:`float64_steps` agree to 1e-12 relative: losses, gradient norms,
    validation loss, and parameters and Adam's moments (relative to their largest
    element)."""
    for name in ("losses", "norms", "valid"):
        np.testing.assert_allclose(many[name], one[name], rtol=1e-12, atol=0,
                                   err_msg=f"{what}: {name}")
    for name in ("flat", "m", "v"):
        scale = np.abs(one[name]).max()
        assert np.abs(many[name] - one[name]).max() <= 1e-12 * scale, f"{what}: {name}"


def steps_main(corpus, out, steps, model="seq2seq", clips=None):
    from minis2s.train import world

    ranks = world()
    clips = CLIPS if clips is None else tuple(float(c) for c in clips.split(","))
    preset, data = float64_setup(corpus, model)
    saved = {"ranks": ranks.size, "clips": np.array(clips)}
    for i, clip in enumerate(clips):
        run = float64_steps(preset, data, int(steps), clip, ranks)
        if ranks.root:
            saved.update({f"{k}_{i}": v for k, v in run.items()})
        else:  # every rank holds the same parameters: the others write theirs beside
            saved[f"flat_{i}"] = run["flat"]
    np.savez(out if ranks.root else out.replace(".npz", f".rank{ranks.rank}.npz"),
             **saved)


def interrupt_main(rank, after, out, *train_args):
    """See the module's docstring: rank ``rank`` alone is interrupted."""
    from minis2s import checkpoint
    from minis2s.cli import main
    from minis2s.train import Trainer, world

    rank, after = int(rank), int(after)
    me = world().rank
    seen = {"steps": 0, "saves": 0, "trainer": None}
    step, save = Trainer.step, checkpoint.save

    def counted_step(self, batch):
        loss = step(self, batch)
        seen["steps"] += 1
        seen["trainer"] = self
        if me == rank and seen["steps"] == after:
            os.kill(os.getpid(), signal.SIGINT)  # as `kill -INT` to this process alone
        return loss

    def counted_save(path, ck):
        seen["saves"] += 1
        return save(path, ck)

    Trainer.step, checkpoint.save = counted_step, counted_save
    status = main(["train", *train_args])
    trainer = seen["trainer"]
    digest = hashlib.sha1(trainer.params.flat.tobytes() + trainer.opt.m.flat.tobytes()
                          + trainer.opt.v.flat.tobytes()).hexdigest()
    with open(f"{out}.rank{me}.json", "w", encoding="utf-8") as f:
        json.dump({"steps": seen["steps"], "adam_t": int(trainer.opt.t),
                   "saves": seen["saves"], "status": status, "digest": digest}, f)
    sys.exit(status)


if __name__ == "__main__":
    if sys.argv[1] == "interrupt":
        interrupt_main(*sys.argv[2:])
    else:
        steps_main(*sys.argv[1:])
