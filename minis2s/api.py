"""minis2s from Python: a trained checkpoint as one object, for notebooks and scripts.

:func:`load` reads a checkpoint (the file, or the folder ``minis2s train --out`` wrote)
into a :class:`Model`, which translates, scores itself on a held-out part, measures the
gradient reaching each time step and describes itself — what ``minis2s translate``,
``evaluate``, ``gradflow`` and ``info`` do, without the command line::

    import minis2s

    model = minis2s.load("runs/zh/checkpoint.npz")
    model.translate(["I'm home.", "Go."])       # ['je suis chez moi .', 'va !']

Bad input raises the errors the command line reports in one line:
:class:`~minis2s.checkpoint.CheckpointError` for a file that is not a checkpoint,
:class:`~minis2s.data.DataError` for unreadable data or pairs,
:class:`~minis2s.settings.ConfigError` for a setting out of range (``beam=0``).
Warnings (a sentence cut to ``num_steps``, corpus lines skipped) are Python warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import checkpoint as checkpoints
from .backend import Backend, get_backend
from .checkpoint import Checkpoint
from .data import DataError, preprocess, tokenize
from .params import ParamSet
from .settings import MODEL_FIELDS, check

PARTS = ("test", "valid", "train")


@contextmanager
def _warnings():
    """A list to pass as ``warn``; on leaving, each message becomes a Python warning that
    points at the code calling the :class:`Model` method."""
    said: list[str] = []
    try:
        yield said.append
    finally:
        for message in said:
            warnings.warn(message.removeprefix("minis2s: "), UserWarning, stacklevel=4)


def load(path, backend: str | Backend | None = None) -> Model:
    """Read the checkpoint at ``path`` (a ``.npz`` file, or a folder holding
    ``checkpoint.npz``) and put its parameters on ``backend``: ``"numpy"`` or ``"cupy"``
    in float32, as ``minis2s translate`` uses them; None takes ``$MINIS2S_BACKEND``, else
    NumPy. Example::

        model = minis2s.load("runs/zh")               # runs/zh/checkpoint.npz
    """
    path = checkpoints.resolve(path)
    ck = checkpoints.load(path)
    if not isinstance(backend, Backend):
        backend = get_backend(backend)
    return Model(ck, backend, path)


@dataclass(eq=False)
class Model:
    """A checkpoint with its parameters on a backend. ``checkpoint`` holds the settings,
    the data spec, the vocabularies and the training record; ``params`` the parameters
    in the backend's dtype; ``path`` the file it came from (None if made in Python)."""

    checkpoint: Checkpoint
    backend: Backend
    path: Path | None = None
    params: ParamSet = field(init=False, repr=False)

    def __post_init__(self):
        self.params = self.checkpoint.params_on(self.backend)

    def translations(self, sentences: Sequence[str], beam: int = 1,
                     length_penalty: float = 0.75) -> list:
        """One :class:`~minis2s.decode.Translation` per sentence: the source tokens read,
        the output tokens, their text and, if the decoder attends, the attention weights
        (a NumPy array, output steps × source tokens; else None). Example::

            t = model.translations(["I'm home."])[0]
            t.weights.shape            # (len(t.tokens) + 1, len(t.source)): <eos> too
        """
        from .decode import translations

        ck = self.checkpoint
        check({"beam": beam, "length_penalty": length_penalty}, name=str)
        with _warnings() as warn:
            return translations(self.params, ck.config, ck.src_vocab, ck.tgt_vocab,
                                _sentences(sentences), ck.data.num_steps, self.backend,
                                warn=warn, beam=beam, length_penalty=length_penalty,
                                with_weights=True)

    def translate(self, sentences: Sequence[str], beam: int = 1,
                  length_penalty: float = 0.75, detokenize: bool = False) -> list[str]:
        """The translation of each sentence, greedy (``beam`` 1) or by beam search with
        ``beam`` hypotheses (scores log P / L^``length_penalty``), tokens joined by spaces
        as ``minis2s translate`` prints them; with ``detokenize``, without the space before
        ``, . ! ?``. One string is taken as a list of one. Example::

            model.translate(["Go."], beam=4, detokenize=True)    # no space before "!"
        """
        from .bleu import detokenize as undo
        from .decode import translate

        ck = self.checkpoint
        check({"beam": beam, "length_penalty": length_penalty}, name=str)
        with _warnings() as warn:
            texts = translate(self.params, ck.config, ck.src_vocab, ck.tgt_vocab,
                              _sentences(sentences), ck.data.num_steps, self.backend,
                              warn=warn, beam=beam, length_penalty=length_penalty)
        return [undo(t) for t in texts] if detokenize else texts

    def evaluate(self, data=None, part: str = "test", beam: int = 1,
                 length_penalty: float = 0.75):
        """Corpus BLEU and chrF, the seed's sentence BLEU and both scores by source length
        (a :class:`~minis2s.evaluate.Report`) on part ``part`` (``"test"``, ``"valid"`` or
        ``"train"``) of the corpus the model was trained on, read again as its data spec
        says from ``data`` (a path; None: ``$MINIS2S_DATA``, the cache, else a download).
        Example::

            model.evaluate("fra-eng.zip").scores["bleu"]    # corpus BLEU, 0 to 100
        """
        from .evaluate import evaluate_model

        if part not in PARTS:
            raise DataError(f"part {part!r}: choose one of {', '.join(PARTS)}")
        check({"beam": beam, "length_penalty": length_penalty}, name=str)
        where = str(self.path) if self.path is not None else "the checkpoint"
        with _warnings() as warn:
            return evaluate_model(self.checkpoint, self.backend, data, part=part, beam=beam,
                                  length_penalty=length_penalty, warn=warn,
                                  where=where).report

    def gradient_flow(self, pairs, num_steps: int | None = None):
        """‖∂L/∂h_t‖ for every layer and step of encoder and decoder on one batch of
        ``pairs`` (a :class:`~minis2s.gradflow.Flow`), computed in float64 with the seed's
        loss and no dropout, as ``minis2s gradflow --model`` does. Each pair is an
        ``"English<TAB>French"`` line (as in the corpus) or an ``(english, french)``
        tuple; each side is cut or padded to ``num_steps`` tokens (default: the model's).
        Example::

            flow = model.gradient_flow(["I lost.\\tJ'ai perdu.", ("Go.", "Va !")])
            flow.decoder[0]                            # layer 0, one norm per step
        """
        from .gradflow import batch_of_pairs, gradient_flow

        ck = self.checkpoint
        num_steps = ck.data.num_steps if num_steps is None else num_steps
        check({"num_steps": num_steps}, name=str)
        tokens = _token_pairs(pairs)
        backend = get_backend(self.backend.name, "float64")  # norms over many steps
        batch = batch_of_pairs(tokens, ck.src_vocab, ck.tgt_vocab, num_steps, backend)
        return gradient_flow(ck.params_on(backend), ck.config, batch)

    def info(self) -> dict:
        """The checkpoint described: file, parameter count, model settings, data spec with
        vocabulary sizes, and the training record (preset, epochs done and in all, random
        seed, the last epoch's loss and validation loss, whether ``--resume`` can go on
        from it). Fields the checkpoint does not record are None. ``minis2s info --json``
        prints this. Example::

            model.info()["training"]["epochs"]       # epochs done
        """
        from .train.resume import ResumeError, saved_settings

        ck, tr = self.checkpoint, self.checkpoint.training
        history = tr.get("history")
        last = history[-1] if isinstance(history, list) and history else {}
        last = last if isinstance(last, dict) else {}
        try:
            saved_settings(ck)
            resumable = True
        except ResumeError:
            resumable = False
        first = next(iter(ck.params.values()))
        return {
            "checkpoint": None if self.path is None else str(self.path),
            "file_bytes": (self.path.stat().st_size
                           if self.path is not None and self.path.is_file() else None),
            "parameters": int(sum(v.size for v in ck.params.values())),
            "dtype": str(first.dtype),
            "model": {name: getattr(ck.config, name) for name in MODEL_FIELDS},
            "data": {**ck.data.to_dict(), "src_vocab_size": len(ck.src_vocab),
                     "tgt_vocab_size": len(ck.tgt_vocab),
                     "train_pairs": tr.get("train_pairs")},
            "training": {"preset": tr.get("preset"), "epochs": tr.get("epochs"),
                         "total_epochs": tr.get("total_epochs"), "seed": tr.get("seed"),
                         "loss": last.get("loss", tr.get("loss")),
                         "valid_loss": last.get("valid_loss"), "resumable": resumable},
        }


