"""The explorer: a local web page (and a static HTML export) showing, for any sentence,
the translation, the beam tree, the attention weights and the gradients through time.

:mod:`.data` computes every view as JSON-able data; :mod:`.server` serves the page and
its JSON API; :mod:`.page` writes the static export. The page itself (HTML, JavaScript,
CSS) lies in ``static/``.
"""
