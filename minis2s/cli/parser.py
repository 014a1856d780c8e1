"""The command line's words: every command, option, default and help text.

Each command's function lives in :mod:`.commands`; :func:`build_parser` points each
sub-command at it. The
parser is :class:`minis2s.argparsing.Parser`: options are matched by their whole name only
(never by a prefix), an unknown one is reported by its command with the nearest option
names, and ``--help`` shows every option's default.
"""

from __future__ import annotations

import argparse
import math

from ..argparsing import Parser
from ..data import TASKS
from ..data.tasks import HELD_OUT
from ..evaluate import PARTS
from ..exercises import EXERCISES
from ..model import DECODERS
from ..model.output import OUTPUT_LAYERS
from ..ops import CELLS
from ..presets import PRESETS
from . import commands


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


def _seconds(text: str) -> float:
    """A time limit in seconds: a number of 0 or more (0: none)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"not a number of seconds (0 or more): {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="minis2s",
        description="Sequence-to-sequence translation with hand-derived backprop.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def backend_opt(p):
        p.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                       help="array library (default: $MINIS2S_BACKEND, else numpy)")

    p = sub.add_parser("train", help="train a model and write DIR/checkpoint.npz",
                       description="Train a model. A preset sets every field; each flag "
                       "below overrides one (with --resume, the checkpoint's settings take "
                       "the preset's place). All settings are printed at the start and "
                       "recorded in the checkpoint.")
    p.add_argument("--data", help="fra.txt or fra-eng.zip (default: $MINIS2S_DATA, the "
                   "cache, else a download)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="named settings to start from (default: zh; with --resume, the "
                   "checkpoint's)")
    p.add_argument("--seed", type=int, default=None, help="random seed of initialisation, "
                   "batch order and dropout (default: 0; with --resume, the checkpoint's)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="go on from OUT/checkpoint.npz "
                   "with its settings (flags given must agree; --epochs counts all "
                   "epochs, done ones too)")
    p.add_argument("--overwrite", action="store_true", help="start again where OUT holds a "
                   "checkpoint, replacing it (without --overwrite or --resume such a run is "
                   "refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar: a line per epoch "
                   "instead (loss, speed, time left), and one every 5 minutes inside a "
                   "longer epoch, as when stderr is not a terminal")
    backend_opt(p)

    def field(group, flag, text, unset="all", **kwargs):
        """A flag that overrides one preset field; its default is the preset's (``unset``
        says what a field left None means)."""
        value = getattr(PRESETS["zh"], kwargs.setdefault("dest", flag[2:].replace("-", "_")))
        if isinstance(value, bool):
            value = "on" if value else "off"
        elif value is None:
            value = unset
        group.add_argument(flag, help=f"{text} (default: the preset's; zh: {value})",
                           **kwargs)

    g = p.add_argument_group("model")
    field(g, "--model", "the decoder: seq2seq (the seed's) or attention (Bahdanau's)",
          choices=list(DECODERS))
    field(g, "--cell", "the recurrent cell of encoder and decoder: gru (the seed's), lstm "
          "or rnn (vanilla, tanh)", choices=list(CELLS))
    field(g, "--embed-size", "embedding size", type=int, metavar="E")
    field(g, "--num-hiddens", "units per direction of the encoder's cell", type=int,
          metavar="H")
    field(g, "--num-layers", "recurrent layers of encoder and decoder", type=int,
          metavar="L")
    field(g, "--dropout", "between recurrent layers, in [0, 1)", type=float, metavar="P")
    field(g, "--bidirectional", "a bidirectional encoder (the decoder gets 2H units)",
          action=argparse.BooleanOptionalAction, default=None)
    field(g, "--decoder-hiddens", "units of the decoder's cell; other than the encoder's "
          "width (H, 2H when bidirectional), the decoder starts from the encoder's top-layer "
          "final state through a learned tanh layer", unset="the encoder's width", type=int,
          metavar="HD")
    field(g, "--output-layer", "the decoder's output layer: dense (the seed's, the state "
          "to the vocabulary) or deep (a tanh layer of the state, the context and the input "
          "token's embedding first)", choices=list(OUTPUT_LAYERS))
    g = p.add_argument_group("optimisation")
    field(g, "--epochs", "epochs in all", type=int)
    field(g, "--batch-size", "pairs per step", type=int, metavar="N")
    field(g, "--lr", "Adam's learning rate", type=float)
    field(g, "--lr-decay", "multiply the learning rate by F after every epoch (epoch e "
          "trains at lr * F^(e-1)), in (0, 1]", type=float, metavar="F")
    field(g, "--grad-clip", "clip gradients to this global norm", type=float,
          metavar="NORM")
    field(g, "--loss-reduction", "how the loss weighs each target token: seq (the seed's "
          "and d2l's, each sequence's token losses summed and divided by num_steps), sum "
          "(summed), mean (divided by the sequence's own length, so a short target's tokens "
          "and <eos> weigh more) or unmasked (every position, padding included, / num_steps: "
          "d2l's exercise without the mask)", choices=["seq", "sum", "mean", "unmasked"])
    g = p.add_argument_group("data")
    field(g, "--examples", "read corpus lines 0..N (the seed's rule)", type=int,
          metavar="N", dest="num_examples")
    field(g, "--num-steps", "tokens per sentence, after padding or truncation", type=int,
          metavar="T")
    field(g, "--min-freq", "rarer tokens map to <unk>", type=int, metavar="K")
    field(g, "--valid-size", "validation pairs: a count, or a fraction such as 0.1",
          type=_size, metavar="N|F")
    field(g, "--test-size", "test pairs: a count, or a fraction", type=_size,
          metavar="N|F")
    field(g, "--split-seed", "random seed of the train / validation / test split",
          type=int, metavar="S")
    task_options(p)
    p.set_defaults(func=commands.train)

    def beam_opts(p):
        p.add_argument("--beam", type=int, default=1, metavar="K", help="beam search with K "
                       "hypotheses per sentence (default: 1, greedy decoding)")
        p.add_argument("--length-penalty", dest="length_penalty", type=float, default=0.75,
                       metavar="ALPHA", help="beam search scores log P / L^ALPHA")

    ckpt = "a checkpoint.npz, or the folder holding one (the --out of minis2s train)"
    p = sub.add_parser("translate", help="translate sentences (arguments, or stdin lines)",
                       description="Translate each SENTENCE, or else each line of standard "
                       "input: one line out per sentence, tokens joined by spaces (--detokenize: "
                       "punctuation joined to its word, as evaluate scores it).")
    p.add_argument("--model", required=True, metavar="CKPT", help=ckpt)
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help="English sentences, "
                   "or a task model's inputs such as 123+45 (default: the lines of standard "
                   "input)")
    beam_opts(p)
    p.add_argument("--detokenize", action="store_true", help="print 'va!' rather than the "
                   "tokens 'va !'")
    p.add_argument("--json", action="store_true", help="one JSON object per line: source, "
                   "translation (tokens joined by spaces), detokenized, tokens, "
                   "(attention models) the attention weights, and attention_plot: the "
                   "file of the sentence's heat map (null where none was drawn)")
    p.add_argument("--attention-plot", dest="attention_plot", metavar="DIR", help="one heat "
                   "map per sentence (attention models), DIR/sentence_0001.png ... numbered "
                   "in the order drawn: an empty line gets none and takes no number, so "
                   "--json names each sentence's file")
    backend_opt(p)
    p.set_defaults(func=commands.translate)

    p = sub.add_parser("evaluate", help="corpus BLEU and chrF on the held-out test part "
                       "(a task model: exact-match and token accuracy)")
    p.add_argument("--model", required=True, action="append", metavar="CKPT",
                   help=f"{ckpt}; give it several times to score several models (and draw "
                   "them in one --plot)")
    p.add_argument("--data", help="the corpus the model was trained on (default: "
                   "$MINIS2S_DATA, the cache, else a download; a task model makes its pairs "
                   "again and reads none)")
    p.add_argument("--part", choices=PARTS, default="test",
                   help="which part of the corpus to score")
    p.add_argument("--show", type=int, default=5, metavar="N",
                   help="print this many example translations")
    beam_opts(p)
    p.add_argument("--by-length", dest="by_length", action="store_true", help="BLEU and chrF "
                   "(a task model: its accuracies) per source-length bucket")
    p.add_argument("--plot", metavar="PNG", help="draw BLEU and chrF (a task model: its "
                   "accuracies) against source length")
    p.add_argument("--json", action="store_true", help="stdout holds only JSON, one line per "
                   "model (its checkpoint, settings and scores); the report goes to stderr")
    p.add_argument("--context-from", dest="context_from", choices=["encoder", "decoder"],
                   default="encoder", help="the seed's decoder's context at each step: the "
                   "encoder's final h, as trained, or (decoder) its own state after the "
                   "previous step, as d2l's predict_seq2seq computes it; greedy only")
    backend_opt(p)
    p.set_defaults(func=commands.evaluate)

    p = sub.add_parser("gradcheck", help="check every backward pass against finite "
                       "differences (float64); exits 1 if any error exceeds 1e-6")
    p.add_argument("--seed", type=int, default=0, help="random seed of the checked values")
    backend_opt(p)
    p.set_defaults(func=commands.gradcheck)

    p = sub.add_parser("gradflow", help="how much gradient reaches each time step: "
                       "‖∂L/∂h_t‖ per layer of encoder and decoder",
                       description="For a batch of sentence pairs, the norm over the batch "
                       "of the gradient reaching every layer's state at every step, read "
                       "off backprop through time (the seed's loss, no dropout, float64).")
    p.add_argument("--pairs", required=True, help="sentence pairs, tab-separated as the "
                   "corpus (a .zip corpus works too); a task model reads each side as its "
                   "task does (123+45<TAB>168)")
    p.add_argument("--model", action="append", metavar="CKPT", help=f"{ckpt}; give it "
                   "several times to compare trained models (default: a fresh model)")
    p.add_argument("--label", action="append", metavar="NAME", help="a name for each "
                   "--model, in order, used in the table, the JSON and the figure (default: "
                   "its folder, decoder and cell, as evaluate names it: 'runs/a (seq2seq, "
                   "gru)')")
    p.add_argument("--preset", choices=sorted(PRESETS), default="zh",
                   help="the fresh model's shape")
    p.add_argument("--cell", choices=list(CELLS), default="gru",
                   help="the fresh model's cell")
    p.add_argument("--compare-cells", action="store_true", help="fresh models of every "
                   "cell, one figure")
    p.add_argument("--seed", type=int, default=0, help="random seed of fresh models")
    p.add_argument("--num-steps", dest="num_steps", type=int, metavar="T", help="pad or "
                   "truncate each side to T tokens (default: the model's num_steps)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=64, metavar="N",
                   help="the first N pairs of the file")
    p.add_argument("--clip", type=float, metavar="THETA", help="also show what clipping at "
                   "global norm THETA does to the gradients (the seed clips at 1)")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of a table: "
                   "one object, each model's name to its norms (for one model too; fresh "
                   "models are named by their cell)")
    p.add_argument("--by-distance", dest="by_distance", action="store_true",
                   help="take the total apart: the gradient the loss at target step t' "
                   "alone sends to the state at step t, averaged over the sentences and "
                   "the pairs (t, t') at each distance (decoder: d = t' - t; encoder: d = "
                   "S - t, S source steps, every t' averaged), with the LSTM's cell state "
                   "beside h; the table, --json and --plot show these instead")
    p.add_argument("--plot", metavar="PNG", help="draw the norms (log scale) to this file")
    backend_opt(p)
    p.set_defaults(func=commands.gradflow)

    p = sub.add_parser("info", help="what a checkpoint holds: settings, data, training "
                       "record, size")
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint.npz, or the folder "
                   "holding one")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=commands.info)

    p = sub.add_parser("explore", help="a web page showing, for any sentence, the "
                       "translation, beam tree, attention and gradients (docs/explorer.md)")
    p.add_argument("--model", required=True, action="append", metavar="CKPT",
                   help=f"{ckpt}; give it twice to see two models side by side")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: "
                   "127.0.0.1, this machine only; any other lets anyone who can reach the "
                   "port use it)")
    p.add_argument("--port", type=int, default=8000, help="the port (0: any free one)")
    p.add_argument("--static", metavar="OUT.html", help="write one self-contained page with "
                   "the views of each SENTENCE instead of serving")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help="English sentences "
                   "for --static")
    p.add_argument("--beam", type=int, default=4, metavar="K", help="--static's beam "
                   "width (default: 4; the page has its own)")
    p.add_argument("--length-penalty", dest="length_penalty", type=float, default=0.75,
                   metavar="ALPHA", help="--static's length penalty (default: 0.75)")
    p.set_defaults(func=commands.explore)

    exercise_parser(sub)

    from ..bench import build_parser as bench_parser

    p = sub.add_parser("bench", help="training speed against a PyTorch reference of the "
                       "same model (--vs-torch), and on several ranks (--ranks R)")
    bench_parser(p)
    p.set_defaults(func=commands.bench)
    return parser


def task_options(p, command: str = "train") -> None:
    """The options of the generated tasks (minis2s/data/tasks.py; docs/tasks.md), for
    ``command``: ``train``, or ``bench``, which times training on the task's pairs.
    Each defaults to None, so that the command knows which were given: the task's own
    default, or on --resume the checkpoint's, fills the others in."""
    def by_value(found: dict) -> str:
        """``copy, reverse: 10; add: 3``: the tasks that share a value named together."""
        names: dict = {}
        for name, value in found.items():
            names.setdefault(value, []).append(name)
        return "; ".join(f"{', '.join(n)}: {v:,}" for v, n in names.items())

    def default(option: str) -> str:
        return by_value({name: task.defaults[option] for name, task in TASKS.items()
                         if option in task.defaults})

    sizes = by_value({name: task.train_size for name, task in TASKS.items()})
    epochs = by_value({name: task.epochs for name, task in TASKS.items()})
    g = p.add_argument_group("task", "pairs generated from a random seed instead of the "
                             "corpus: --task NAME, its options, and its sizes")
    tasks = "; ".join(f"{name}, {task.summary}" for name, task in TASKS.items())
    if command == "bench":
        what = (f"time training on task NAME's training pairs instead of the corpus: {tasks}."
                " It sets num_steps to fit its longest pairs; --data is then refused "
                "(default: none, the corpus)")
    else:
        what = (f"train on task NAME: {tasks}. It sets num_steps to fit its longest pairs, "
                f"--valid-size and --test-size to {HELD_OUT}, --min-freq to 1, --examples "
                f"to none and --epochs to its own ({epochs}); flags still override them "
                "(default: none, the corpus)")
    g.add_argument("--task", choices=list(TASKS), default=None, help=what)
    g.add_argument("--train-size", dest="train_size", type=int, default=None, metavar="N",
                   help=f"training pairs of the task (default: {sizes})")
    g.add_argument("--task-seed", dest="task_seed", type=int, default=None, metavar="S",
                   help="random seed of the task's pairs; --split-seed then splits them "
                   "into parts (default: 0)")
    g.add_argument("--symbols", type=int, default=None, metavar="K", help="copy, reverse: "
                   f"the first K of a-z, A-Z, 0-9, from 2 to 62 (default: {default('symbols')})")
    g.add_argument("--min-len", dest="min_len", type=int, default=None, metavar="N",
                   help=f"copy, reverse: the shortest string (default: {default('min_len')})")
    g.add_argument("--max-len", dest="max_len", type=int, default=None, metavar="N",
                   help=f"copy, reverse: the longest string (default: {default('max_len')})")
    g.add_argument("--digits", type=int, default=None, metavar="D", help="add: the most "
                   f"digits of each number, from 1 to 30 (default: {default('digits')})")
    g.add_argument("--min-year", dest="min_year", type=int, default=None, metavar="Y",
                   help=f"date: the first year (default: {default('min_year')})")
    g.add_argument("--max-year", dest="max_year", type=int, default=None, metavar="Y",
                   help=f"date: the last year; two-digit years are written only when the "
                   f"range spans at most 100 years (default: {default('max_year')})")
    g.add_argument("--reverse-source", dest="reverse_source",
                   action=argparse.BooleanOptionalAction, default=None, help="every task: "
                   "the model reads each source backwards (as Sutskever et al. did); "
                   "translate and evaluate still take it forwards (default: off)")


