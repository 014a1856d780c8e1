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
# # Exercises: write the backward passes yourself
#
# The eight exercises of `docs/exercises.md`, one after the other. For each one: what to
# write, the function as the stub gives it, and a cell that grades it with the project's
# grader, `check(NAME, function)`. Replace the `raise NotImplementedError` with your
# answer, run the function's cell, then the check under it. The report says which output
# is wrong, how and where (the gate block, the time step, the padded positions), and which
# outputs are right; it never shows the right values. Until a function is written its
# check says `not written yet`, as the outputs saved in this notebook show.
#
# The forwards are the project's own (`minis2s/ops/reference/`,
# `minis2s/ops/softmax_ce.py`, `minis2s/ops/additive_attention.py`), so an answer that
# passes is the backward minis2s trains with, written again. The worked solutions are in
# `minis2s/exercises/solutions/`: read them after a pass, or when stuck for good. An answer
# that never returns is stopped by the kernel's interrupt button, or by a time limit:
# `check(NAME, function, timeout=10)`. The same exercises as files, for an editor:
# `minis2s exercise start DIR`.
#
# Shapes use the project's letters: `N` batch rows, `D` input features, `H` hidden units,
# `T` steps, `V` vocabulary, `S` source positions, `A` attention units. This notebook is
# made from `docs/exercises_notebook.py` by `python docs/make_notebooks.py`; edit that
# file, not the `.ipynb`.

# %%
from minis2s.exercises import check

# %% [markdown]
# ## 1. `rnn_step`: one step of a vanilla RNN, backward
#
# The forward is the project's own, `minis2s.ops.reference.rnn.rnn_step_forward(x,
# h_prev, params)`, with PyTorch's layout of the weights (`nn.RNN`):
#
#     a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh     (N, H)
#     h = tanh(a)                                   (N, H)
#
# `params` holds `"weight_ih"` (H, D), `"weight_hh"` (H, H), `"bias_ih"` (H,) and
# `"bias_hh"` (H,). The forward returns `h` and a cache, the named tuple
# `(x, h_prev, h, params)`: the step's input `x` (N, D), the state it started from
# `h_prev` (N, H), the state it made `h` (N, H), and the parameters.
#
# **Write** `rnn_step_backward(dh, cache)`. `dh` (N, H) is the whole gradient of the loss
# with respect to this step's `h`. Return `(dx, dh_prev, grads)`: `dx` (N, D), `dh_prev`
# (N, H), and `grads`, a dict of the four parameters' gradients under the same names and
# shapes as `params`.

# %%
import numpy as np


def rnn_step_backward(dh, cache):
    """dh (N, H) -> (dx (N, D), dh_prev (N, H), grads)."""
    x, h_prev, h, params = cache
    raise NotImplementedError  # write the backward here

# %%
report = check("rnn_step", rnn_step_backward)

# %% [markdown]
# ## 2. `bptt`: backprop through time over one layer
#
# Time comes first, as in the project's plain cells. The forward is the project's own,
# `minis2s.ops.reference.rnn.rnn_forward(x, h0, params)`: from `h0` (N, H) it runs one
# step per input `x[t]` (`x` is (T, N, D)),
#
#     h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh),    t = 0 … T−1,
#
# and returns `hs` (T, N, H), every step's `h`; the final state `h_{T−1}`; and `caches`, a
# list of T step caches, `caches[t]` being what `rnn_step_forward` kept at step t.
#
# **Write** `rnn_backward(dhs, dh_last, caches)`. `dhs` (T, N, H) holds the gradient that
# reaches each `h_t` from above (the layer or the output that reads it); `dh_last` (N, H)
# is the gradient of the final state (a decoder reads the encoder's, for instance). Return
# `(dx, dh0, grads)`: `dx` (T, N, D), `dh0` (N, H), the gradient of the initial state, and
# `grads`, a dict of the gradients of `"weight_ih"` (H, D), `"weight_hh"` (H, H),
# `"bias_ih"` (H,) and `"bias_hh"` (H,).
#
# The step is given: `step_backward(dh, cache) -> (dx_t, dh_prev, step_grads)` takes the
# whole gradient of one step's `h` and returns the gradient of its input, of the state it
# started from, and of the weights as that one step used them. It is the project's
# `rnn_step_backward`, imported under another name than the stub's so that it does not
# replace your answer to exercise 1 in this notebook. The exercise is the loop around it;
# the grader says at which time steps `dx` goes wrong.

