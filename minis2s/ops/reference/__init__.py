"""Plain recurrent cells, written to be read: a vanilla RNN, a GRU and an LSTM; and the
seed's whole model on one screen.

Each cell has a step pair, ``*_step_forward(x, state, params) -> (state', cache)`` and
``*_step_backward(dstate', cache) -> (dx, dstate, grads)``, and a loop over time for one
layer of a padded batch, ``*_forward`` / ``*_backward``. Nothing here is tuned for speed:
no in-place updates, no ``out=``, every gate sliced out by name and every backward line
commented; :mod:`.stack` puts layers and directions together the same way. The fast
kernels of :mod:`minis2s.ops` are tested against these (to 1e-12 in
float64), and these against finite differences, so the fast code has an oracle that
shares none of its tricks.

Shapes: N batch, T steps, D input features, H hidden units. Parameters have
``torch.nn.RNN`` / ``GRU`` / ``LSTM``'s layout: ``weight_ih`` (G·H, D), ``weight_hh``
(G·H, H), ``bias_ih`` and ``bias_hh`` (G·H,), with G = 1, 3 or 4 gate blocks stacked in
PyTorch's order. The symbols are those of docs/derivations.md; each module maps them to
d2l's.

:mod:`.seq2seq` is the seed's model whole — embedding, GRU encoder, GRU decoder fed the
context at every step, dense layer, masked loss — forward and backward in one file, on
the fast model's own parameters, and tested equal to it.
"""

from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from .seq2seq import seq2seq_backward, seq2seq_forward
from .stack import stack_backward, stack_forward

__all__ = [
    "gru_backward",
    "gru_forward",
    "gru_step_backward",
    "gru_step_forward",
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "seq2seq_backward",
    "seq2seq_forward",
    "stack_backward",
    "stack_forward",
]
