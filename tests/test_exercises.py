"""The exercises (minis2s/exercises/): every shipped solution passes, every untouched stub
is "not written yet", and a planted mistake in each exercise fails with a hint that names
what is wrong (which output, which gate block, which time step) and what is right, without
ever showing the solution's values. The command line: list, start, check and their exit
statuses (0 pass, 1 fail, 2 usage)."""

import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from minis2s.cli import main
from minis2s.exercises import EXERCISES, Report, check, solution_path, stub_text
from minis2s.exercises.catalog import GradCase, run_case

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(EXERCISES)


def run(argv, capsys):
    """``minis2s ARGV``: (exit status, stdout, stderr); a usage error's SystemExit too."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    out = capsys.readouterr()
    return code, out.out, out.err


def planted(tmp_path, name, *replacements) -> Path:
    """The shipped solution with lines replaced, written to tmp_path/NAME.py."""
    text = solution_path(name).read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, f"{name}: {old!r} is not once in the solution"
        text = text.replace(old, new)
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ solutions and stubs


@pytest.mark.parametrize("name", NAMES)
def test_every_solution_passes(name, capsys):
    report = check(name, solution_path(name), show=False)
    assert report.passed, str(report)
    code, out, _ = run(["exercise", "check", name, "--solutions"], capsys)
    assert code == 0
    assert out.startswith(f"{name}: passed\n")


@pytest.mark.parametrize("name", NAMES)
def test_every_untouched_stub_is_not_written_yet(name, tmp_path, capsys, monkeypatch):
    assert run(["exercise", "start", str(tmp_path)], capsys)[0] == 0
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["exercise", "check", name], capsys)  # ./NAME.py, the default
    assert code == 1
    assert out.splitlines()[0] == f"{name}: not written yet"
    assert "still raises NotImplementedError" in out
    assert "Traceback" not in out + err
    report = check(name, tmp_path / f"{name}.py", show=False)
    assert not report.passed and not report.written


@pytest.mark.parametrize("name", NAMES)
def test_stub_and_solution_share_the_interface(name):
    """The same function, the same parameters; the stub raises where the learner writes
    and its docstring names the function and says how to check it."""
    stub = types.ModuleType("stub")
    exec(compile(stub_text(name), f"{name}.py", "exec"), stub.__dict__)
    solution = types.ModuleType("solution")
    exec(compile(solution_path(name).read_text(encoding="utf-8"), "s.py", "exec"),
         solution.__dict__)
    function = EXERCISES[name].function
    assert inspect.signature(getattr(stub, function)) == \
        inspect.signature(getattr(solution, function))
    assert "raise NotImplementedError" in stub_text(name)
    assert f"Write {function}(" in stub.__doc__
    assert f"minis2s exercise check {name}" in stub.__doc__


def test_the_solutions_are_the_projects_own_backwards():
    """Each solution gives what the project's own backward gives (to 1e-12), so a
    learner's passing answer is the real thing."""
    from minis2s.exercises import solutions
    from minis2s.ops import reference as ref
    from minis2s.ops.additive_attention import additive_attention_backward
    from minis2s.ops.softmax_ce import masked_softmax_ce_backward
    from minis2s.optim import clip_grad_norm_
    from minis2s.params import ParamSet

    def close(a, b):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            return all(close(a[k], b[k]) for k in a)
        if isinstance(a, tuple):
            return all(close(x, y) for x, y in zip(a, b, strict=True))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        return True

    pairs = [("rnn_step", ref.rnn_step_backward), ("gru_step", ref.gru_step_backward),
             ("lstm_step", ref.lstm_step_backward), ("bptt", ref.rnn_backward),
             ("softmax_ce", masked_softmax_ce_backward),
             ("attention", additive_attention_backward)]
    for name, own in pairs:
        module = __import__(f"{solutions.__name__}.{name}", fromlist=["x"])
        mine = getattr(module, EXERCISES[name].function)
        for case in EXERCISES[name].cases():
            seen = run_case(case, mine, mine)
            if name == "bptt":
                theirs = own(*seen.dout, seen.cache)
                ours = mine(*seen.dout, seen.cache)
            else:
                theirs = own(seen.dout, seen.cache)
                ours = mine(seen.dout, seen.cache)
            assert close(ours, theirs), name
    rng = np.random.default_rng(0)
    for scale in (0.1, 10.0):
        arrays = {"a": scale * rng.standard_normal((3, 4)), "b": scale * rng.standard_normal(5)}
        flat = ParamSet({k: v.shape for k, v in arrays.items()}, np, np.dtype("float64"))
        flat.assign(arrays)
        mine = {k: v.copy() for k, v in arrays.items()}
        assert solutions.clip.clip_grad_norm(mine, 1.0) == pytest.approx(
            clip_grad_norm_(flat, 1.0), rel=1e-12)
        assert close(mine, {k: np.asarray(flat[k]) for k in arrays})


