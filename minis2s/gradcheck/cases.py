"""The project's own gradient checks, one case per op and for the whole model, and the
``python -m minis2s gradcheck`` command that prints them.

Every case goes through a scalar ``sum(out * G)`` with a random upstream gradient G (never
all ones), in float64, and compares against :mod:`.core`'s finite differences. Each case
draws its values on the host; given a backend ``on`` (CuPy's, in float64), it puts them
there and checks the ops where they run (``python -m minis2s gradcheck --backend cupy``).
"""

from __future__ import annotations

import numpy as np

from .core import TOLERANCE, Row, check_arrays, check_backward, print_rows

# ------------------------------------------------------------------ cases, one per op


def _masks(rng, shape_list, p, on=None):
    """Fixed inverted-dropout masks (float64) for a check."""
    return [_to(on, (rng.random(s) >= p) / (1.0 - p)) for s in shape_list]


def _to(on, x):
    """``x``, drawn on the host, on backend ``on`` (None: NumPy, left as it is)."""
    return x if on is None else on.xp.asarray(x)


def _all_to(on, arrays: dict) -> dict:
    return {k: _to(on, v) for k, v in arrays.items()}


def check_embedding(rng, N=3, T=4, V=5, E=3, on=None) -> list[Row]:
    from ..ops import embedding_backward, embedding_forward

    ids = rng.integers(0, V, (N, T))
    ids[0, :2] = 1  # a repeated id: its gradient rows must accumulate
    ids = _to(on, ids)
    return check_backward(lambda weight: embedding_forward(ids, weight), embedding_backward,
                          {"weight": _to(on, rng.standard_normal((V, E)))}, rng,
                          case="embedding")


def check_embed_project(rng, ids_shape=(4, 3), V=5, E=3, H=2, on=None) -> list[Row]:
    """Both ways: the table (V < ids.size) and the gather (V >= ids.size)."""
    from ..ops.embed_project import embed_project_backward, embed_project_forward

    ids = rng.integers(0, V, ids_shape)
    ids.reshape(-1)[:2] = 1  # a repeated id
    inputs = _all_to(on, {"embedding": rng.standard_normal((V, E)),
                          "weight": rng.standard_normal((3 * H, E)),
                          "bias": rng.standard_normal(3 * H)})
    way = "table" if V < ids.size else "gather"
    ids = _to(on, ids)
    return check_backward(lambda embedding, weight, bias: embed_project_forward(
        ids, embedding, weight, bias), embed_project_backward, inputs, rng,
        case=f"embed_project[{way}]")


def check_dense(rng, lead=(2, 3), D=4, V=5, on=None) -> list[Row]:
    from ..ops import dense_backward, dense_forward

    def backward(dout, cache):
        dx, grads = dense_backward(dout, cache)
        return {"x": dx, **grads}

    inputs = _all_to(on, {"x": rng.standard_normal((*lead, D)),
                          "weight": rng.standard_normal((V, D)), "bias": rng.standard_normal(V)})
    return check_backward(dense_forward, backward, inputs, rng, case="dense")


def check_bridge(rng, N=3, D=4, K=6, on=None) -> list[Row]:
    """The tanh bridge from the encoder's state to the decoder's first state: x, W, b."""
    from ..ops import bridge_backward, bridge_forward

    def backward(dout, cache):
        dx, grads = bridge_backward(dout, cache)
        return {"x": dx, **grads}

    inputs = _all_to(on, {"x": rng.standard_normal((N, D)),
                          "weight": 0.5 * rng.standard_normal((K, D)),
                          "bias": 0.5 * rng.standard_normal(K)})  # tanh not saturated
    return check_backward(bridge_forward, backward, inputs, rng, case="bridge")


def check_deep_output(rng, per_sequence=True, T=3, N=2, Wd=3, W=2, E=2, K=4, V=5,
                      on=None) -> list[Row]:
    """The deep output's tanh layer: the state, the context (once per sequence, added at
    every padded step, or a row per state row), U, b and the embedding table."""
    from ..ops import deep_output_backward, deep_output_forward

    ids = _to(on, rng.integers(0, V, (T, N)))
    context_shape = (N, W) if per_sequence else (T, N, W)

    def forward(state, context, embedding, weight, bias):
        return deep_output_forward(state, context, ids, embedding, weight, bias,
                                   per_sequence=per_sequence)

    def backward(dhidden, cache):
        dstate, dcontext, g = deep_output_backward(dhidden, cache)
        return {"state": dstate, "context": dcontext, **g}

    inputs = _all_to(on, {"state": rng.standard_normal((T, N, Wd)),
                          "context": rng.standard_normal(context_shape),
                          "embedding": rng.standard_normal((V, E)),
                          "weight": 0.5 * rng.standard_normal((K, Wd + W + E)),
                          "bias": 0.5 * rng.standard_normal(K)})
    return check_backward(forward, backward, inputs, rng,
                          case=f"deep_output[{'per sequence' if per_sequence else 'per row'}]")


