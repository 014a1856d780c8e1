"""``minis2s explore``: serve the explorer, or write its static export."""

from __future__ import annotations

import ipaddress
import sys

from ..data import DataError
from .data import ExploreError, Explorer, check_request


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as ``--host`` gives it) reaches this machine only: ``localhost``
    or a loopback address (127.0.0.0/8, ::1). ``0.0.0.0``, ``::`` and any other address or
    name are reachable from elsewhere."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning printed when the server listens where others can reach it, or None."""
    if is_loopback(host):
        return None
    return (f"minis2s: warning: listening on {host}: anyone who can reach port {port} can "
            "use the explorer")


def run(args) -> int:
    """Load every ``--model``; with ``--static``, write the page for the sentences given,
    else serve it until interrupted."""
    explorers = [Explorer.load(m) for m in args.model]
    if args.static:
        from .page import write_static

        if not args.sentences:
            raise DataError("--static needs at least one SENTENCE to show")
        try:
            for s in args.sentences:
                check_request(s, args.beam, args.length_penalty)
            path = write_static(args.static, explorers, args.sentences, args.beam,
                                args.length_penalty)
        except ExploreError as exc:
            raise DataError(str(exc)) from None
        except OSError as exc:
            raise DataError(f"cannot write {args.static}: {exc.strerror or exc}") from None
        print(path)
        return 0
    if args.sentences:
        raise DataError("sentences are for --static; the server reads them from the page")
    from .server import make_server

    try:
        server = make_server(explorers, args.host, args.port, quiet=False)
    except OSError as exc:
        raise DataError(f"cannot listen on {args.host}:{args.port}: "
                        f"{exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    warning = exposure_warning(args.host, port)
    if warning:
        print(warning, file=sys.stderr)
    print(f"minis2s explore: http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