def test_the_gradient_cases_are_graded_against_finite_differences():
    """The grading runs minis2s.gradcheck.check_backward: a case's findings carry the
    finite-difference error, which a wrong answer that agrees with the solution on one
    call could not hide."""
    case = EXERCISES["rnn_step"].cases()[0]
    assert isinstance(case, GradCase)
    from minis2s.exercises.solutions.rnn_step import rnn_step_backward

    seen = run_case(case, rnn_step_backward, rnn_step_backward)
    assert all(f.ok and 0 < f.error < 1e-9 for f in seen.findings.values())


# ------------------------------------------------------------------ planted mistakes

# (exercise, [(line in the solution, planted line)], words the report must hold, words it
# must not hold)
PLANTS = {
    "rnn_step_sign": ("rnn_step", [('dh_prev = da @ params["weight_hh"]',
                                    'dh_prev = -da @ params["weight_hh"]')],
                      ["dh_prev has the wrong sign",
                       "right: dx, grads['weight_ih'], grads['weight_hh'], grads['bias_ih'] "
                       "and grads['bias_hh']"], ["dx is off"]),
    "rnn_step_tanh": ("rnn_step", [("da = dh * (1 - h ** 2)", "da = dh * (1 - h)")],
                      ["dx is off", "grads['weight_hh'] is off", "every gradient is off",
                       "1 − h²"], ["right:"]),
    "rnn_step_bias_axis": ("rnn_step", [('"bias_hh": np.sum(da, axis=0),  # both',
                                         '"bias_hh": np.sum(da, axis=1),  # both')],
                           ["grads['bias_hh'] has the wrong shape (3,), expected (5,)",
                            "summed over the batch rows"], []),
    "gru_step_reset_missing": ("gru_step", [("dgh_n = da_n * r", "dgh_n = da_n")],
                               ["grads['weight_hh'] is off", "grads['bias_hh'] is off",
                                "the n block (rows 2H:3H, the candidate state) only",
                                "the r and z blocks are right",
                                "right: dx, grads['weight_ih'] and grads['bias_ih']",
                                "the reset gate is missing from the state's share"],
                               ["grads['weight_ih'] is off"]),
    "gru_step_reset_on_the_wrong_term": (
        "gru_step", [("dgh_n = da_n * r", "dgh_n = da_n"),
                     ("dgi = np.concatenate([da_r, da_z, da_n], axis=1)",
                      "dgi = np.concatenate([da_r, da_z, da_n * r], axis=1)")],
        ["grads['weight_ih'] is off", "the n block", "the reset gate scales the wrong share"],
        ["right:"]),
    "gru_step_update_gate_sign": ("gru_step", [("dz = dh * (h_prev - n)",
                                                "dz = dh * (n - h_prev)")],
                                  ["the z block (rows H:2H, the update gate) only",
                                   "the r and n blocks are right", "∂h/∂z = h_prev − n"], []),
    "gru_step_direct_path_missing": ("gru_step", [("dh_prev = dh_prev_direct + dgh",
                                                   "dh_prev = dgh")],
                                     ["dh_prev is off", "right: dx, grads['weight_ih']",
                                      "are both paths added?"], ["grads['weight_hh'] is off"]),
    "lstm_step_forget_gate_missing": ("lstm_step", [("dc_prev = dc * f", "dc_prev = dc")],
                                      ["dc_prev is off", "right: dx, dh_prev, "
                                       "grads['weight_ih']", "what multiplies c_prev?"],
                                      ["dx is off"]),
    "lstm_step_output_gate": ("lstm_step", [("do = dh * tanh_c", "do = dh")],
                              ["the o block (rows 3H:4H, the output gate) only",
                               "the i, f and g blocks are right", "right: dc_prev"], []),
    "lstm_step_tanh_path_missing": ("lstm_step", [
        ("dc = dc_next + dh * o * (1 - tanh_c ** 2)", "dc = dc_next")],
        ["dc_prev is off", "the o block is right", "dh through h = o ⊙ tanh(c)"], []),
    "bptt_next_step_not_carried": ("bptt", [("dx[t], dh_next, step_grads =",
                                             "dx[t], _, step_grads =")],
                                   ["dx is off", "right at the last step but wrong from t = 3 "
                                    "back to t = 0", "is the gradient from the next step "
                                    "added?"], []),
    "bptt_next_step_not_added": ("bptt", [("dh = dh_next + dhs[t]", "dh = dhs[t]")],
                                 ["wrong at every step, the last (t = 4) included",
                                  "neither the gradient from the next step nor dh_last"], []),
    "bptt_dh_last_ignored": ("bptt", [("dh_next = dh_last  #", "dh_next = 0 * dh_last  #")],
                             ["dh_last, the gradient of the final state, never enters"], []),
    "bptt_weights_not_summed": ("bptt", [
        ("grads = {k: grads[k] + step_grads[k] for k in grads}", "grads = step_grads")],
        ["grads['weight_hh'] is off", "right: dx and dh0", "add up over the steps"], []),
    "softmax_ce_padding_leaks": ("softmax_ce", [("d *= (dloss * rows.weights)[:, None]",
                                                 "d *= dloss * rows.weights.max()")],
                                 ["dlogits is right at the valid positions",
                                  "the padded positions receive gradient (6 of 6 padded "
                                  "positions)"], []),
    "softmax_ce_dloss_missing": ("softmax_ce", [("d *= (dloss * rows.weights)[:, None]",
                                                 "d *= rows.weights[:, None]")],
                                 ["off by a constant factor", "dloss, the upstream gradient "
                                  "of the loss, is not multiplied in"], []),
    "softmax_ce_onehot_missing": ("softmax_ce", [("-= 1  #", "-= 0  #")],
                                  ["only at the labels' entries (the one-hot term)"], []),
    "clip_per_array": ("clip", [("g *= factor  #", "g *= max_norm / max(math.sqrt(float((g * "
                                 "g).sum())), max_norm)  #")],
                       ["each array was scaled by its own norm", "one factor"], []),
    "clip_not_scaled": ("clip", [("g *= factor  #", "pass  #")],
                        ["the norm returned is right but the arrays were not scaled"], []),
    "clip_norm_after": ("clip", [("    return norm", "    return min(norm, max_norm)")],
                        ["the norm returned is the norm after clipping"], []),
    "clip_always": ("clip", [("if norm > max_norm:", "if True:")],
                    ["the arrays were changed, though their global norm is below max_norm"],
                    []),
    "clip_new_arrays": ("clip", [
        ("        for g in grads.values():\n            g *= factor",
         "        for k in grads:\n            grads[k] = grads[k] * factor")],
        ["was replaced by a new array", "in place"], []),
    "attention_masked_keys": ("attention", [
        ("dscores = alpha * (dalpha - np.sum(alpha * dalpha, axis=1, keepdims=True))",
         "dscores = dalpha - np.sum(alpha * dalpha, axis=1, keepdims=True)")],
        ["masked keys receive gradient (5 of 5 masked positions)", "right: grads['values']",
         "softmax's Jacobian"], []),
    "attention_dropout_mask": ("attention", [
        ("dalpha = dused if mask is None else dused * mask", "dalpha = dused")],
        ["the first case passes", "a dropout mask on the weights", "right without dropout"],
        []),
    "attention_query_not_summed": ("attention", [("dqp = np.sum(dpre, axis=1)",
                                                  "dqp = dpre[:, 0]")],
                                   ["grads['query'] is off", "grads['W_q'] is off",
                                    "right: grads['keys_proj'], grads['values'] and "
                                    "grads['w_v']", "summed over s"], []),
    "beam_step_eos_stays_live": ("beam_step", [("if token == eos:", "if False:")],
                                 ["<eos> extensions must leave the beam", "sentence 0 keeps "
                                  "(row 0, <eos>) live"], []),
    "beam_step_not_summed": ("beam_step", [("total = logp[row] + log_probs[row, token]",
                                            "total = log_probs[row, token]")],
                             ["the kept hypotheses are not the K best: sentence 0 keeps a "
                              "score of -3.4 while -2.8 was available",
                              "the log-probabilities returned are not the extensions' totals",
                              "ignores the hypotheses' log-probabilities so far"], []),
    "beam_step_k_plus_one": ("beam_step", [("candidates[:K]:", "candidates[:K + 1]:")],
                             ["sentence 0 keeps 4 extensions; it keeps K = 3"], []),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_planted_mistake_fails_with_its_hint(plant, tmp_path, capsys):
    name, replacements, said, unsaid = PLANTS[plant]
    path = planted(tmp_path, name, *replacements)
    code, out, err = run(["exercise", "check", name, "--file", str(path)], capsys)
    assert code == 1, out
    assert out.splitlines()[0] == f"{name}: not passed"
    text = " ".join(out.split())
    for words in said:
        assert " ".join(words.split()) in text, f"{words!r} not in:\n{out}"
    for words in unsaid:
        assert words not in text, f"{words!r} in:\n{out}"
    assert err == "" and "Traceback" not in out


def test_every_exercise_has_a_planted_mistake():
    assert {name for name, *_ in PLANTS.values()} == set(EXERCISES)


NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+")


def significant_digits(number: str) -> int:
    mantissa = number.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa)


