"""Words for what is wrong with an array a learner returned, without ever giving the
right values: the shape, NaN, the sign, a constant factor, a transpose, the relative
error, and where the error lies (which gate block of a weight's rows, which time step).

Every number these sentences hold is a shape, an index, a count or a ratio rounded to
two significant digits; no element of the right answer is ever written out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..gradcheck import TOLERANCE, rel_error

# The gate blocks of a cell's weights, in PyTorch's order (the rows of weight_ih,
# weight_hh and the biases, H rows each): a letter and what the block computes.
GRU_BLOCKS = (("r", "the reset gate"), ("z", "the update gate"), ("n", "the candidate state"))
LSTM_BLOCKS = (("i", "the input gate"), ("f", "the forget gate"), ("g", "the candidate cell"),
               ("o", "the output gate"))


@dataclass
class Finding:
    """What the grader found about one returned value: right or not, and in words."""

    label: str  # as the learner knows it: dx, dh_prev, grads['weight_hh']
    ok: bool
    text: str = ""  # a sentence starting with the label, when not ok
    error: float = 0.0  # the relative error, where one could be measured
    blocks: list = field(default_factory=list)  # the letters of the wrong gate blocks
    steps: list = field(default_factory=list)  # the wrong time steps


def number(x: float) -> str:
    """A ratio or an error in two significant digits."""
    return f"{x:.2g}"


def join(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def as_numbers(label: str, value):
    """``value`` as a float64 array, or a :class:`Finding` saying why it is not one."""
    if value is None:
        return Finding(label, False, f"{label} is None: return an array")
    try:
        a = np.asarray(value)
    except Exception:  # anything the learner returned
        return Finding(label, False, f"{label} is not an array ({type(value).__name__})")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number)
                                 or a.dtype == np.bool_):
        return Finding(label, False, f"{label} is not an array of numbers "
                                     f"({type(value).__name__} of {a.dtype})")
    return a.astype(np.float64)


def shape_text(shape: tuple) -> str:
    return str(tuple(int(s) for s in shape))


def check_form(label: str, value, expected) -> Finding | np.ndarray:
    """The learner's ``value`` as an array shaped like ``expected``, or what is wrong."""
    a = as_numbers(label, value)
    if isinstance(a, Finding):
        return a
    if a.shape != expected.shape:
        note = ""
        if a.ndim == 2 and a.shape == expected.shape[::-1]:
            note = " (the transpose's shape)"
        return Finding(label, False, f"{label} has the wrong shape {shape_text(a.shape)}, "
                                     f"expected {shape_text(expected.shape)}{note}")
    if not np.all(np.isfinite(a)):
        bad = int(np.count_nonzero(~np.isfinite(a)))
        return Finding(label, False, f"{label} holds NaN or inf ({bad} of {a.size} entries)")
    return a


def how_wrong(a: np.ndarray, e: np.ndarray, error: float) -> str:
    """How an array of the right shape differs from the right one, in a few words."""
    if not np.any(a) and np.any(e):
        return "is all zeros"
    if np.any(e) and rel_error(a, -e) <= TOLERANCE:
        return "has the wrong sign (it is the right gradient times −1)"
    if a.ndim == 2 and a.shape[0] == a.shape[1] and rel_error(a, e.T) <= TOLERANCE:
        return "is transposed"
    ee = float((e * e).sum())
    if ee > 0:
        c = float((a * e).sum()) / ee
        if c != 0 and abs(c - 1) > 1e-3 and rel_error(a, c * e) <= TOLERANCE:
            return (f"is off by a constant factor: every entry is {number(c)} times the "
                    "right one")
    return f"is off (relative error {number(error)})"


def block_errors(a: np.ndarray, e: np.ndarray, gates: int) -> list[float]:
    """The error of each gate block of axis 0 (``gates`` blocks of equal size), measured
    against the whole array's size so that blocks compare."""
    H = a.shape[0] // gates
    scale = max(float(np.max(np.abs(a) + np.abs(e))), 1e-12)
    return [float(np.max(np.abs(a[k * H:(k + 1) * H] - e[k * H:(k + 1) * H]), initial=0.0))
            / scale for k in range(gates)]


