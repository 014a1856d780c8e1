"""How minis2s says counts and durations in what it prints: ``1 epoch``, ``2 pairs``,
``1 min 02 s``."""

from __future__ import annotations


def plural(count: int, noun: str, spec: str = "", many: str | None = None) -> str:
    """``1 pair``, ``2 pairs``: the count (formatted by ``spec``, say ``,``) and the noun,
    as it is for a count of 1 and otherwise ``many`` (default: the noun with an s), as in
    ``plural(3, "batch", many="batches")``."""
    return f"{count:{spec}} " + (noun if count == 1 else many or f"{noun}s")


def format_duration(seconds: float, tenths: bool = True) -> str:
    """A duration for people: '12.3 s' (at least '1 s' without ``tenths``), '1 min 02 s',
    '2 h 05 min'."""
    whole = round(seconds)
    if tenths and seconds < 59.95:
        return f"{seconds:.1f} s"
    if not tenths and whole < 60:
        return f"{max(whole, 1)} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"