# %%
import numpy as np

from minis2s.ops.reference.rnn import rnn_step_backward as step_backward


def rnn_backward(dhs, dh_last, caches):
    """dhs (T, N, H), dh_last (N, H) -> (dx (T, N, D), dh0 (N, H), grads)."""
    T = len(caches)
    raise NotImplementedError  # write the loop here, calling step_backward

# %%
report = check("bptt", rnn_backward)

# %% [markdown]
# ## 3. `gru_step`: one step of a GRU, backward
#
# The weights have PyTorch's layout (`nn.GRU`): three gate blocks of H rows each, stacked
# in the order r, z, n, so `weight_ih` is (3H, D) with rows `0:H` for r, `H:2H` for z and
# `2H:3H` for n; `weight_hh` is (3H, H), `bias_ih` and `bias_hh` (3H,). The forward is
# the project's own, `minis2s.ops.reference.gru.gru_step_forward(x, h_prev, params)`:
#
#     gi = x W_ihᵀ + b_ih                    (N, 3H), blocks gi_r | gi_z | gi_n
#     gh = h_prev W_hhᵀ + b_hh               (N, 3H), blocks gh_r | gh_z | gh_n
#     r  = σ(gi_r + gh_r)                    reset gate
#     z  = σ(gi_z + gh_z)                    update gate
#     n  = tanh(gi_n + r ⊙ gh_n)             candidate state
#     h  = (1 − z) ⊙ n + z ⊙ h_prev          new state
#
# The reset gate scales the state's share `gh_n` after the product (PyTorch's GRU, and the
# seed's); d2l's from-scratch GRU applies it before, which is another function. The cache
# is the named tuple `(x, h_prev, r, z, n, ghn, params)`: the input (N, D), the state it
# started from (N, H), the three gates' values (N, H) each, `ghn` = `gh_n` (N, H), and the
# parameters.
#
# **Write** `gru_step_backward(dh, cache)`. `dh` (N, H) is the whole gradient of this
# step's `h`. Return `(dx, dh_prev, grads)`: `dx` (N, D), `dh_prev` (N, H), and `grads`, a
# dict of the four parameters' gradients, shaped as the parameters, gate blocks in the
# same order. The grader says which gradients are off and in which gate block.

# %%
import numpy as np


def gru_step_backward(dh, cache):
    """dh (N, H) -> (dx (N, D), dh_prev (N, H), grads)."""
    x, h_prev, r, z, n, ghn, params = cache
    raise NotImplementedError  # write the backward here

# %%
report = check("gru_step", gru_step_backward)

# %% [markdown]
# ## 4. `lstm_step`: one step of an LSTM, backward
#
# The weights have PyTorch's layout (`nn.LSTM`): four gate blocks of H rows each, in the
# order i, f, g, o, so `weight_ih` is (4H, D) with rows `0:H` for i, `H:2H` for f, `2H:3H`
# for g and `3H:4H` for o; `weight_hh` is (4H, H), `bias_ih` and `bias_hh` (4H,). The
# forward is the project's own, `minis2s.ops.reference.lstm.lstm_step_forward(x,
# (h_prev, c_prev), params)`:
#
#     a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh       (N, 4H), blocks a_i | a_f | a_g | a_o
#     i = σ(a_i)        input gate
#     f = σ(a_f)        forget gate
#     g = tanh(a_g)     candidate cell
#     o = σ(a_o)        output gate
#     c = f ⊙ c_prev + i ⊙ g                          memory cell
#     h = o ⊙ tanh(c)                                 hidden state
#
# The state is the pair `(h, c)`. The cache is the named tuple `(x, h_prev, c_prev, i, f,
# g, o, tanh_c, params)`: the input (N, D), the state it started from, the four gates'
# values and `tanh(c)`, (N, H) each, and the parameters.
#
# **Write** `lstm_step_backward(dstate, cache)`. `dstate` is the pair `(dh, dc)`, the
# whole gradients of this step's `h` and `c` (`dc` comes from the next step, which reads
# `c`). Return `(dx, (dh_prev, dc_prev), grads)`: `dx` (N, D), the gradients of the state
# the step started from, and `grads`, a dict of the four parameters' gradients, shaped as
# the parameters.

