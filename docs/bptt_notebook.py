# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Backprop through time, step by step
#
# The walk of `docs/bptt.md`, as code you can run. It runs top to bottom as a plain
# script (`python docs/bptt_notebook.py`; it writes no file), and as a notebook:
# `docs/bptt_notebook.ipynb`, with every cell's output, is made from this script by
# `python docs/make_notebooks.py` (this script stays the one to edit). Everything here
# uses minis2s's plain reference cells (`minis2s.ops.reference`), written to be read, and
# its finite-difference checker (`minis2s.gradcheck`).
#
# Steps are counted from 0, as in the code and in the tutorial's tables: the inputs are
# `x_0, …, x_{T-1}`, step t makes `h_t`, and the state before the first step (the code's
# `h0`) is written `h_{-1}`. Every weight and bias is drawn as minis2s draws them, which
# is the seed's rule for its GRU: Xavier-uniform weight matrices, biases U(−1/√H, 1/√H).

# %%
import numpy as np

from minis2s.gradcheck import TOLERANCE, check_backward
from minis2s.model.weights import uniform, xavier_uniform
from minis2s.ops import reference as ref

rng = np.random.default_rng(0)
N, D, H, T = 4, 5, 8, 30  # batch, input features, hidden units, steps


def params_for(gates, scale=1.0):
    """One layer's parameters in PyTorch's layout, drawn as minis2s draws every cell's (the
    seed's rule for its GRU): Xavier-uniform weights, biases U(−1/√H, 1/√H); ``scale``
    multiplies W_hh."""
    return {"weight_ih": xavier_uniform(rng, (gates * H, D)),
            "weight_hh": scale * xavier_uniform(rng, (gates * H, H)),
            "bias_ih": uniform(H)(rng, (gates * H,)), "bias_hh": uniform(H)(rng, (gates * H,))}


x = rng.standard_normal((T, N, D))  # the inputs x_0, ..., x_{T-1}

# %% [markdown]
# ## 1. The unrolled recurrence, and the loop that runs it backwards
#
# A cell maps `(x_t, h_{t-1})` to `h_t`. Run forward, the loop keeps each step's cache;
# run backward, it carries one gradient, `dh`, from step `t` to step `t-1` through that
# step's backward. Here is the loop written out, recording the norm of the carried
# gradient at every step: how much of a gradient placed on the *last* state, `h_{T-1}`,
# reaches each earlier one. (`minis2s.ops.reference.loop.backward_over_time` is the same
# loop, with the gradients from above added at each step.)


# %%
def reaching(step_backward, caches, dstate_last):
    """‖∂(dh_last · h_{T-1})/∂h_t‖ for t = 0, ..., T-1: the gradient dh_last placed on the
    last state, carried back by the step backwards alone."""
    norms, dstate = [None] * len(caches), dstate_last
    for t in reversed(range(len(caches))):
        dh = dstate[0] if isinstance(dstate, tuple) else dstate
        norms[t] = float(np.linalg.norm(dh))
        _, dstate, _ = step_backward(dstate, caches[t])  # now the gradient of h_{t-1}
    return norms


dh_last = rng.standard_normal((N, H))  # a gradient on the last state, h_{T-1}
h0 = np.zeros((N, H))  # the state before step 0, h_{-1}

# %% [markdown]
# ## 2. The vanilla RNN: one Jacobian, multiplied over and over
#
# `h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)`, so `∂h_t/∂h_{t-1} = diag(1 − h_t²)
# W_hh` (for one row; rows are independent): a gradient row `v` on `h_t` becomes
# `(v ⊙ (1 − h_t²)) W_hh` on `h_{t-1}`. Going back d steps applies d of these. Each one
# multiplies the norm by at most `σ_max(W_hh) · max(1 − h_t²)`, so over the steps
# `‖∂L/∂h_t‖ ≤ ‖∂L/∂h_{T-1}‖ · Π σ_max(W_hh) max(1 − h²)`: if `σ_max(W_hh) < 1` the
# gradient must vanish. The converse does not hold: `σ_max > 1` allows growth but does
# not force it, because tanh's derivative is at most 1 and shrinks where the units
# saturate.
#
# To see explosion cleanly, take away everything else: `W_hh` a scaled orthogonal matrix
# (every singular value equal to the scale), no biases and inputs so small that the
# states stay near 0, where tanh' ≈ 1. Then each step back multiplies the norm by the
# scale exactly.