def _sentences(sentences) -> list[str]:
    return [sentences] if isinstance(sentences, str) else list(sentences)


def _token_pairs(pairs) -> list[tuple[list[str], list[str]]]:
    """Source and target tokens of each pair, by the corpus's text rules."""
    if isinstance(pairs, str):
        pairs = [pairs]
    out = []
    for number, pair in enumerate(pairs, start=1):
        if isinstance(pair, str):
            sides = pair.split("\t")
            if len(sides) < 2:
                raise DataError(f"pair {number} has no tab: give 'English<TAB>French' or "
                                "an (english, french) tuple")
        elif isinstance(pair, (tuple, list)) and len(pair) == 2 \
                and all(isinstance(s, str) for s in pair):
            sides = pair
        else:
            raise DataError(f"pair {number} is a {type(pair).__name__}: give "
                            "'English<TAB>French' or an (english, french) tuple")
        src, tgt = (tokenize(preprocess(s)) for s in sides[:2])
        if not src or not tgt:
            raise DataError(f"pair {number} has an empty side")
        out.append((src, tgt))
    if not out:
        raise DataError("no pairs given")
    return out


def describe(info: dict) -> str:
    """:meth:`Model.info` as the lines ``minis2s info`` prints."""
    m, d, t = info["model"], info["data"], info["training"]
    size = info["file_bytes"]
    lines = [f"{info['checkpoint']}: "
             + (f"{size / 1024:,.1f} KiB, " if size is not None else "")
             + f"{info['parameters']:,} parameters ({info['dtype']})",
             f"model     {m['model']} decoder, {m['cell']} cell, embed_size "
             f"{m['embed_size']}, num_hiddens {m['num_hiddens']}, num_layers "
             f"{m['num_layers']}, dropout {m['dropout']:g}, "
             + ("bidirectional" if m["bidirectional"] else "unidirectional") + " encoder"]
    examples = "all" if d["num_examples"] is None else d["num_examples"]
    lines.append(f"data      num_steps {d['num_steps']}, examples {examples}, valid_size "
                 f"{d['valid_size']}, test_size {d['test_size']}, split_seed "
                 f"{d['split_seed']}, min_freq {d['min_freq']}")
    vocab = f"vocab     {d['src_vocab_size']} source, {d['tgt_vocab_size']} target tokens"
    if d["train_pairs"] is not None:
        vocab += f"; {d['train_pairs']} training pairs"
    lines.append(vocab)
    recorded = [f"preset {t['preset']}" if t["preset"] is not None else None,
                _epochs(t["epochs"], t["total_epochs"]),
                f"seed {t['seed']}" if t["seed"] is not None else None,
                _loss("loss", t["loss"]), _loss("validation loss", t["valid_loss"])]
    recorded = [r for r in recorded if r]
    lines.append("training  " + (", ".join(recorded) if recorded else "not recorded")
                 + ("; can be resumed" if t["resumable"] else "; cannot be resumed"))
    return "\n".join(lines)


def _epochs(done, total) -> str | None:
    if done is None:
        return None
    return f"epoch {done}" + (f" of {total}" if total is not None else "")


def _loss(name: str, value) -> str | None:
    return f"{name} {value:.4f}" if isinstance(value, (int, float)) else None
