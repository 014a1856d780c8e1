"""The exercises: each one's name, the function a learner writes, and how it is graded.

The backward passes are graded by :func:`minis2s.gradcheck.check_backward` (float64, a
random upstream gradient) on the project's own forwards, and compared with the shipped
solution where finite differences cannot tell (a gradient that must be exactly zero);
gradient clipping and a step of beam search against the solution as an exact oracle.
Each grader turns what it finds into sentences (:mod:`.feedback`) that name the output
that is wrong, how and where, and the ones that are right.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..gradcheck import TOLERANCE, check_backward, rel_error
from ..ops.additive_attention import additive_attention_forward
from ..ops.reference.gru import gru_step_forward
from ..ops.reference.lstm import lstm_step_forward
from ..ops.reference.rnn import rnn_forward, rnn_step_backward, rnn_step_forward
from ..ops.softmax_ce import masked_softmax_ce_forward
from ..params import ParamSet
from .feedback import (
    GRU_BLOCKS,
    LSTM_BLOCKS,
    Finding,
    check_form,
    join,
    judge,
    number,
    same,
)
from .grader import ExerciseError, Stop

CELL_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
FD_WORDS = "finite differences in float64, under a random upstream gradient"


@dataclass(frozen=True)
class Exercise:
    name: str
    function: str  # the function the learner writes
    summary: str  # one line, for ``minis2s exercise list``
    grade: Callable  # (learner, solution) -> (passed, lines)
    cases: Callable | None = None  # () -> the GradCases of a backward, in order


def described(value) -> str:
    """What a learner returned, in a few words (never its values)."""
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} value{'s' if len(value) != 1 else ''}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


class Missing:
    """A gradient the learner's result lacks, and why."""

    def __init__(self, why: str):
        self.why = why


# ------------------------------------------------------------------ gradient cases


@dataclass
class GradCase:
    """One checked call of a backward: the forward and its inputs, how the backward is
    called and how its result is read, and which input each returned gradient is of."""

    about: str  # the case in words: shapes, masks
    forward: Callable  # forward(**inputs) -> (out, cache)
    inputs: dict
    call: Callable  # call(fn, dout, cache) -> the backward's result
    unpack: Callable  # unpack(result) -> {label: value}; raises Stop if malformed
    wrt: dict  # label -> the input it is the gradient of
    gated: dict = field(default_factory=dict)  # label -> gate blocks of its rows
    timed: tuple = ()  # labels whose first axis is time
    seed: int = 0


@dataclass
class Seen:
    """What one case gave: the learner's values, the solution's, and what went in."""

    got: dict
    want: dict
    dout: object
    cache: object
    findings: dict


def run_case(case: GradCase, learner, solution) -> Seen:
    seen = {}

    def backward(dout, cache):
        want = case.unpack(case.call(solution, copy.deepcopy(dout), copy.deepcopy(cache)))
        got = case.unpack(case.call(learner, dout, cache))
        seen.update(got=got, want=want, dout=dout, cache=cache)
        usable = {}
        for label, value in got.items():
            if isinstance(value, Missing):
                continue
            a = check_form(label, value, np.asarray(want[label], dtype=np.float64))
            if not isinstance(a, Finding):
                usable[case.wrt[label]] = a
        return usable

    rows = check_backward(case.forward, backward, case.inputs,
                          rng=np.random.default_rng(case.seed))
    fd = {row.name: row.error for row in rows}
    findings = {}
    for label, want in seen["want"].items():
        value = seen["got"][label]
        if isinstance(value, Missing):
            findings[label] = Finding(label, False, f"{label} is missing: {value.why}")
            continue
        findings[label] = judge(label, value, want, fd.get(case.wrt[label]),
                                gates=case.gated.get(label), steps=label in case.timed)
    return Seen(seen["got"], seen["want"], seen["dout"], seen["cache"], findings)


def grade_cases(cases: list[GradCase], learner, solution, extra=None, advise=None):
    """Run the cases in order; the report is the first failing case's (or the pass).

    ``extra(case, seen)`` adjusts the findings (checks finite differences cannot make);
    ``advise(case, seen)`` gives hints from the pattern of what is wrong."""
    worst = 0.0
    for number_, case in enumerate(cases):
        seen = run_case(case, learner, solution)
        if extra is not None:
            extra(case, seen)
        findings = seen.findings
        wrong = [f for f in findings.values() if not f.ok]
        if not wrong:
            worst = max([worst, *(f.error for f in findings.values())])
            continue
        lines = []
        if number_:
            passing = "case passes" if number_ == 1 else f"{number_} cases pass"
            lines.append(f"the first {passing}; this one does not: {case.about}.")
        lines += [_sentence(f.text) for f in wrong]
        right = [f.label for f in findings.values() if f.ok]
        if right:
            lines.append(f"right: {join(right)}.")
        if advise is not None:
            lines += [f"hint: {_sentence(h)}" for h in advise(case, seen)]
        if not number_:
            lines.append(f"(checked with {case.about}, against {FD_WORDS})")
        return False, lines
    labels = list(cases[0].wrt)
    verb = "agrees" if len(labels) == 1 else "agree"
    return True, [f"{join(labels)} {verb} with {FD_WORDS} (largest relative error "
                  f"{worst:.1e}), in {len(cases)} case{'s' if len(cases) > 1 else ''}."]


