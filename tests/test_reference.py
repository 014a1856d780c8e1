"""The plain reference cells: right by finite differences, and the fast kernels equal
to them (1e-12 in float64) on random shapes, padded and packed, in both directions."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minis2s.gradcheck import TOLERANCE, check_backward, shape_strategy
from minis2s.ops import CELLS as FAST
from minis2s.ops import State, stack_backward, stack_forward
from minis2s.ops import reference as ref

CELLS = {  # name: (gate blocks, step forward, step backward, loop forward, loop backward)
    "rnn": (1, ref.rnn_step_forward, ref.rnn_step_backward, ref.rnn_forward,
            ref.rnn_backward),
    "gru": (3, ref.gru_step_forward, ref.gru_step_backward, ref.gru_forward,
            ref.gru_backward),
    "lstm": (4, ref.lstm_step_forward, ref.lstm_step_backward, ref.lstm_forward,
             ref.lstm_backward),
}


def _params(rng, gates, D, H, scale=0.6):
    return {"weight_ih": rng.uniform(-scale, scale, (gates * H, D)),
            "weight_hh": rng.uniform(-scale, scale, (gates * H, H)),
            "bias_ih": rng.uniform(-scale, scale, gates * H),
            "bias_hh": rng.uniform(-scale, scale, gates * H)}


def _state(rng, cell, N, H):
    h = rng.standard_normal((N, H)) * 0.5
    return (h, rng.standard_normal((N, H)) * 0.5) if cell == "lstm" else h


def _state_inputs(cell, state):
    return {"h0": state[0], "c0": state[1]} if cell == "lstm" else {"h0": state}


def _state_grads(cell, dstate):
    return {"h0": dstate[0], "c0": dstate[1]} if cell == "lstm" else {"h0": dstate}


def worst(rows):
    assert rows, "nothing was checked"
    return max(r.error for r in rows)


# ------------------------------------------------------------------ finite differences


@settings(max_examples=10)
@given(cell=st.sampled_from(sorted(CELLS)), shape=shape_strategy("N", "D", "H", high=5),
       seed=st.integers(0, 2**32 - 1))
def test_step_backward_matches_finite_differences(cell, shape, seed):
    rng = np.random.default_rng(seed)
    gates, step_forward, step_backward, _, _ = CELLS[cell]
    N, D, H = shape["N"], shape["D"], shape["H"]

    def forward(x, h0, c0=None, **params):
        return step_forward(x, h0 if c0 is None else (h0, c0), params)

    def backward(dstate, cache):
        dx, dprev, grads = step_backward(dstate, cache)
        return {"x": dx, **_state_grads(cell, dprev), **grads}

    inputs = {"x": rng.standard_normal((N, D)),
              **_state_inputs(cell, _state(rng, cell, N, H)), **_params(rng, gates, D, H)}
    assert worst(check_backward(forward, backward, inputs, rng, case=cell)) <= TOLERANCE


@settings(max_examples=10)
@given(cell=st.sampled_from(sorted(CELLS)), shape=shape_strategy("T", "N", "D", "H", high=4),
       reverse=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_loop_backward_matches_finite_differences(cell, shape, reverse, seed):
    """Backprop through time: the gradient of every step's output and of the final
    state, through the whole loop."""
    rng = np.random.default_rng(seed)
    gates, _, _, loop_forward, loop_backward = CELLS[cell]
    T, N, D, H = shape["T"], shape["N"], shape["D"], shape["H"]

    def forward(x, h0, c0=None, **params):
        hs, last, caches = loop_forward(x, h0 if c0 is None else (h0, c0), params, reverse)
        return (hs, last), caches

    def backward(dout, caches):
        dhs, dlast = dout
        dx, dstate0, grads = loop_backward(dhs, dlast, caches, reverse)
        return {"x": dx, **_state_grads(cell, dstate0), **grads}

    inputs = {"x": rng.standard_normal((T, N, D)),
              **_state_inputs(cell, _state(rng, cell, N, H)), **_params(rng, gates, D, H)}
    assert worst(check_backward(forward, backward, inputs, rng, case=cell)) <= TOLERANCE


def test_a_wrong_step_backward_is_caught():
    """The check above can fail: the GRU's update-gate derivative left out."""
    rng = np.random.default_rng(0)

    def forward(x, h0, **params):
        return ref.gru_step_forward(x, h0, params)

    def backward(dh, cache):
        dx, dh0, grads = ref.gru_step_backward(dh, cache._replace(z=cache.z * 1.05))
        return {"x": dx, "h0": dh0, **grads}

    inputs = {"x": rng.standard_normal((3, 4)), "h0": rng.standard_normal((3, 5)),
              **_params(rng, 3, 4, 5)}
    assert worst(check_backward(forward, backward, inputs, rng)) > 1e-3


