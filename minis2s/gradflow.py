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

That total is a sum over the losses of the target steps, ∂L/∂h_t = Σ_t' ∂L_t'/∂h_t, and a
decoder state gets a share from its own step's loss, however little comes from further
away. :func:`gradient_by_distance` takes the sum apart: one backward per target step t',
with the loss of that step alone, gives ∂L_t'/∂h_t for every t, and their norms averaged
by the distance from t to t' show how far gradient travels (``minis2s gradflow
--by-distance``, :func:`distance_table`, :func:`plot_by_distance`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .figures import new_figure, save_figure
from .model import ModelConfig, seq2seq_backward, seq2seq_forward
from .wording import plural


@dataclass
class Flow:
    """∂L/∂h_t norms of one batch: ``encoder[l][t]`` for layer l at source step t,
    ``decoder[l][t]`` at target step t; and what clipping would do to them."""

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


def _two_panels(fig):
    """Both gradient figures' layout: encoder and decoder axes side by side sharing y, a
    third grid cell on the right for the legend, and matplotlib's colour cycle."""
    from matplotlib import rcParams

    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 0.42])
    left = fig.add_subplot(grid[0, 0])
    axes = [left, fig.add_subplot(grid[0, 1], sharey=left)]
    colours = itertools.cycle(c["color"] for c in rcParams["axes.prop_cycle"])
    return grid, axes, colours


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
    from matplotlib.lines import Line2D

    grid, axes, colours = _two_panels(fig)
    styles = ["-", "--", ":", "-."]
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


# ---------------------------------------------------------------- by distance


@dataclass
class DistanceCurve:
    """One stack's gradient by distance (see :func:`gradient_by_distance`): ``h[l][i]``
    is the mean norm of ∂L_t'/∂h_t for layer l over the ``count[i]`` (sentence, t, t')
    triples at distance ``distance[i]``; ``c`` is the same for the cell state c (LSTM),
    None for a cell without one."""

    distance: list[int]
    count: list[int]
    h: list[list[float]]
    c: list[list[float]] | None

    def to_dict(self) -> dict:
        return {"distance": self.distance, "count": self.count, "h": self.h, "c": self.c}


@dataclass
class DistanceFlow:
    """The gradient each target step's loss alone sends back, against the distance: for
    the decoder, d = t' − t between two target steps; for the encoder, d = S − t from
    source step t to the decoder (S: the source's padded steps), every t' averaged."""

    decoder: DistanceCurve
    encoder: DistanceCurve
    loss: float
    source_steps: int
    target_steps: int

    def to_dict(self) -> dict:
        return {"decoder": self.decoder.to_dict(), "encoder": self.encoder.to_dict(),
                "loss": self.loss, "source_steps": self.source_steps,
                "target_steps": self.target_steps}


class _Sums:
    """Running sums of per-sentence norms, and their counts, by distance."""

    def __init__(self, size: int, layers: int, parts: tuple[str, ...]):
        self.count = np.zeros(size, dtype=np.int64)
        self.sums = {part: np.zeros((layers, size)) for part in parts}

    def add(self, recorded: list, valid, distance) -> None:
        """recorded: per layer, a State of (steps·N, W) rows; valid (steps, N): which
        (step, sentence) norms count; distance (steps,): each step's distance."""
        steps, N = valid.shape
        at = np.broadcast_to(distance[:, None], valid.shape)[valid]
        np.add.at(self.count, at, 1)
        for part, sums in self.sums.items():
            for k, state in enumerate(recorded):
                g = to_numpy(getattr(state, part)).astype(np.float64).reshape(steps, N, -1)
                np.add.at(sums[k], at, np.sqrt((g * g).sum(axis=2))[valid])

    def curve(self) -> DistanceCurve:
        seen = np.flatnonzero(self.count)
        means = {part: [[float(v) for v in row[seen] / self.count[seen]] for row in sums]
                 for part, sums in self.sums.items()}
        return DistanceCurve([int(d) for d in seen], [int(self.count[d]) for d in seen],
                             means["h"], means.get("c"))


def gradient_by_distance(params, cfg: ModelConfig, batch) -> DistanceFlow:
    """∂L_t'/∂h_t, the gradient that the loss at target step t' alone (the seed's loss,
    no dropout, as :func:`gradient_flow`) sends back to the state h_t, against the
    distance between the two steps, for every layer of both stacks, and for the LSTM its
    cell state c_t's too.

    One backward per target step t', the upstream gradient at that step only
    (:func:`~minis2s.model.seq2seq_backward` with ``target_step``), its state gradients
    recorded as :func:`gradient_flow` records them. For each distance d the result is the
    mean, over the sentences of the batch and the pairs (t, t') at distance d where both
    are valid positions of that sentence (t' a target position the loss counts, t a
    source token or a target position), of the per-sentence norm ‖∂L_t'/∂h_t‖ (over the
    layer's units). Distances:

    * decoder: t and t' target steps, t ≤ t', d = t' − t (0: the step's own loss);
    * encoder: t a source step, t' any target step, d = S − t, S the source's padded
      length: the recurrent steps from h_t into the decoder, the S − 1 − t encoder steps
      after it (its padding too, which the encoder reads) and one more to the decoder's
      first state. Not t' as well: every step of the seed's decoder reads the encoder's
      final state as its context (and an attention decoder reads every h_t of the top
      layer), so the loss at any t' is one step from the encoder's end. For a
      bidirectional encoder, the forward direction's h_t.

    The sum over t' of the per-step gradients is the whole ∂L/∂h_t of
    :func:`gradient_flow` (the backward is linear in the upstream gradient).
    """
    loss, cache = seq2seq_forward(params, cfg, batch, packed=False)
    S, T = batch.src.shape[1], batch.tgt.shape[1]
    src_len, tgt_len = to_numpy(batch.src_valid_len), to_numpy(batch.tgt_valid_len)
    L, dirs = cfg.num_layers, cfg.num_directions
    parts = ("h", "c") if cfg.recurrent.paired else ("h",)
    dec, enc = _Sums(T, L, parts), _Sums(S + 1, L, parts)
    t_dec, t_enc = np.arange(T), np.arange(S)
    src_token = t_enc[:, None] < src_len[None, :]  # (S, N)
    for tp in range(T):
        counted = tgt_len > tp  # (N,): the sentences whose loss has a term at t'
        if not counted.any():
            continue
        rec = seq2seq_backward(1.0, cache, record="state", target_step=tp).recorded
        dec.add(rec["decoder"], (t_dec[:, None] <= tp) & counted[None, :], tp - t_dec)
        enc.add([rec["encoder"][k * dirs] for k in range(L)], src_token & counted[None, :],
                S - t_enc)
    return DistanceFlow(dec.curve(), enc.curve(), float(loss), S, T)