def malformed(text: str) -> Stop:
    """Grading stops here: the learner's result is not of the form asked for."""
    return Stop([_sentence(text)])


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def wrong_set(seen: Seen) -> set[str]:
    return {label for label, f in seen.findings.items() if not f.ok}


# ------------------------------------------------------------------ recurrent cells


def grads_label(name: str) -> str:
    return f"grads['{name}']"


def unpack_grads(grads, function: str) -> dict:
    """The four parameter gradients of a cell, by label (missing ones marked)."""
    if not isinstance(grads, Mapping):
        raise malformed(f"the grads {function} returns must be a dict of the four parameters' "
                        f"gradients ({join(CELL_PARAMS)}), not {described(grads)}")
    extra = sorted(str(k) for k in grads if k not in CELL_PARAMS)
    if extra:
        raise malformed(f"grads has key{'s' if len(extra) > 1 else ''} {join(map(repr, extra))}, "
                        f"which {'are' if len(extra) > 1 else 'is'} no parameter of the cell: its "
                        f"keys are {join(CELL_PARAMS)}")
    return {grads_label(k): grads[k] if k in grads else Missing(f"grads has no key '{k}'")
            for k in CELL_PARAMS}


def cell_inputs(rng, N: int, D: int, H: int, G: int, paired: bool = False) -> dict:
    inputs = {"x": rng.standard_normal((N, D)), "h_prev": 0.8 * rng.standard_normal((N, H))}
    if paired:
        inputs["c_prev"] = rng.standard_normal((N, H))
    inputs["weight_ih"] = 0.5 * rng.standard_normal((G * H, D))
    inputs["weight_hh"] = 0.5 * rng.standard_normal((G * H, H))
    inputs["bias_ih"] = 0.3 * rng.standard_normal(G * H)
    inputs["bias_hh"] = 0.3 * rng.standard_normal(G * H)
    return inputs


def _params(kw) -> dict:
    return {k: kw[k] for k in CELL_PARAMS}


def step_cases(function: str, step_forward, G: int, gates, paired: bool = False):
    """Two cases of a cell's step backward, (dx, dh_prev[, dc_prev], grads) checked."""
    shape = "(dx, (dh_prev, dc_prev), grads)" if paired else "(dx, dh_prev, grads)"

    def unpack(result):
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise malformed(f"{function} returned {described(result)}; it returns three things, "
                            f"{shape}")
        dx, dstate, grads = result
        out = {"dx": dx}
        if paired:
            if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
                raise malformed(f"the second thing {function} returns is the pair (dh_prev, "
                                f"dc_prev), not {described(dstate)}")
            out["dh_prev"], out["dc_prev"] = dstate
        else:
            out["dh_prev"] = dstate
        out.update(unpack_grads(grads, function))
        return out

    if paired:
        def forward(x, h_prev, c_prev, **kw):
            return step_forward(x, (h_prev, c_prev), _params(kw))
    else:
        def forward(x, h_prev, **kw):
            return step_forward(x, h_prev, _params(kw))

    wrt = {"dx": "x", "dh_prev": "h_prev", **({"dc_prev": "c_prev"} if paired else {}),
           **{grads_label(k): k for k in CELL_PARAMS}}
    gated = {grads_label(k): gates for k in CELL_PARAMS} if gates else {}
    cases = []
    for seed, (N, D, H) in enumerate([(3, 4, 5), (2, 3, 2)]):
        rng = np.random.default_rng(100 + seed)
        cases.append(GradCase(f"N = {N}, D = {D}, H = {H}", forward,
                              cell_inputs(rng, N, D, H, G, paired),
                              lambda fn, dout, cache: fn(dout, cache), unpack, wrt, gated,
                              seed=seed))
    return cases


def rnn_step_advice(case, seen):
    wrong = wrong_set(seen)
    biases = {grads_label("bias_ih"), grads_label("bias_hh")}
    weights = {grads_label("weight_ih"), grads_label("weight_hh")}
    if wrong == set(seen.findings):
        return ["every gradient is off, and every one is made from da, the gradient of the "
                "pre-activation a: check da = dh ⊙ tanh'(a) first, with tanh'(a) = 1 − h²"]
    if wrong <= biases:
        return ["a bias is added to every row of a, so its gradient is da summed over the "
                "batch rows"]
    if wrong <= weights:
        return ["a weight's gradient gathers every row of the batch: daᵀ times what the "
                "weight multiplies (x for weight_ih, h_prev for weight_hh)"]
    if wrong <= {"dx", "dh_prev"}:
        return ["a = x W_ihᵀ + h_prev W_hhᵀ + …: x and h_prev get da times the weight each "
                "was multiplied by"]
    return []


def _blocks(seen, label) -> list[str]:
    return seen.findings[label].blocks


def _gru_variant(dh, cache, reset_on: str):
    """A GRU step backward whose reset gate scales ``reset_on``: "gh" (the state's share,
    right), "gi" (the input's share) or "none" (neither), for recognising a mistake."""
    x, h_prev, r, z, n, gh_n, params = cache
    da_n = dh * (1 - z) * (1 - n * n)
    da_r = da_n * gh_n * r * (1 - r)
    da_z = dh * (h_prev - n) * z * (1 - z)
    dgi = np.concatenate([da_r, da_z, da_n * r if reset_on == "gi" else da_n], axis=1)
    dgh = np.concatenate([da_r, da_z, da_n * r if reset_on == "gh" else da_n], axis=1)
    return {"dx": dgi @ params["weight_ih"],
            "dh_prev": dh * z + dgh @ params["weight_hh"],
            grads_label("weight_ih"): dgi.T @ x, grads_label("weight_hh"): dgh.T @ h_prev,
            grads_label("bias_ih"): dgi.sum(axis=0), grads_label("bias_hh"): dgh.sum(axis=0)}


