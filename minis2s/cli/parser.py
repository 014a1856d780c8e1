"""The command line's words: every command, option, default and help text.

Each command's function lives in :mod:`.commands`; :func:`build_parser` points each
sub-command at it.
"""

from __future__ import annotations

import argparse

from ..model import DECODERS
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minis2s",
        description="Sequence-to-sequence translation with hand-derived backprop.")
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
                   help="units per direction of the encoder's cell")
    g.add_argument("--num-layers", dest="num_layers", type=int, metavar="L")
    g.add_argument("--dropout", type=float, metavar="P", help="between recurrent layers, in [0, 1)")
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
    p.set_defaults(func=commands.train)

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
    p.set_defaults(func=commands.translate)

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
    p.set_defaults(func=commands.evaluate)

    p = sub.add_parser("gradcheck", help="check every backward pass against finite "
                       "differences (float64); exits 1 if any error exceeds 1e-6")
    p.add_argument("--seed", type=int, default=0, help="random seed of the checked values")
    p.set_defaults(func=commands.gradcheck)

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
    p.set_defaults(func=commands.gradflow)

    from ..bench import build_parser as bench_parser

    p = sub.add_parser("bench", help="training speed against a PyTorch reference of the "
                       "same model (--vs-torch), and on several ranks (--ranks R)")
    bench_parser(p)
    p.set_defaults(func=commands.bench)
    return parser