def distance_table(flow: DistanceFlow) -> str:
    """The means by distance as text: per stack, one row per distance, with the number
    of norms each mean averages (``count``: one per sentence and pair (t, t')) and one
    column per layer (h, then c)."""
    S = flow.source_steps
    states = "h Ll: the hidden state h_t of layer l" + (
        "; c Ll: its cell state c_t (dL_t'/dc_t)" if flow.decoder.c is not None else "")
    lines = [f"loss {flow.loss:.4f}",
             "the gradient the loss at target step t' alone sends to the state at step t: "
             "the norm of",
             "dL_t'/dh_t per sentence, averaged over the sentences and the pairs (t, t') at "
             "distance d", states]
    for side, curve, rule in (
            ("decoder", flow.decoder, "d = t' - t, t and t' target steps"),
            ("encoder", flow.encoder, f"d = {S} - t, t a source step "
                                      f"({plural(S, 'source step')}), t' any target step")):
        head = [f"h L{k}" for k in range(len(curve.h))]
        rows = curve.h
        if curve.c is not None:
            head += [f"c L{k}" for k in range(len(curve.c))]
            rows = curve.h + curve.c
        lines.append(f"{side}: {rule}")
        lines.append("   d   count  " + "  ".join(f"{h:>10}" for h in head))
        for i, d in enumerate(curve.distance):
            lines.append(f"{d:>4}  {curve.count[i]:>6}  "
                         + "  ".join(f"{row[i]:10.3e}" for row in rows))
    return "\n".join(lines)


def make_distance_figure(flows: dict[str, DistanceFlow], title: str = ""):
    """The top layer's mean ‖∂L_t'/∂h_t‖ against the distance d on a log scale, as a
    matplotlib Figure (None without matplotlib): decoder left (d = t' − t), encoder right
    (d = S − t); one colour per entry of ``flows``, solid for h, dashed for the LSTM's
    cell state c. A mean of 0 is left out, not drawn as a drop to the bottom."""
    fig = new_figure(figsize=(12, 4.2))
    if fig is None:
        return None
    from matplotlib.lines import Line2D

    grid, axes, colours = _two_panels(fig)
    handles, any_c = [], False
    for (name, flow), colour in zip(flows.items(), colours):
        for ax, curve in ((axes[0], flow.decoder), (axes[1], flow.encoder)):
            for values, style in ((curve.h, "-"), (curve.c, "--")):
                if values is None:
                    continue
                ax.plot(curve.distance, [v if v > 0 else math.nan for v in values[-1]],
                        style, color=colour)
            any_c |= curve.c is not None
        handles.append(Line2D([], [], color=colour, lw=2.5, label=name))
    handles.append(Line2D([], [], color="black", ls="-", label="‖∂L_t'/∂h_t‖: hidden state"))
    if any_c:
        handles.append(Line2D([], [], color="black", ls="--",
                              label="‖∂L_t'/∂c_t‖: LSTM cell state"))
    axes[0].set_title("decoder states: t and t' target steps", fontsize=10)
    axes[0].set_xlabel("distance d = t' − t (steps)")
    axes[1].set_title("encoder states: t a source step, t' any target step", fontsize=10)
    axes[1].set_xlabel("distance d = S − t (steps to the decoder; S source steps)")
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean per-sentence norm, top layer (log scale)")
    panel = fig.add_subplot(grid[0, 2])
    panel.axis("off")
    panel.legend(handles=handles, loc="center left", fontsize=8.5, frameon=False,
                 title="colour: model; style: state", title_fontsize=8.5)
    heading = ("Gradient the loss at target step t' alone sends back to the state at step t, "
               "by distance")
    fig.suptitle(f"{heading}\n{title}" if title else heading, fontsize=10)
    return fig


def plot_by_distance(flows: dict[str, DistanceFlow], path, title: str = "") -> bool:
    """Save :func:`make_distance_figure` to ``path``; returns False without matplotlib.
    A path that cannot be written raises :class:`~minis2s.figures.FigureError`."""
    fig = make_distance_figure(flows, title)
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
