"""The argument parser every command line of the package uses: ``minis2s`` and its
commands (:mod:`minis2s.cli`) and ``python -m minis2s.bench``.

Options are matched by their whole name only (never by a prefix), an unknown one is
reported by the command it follows with the nearest option names, and ``--help`` shows
every option's default. Nothing here knows any command.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys

__all__ = ["DefaultsHelp", "Parser", "did_you_mean"]

NEGATIVE_NUMBER = re.compile(r"^-(\d+|\d*\.\d+([eE][-+]?\d+)?|\d+[eE][-+]?\d+|inf|infinity|nan)$",
                             re.IGNORECASE)


class DefaultsHelp(argparse.HelpFormatter):
    """Help that ends each option's text with ``(default: X)``, unless the text already
    speaks of its default or there is none to show (a required option, a flag that is off
    unless given, a default of None)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or action.required or "default" in text
                or default is None or default is False or default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def did_you_mean(unknown: list[str], parser: argparse.ArgumentParser) -> str:
    """``unknown`` (arguments no option took) as an error message, with the options of
    ``parser`` closest to each unknown flag: ``unrecognized arguments: --epoch 5 (did you
    mean --epochs?)``."""
    known = [s for a in parser._actions if a.help is not argparse.SUPPRESS
             for s in a.option_strings]
    hints = []
    for word in unknown:
        if not word.startswith("--"):
            continue
        name = word.split("=", 1)[0]
        near = [s for s in known if s.startswith(name)] or \
            difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hints += [s for s in near if s not in hints]
    message = f"unrecognized arguments: {' '.join(unknown)}"
    if hints:
        options = hints[0] if len(hints) == 1 else \
            f"{', '.join(hints[:-1])} or {hints[-1]}"
        message += f" (did you mean {options}?)"
    return message


class Parser(argparse.ArgumentParser):
    """An argument parser that never takes a prefix for an option (``--epoch`` is not
    ``--epochs``), shows defaults in its help, and leaves unknown arguments to the
    command they follow: that command's usage, and the options it has that are nearest
    to them. Its commands' parsers are of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", DefaultsHelp)
        super().__init__(*args, **kwargs)
        # "-inf", "-nan" are values, as "-1" is, not option names (argparse's own rule
        # knows only digits)
        self._negative_number_matcher = NEGATIVE_NUMBER
        self._commands = None
        self._words = None  # the arguments being parsed, for error messages

    def add_subparsers(self, **kwargs):
        self._commands = super().add_subparsers(**kwargs)
        return self._commands

    def parse_known_args(self, args=None, namespace=None):
        self._words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            owner = self  # the innermost command the arguments named (commands may nest)
            while owner._commands is not None:
                inner = owner._commands.choices.get(getattr(parsed, owner._commands.dest,
                                                            None))
                if inner is None:
                    break
                owner = inner
            owner.error(did_you_mean(unknown, owner))
        return parsed

    def error(self, message):
        """Report ``message`` with this parser's usage and exit 2. A required option
        reported missing, as when its name is misspelt, comes with the unknown flags
        given and the options nearest to them."""
        if message.startswith("the following arguments are required"):
            unknown = [w for w in self._words or [] if w.startswith("--") and w != "--"
                       and w.split("=", 1)[0] not in self._option_string_actions]
            if unknown:
                message = f"{message}; {did_you_mean(unknown, self)}"
        super().error(message)