# ------------------------------------------------------------------ fast == reference

FAST_TOL = 1e-12


def _stack_params(p, suffix="_l0"):
    return {k + suffix: v for k, v in p.items()}


def _close(a, b, what):
    np.testing.assert_allclose(a, b, rtol=0, atol=FAST_TOL, err_msg=what)


def _fast(cell, state):
    """The reference's state (h, or (h, c) for the LSTM) as the fast stacks' State."""
    return State(*state) if cell == "lstm" else State(state)


def _plain(cell, state):
    """A fast State as the reference's state: h, or (h, c) for the LSTM."""
    assert isinstance(state, State), type(state)
    if cell == "lstm":
        assert state.c is not None
        return state.h, state.c
    assert state.c is None, "only the LSTM has a cell state"
    return state.h


def _stacked(cell, states):
    """Per-direction reference states -> a stack's State of (dirs, N, H) arrays."""
    return State.stack([_fast(cell, st) for st in states])


def _close_state(cell, a, b, what):
    """A fast State ``a`` against the reference's state ``b`` (h, or (h, c))."""
    a = _plain(cell, a)
    if cell == "lstm":
        _close(a[0], b[0], what + " h")
        _close(a[1], b[1], what + " c")
    else:
        _close(a, b, what)


@settings(max_examples=20)
@given(cell=st.sampled_from(sorted(FAST)), shape=shape_strategy("T", "N", "D", "H"),
       reverse=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fast_padded_layer_equals_the_reference(cell, shape, reverse, seed):
    """One layer over a padded batch, either direction: outputs, final state and every
    gradient, from random upstream gradients of the outputs and the final state."""
    rng = np.random.default_rng(seed)
    gates, _, _, loop_forward, loop_backward = CELLS[cell]
    T, N, D, H = shape["T"], shape["N"], shape["D"], shape["H"]
    p = _params(rng, gates, D, H)
    x, state0 = rng.standard_normal((T, N, D)), _state(rng, cell, N, H)
    dhs, dlast = rng.standard_normal((T, N, H)), _state(rng, cell, N, H)

    hs, last, caches = loop_forward(x, state0, p, reverse)
    dx, dstate0, grads = loop_backward(dhs, dlast, caches, reverse)

    # the reverse direction is the second of a bidirectional stack, whose forward
    # direction gets weights and states of its own
    dirs, d = (2, 1) if reverse else (1, 0)
    sfx = "_l0_reverse" if reverse else "_l0"
    params = _stack_params(p, sfx)
    if reverse:
        params.update(_stack_params(_params(rng, gates, D, H)))
    other = [_state(rng, cell, N, H)] if reverse else []
    (out, state_n), cache = stack_forward(FAST[cell], x, params, 1, reverse,
                                          _stacked(cell, other + [state0]))
    mine = slice(H, 2 * H) if reverse else slice(0, H)
    _close(out[:, :, mine], hs, "outputs")
    _close_state(cell, state_n.part(d), last, "final state")
    dout = np.zeros((T, N, dirs * H))
    dout[:, :, mine] = dhs
    zeros = [_state(rng, cell, N, H)] if reverse else []
    if reverse:
        zeros = [tuple(0 * z for z in zeros[0]) if cell == "lstm" else 0 * zeros[0]]
    fg = stack_backward(dout, _stacked(cell, zeros + [dlast]), cache)
    assert fg.dproj is None and fg.recorded is None
    _close_state(cell, fg.dstate0.part(d), dstate0, "dstate0")
    for name, g in grads.items():
        _close(fg.params[name + sfx], g, name)
    if not reverse:
        _close(fg.dx, dx, "dx")


@settings(max_examples=20)
@given(cell=st.sampled_from(sorted(FAST)), data=st.data(), D=st.integers(1, 5),
       H=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_fast_packed_layer_equals_the_reference(cell, data, D, H, seed):
    """Packed sequences (sorted by length, finished ones dropping off) against the
    reference run on each sequence alone, over its own length."""
    rng = np.random.default_rng(seed)
    gates, _, _, loop_forward, loop_backward = CELLS[cell]
    lengths = sorted(data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)),
                     reverse=True)
    N, T = len(lengths), lengths[0]
    batch_sizes = [sum(n > t for n in lengths) for t in range(T)]
    p = _params(rng, gates, D, H)
    xs = [rng.standard_normal((n, 1, D)) for n in lengths]  # one sequence each
    state0 = _state(rng, cell, N, H)
    dhs = [rng.standard_normal((n, 1, H)) for n in lengths]
    x = np.concatenate([xs[j][t] for t in range(T) for j in range(batch_sizes[t])])
    dout = np.concatenate([dhs[j][t] for t in range(T) for j in range(batch_sizes[t])])
    (out, state_n), cache = stack_forward(FAST[cell], x, _stack_params(p), 1, False,
                                          _stacked(cell, [state0]), batch_sizes=batch_sizes)
    assert state_n is None  # packed: no final state
    fg = stack_backward(dout, None, cache)
    fdx, fdstate0, fgrads = fg.dx, fg.dstate0, fg.params
    total = {k: 0.0 for k in p}
    o = 0
    rows = {j: [] for j in range(N)}  # each sequence's rows in the packed layout
    for t in range(T):
        for j in range(batch_sizes[t]):
            rows[j].append(o + j)
        o += batch_sizes[t]
    for j in range(N):
        one = tuple(s[j:j + 1] for s in state0) if cell == "lstm" else state0[j:j + 1]
        hs, _, caches = loop_forward(xs[j], one, p)
        dx, dstate0, grads = loop_backward(dhs[j], None, caches)
        _close(out[rows[j]], hs[:, 0], f"outputs of sequence {j}")
        _close(fdx[rows[j]], dx[:, 0], f"dx of sequence {j}")
        mine = fdstate0.part(0).map(lambda s, j=j: s[j:j + 1])
        _close_state(cell, mine, dstate0, f"dstate0 of sequence {j}")
        total = {k: total[k] + grads[k] for k in grads}
    for name, g in total.items():
        _close(fgrads[name + "_l0"], g, name)