def gru_step_advice(case, seen):
    wrong = wrong_set(seen)
    params = [grads_label(k) for k in CELL_PARAMS]
    for reset_on, hint in [
            ("gi", "the reset gate scales the wrong share: in a_n = gi_n + r ⊙ gh_n it "
                   "multiplies the state's share gh_n = h_prev W_hnᵀ + b_hn, not the input's"),
            ("none", "the reset gate is missing from the state's share: in a_n = gi_n + r ⊙ "
                     "gh_n, gh_n = h_prev W_hnᵀ + b_hn is multiplied by r")]:
        variant = _gru_variant(seen.dout, seen.cache, reset_on)
        if all(same(seen.got[label], variant[label]) for label in seen.want):
            return [hint]
    if wrong == {"dh_prev"}:
        return ["only dh_prev is off: h_prev reaches h twice, directly (h = (1 − z) ⊙ n + "
                "z ⊙ h_prev) and through gh = h_prev W_hhᵀ + b_hh; are both paths added?"]
    b_ih, b_hh = grads_label("bias_ih"), grads_label("bias_hh")
    if b_ih not in wrong and b_hh in wrong and _blocks(seen, b_hh) == ["n"]:
        return ["bias_ih's n block is right but bias_hh's is not: in a_n = gi_n + r ⊙ gh_n "
                "the reset gate scales the state's share gh_n = h_prev W_hnᵀ + b_hn only"]
    blocks = {b for label in params if label in wrong for b in _blocks(seen, label)}
    if blocks == {"r"}:
        return ["only the reset gate's block is off: r enters through a_n = gi_n + r ⊙ gh_n, "
                "and σ'(a_r) = r (1 − r)"]
    if blocks == {"z"}:
        return ["only the update gate's block is off: h = (1 − z) ⊙ n + z ⊙ h_prev, so "
                "∂h/∂z = h_prev − n, and σ'(a_z) = z (1 − z)"]
    if blocks == {"n"} and b_ih in wrong:
        return ["the candidate's block is off in both shares: h depends on n through 1 − z, "
                "and n = tanh(a_n) has tanh'(a_n) = 1 − n²"]
    return []


def lstm_step_advice(case, seen):
    wrong = wrong_set(seen)
    params = [grads_label(k) for k in CELL_PARAMS]
    if wrong == {"dc_prev"}:
        return ["only dc_prev is off: c = f ⊙ c_prev + i ⊙ g; what multiplies c_prev?"]
    if wrong == {"dh_prev"}:
        return ["only dh_prev is off: h_prev enters every gate's pre-activation through "
                "h_prev W_hhᵀ"]
    blocks = {b for label in params if label in wrong for b in _blocks(seen, label)}
    if "dc_prev" in wrong and blocks == {"i", "f", "g"}:
        return ["dc_prev and the i, f and g blocks are off, the o block right: the gradient "
                "of c gathers two terms, dc from the next step and dh through h = o ⊙ tanh(c), "
                "with tanh'(c) = 1 − tanh(c)²"]
    hints = {"i": "the input gate's block is off: c = f ⊙ c_prev + i ⊙ g gives di = dc ⊙ g, "
                  "and σ'(a_i) = i (1 − i)",
             "f": "the forget gate's block is off: df = dc ⊙ c_prev, and σ'(a_f) = f (1 − f)",
             "g": "the candidate cell's block is off: dg = dc ⊙ i, and g = tanh(a_g) has "
                  "tanh'(a_g) = 1 − g²",
             "o": "the output gate's block is off: h = o ⊙ tanh(c) gives do = dh ⊙ tanh(c), "
                  "and σ'(a_o) = o (1 − o)"}
    if len(blocks) == 1:
        (b,) = blocks
        return [f"only {hints[b]}"]
    return []


# ------------------------------------------------------------------ BPTT


def bptt_cases(function: str):
    def unpack(result):
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise malformed(f"{function} returned {described(result)}; it returns three things, "
                            "(dx, dh0, grads)")
        dx, dh0, grads = result
        return {"dx": dx, "dh0": dh0, **unpack_grads(grads, function)}

    def forward(x, h0, **kw):
        hs, h_last, caches = rnn_forward(x, h0, _params(kw))
        return (hs, h_last), caches

    def call(fn, dout, caches):
        dhs, dh_last = dout
        return fn(dhs, dh_last, caches)

    wrt = {"dx": "x", "dh0": "h0", **{grads_label(k): k for k in CELL_PARAMS}}
    cases = []
    for seed, (T, N, D, H) in enumerate([(5, 2, 3, 4), (1, 2, 3, 2)]):
        rng = np.random.default_rng(200 + seed)
        inputs = cell_inputs(rng, N, D, H, 1)
        inputs = {"x": rng.standard_normal((T, N, D)), "h0": inputs.pop("h_prev"),
                  **{k: v for k, v in inputs.items() if k != "x"}}
        cases.append(GradCase(f"T = {T}, N = {N}, D = {D}, H = {H}", forward, inputs, call,
                              unpack, wrt, timed=("dx",), seed=seed))
    return cases


