"""What sets the per-step factor of backprop through time: the gates, tanh's derivative and
the recurrent weights of each layer, on a batch of sentence pairs.

    python docs/cell_stats.py --pairs runs/long.txt --num-steps 40
    python docs/cell_stats.py --pairs runs/long.txt --num-steps 40 --model runs/big_gru

Without ``--model`` it measures the three cells freshly initialised as ``minis2s gradflow
--compare-cells`` makes them (preset ``zh``'s shape, random seed 0); with ``--model`` (once
per checkpoint, a file or its folder) the trained ones. It runs the plain reference cells
(``minis2s/ops/reference/``) forward over the batch in float64, the seed's decoder reading
the context at every step, and prints per stack and layer:

* the recurrent weight ``W_hh``, block by block: its largest singular value σ_max, its
  spectral radius and its gain ``‖W‖_F / √H``, the factor by which it scales the length of
  a random vector on average;
* the gates' means and the shares of gate values above 0.9 (update gate z, forget gate f);
  tanh's derivative at every unit and step (``1 − h²`` for the vanilla RNN, ``1 − n²`` for
  the GRU's candidate, ``1 − g²`` and ``1 − tanh²(c)`` for the LSTM): mean, median, RMS;
* the factor per step back of a gradient carried by the exact Jacobians alone: a random
  gradient placed on the last state, carried back through every step's backward with
  nothing added from above, ``(mean ‖·‖ at d = 30 / mean ‖·‖ at d = 1)^(1/29)`` over the
  sentences, d the steps carried (fewer if the stack has fewer steps); and the same through
  the diagonal path alone (the GRU's ``z``, the LSTM's ``f``), which has no weight matrix.

It writes nothing. The seed's decoder (``seq2seq``) only; a one-way encoder only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minis2s import checkpoint  # noqa: E402
from minis2s.backend import get_backend  # noqa: E402
from minis2s.data import read_pairs  # noqa: E402
from minis2s.gradflow import batch_of_pairs, fresh_model  # noqa: E402
from minis2s.ops import reference as ref  # noqa: E402
from minis2s.ops.reference.stack import stack_forward  # noqa: E402
from minis2s.presets import get_preset  # noqa: E402

STEP_BACKWARD = {"rnn": ref.rnn_step_backward, "gru": ref.gru_step_backward,
                 "lstm": ref.lstm_step_backward}
BLOCKS = {"rnn": "h", "gru": "rzn", "lstm": "ifgo"}  # W_hh's row blocks, PyTorch's order
FAR = 30  # the tutorial's tables measure the factor from d = 1 to d = 30


def part(params, prefix):
    return {k[len(prefix):]: np.asarray(v) for k, v in params.items() if k.startswith(prefix)}


def run_stacks(params, cfg, batch):
    """The encoder's and the decoder's step caches, per layer: the seed's model forward."""
    if cfg.model != "seq2seq" or cfg.bidirectional:
        raise SystemExit("cell_stats.py: the seed's decoder and a one-way encoder only")
    L, H = cfg.num_layers, cfg.num_hiddens
    src, tgt_in = np.asarray(batch.src).T, np.asarray(batch.tgt_in).T  # time-major
    N = src.shape[1]
    zeros = np.zeros((L, N, H))
    state0 = (zeros, zeros) if cfg.cell == "lstm" else zeros
    x = np.asarray(params["encoder.embedding.weight"])[src]
    (_, final), enc = stack_forward(cfg.cell, x, part(params, "encoder.rnn."), L, False, state0)
    context = (final[0] if cfg.cell == "lstm" else final)[-1]  # the top layer's final h
    y = np.asarray(params["decoder.embedding.weight"])[tgt_in]
    x = np.concatenate([y, np.broadcast_to(context, (y.shape[0], N, H))], axis=2)
    _, dec = stack_forward(cfg.cell, x, part(params, "decoder.rnn."), L, False, final)
    return {"encoder": enc[1], "decoder": dec[1]}


def factor(norms):
    """The factor per step from d = 1 to d = FAR (or the last step there is)."""
    far = min(FAR, len(norms) - 1)
    return (norms[far] / norms[1]) ** (1 / (far - 1)) if far > 1 else float("nan")


def carried(cell, caches, rng):
    """Mean norms of a random gradient on the last state carried back d = 0, 1, ... steps
    by the step backwards alone: h's (and c's for the LSTM)."""
    N, H = caches[0].x.shape[0], caches[0].h_prev.shape[1]
    dstate = rng.standard_normal((N, H))
    if cell == "lstm":
        dstate = (dstate, rng.standard_normal((N, H)))
    h_norms, c_norms = [], []
    for cache in reversed(caches):
        dh = dstate[0] if cell == "lstm" else dstate
        h_norms.append(np.linalg.norm(dh, axis=1).mean())
        if cell == "lstm":
            c_norms.append(np.linalg.norm(dstate[1], axis=1).mean())
        _, dstate, _ = STEP_BACKWARD[cell](dstate, cache)
    return h_norms, c_norms


def diagonal(gates, rng):
    """Mean norms of a random vector multiplied by the gate (T, N, H) at each step back."""
    v = rng.standard_normal(gates.shape[1:])
    norms = []
    for gate in gates[::-1]:
        norms.append(np.linalg.norm(v, axis=1).mean())
        v = v * gate
    return norms