@pytest.mark.parametrize("plant", [p for p in PLANTS if PLANTS[p][0] not in ("beam_step",)])
def test_the_report_never_shows_the_solutions_values(plant, tmp_path):
    """No array is printed and no number has more than two significant digits (a ratio or
    an error), so no value of the right gradient can be read off a report."""
    name, replacements, _, _ = PLANTS[plant]
    report = check(name, planted(tmp_path, name, *replacements), show=False)
    text = str(report)
    assert not report.passed
    assert "[[" not in text and "array(" not in text and "e+" not in text
    assert all(significant_digits(n) <= 2 for n in NUMBER.findall(text)), text


def test_the_numbers_check_reads_numbers_right():
    assert [significant_digits(n) for n in ("0.43", "0.025", "1.1e-12", "-3.4", "0.125")] \
        == [2, 2, 2, 2, 3]
    assert NUMBER.findall("error 0.43, rows 2H:3H, 1.1e-12 (3, 4)") == ["0.43", "1.1e-12"]


# ------------------------------------------------------------------ the learner's code fails


def test_a_syntax_error_is_one_clear_message(tmp_path, capsys):
    path = tmp_path / "gru_step.py"
    path.write_text("def gru_step_backward(dh, cache):\n    dx = (dh +\n    return dx\n",
                    encoding="utf-8")
    code, out, err = run(["exercise", "check", "gru_step", "--file", str(path)], capsys)
    assert code == 1
    assert out.splitlines()[:2] == ["gru_step: not passed",
                                    "  gru_step.py does not compile: line 2: '(' was never "
                                    "closed"]
    assert "Traceback" not in out + err


