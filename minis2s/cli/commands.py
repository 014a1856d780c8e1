"""What each command does: read its arguments, run the package, print the result.

Results go to stdout; progress, warnings and errors to stderr (:func:`warn`), so that
``translate`` output can be piped.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from ..settings import (
    DATA_FIELDS,
    MODEL_FIELDS,
    OPTIMISATION_FIELDS,
    TASK_FIELDS,
    ConfigError,
    check,
)
from ..wording import plural
from .naming import checkpoint_names

# the fields of a preset that ``minis2s train`` flags override
FLAG_FIELDS = (*MODEL_FIELDS, *OPTIMISATION_FIELDS, *DATA_FIELDS)
# the flags of a generated task's sizes, seed and options (``--task`` itself aside)
TASK_FLAG_FIELDS = tuple(f for f in TASK_FIELDS if f != "task")


def warn(message: str) -> None:
    """One line on stderr, prefixed ``minis2s: `` once (data messages carry it already)."""
    if not message.startswith("minis2s: "):
        message = f"minis2s: {message}"
    print(message, file=sys.stderr)


def known_errors():
    """Errors that are the input's or the machine's fault: one line, no traceback."""
    from ..bench import BenchError
    from ..compiled import CompiledError
    from ..exercises import ExerciseError
    from ..figures import FigureError
    from ..train import INPUT_ERRORS, RankError, TrainingError

    return (*INPUT_ERRORS, BenchError, CompiledError, ExerciseError, FigureError, RankError,
            TrainingError)


def gradcheck(args) -> int:
    from .. import gradcheck as checks

    check_seed(args.seed)
    return checks.main(seed=args.seed, backend=args.backend)


def bench(args) -> int:
    """As ``python -m minis2s.bench``: :func:`minis2s.bench.run` refuses, runs and
    reports its errors, under either name."""
    from .. import bench as benchmark

    return benchmark.run(args)


def stop_listening_to_ctrl_c() -> None:
    """From here on the command only reports and exits: further Ctrl-C presses are
    ignored, so they cannot replace the report or raise during interpreter shutdown."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def train(args) -> int:
    """Under ``mpiexec -n R`` every rank runs this. Errors that every rank meets alike
    (a bad setting, unreadable data, NaN) end every rank the usual way; anything that
    strikes one rank alone ends the whole job at once, since the others would wait for it
    forever."""
    from ..train import RankError, TrainingError, world

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
        if not (from_mpi or isinstance(exc, (KeyboardInterrupt, *known_errors()))):
            traceback.print_exc()
        sys.stderr.flush()
        ranks.abort(130 if kind == "interrupted" else 2)
        raise


def _train(args, ranks) -> int:
    from ..backend import get_backend
    from ..data import make_task
    from ..presets import get_preset
    from ..train import (
        INPUT_ERRORS,
        Interrupted,
        ResumeError,
        run_experiment,
        settings_to_resume,
    )

    def start():
        check_seed(args.seed)
        overrides = {f: getattr(args, f) for f in FLAG_FIELDS
                     if getattr(args, f) is not None}
        task_flags = {f: getattr(args, f) for f in TASK_FLAG_FIELDS}
        if args.resume:  # the checkpoint's settings, with the flags given
            path = Path(args.out) / "checkpoint.npz"
            preset = settings_to_resume(path, args.preset, overrides)
            task = make_task(args.task, task_flags, base=preset.task)
            if task != preset.task:
                trained = "the corpus" if preset.task is None else \
                    f"task {preset.task.describe()}"
                raise ResumeError(f"{path} was trained on {trained}, not task "
                                  f"{task.describe()}; leave the task flags out to go on "
                                  "with its own")
        else:  # the preset, then the task's settings, then the flags
            preset = get_preset(args.preset or "zh").with_task(
                make_task(args.task, task_flags), **overrides)
        return preset, get_backend(args.backend)

    preset, backend = ranks.together("start", start, INPUT_ERRORS)
    try:
        run = run_experiment(preset, args.data, backend, args.out, seed=args.seed,
                             progress=not args.quiet, warn=warn, resume=args.resume,
                             ranks=ranks, overwrite=args.overwrite)
    except Interrupted as exc:
        stop_listening_to_ctrl_c()  # a second press must not cut the report or the exit
        if ranks.root:
            warn(str(exc))
        return 130
    if not ranks.root:
        return 0
    print(run.trainer.summary_line())
    last = run.trainer.history[-1]
    if last.valid_loss is not None:
        print(f"validation loss {last.valid_loss:.3f}")
    return 0