def _bptt_loop(dhs, dh_last, caches, *, start=True, above=True, carry=True,
               keep_last=False, backwards=True, weights="all"):
    """Backprop through time with one thing changed, for recognising a learner's mistake:
    no dh_last (``start``), no dhs[t] (``above``), no carried gradient (``carry``; with
    ``keep_last`` dh_last is added at every step instead), the wrong order, or the
    weights' gradients of one step ("first" or "last" processed)."""
    T = len(caches)
    order = range(T - 1, -1, -1) if backwards else range(T)
    carried = dh_last if start else np.zeros_like(dh_last)
    dx, grads = [None] * T, None
    for t in order:
        dh = (carried if carry or keep_last or t == order[0] else 0) + (dhs[t] if above else 0)
        dx[t], dh_prev, g = rnn_step_backward(dh, caches[t])
        if carry:
            carried = dh_prev
        if grads is None or weights == "last":
            grads = g
        elif weights == "all":
            grads = {k: grads[k] + g[k] for k in g}
    return np.stack(dx), carried if carry else dh_prev, grads


def bptt_advice(case, seen):
    dhs, dh_last = seen.dout
    caches = seen.cache
    labels_state = ("dx",)  # the pattern over the steps tells these mistakes apart
    variants = [
        (dict(carry=False), labels_state,
         "is the gradient from the next step added? h_t is also read by step t + 1, "
         "whose step backward returns dh_prev, the gradient of h_t"),
        (dict(carry=False, start=False), labels_state,
         "neither the gradient from the next step nor dh_last is added: h_t is also read by "
         "step t + 1, whose step backward returns dh_prev, the gradient of h_t; and the last "
         "step's h is the final state, whose gradient is dh_last"),
        (dict(carry=False, keep_last=True), labels_state,
         "is the gradient from the next step added? dh_last belongs to the last step only; "
         "at step t the carried gradient is the dh_prev that step t + 1 returned"),
        (dict(start=False), labels_state,
         "dh_last, the gradient of the final state, never enters: the carried gradient "
         "starts from it at the last step"),
        (dict(above=False), labels_state,
         "dhs[t], the gradient from above, is not added at each step"),
        (dict(backwards=False), labels_state,
         "the loop runs forward in time: backprop through time starts at the last step "
         "and goes back to the first"),
        (dict(weights="first"), tuple(grads_label(k) for k in CELL_PARAMS),
         "the weights' gradients are one step's share: the same weights are used at every "
         "step, so their gradients add up over the steps"),
        (dict(weights="last"), tuple(grads_label(k) for k in CELL_PARAMS),
         "the weights' gradients are one step's share: the same weights are used at every "
         "step, so their gradients add up over the steps"),
    ]
    hints = []
    for options, labels, hint in variants:
        dx, dh0, grads = _bptt_loop(dhs, dh_last, caches, **options)
        variant = {"dx": dx, "dh0": dh0, **{grads_label(k): grads[k] for k in CELL_PARAMS}}
        if all(same(variant[label], seen.want[label]) for label in labels):
            continue  # this mistake changes nothing here (a single step)
        if all(same(seen.got[label], variant[label]) for label in labels) and hint not in hints:
            hints.append(hint)
    steps = seen.findings["dx"].steps
    T = len(caches)
    if not hints and steps and T - 1 not in steps:
        hints.append("the last step is right: what reaches the earlier steps besides dhs[t]?")
    return hints


# ------------------------------------------------------------------ softmax cross-entropy


def softmax_cases(function: str):
    def unpack(result):
        return {"dlogits": result}

    cases = []
    for seed, (valid, reduction) in enumerate([([4, 2, 0], "seq"), ([3, 1, 4], "token")]):
        rng = np.random.default_rng(300 + seed)
        N, T, V = len(valid), 4, 5
        inputs = {"logits": rng.standard_normal((N, T, V)),
                  "labels": rng.integers(0, V, (N, T)), "valid_len": np.array(valid),
                  "reduction": reduction}
        cases.append(GradCase(
            f"N = {N}, T = {T}, V = {V}, valid lengths {', '.join(map(str, valid))}, "
            f"reduction '{reduction}'", masked_softmax_ce_forward, inputs,
            lambda fn, dout, cache: fn(dout, cache), unpack, {"dlogits": "logits"}, seed=seed))
    return cases


def softmax_extra(case, seen):
    """Padded positions must get exactly zero; and where the error lies."""
    got, want = seen.got["dlogits"], np.asarray(seen.want["dlogits"])
    a = check_form("dlogits", got, want)
    if isinstance(a, Finding):
        return
    N, T, _ = want.shape
    padded = np.arange(T)[None, :] >= case.inputs["valid_len"][:, None]  # (N, T)
    leaking = int(np.count_nonzero(np.any(a[padded] != 0, axis=-1)))
    valid_error = rel_error(a[~padded], want[~padded])
    f = seen.findings["dlogits"]
    if leaking:
        leak = (f"the padded positions receive gradient ({leaking} of {int(padded.sum())} "
                "padded positions); padding must get exactly 0")
        if valid_error <= TOLERANCE:
            f.ok, f.text = False, f"dlogits is right at the valid positions, but {leak}"
        else:
            f.ok, f.text = False, (f"dlogits is off at the valid positions (relative error "
                                   f"{number(valid_error)}), and {leak}")
        return
    if f.ok:
        return
    labels = case.inputs["labels"]
    onehot = np.zeros_like(want, dtype=bool)
    np.put_along_axis(onehot, labels[..., None], True, axis=-1)
    at_labels = rel_error(a[onehot & ~padded[..., None]], want[onehot & ~padded[..., None]])
    elsewhere = rel_error(a[~onehot & ~padded[..., None]], want[~onehot & ~padded[..., None]])
    if at_labels > TOLERANCE and elsewhere <= TOLERANCE:
        f.text += ": the error is only at the labels' entries (the one-hot term)"
    elif elsewhere > TOLERANCE and at_labels <= TOLERANCE:
        f.text += ": the error is only away from the labels' entries (the softmax term)"


