"""The static export: one self-contained HTML file (the page's CSS and JavaScript inline,
the views of each sentence computed in advance), which opens offline from disk."""

from __future__ import annotations

import json
from pathlib import Path

from .data import Explorer
from .server import PARTS, static_file


def _embed_json(data) -> str:
    """JSON safe inside a <script> element: no "</" can close it."""
    return (json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
            .replace("<!--", "<\\!--"))


def static_page(explorers: list[Explorer], sentences: list[str], beam: int = 4,
                length_penalty: float = 0.75) -> str:
    """The page with every model's views of every sentence embedded."""
    data = {"models": [ex.settings() for ex in explorers],
            "sentences": [{"results": [ex.explore(s, beam, length_penalty, PARTS)
                                       for ex in explorers]} for s in sentences]}
    html = static_file("index.html").decode("utf-8")
    css = static_file("style.css").decode("utf-8")
    js = static_file("app.js").decode("utf-8").replace("</", "<\\/")
    html = html.replace('<link rel="stylesheet" href="/static/style.css">',
                        f"<style>\n{css}</style>")
    html = html.replace('<script id="explore-data" type="application/json">null</script>',
                        '<script id="explore-data" type="application/json">'
                        f"{_embed_json(data)}</script>")
    return html.replace('<script src="/static/app.js"></script>', f"<script>\n{js}</script>")


def write_static(path, explorers: list[Explorer], sentences: list[str], beam: int = 4,
                 length_penalty: float = 0.75) -> Path:
    path = Path(path)
    path.write_text(static_page(explorers, sentences, beam, length_penalty), encoding="utf-8")
    return path
