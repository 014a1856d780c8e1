"""Make docs/commands.md, every command's ``--help`` on one page, from the parser itself.

    python docs/make_commands.py            # writes docs/commands.md
    python docs/make_commands.py --check    # writes nothing; exit 1 if the page is stale

The page is what ``minis2s COMMAND --help`` prints, at a width of 100 columns, for the
top-level command, each of its commands in the parser's order and
``python -m minis2s.bench``: options, defaults and help texts, so that they can be read
without installing anything. ``tests/test_commands_page.py`` fails when an option or its
help changed and the page was not made again.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "commands.md"
WIDTH = 100  # columns of the help text (argparse reads $COLUMNS)

INTRO = """\
# Commands

Every command's `--help`, as it prints it (`python docs/make_commands.py` makes this page
again from the parser; a test keeps it in step). Each option's default is shown after its
help; an option given on the command line overrides the preset's value
(`minis2s train --preset big --epochs 3`). See the [README](../README.md) for what to run
first, [tasks.md](tasks.md) for the generated tasks and
[reliability.md](reliability.md) for what each command does with bad input.
"""


def parsers() -> dict[str, argparse.ArgumentParser]:
    """The top parser, each command's in the parser's order, and ``python -m
    minis2s.bench``'s, by the command line that reaches them."""
    sys.path.insert(0, str(ROOT))
    from minis2s.bench import build_parser as bench_parser
    from minis2s.cli import build_parser

    top = build_parser()
    commands = top._commands.choices  # the sub-commands, as Parser keeps them
    return {"minis2s": top, **{f"minis2s {name}": p for name, p in commands.items()},
            "python -m minis2s.bench": bench_parser()}


def page() -> str:
    """The page's text: the introduction, a list of the commands, then each one's help."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        found = {name: p.format_help().rstrip() for name, p in parsers().items()}
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    anchors = [f"- [`{name}`](#{name.replace(' ', '-').replace('.', '')})"
               for name in found]
    parts = [INTRO, "\n".join(anchors) + "\n"]
    for name, text in found.items():
        parts.append(f"## {name}\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if docs/commands.md is stale")
    args = parser.parse_args(argv)
    text = page()
    if args.check:
        now = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
        if now != text:
            print(f"{PAGE.relative_to(ROOT)} is stale: run python docs/make_commands.py",
                  file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
