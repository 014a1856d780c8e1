"""Checkpoints: one ``.npz`` with the parameters under their PyTorch names and ``meta``.

``meta`` is a JSON string: ``format_version``, ``config`` (embed_size, num_hiddens,
num_layers, dropout, num_steps, bidirectional), ``src_vocab`` and ``tgt_vocab`` (tokens in
index order) and, when known, ``data`` (how the corpus was read and split) and
``training`` (epochs run). Files are written atomically and read with
``allow_pickle=False``: a checkpoint can hold arrays and text, never code.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import DataError, Vocab
from .model import ModelConfig, param_shapes

FORMAT_VERSION = 1
META = "meta"
CONFIG_KEYS = ("embed_size", "num_hiddens", "num_layers", "dropout", "num_steps",
               "bidirectional")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not describe a valid model."""


@dataclass
class Checkpoint:
    params: dict  # name -> NumPy array
    config: ModelConfig
    num_steps: int
    src_vocab: Vocab
    tgt_vocab: Vocab
    data: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # further arrays (optimiser state, ...)


def _meta(ck: Checkpoint) -> str:
    cfg = ck.config
    config = {"embed_size": cfg.embed_size, "num_hiddens": cfg.num_hiddens,
              "num_layers": cfg.num_layers, "dropout": cfg.dropout,
              "num_steps": ck.num_steps, "bidirectional": cfg.bidirectional}
    return json.dumps({"format_version": FORMAT_VERSION, "config": config,
                       "src_vocab": list(ck.src_vocab.idx_to_token),
                       "tgt_vocab": list(ck.tgt_vocab.idx_to_token),
                       "data": ck.data, "training": ck.training}, ensure_ascii=False)


def save(path, ck: Checkpoint) -> Path:
    """Write ``ck`` to ``path`` atomically: a crash leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.asarray(v) for name, v in ck.params.items()}
    for name, v in ck.extra.items():
        arrays["extra/" + name] = np.asarray(v)
    arrays[META] = np.array(_meta(ck))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def load(path) -> Checkpoint:
    """Read and validate a checkpoint; every problem is a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:  # object arrays need pickle: refused
        raise CheckpointError(f"{path}: refused, it holds pickled objects ({exc})") from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({exc})") from exc
    if META not in arrays:
        raise CheckpointError(f"{path}: no '{META}' entry; not a minis2s checkpoint")
    try:
        meta = json.loads(str(arrays.pop(META)))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: 'meta' is not valid JSON ({exc})") from exc
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version!r}; this minis2s reads "
                              f"version {FORMAT_VERSION}")
    try:
        c = meta["config"]
        missing = [k for k in CONFIG_KEYS if k not in c]
        if missing:
            raise CheckpointError(f"{path}: config lacks {', '.join(missing)}")
        src_vocab = Vocab.from_tokens(meta["src_vocab"])
        tgt_vocab = Vocab.from_tokens(meta["tgt_vocab"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: meta lacks {exc}") from exc
    except DataError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    cfg = ModelConfig(len(src_vocab), len(tgt_vocab), int(c["embed_size"]),
                      int(c["num_hiddens"]), int(c["num_layers"]), float(c["dropout"]),
                      bool(c["bidirectional"]))
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name not in arrays:
            raise CheckpointError(f"{path}: parameter {name} is missing")
        value = arrays.pop(name)
        if value.shape != shape:
            raise CheckpointError(f"{path}: parameter {name} has shape {value.shape}, the "
                                  f"config and vocabularies need {shape}")
        if not np.issubdtype(value.dtype, np.floating):
            raise CheckpointError(f"{path}: parameter {name} has dtype {value.dtype}")
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: parameter {name} holds NaN or Inf")
        params[name] = value
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    unknown = [k for k in arrays if not k.startswith("extra/")]
    if unknown:
        raise CheckpointError(f"{path}: unexpected entries {', '.join(sorted(unknown))}")
    return Checkpoint(params, cfg, int(c["num_steps"]), src_vocab, tgt_vocab,
                      meta.get("data") or {}, meta.get("training") or {}, extra)