def check_dropout(rng, shape=(3, 4), p=0.4, on=None) -> list[Row]:
    from ..ops import dropout_backward, dropout_forward

    (mask,) = _masks(rng, [shape], p, on)
    return check_backward(lambda x: dropout_forward(x, mask),
                          lambda dout, cache: {"x": dropout_backward(dout, cache)},
                          {"x": _to(on, rng.standard_normal(shape))}, rng, case="dropout")


def check_stack(rng, T=4, N=3, D=3, H=4, L=2, bidirectional=True, p=0.3,
                given_proj=False, case=None, cell="gru", on=None) -> list[Row]:
    """Every input and parameter of a recurrent stack of ``cell`` (a key of ops.CELLS):
    x (or, with ``given_proj``, layer 0's input projections made by the caller), the
    initial state (h0, and c0 for the LSTM) and the weights, through the outputs and the
    final state."""
    from ..ops import (
        CELLS,
        State,
        param_suffix,
        stack_backward,
        stack_forward,
        stack_param_shapes,
    )

    rnn = CELLS[cell]
    G, dirs = rnn.gates, (2 if bidirectional else 1)
    caller_owns = {f"{w}{param_suffix(0, d)}" for w in ("weight_ih", "bias_ih")
                   for d in range(dirs)} if given_proj else set()
    params = {k: rng.uniform(-0.6, 0.6, s)
              for k, s in stack_param_shapes(G, D, H, L, dirs).items() if k not in caller_owns}
    state_names = ("h0", "c0") if rnn.paired else ("h0",)
    arrays = {n: rng.standard_normal((L * dirs, N, H)) * 0.5 for n in state_names}
    if given_proj:
        for d in range(dirs):
            arrays[f"proj[{d}]"] = rng.standard_normal((T, N, G * H))
    else:
        arrays["x"] = rng.standard_normal((T, N, D))
    params, arrays = _all_to(on, params), _all_to(on, arrays)
    masks = _masks(rng, [(T, N, dirs * H)] * (L - 1), p, on) if p else None
    G_out = _to(on, rng.standard_normal((T, N, dirs * H)))
    G_n = [_to(on, rng.standard_normal((L * dirs, N, H))) for _ in state_names]

    def forward():
        proj = [arrays[f"proj[{d}]"] for d in range(dirs)] if given_proj else None
        return stack_forward(rnn, arrays.get("x"), params, L, bidirectional,
                             State(*(arrays[n] for n in state_names)), masks,
                             input_proj=proj)

    def f():
        (out, state_n), _ = forward()
        parts = (state_n.h, state_n.c)[:len(state_names)]
        return (out * G_out).sum() + sum((s * g).sum() for s, g in zip(parts, G_n))

    _, cache = forward()
    g = stack_backward(G_out, State(*G_n), cache)
    analytic = dict(zip(state_names, (g.dstate0.h, g.dstate0.c)))
    analytic.update(g.params)
    if given_proj:
        analytic.update({f"proj[{d}]": g.dproj[d] for d in range(dirs)})
    else:
        analytic["x"] = g.dx
    if case is None:
        case = f"{cell}[{L} layer{'s' if L > 1 else ''}" + (
            ", bidirectional" if bidirectional else "") + (", dropout" if p else "") + (
            ", projections given" if given_proj else "") + "]"
    return check_arrays(case, f, {**arrays, **params}, analytic)


def check_repeat_steps(rng, N=4, C=3, T=5, packed=True, on=None) -> list[Row]:
    """The per-sequence value added at every step, padded or packed."""
    from ..ops import repeat_steps_add_backward, repeat_steps_add_forward

    per_seq = rng.standard_normal((N, C))
    batch_sizes = sorted(rng.integers(0, N + 1, T).tolist(), reverse=True) if packed else None
    base = _to(on, rng.standard_normal((sum(batch_sizes), C) if packed else (T, N, C)))
    return check_backward(  # the forward adds in place: a fresh base each time
        lambda per_seq: repeat_steps_add_forward(base.copy(), per_seq, batch_sizes),
        lambda dout, cache: {"per_seq": repeat_steps_add_backward(dout, cache)},
        {"per_seq": _to(on, per_seq)}, rng,
        case=f"repeat_steps[{'packed' if packed else 'padded'}]")


