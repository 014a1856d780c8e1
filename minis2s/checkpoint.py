"""Checkpoints: one ``.npz`` with the parameters under their PyTorch names and ``meta``.

``meta`` is a JSON string: ``format_version``; ``model``, the model's settings (model,
cell, embed_size, num_hiddens, num_layers, dropout, bidirectional, and decoder_hiddens
and output_layer where they are not their defaults: a file without them has a decoder as
wide as the encoder's state and a dense output layer); ``data``, how the
corpus was read, split and indexed (a :class:`~minis2s.data.DataSpec`: num_steps,
num_examples, valid_size, test_size, split_seed, min_freq); ``src_vocab`` and
``tgt_vocab`` (tokens in index order); and, when known, ``training`` (from ``minis2s
train``: the preset's name and its optimisation fields, the random seed, the training
pairs counted, the per-epoch history and ``state``, what resuming needs: Adam's step
count, the generators' states and the position inside the current epoch). Each setting
is stored once, and checked as flags are (:func:`minis2s.settings.check`). Further arrays
are stored as ``extra/NAME`` (``extra/adam.m``, ``extra/adam.v``: Adam's moments, flat).
Both are optional: a checkpoint without them translates and evaluates, it only cannot be
resumed.

Files of format 1 (every setting under ``config``, the data settings again under
``training.preset_config``; no ``cell`` meaning a GRU, no ``model`` the seed's decoder)
are read as well and come out as format 2 reads.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .data import DataError, DataSpec, TaskSpec, Vocab
from .model import ModelConfig, param_shapes
from .params import ParamSet
from .settings import DATA_FIELDS, MODEL_FIELDS, ConfigError, check

FORMAT_VERSION = 2
READS = (1, 2)  # the format versions this minis2s reads
META = "meta"
DEFAULTS = {"cell": "gru", "model": "seq2seq"}  # what a file without them holds
# model settings added after format 2: a file without them holds this value, and a file
# is written without them when they hold it (so that such a model's file is as before)
LATER = {"decoder_hiddens": None, "output_layer": "dense"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not describe a valid model."""


@dataclass
class Checkpoint:
    params: dict  # name -> NumPy array
    config: ModelConfig
    data: DataSpec
    src_vocab: Vocab
    tgt_vocab: Vocab
    training: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # further arrays (optimiser state, ...)
    task: TaskSpec | None = None  # the generated task it was trained on (None: the corpus)

    def params_on(self, backend) -> ParamSet:
        """The parameters as a :class:`~minis2s.params.ParamSet` on ``backend``, in its
        dtype."""
        params = ParamSet({k: v.shape for k, v in self.params.items()}, backend.xp,
                          backend.dtype)
        params.assign(self.params)
        return params


def _meta(ck: Checkpoint) -> str:
    model = {name: getattr(ck.config, name) for name in MODEL_FIELDS
             if name not in LATER or getattr(ck.config, name) != LATER[name]}
    meta = {"format_version": FORMAT_VERSION, "model": model, "data": ck.data.to_dict()}
    if ck.task is not None:  # a corpus model's file is as it was before tasks
        meta["task"] = ck.task.to_dict()
    meta.update({"src_vocab": list(ck.src_vocab.idx_to_token),
                 "tgt_vocab": list(ck.tgt_vocab.idx_to_token), "training": ck.training})
    return json.dumps(meta, ensure_ascii=False)


def resolve(path) -> Path:
    """The checkpoint a path names: the file itself, or ``checkpoint.npz`` in the folder
    given (the ``--out`` of ``minis2s train``). A folder without one is refused, naming the
    file to give instead."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / "checkpoint.npz").is_file():
        return path / "checkpoint.npz"
    others = sorted(str(f) for f in path.glob("*.npz") if f.is_file())
    if others:
        raise CheckpointError(f"no checkpoint at {path / 'checkpoint.npz'}; the folder holds "
                              f"{', '.join(others)}: give one of these files")
    raise CheckpointError(f"no checkpoint at {path / 'checkpoint.npz'}: the folder holds no "
                          ".npz file (minis2s train --out writes one)")


def save(path, ck: Checkpoint) -> Path:
    """Write ``ck`` to ``path`` atomically: a crash leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: to_numpy(v) for name, v in ck.params.items()}  # from either backend
    for name, v in ck.extra.items():
        arrays["extra/" + name] = to_numpy(v)
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
    except Exception as exc:  # noqa: BLE001 - whatever a damaged member makes NumPy raise
        # (OSError, BadZipFile, EOFError, zlib.error; NotImplementedError and RuntimeError
        # for zip features zipfile lacks; SyntaxError or TokenError from a garbled header)
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
    if isinstance(version, bool) or version not in READS:
        raise CheckpointError(f"{path}: format_version {version!r}; this minis2s reads "
                              f"versions {', '.join(map(str, READS))}")
    try:
        if version == 1:
            meta = _from_version_1(meta, path)
        settings, spec, training = _settings(meta, path)
        task = _task(meta, spec, path)
        src_vocab = Vocab.from_tokens(meta["src_vocab"])
        tgt_vocab = Vocab.from_tokens(meta["tgt_vocab"])
    except CheckpointError:
        raise
    except DataError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    except KeyError as exc:
        raise CheckpointError(f"{path}: meta lacks {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: meta is malformed ({exc})") from exc
    if settings["num_layers"] * 4 > len(arrays):  # each layer has at least 4 arrays
        raise CheckpointError(f"{path}: model num_layers {settings['num_layers']} does not "
                              f"fit the {len(arrays)} arrays stored")
    cfg = ModelConfig(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab),
                      **{**settings, "dropout": float(settings["dropout"])})
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
    return Checkpoint(params, cfg, spec, src_vocab, tgt_vocab, training, extra, task)