@settings(max_examples=20)
@given(cell=st.sampled_from(sorted(FAST)), shape=shape_strategy("T", "N", "D", "H", high=4),
       L=st.integers(1, 3), bidirectional=st.booleans(), dropout=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_fast_stack_equals_the_reference_stack(cell, shape, L, bidirectional, dropout,
                                               seed):
    """Whole stacks over a padded batch — layers, both directions, dropout between layers
    —: outputs, final state, dx, dstate0 and every weight's gradient, from random upstream
    gradients of the outputs and the final state."""
    rng = np.random.default_rng(seed)
    gates = CELLS[cell][0]
    T, N, D, H = shape["T"], shape["N"], shape["D"], shape["H"]
    dirs = 2 if bidirectional else 1
    params = {}
    for layer in range(L):
        for d in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            params.update(_stack_params(_params(rng, gates, D if layer == 0 else dirs * H, H),
                                        suffix))
    x = rng.standard_normal((T, N, D))
    state0 = _stacked(cell, [_state(rng, cell, N, H) for _ in range(L * dirs)])
    masks = [(rng.random((T, N, dirs * H)) >= 0.3) / 0.7 for _ in range(L - 1)] \
        if dropout else None
    dout = rng.standard_normal((T, N, dirs * H))
    dstate_n = _stacked(cell, [_state(rng, cell, N, H) for _ in range(L * dirs)])

    (out, state_n), cache = ref.stack_forward(cell, x, params, L, bidirectional,
                                              _plain(cell, state0), masks)
    dx, dstate0, grads = ref.stack_backward(dout, _plain(cell, dstate_n), cache)
    (fout, fstate_n), fcache = stack_forward(FAST[cell], x, params, L, bidirectional,
                                             state0, masks)
    fg = stack_backward(dout, dstate_n, fcache)
    fdx, fdstate0, fgrads = fg.dx, fg.dstate0, fg.params

    _close(fout, out, "outputs")
    _close_state(cell, fstate_n, state_n, "final state")
    _close(fdx, dx, "dx")
    _close_state(cell, fdstate0, dstate0, "dstate0")
    assert sorted(fgrads) == sorted(grads) == sorted(params)
    for name, g in grads.items():
        _close(fgrads[name], g, name)


def test_the_reference_stack_matches_finite_differences():
    """The reference stack itself, through check_backward: two bidirectional LSTM layers
    with dropout between them (its own oracle, sharing nothing with the fast stack)."""
    rng = np.random.default_rng(3)
    T, N, D, H, L = 3, 2, 3, 2, 2
    params = {}
    for layer in range(L):
        for d in range(2):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            params.update(_stack_params(_params(rng, 4, D if layer == 0 else 2 * H, H),
                                        suffix))
    masks = [(rng.random((T, N, 2 * H)) >= 0.3) / 0.7]

    def forward(x, h0, c0, **p):
        return ref.stack_forward("lstm", x, p, L, True, (h0, c0), masks)

    def backward(d, cache):
        dx, (dh0, dc0), grads = ref.stack_backward(d[0], d[1], cache)
        return {"x": dx, "h0": dh0, "c0": dc0, **grads}

    inputs = {"x": rng.standard_normal((T, N, D)),
              "h0": rng.standard_normal((L * 2, N, H)) * 0.5,
              "c0": rng.standard_normal((L * 2, N, H)) * 0.5, **params}
    assert worst(check_backward(forward, backward, inputs, rng, case="stack")) <= TOLERANCE
