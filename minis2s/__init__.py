"""minis2s: sequence-to-sequence learning with hand-derived backprop through time.

An encoder and a decoder (the seed's, or Bahdanau attention) over GRU, LSTM or vanilla
RNN cells. Every forward and backward pass is written by hand on NumPy; the same code
runs on CuPy.

From Python, :func:`load` reads a trained checkpoint into a :class:`Model` that
translates, evaluates and measures gradient flow (:mod:`minis2s.api`).
"""

from .api import Model, load
from .backend import Backend, BackendError, array_module, get_backend, to_numpy
from .model import ModelConfig, init_params, param_shapes, seq2seq_backward, seq2seq_forward
from .params import ParamSet

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendError",
    "Model",
    "ModelConfig",
    "ParamSet",
    "array_module",
    "get_backend",
    "init_params",
    "load",
    "param_shapes",
    "seq2seq_backward",
    "seq2seq_forward",
    "to_numpy",
]
