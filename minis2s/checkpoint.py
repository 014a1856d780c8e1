"""Checkpoints: one ``.npz`` with the parameters under their PyTorch names and ``meta``.

``meta`` is a JSON string: ``format_version``, ``config`` (embed_size, num_hiddens,
num_layers, dropout, num_steps, bidirectional, cell, model — a checkpoint without
``cell`` holds a GRU, one without ``model`` the seed's decoder, the only ones there were),
``src_vocab`` and ``tgt_vocab`` (tokens in index order) and, when known, ``data`` (how
the corpus was read and split) and ``training`` (epochs run and, from ``minis2s train``,
what resuming needs: the preset, the per-epoch history and ``state`` with Adam's step
count, the generators' states and the position inside the current epoch). Further
arrays are stored as ``extra/NAME`` (``extra/adam.m``, ``extra/adam.v``: Adam's moments,
flat). Both are optional: a checkpoint without them translates and evaluates, it only
cannot be resumed.

Files are written atomically (a temporary file in the same folder, fsync, rename), so a
crash or kill while saving leaves the previous checkpoint; a killed process may leave a
``checkpoint.npz.*.tmp`` behind, which nothing reads. Files are read with
``allow_pickle=False``: a checkpoint can hold arrays and text, never code.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import DataError, Vocab
from .model import MODELS, ModelConfig, param_shapes
from .ops import CELLS

FORMAT_VERSION = 1
META = "meta"
CONFIG_KEYS = ("embed_size", "num_hiddens", "num_layers", "dropout", "num_steps",
               "bidirectional")  # required; "cell" and "model" are optional


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
              "num_steps": ck.num_steps, "bidirectional": cfg.bidirectional,
              "cell": cfg.cell, "model": cfg.model}
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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint is an ordinary file
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


def _count(value) -> int:
    """A config size: a whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not a whole number >= 1")
    return value


def load(path) -> Checkpoint:
    """Read and validate a checkpoint; every problem is a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # else np.load would take it for a pickle
        raise CheckpointError(f"{path}: not a readable .npz checkpoint (not a zip archive: "
                              "truncated, or another kind of file)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():  # object arrays need pickle: refused
            raise CheckpointError(f"{path}: refused, it holds pickled objects ({exc})") \
                from exc
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({exc})") from exc
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError,
            RuntimeError) as exc:  # the last two: zip features zipfile does not support
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({exc})") from exc
    odd = sorted(k for k, v in arrays.items() if not isinstance(v, np.ndarray))
    if odd:
        raise CheckpointError(f"{path}: entries {', '.join(odd)} are not .npy arrays")
    if META not in arrays:
        raise CheckpointError(f"{path}: no '{META}' entry; not a minis2s checkpoint")
    try:
        meta = json.loads(str(arrays.pop(META)))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: 'meta' is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: 'meta' is not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version!r}; this minis2s reads "
                              f"version {FORMAT_VERSION}")
    for key in ("data", "training"):
        if not isinstance(meta.get(key) or {}, dict):
            raise CheckpointError(f"{path}: meta '{key}' is not a JSON object")
    try:
        c = meta["config"]
        if not isinstance(c, dict):
            raise CheckpointError(f"{path}: meta 'config' is not a JSON object")
        missing = [k for k in CONFIG_KEYS if k not in c]
        if missing:
            raise CheckpointError(f"{path}: config lacks {', '.join(missing)}")
        src_vocab = Vocab.from_tokens(meta["src_vocab"])
        tgt_vocab = Vocab.from_tokens(meta["tgt_vocab"])
        sizes = {k: _count(c[k]) for k in ("embed_size", "num_hiddens", "num_layers",
                                             "num_steps")}
        dropout = c["dropout"]
        if (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
                or not 0.0 <= dropout < 1.0):
            raise CheckpointError(f"{path}: config dropout {dropout!r} is not in [0, 1)")
        cell, model = c.get("cell", "gru"), c.get("model", "seq2seq")
        if not isinstance(cell, str) or cell not in CELLS:
            raise CheckpointError(f"{path}: config cell {cell!r} is not one of "
                                  f"{', '.join(CELLS)}")
        if not isinstance(model, str) or model not in MODELS:
            raise CheckpointError(f"{path}: config model {model!r} is not one of "
                                  f"{', '.join(MODELS)}")
        if not isinstance(c["bidirectional"], bool):
            raise CheckpointError(f"{path}: config bidirectional {c['bidirectional']!r} "
                                  "is not true or false")
    except CheckpointError:
        raise
    except DataError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    except KeyError as exc:
        raise CheckpointError(f"{path}: meta lacks {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: meta is malformed ({exc})") from exc
    if sizes["num_layers"] * 4 > len(arrays):  # each layer has at least 4 arrays
        raise CheckpointError(f"{path}: config num_layers {sizes['num_layers']} does not "
                              f"fit the {len(arrays)} arrays stored")
    cfg = ModelConfig(len(src_vocab), len(tgt_vocab), sizes["embed_size"],
                      sizes["num_hiddens"], sizes["num_layers"], float(dropout),
                      c["bidirectional"], cell, model)
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
    return Checkpoint(params, cfg, sizes["num_steps"], src_vocab, tgt_vocab,
                      meta.get("data") or {}, meta.get("training") or {}, extra)
