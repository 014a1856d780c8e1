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
Warnings (a sentence cut to ``num_steps``, corpus lines or pairs skipped) are Python
warnings.
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
from .data import DataError, text_rules
from .data.corpus import parse_pairs
from .params import ParamSet
from .settings import MODEL_FIELDS, check


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
    ``checkpoint.npz``) into a :class:`Model` whose parameters go to ``backend``:
    ``"numpy"`` or ``"cupy"`` in float32, as ``minis2s translate`` uses them; None takes
    ``$MINIS2S_BACKEND``, else NumPy. They are put there when first used. Example::

        model = minis2s.load("runs/zh")               # runs/zh/checkpoint.npz
    """
    path = checkpoints.resolve(path)
    ck = checkpoints.load(path)
    if not isinstance(backend, Backend):
        backend = get_backend(backend)
    return Model(ck, backend, path)


@dataclass(eq=False)
class Model:
    """A checkpoint and the backend its parameters go to. ``checkpoint`` holds the
    settings, the data spec, the vocabularies, the training record and the parameters as
    NumPy arrays; ``params`` the parameters on the backend in its dtype, made once when
    first asked for; ``path`` the file it came from (None if made in Python)."""

    checkpoint: Checkpoint
    backend: Backend
    path: Path | None = None
    _params: ParamSet | None = field(default=None, init=False, repr=False)

    @property
    def params(self) -> ParamSet:
        """The parameters on the backend, put there when first asked for (describing the
        model with :meth:`info` needs only the checkpoint's NumPy arrays)."""
        if self._params is None:
            self._params = self.checkpoint.params_on(self.backend)
        return self._params

    def translations(self, sentences: Sequence[str], beam: int = 1,
                     length_penalty: float = 0.75) -> list:
        """One :class:`~minis2s.decode.Translation` per sentence: the source tokens read,
        the output tokens, their text and, if the decoder attends, the attention weights
        (a NumPy array, output steps × source tokens; else None). A model of a generated
        task reads its task's inputs (``"123+45"``) and writes its text (``"168"``).
        Example::

            t = model.translations(["I'm home."])[0]
            t.weights.shape            # (len(t.tokens) + 1, len(t.source)): <eos> too
        """
        from .decode import translations

        ck = self.checkpoint
        _check_decoding(beam, length_penalty)
        with _warnings() as warn:
            return translations(self.params, ck.config, ck.src_vocab, ck.tgt_vocab,
                                _sentences(sentences), ck.data.num_steps, self.backend,
                                warn=warn, beam=beam, length_penalty=length_penalty,
                                with_weights=True, rules=text_rules(ck.task))

    def translate(self, sentences: Sequence[str], beam: int = 1,
                  length_penalty: float = 0.75, detokenize: bool = False) -> list[str]:
        """The translation of each sentence, greedy (``beam`` 1) or by beam search with
        ``beam`` hypotheses (scores log P / L^``length_penalty``), tokens joined by spaces
        as ``minis2s translate`` prints them; with ``detokenize``, without the space before
        ``, . ! ?``. One string is taken as a list of one. A task model's outputs are its
        task's text (``"168"``), with ``detokenize`` or without. Example::

            model.translate(["Go."], beam=4, detokenize=True)    # no space before "!"
        """
        from .bleu import detokenize as undo
        from .decode import translate

        ck = self.checkpoint
        _check_decoding(beam, length_penalty)
        with _warnings() as warn:
            texts = translate(self.params, ck.config, ck.src_vocab, ck.tgt_vocab,
                              _sentences(sentences), ck.data.num_steps, self.backend,
                              warn=warn, beam=beam, length_penalty=length_penalty,
                              rules=text_rules(ck.task))
        return [undo(t) for t in texts] if detokenize and ck.task is None else texts

    def evaluate(self, data=None, part: str = "test", beam: int = 1,
                 length_penalty: float = 0.75):
        """Corpus BLEU and chrF, the seed's sentence BLEU and both scores by source length
        (a :class:`~minis2s.evaluate.Report`) on part ``part`` (one of
        :data:`minis2s.evaluate.PARTS`: ``"test"``, ``"valid"`` or ``"train"``) of the
        corpus the model was trained on, read again as its data spec says from ``data`` (a
        path; None: ``$MINIS2S_DATA``, the cache, else a download). A model of a generated
        task makes its task's pairs again (``data`` is not read) and gives an
        :class:`~minis2s.evaluate.AccuracyReport`: exact match and token accuracy, on the
        whole and per source length. Example::

            model.evaluate("fra-eng.zip").scores["bleu"]    # corpus BLEU, 0 to 100
        """
        from .evaluate import evaluate_model

        _check_decoding(beam, length_penalty)
        where = str(self.path) if self.path is not None else "the checkpoint"
        with _warnings() as warn:
            return evaluate_model(self.checkpoint, self.backend, data, part=part, beam=beam,
                                  length_penalty=length_penalty, warn=warn, where=where,
                                  params=self.params).report

    def gradient_flow(self, pairs, num_steps: int | None = None):
        """‖∂L/∂h_t‖ for every layer and step of encoder and decoder on one batch of
        ``pairs`` (a :class:`~minis2s.gradflow.Flow`), computed in float64 with the seed's
        loss and no dropout, as ``minis2s gradflow --model`` does. Each pair is an
        ``"English<TAB>French"`` line or an ``(english, french)`` tuple, read by the
        corpus's rules (:func:`minis2s.data.corpus.parse_pairs`, as ``--pairs FILE`` is):
        columns after the second are ignored, and blank lines, lines without a tab and
        pairs with an empty side are skipped with a warning; a task model reads each side
        as its task does (``"123+45\\t168"``). Each side is cut or padded to
        ``num_steps`` tokens (default: the model's). Example::

            flow = model.gradient_flow(["I lost.\\tJ'ai perdu.", ("Go.", "Va !")])
            flow.decoder[0]                            # layer 0, one norm per step
        """
        from .gradflow import batch_of_pairs, gradient_flow

        ck = self.checkpoint
        num_steps = ck.data.num_steps if num_steps is None else num_steps
        check({"num_steps": num_steps}, name=str)
        with _warnings() as warn:
            tokens = parse_pairs(_pair_lines(pairs), None, "the pairs given",
                                 "the pairs given", warn, ck.task)
        backend = get_backend(self.backend.name, "float64")  # norms over many steps
        batch = batch_of_pairs(tokens, ck.src_vocab, ck.tgt_vocab, num_steps, backend)
        return gradient_flow(ck.params_on(backend), ck.config, batch)

    def info(self) -> dict:
        """The checkpoint described: file, parameter count, model settings, data spec with
        vocabulary sizes, the generated task it was trained on (None: the corpus), and the
        training record (preset, epochs done and in all, random seed, the last epoch's
        loss and validation loss, whether ``--resume`` can go on from it). Fields the
        checkpoint does not record are None. ``minis2s info --json`` prints this.
        Example::

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
            "task": None if ck.task is None else ck.task.to_dict(),
            "training": {"preset": tr.get("preset"), "epochs": tr.get("epochs"),
                         "total_epochs": tr.get("total_epochs"), "seed": tr.get("seed"),
                         "loss": last.get("loss", tr.get("loss")),
                         "valid_loss": last.get("valid_loss"), "resumable": resumable},
        }


def _sentences(sentences) -> list[str]:
    return [sentences] if isinstance(sentences, str) else list(sentences)


def _check_decoding(beam, length_penalty) -> None:
    check({"beam": beam, "length_penalty": length_penalty}, name=str)


def _pair_lines(pairs) -> list[str]:
    """Each pair as an ``English<TAB>French`` line, the form the corpus reader takes."""
    if isinstance(pairs, str):
        pairs = [pairs]
    lines = []
    for number, pair in enumerate(pairs, start=1):
        if isinstance(pair, str):
            if "\n" in pair:
                raise DataError(f"pair {number} holds a line break: give one pair per string")
            lines.append(pair)
        elif isinstance(pair, (tuple, list)) and len(pair) == 2 \
                and all(isinstance(s, str) for s in pair):
            if any("\t" in s or "\n" in s for s in pair):
                raise DataError(f"pair {number} has a tab or a line break inside a side")
            lines.append("\t".join(pair))
        else:
            raise DataError(f"pair {number} is a {type(pair).__name__}: give "
                            "'English<TAB>French' or an (english, french) tuple")
    return lines
