"""Reading a corpus file's lines safely: a plain UTF-8 file, or a zip archive's member.

Nothing here knows about sentence pairs. It refuses what could hurt the machine or be
misread — zip members with absolute or climbing names, members that would inflate past
1 GiB or compress better than 200:1 (a zip bomb, decided from the archive's directory
before anything is decompressed), bytes that are not UTF-8 — and reports every problem as
a :class:`DataError` that names the file and, where there is one, the line. The member is
read as a stream in memory, never unpacked to disk.
"""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from .errors import DataError

ZIP_MEMBER = "fra-eng/fra.txt"
MAX_MEMBER_SIZE = 1 << 30  # 1 GiB uncompressed
MAX_COMPRESSION_RATIO = 200

_UTF8_BOM = b"\xef\xbb\xbf"


def _is_unsafe_name(name: str) -> bool:
    """True if a zip member name is absolute or climbs out of its folder."""
    if name.startswith(("/", "\\")) or (len(name) >= 2 and name[1] == ":"):
        return True
    parts = name.replace("\\", "/").split("/")
    return ".." in parts


def _pick_member(zf: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    """Check every member name, choose the corpus member and check its size records."""
    infos = zf.infolist()
    for info in infos:
        if _is_unsafe_name(info.filename):
            raise DataError(f"{path}: refusing zip with unsafe member name {info.filename!r}")
    names = [info.filename for info in infos]
    if ZIP_MEMBER in names:
        info = zf.getinfo(ZIP_MEMBER)
    else:
        candidates = [i for i in infos if not i.is_dir() and i.filename.endswith("fra.txt")]
        if len(candidates) != 1:
            listing = ", ".join(repr(n) for n in names) or "(none)"
            raise DataError(
                f"{path}: zip has no member {ZIP_MEMBER!r} (nor a single '*fra.txt'); "
                f"members: {listing}"
            )
        info = candidates[0]
    if info.file_size > MAX_MEMBER_SIZE:
        raise DataError(
            f"{path}: refusing member {info.filename!r}: uncompressed size "
            f"{info.file_size} bytes exceeds {MAX_MEMBER_SIZE}"
        )
    if info.file_size > 0:
        if info.compress_size <= 0:
            ratio = float("inf")
        else:
            ratio = info.file_size / info.compress_size
        if ratio > MAX_COMPRESSION_RATIO:
            raise DataError(
                f"{path}: refusing member {info.filename!r}: compression ratio "
                f"{ratio:.0f} exceeds {MAX_COMPRESSION_RATIO}"
            )
    return info


def decoded_lines(stream: IO[bytes], where: str) -> Iterator[str]:
    """Yield the lines of a UTF-8 byte stream without their line endings.

    Lines end at ``\\n`` only (a preceding ``\\r`` is dropped), so the count matches
    line numbers as editors show them. A leading BOM is ignored. Text after the final
    newline forms one more line; nothing after it forms none.
    """
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM) :]
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            yield raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{where}: line {number}: invalid UTF-8 at byte {err.start} ({err.reason})"
            ) from None


@contextlib.contextmanager
def open_lines(path) -> Iterator[tuple[Iterator[str], str, str]]:
    """Open a corpus for reading line by line: ``with open_lines(p) as (lines, where,
    name)``. ``where`` names the file (``ZIP:member`` inside a zip) for messages, ``name``
    is the file's own name. A ``.zip`` is read through its corpus member
    (``fra-eng/fra.txt``, or its single ``*fra.txt``); any other file as UTF-8 text."""
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise DataError(f"{path}: not a regular file")
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix.lower() != ".zip":
            with open(path, "rb") as stream:
                yield decoded_lines(stream, str(path)), str(path), path.name
            return
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as err:
            raise DataError(f"{path}: not a valid zip file ({err})") from None
        with zf:
            info = _pick_member(zf, path)
            where = f"{path}:{info.filename}"
            try:
                with zf.open(info) as stream:
                    yield (decoded_lines(stream, where), where,
                           PurePosixPath(info.filename).name)
            except (zipfile.BadZipFile, zlib.error, NotImplementedError,
                    RuntimeError) as err:
                raise DataError(f"{where}: cannot decompress: {err}") from None
    except DataError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise DataError(f"{path}: cannot read: {err}") from err
