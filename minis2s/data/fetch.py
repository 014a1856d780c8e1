"""Finding the corpus: ``--data``, ``$MINIS2S_DATA``, the cache, else a download.

The download is d2l's ``fra-eng.zip``, written to ``NAME.partial``, checked against its
SHA-1 and only then renamed, so the final name never holds an incomplete or altered file.
Network failures are retried with exponential back-off; client errors are not.

Why not a download library (``pooch`` does this for SciPy and scikit-image): the need is
one file with one checksum, and this module is ~100 lines of the standard library. Its
errors are the data layer's own :class:`DataError` with the hint a user needs (``--data``
or ``$MINIS2S_DATA``), its retries are injectable for tests, and the package keeps to
three runtime dependencies.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import DataError, Warn, warn_stderr

DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"
DATA_SHA1 = "94646ad1522d915e7b0f9296181140edcf86a4f5"
DATA_FILENAME = "fra-eng.zip"
ENV_DATA = "MINIS2S_DATA"
ENV_CACHE = "MINIS2S_CACHE"

PathLike = str | os.PathLike[str]
Opener = Callable[..., Any]
_CHUNK = 1 << 20


def _fetch_once(url: str, partial: Path, opener: Opener, timeout: float) -> str:
    """Download ``url`` into ``partial`` once; return the SHA-1 hex digest of the bytes."""
    digest = hashlib.sha1()
    received = 0
    with opener(url, timeout=timeout) as response:
        headers = getattr(response, "headers", None)
        length = headers.get("Content-Length") if headers is not None else None
        with open(partial, "wb") as out:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
    if length is not None and str(length).strip().isdigit() and received != int(length):
        raise http.client.IncompleteRead(b"", int(length) - received)
    return digest.hexdigest()


def download(
    url: str,
    dest: PathLike,
    sha1: str,
    *,
    opener: Opener = urllib.request.urlopen,
    sleep: Callable[[float], Any] = time.sleep,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.partial``, checking its SHA-1.

    Network failures are retried ``retries`` times, sleeping ``backoff * 2**k`` seconds
    before retry ``k``; client errors (HTTP 4xx) are not retried. The file appears at
    ``dest`` only once complete and verified; a checksum mismatch removes the partial
    file and raises :class:`DataError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    hint = f"download it by hand and pass --data PATH or set {ENV_DATA}"
    last_error: BaseException | None = None
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        try:
            digest = _fetch_once(url, partial, opener, timeout)
        except urllib.error.HTTPError as err:
            partial.unlink(missing_ok=True)
            last_error = err
            if 400 <= err.code < 500:
                break
            continue
        except (OSError, http.client.HTTPException) as err:
            # URLError, timeouts and connection resets are OSErrors; truncated bodies
            # raise IncompleteRead (an HTTPException).
            partial.unlink(missing_ok=True)
            last_error = err
            continue
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if digest != sha1.lower():
            partial.unlink(missing_ok=True)
            raise DataError(
                f"downloaded {url} but its SHA-1 is {digest}, expected {sha1}; "
                f"nothing was kept; {hint}"
            )
        os.replace(partial, dest)
        return dest
    attempts = attempt + 1
    raise DataError(
        f"could not download {url} to {dest} after {attempts} "
        f"attempt{'s' if attempts != 1 else ''} ({last_error!r}); {hint}"
    )


def cache_dir() -> Path:
    """Folder for downloaded data: ``$MINIS2S_CACHE`` or ``~/.cache/minis2s``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "minis2s"


def resolve_data_path(
    arg: PathLike | None = None,
    *,
    opener: Opener = urllib.request.urlopen,
    sleep: Callable[[float], Any] = time.sleep,
    warn: Warn = warn_stderr,
) -> Path:
    """Find the corpus: ``arg``, else ``$MINIS2S_DATA``, else the cache, else download it."""
    if arg is not None and str(arg) != "":
        path = Path(arg).expanduser()
        if not path.exists():
            raise DataError(f"{path}: data file not found")
        return path
    env = os.environ.get(ENV_DATA)
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise DataError(f"{path}: data file not found (from {ENV_DATA})")
        return path
    cached = cache_dir() / DATA_FILENAME
    if cached.is_file():
        return cached
    warn(f"minis2s: downloading {DATA_URL} to {cached}")
    return download(DATA_URL, cached, DATA_SHA1, opener=opener, sleep=sleep)
