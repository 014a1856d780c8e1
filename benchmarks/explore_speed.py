"""How long the explorer takes to answer, part by part, for one sentence.

    python benchmarks/explore_speed.py                          # fresh `big` models
    python benchmarks/explore_speed.py --model runs/eng_fra/attention/checkpoint.npz

Without --model, a freshly initialised model of the `big` preset (its sizes, its
vocabularies from the corpus: $MINIS2S_DATA or --data), one per --decoder: an untrained
model rarely says <eos>, so its outputs run to num_steps tokens, the slowest case. Prints
the median over --repeat runs of each part (the translations on their own, the beam
tree, the connectivity with the gradient flow in float32 as the page asks for it and in
float64, the tests' precision) and of the whole answer (where the beam tree's search
gives the beam translation too), in milliseconds, wall clock and CPU time. Run it with
one BLAS thread (OPENBLAS_NUM_THREADS=1) as the numbers in docs/explorer.md were: the
problems are small, and threads only contend.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from minis2s.checkpoint import Checkpoint
from minis2s.data import resolve_data_path
from minis2s.data.corpus import load_data
from minis2s.explore.data import Explorer, beam_tree, connectivity
from minis2s.model import init_params
from minis2s.presets import get_preset

SENTENCE = "i think we should go home now , tom ."  # ten tokens with <eos>


def fresh(decoder: str, data) -> Explorer:
    preset = get_preset("big").with_overrides(model=decoder)
    cfg = preset.model_config(len(data.src_vocab), len(data.tgt_vocab))
    params = init_params(cfg, _numpy(), np.random.default_rng(0))
    arrays = {k: np.asarray(v) for k, v in params.items()}
    ck = Checkpoint(arrays, cfg, preset.data_spec(), data.src_vocab, data.tgt_vocab,
                    {"preset": "big", "grad_clip": preset.grad_clip})
    return Explorer(ck, f"fresh big ({decoder}, {cfg.cell})")


def _numpy():
    from minis2s.backend import get_backend

    return get_backend("numpy", "float32")


def timed(fn, repeat: int) -> tuple[str, object]:
    """'WALL ms (CPU ms)': medians of the wall-clock and this process's CPU time (on a
    machine others share, the CPU time is what an idle machine's wall clock would be,
    with one BLAS thread)."""
    wall, cpu, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
    return f"{statistics.median(wall):7.1f} ms (CPU {statistics.median(cpu):6.1f} ms)", out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="checkpoints (default: fresh `big`)")
    ap.add_argument("--decoder", action="append", choices=["seq2seq", "attention"],
                    help="fresh models' decoders (default: both)")
    ap.add_argument("--data", help="the corpus, for fresh models' vocabularies")
    ap.add_argument("--sentence", default=SENTENCE)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    if args.model:
        explorers = [Explorer.load(m) for m in args.model]
    else:
        data = load_data(resolve_data_path(args.data), get_preset("big").data_spec(),
                         warn=lambda m: None)
        explorers = [fresh(d, data) for d in args.decoder or ["seq2seq", "attention"]]
    s, k = args.sentence, args.beam
    for ex in explorers:
        ex.explore(s, k)  # warm up
        t_tr, tr = timed(lambda ex=ex: ex.translate(s, k, 0.75), args.repeat)
        t_beam, _ = timed(lambda ex=ex: beam_tree(ex, s, k, 0.75), args.repeat)
        toks = tr["greedy"]["tokens"]
        t_grad, g = timed(lambda ex=ex, toks=toks: connectivity(ex, s, toks, ex.precision),
                          args.repeat)
        t_grad64, _ = timed(lambda ex=ex, toks=toks: connectivity(ex, s, toks, "float64"),
                            args.repeat)
        t_all, _ = timed(lambda ex=ex: ex.explore(s, k), args.repeat)
        print(f"{ex.name}: source {len(tr['source_tokens'])} tokens, output "
              f"{len(g['target_tokens'])} steps, beam {k}")
        print(f"  translations (greedy and beam) {t_tr}")
        print(f"  beam tree                      {t_beam}")
        print(f"  {'connectivity, ' + ex.precision:<30} {t_grad}")
        print(f"  {'connectivity, float64':<30} {t_grad64}")
        print(f"  whole answer                   {t_all} (median of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