def rows_of(k: int) -> str:
    lo = "0" if k == 0 else ("H" if k == 1 else f"{k}H")
    hi = "H" if k == 0 else f"{k + 1}H"
    return f"rows {lo}:{hi}"


def where_blocks(errors: list[float], blocks) -> tuple[str, list[str]]:
    """Which gate blocks are wrong, in words, and their letters."""
    wrong = [k for k, err in enumerate(errors) if err > TOLERANCE]
    if not wrong:
        return "", []
    right = [blocks[k][0] for k in range(len(blocks)) if k not in wrong]
    worst = max(wrong, key=lambda k: errors[k])
    letter, meaning = blocks[worst]
    place = f"the {letter} block ({rows_of(worst)}, {meaning})"
    if len(wrong) == 1:
        text = f"the error is in {place} only"
    elif not right:
        text = f"the error is in every gate block, largest in {place}"
    else:
        text = (f"the error is in the {join([blocks[k][0] for k in wrong])} blocks, "
                f"largest in {place}")
    if right:
        text += f"; the {join(right)} block{'s are' if len(right) > 1 else ' is'} right"
    return text, [blocks[k][0] for k in wrong]


def step_errors(a: np.ndarray, e: np.ndarray) -> list[float]:
    """The error of each time step (axis 0), measured against the whole array's size."""
    scale = max(float(np.max(np.abs(a) + np.abs(e))), 1e-12)
    return [float(np.max(np.abs(a[t] - e[t]), initial=0.0)) / scale
            for t in range(a.shape[0])]


def where_steps(errors: list[float]) -> tuple[str, list[int]]:
    """Which time steps are wrong, in words, and their indices."""
    T = len(errors)
    wrong = [t for t, err in enumerate(errors) if err > TOLERANCE]
    if not wrong or T == 1:
        return "", wrong
    if len(wrong) == T:
        return f"it is wrong at every step, the last (t = {T - 1}) included", wrong
    if wrong == list(range(wrong[-1] + 1)):
        first_right = wrong[-1] + 1
        right = "the last step" if first_right == T - 1 else f"steps t = {first_right}..{T - 1}"
        return (f"it is right at {right} but wrong from t = {wrong[-1]} back to t = 0",
                wrong)
    return f"it is wrong at step{'s' if len(wrong) > 1 else ''} t = " \
           f"{join([str(t) for t in wrong])}", wrong


def judge(label: str, value, expected, fd_error: float | None = None, *,
          gates=None, steps: bool = False) -> Finding:
    """Whether ``value`` is the gradient ``expected`` (the solution's, float64), and if
    not, a sentence saying how and where. ``fd_error`` is the relative error that the
    finite-difference check measured for it, if it ran; ``gates`` the gate blocks of its
    rows; ``steps`` that its first axis is time."""
    expected = np.asarray(expected, dtype=np.float64)
    a = check_form(label, value, expected)
    if isinstance(a, Finding):
        return a
    error = rel_error(a, expected)
    if fd_error is not None:
        error = max(error, fd_error)
    if error <= TOLERANCE:
        return Finding(label, True, error=error)
    text = f"{label} {how_wrong(a, expected, error)}"
    finding = Finding(label, False, text, error)
    if gates is not None and a.ndim >= 1 and a.shape[0] % len(gates) == 0:
        where, finding.blocks = where_blocks(block_errors(a, expected, len(gates)), gates)
        if where:
            finding.text += f": {where}"
    if steps and a.ndim >= 1:
        where, finding.steps = where_steps(step_errors(a, expected))
        if where:
            finding.text += f": {where}"
    return finding


def same(value, expected, tolerance: float = TOLERANCE) -> bool:
    """Whether ``value`` is an array equal to ``expected`` to the tolerance (for matching
    a learner's result with a known mistake)."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except Exception:
        return False
    e = np.asarray(expected, dtype=np.float64)
    return a.shape == e.shape and bool(np.all(np.isfinite(a))) and \
        rel_error(a, e) <= tolerance
