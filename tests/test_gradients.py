"""Every backward pass against central finite differences, in float64, on random shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minis2s import gradcheck as gc
from minis2s.model import DECODERS, ModelConfig
from minis2s.ops import CELLS

TOL = gc.TOLERANCE
seeds = st.integers(0, 2**32 - 1)


def worst(rows):
    assert rows, "no gradient was checked"
    return max(r.error for r in rows)


@settings(max_examples=15)
@given(seed=seeds, N=st.integers(1, 4), T=st.integers(1, 6), V=st.integers(2, 10),
       E=st.integers(1, 8))
def test_embedding(seed, N, T, V, E):
    assert worst(gc.check_embedding(np.random.default_rng(seed), N, T, V, E)) <= TOL


@settings(max_examples=15)
@given(seed=seeds, shape=st.lists(st.integers(1, 4), min_size=1, max_size=2),
       V=st.integers(2, 10), E=st.integers(1, 8), H=st.integers(1, 8))
def test_embed_project(seed, shape, V, E, H):
    """Both ways (table when V < ids, gather otherwise) are drawn."""
    rows = gc.check_embed_project(np.random.default_rng(seed), tuple(shape), V, E, H)
    assert worst(rows) <= TOL


@settings(max_examples=15)
@given(seed=seeds, lead=st.lists(st.integers(1, 4), min_size=0, max_size=3),
       D=st.integers(1, 8), V=st.integers(2, 10))
def test_dense(seed, lead, D, V):
    assert worst(gc.check_dense(np.random.default_rng(seed), tuple(lead), D, V)) <= TOL


@settings(max_examples=10)
@given(seed=seeds, shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       p=st.floats(0.05, 0.9))
def test_dropout(seed, shape, p):
    assert worst(gc.check_dropout(np.random.default_rng(seed), tuple(shape), p)) <= TOL


@settings(max_examples=20)
@given(seed=seeds, T=st.integers(1, 6), N=st.integers(1, 4), D=st.integers(1, 8),
       H=st.integers(1, 8), L=st.integers(1, 3), bidirectional=st.booleans(),
       p=st.sampled_from([0.0, 0.3]), given_proj=st.booleans(),
       cell=st.sampled_from(sorted(CELLS)))
def test_recurrent_stack(seed, T, N, D, H, L, bidirectional, p, given_proj, cell):
    rows = gc.check_stack(np.random.default_rng(seed), T, N, D, H, L, bidirectional, p,
                          given_proj, cell=cell)
    assert worst(rows) <= TOL


@settings(max_examples=15)
@given(seed=seeds, N=st.integers(1, 4), C=st.integers(1, 5), T=st.integers(0, 6),
       packed=st.booleans())
def test_repeat_steps(seed, N, C, T, packed):
    rows = gc.check_repeat_steps(np.random.default_rng(seed), N, C, T, packed)
    assert worst(rows) <= TOL


@settings(max_examples=15)
@given(seed=seeds, N=st.integers(1, 4), T=st.integers(1, 6), V=st.integers(2, 10),
       data=st.data(), reduction=st.sampled_from(["seq", "token"]))
def test_softmax_ce(seed, N, T, V, data, reduction):
    valid = data.draw(st.lists(st.integers(0, T), min_size=N, max_size=N))
    rows = gc.check_softmax_ce(np.random.default_rng(seed), N, T, V, valid, reduction)
    assert worst(rows) <= TOL


@settings(max_examples=10)
@given(seed=seeds, N=st.integers(1, 4), T_src=st.integers(1, 6), T_tgt=st.integers(1, 6),
       Vs=st.integers(2, 10), Vt=st.integers(3, 10), E=st.integers(1, 8),
       H=st.integers(1, 8), L=st.integers(1, 3), bidirectional=st.booleans(),
       cell=st.sampled_from(sorted(CELLS)),
       model=st.sampled_from(sorted(DECODERS)))
def test_seq2seq(seed, N, T_src, T_tgt, Vs, Vt, E, H, L, bidirectional, cell, model):
    if bidirectional and L == 3 and H > 5:
        H = 5  # the largest stacks cost seconds per example; their shape is covered anyway
    cfg = ModelConfig(src_vocab_size=Vs, tgt_vocab_size=Vt, embed_size=E, num_hiddens=H,
                      num_layers=L, dropout=0.25, bidirectional=bidirectional, cell=cell,
                      model=model)
    # random shapes can make a gradient nearly vanish next to the others (attention's W_q,
    # when the scores barely move the weights), below what finite differences resolve
    # (rounding in the summed loss, ~1e-13 of it per difference, over eps = 1e-3): its
    # errors count against 1e-5 of the model's largest gradient entry, an absolute
    # accuracy of 1e-11 of it
    rows = gc.check_seq2seq(np.random.default_rng(seed), cfg, N, T_src, T_tgt,
                            scale_floor=1e-5)
    assert worst(rows) <= TOL


def test_rel_error_definition():
    a = np.array([1.0, -2.0, 0.0])
    n = np.array([1.0, -2.0 + 1e-3, 0.0])
    assert gc.rel_error(a, n) == pytest.approx(1e-3 / (4.0 - 1e-3))
    assert gc.rel_error(np.zeros(3), np.zeros(3)) == 0.0


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_random_direction_on_larger_shapes(bidirectional, cell):
    """The directional check (two evaluations) on a stack too big for per-element FD."""
    from minis2s.ops import CELLS, State, stack_backward, stack_forward, stack_param_shapes

    rnn = CELLS[cell]
    rng = np.random.default_rng(7)
    T, N, D, H, L = 12, 16, 24, 48, 2
    dirs = 2 if bidirectional else 1
    params = {k: rng.uniform(-0.2, 0.2, s)
              for k, s in stack_param_shapes(rnn.gates, D, H, L, dirs).items()}
    x = rng.standard_normal((T, N, D))
    h0 = rng.standard_normal((L * dirs, N, H))
    c0 = rng.standard_normal((L * dirs, N, H))
    G = rng.standard_normal((T, N, dirs * H))
    masks = [(rng.random((T, N, dirs * H)) > 0.2) / 0.8]
    arrays = {"x": x, "h0": h0, **params}
    if rnn.paired:
        arrays["c0"] = c0

    def forward():
        return stack_forward(rnn, x, params, L, bidirectional,
                             State(h0, c0) if rnn.paired else State(h0), masks)

    def f():
        (out, _), _ = forward()
        return (out * G).sum()

    _, cache = forward()
    g = stack_backward(G, None, cache)
    grads = g.params
    analytic = {"x": g.dx, **grads}
    analytic["h0"] = g.dstate0.h
    if rnn.paired:
        analytic["c0"] = g.dstate0.c
    else:
        assert g.dstate0.c is None
    for seed in range(3):
        err = gc.directional_error(f, arrays, analytic, np.random.default_rng(seed))
        assert err <= TOL
    # a 1% error in one weight's gradient is visible along a random direction
    analytic["weight_hh_l0"] = grads["weight_hh_l0"] * 1.01
    bad = gc.directional_error(f, arrays, analytic, np.random.default_rng(0))
    assert bad > 1e-4