def check_additive_attention(rng, N=3, S=5, A=4, Dq=3, Dv=2, valid_len=(5, 2, 0),
                             p=0.3, on=None) -> list[Row]:
    """Additive attention over padded positions (a row with nothing valid included), with
    dropout on the weights; through the context (the weights themselves are an output
    nothing differentiates)."""
    from ..ops import additive_attention_backward, additive_attention_forward

    valid = _to(on, np.arange(S)[None, :] < np.asarray(valid_len)[:, None])
    mask = _masks(rng, [(N, S)], p, on)[0] if p else None
    inputs = _all_to(on, {"query": rng.standard_normal((N, Dq)),
                          "keys_proj": rng.standard_normal((N, S, A)),
                          "values": rng.standard_normal((N, S, Dv)),
                          "W_q": rng.standard_normal((A, Dq)),
                          "w_v": rng.standard_normal((1, A))})

    def forward(query, keys_proj, values, W_q, w_v):
        (context, _), cache = additive_attention_forward(query, keys_proj, values, valid,
                                                         W_q, w_v, mask)
        return context, cache

    return check_backward(forward, additive_attention_backward, inputs, rng,
                          case="additive_attention")


def check_softmax_ce(rng, N=3, T=4, V=5, valid_len=(0, 2, 4), reduction="seq",
                     on=None) -> list[Row]:
    from ..ops import masked_softmax_ce_backward, masked_softmax_ce_forward

    logits = _to(on, rng.standard_normal((N, T, V)) * 3)
    labels = _to(on, rng.integers(0, V, (N, T)))
    vl = _to(on, np.asarray(valid_len))
    c = rng.uniform(0.5, 2.0)  # random upstream gradient of the scalar loss
    _, cache = masked_softmax_ce_forward(logits, labels, vl, reduction)
    dlogits = masked_softmax_ce_backward(c, cache)
    f = lambda: c * masked_softmax_ce_forward(logits, labels, vl, reduction)[0]  # noqa: E731
    return check_arrays(f"softmax_ce[{reduction}]", f, {"logits": logits},
                        {"logits": dlogits})


def make_batch(rng, cfg, N, T_src, T_tgt):
    """A random :class:`~minis2s.data.Batch` (one target of length 0 when N > 2, sources
    of random valid lengths)."""
    from ..data import make_batch as batch_of

    src = rng.integers(0, cfg.src_vocab_size, (N, T_src))
    tgt = rng.integers(0, cfg.tgt_vocab_size, (N, T_tgt))
    valid = rng.integers(1, T_tgt + 1, N)
    valid[0] = T_tgt
    if N > 2:
        valid[1] = 0
    src_valid = rng.integers(1, T_src + 1, N)  # padded sources: attention must skip them
    src_valid[0] = T_src
    return batch_of(src, src_valid, tgt, valid, bos=min(2, cfg.tgt_vocab_size - 1))


def check_seq2seq(rng, cfg=None, N=3, T_src=4, T_tgt=5, case=None,
                  packed: bool = True, scale_floor: float = 0.0, on=None,
                  reduction: str = "seq") -> list[Row]:
    """Every parameter of a whole encoder-decoder through the masked loss (``reduction``:
    the loss's, see :mod:`minis2s.ops.softmax_ce`), on backend ``on`` (default: NumPy,
    float64). With ``scale_floor``, each parameter's error is relative to at least that
    fraction of the model's largest gradient entry: a gradient near zero next to large
    ones (finite differences resolve it only to ~1e-13) is then checked to that absolute
    accuracy."""
    from ..backend import get_backend
    from ..model import (
        ModelConfig,
        draw_dropout_masks,
        init_params,
        seq2seq_backward,
        seq2seq_forward,
    )

    if cfg is None:
        cfg = ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3, num_hiddens=4,
                          num_layers=2, dropout=0.3, bidirectional=False)
    backend = on or get_backend("numpy", "float64")
    params = init_params(cfg, backend, rng)
    batch = make_batch(rng, cfg, N, T_src, T_tgt).to(backend.xp)
    masks = draw_dropout_masks(cfg, backend, backend.generator(int(rng.integers(1 << 30))),
                               N, T_src, T_tgt)
    c = rng.uniform(0.5, 2.0)

    def f():
        return c * seq2seq_forward(params, cfg, batch, masks, packed=packed,
                                   reduction=reduction)[0]

    _, cache = seq2seq_forward(params, cfg, batch, masks, packed=packed, reduction=reduction)
    grads = seq2seq_backward(c, cache).params
    if case is None:
        notes = [cfg.model, cfg.cell] + (["bidirectional"] if cfg.bidirectional else []) + (
            [f"decoder {cfg.decoder_units} units"] if cfg.has_bridge else []) + (
            [f"{cfg.output_layer} output"] if cfg.output_layer != "dense" else []) + (
            [] if packed else ["padded"])
        case = f"model[{', '.join(notes)}]"
    scale = max(float(abs(g).max()) for g in grads.values() if g.size)
    return check_arrays(case, f, dict(params), grads, floor=max(scale_floor * scale, 1e-12))


SCALE_FLOOR = 1e-6