def test_an_exception_in_the_learners_code_shows_their_lines_only(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text("import numpy as np\n\n\ndef helper(a):\n    return a[10]\n\n\n"
                    "def rnn_step_backward(dh, cache):\n    return helper(dh)\n",
                    encoding="utf-8")
    code, out, err = run(["exercise", "check", "rnn_step", "--file", str(path)], capsys)
    assert code == 1
    assert out.splitlines() == [
        "rnn_step: not passed",
        "  your rnn_step_backward raised IndexError: index 10 is out of bounds for axis 0 "
        "with size 3",
        "    mine.py, line 9, in rnn_step_backward: return helper(dh)",
        "    mine.py, line 5, in helper: return a[10]"]
    assert "Traceback" not in out + err


def test_a_file_that_fails_on_import_or_lacks_the_function(tmp_path, capsys):
    path = tmp_path / "clip.py"
    path.write_text("import numpy as np\nundefined_name()\n", encoding="utf-8")
    code, out, _ = run(["exercise", "check", "clip", "--file", str(path)], capsys)
    assert code == 1
    assert "running clip.py raised NameError: name 'undefined_name' is not defined" in out
    assert "clip.py, line 2, in <module>: undefined_name()" in out
    path.write_text("def clip(grads, max_norm):\n    return 0.0\n", encoding="utf-8")
    code, out, _ = run(["exercise", "check", "clip", "--file", str(path)], capsys)
    assert code == 1
    assert "clip.py has no function clip_grad_norm: keep the name the stub gives it" in out


@pytest.mark.parametrize(("returned", "said"), [
    ("None", "rnn_step_backward returned None; it returns three things, (dx, dh_prev, grads)"),
    ("(dh, dh)", "returned a tuple of 2 values; it returns three things"),
    ("(dh, dh, [])", "the grads rnn_step_backward returns must be a dict"),
    ("(dh, dh, {'W': dh})", "grads has key 'W', which is no parameter of the cell"),
], ids=["none", "two-values", "grads-not-a-dict", "unknown-key"])
def test_a_result_of_the_wrong_form_is_said_so(returned, said, capsys):
    fn = eval(f"lambda dh, cache: {returned}")  # a learner's answer
    report = check("rnn_step", fn, show=False)
    assert not report.passed and report.written
    assert said in str(report)


def test_wrong_shapes_missing_keys_and_nan_are_named(capsys):
    from minis2s.exercises.solutions.lstm_step import lstm_step_backward

    def mine(dstate, cache):
        dx, (dh_prev, dc_prev), grads = lstm_step_backward(dstate, cache)
        grads = dict(grads)
        del grads["bias_hh"]
        return dx.T, (dh_prev * np.nan, dc_prev), grads

    text = str(check("lstm_step", mine, show=False))
    assert "dx has the wrong shape (4, 3), expected (3, 4) (the transpose's shape)" in text
    assert "dh_prev holds NaN or inf (15 of 15 entries)" in text
    assert "grads['bias_hh'] is missing: grads has no key 'bias_hh'" in text
    assert "right: dc_prev, grads['weight_ih'], grads['weight_hh'] and grads['bias_ih']" in text


def test_a_learner_that_changes_its_inputs_cannot_spoil_the_check():
    from minis2s.exercises.solutions.rnn_step import rnn_step_backward

    def careless(dh, cache):
        out = rnn_step_backward(dh, cache)
        dh *= 0  # scribbles on what it was given
        cache.params["weight_hh"][...] = 0
        return out

    assert check("rnn_step", careless, show=False).passed


# ------------------------------------------------------------------ check() from Python


def test_check_from_a_notebook_takes_a_function_a_module_or_a_path(capsys, tmp_path):
    from minis2s.exercises.solutions import gru_step

    def my_gru_step_backward(dh, cache):
        return gru_step.gru_step_backward(dh, cache)

    report = check("gru_step", my_gru_step_backward)
    assert isinstance(report, Report) and report.passed
    assert repr(report) == "Report('gru_step', passed=True)"
    assert capsys.readouterr().out.startswith("gru_step: passed\n")  # printed
    assert check("gru_step", gru_step, show=False).passed  # a module
    assert check("gru_step", str(solution_path("gru_step")), show=False).passed  # a path
    assert capsys.readouterr().out == ""  # show=False prints nothing
    wrong = check("gru_step", lambda dh, cache: 1 / 0, show=False)
    assert not wrong.passed and "raised ZeroDivisionError: division by zero" in str(wrong)


def test_check_refuses_what_it_cannot_grade(tmp_path, monkeypatch):
    from minis2s.exercises import ExerciseError

    with pytest.raises(ExerciseError, match="no exercise 'gru'; the exercises are rnn_step, "):
        check("gru", print)
    with pytest.raises(ExerciseError, match="check takes a function, a module or the path"):
        check("gru_step", 3)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExerciseError, match="no gru_step.py in .*: run 'minis2s exercise start"):
        check("gru_step")