# %%
import numpy as np


def lstm_step_backward(dstate, cache):
    """dstate (dh, dc), each (N, H) -> (dx (N, D), (dh_prev, dc_prev), grads)."""
    dh, dc = dstate
    x, h_prev, c_prev, i, f, g, o, tanh_c, params = cache
    raise NotImplementedError  # write the backward here

# %%
report = check("lstm_step", lstm_step_backward)

# %% [markdown]
# ## 5. `softmax_ce`: masked softmax cross-entropy, backward
#
# N sentences, T target steps (padded), V target words. The forward is the project's own,
# `minis2s.ops.softmax_ce.masked_softmax_ce_forward(logits, labels, valid_len,
# reduction)`: `logits` (N, T, V), `labels` (N, T) token ids, and `valid_len` (N,), the
# number of real tokens of each sentence; positions `t >= valid_len[n]` are padding. It
# works on rows `m = n·T + t` of the logits reshaped to (N·T, V):
#
#     loss = Σ_m weights[m] · (−log softmax(logits[m])[labels[m]])
#
# `weights[m]` is 0 for a padded position; for a real one it is the reduction's factor,
# 1/T under `"seq"` (the seed's: each sentence's sum divided by T) or 1/(the number of
# real tokens) under `"token"`. Padding adds exactly 0 to the loss, and must get exactly 0
# gradient (not merely a small one).
#
# The cache is a named tuple `(rows, shape)`: `shape` is (N, T, V), and `rows` holds, for
# the N·T rows, `exp` (N·T, V) = exp(logits − each row's max), `sumexp` (N·T,) the sum of
# each row of `exp`, `labels` (N·T,) and `weights` (N·T,). (It also holds a flag,
# `consumed`, which this exercise does not need.)
#
# **Write** `masked_softmax_ce_backward(dloss, cache)`. `dloss` is the upstream gradient
# of the loss (a 0-d array, not always 1). Return `dlogits` (N, T, V).

# %%
import numpy as np


def masked_softmax_ce_backward(dloss, cache):
    """dloss (0-d) -> dlogits (N, T, V)."""
    rows, shape = cache
    raise NotImplementedError  # write the backward here

# %%
report = check("softmax_ce", masked_softmax_ce_backward)

# %% [markdown]
# ## 6. `clip`: gradient clipping by global norm
#
# After every backward pass the seed calls `grad_clipping(net, 1)`: the norm of all the
# parameters' gradients taken together,
#
#     norm = sqrt(Σ over every array g, Σ over its entries, g²),
#
# and, if it exceeds `max_norm`, every gradient is multiplied by the one factor
# `max_norm / norm`. The direction of the whole gradient is kept and its length capped; a
# gradient whose norm is at most `max_norm` is left as it is.
# (`minis2s.optim.clip_grad_norm_` does the same on one flat buffer.)
#
# **Write** `clip_grad_norm(grads, max_norm)`. `grads` maps names to NumPy arrays of any
# shapes. Change the arrays themselves, in place: the caller holds them (in the project
# they are views of one buffer), so putting new arrays into the dict is not enough. Return
# the global norm before clipping, a float.

# %%
import math


def clip_grad_norm(grads, max_norm):
    """Scale ``grads`` in place to a global norm of at most ``max_norm``; return the norm
    before clipping."""
    raise NotImplementedError  # write it here