# %%
def orthogonal(size):
    q, _ = np.linalg.qr(rng.standard_normal((size, size)))
    return q


x_small = 1e-4 * x  # states stay near 0: tanh works in its linear part
for scale in (0.8, 1.0, 1.2):
    p = {**params_for(1), "weight_hh": scale * orthogonal(H),
         "bias_ih": np.zeros(H), "bias_hh": np.zeros(H)}
    _, _, caches = ref.rnn_forward(x_small, h0, p)
    norms = reaching(ref.rnn_step_backward, caches, dh_last)
    flattest = min(float((1 - c.h ** 2).min()) for c in caches)
    print(f"orthogonal W_hh × {scale}: ‖∂L/∂h_0‖ / ‖∂L/∂h_29‖ = {norms[0] / norms[-1]:.3g} "
          f"({scale}^29 = {scale ** 29:.3g}; smallest tanh' {flattest:.4f})")

# %% [markdown]
# With the weights drawn as the seed draws them and inputs of unit size, scaling `W_hh`
# up does not make the gradient explode: the states saturate, `1 − h²` falls, and the
# product shrinks however large `σ_max` is. The bound `Π σ_max(W_hh) max(1 − h²)` is far
# above what the gradient does: it takes every step's largest factor, in every step's
# most favourable direction.

# %%
for scale in (0.5, 1.0, 3.0):
    p = params_for(1, scale)
    _, _, caches = ref.rnn_forward(x, h0, p)
    norms = reaching(ref.rnn_step_backward, caches, dh_last)
    tanh_prime = np.stack([1 - c.h ** 2 for c in caches])  # (T, N, H)
    sigma = np.linalg.norm(p["weight_hh"], 2)
    bound = np.prod(sigma * tanh_prime[1:].max(axis=(1, 2)))  # the steps carried back
    print(f"Xavier W_hh × {scale}: σ_max {sigma:.2f}, mean tanh' {tanh_prime.mean():.2f}; "
          f"‖∂L/∂h_t‖ at t = 0, 10, 20, 29: "
          + ", ".join(f"{norms[t]:.2g}" for t in (0, 10, 20, 29))
          + f"; first / last {norms[0] / norms[-1]:.2g}, bound {bound:.2g}")

# %% [markdown]
# The same numbers from the Jacobians themselves: build `J_t = diag(1 − h_t²) W_hh` for
# one sequence and multiply them. The gradient carried to `h_0` is `dh_last J_{T-1}
# J_{T-2} ⋯ J_1` (a row vector times the matrices), exactly what the loop computed (it
# never forms a matrix: it multiplies a vector).

# %%
p = params_for(1, 1.0)
_, _, caches = ref.rnn_forward(x, h0, p)
row = 0
vec = dh_last[row].copy()
for t in reversed(range(1, T)):
    J = np.diag(1 - caches[t].h[row] ** 2) @ p["weight_hh"]  # ∂h_t/∂h_{t-1}
    vec = vec @ J
dstate = dh_last.copy()
for t in reversed(range(1, T)):
    _, dstate, _ = ref.rnn_step_backward(dstate, caches[t])
assert np.allclose(vec, dstate[row])
print("dh_last J_{T-1} ⋯ J_1 equals the carried gradient:", np.allclose(vec, dstate[row]))

# %% [markdown]
# ## 3. The GRU's z-path and the LSTM's cell path
#
# GRU: `h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}`, so `∂h_t/∂h_{t-1}` has the term
# `diag(z_t)` besides the paths through `W_hh`. Where the update gate `z` is near 1, that
# term is near the identity and gradient crosses the step almost untouched.
#
# LSTM: `c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t`, so the block of the state pair's Jacobian from
# `c_{t-1}` to `c_t` is `diag(f_t)`: no weight matrix, no derivative of an activation
# function. Where the forget gate `f` is near 1, the cell carries gradient across many
# steps.
#
# Both gates are learned. At initialisation their biases are small, so `z` and `f` sit
# near σ(0) = 0.5, and a product of 0.5's vanishes like any other; push the bias up and
# watch the gradient survive.