def softmax_advice(case, seen):
    dloss = float(np.asarray(seen.dout))
    want = np.asarray(seen.want["dlogits"])
    if abs(dloss) > 1e-12 and same(seen.got["dlogits"], want / dloss):
        return ["dloss, the upstream gradient of the loss, is not multiplied in"]
    hints = []
    if not seen.findings["dlogits"].ok and "padded" not in seen.findings["dlogits"].text:
        hints.append("each row's gradient is dloss · weights[m] · (softmax − onehot): "
                     "weights[m] holds both the mask and the reduction's factor")
    return hints


# ------------------------------------------------------------------ attention


ATTENTION_KEYS = ("query", "keys_proj", "values", "W_q", "w_v")


def attention_cases(function: str):
    def unpack(result):
        if not isinstance(result, Mapping):
            raise malformed(f"{function} returned {described(result)}; it returns a dict of "
                            f"gradients by name: {join(ATTENTION_KEYS)}")
        extra = sorted(str(k) for k in result if k not in ATTENTION_KEYS)
        if extra:
            raise malformed(f"the dict {function} returns has key{'s' if len(extra) > 1 else ''} "
                            f"{join(map(repr, extra))}; its keys are {join(ATTENTION_KEYS)}")
        return {grads_label(k): result[k] if k in result
                else Missing(f"the dict returned has no key '{k}'") for k in ATTENTION_KEYS}

    def forward(query, keys_proj, values, w_q, w_v, valid, mask):
        (context, _), cache = additive_attention_forward(query, keys_proj, values, valid,
                                                         w_q, w_v, mask)
        return context, cache

    wrt = {grads_label(k): k.lower() if k == "W_q" else k for k in ATTENTION_KEYS}
    cases = []
    for seed, dropout in enumerate([False, True]):
        rng = np.random.default_rng(400 + seed)
        N, S, Dq, A, Dv = 3, 4, 3, 5, 2
        valid_len = np.array([4, 2, 1])
        valid = np.arange(S)[None, :] < valid_len[:, None]
        mask = None
        if dropout:
            mask = (rng.random((N, S)) > 0.3) / 0.7
        inputs = {"query": rng.standard_normal((N, Dq)),
                  "keys_proj": rng.standard_normal((N, S, A)),
                  "values": rng.standard_normal((N, S, Dv)),
                  "w_q": 0.7 * rng.standard_normal((A, Dq)),
                  "w_v": 0.7 * rng.standard_normal((1, A)), "valid": valid, "mask": mask}
        about = (f"N = {N}, S = {S}, Dq = {Dq}, A = {A}, Dv = {Dv}, valid lengths 4, 2, 1, "
                 + ("a dropout mask on the weights" if dropout else "no dropout (mask None)"))
        cases.append(GradCase(about, forward, inputs, lambda fn, dout, cache: fn(dout, cache),
                              unpack, wrt, seed=seed))
    return cases


def attention_extra(case, seen):
    """Masked keys must get exactly zero gradient."""
    masked = ~case.inputs["valid"]
    for key in ("keys_proj", "values"):
        label = grads_label(key)
        a = check_form(label, seen.got[label], np.asarray(seen.want[label]))
        if isinstance(a, Finding):
            continue
        leaking = int(np.count_nonzero(np.any(a[masked] != 0, axis=-1)))
        if not leaking:
            continue
        f = seen.findings[label]
        leak = (f"masked keys receive gradient ({leaking} of {int(masked.sum())} masked "
                "positions); a position that may not be attended gets exactly 0")
        valid_error = rel_error(a[~masked], np.asarray(seen.want[label])[~masked])
        if valid_error <= TOLERANCE:
            f.ok, f.text = False, f"{label} is right at the valid positions, but {leak}"
        else:
            f.ok, f.text = False, (f"{label} is off at the valid positions (relative error "
                                   f"{number(valid_error)}), and {leak}")


def attention_advice(case, seen):
    wrong = wrong_set(seen)
    q, k, v, wq, wv = (grads_label(n) for n in ATTENTION_KEYS)
    dropout = case.inputs["mask"] is not None
    if dropout:  # the case without dropout passed: what differs is the mask
        return ["right without dropout but not with it: the context is Σ_s alpha_s mask_s v_s, "
                "so the mask scales the gradient that reaches alpha as well as the values'"]
    if wrong == {v}:
        return ["only values is off: context = Σ_s alpha_s v_s"]
    if v not in wrong and {q, k, wq} <= wrong:
        return ["values is right but the gradients that come through the scores are not: "
                "check the softmax's Jacobian (dscore_s = alpha_s (dalpha_s − Σ_j alpha_j "
                "dalpha_j)) and tanh'(·) = 1 − f²"]
    if wrong <= {q, wq} and k not in wrong:
        return ["keys_proj is right but query and W_q are not: q W_qᵀ is added at every "
                "position s, so its gradient is summed over s"]
    if wrong == {wv}:
        return ["only w_v is off: score = w_v · f, summed over the batch and the positions"]
    return []