def stats(values):
    return f"mean {values.mean():.3f}, median {np.median(values):.2g}, RMS " \
           f"{np.sqrt((values ** 2).mean()):.3f}"


def report(name, params, cfg, batch, seed):
    print(f"{name}: {cfg.cell}, {cfg.num_layers} layers of {cfg.num_hiddens} units; "
          f"{batch.src.shape[0]} pairs, {batch.src.shape[1]} source and "
          f"{batch.tgt.shape[1]} target steps")
    H = cfg.num_hiddens
    for side, layers in run_stacks(params, cfg, batch).items():
        for l, caches in enumerate(layers):
            rng = np.random.default_rng(seed)
            W = np.asarray(params[f"{side}.rnn.weight_hh_l{l}"])
            blocks = [W[j * H:(j + 1) * H] for j in range(W.shape[0] // H)]
            names = BLOCKS[cfg.cell]
            print(f"  {side} layer {l}")
            print("    W_hh blocks " + ", ".join(names) + ": σ_max "
                  + " ".join(f"{np.linalg.norm(b, 2):.2f}" for b in blocks)
                  + "; spectral radius "
                  + " ".join(f"{np.abs(np.linalg.eigvals(b)).max():.2f}" for b in blocks)
                  + "; gain ‖W‖_F/√H "
                  + " ".join(f"{np.linalg.norm(b) / np.sqrt(H):.2f}" for b in blocks))
            stacked = {field: np.stack([getattr(c, field) for c in caches])
                       for field in caches[0]._fields if field not in ("x", "params")}
            h_norms, c_norms = carried(cfg.cell, caches, rng)
            if cfg.cell == "rnn":
                print(f"    tanh' = 1 − h²: {stats(1 - stacked['h'] ** 2)}")
                print(f"    carried by the Jacobians: {factor(h_norms):.3f} per step")
            elif cfg.cell == "gru":
                z, r = stacked["z"], stacked["r"]
                print(f"    gates: mean r {r.mean():.3f}, mean z {z.mean():.3f}; "
                      f"z > 0.9: {(z > 0.9).mean():.0%}")
                print(f"    tanh' = 1 − n²: {stats(1 - stacked['n'] ** 2)}")
                print(f"    carried by the Jacobians: {factor(h_norms):.3f} per step; by the "
                      f"z-path alone: {factor(diagonal(z, rng)):.3f}")
            else:
                i, f, o = stacked["i"], stacked["f"], stacked["o"]
                print(f"    gates: mean i {i.mean():.3f}, mean f {f.mean():.3f}, mean o "
                      f"{o.mean():.3f}; f > 0.9: {(f > 0.9).mean():.0%}")
                print(f"    tanh' = 1 − g²: {stats(1 - stacked['g'] ** 2)}")
                print(f"    tanh' = 1 − tanh²(c): {stats(1 - stacked['tanh_c'] ** 2)}")
                print(f"    carried by the Jacobians: h {factor(h_norms):.3f}, c "
                      f"{factor(c_norms):.3f} per step; by the cell path (f) alone: "
                      f"{factor(diagonal(f, rng)):.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", required=True, help="sentence pairs, as minis2s gradflow")
    parser.add_argument("--num-steps", type=int, help="pad or cut each side to this many "
                        "tokens (default: the checkpoint's, or the preset's)")
    parser.add_argument("--model", action="append", help="a checkpoint (file or folder); "
                        "once per model; none: the three cells, freshly initialised")
    parser.add_argument("--preset", default="zh", help="fresh models' shape (default zh)")
    parser.add_argument("--seed", type=int, default=0, help="fresh models' random seed")
    parser.add_argument("--batch-size", type=int, default=64, help="pairs read (default 64)")
    args = parser.parse_args(argv)
    backend = get_backend("numpy", "float64")
    pairs = read_pairs(args.pairs)[:args.batch_size]
    if args.model:
        for path in args.model:
            ck = checkpoint.load(checkpoint.resolve(path))
            batch = batch_of_pairs(pairs, ck.src_vocab, ck.tgt_vocab,
                                   args.num_steps or ck.data.num_steps, backend)
            unknown = [np.mean(np.asarray(ids)[np.arange(ids.shape[1]) < np.asarray(n)[:, None]]
                               == vocab.unk)
                       for ids, n, vocab in ((batch.src, batch.src_valid_len, ck.src_vocab),
                                             (batch.tgt, batch.tgt_valid_len, ck.tgt_vocab))]
            report(path, ck.params_on(backend), ck.config, batch, args.seed)
            print(f"  <unk> among the tokens read (<eos> included): source {unknown[0]:.0%}, "
                  f"target {unknown[1]:.0%}")
    else:
        preset = get_preset(args.preset)
        for cell in ("rnn", "gru", "lstm"):
            params, cfg, sv, tv = fresh_model(preset, cell, pairs, backend, args.seed)
            batch = batch_of_pairs(pairs, sv, tv, args.num_steps or preset.num_steps, backend)
            report(f"{cell} (fresh)", params, cfg, batch, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