# %%
for bias in (0.0, 2.0, 5.0):
    pg = params_for(3)
    pg["bias_hh"][H:2 * H] = bias  # the update gate's block: z = σ(… + bias_ih + bias)
    _, _, caches = ref.gru_forward(x, h0, pg)
    gru = reaching(ref.gru_step_backward, caches, dh_last)
    pl = params_for(4)
    pl["bias_hh"][H:2 * H] = bias  # the forget gate's block: f = σ(… + bias_ih + bias)
    _, _, caches = ref.lstm_forward(x, (h0, h0), pl)
    lstm = reaching(ref.lstm_step_backward, caches, (dh_last, np.zeros_like(dh_last)))
    print(f"gate bias {bias}: at t = 0 GRU {gru[0]:.2e}, LSTM {lstm[0]:.2e} "
          f"(at t = {T - 1}: {gru[-1]:.2e}, {lstm[-1]:.2e})")

# %% [markdown]
# (In the LSTM the gradient placed on `h_{T-1}` first enters the cell through `o ⊙ (1 −
# tanh² c)`; from there the cell path carries it.)
#
# ## 4. Clipping, as the seed does it
#
# The seed's `grad_clipping(net, 1)` computes the norm of *all* parameter gradients
# together and, if it is above θ, scales every gradient by θ / norm. The direction is
# kept; only the length is capped. So clipping stops one exploding batch from throwing
# the weights far, but it rescales the early steps' share and the late steps' share by
# the same factor: it does nothing for a gradient that has vanished.

# %%
from minis2s.optim import clip_grad_norm_  # noqa: E402
from minis2s.params import ParamSet  # noqa: E402

grads = ParamSet({"a": (3,), "b": (2,)}, np, np.dtype("float64"))
grads.flat[:] = [3.0, 0.0, 4.0, 0.001, 0.0]
before = grads.flat.copy()
norm = clip_grad_norm_(grads, 1.0)
print(f"norm {norm:.4f} -> {np.linalg.norm(grads.flat):.4f}; every entry scaled by "
      f"{grads.flat[0] / before[0]:.4f}, the tiny one too: {grads.flat[3]:.2e}")

# %% [markdown]
# ## 5. On the translation model
#
# `minis2s gradflow` measures the same thing on the real model: for every layer of the
# encoder and the decoder and every step, the norm of ∂L/∂h_t for the loss as training
# computes it, read off the backward pass. Here is a tiny model on a few pairs, for the
# three cells; `docs/bptt.md` shows the command on long sentences and trained models.

# %%
from minis2s.backend import get_backend  # noqa: E402
from minis2s.data.text import preprocess, tokenize  # noqa: E402
from minis2s.gradflow import batch_of_pairs, fresh_model, gradient_flow  # noqa: E402
from minis2s.presets import get_preset  # noqa: E402

lines = ["I lost my keys yesterday at the station.\tJ'ai perdu mes clés hier à la gare.",
         "We will see what the teacher says about it.\tNous verrons ce qu'en dit le prof.",
         "He's calm.\tIl est calme."]
pairs = [tuple(tokenize(preprocess(side)) for side in line.split("\t")) for line in lines]
backend = get_backend("numpy", "float64")
preset = get_preset("zh").with_overrides(min_freq=1)
for cell in ("rnn", "gru", "lstm"):
    params, cfg, sv, tv = fresh_model(preset, cell, pairs, backend)
    flow = gradient_flow(params, cfg, batch_of_pairs(pairs, sv, tv, 12, backend))
    top = flow.encoder[-1]
    print(f"{cell:>4}: encoder top layer ‖∂L/∂h_t‖ at t = 0: {top[0]:.2e}, "
          f"at t = 11: {top[-1]:.2e} (ratio {top[0] / top[-1]:.1e})")

