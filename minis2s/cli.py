"""Command line: ``minis2s <command>`` and ``python -m minis2s <command>``."""

from __future__ import annotations

import argparse
import sys


def _cmd_gradcheck(args) -> int:
    from . import gradcheck

    return gradcheck.main(seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minis2s",
        description="GRU sequence-to-sequence translation with hand-derived backprop.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("gradcheck", help="check every backward pass against finite "
                       "differences (float64); exits 1 if any error exceeds 1e-6")
    p.add_argument("--seed", type=int, default=0, help="seed of the random shapes' values")
    p.set_defaults(func=_cmd_gradcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("minis2s: interrupted", file=sys.stderr)
        return 130
