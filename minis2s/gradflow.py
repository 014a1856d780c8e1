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

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .figures import new_figure, save_figure
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


def make_flow_figure(flows: dict[str, Flow], clip: float | None = None, title: str = ""):
    """∂L/∂h_t norms against t on a log scale as a matplotlib Figure (None without
    matplotlib): encoder left, decoder right; one colour per entry of ``flows`` (its key
    names the model), one line style per layer; with ``clip``, the clipped norms drawn
    faded beside each line. A step no gradient reaches (norm 0: padding) is left out,
    not drawn as a drop to the bottom. The legend has a panel of its own, right of the
    axes; the title is a heading and then ``title`` (the pairs the norms were measured
    on)."""
    fig = new_figure(figsize=(12, 4.2))
    if fig is None:
        return None
    from matplotlib import rcParams
    from matplotlib.lines import Line2D

    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 0.42])
    left = fig.add_subplot(grid[0, 0])
    axes = [left, fig.add_subplot(grid[0, 1], sharey=left)]
    styles = ["-", "--", ":", "-."]
    colours = itertools.cycle(c["color"] for c in rcParams["axes.prop_cycle"])
    handles, layers_seen, clipped_any = [], 0, False
    for (name, flow), colour in zip(flows.items(), colours):
        factor = flow.clip_factor(clip)
        clipped = clip is not None and factor < 1
        clipped_any |= clipped
        for ax, layers in ((axes[0], flow.encoder), (axes[1], flow.decoder)):
            layers_seen = max(layers_seen, len(layers))
            for k, norms in enumerate(layers):
                style = styles[k % len(styles)]
                norms = [v if v > 0 else math.nan for v in norms]  # padding: no line to 0
                ax.plot(range(len(norms)), norms, style, color=colour)
                if clipped:
                    ax.plot(range(len(norms)), [v * factor for v in norms], style,
                            color=colour, alpha=0.35)
        label = name + (f" (clipping scales by {factor:.2g})" if clipped else "")
        handles.append(Line2D([], [], color=colour, lw=2.5, label=label))
    handles += [Line2D([], [], color="black", ls=styles[k % len(styles)], label=f"layer {k}")
                for k in range(layers_seen)]
    if clipped_any:
        handles.append(Line2D([], [], color="grey", alpha=0.35, lw=2.5,
                              label=f"faded: after clipping at {clip:g}"))
    for ax, side in zip(axes, ("encoder", "decoder")):
        ax.set_title(f"{side} states", fontsize=10)
        ax.set_xlabel(f"time step t of the {side}")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("‖∂L/∂h_t‖ over the batch (log scale)")
    panel = fig.add_subplot(grid[0, 2])
    panel.axis("off")
    panel.legend(handles=handles, loc="center left", fontsize=8.5, frameon=False,
                 title="colour: model; style: layer", title_fontsize=8.5)
    heading = "Gradient reaching each step's hidden state, ‖∂L/∂h_t‖"
    fig.suptitle(f"{heading}\n{title}" if title else heading, fontsize=10)
    return fig


def plot_flow(flows: dict[str, Flow], path, clip: float | None = None,
              title: str = "") -> bool:
    """Save :func:`make_flow_figure` to ``path`` (the format its ending names); returns
    False without matplotlib. A path that cannot be written raises
    :class:`~minis2s.figures.FigureError`."""
    fig = make_flow_figure(flows, clip, title)
    if fig is None:
        return False
    save_figure(fig, path)
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