# %% [markdown]
# ## Exercises
#
# Each has a worked solution after it, and a code cell that asserts what the solution
# claims and prints one line, `Exercise N: ...`: run as a script, a wrong solution stops
# it with an `AssertionError`.
# `check_backward(forward, backward, inputs)` is the finite-difference check the project
# runs on itself, one import away: `forward(**inputs) -> (out, cache)`,
# `backward(dout, cache) -> {name: gradient}`.
#
# **Exercise 1.** d2l's from-scratch GRU applies the reset gate *before* the product:
# `n = tanh(x W_inᵀ + b_in + (r ⊙ h_prev) W_hnᵀ + b_hn)`. Derive its step backward and
# check it.

# %%
def sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))


def gru_d2l_forward(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    gi = x @ weight_ih.T + bias_ih
    r = sigmoid(gi[:, :H] + h_prev @ weight_hh[:H].T + bias_hh[:H])
    z = sigmoid(gi[:, H:2 * H] + h_prev @ weight_hh[H:2 * H].T + bias_hh[H:2 * H])
    rh = r * h_prev
    n = np.tanh(gi[:, 2 * H:] + rh @ weight_hh[2 * H:].T + bias_hh[2 * H:])
    h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, weight_ih, weight_hh, r, z, n, rh)


def gru_d2l_backward(dh, cache):
    x, h_prev, weight_ih, weight_hh, r, z, n, rh = cache
    da_n = dh * (1 - z) * (1 - n * n)  # through n = tanh(a_n)
    da_z = dh * (h_prev - n) * z * (1 - z)  # through z
    drh = da_n @ weight_hh[2 * H:]  # a_n = … + (r ⊙ h_prev) W_hnᵀ: the product's input
    da_r = drh * h_prev * r * (1 - r)  # r ⊙ h_prev: through r ...
    dh_prev = dh * z + drh * r  # ... and through h_prev; dh * z is the direct z-path
    dgh = np.concatenate([da_r, da_z, da_n], axis=1)
    dh_prev += dgh[:, :2 * H] @ weight_hh[:2 * H]  # r and z read h_prev through W_hr, W_hz
    dgi = dgh  # the input's share enters each pre-activation with slope 1
    dweight_hh = np.concatenate([dgh[:, :2 * H].T @ h_prev, da_n.T @ rh])  # W_hn reads r ⊙ h
    return {"x": dgi @ weight_ih, "h_prev": dh_prev, "weight_ih": dgi.T @ x,
            "weight_hh": dweight_hh, "bias_ih": dgi.sum(0), "bias_hh": dgh.sum(0)}


inputs = {"x": rng.standard_normal((N, D)), "h_prev": rng.standard_normal((N, H)),
          **params_for(3)}
rows = check_backward(gru_d2l_forward, gru_d2l_backward, inputs, rng)
worst = max(r.error for r in rows)
assert {r.name for r in rows} == set(inputs), "a gradient is missing"
assert worst <= TOLERANCE, "the backward disagrees with finite differences"
print(f"Exercise 1: d2l's GRU passes, worst relative error {worst:.1e} over "
      f"{len(rows)} gradients")

# %% [markdown]
# *Solution.* Against PyTorch's step (`minis2s/ops/reference/gru.py`) three things
# change, all where `W_hn` and `r` meet; `h_prev` still reaches `h` by the same three kinds of
# path (directly through `z ⊙ h_prev`, through the gates' products with `W_hr` and
# `W_hz`, and through `n`), so nothing is added: the path through `n` is replaced.
#
# * through `n`: PyTorch's `a_n = gi_n + r ⊙ (h_prev W_hnᵀ + b_hn)` gives `h_prev` the
#   term `(da_n ⊙ r) W_hn`; d2l's `a_n = gi_n + (r ⊙ h_prev) W_hnᵀ + b_hn` gives
#   `(da_n W_hn) ⊙ r`: the gate now scales after the product with `W_hn`, not before;
# * the reset gate: `da_r = da_n ⊙ (h_prev W_hnᵀ + b_hn) ⊙ r(1 − r)` becomes
#   `da_r = (da_n W_hn) ⊙ h_prev ⊙ r(1 − r)`;
# * the n block of the weights: `dW_hn = (da_n ⊙ r)ᵀ h_prev` becomes
#   `da_nᵀ (r ⊙ h_prev)`, and with `b_hn` now outside `r`, its gradient is `Σ da_n` rather
#   than `Σ da_n ⊙ r`.

