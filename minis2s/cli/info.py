"""What ``minis2s info`` prints: :meth:`minis2s.Model.info`'s dict as five lines of text
(six for a model of a generated task)."""

from __future__ import annotations

from ..data import TaskSpec
from ..wording import plural


def describe(info: dict) -> str:
    """:meth:`minis2s.Model.info` as the lines ``minis2s info`` prints: the file with its
    size and parameter count, then the model, data, vocabulary, task (where there is one)
    and training lines."""
    m, d, t = info["model"], info["data"], info["training"]
    size = info["file_bytes"]
    lines = [f"{info['checkpoint']}: "
             + (f"{size / 1024:,.1f} KiB, " if size is not None else "")
             + f"{plural(info['parameters'], 'parameter', ',')} ({info['dtype']})",
             f"model     {m['model']} decoder, {m['cell']} cell, embed_size "
             f"{m['embed_size']}, num_hiddens {m['num_hiddens']}, num_layers "
             f"{m['num_layers']}, dropout {m['dropout']:g}, "
             + ("bidirectional" if m["bidirectional"] else "unidirectional") + " encoder"
             + (f", decoder_hiddens {m['decoder_hiddens']}"
                if m.get("decoder_hiddens") is not None else "")
             + (f", {m['output_layer']} output layer"
                if m.get("output_layer", "dense") != "dense" else "")]
    examples = "all" if d["num_examples"] is None else d["num_examples"]
    lines.append(f"data      num_steps {d['num_steps']}, examples {examples}, valid_size "
                 f"{d['valid_size']}, test_size {d['test_size']}, split_seed "
                 f"{d['split_seed']}, min_freq {d['min_freq']}")
    vocab = (f"vocab     {d['src_vocab_size']} source, "
             f"{plural(d['tgt_vocab_size'], 'target token')}")
    if d["train_pairs"] is not None:
        vocab += f"; {plural(d['train_pairs'], 'training pair')}"
    lines.append(vocab)
    if info.get("task") is not None:
        lines.append(f"task      {TaskSpec.from_dict(info['task']).describe()}")
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