# ------------------------------------------------------------------ clipping


def _clip_cases():
    """(about, the arrays, max_norm, kind): kind 'dict' or 'paramset'."""
    rng = np.random.default_rng(500)
    shapes = {"weight_ih": (3, 4), "weight_hh": (3, 3), "bias": (3,)}
    big = {k: rng.standard_normal(s) for k, s in shapes.items()}
    big["weight_hh"] *= 4  # the global norm well above every array's own
    small = {k: 0.05 * rng.standard_normal(s) for k, s in shapes.items()}
    zeros = {k: np.zeros(s) for k, s in shapes.items()}
    uneven = {"a": np.full((2, 2), 0.3), "b": 3 * rng.standard_normal(5)}
    return [("three arrays whose global norm is above max_norm = 1", big, 1.0, "dict"),
            ("three arrays whose global norm is below max_norm = 1", small, 1.0, "dict"),
            ("arrays of zeros (a global norm of 0) and max_norm = 1", zeros, 1.0, "dict"),
            ("two arrays, one of them below max_norm = 2 on its own, whose global norm is "
             "above it", uneven, 2.0, "dict"),
            ("the project's ParamSet (named views of one flat buffer), global norm above "
             "max_norm = 1", big, 1.0, "paramset")]


def grade_clip(learner, solution):
    for about, arrays, max_norm, kind in _clip_cases():
        lines = _clip_case(learner, solution, arrays, max_norm, kind)
        if lines:
            return False, [*(_sentence(ln) for ln in lines), f"(with {about})"]
    return True, ["the norm returned and the arrays after clipping are right in "
                  f"{len(_clip_cases())} cases (above and below max_norm, all zeros, "
                  "arrays of different sizes, the project's ParamSet)."]


def _clip_case(learner, solution, arrays, max_norm, kind):
    if kind == "paramset":
        grads = ParamSet({k: v.shape for k, v in arrays.items()}, np, np.dtype("float64"))
        grads.assign(arrays)
    else:
        grads = {k: v.copy() for k, v in arrays.items()}
    held = dict(grads.items())  # the caller's own arrays
    expect = {k: v.copy() for k, v in arrays.items()}
    norm = solution(expect, max_norm)
    clipped = norm > max_norm
    learner.copy_args = False  # the point is what it does to these very arrays
    try:
        returned = learner(grads, max_norm)
    finally:
        learner.copy_args = True
    lines = []
    if isinstance(returned, np.ndarray) and returned.size == 1:
        returned = returned.item()
    if isinstance(returned, bool) or not isinstance(returned, (int, float, np.number)):
        lines.append(f"{learner.name} returned {described(returned)}; it returns the global "
                     "norm before clipping, a number")
    elif not math.isfinite(float(returned)):
        lines.append(f"the norm returned is {float(returned)}")
    elif abs(float(returned) - norm) > 1e-9 * max(norm, 1.0):
        r = float(returned)
        squares = sum(float((v * v).sum()) for v in arrays.values())
        own = [math.sqrt(float((v * v).sum())) for v in arrays.values()]
        if clipped and abs(r - max_norm) <= 1e-9 * max_norm:
            lines.append("the norm returned is the norm after clipping; return the norm before")
        elif abs(r - squares) <= 1e-9 * max(squares, 1.0):
            lines.append("the norm returned is the sum of the squares: take its square root")
        elif any(abs(r - o) <= 1e-9 * max(o, 1.0) for o in own):
            lines.append("the norm returned is one array's norm; the global norm takes every "
                         "entry of every array")
        elif abs(r - sum(own)) <= 1e-9 * max(sum(own), 1.0):
            lines.append("the norm returned is the sum of the arrays' norms; the global norm "
                         "is the square root of the sum of all their squares")
        else:
            lines.append(f"the norm returned is off (relative error "
                         f"{number(abs(r - norm) / max(norm, 1e-12))})")
    replaced = [k for k in arrays if grads[k] is not held[k]]
    now = {k: np.asarray(held[k]) for k in arrays}  # what the caller's arrays hold
    if any(not np.all(np.isfinite(v)) for v in now.values()):
        lines.append("the arrays hold NaN or inf after clipping" +
                     (": with a norm of 0 there is nothing to scale (scale only when the norm "
                      "exceeds max_norm)" if norm == 0 else ""))
        return lines
    unchanged = all(np.array_equal(now[k], arrays[k]) for k in arrays)
    right = all(rel_error(now[k], expect[k]) <= 1e-12 for k in arrays)
    if right:
        return lines
    if replaced and kind == "dict":
        after = {k: np.asarray(grads[k]) for k in arrays}
        if all(rel_error(after[k], expect[k]) <= 1e-12 for k in arrays):
            lines.append(f"grads[{replaced[0]!r}] was replaced by a new array, so the caller's "
                         "own array was not scaled: scale the arrays in place (g *= factor)")
            return lines
    if unchanged and clipped:
        if lines:
            lines.append("the arrays were not scaled either")
        else:
            lines.append("the norm returned is right but the arrays were not scaled")
        return lines
    if not clipped:
        lines.append(f"the arrays were changed, though their global norm is below max_norm "
                     f"= {max_norm:g}: clip only when the norm exceeds max_norm")
        return lines
    own_scaled = {k: v * min(1.0, max_norm / max(math.sqrt(float((v * v).sum())), 1e-300))
                  for k, v in arrays.items()}
    own_always = {k: v * max_norm / max(math.sqrt(float((v * v).sum())), 1e-300)
                  for k, v in arrays.items()}
    if all(rel_error(now[k], own_scaled[k]) <= 1e-9 for k in arrays) or \
            all(rel_error(now[k], own_always[k]) <= 1e-9 for k in arrays):
        lines.append("each array was scaled by its own norm: clipping by the global norm "
                     "scales every array by one factor, max_norm / (the global norm)")
        return lines
    factors = [float((now[k] * arrays[k]).sum()) / max(float((arrays[k] ** 2).sum()), 1e-300)
               for k in arrays]
    if max(factors) - min(factors) <= 1e-9 and all(
            rel_error(now[k], factors[0] * arrays[k]) <= 1e-9 for k in arrays):
        lines.append(f"every array was scaled by one factor, as it should, but by the wrong "
                     f"one: {number(factors[0] / (max_norm / norm))} times the right factor")
        return lines
    wrong = [k for k in arrays if rel_error(now[k], expect[k]) > 1e-12]
    lines.append(f"after clipping, {join([repr(k) for k in wrong])} "
                 f"{'are' if len(wrong) > 1 else 'is'} off")
    return lines


