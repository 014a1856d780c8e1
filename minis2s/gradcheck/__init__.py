"""Finite-difference gradient checks: a library for any forward/backward pair
(:mod:`.core`: :func:`check_backward`, :func:`shape_strategy`, :func:`numerical_grad`,
:func:`directional_error`), and the project's own checks of every backward it has
(:mod:`.cases`), which ``python -m minis2s gradcheck`` prints."""

from .cases import (
    check_additive_attention,
    check_bridge,
    check_deep_output,
    check_dense,
    check_dropout,
    check_embed_project,
    check_embedding,
    check_repeat_steps,
    check_seq2seq,
    check_softmax_ce,
    check_stack,
    main,
    make_batch,
    run_all,
)
from .core import (
    TOLERANCE,
    Row,
    check_arrays,
    check_backward,
    directional_error,
    numerical_grad,
    print_rows,
    rel_error,
    shape_strategy,
)

__all__ = [
    "check_additive_attention",
    "Row",
    "TOLERANCE",
    "check_arrays",
    "check_backward",
    "check_bridge",
    "check_deep_output",
    "check_dense",
    "check_dropout",
    "check_embed_project",
    "check_embedding",
    "check_repeat_steps",
    "check_seq2seq",
    "check_softmax_ce",
    "check_stack",
    "directional_error",
    "main",
    "make_batch",
    "numerical_grad",
    "print_rows",
    "rel_error",
    "run_all",
    "shape_strategy",
]