# %% [markdown]
# **Exercise 2.** This vanilla-RNN step backward has one planted bug. Find it with
# `check_backward`: which gradients fail, and what do they have in common?

# %%
def rnn_buggy_backward(dh, cache):
    da = dh * (1 - cache.h)  # ← the bug: tanh' is 1 − h², not 1 − h
    p = cache.params
    return {"x": da @ p["weight_ih"], "h_prev": da @ p["weight_hh"],
            "weight_ih": da.T @ cache.x, "weight_hh": da.T @ cache.h_prev,
            "bias_ih": da.sum(0), "bias_hh": da.sum(0)}


def rnn_forward_named(x, h_prev, **p):
    return ref.rnn_step_forward(x, h_prev, p)


inputs = {"x": rng.standard_normal((N, D)), "h_prev": rng.standard_normal((N, H)),
          **params_for(1)}
rows = check_backward(rnn_forward_named, rnn_buggy_backward, inputs, rng)
for r in rows:
    print(f"  {r.name:<10} {r.error:.1e}")

# %% [markdown]
# *Solution.* Every gradient fails, and every one of them is computed from `da`: the bug
# is upstream of all of them, in the one line that makes `da`. tanh's derivative in
# terms of its output is `1 − h²`; the line writes `1 − h`. With that line corrected,
# every gradient passes.


# %%
def rnn_fixed_backward(dh, cache):
    da = dh * (1 - cache.h ** 2)  # tanh' = 1 − h²
    p = cache.params
    return {"x": da @ p["weight_ih"], "h_prev": da @ p["weight_hh"],
            "weight_ih": da.T @ cache.x, "weight_hh": da.T @ cache.h_prev,
            "bias_ih": da.sum(0), "bias_hh": da.sum(0)}


failing = [r.name for r in rows if r.error > TOLERANCE]
assert failing == list(inputs), f"only {failing} fail: the bug is not upstream of all"
fixed = max(r.error for r in check_backward(rnn_forward_named, rnn_fixed_backward, inputs))
assert fixed <= TOLERANCE, "the corrected line does not pass"
print(f"Exercise 2: all {len(failing)} gradients fail; corrected, the worst relative "
      f"error is {fixed:.1e}")

# %% [markdown]
# **Exercise 3.** CS231n's `temporal_softmax_loss` sums the masked losses over time and
# averages over the batch; the seed's loss averages over the (padded) time steps and
# sums over the batch. How do the two losses, and their gradients, compare? Does it
# matter for Adam, and for clipping?

# %%
from minis2s.ops import masked_softmax_ce_backward, masked_softmax_ce_forward  # noqa: E402

logits = rng.standard_normal((N, 6, 10))
labels = rng.integers(0, 10, (N, 6))
valid = np.array([6, 6, 5, 4])  # two sentences padded
seed_loss, cache = masked_softmax_ce_forward(logits, labels, valid, "seq")
mask = np.arange(6)[None, :] < valid[:, None]
logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
cs231n_loss = (nll * mask).sum() / N  # sum over time, mean over the batch
print(f"seed {float(seed_loss):.4f}, CS231n {cs231n_loss:.4f}, ratio "
      f"{cs231n_loss / float(seed_loss):.4f} = T / N = {6 / N}")
seed_grad = masked_softmax_ce_backward(1.0, cache)
cs231n_grad = (np.exp(logp) - np.eye(10)[labels]) * mask[..., None] / N
print("gradients differ by the same factor:", np.allclose(cs231n_grad, seed_grad * 6 / N))

# %% [markdown]
# *Solution.* Each token's weight is `1/T` in the seed's loss and `1/N` in CS231n's, so
# the two losses — and every gradient — differ by the constant factor `T / N`. Adam is
# (but for its ε) invariant to a constant scale of the gradients, so its updates barely
# change. Clipping is not: the seed's clipping compares the gradient's norm with θ = 1,
# and a constant factor moves that norm across the threshold. Plain SGD would need the
# learning rate scaled by `N / T`.

