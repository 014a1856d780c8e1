"""Gradient flow through time: how much gradient reaches each time step's state.

For a batch of sentence pairs and the loss as training computes it (the seed's
reduction, no dropout), :func:`gradient_flow` gives, for every layer of the encoder and
the decoder and every step t, the Frobenius norm over the batch of ∂L/∂h_t: the whole
gradient that reaches the state a layer outputs at step t, from the layer above (or the
output layer) and from every later step. The numbers are read off the real backward
pass — the running gradient that backprop through time carries, recorded by the stacks
(:func:`minis2s.ops.stack_backward`) — not computed a second time. For a bidirectional
encoder a layer's state at step t is both directions' h side by side, and its norm covers
both.

``minis2s gradflow`` prints them as a table, writes them as JSON and draws them
(:func:`plot_flow`), for one model or for every cell side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .model import ModelConfig, seq2seq_backward, seq2seq_forward


@dataclass
class Flow:
    """∂L/∂h_t norms of one batch: ``encoder[k][t]`` for layer k at source step t,
    ``decoder[k][t]`` at target step t; and what clipping would do to them."""

    encoder: list[list[float]]
    decoder: list[list[float]]
    loss: float
    grad_norm: float  # global norm of the parameter gradients (what clipping measures)

    def clip_factor(self, theta: float | None) -> float:
        """The seed's clipping scales every gradient by this: min(1, θ / ‖g‖)."""
        if theta is None or self.grad_norm <= theta:
            return 1.0
        return theta / self.grad_norm

    def to_dict(self) -> dict:
        return {"encoder": self.encoder, "decoder": self.decoder, "loss": self.loss,
                "grad_norm": self.grad_norm}


def _per_step(recorded, L: int, dirs: int, T: int) -> list[list[float]]:
    """Per layer, per step: the norm over the batch (and both directions) of the
    recorded (T·N, H) state gradients."""
    out = []
    for k in range(L):
        sq = 0.0
        for d in range(dirs):
            g = to_numpy(recorded[k * dirs + d]).astype(np.float64)
            g = g.reshape(T, -1)  # (T, N·H): step t's rows for every sequence
            sq = sq + (g * g).sum(axis=1)
        out.append([float(math.sqrt(v)) for v in sq])
    return out


def gradient_flow(params, cfg: ModelConfig, batch) -> Flow:
    """∂L/∂h_t norms for every layer and step of both stacks, on one batch (its arrays on
    the parameters' backend), with the seed's loss, no dropout and no clipping."""
    loss, cache = seq2seq_forward(params, cfg, batch, packed=False)
    grads = seq2seq_backward(1.0, cache, record=True)
    norm = math.sqrt(sum(float((to_numpy(g).astype(np.float64) ** 2).sum())
                         for g in grads.params.values()))
    T_src, T_tgt = batch.src.shape[1], batch.tgt.shape[1]
    enc, dec = grads.recorded["encoder"], grads.recorded["decoder"]
    dirs = cfg.num_directions
    return Flow(_per_step(enc, len(enc) // dirs, dirs, T_src),
                _per_step(dec, len(dec), 1, T_tgt), float(loss), norm)


def flow_table(flow: Flow, clip: float | None = None) -> str:
    """The norms as text: one row per step, one column per layer of each stack."""
    enc, dec = flow.encoder, flow.decoder
    head = ([f"enc L{k}" for k in range(len(enc))] + [f"dec L{k}" for k in range(len(dec))])
    lines = [f"loss {flow.loss:.4f}, parameter gradient norm {flow.grad_norm:.4g}"]
    if clip is not None:
        lines.append(f"clipping at {clip:g} scales every gradient by "
                     f"{flow.clip_factor(clip):.4g}")
    lines.append("step  " + "  ".join(f"{h:>10}" for h in head))
    for t in range(max(len(enc[0]), len(dec[0]))):
        cells = [f"{layer[t]:10.3e}" if t < len(layer) else " " * 10 for layer in enc + dec]
        lines.append(f"{t:>4}  " + "  ".join(cells))
    return "\n".join(lines)


def plot_flow(flows: dict[str, Flow], path, clip: float | None = None,
              title: str = "") -> bool:
    """Draw ∂L/∂h_t norms against t on a log scale, encoder left, decoder right; one
    colour per entry of ``flows`` (a cell, say), one line style per layer; with ``clip``,
    the clipped norms dashed beside each line. Returns False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    styles = ["-", "--", ":", "-."]
    for (name, flow), colour in zip(flows.items(), plt.rcParams["axes.prop_cycle"]):
        for ax, side, layers in ((axes[0], "encoder", flow.encoder),
                                 (axes[1], "decoder", flow.decoder)):
            for k, norms in enumerate(layers):
                label = f"{name} layer {k}" if len(flows) > 1 else f"layer {k}"
                ax.plot(range(len(norms)), norms, styles[k % len(styles)],
                        color=colour["color"], label=label)
                factor = flow.clip_factor(clip)
                if clip is not None and factor < 1:
                    ax.plot(range(len(norms)), [v * factor for v in norms],
                            styles[k % len(styles)], color=colour["color"], alpha=0.35,
                            label=f"{label}, clipped at {clip:g}")
            ax.set_title(side)
            ax.set_xlabel("time step t")
            ax.set_yscale("log")
    axes[0].set_ylabel("‖∂L/∂h_t‖ over the batch")
    axes[1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def batch_of_pairs(pairs, src_vocab, tgt_vocab, num_steps: int, backend):
    """Token pairs as one batch, each side truncated or padded to ``num_steps`` as in
    training (``<eos>`` appended first), the decoder fed ``<bos>`` then the target."""
    from .data import build_array, make_batch

    src, src_len = build_array([p[0] for p in pairs], src_vocab, num_steps)
    tgt, tgt_len = build_array([p[1] for p in pairs], tgt_vocab, num_steps)
    return make_batch(src, src_len, tgt, tgt_len, tgt_vocab.bos).to(backend.xp)


def fresh_model(preset, cell: str, pairs, backend, seed: int = 0):
    """A freshly initialised model of ``preset``'s shape and decoder (``preset.model``)
    with ``cell``, its vocabularies built from ``pairs`` (with the preset's min_freq)."""
    from .data import Vocab
    from .model import init_params

    src_vocab = Vocab([p[0] for p in pairs], min_freq=preset.min_freq)
    tgt_vocab = Vocab([p[1] for p in pairs], min_freq=preset.min_freq)
    cfg = preset.with_overrides(cell=cell, dropout=0.0).model_config(len(src_vocab),
                                                                     len(tgt_vocab))
    return init_params(cfg, backend, np.random.default_rng(seed)), cfg, src_vocab, tgt_vocab
