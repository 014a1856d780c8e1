"""Command line: ``minis2s <command>`` and ``python -m minis2s <command>``.

Commands: ``train``, ``translate``, ``evaluate``, ``gradcheck``. Results go to stdout;
progress, warnings and errors go to stderr, so ``translate`` output can be piped.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .model import DECODERS
from .ops import CELLS
from .presets import PRESETS
from .train.ranks import launched_rank


def _warn(message: str) -> None:
    """One line on stderr, prefixed ``minis2s: `` once (data messages carry it already)."""
    if not message.startswith("minis2s: "):
        message = f"minis2s: {message}"
    print(message, file=sys.stderr)


def _known_errors():
    """Errors that are the input's or the machine's fault: one line, no traceback."""
    from .bench import BenchError
    from .train import INPUT_ERRORS, RankError, TrainingError

    return (*INPUT_ERRORS, BenchError, RankError, TrainingError)


# --------------------------------------------------------------------------- commands


def _cmd_gradcheck(args) -> int:
    from . import gradcheck

    _check_seed(args.seed)
    return gradcheck.main(seed=args.seed)


def _cmd_bench(args) -> int:
    from . import bench

    bench.bench(args.preset, args.epochs, args.repeats, args.vs_torch, args.seed, args.data,
                cell=args.cell, model=args.model, ranks=args.ranks)
    return 0


def _stop_listening_to_ctrl_c() -> None:
    """From here on the command only reports and exits: further Ctrl-C presses are
    ignored, so they cannot replace the report or raise during interpreter shutdown."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _cmd_train(args) -> int:
    """Under ``mpiexec -n R`` every rank runs this. Errors that every rank meets alike
    (a bad setting, unreadable data, NaN) end every rank the usual way; anything that
    strikes one rank alone ends the whole job at once, since the others would wait for it
    forever."""
    from .train import RankError, TrainingError, world

    ranks = world()
    try:
        return _train(args, ranks)
    except (RankError, TrainingError):
        raise  # the same on every rank: main reports it (rank 0) and every rank exits
    except BaseException as exc:
        if ranks.size == 1:
            raise
        import traceback

        kind = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
        from_mpi = type(exc).__module__.startswith("mpi4py")  # a sum over the ranks failed
        if from_mpi:  # a collective failed: its peer is gone, or MPI itself broke
            said = "lost contact with another rank during a sum over the ranks (did it die?)"
        else:
            said = f"{type(exc).__name__}: {exc}"
        print(f"minis2s: {kind} on rank {ranks.rank} of {ranks.size}: {said}; ending every "
              "rank", file=sys.stderr)
        if not (from_mpi or isinstance(exc, (KeyboardInterrupt, *_known_errors()))):
            traceback.print_exc()
        sys.stderr.flush()
        ranks.abort(130 if kind == "interrupted" else 2)
        raise


def _train(args, ranks) -> int:
    from pathlib import Path

    from .backend import get_backend
    from .presets import get_preset
    from .train import INPUT_ERRORS, Interrupted, run_experiment, settings_to_resume

    def start():
        _check_seed(args.seed)
        overrides = {f: getattr(args, f) for f in TRAIN_FIELDS
                     if getattr(args, f) is not None}
        if args.resume:  # the checkpoint's settings, with the flags given
            preset = settings_to_resume(Path(args.out) / "checkpoint.npz", args.preset,
                                        overrides)
        else:
            preset = get_preset(args.preset or "zh").with_overrides(**overrides)
        return preset, get_backend(args.backend)

    preset, backend = ranks.together("start", start, INPUT_ERRORS)
    try:
        run = run_experiment(preset, args.data, backend, args.out, seed=args.seed,
                             progress=not args.quiet, warn=_warn, resume=args.resume,
                             ranks=ranks)
    except Interrupted as exc:
        _stop_listening_to_ctrl_c()  # a second press must not cut the report or the exit
        if ranks.root:
            _warn(str(exc))
        return 130
    if not ranks.root:
        return 0
    print(run.trainer.summary_line())
    last = run.trainer.history[-1]
    if last.valid_loss is not None:
        print(f"validation loss {last.valid_loss:.3f}")
    return 0


