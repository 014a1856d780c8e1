"""The JAX reference of the benchmark (minis2s/jax_reference.py) against minis2s with
identical weights, in float64: the loss, every gradient, and training steps of clipping
and Adam. Without JAX these skip (the end of the run says so)."""

import os

import numpy as np
import pytest

if os.environ.get("MINIS2S_REQUIRE_JAX"):
    import jax  # a missing JAX must fail, not skip
else:
    jax = pytest.importorskip("jax")

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from minis2s import gradcheck as gc  # noqa: E402
from minis2s import jax_reference as jr  # noqa: E402
from minis2s.backend import get_backend  # noqa: E402
from minis2s.model import ModelConfig, init_params, seq2seq_backward, seq2seq_forward  # noqa: E402
from minis2s.ops import CELLS  # noqa: E402
from minis2s.optim import Adam, clip_grad_norm_  # noqa: E402

F64 = get_backend("numpy", "float64")


def config(cell, layers=2, dropout=0.0, **kw):
    return ModelConfig(src_vocab_size=11, tgt_vocab_size=13, embed_size=5, num_hiddens=6,
                       num_layers=layers, dropout=dropout, cell=cell, **kw)


def as_jax(params):
    return {k: jnp.asarray(np.asarray(v)) for k, v in params.items()}


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("cell", list(CELLS))
def test_loss_and_every_gradient_equal_minis2s(cell, layers):
    cfg = config(cell, layers)
    rng = np.random.default_rng(5)
    params = init_params(cfg, F64, rng)
    batch = gc.make_batch(rng, cfg, 5, 6, 7)
    loss, cache = seq2seq_forward(params, cfg, batch)
    grads = seq2seq_backward(1.0, cache).params
    j_loss, j_grads = jax.jit(jax.value_and_grad(jr.loss), static_argnums=1)(
        as_jax(params), cfg, batch.src, batch.tgt_in, batch.tgt, batch.tgt_valid_len)
    assert abs(float(loss) - float(j_loss)) <= 1e-12 * max(1.0, abs(float(loss)))
    assert set(j_grads) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(np.asarray(j_grads[name]), g, rtol=0, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("clip", [0.1, 1e6])
@pytest.mark.parametrize("cell", list(CELLS))
def test_steps_of_clipping_and_adam_equal_minis2s(cell, clip):
    """Five steps of the seed's clipping (at 0.1, reached; at 1e6, never) and PyTorch's
    Adam."""
    cfg = config(cell)
    rng = np.random.default_rng(3)
    params = init_params(cfg, F64, rng)
    mine = as_jax(params)
    m = {k: jnp.zeros_like(v) for k, v in mine.items()}
    v = {k: jnp.zeros_like(p) for k, p in mine.items()}
    step = jr.train_step_fn(cfg, lr=0.005, grad_clip=clip)
    opt, grads = Adam(params, lr=0.005), params.zeros_like()
    clipped = 0
    for t in range(1, 6):
        batch = gc.make_batch(rng, cfg, 4, 5, 6)
        loss, cache = seq2seq_forward(params, cfg, batch)
        grads.assign(seq2seq_backward(1.0, cache).params)
        clipped += clip_grad_norm_(grads, clip) > clip
        opt.step(grads)
        mine, m, v, j_loss = step(mine, m, v, jnp.float64(t), batch.src, batch.tgt_in,
                                  batch.tgt, batch.tgt_valid_len, None)
        assert abs(float(loss) - float(j_loss)) <= 1e-10
    assert clipped > 0 if clip < 1 else clipped == 0  # the branch each clip takes
    for name, p in params.items():
        np.testing.assert_allclose(np.asarray(mine[name]), p, rtol=0, atol=1e-10,
                                   err_msg=name)


def test_dropout_is_drawn_and_only_between_layers():
    cfg = config("gru", dropout=0.5)
    rng = np.random.default_rng(0)
    params = as_jax(init_params(cfg, F64, rng))
    batch = gc.make_batch(rng, cfg, 3, 4, 5)
    logits = jax.jit(jr.logits, static_argnums=1)
    args = (params, cfg, batch.src, batch.tgt_in)
    plain = logits(*args)
    a, b = logits(*args, jax.random.PRNGKey(1)), logits(*args, jax.random.PRNGKey(2))
    assert not np.allclose(a, plain) and not np.allclose(a, b)  # dropout is drawn
    one = config("gru", layers=1, dropout=0.5)  # one layer: nothing between layers
    params1 = as_jax(init_params(one, F64, np.random.default_rng(0)))
    np.testing.assert_array_equal(logits(params1, one, batch.src, batch.tgt_in,
                                         jax.random.PRNGKey(1)),
                                  logits(params1, one, batch.src, batch.tgt_in))


@pytest.mark.parametrize("change, says", [
    ({"model": "attention"}, "seq2seq"), ({"bidirectional": True}, "one-direction"),
    ({"decoder_hiddens": 4}, "as wide as"), ({"output_layer": "deep"}, "dense output")])
def test_what_it_does_not_model_is_refused(change, says):
    with pytest.raises(ValueError, match=says):
        jr.train_step_fn(config("gru", **change), lr=0.01, grad_clip=1.0)


def test_bench_runs_jax_beside_minis2s_and_reports_compiling_apart(tiny_corpus):
    import io

    from minis2s import bench

    out = io.StringIO()
    summary = bench.bench("zh", epochs=2, repeats=1, vs_torch=False, vs_jax=True,
                          data=tiny_corpus, out=out)
    text = out.getvalue()
    jax_run, mine = summary["jax"], summary["minis2s"]
    assert jax_run["tokens_per_sec"] > 0 and jax_run["compile_seconds"] > 0
    assert mine["compile_seconds"] == 0
    # the whole run holds the compiling and the epochs
    assert jax_run["wall_seconds"] > jax_run["compile_seconds"]
    assert f"of which compiling {jax_run['compile_seconds']:.1f} s" in text
    assert "ratio minis2s / jax" in text
    assert summary["jax_ratio"] == mine["tokens_per_sec"] / jax_run["tokens_per_sec"]
    assert summary["jax_wall_ratio"] == jax_run["wall_seconds"] / mine["wall_seconds"]
    # the same model from the same weights: the first epochs' losses are close
    assert abs(jax_run["loss"] - mine["loss"]) < 0.1 * mine["loss"]