def _load_model(model, backend=None, dtype: str = "float32"):
    """The checkpoint ``model`` names (a file, or the folder holding ``checkpoint.npz``),
    its parameters on ``backend`` (a name, or None for the default) in ``dtype``, and that
    backend."""
    from .. import checkpoint
    from ..backend import get_backend

    ck = checkpoint.load(checkpoint.resolve(model))
    on = get_backend(backend, dtype)
    return ck, ck.params_on(on), on


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
            warn(f"input line {number} is not valid UTF-8; undecodable bytes read as U+FFFD")
            lines.append(chunk.decode("utf-8", errors="replace"))
    return lines


def _check_beam(args) -> None:
    check({"beam": args.beam, "length_penalty": args.length_penalty})


def translate(args) -> int:
    import json

    from ..bleu import detokenize
    from ..data import DataError, text_rules
    from ..decode import translations
    from ..decode.heatmap import draw_attention
    from ..figures import check_figure_folder

    _check_beam(args)
    check_figure_folder(args.attention_plot)  # before any sentence is translated
    ck, params, backend = _load_model(args.model, args.backend)
    want = bool(args.attention_plot or args.json)
    if args.attention_plot and not ck.config.decoder.attends:
        raise DataError(f"{args.model} holds a {ck.config.model} model, which has no "
                        "attention weights to draw; train one with --model attention")
    sentences = args.sentences if args.sentences else _stdin_lines()
    results = translations(params, ck.config, ck.src_vocab, ck.tgt_vocab, sentences,
                           ck.data.num_steps, backend, warn=warn, beam=args.beam,
                           length_penalty=args.length_penalty, with_weights=want,
                           rules=text_rules(ck.task))
    plain = detokenize if ck.task is None else str  # a task's output is its text: "168"
    drawn = 0  # maps are numbered in the order drawn: a line without a map takes no number
    decoding = "greedy" if args.beam == 1 else f"beam {args.beam}"
    about = f"{ck.config.model} decoder, {ck.config.cell} cell, {decoding}"
    for sentence, t in zip(sentences, results):
        plot = None  # the heat map's file, where one is drawn
        if args.attention_plot and t.weights is not None:
            plot = Path(args.attention_plot) / f"sentence_{drawn + 1:04d}.png"
            if draw_attention(t, plot, sentence, about):
                drawn += 1
            else:
                plot = None
        if args.json:
            print(json.dumps({"source": sentence, "translation": t.text,
                              "detokenized": plain(t.text), "tokens": t.tokens,
                              "source_tokens": t.source,
                              "attention": None if t.weights is None
                              else t.weights.tolist(),
                              "attention_plot": None if plot is None else str(plot)},
                             ensure_ascii=False))
        else:
            print(plain(t.text) if args.detokenize else t.text)
    if args.attention_plot:
        if drawn or not any(t.weights is not None for t in results):
            warn(f"{plural(drawn, 'attention heat map')} in {args.attention_plot}")
        else:
            warn("no heat maps: matplotlib is not installed (pip install 'minis2s[plot]')")
    return 0


def evaluate(args) -> int:
    """Score each ``--model`` in turn. With ``--json`` stdout holds one JSON line per
    model and nothing else; the report a person reads goes to stderr."""
    from .. import checkpoint
    from ..data import DataError
    from ..evaluate import by_length_title, plot_by_length
    from ..figures import check_figure_path

    _check_beam(args)
    check_figure_path(args.plot)  # before any model is scored
    paths = [checkpoint.resolve(m) for m in args.model]
    cks = [checkpoint.load(path) for path in paths]  # every one readable before any work
    _check_context_from(args, cks)
    tasks = [str(path) for path, ck in zip(paths, cks) if ck.task is not None]
    if args.plot and tasks and len(tasks) < len(cks):
        raise DataError("--plot draws BLEU and chrF for a corpus model and accuracy for a "
                        "task model: give models of one kind (several --plot runs)")
    if args.data and tasks:
        warn(f"--data is not read for {', '.join(tasks)}: a task model makes its pairs "
             "again")
    out = sys.stderr if args.json else sys.stdout
    found = []
    for number, (path, ck) in enumerate(zip(paths, cks)):
        if number:
            print(file=out)
        found.append(_evaluate_one(args, ck, str(path), out, several=len(paths) > 1))
    names = checkpoint_names(args.model, [ck.config for ck in cks],
                             more=(_decoding(args),))
    reports = dict(zip(names, found))
    if args.plot:
        if plot_by_length(reports, args.plot, by_length_title(args.part, reports)):
            warn(f"figure in {args.plot}")
        else:
            warn("no figure: matplotlib is not installed (pip install 'minis2s[plot]')")
    return 0