def _load_model(args, dtype: str = "float32"):
    from . import checkpoint
    from .backend import get_backend
    from .params import ParamSet

    ck = checkpoint.load(args.model)
    backend = get_backend(args.backend, dtype)
    params = ParamSet({k: v.shape for k, v in ck.params.items()}, backend.xp, backend.dtype)
    params.assign(ck.params)
    return ck, params, backend


def _stdin_lines() -> list[str]:
    """Standard input as lines split at ``\n`` only (a ``\r`` before it is dropped), so
    there is one output line per input line whatever the text holds. Bytes that are not
    UTF-8 become U+FFFD (and so ``<unk>``), with a warning naming the line."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream stands in for stdin (tests, embedding)
        return [ln.rstrip("\n").rstrip("\r") for ln in sys.stdin]
    raw = buffer.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    chunks = raw.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()  # the final newline ends the last line; it does not start another
    lines = []
    for number, chunk in enumerate(chunks, start=1):
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            _warn(f"input line {number} is not valid UTF-8; undecodable bytes read as U+FFFD")
            lines.append(chunk.decode("utf-8", errors="replace"))
    return lines


def _check_beam(args) -> None:
    from .settings import ConfigError

    if args.beam < 1:
        raise ConfigError(f"--beam must be a whole number >= 1, got {args.beam}")
    if not args.length_penalty >= 0 or args.length_penalty == float("inf"):  # NaN too
        raise ConfigError(f"--length-penalty must be a number >= 0, got "
                          f"{args.length_penalty}")


def _cmd_translate(args) -> int:
    import json
    from pathlib import Path

    from .data import DataError
    from .decode import translations
    from .decode.heatmap import draw_attention

    _check_beam(args)
    ck, params, backend = _load_model(args)
    want = bool(args.attention_plot or args.json)
    if args.attention_plot and not ck.config.decoder.attends:
        raise DataError(f"{args.model} holds a {ck.config.model} model, which has no "
                        "attention weights to draw; train one with --model attention")
    sentences = args.sentences if args.sentences else _stdin_lines()
    results = translations(params, ck.config, ck.src_vocab, ck.tgt_vocab, sentences,
                           ck.data.num_steps, backend, warn=_warn, beam=args.beam,
                           length_penalty=args.length_penalty, attention=want)
    drawn = 0
    for number, (sentence, t) in enumerate(zip(sentences, results), start=1):
        if args.json:
            print(json.dumps({"source": sentence, "translation": t.text, "tokens": t.tokens,
                              "source_tokens": t.source,
                              "attention": None if t.weights is None
                              else t.weights.tolist()}, ensure_ascii=False))
        else:
            print(t.text)
        if args.attention_plot and t.weights is not None:
            drawn += draw_attention(t, Path(args.attention_plot) / f"sentence_{number:04d}.png")
    if args.attention_plot:
        if drawn or not any(t.weights is not None for t in results):
            _warn(f"{drawn} attention heat maps in {args.attention_plot}")
        else:
            _warn("no heat maps: matplotlib is not installed (pip install 'minis2s[plot]')")
    return 0


def _cmd_evaluate(args) -> int:
    from .evaluate import plot_by_length

    _check_beam(args)
    named = [_evaluate_one(args, path) for path in args.model]
    names = [name for name, _ in named]
    if len(set(names)) < len(names):  # two of a kind: their paths tell them apart
        names = [f"{path}: {name}" for path, name in zip(args.model, names)]
    reports = dict(zip(names, (report for _, report in named)))
    if args.plot:
        if plot_by_length(reports, args.plot):
            _warn(f"figure in {args.plot}")
        else:
            _warn("no figure: matplotlib is not installed (pip install 'minis2s[plot]')")
    return 0


def _evaluate_one(args, path):
    """Score one checkpoint on its held-out part; print the report; return its name (the
    model and the decoding) and the report."""
    import json

    from .data import DataError, load_data, resolve_data_path
    from .decode import translate
    from .evaluate import by_length_table, score

    ck, params, backend = _load_model(argparse.Namespace(model=path, backend=args.backend))
    data = load_data(resolve_data_path(args.data), ck.data, warn=_warn)
    if data.src_vocab.idx_to_token != ck.src_vocab.idx_to_token:
        raise DataError(f"this corpus does not give the vocabulary {path} was trained "
                        "with: it is not the same data")
    part = getattr(data, args.part)
    if not len(part):
        raise DataError(f"the checkpoint's data settings leave no {args.part} part "
                        f"(preset {ck.training.get('preset', '?')}); try --part train")
    sources = [" ".join(t) for t in part.src_tokens]
    refs = [" ".join(t) for t in part.tgt_tokens]
    hyps = translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sources,
                     ck.data.num_steps, backend, beam=args.beam,
                     length_penalty=args.length_penalty)
    report = score(hyps, refs, [len(t) for t in part.src_tokens])
    scores = report.scores
    decoding = "greedy" if args.beam == 1 else (f"beam {args.beam}, length penalty "
                                                f"{args.length_penalty:g}")
    print(f"{args.part} part: {len(refs)} pairs, {ck.config.model} model, {decoding}")
    print(f"BLEU {scores['bleu']:.2f}  ({scores['bleu_signature']})")
    print(f"chrF {scores['chrf']:.2f}  ({scores['chrf_signature']})")
    print(f"mean sentence BLEU (the seed's formula, k=2) {report.seed_bleu:.3f}")
    if args.by_length:
        print(by_length_table(report))
    if args.json:
        print(json.dumps({"checkpoint": path, "model": ck.config.model, "part": args.part,
                          "pairs": report.pairs, "beam": args.beam,
                          "length_penalty": args.length_penalty, "bleu": scores["bleu"],
                          "chrf": scores["chrf"],
                          "by_length": [b.__dict__ for b in report.buckets]}))
    for s_, h, r in list(zip(sources, hyps, refs))[: args.show]:
        print(f"  {s_} => {h}   [ref: {r}]")
    return f"{ck.config.model}, {decoding}", report


def _cmd_gradflow(args) -> int:
    import json

    from .backend import get_backend
    from .data import DataError, read_pairs
    from .gradflow import batch_of_pairs, flow_table, fresh_model, gradient_flow, plot_flow
    from .presets import get_preset

    _check_seed(args.seed)
    backend = get_backend(args.backend, "float64")  # norms over many steps: no rounding
    if args.model and args.compare_cells:
        raise DataError("--compare-cells compares freshly initialised models; to compare "
                        "trained ones, give --model once per checkpoint")
    pairs = read_pairs(args.pairs, warn=_warn)[:args.batch_size]
    models = []  # (name, params, cfg, src_vocab, tgt_vocab, num_steps)
    for path in args.model or []:
        ck, params, _ = _load_model(argparse.Namespace(model=path, backend=args.backend),
                                    dtype="float64")
        name = ck.config.cell if len(args.model) > 1 else path
        models.append((name, params, ck.config, ck.src_vocab, ck.tgt_vocab,
                       args.num_steps or ck.data.num_steps))
    if not models:
        preset = get_preset(args.preset)
        cells = list(CELLS) if args.compare_cells else [args.cell]
        for cell in cells:
            params, cfg, sv, tv = fresh_model(preset, cell, pairs, backend, args.seed)
            models.append((cell, params, cfg, sv, tv, args.num_steps or preset.num_steps))
    flows = {}
    for name, params, cfg, sv, tv, num_steps in models:
        flows[name] = gradient_flow(params, cfg, batch_of_pairs(pairs, sv, tv, num_steps,
                                                                backend))
    if args.json:
        out = {n: f.to_dict() for n, f in flows.items()}
        print(json.dumps(next(iter(out.values())) if len(out) == 1 else out))
    else:
        for n, f in flows.items():
            print(f"{n}: {len(pairs)} pairs, {f.encoder and len(f.encoder[0])} source and "
                  f"{len(f.decoder[0])} target steps")
            print(flow_table(f, args.clip))
    if args.plot:
        title = f"{len(pairs)} pairs of {args.pairs}" + (" (fresh models)" if not args.model
                                                         else "")
        if plot_flow(flows, args.plot, args.clip, title):
            _warn(f"figure in {args.plot}")
        else:
            _warn("no figure: matplotlib is not installed (pip install 'minis2s[plot]')")
    return 0


# ----------------------------------------------------------------------------- parser

# the fields of a preset that ``minis2s train`` flags override
TRAIN_FIELDS = ("model", "cell", "embed_size", "num_hiddens", "num_layers", "dropout",
                "bidirectional", "epochs", "batch_size", "lr", "grad_clip", "num_examples",
                "num_steps", "min_freq", "valid_size", "test_size", "split_seed")


def _check_seed(seed) -> None:
    """A random seed is a whole number >= 0 (NumPy's generators take no other)."""
    from .settings import ConfigError

    if seed is not None and seed < 0:
        raise ConfigError(f"--seed must be a whole number >= 0, got {seed}")


def _size(text: str) -> int | float:
    """A part's size: a count (``128``) or a fraction of all pairs (``0.1``)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count or a fraction: {text!r}") from None



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minis2s",
        description="GRU sequence-to-sequence translation with hand-derived backprop.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def backend_opt(p):
        p.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                       help="array library (default: $MINIS2S_BACKEND, else numpy)")

    p = sub.add_parser("train", help="train a model and write DIR/checkpoint.npz",
                       description="Train a model. A preset sets every field; each flag "
                       "below overrides one. All settings are printed at the start and "
                       "recorded in the checkpoint.")
    p.add_argument("--data", help="fra.txt or fra-eng.zip (default: $MINIS2S_DATA, the "
                   "cache, else a download)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="named settings to start from (default zh; with --resume, the "
                   "checkpoint's)")
    p.add_argument("--seed", type=int, default=None, help="random seed of initialisation, "
                   "batch order and dropout (default 0; with --resume, the checkpoint's)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="go on from OUT/checkpoint.npz "
                   "with its settings (flags given must agree; --epochs counts all "
                   "epochs, done ones too)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none "
                   "when stderr is not a terminal)")
    backend_opt(p)
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=list(DECODERS), help="the decoder: the "
                   "seed's (seq2seq, the default) or Bahdanau attention (attention)")
    g.add_argument("--cell", choices=list(CELLS), help="the recurrent cell of "
                   "encoder and decoder (default gru, the seed's; rnn: vanilla, tanh)")
    g.add_argument("--embed-size", dest="embed_size", type=int, metavar="E")
    g.add_argument("--num-hiddens", dest="num_hiddens", type=int, metavar="H",
                   help="GRU units per direction")
    g.add_argument("--num-layers", dest="num_layers", type=int, metavar="L")
    g.add_argument("--dropout", type=float, metavar="P", help="between GRU layers, in [0, 1)")
    g.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="a bidirectional encoder (the decoder gets 2H units)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help="epochs in all")
    g.add_argument("--batch-size", dest="batch_size", type=int, metavar="N")
    g.add_argument("--lr", type=float, help="Adam's learning rate")
    g.add_argument("--grad-clip", dest="grad_clip", type=float, metavar="NORM",
                   help="clip gradients to this global norm")
    g = p.add_argument_group("data")
    g.add_argument("--examples", dest="num_examples", type=int, metavar="N",
                   help="read corpus lines 0..N (the seed's rule)")
    g.add_argument("--num-steps", dest="num_steps", type=int, metavar="T",
                   help="tokens per sentence, after padding or truncation")
    g.add_argument("--min-freq", dest="min_freq", type=int, metavar="K",
                   help="rarer tokens map to <unk>")
    g.add_argument("--valid-size", dest="valid_size", type=_size, metavar="N|F",
                   help="validation pairs: a count, or a fraction such as 0.1")
    g.add_argument("--test-size", dest="test_size", type=_size, metavar="N|F",
                   help="test pairs: a count, or a fraction")
    g.add_argument("--split-seed", dest="split_seed", type=int, metavar="S",
                   help="random seed of the train / validation / test split")
    p.set_defaults(func=_cmd_train)

    def beam_opts(p):
        p.add_argument("--beam", type=int, default=1, metavar="K", help="beam search with K "
                       "hypotheses per sentence (default 1: greedy decoding)")
        p.add_argument("--length-penalty", dest="length_penalty", type=float, default=0.75,
                       metavar="ALPHA", help="beam search scores log P / L^ALPHA (default "
                       "0.75)")

    p = sub.add_parser("translate", help="translate sentences (arguments, or stdin lines)")
    p.add_argument("--model", required=True, help="a checkpoint.npz")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE")
    beam_opts(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line: source, "
                   "translation, tokens and (attention models) the attention weights")
    p.add_argument("--attention-plot", dest="attention_plot", metavar="DIR", help="one heat "
                   "map per sentence, DIR/sentence_0001.png ... (attention models)")
    backend_opt(p)
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser("evaluate", help="corpus BLEU and chrF on the held-out test part")
    p.add_argument("--model", required=True, action="append", metavar="CKPT",
                   help="a checkpoint.npz; give it several times to score several models "
                   "(and draw them in one --plot)")
    p.add_argument("--data", help="the corpus the model was trained on")
    p.add_argument("--part", choices=["test", "valid", "train"], default="test")
    p.add_argument("--show", type=int, default=5, help="print this many example translations")
    beam_opts(p)
    p.add_argument("--by-length", dest="by_length", action="store_true", help="BLEU and chrF "
                   "per source-length bucket")
    p.add_argument("--plot", metavar="PNG", help="draw BLEU and chrF against source length")
    p.add_argument("--json", action="store_true", help="the scores as one JSON line too")
    backend_opt(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("gradcheck", help="check every backward pass against finite "
                       "differences (float64); exits 1 if any error exceeds 1e-6")
    p.add_argument("--seed", type=int, default=0, help="random seed of the checked values")
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("gradflow", help="how much gradient reaches each time step: "
                       "‖∂L/∂h_t‖ per layer of encoder and decoder",
                       description="For a batch of sentence pairs, the norm over the batch "
                       "of the gradient reaching every layer's state at every step, read "
                       "off backprop through time (the seed's loss, no dropout, float64).")
    p.add_argument("--pairs", required=True, help="sentence pairs, tab-separated as the "
                   "corpus (a .zip corpus works too)")
    p.add_argument("--model", action="append", metavar="CKPT", help="a checkpoint; give it "
                   "several times to compare trained models (default: a fresh model)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="zh",
                   help="the fresh model's shape (default zh)")
    p.add_argument("--cell", choices=list(CELLS), default="gru",
                   help="the fresh model's cell")
    p.add_argument("--compare-cells", action="store_true", help="fresh models of every "
                   "cell, one figure")
    p.add_argument("--seed", type=int, default=0, help="random seed of fresh models")
    p.add_argument("--num-steps", dest="num_steps", type=int, metavar="T", help="pad or "
                   "truncate each side to T tokens (default: the model's num_steps)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=64, metavar="N",
                   help="the first N pairs of the file (default 64)")
    p.add_argument("--clip", type=float, metavar="THETA", help="also show what clipping at "
                   "global norm THETA does to the gradients (the seed clips at 1)")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of a table")
    p.add_argument("--plot", metavar="PNG", help="draw the norms (log scale) to this file")
    backend_opt(p)
    p.set_defaults(func=_cmd_gradflow)

    from .bench import build_parser as bench_parser

    p = sub.add_parser("bench", help="training speed against a PyTorch reference of the "
                       "same model (--vs-torch), and on several ranks (--ranks R)")
    bench_parser(p)
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Run one command; returns its exit status.

    ``exiting``: the process ends right after (the ``minis2s`` command). Ctrl-C presses
    that come after an interruption then stay ignored to the end; otherwise (a call from
    Python) the SIGINT handler is put back before returning.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main_thread else None
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as a killed-by-SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    except _known_errors() as exc:
        if launched_rank() == 0:  # under mpiexec every rank stops; rank 0 says why
            print(f"minis2s: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _stop_listening_to_ctrl_c()
        print("minis2s: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread and not exiting and previous is not None:
            signal.signal(signal.SIGINT, previous)


def console() -> None:
    """The ``minis2s`` command."""
    raise SystemExit(main(exiting=True))
