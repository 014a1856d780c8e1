"""The explorer's web server: the page and a JSON API, on the standard library's
:class:`http.server.ThreadingHTTPServer` (no dependency to install; the page is three
small files and the API two routes, which need no framework).

Routes (documented in docs/explorer.md):

* ``GET /`` — the page; ``GET /static/NAME`` — one of its files (:data:`STATIC`, a fixed
  table: no path from the request ever reaches the file system);
* ``GET /api/models`` — every model's settings;
* ``POST /api/explore`` — JSON ``{"sentence", "beam", "length_penalty", "parts"}`` in,
  every model's views of the sentence out (:meth:`~.data.Explorer.explore`).

Bad input gets a 4xx and ``{"error": message}``; an unexpected failure a 500 with a
one-line message (never a traceback), and the server goes on. Bodies are limited to
:data:`MAX_BODY` bytes; a whole request (request line, headers and body) must arrive
within :data:`REQUEST_TIMEOUT` seconds, however slowly its bytes trickle in (the limit is
on the total, not on each read); at most :data:`MAX_CONNECTIONS` connections are served
at once (one more gets a 503 at once and is closed); and at most :data:`WORKERS`
computations run at once (others wait up to :data:`QUEUE_TIMEOUT` seconds, then get a
503).
"""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from .data import MAX_BEAM, ExploreError, Explorer

MAX_BODY = 16 * 1024  # bytes of a request body
REQUEST_TIMEOUT = 10.0  # seconds to receive a whole request (line, headers, body)
SEND_TIMEOUT = 30.0  # seconds a client may take to take in an answer
MAX_CONNECTIONS = 32  # connections served at once; one more gets a 503
QUEUE_TIMEOUT = 30.0  # seconds a request waits for a free worker
WORKERS = 2
PARTS = ("translation", "beam", "connectivity")
STATIC = {"index.html": "text/html; charset=utf-8",
          "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}


def static_file(name: str) -> bytes:
    """One of the page's files, by its name in :data:`STATIC`."""
    return resources.files("minis2s.explore").joinpath("static", name).read_bytes()


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_request(body: bytes) -> dict:
    """The fields of an explore request, checked: raises :class:`RequestError` (400)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(400, "the request is not valid UTF-8") from None
    try:
        req = json.loads(text)
    except ValueError:
        raise RequestError(400, "the request is not valid JSON") from None
    if not isinstance(req, dict):
        raise RequestError(400, "the request must be a JSON object")
    unknown = set(req) - {"sentence", "beam", "length_penalty", "parts"}
    if unknown:
        raise RequestError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
    parts = req.get("parts", list(PARTS))
    if not isinstance(parts, list) or not all(p in PARTS for p in parts):
        raise RequestError(400, f"parts must be a list of {', '.join(PARTS)}")
    return {"sentence": req.get("sentence"), "beam": req.get("beam", 4),
            "length_penalty": req.get("length_penalty", 0.75), "parts": tuple(parts)}


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side that gives up at ``deadline`` (``time.monotonic()``):
    before each receive the socket's timeout is set to the time left, so a client
    sending a byte at a time cannot stretch a request past the deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        super().__init__()
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long to arrive")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


_BUSY_BODY = b'{"error": "the server is busy; try again in a moment"}'
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\n"
        b"Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


class ExploreServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, explorers: list[Explorer], quiet: bool = True,
                 request_timeout: float = REQUEST_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.explorers = explorers
        self.quiet = quiet
        self.request_timeout = request_timeout
        self.workers = threading.BoundedSemaphore(WORKERS)
        self.connections = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address):
        """Serve the connection in a thread of its own, unless :data:`MAX_CONNECTIONS`
        are being served already: then answer 503 at once (from the accepting thread,
        which never waits on a client) and close it."""
        if not self.connections.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    def _refuse(self, request) -> None:
        try:
            request.setblocking(False)
            request.send(BUSY)  # a fresh socket's send buffer has room: never waits
            for _ in range(16):  # what the client sent, so closing does not reset the answer
                if not request.recv(65536):
                    break
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request, client_address):
        """One line on stderr, never a traceback; a client that went away is no error."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        sys.stderr.write(f"minis2s explore: error answering {client_address[0]}: "
                         f"{type(exc).__name__}\n")

    def explore(self, req: dict) -> dict:
        if not self.workers.acquire(timeout=QUEUE_TIMEOUT):
            raise RequestError(503, "the server is busy; try again in a moment")
        try:
            return {"results": [ex.explore(req["sentence"], req["beam"],
                                           req["length_penalty"], req["parts"])
                                for ex in self.explorers],
                    "limits": {"max_beam": MAX_BEAM}}
        finally:
            self.workers.release()


class Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    server_version = "minis2s-explore"
    sys_version = ""

    def setup(self):
        """Read the request through a :class:`_DeadlineReader`: the whole request must
        arrive within the server's ``request_timeout`` seconds."""
        super().setup()
        self.rfile.close()  # the plain reader setup made (the socket stays open)
        self.rfile = io.BufferedReader(_DeadlineReader(
            self.connection, time.monotonic() + self.server.request_timeout))

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if not self.server.quiet:
            sys.stderr.write(f"minis2s explore: {self.address_string()} {format % args}\n")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.connection.settimeout(SEND_TIMEOUT)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"),
                   "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path == "/":
            path = "/static/index.html"
        if path == "/api/models":
            return self._json(200, {"models": [ex.settings() for ex in self.server.explorers],
                                    "limits": {"max_beam": MAX_BEAM}})
        name = path.removeprefix("/static/")
        if path.startswith("/static/") and name in STATIC:
            return self._send(200, static_file(name), STATIC[name])
        return self._error(404, "no such page")

    def do_HEAD(self):  # noqa: N802
        return self.do_GET()

    def _not_allowed(self):
        self._error(405, "the explorer answers GET and POST only")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    def do_POST(self):  # noqa: N802
        try:
            if self.path.split("?", 1)[0] != "/api/explore":
                raise RequestError(404, "no such page")
            size = self.headers.get("Content-Length")
            if size is None or not size.isdigit():
                raise RequestError(411, "the request needs a Content-Length")
            if int(size) > MAX_BODY:
                self.close_connection = True
                raise RequestError(413, f"the request is over {MAX_BODY} bytes")
            req = parse_request(self.rfile.read(int(size)))
            result = self.server.explore(req)
        except RequestError as exc:
            return self._error(exc.status, str(exc))
        except ExploreError as exc:
            return self._error(400, str(exc))
        except TimeoutError:
            self.close_connection = True
            return None
        except Exception as exc:  # noqa: BLE001 - the server must go on; one line, no trace
            return self._error(500, f"internal error: {type(exc).__name__}")
        return self._json(200, result)


def make_server(explorers: list[Explorer], host: str = "127.0.0.1", port: int = 8000,
                quiet: bool = True, request_timeout: float = REQUEST_TIMEOUT,
                max_connections: int = MAX_CONNECTIONS) -> ExploreServer:
    """A server for ``explorers`` bound to ``host``:``port`` (port 0: any free one), not
    yet serving: call ``serve_forever`` (in a thread, for tests)."""
    return ExploreServer((host, port), explorers, quiet, request_timeout, max_connections)