def _section(meta: dict, key: str, fields: tuple, path) -> dict:
    """A settings object of meta with exactly ``fields``, each checked by its rule."""
    found = meta.get(key)
    if not isinstance(found, dict):
        raise CheckpointError(f"{path}: meta '{key}' is not a JSON object")
    missing = [k for k in fields if k not in found]
    if missing:
        raise CheckpointError(f"{path}: {key} lacks {', '.join(missing)}")
    unknown = sorted(str(k) for k in found if k not in fields)
    if unknown:
        raise CheckpointError(f"{path}: {key} has unknown settings {', '.join(unknown)}")
    try:
        check(found, name=lambda f: f"{key} {f}")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return {k: found[k] for k in fields}


def _settings(meta: dict, path) -> tuple[dict, DataSpec, dict]:
    """The model's settings, the data spec and the training record of a format-2 meta."""
    model = meta.get("model")
    if isinstance(model, dict):
        meta = {**meta, "model": {**LATER, **model}}
    settings = _section(meta, "model", MODEL_FIELDS, path)
    spec = DataSpec(**_section(meta, "data", DATA_FIELDS, path))
    training = meta.get("training") or {}
    if not isinstance(training, dict):
        raise CheckpointError(f"{path}: meta 'training' is not a JSON object")
    return settings, spec, training


def _task(meta: dict, spec: DataSpec, path) -> TaskSpec | None:
    """The generated task of a meta, checked as ``--task`` and its options are, and
    against the data spec (sizes that are counts, num_steps long enough); None where
    there is none."""
    found = meta.get("task")
    if found is None:
        return None
    try:
        task = TaskSpec.from_dict(found, name=lambda f: "task name" if f == "task"
                                  else f"task {f}")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    problems = task.problems(spec.valid_size, spec.test_size, spec.num_steps)
    if problems:
        raise CheckpointError(f"{path}: {'; '.join(problems)}")
    return task


def _from_version_1(meta: dict, path) -> dict:
    """A format-1 meta as format 2 says it: the model's settings and num_steps came under
    ``config``, the data settings under ``data`` (with the training pairs counted) and,
    for resuming, every setting again under ``training.preset_config``."""
    config, data = meta.get("config"), meta.get("data") or {}
    training = meta.get("training") or {}
    for key, value in (("config", config), ("data", data), ("training", training)):
        if not isinstance(value, dict):
            raise CheckpointError(f"{path}: meta '{key}' is not a JSON object")
    required = (*(k for k in MODEL_FIELDS if k not in DEFAULTS and k not in LATER),
                "num_steps")
    missing = [k for k in required if k not in config]
    if missing:
        raise CheckpointError(f"{path}: config lacks {', '.join(missing)}")
    model = {k: config[k] for k in MODEL_FIELDS if k in config}
    for key, value in DEFAULTS.items():
        model.setdefault(key, value)
    spec = {**DataSpec().to_dict(),  # a file that kept no data settings read them all
            **{k: data[k] for k in DATA_FIELDS if k in data}, "num_steps": config["num_steps"]}
    training = dict(training)
    saved = training.pop("preset_config", None)
    if isinstance(saved, dict):  # the optimisation fields, now stored once; without them
        #                            resuming refuses the file (unreadable settings)
        training.update({k: saved[k] for k in ("batch_size", "lr", "grad_clip")
                         if k in saved})
        if "epochs" in saved:
            training["total_epochs"] = saved["epochs"]
    if "train_pairs" in data:
        training["train_pairs"] = data["train_pairs"]
    return {**meta, "model": model, "data": spec, "training": training}
