"""Command line: ``minis2s <command>`` and ``python -m minis2s <command>``.

Commands: ``train``, ``translate``, ``evaluate``, ``gradcheck``. Results go to stdout;
progress, warnings and errors go to stderr, so ``translate`` output can be piped.
"""

from __future__ import annotations

import argparse
import sys

from .backend import BackendError
from .presets import PRESETS

ERRORS = (BackendError,)  # extended lazily with the data and checkpoint errors


def _warn(message: str) -> None:
    print(f"minis2s: {message}", file=sys.stderr)


def _known_errors():
    from .checkpoint import CheckpointError
    from .data import DataError
    from .train import TrainingError

    return (BackendError, CheckpointError, DataError, TrainingError)


# --------------------------------------------------------------------------- commands


def _cmd_gradcheck(args) -> int:
    from . import gradcheck

    return gradcheck.main(seed=args.seed)


def _cmd_train(args) -> int:
    from .backend import get_backend
    from .presets import get_preset
    from .train import Interrupted, run_experiment

    preset = get_preset(args.preset).with_overrides(epochs=args.epochs,
                                                    num_examples=args.examples)
    try:
        run = run_experiment(preset, args.data, get_backend(args.backend), args.out,
                             seed=args.seed, progress=not args.quiet, warn=_warn)
    except Interrupted as exc:
        _warn(str(exc))
        return 130
    print(run.trainer.summary_line())
    last = run.trainer.history[-1]
    if last.valid_loss is not None:
        print(f"validation loss {last.valid_loss:.3f}")
    return 0


def _load_model(args):
    from . import checkpoint
    from .backend import get_backend
    from .params import ParamSet

    ck = checkpoint.load(args.model)
    backend = get_backend(args.backend)
    params = ParamSet({k: v.shape for k, v in ck.params.items()}, backend.xp, backend.dtype)
    params.assign(ck.params)
    return ck, params, backend


def _cmd_translate(args) -> int:
    from .decode import translate

    ck, params, backend = _load_model(args)
    sentences = args.sentences if args.sentences else [ln.rstrip("\n") for ln in sys.stdin]
    for line in translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sentences,
                          ck.num_steps, backend, warn=_warn):
        print(line)
    return 0


def _cmd_evaluate(args) -> int:
    from .bleu import bleu, corpus_scores
    from .data import DataError, load_data, resolve_data_path
    from .decode import translate

    ck, params, backend = _load_model(args)
    meta = ck.data
    if not meta:
        raise DataError(f"{args.model} does not record how its data was split")
    data = load_data(resolve_data_path(args.data), ck.num_steps, meta.get("num_examples"),
                     meta.get("valid_size", 0), meta.get("test_size", 0),
                     meta.get("split_seed", 0), meta.get("min_freq", 2), warn=_warn)
    if data.src_vocab.idx_to_token != ck.src_vocab.idx_to_token:
        raise DataError("this corpus does not give the vocabulary the model was trained "
                        "with: it is not the same data")
    part = getattr(data, args.part)
    if not len(part):
        raise DataError(f"the checkpoint's data settings leave no {args.part} part "
                        f"(preset {ck.training.get('preset', '?')}); try --part train")
    sources = [" ".join(t) for t in part.src_tokens]
    refs = [" ".join(t) for t in part.tgt_tokens]
    hyps = translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sources, ck.num_steps,
                     backend)
    scores = corpus_scores(hyps, refs)
    seed_bleu = sum(bleu(h, r, 2) for h, r in zip(hyps, refs)) / len(refs)
    print(f"{args.part} part: {len(refs)} pairs")
    print(f"BLEU {scores['bleu']:.2f}  ({scores['bleu_signature']})")
    print(f"chrF {scores['chrf']:.2f}  ({scores['chrf_signature']})")
    print(f"mean sentence BLEU (the seed's formula, k=2) {seed_bleu:.3f}")
    for s, h, r in list(zip(sources, hyps, refs))[: args.show]:
        print(f"  {s} => {h}   [ref: {r}]")
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minis2s",
        description="GRU sequence-to-sequence translation with hand-derived backprop.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def backend_opt(p):
        p.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                       help="array library (default: $MINIS2S_BACKEND, else numpy)")

    p = sub.add_parser("train", help="train a model and write DIR/checkpoint.npz")
    p.add_argument("--data", help="fra.txt or fra-eng.zip (default: $MINIS2S_DATA, the "
                   "cache, else a download)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="zh")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--examples", type=int, help="read corpus lines 0..N (the seed's rule)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, order, dropout")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    backend_opt(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("translate", help="translate sentences (arguments, or stdin lines)")
    p.add_argument("--model", required=True, help="a checkpoint.npz")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE")
    backend_opt(p)
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser("evaluate", help="corpus BLEU and chrF on the held-out test part")
    p.add_argument("--model", required=True, help="a checkpoint.npz")
    p.add_argument("--data", help="the corpus the model was trained on")
    p.add_argument("--part", choices=["test", "valid", "train"], default="test")
    p.add_argument("--show", type=int, default=5, help="print this many example translations")
    backend_opt(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("gradcheck", help="check every backward pass against finite "
                       "differences (float64); exits 1 if any error exceeds 1e-6")
    p.add_argument("--seed", type=int, default=0, help="seed of the checked values")
    p.set_defaults(func=_cmd_gradcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _known_errors() as exc:
        print(f"minis2s: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minis2s: interrupted", file=sys.stderr)
        return 130
