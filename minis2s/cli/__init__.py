"""Command line: ``minis2s <command>`` and ``python -m minis2s <command>``.

Commands: ``train``, ``translate``, ``evaluate``, ``info``, ``gradcheck``, ``gradflow``,
``bench``, ``exercise``.
:mod:`.parser` holds the words (options, defaults, help), :mod:`.commands` what each
command does; :func:`main` runs one and turns known errors into one line on stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from ..compiled import from_environment
from ..train.ranks import launched_rank
from .commands import known_errors, stop_listening_to_ctrl_c
from .parser import build_parser

__all__ = ["build_parser", "console", "main"]


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
        from_environment()  # $MINIS2S_KERNELS: the cells' loops in NumPy or compiled
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as a killed-by-SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    except known_errors() as exc:
        if launched_rank() == 0:  # under mpiexec every rank stops; rank 0 says why
            print(f"minis2s: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        stop_listening_to_ctrl_c()
        print("minis2s: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread and not exiting and previous is not None:
            signal.signal(signal.SIGINT, previous)


def console() -> None:
    """The ``minis2s`` command."""
    raise SystemExit(main(exiting=True))