# ------------------------------------------------------------------ beam search


def _beam_cases():
    """(about, logp (B,), log_probs (B, V), sent (B,), K, eos)."""
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    cases = []
    rng = np.random.default_rng(600)
    sent = np.array([0, 0, 0, 1, 2, 2])
    logits = 1.5 * rng.standard_normal((6, 7))
    logits[0, 3] += 4  # <eos> (3) among sentence 0's best
    logp = -np.abs(rng.standard_normal(6)) * 2
    cases.append(("three sentences of 3, 1 and 2 live hypotheses, V = 7, K = 3, <eos> = 3",
                  logp, log_softmax(logits), sent, 3, 3))
    rng = np.random.default_rng(601)
    cases.append(("one sentence of one hypothesis, V = 3, K = 4 (fewer extensions than K)",
                  np.array([-0.7]), log_softmax(rng.standard_normal((1, 3))), np.array([0]),
                  4, 2))
    rng = np.random.default_rng(602)
    sent = np.array([0, 0, 1, 1])
    logits = 2 * rng.standard_normal((4, 6))
    logits[2, 1] += 3
    logits[3, 1] += 3  # <eos> (1) twice among sentence 1's best
    cases.append(("two sentences of 2 live hypotheses each, V = 6, K = 2, <eos> = 1",
                  np.array([-0.4, -2.5, -1.1, -1.3]), log_softmax(logits), sent, 2, 1))
    return cases