def test_a_stub_run_as_a_script_grades_itself(tmp_path):
    (tmp_path / "bptt.py").write_text(stub_text("bptt"), encoding="utf-8")
    r = subprocess.run([sys.executable, "bptt.py"], cwd=tmp_path, capture_output=True,
                       text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("bptt: not written yet\n")


# ------------------------------------------------------------------ the command line


def test_exercise_list_names_each_exercise_with_a_line(capsys):
    code, out, err = run(["exercise", "list"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    assert all(len(line.split(None, 1)[1]) > 20 for line in lines)
    assert "backprop through time" in out and "beam search" in out


def test_exercise_start_copies_every_stub_and_says_what_next(tmp_path, capsys):
    folder = tmp_path / "new" / "work"
    code, out, _ = run(["exercise", "start", str(folder)], capsys)
    assert code == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.py" for n in NAMES)
    for name in NAMES:
        assert (folder / f"{name}.py").read_text(encoding="utf-8") == stub_text(name)
    assert out.startswith(f"copied 8 exercises into {folder}: rnn_step.py, bptt.py")
    assert f"cd {folder}" in out and "minis2s exercise check rnn_step" in out


def test_exercise_start_never_overwrites_without_being_told(tmp_path, capsys):
    assert run(["exercise", "start", str(tmp_path)], capsys)[0] == 0
    mine = tmp_path / "gru_step.py"
    mine.write_text("# my work\n", encoding="utf-8")
    (tmp_path / "clip.py").unlink()
    code, out, err = run(["exercise", "start", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert err == (f"minis2s: error: {tmp_path / 'rnn_step.py'} exists (and 6 more); nothing "
                   "was copied. Keep working there, or give --overwrite to replace them with "
                   "fresh stubs (your work in them is lost)\n")
    assert mine.read_text(encoding="utf-8") == "# my work\n"
    assert not (tmp_path / "clip.py").exists()  # nothing copied, not even a missing one
    assert run(["exercise", "start", str(tmp_path), "--overwrite"], capsys)[0] == 0
    assert mine.read_text(encoding="utf-8") == stub_text("gru_step")
    code, _, err = run(["exercise", "start", str(mine)], capsys)
    assert code == 2 and err == f"minis2s: error: {mine} is a file, not a folder\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["exercise", "check", "gru"], "minis2s exercise check: error: argument NAME: invalid "
     "choice: 'gru'"),
    (["exercise", "check", "gru_step", "--fle", "x.py"], "minis2s exercise check: error: "
     "unrecognized arguments: --fle x.py (did you mean --file?)"),
    (["exercise", "check", "gru_step", "--file", "x.py", "--solutions"], "minis2s exercise "
     "check: error: argument --solutions: not allowed with argument --file"),
    (["exercise", "start"], "minis2s exercise start: error: the following arguments are "
     "required: DIR"),
    (["exercise"], "minis2s exercise: error: the following arguments are required: ACTION"),
    (["exercise", "check", "gru_step", "--file", "nothere.py"], "minis2s: error: nothere.py: "
     "no such file"),
    (["exercise", "check", "gru_step"], "minis2s: error: no gru_step.py in this folder: run "
     "'minis2s exercise start DIR' to copy the exercises into DIR and check from there, or "
     "give --file PATH"),
], ids=["unknown-name", "misspelt-flag", "file-and-solutions", "start-without-dir",
        "no-action", "missing-file", "no-default-file"])
def test_usage_errors_exit_2_with_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert message in err
    assert "Traceback" not in err


def test_the_stubs_and_solutions_are_shipped_in_the_package():
    """setuptools finds them as packages of minis2s (pyproject.toml: packages.find, include
    minis2s*), so a plain, non-editable install carries every file."""
    from setuptools import find_packages

    found = find_packages(str(ROOT), include=["minis2s*"])
    assert {"minis2s.exercises", "minis2s.exercises.stubs",
            "minis2s.exercises.solutions"} <= set(found)
    for name in NAMES:
        assert (ROOT / "minis2s" / "exercises" / "stubs" / f"{name}.py").is_file()
        assert (ROOT / "minis2s" / "exercises" / "solutions" / f"{name}.py").is_file()