def _evaluate_one(args, ck, path: str, out, several: bool):
    """Score checkpoint ``ck`` (read from ``path``) on its held-out part; print the report
    to ``out`` (its first line names ``path`` when ``several`` models are scored) and,
    with ``--json``, one JSON line to stdout; return the report."""
    import json

    from ..backend import get_backend
    from ..evaluate import by_length_table, evaluate_model

    ev = evaluate_model(ck, get_backend(args.backend), args.data, part=args.part,
                        beam=args.beam, length_penalty=args.length_penalty, warn=warn,
                        where=path, context_from=args.context_from)
    report = ev.report
    where = f"{path}, " if several else ""
    task = "" if ck.task is None else f", task {ck.task.describe()}"
    print(f"{where}{args.part} part: {plural(report.pairs, 'pair')}, {ck.config.model} "
          f"model, {_decoding(args)}{task}", file=out)
    if ck.task is None:
        scores = report.scores
        print(f"BLEU {scores['bleu']:.2f}  ({scores['bleu_signature']})", file=out)
        print(f"chrF {scores['chrf']:.2f}  ({scores['chrf_signature']})", file=out)
        print(f"mean sentence BLEU (the seed's formula, k=2) {report.seed_bleu:.3f}",
              file=out)
        measured = {"bleu": scores["bleu"], "chrf": scores["chrf"]}
    else:
        print(f"exact match {report.exact_match:.2f}%  (outputs equal to their reference, "
              "every token)", file=out)
        print(f"token accuracy {report.token_accuracy:.2f}%  (positions right, each pair "
              "counting the longer of output and reference)", file=out)
        measured = {"task": ck.task.to_dict(), "exact_match": report.exact_match,
                    "token_accuracy": report.token_accuracy}
    if args.by_length:
        print(by_length_table(report), file=out)
    for s_, h, r in list(zip(ev.sources, ev.hyps, ev.refs))[: args.show]:
        print(f"  {s_} => {h}   [ref: {r}]", file=out)
    if args.json:
        print(json.dumps({"checkpoint": path, "model": ck.config.model,
                          "cell": ck.config.cell, "part": args.part,
                          "pairs": report.pairs, "beam": args.beam,
                          "length_penalty": args.length_penalty,
                          "context_from": args.context_from, **measured,
                          "by_length": [b.__dict__ for b in report.buckets]}))
    out.flush()
    return report


def _check_context_from(args, cks) -> None:
    """``--context-from decoder`` only for the seed's decoder, greedily (ConfigError)."""
    from ..decode.greedy import check_context_from

    for ck in cks:
        try:
            check_context_from(args.context_from, ck.config, args.beam)
        except ValueError as e:
            raise ConfigError(f"--context-from decoder: {e}") from None


def _decoding(args) -> str:
    """The decoding ``evaluate`` was asked for, in words."""
    if args.beam == 1:
        if args.context_from == "decoder":
            return "greedy, context from the decoder's state"
        return "greedy"
    return f"beam {args.beam}, length penalty {args.length_penalty:g}"