def _triples(value, which: str, B: int, V: int):
    """A learner's list of (row, token, log_prob), checked; raises Stop if malformed."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise malformed(f"{which} must be a list of (row, token, log_prob) triples, not "
                        f"{described(value)}")
    out = []
    for item in value:
        if isinstance(item, np.ndarray):
            item = item.tolist()
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise malformed(f"{which} holds {described(item)}; each entry is a (row, token, "
                            "log_prob) triple")
        row, token, lp = item
        try:
            row_i, token_i, lp_f = int(row), int(token), float(lp)
        except (TypeError, ValueError):
            raise malformed(f"{which} holds an entry that is not (row, token, log_prob) numbers") \
                from None
        if row_i != row or token_i != token:
            raise malformed(f"{which} holds a row or token that is not a whole number")
        if not 0 <= row_i < B:
            raise malformed(f"{which} holds row {row_i}; the rows are 0..{B - 1}")
        if not 0 <= token_i < V:
            raise malformed(f"{which} holds token {token_i}; the tokens are 0..{V - 1}")
        out.append((row_i, token_i, lp_f))
    return out


def _kept(live, finished):
    return {(r, t) for r, t, _ in live} | {(r, t) for r, t, _ in finished}


def _top(cands: dict, k: int) -> set:
    return set(sorted(cands, key=lambda c: -cands[c])[:k])


def grade_beam(learner, solution):
    for about, logp, log_probs, sent, K, eos in _beam_cases():
        lines = _beam_case(learner, solution, logp, log_probs, sent, K, eos)
        if lines:
            return False, [*(_sentence(ln) for ln in lines), f"(with {about})"]
    return True, [f"the kept extensions, their log-probabilities and which of them leave "
                  f"the beam are right in {len(_beam_cases())} cases."]


def _beam_case(learner, solution, logp, log_probs, sent, K, eos):
    B, V = log_probs.shape
    result = learner(logp, log_probs, sent, K, eos)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise malformed(f"{learner.name} returned {described(result)}; it returns two lists, "
                        "(live, finished)")
    live = _triples(result[0], "live", B, V)
    finished = _triples(result[1], "finished", B, V)
    want_live, want_finished = solution(logp, log_probs, sent, K, eos)
    total = logp[:, None] + log_probs  # every extension's log-probability
    lines = []
    both = live + finished
    twice = {(r, t) for r, t, _ in both if sum((r, t) == (r2, t2) for r2, t2, _ in both) > 1}
    if twice:
        r, t = sorted(twice)[0]
        lines.append(f"the extension (row {r}, token {t}) is kept twice")
    eos_live = [(r, t) for r, t, _ in live if t == eos]
    if eos_live:
        r, _ = eos_live[0]
        lines.append(f"<eos> extensions must leave the beam: sentence {sent[r]} keeps (row "
                     f"{r}, <eos>) live; return it in finished")
    not_eos = [(r, t) for r, t, _ in finished if t != eos]
    if not_eos:
        r, t = not_eos[0]
        lines.append(f"finished holds (row {r}, token {t}), which does not end in <eos>: only "
                     "an <eos> extension finishes a hypothesis")
    kept, want = _kept(live, finished), _kept(want_live, want_finished)
    cands_of = {}
    for r in range(B):
        for t in range(V):
            cands_of.setdefault(int(sent[r]), {})[(r, t)] = total[r, t]
    for s in sorted(cands_of):
        mine = {c for c in kept if int(sent[c[0]]) == s}
        best = {c for c in want if int(sent[c[0]]) == s}
        if len(mine) != len(best):
            lines.append(f"sentence {s} keeps {len(mine)} extension"
                         f"{'s' if len(mine) != 1 else ''}; it keeps K = {K}, or all it has "
                         "when it has fewer")
        elif mine != best:
            low = min(mine - best, key=lambda c: total[c])
            high = max(best - mine, key=lambda c: total[c])
            lines.append(f"the kept hypotheses are not the K best: sentence {s} keeps a score "
                         f"of {total[low]:.2g} while {total[high]:.2g} was available")
    off = [(r, t) for r, t, lp in both if abs(lp - total[r, t]) > 1e-9 * max(1, abs(lp))]
    if off:
        r, t = off[0]
        lines.append(f"the log-probabilities returned are not the extensions' totals (row {r}, "
                     f"token {t}): an extension's log-probability is its hypothesis's so far "
                     "plus its token's")
    if lines and kept != want:
        lines += [f"hint: {h}" for h in _beam_hints(kept, cands_of, log_probs, sent, K, eos)]
    return lines


def _beam_hints(kept, cands_of, log_probs, sent, K, eos):
    by_token = set().union(*(_top({c: log_probs[c] for c in cands}, K)
                             for cands in cands_of.values()))
    per_row = set()
    for r in range(len(sent)):
        per_row |= _top({(r, t): v for (r2, t), v in cands_of[int(sent[r])].items() if r2 == r},
                        K)
    everything = {c: v for cands in cands_of.values() for c, v in cands.items()}
    no_eos = set().union(*(_top({c: v for c, v in cands.items() if c[1] != eos}, K)
                           for cands in cands_of.values()))
    hints = []
    if kept == by_token:
        hints.append("the ranking ignores the hypotheses' log-probabilities so far: an "
                     "extension is ranked by its hypothesis's log-probability plus its token's")
    if kept == per_row:
        hints.append("each row keeps its own K best: the K best are taken per sentence, among "
                     "the extensions of all its rows")
    if kept == _top(everything, K):
        hints.append("the K best are taken over every sentence together: each sentence keeps "
                     "its own K best")
    if kept == no_eos:
        hints.append("the <eos> extensions were left out of the ranking: one that is among the "
                     "K best takes its place there, and leaves the beam as finished")
    return hints


# ------------------------------------------------------------------ the table


def _backward(name, function, summary, make_cases, extra=None, advise=None) -> Exercise:
    """An exercise whose answer is a backward pass, graded case by case."""
    def cases():
        return make_cases(function)

    def grade(learner, solution):
        return grade_cases(cases(), learner, solution, extra, advise)

    return Exercise(name, function, summary, grade, cases)


EXERCISES: dict[str, Exercise] = {e.name: e for e in [
    _backward("rnn_step", "rnn_step_backward",
              "vanilla RNN, one step backward: dx, dh_prev and the weights' gradients",
              lambda f: step_cases(f, rnn_step_forward, 1, None), advise=rnn_step_advice),
    _backward("bptt", "rnn_backward",
              "backprop through time: the loop over the steps of a vanilla RNN layer",
              bptt_cases, advise=bptt_advice),
    _backward("gru_step", "gru_step_backward",
              "GRU, one step backward (PyTorch's gates r, z, n)",
              lambda f: step_cases(f, gru_step_forward, 3, GRU_BLOCKS), advise=gru_step_advice),
    _backward("lstm_step", "lstm_step_backward",
              "LSTM, one step backward (gates i, f, g, o, and the cell path)",
              lambda f: step_cases(f, lstm_step_forward, 4, LSTM_BLOCKS, paired=True),
              advise=lstm_step_advice),
    _backward("softmax_ce", "masked_softmax_ce_backward",
              "masked softmax cross-entropy backward: padding gets exactly zero gradient",
              softmax_cases, softmax_extra, softmax_advice),
    Exercise("clip", "clip_grad_norm",
             "gradient clipping by global norm, in place, returning the norm before",
             grade_clip),
    _backward("attention", "additive_attention_backward",
              "additive (Bahdanau) attention backward, through the masked softmax",
              attention_cases, attention_extra, attention_advice),
    Exercise("beam_step", "beam_step",
             "one step of beam search: keep each sentence's K best extensions",
             grade_beam),
]}


def exercise(name: str) -> Exercise:
    """The exercise called ``name``."""
    if name not in EXERCISES:
        raise ExerciseError(f"no exercise {name!r}; the exercises are {join(EXERCISES)}")
    return EXERCISES[name]