# %%
report = check("clip", clip_grad_norm)

# %% [markdown]
# ## 7. `attention`: additive (Bahdanau) attention, backward
#
# N batch rows, S source positions (keys), `Dq` query features, A attention units, `Dv`
# value features. The forward is the project's own,
# `minis2s.ops.additive_attention.additive_attention_forward(query, keys_proj, values,
# valid, W_q, w_v, mask)`, as d2l's `AdditiveAttention` without biases. `keys_proj`
# (N, S, A) is the keys' projection `k W_kᵀ`, made once per sentence by the caller (its
# gradient goes back to the caller):
#
#     f[n, s]     = tanh(q[n] W_qᵀ + keys_proj[n, s])          (N, S, A)
#     score[n, s] = w_v · f[n, s]                              (N, S)
#     alpha[n, :] = softmax of score[n, :] over the valid positions s; exactly 0 at the
#                   others (valid (N, S) is True where a key may be attended)
#     context[n]  = Σ_s alpha[n, s] · mask[n, s] · v[n, s]    (N, Dv)
#
# `mask` (N, S) is dropout on the attention weights, or `None` (then read it as all ones).
# `W_q` is (A, Dq) and `w_v` (1, A), PyTorch's layout. The cache is the named tuple
# `(query, values, valid, features, weights, mask, w_q, w_v)`: `query` (N, Dq), `values`
# (N, S, Dv), `valid` (N, S), `features` = f (N, S, A), `weights` = alpha (N, S) before
# dropout, `mask`, `W_q` and `w_v`.
#
# **Write** `additive_attention_backward(dcontext, cache)`. `dcontext` (N, Dv) is the
# gradient of the context. Return a dict of gradients with the keys `"query"` (N, Dq),
# `"keys_proj"` (N, S, A), `"values"` (N, S, Dv), `"W_q"` (A, Dq) and `"w_v"` (1, A). A
# key that may not be attended must get exactly 0 gradient, in `keys_proj` and in
# `values`.

# %%
import numpy as np


def additive_attention_backward(dcontext, cache):
    """dcontext (N, Dv) -> {"query", "keys_proj", "values", "W_q", "w_v"}."""
    query, values, valid, f, alpha, mask, w_q, w_v = cache
    raise NotImplementedError  # write the backward here

# %%
report = check("attention", additive_attention_backward)

# %% [markdown]
# ## 8. `beam_step`: one step of beam search
#
# minis2s's beam search (`minis2s/decode/beam.py`) keeps, for every sentence of the
# batch, its live hypotheses: partial translations, each with its log-probability so far.
# At every step the decoder gives each live hypothesis the log-probabilities of every
# next token; each (hypothesis, token) pair is an extension, whose log-probability is the
# hypothesis's so far plus the token's. Each sentence keeps its K best extensions (all of
# them, if it has fewer than K), ranked against each other whichever hypothesis they
# extend. A kept extension whose token is `<eos>` is finished: it leaves the beam (the
# beam of that sentence narrows). The others stay live for the next step.
#
# The live hypotheses of all sentences are the B rows of one batch, grouped by sentence:
#
#     logp       (B,)    each row's log-probability so far
#     log_probs  (B, V)  the log-probability of each next token, for each row
#     sent       (B,)    the sentence of each row (0, 0, 0, 1, 2, 2, ...)
#     K                  the beam size
#     eos                the token id of <eos>
#
# **Write** `beam_step(logp, log_probs, sent, K, eos)`. Return `(live, finished)`, two
# lists of `(row, token, log_prob)` triples: the kept extensions, those ending in `<eos>`
# in `finished` and the others in `live`; `row` is the row extended, `token` the new
# token, `log_prob` the extension's log-probability. Any order will do. The grader
# compares the result with an exact answer (no finite differences here).

# %%
def beam_step(logp, log_probs, sent, K, eos):
    """-> (live, finished), each a list of (row, token, log_prob)."""
    B, V = log_probs.shape
    raise NotImplementedError  # write it here

# %%
report = check("beam_step", beam_step)