def run_all(seed: int = 0, on=None, each=None) -> list[Row]:
    """The suite that ``python -m minis2s gradcheck`` prints: every op, every cell's stack
    and, for every decoder with every cell, the whole model twice: packed (the training
    path) with a bidirectional encoder, padded with a one-way one (the two paths are equal
    to 1e-12, tests/test_model.py). A model's gradients span orders of magnitude
    (attention's W_q gets ~1e-5 of the largest at initialisation, which finite
    differences resolve to ~1e-13 only), so each error is measured against at least
    :data:`SCALE_FLOOR` of the model's largest gradient entry. Last, the loss's other
    reductions (``train --loss-reduction``), alone and through the whole model. ``on``:
    the backend to check on (float64; None: NumPy); ``each``: called with each case's rows
    as the case ends."""
    from ..model import DECODERS, ModelConfig
    from ..ops import CELLS

    rng = np.random.default_rng(seed)
    rows = []

    def add(new: list[Row]) -> None:
        rows.extend(new)
        if each is not None:
            each(new)

    add(check_embedding(rng, on=on))
    add(check_embed_project(rng, (4, 3), V=5, on=on))
    add(check_embed_project(rng, (2, 2), V=6, on=on))
    add(check_dense(rng, on=on))
    add(check_dropout(rng, on=on))
    for cell in CELLS:
        add(check_stack(rng, bidirectional=False, p=0.0, L=1, cell=cell, on=on))
        add(check_stack(rng, bidirectional=True, p=0.3, L=2, cell=cell, on=on))
        add(check_stack(rng, bidirectional=True, p=0.3, L=2, given_proj=True, cell=cell,
                        on=on))
    add(check_repeat_steps(rng, packed=False, on=on))
    add(check_repeat_steps(rng, packed=True, on=on))
    add(check_softmax_ce(rng, reduction="seq", on=on))
    add(check_softmax_ce(rng, reduction="token", on=on))
    add(check_additive_attention(rng, on=on))
    for model in DECODERS:
        for cell in CELLS:
            cfg = ModelConfig(src_vocab_size=6, tgt_vocab_size=5, embed_size=3,
                              num_hiddens=3, num_layers=2, dropout=0.2, bidirectional=True,
                              cell=cell, model=model)
            add(check_seq2seq(rng, cfg, N=3, T_src=3, T_tgt=4, scale_floor=SCALE_FLOOR,
                              on=on))
            cfg = ModelConfig(src_vocab_size=7, tgt_vocab_size=6, embed_size=3,
                              num_hiddens=4, num_layers=2, dropout=0.3, cell=cell,
                              model=model)
            add(check_seq2seq(rng, cfg, packed=False, scale_floor=SCALE_FLOOR, on=on))
    for reduction in ("sum", "mean", "unmasked"):  # train --loss-reduction's others
        add(check_softmax_ce(rng, reduction=reduction, on=on))
        add(check_seq2seq(rng, scale_floor=SCALE_FLOOR, reduction=reduction, on=on,
                          case=f"model[seq2seq, gru, loss {reduction}]"))
    add(check_bridge(rng, on=on))  # train --decoder-hiddens: a decoder of other units
    add(check_deep_output(rng, per_sequence=True, on=on))  # train --output-layer deep
    add(check_deep_output(rng, per_sequence=False, on=on))
    # both switches at once, one model per decoder (tests/test_decoder_sizes.py and
    # tests/test_output_layer.py check every cell, path and switch alone)
    for model, cell, Wd, packed in (("seq2seq", "gru", 5, True), ("attention", "lstm", 2, False)):
        cfg = ModelConfig(src_vocab_size=6, tgt_vocab_size=5, embed_size=3, num_hiddens=3,
                          num_layers=2, dropout=0.2, bidirectional=True, cell=cell,
                          model=model, decoder_hiddens=Wd, output_layer="deep")
        add(check_seq2seq(rng, cfg, N=3, T_src=3, T_tgt=4, packed=packed,
                          scale_floor=SCALE_FLOOR, on=on))
    return rows


def main(seed: int = 0, backend: str | None = None) -> int:
    """``python -m minis2s gradcheck [--backend B]``: every check, in float64 on backend
    ``backend`` (None: ``$MINIS2S_BACKEND``, else NumPy); exit status 1 if any error
    exceeds :data:`TOLERANCE`."""
    from ..backend import get_backend

    on = get_backend(backend, "float64")
    if on.name == "numpy":
        worst = print_rows(run_all(seed))
    else:  # slower where every evaluation waits for the GPU: each case's rows at once
        print(f"on {on.name} ({on.device}), float64", flush=True)
        rows = run_all(seed, on, each=lambda new: print_rows(new, summary=False))
        worst = print_rows(rows, lines=False)
    return 0 if worst <= TOLERANCE else 1