def exercise_parser(sub) -> None:
    """``minis2s exercise list | check NAME | start DIR``."""
    p = sub.add_parser("exercise", help="write backward passes yourself and get them graded "
                       "with hints (list, start, check)",
                       description="Exercises in backprop through time: stubs to fill in "
                       "(start copies them), graded against finite differences and the shipped "
                       "solutions by check, which says which output is wrong and where, never "
                       "the answer. Works offline; needs no corpus.")
    actions = p.add_subparsers(dest="exercise_action", metavar="ACTION")
    actions.required = True
    q = actions.add_parser("list", help="the exercises, one line each",
                           description="Name and one-line description of every exercise.")
    q.set_defaults(func=commands.exercise_list)
    q = actions.add_parser("start", help="copy every exercise's stub into DIR",
                           description="Copy the stubs of all the exercises into DIR (made if "
                           "missing); a file already there is never replaced without "
                           "--overwrite.")
    q.add_argument("folder", metavar="DIR", help="the folder to work in")
    q.add_argument("--overwrite", action="store_true", help="replace the stubs already in DIR "
                   "with fresh ones (what you wrote in them is lost)")
    q.set_defaults(func=commands.exercise_start)
    q = actions.add_parser("check", help="grade your answer to exercise NAME",
                           description="Grade your answer to exercise NAME: exit status 0 if "
                           "it passes, 1 if not (the report says which output is wrong, how "
                           "and where, or that it ran longer than --timeout and was stopped), "
                           "2 for a usage error.")
    q.add_argument("name", metavar="NAME", choices=list(EXERCISES),
                   help=f"the exercise: {', '.join(EXERCISES)}")
    which = q.add_mutually_exclusive_group()
    which.add_argument("--file", metavar="PATH", help="the file to grade (default: NAME.py in "
                       "the current folder, as exercise start made it)")
    which.add_argument("--solutions", action="store_true", help="grade the shipped solution "
                       "instead, to see what a pass looks like")
    q.add_argument("--timeout", type=_seconds, default=30, metavar="SECONDS",
                   help="stop an answer that runs longer (an endless loop?) and report it; "
                   "0 for no limit")
    q.set_defaults(func=commands.exercise_check)