# %%
from minis2s.optim import Adam  # noqa: E402


def as_params(grad):
    """``grad`` as the one parameter of a ParamSet, the layout Adam and clipping take."""
    params = ParamSet({"logits": grad.shape}, np, np.dtype("float64"))
    params["logits"] = grad
    return params


def adam_steps(grad, steps=3):
    """Where Adam takes zero weights in ``steps`` steps of the gradient ``grad``."""
    weights, grads = as_params(np.zeros_like(grad)), as_params(grad)
    adam = Adam(weights, lr=0.005)
    for _ in range(steps):
        adam.step(grads)
    return weights.flat.copy()


ratio = cs231n_loss / float(seed_loss)
assert np.isclose(ratio, 6 / N), "the losses do not differ by T / N"
assert np.allclose(cs231n_grad, seed_grad * 6 / N), "the gradients do not differ by T / N"
by_seed, by_cs231n = adam_steps(seed_grad), adam_steps(cs231n_grad)
adam_change = np.abs(by_cs231n - by_seed).max() / np.abs(by_seed).max()
assert adam_change < 1e-4, "Adam's steps depend on the scale"
clipped = [as_params(grad) for grad in (seed_grad, cs231n_grad)]
norms = [clip_grad_norm_(grads, 1.0) for grads in clipped]
clipped_ratio = np.linalg.norm(clipped[1].flat) / np.linalg.norm(clipped[0].flat)
assert norms[0] < 1.0 < norms[1] and not np.isclose(clipped_ratio, 6 / N), \
    "clipping at 1 treats the two alike"
print(f"Exercise 3: losses and gradients differ by T / N = {ratio:.4f}; Adam's steps by "
      f"{adam_change:.1e} (relative); clipped at 1 (norms {norms[0]:.2f} and "
      f"{norms[1]:.2f}), the gradients differ by {clipped_ratio:.4f}")

# %% [markdown]
# **Exercise 4.** Truncated BPTT: carry the gradient back only `K` steps from wherever
# it enters, and drop it beyond. Write it for the encoder's GRU (the gradient enters at
# the last state) and measure what it changes in `dW_hh`.

# %%
def truncated_backward(step_backward, caches, dstate_last, K):
    """BPTT that carries the gradient back K steps only (none is added from above)."""
    grads, dstate = None, dstate_last
    for back, t in enumerate(reversed(range(len(caches)))):
        if back == K:
            break  # the truncation: what would reach earlier steps is dropped
        _, dstate, gr = step_backward(dstate, caches[t])
        grads = gr if grads is None else {n: grads[n] + gr[n] for n in gr}
    return grads


pg = params_for(3)
_, _, caches = ref.gru_forward(x, h0, pg)
full = truncated_backward(ref.gru_step_backward, caches, dh_last, T)
changes = {}
for K in (1, 5, 15):
    cut = truncated_backward(ref.gru_step_backward, caches, dh_last, K)
    changes[K] = np.linalg.norm(cut["weight_hh"] - full["weight_hh"]) / np.linalg.norm(
        full["weight_hh"])
    print(f"K = {K:>2}: dW_hh differs from full BPTT by {changes[K]:.1e} (relative)")

# %% [markdown]
# *Solution.* The truncated gradient is the full one minus the contributions of the
# steps more than `K` back. Where the carried gradient vanishes anyway (section 2), those
# contributions are tiny and truncation costs almost nothing; where it survives (a GRU
# with `z` near 1), truncation throws away exactly the long-range part the gates were
# there to keep.


# %%
_, _, bptt = ref.gru_backward(np.zeros((T, N, H)), dh_last, caches)  # the project's BPTT
assert all(np.allclose(full[name], bptt[name]) for name in bptt), \
    "carried back all T steps, the truncated loop is not BPTT"
assert changes[1] > changes[5] > changes[15] > 0, \
    "the error does not shrink as K grows"
print("Exercise 4: K = T is full BPTT; dW_hh's change for K = 1, 5, 15: "
      + ", ".join(f"{changes[K]:.1e}" for K in changes))