def gradflow(args) -> int:
    import json

    from ..backend import get_backend
    from ..data import DataError, read_pairs
    from ..figures import check_figure_path
    from ..gradflow import (
        batch_of_pairs,
        distance_table,
        flow_table,
        fresh_model,
        gradient_by_distance,
        gradient_flow,
        plot_by_distance,
        plot_flow,
    )
    from ..ops import CELLS
    from ..presets import get_preset

    check_seed(args.seed)
    if args.clip is not None:
        check({"clip": args.clip})
    if args.clip is not None and args.by_distance:
        raise DataError("--clip and --by-distance do not go together: clipping scales every "
                        "gradient by one factor, which leaves their fall with distance as "
                        "it is")
    check_figure_path(args.plot)
    backend = get_backend(args.backend, "float64")  # norms over many steps: no rounding
    if args.model and args.compare_cells:
        raise DataError("--compare-cells compares freshly initialised models; to compare "
                        "trained ones, give --model once per checkpoint")
    _check_labels(args.label, args.model)
    read = {}  # the pairs as each model's rules read them: the corpus's (None), a task's

    def pairs_of(task):
        if task not in read:
            read[task] = read_pairs(args.pairs, warn=warn, rules=task)[:args.batch_size]
        return read[task]

    pairs = pairs_of(None) if not args.model else None  # fresh models read the corpus's way
    models = []  # (name, params, cfg, src_vocab, tgt_vocab, num_steps, pairs)
    for path in args.model or []:
        ck, params, _ = _load_model(path, args.backend, "float64")
        models.append((path, params, ck.config, ck.src_vocab, ck.tgt_vocab,
                       args.num_steps or ck.data.num_steps, pairs_of(ck.task)))
    if models:  # each its own name: one entry per checkpoint in the table, JSON and figure
        names = checkpoint_names(args.model, [m[2] for m in models], args.label)
        models = [(name, *rest) for name, (_, *rest) in zip(names, models)]
    if not models:
        preset = get_preset(args.preset)
        cells = list(CELLS) if args.compare_cells else [args.cell]
        for cell in cells:
            params, cfg, sv, tv = fresh_model(preset, cell, pairs, backend, args.seed)
            models.append((cell, params, cfg, sv, tv, args.num_steps or preset.num_steps,
                           pairs))
    measure = gradient_by_distance if args.by_distance else gradient_flow
    flows, counted = {}, {}
    for name, params, cfg, sv, tv, num_steps, own in models:
        flows[name] = measure(params, cfg, batch_of_pairs(own, sv, tv, num_steps, backend))
        counted[name] = len(own)
    if args.json:  # one shape, however many models: each one's name to its flow
        print(json.dumps({n: f.to_dict() for n, f in flows.items()}, ensure_ascii=False))
    else:
        for n, f in flows.items():
            if args.by_distance:
                S, T = f.source_steps, f.target_steps
            else:
                S, T = f.encoder and len(f.encoder[0]), len(f.decoder[0])
            print(f"{n}: {plural(counted[n], 'pair')}, {S} source and "
                  f"{plural(T, 'target step')}")
            print(distance_table(f) if args.by_distance else flow_table(f, args.clip))
    if args.plot:
        decoders = {m[2].model for m in models}
        title = (f"{plural(max(counted.values()), 'pair', ',')} of {args.pairs}; "
                 + ("trained" if args.model else f"freshly initialised, preset {args.preset}")
                 + (f", {decoders.pop()} decoder" if len(decoders) == 1 else ""))
        drawn = plot_by_distance(flows, args.plot, title) if args.by_distance else \
            plot_flow(flows, args.plot, args.clip, title)
        if drawn:
            warn(f"figure in {args.plot}")
        else:
            warn("no figure: matplotlib is not installed (pip install 'minis2s[plot]')")
    return 0


def _check_labels(labels, models) -> None:
    """``--label``: one per ``--model``, each its own."""
    from ..data import DataError

    if not labels:
        return
    if not models:
        raise DataError("--label names the checkpoints given with --model; fresh models "
                        "are named by their cells")
    if len(labels) != len(models):
        raise DataError(f"give one --label per --model ({plural(len(models), 'model')}, "
                        f"{plural(len(labels), 'label')})")
    twice = sorted({name for name in labels if labels.count(name) > 1})
    if twice:
        raise DataError(f"--label {twice[0]!r} is given twice; each model needs a name of "
                        "its own")


def info(args) -> int:
    import json

    from ..api import load
    from .info import describe

    about = load(args.checkpoint, backend="numpy").info()
    print(json.dumps(about, ensure_ascii=False) if args.json else describe(about))
    return 0


def explore(args) -> int:
    from ..explore.command import run

    _check_beam(args)  # --static's beam and length penalty, before any checkpoint is read
    return run(args)


def check_seed(seed) -> None:
    """A random seed is a whole number >= 0 (NumPy's generators take no other); None
    stands for the default."""
    if seed is not None:
        check({"seed": seed})


def exercise_list(args) -> int:
    from ..exercises import EXERCISES

    width = max(len(name) for name in EXERCISES)
    for ex in EXERCISES.values():
        print(f"{ex.name:<{width}}  {ex.summary}")
    return 0


def exercise_start(args) -> int:
    from ..exercises import EXERCISES, start

    written = start(args.folder, overwrite=args.overwrite)
    first = next(iter(EXERCISES.values()))
    print(f"copied {plural(len(written), 'exercise')} into {args.folder}: "
          f"{', '.join(path.name for path in written)}")
    print("next:")
    print(f"  cd {args.folder}")
    print(f"  # open {first.name}.py: its docstring says what to write; replace the raise "
          f"NotImplementedError in {first.function}")
    print(f"  minis2s exercise check {first.name}    # which output is wrong, how and where")
    print("then the others, in the order listed by: minis2s exercise list")
    return 0


def exercise_check(args) -> int:
    """0 if the answer passes, 1 if not (the report says why; an answer still running after
    ``--timeout`` seconds is stopped and does not pass)."""
    from ..exercises import ExerciseError, check, solution_path

    if args.solutions:
        what = solution_path(args.name)
    elif args.file is not None:
        what = Path(args.file)
    else:
        what = Path(f"{args.name}.py")
        if not what.is_file():
            raise ExerciseError(f"no {args.name}.py in this folder: run 'minis2s exercise start "
                                "DIR' to copy the exercises into DIR and check from there, or "
                                "give --file PATH")
    return 0 if check(args.name, what, timeout=args.timeout or None).passed else 1
