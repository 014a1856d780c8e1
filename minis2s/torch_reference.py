"""The seed's encoder-decoder written with torch.nn, for parity tests and benchmarks, with
the GRU (the seed's), an LSTM or a vanilla RNN as its cell.

Module names follow minis2s's parameter names, so ``state_dict`` keys are identical and
weights move both ways. PyTorch is optional: only tests and ``minis2s bench --vs-torch``
import this module.

Dropout: called without masks, the stacks are plain ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN``
modules, which in train mode draw their own dropout from torch's generator. Called with
minis2s's masks (:func:`minis2s.model.draw_dropout_masks`), the stacks run one layer at a
time and each non-top layer's output is multiplied by its mask, so both libraries drop
the same units.
"""

import torch
from torch import nn
from torch.func import functional_call

_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
MODULES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}  # nn.RNN: tanh, as minis2s's


def _as_mask(mask, like):
    return None if mask is None else torch.as_tensor(mask, dtype=like.dtype, device=like.device)


def run_masked(rnn: nn.RNNBase, x, state0, masks):
    """``rnn(x, state0)`` computed one layer at a time, inverted dropout given by ``masks``.

    x (T, N, D); state0: h0 (L * dirs, N, H), or (h0, c0) for an LSTM, or None; masks:
    None, or L - 1 masks shaped like a layer's output (T, N, dirs * H), forward
    direction's columns first, each multiplying the output of a layer but the last (a None
    entry keeps that layer's output as it is). Each layer is torch's own one-layer module
    of the same kind, run on ``rnn``'s layer-k parameters (through ``functional_call``), so
    gradients reach ``rnn.weight_ih_l{k}`` and the rest. ``rnn``'s own dropout is never
    applied. Returns ``(out, state_n)`` as ``rnn`` does.
    """
    L, dirs, H = rnn.num_layers, 2 if rnn.bidirectional else 1, rnn.hidden_size
    paired = isinstance(rnn, nn.LSTM)
    if masks is not None and len(masks) != L - 1:
        raise ValueError(f"expected {L - 1} dropout masks, got {len(masks)}")
    out, finals = x, []
    for k in range(L):
        layer = type(rnn)(out.shape[-1], H, 1, bidirectional=rnn.bidirectional,
                          device="meta")  # a shape only: every parameter comes from rnn
        params = {}
        for name in _WEIGHTS:
            for sfx in ("", "_reverse")[:dirs]:
                params[f"{name}_l0{sfx}"] = getattr(rnn, f"{name}_l{k}{sfx}")
        rows = slice(k * dirs, (k + 1) * dirs)
        sk = None if state0 is None else (
            tuple(s[rows] for s in state0) if paired else state0[rows])
        out, sk_n = functional_call(layer, params, (out, sk))
        finals.append(sk_n)
        if k < L - 1 and masks is not None and masks[k] is not None:
            out = out * _as_mask(masks[k], out)
    if paired:
        return out, tuple(torch.cat([f[j] for f in finals], dim=0) for j in range(2))
    return out, torch.cat(finals, dim=0)


def _between(dropout, layers):
    """torch's stacks drop only between layers (and warn about one layer with dropout)."""
    return dropout if layers > 1 else 0.0


class Encoder(nn.Module):
    def __init__(self, cell, vocab, embed, hidden, layers, dropout, bidirectional):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = MODULES[cell](embed, hidden, layers, dropout=_between(dropout, layers),
                                 bidirectional=bidirectional)


class Decoder(nn.Module):
    def __init__(self, cell, vocab, embed, hidden, layers, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = MODULES[cell](embed + hidden, hidden, layers,
                                 dropout=_between(dropout, layers))
        self.dense = nn.Linear(hidden, vocab)


class AdditiveAttention(nn.Module):
    """d2l's additive attention, its padded positions weighted exactly 0."""

    def __init__(self, key_size, query_size, num_hiddens, dropout):
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens, mask=None):
        """queries (N, 1, Dq), keys and values (N, S, ·), valid_lens (N,); ``mask`` (N, S)
        replaces the module's own dropout on the weights (None: the module's)."""
        features = torch.tanh(self.W_q(queries).unsqueeze(2) + self.W_k(keys).unsqueeze(1))
        scores = self.w_v(features).squeeze(-1)  # (N, 1, S)
        S = scores.shape[-1]
        valid = torch.arange(S, device=scores.device)[None, None, :] < valid_lens[:, None, None]
        weights = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=-1)
        self.weights = weights
        weights = self.dropout(weights) if mask is None else weights * mask[:, None, :]
        return torch.bmm(weights, values)


class AttentionDecoder(nn.Module):
    """d2l's Seq2SeqAttentionDecoder: a Python loop over the steps, the query being the
    top layer's h before each step, the cell reading [context ; embedding]."""

    def __init__(self, cell, vocab, embed, hidden, layers, dropout, attention_hiddens):
        super().__init__()
        self.attention = AdditiveAttention(hidden, hidden, attention_hiddens, dropout)
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = MODULES[cell](embed + hidden, hidden, layers,
                                 dropout=_between(dropout, layers))
        self.dense = nn.Linear(hidden, vocab)


class TorchSeq2Seq(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        cell = cfg.cell
        self.paired = cell == "lstm"
        self.attention = cfg.model == "attention"
        self.encoder = Encoder(cell, cfg.src_vocab_size, cfg.embed_size, cfg.num_hiddens,
                               cfg.num_layers, cfg.dropout, cfg.bidirectional)
        if self.attention:
            self.decoder = AttentionDecoder(cell, cfg.tgt_vocab_size, cfg.embed_size,
                                            cfg.decoder_hiddens, cfg.num_layers, cfg.dropout,
                                            cfg.num_hiddens)
        else:
            self.decoder = Decoder(cell, cfg.tgt_vocab_size, cfg.embed_size,
                                   cfg.decoder_hiddens, cfg.num_layers, cfg.dropout)

    def encode(self, src, masks=None, outputs=False):
        """src (N, T) -> the decoder's initial state (L, N, dirs * H), a pair (h, c) of
        them for the LSTM (and, with ``outputs``, the top layer's outputs (T, N, dirs·H)).
        ``masks``: as for :meth:`forward`; only the encoder's (``masks[0]``) are used."""
        x = self.encoder.embedding(src.T)
        if masks is None:
            out, state = self.encoder.rnn(x)
        else:
            out, state = run_masked(self.encoder.rnn, x, None, masks[0])
        L = self.cfg.num_layers

        def side_by_side(s):  # (2L, N, H) -> (L, N, 2H): directions side by side
            N, H = s.shape[1], s.shape[2]
            return s.reshape(L, 2, N, H).permute(0, 2, 1, 3).reshape(L, N, 2 * H)

        if self.cfg.bidirectional:
            state = tuple(map(side_by_side, state)) if self.paired else side_by_side(state)
        return (state, out) if outputs else state

    def forward(self, src, tgt_in, masks=None, src_valid_len=None):
        """src (N, T_src), tgt_in (N, T_tgt) -> logits (N, T_tgt, V).

        ``masks``: None, or ``(encoder, decoder[, attention])`` such as minis2s's
        DropoutMasks (lists of L - 1 arrays or tensors, (T_src, N, dirs * H) and (T_tgt, N,
        Hd), and (T_tgt, N, T_src) on the attention weights; or None for no dropout). With
        masks, the model drops exactly those units and nothing else, in train and eval
        mode alike. ``src_valid_len`` (N,): what attention may read (default: all).
        """
        state, enc_out = self.encode(src, masks, outputs=True)
        x = self.decoder.embedding(tgt_in.T)  # (T, N, E)
        if self.attention:
            return self._attend(x, state, enc_out, src_valid_len, masks)
        h = state[0] if self.paired else state
        context = h[-1].expand(x.shape[0], -1, -1)  # encoder's top-layer h, every step
        x = torch.cat([x, context], dim=2)
        if masks is None:
            out, _ = self.decoder.rnn(x, state)
        else:
            out, _ = run_masked(self.decoder.rnn, x, state, masks[1])
        return self.decoder.dense(out).permute(1, 0, 2)  # (N, T, V)

    def _attend(self, x, state, enc_out, src_valid_len, masks):
        values = enc_out.permute(1, 0, 2)  # (N, S, Hk)
        if src_valid_len is None:
            src_valid_len = torch.full((values.shape[0],), values.shape[1])
        att_masks = None if masks is None or len(masks) < 3 else masks[2]
        outs = []
        for t, x_t in enumerate(x):  # d2l's loop over the decoder's steps
            h = state[0] if self.paired else state
            mask = None if masks is None else (
                torch.ones_like(values[:, :, 0]) if att_masks is None
                else _as_mask(att_masks[t], values))
            context = self.decoder.attention(h[-1].unsqueeze(1), values, values,
                                             src_valid_len, mask)  # (N, 1, Hk)
            step_in = torch.cat([context, x_t.unsqueeze(1)], dim=-1).permute(1, 0, 2)
            if masks is None:
                out, state = self.decoder.rnn(step_in, state)
            else:
                layer = None if masks[1] is None else [m[t:t + 1] for m in masks[1]]
                out, state = run_masked(self.decoder.rnn, step_in, state, layer)
            outs.append(out)
        return self.decoder.dense(torch.cat(outs, dim=0)).permute(1, 0, 2)


def masked_ce(logits, labels, valid_len, reduction="seq"):
    """The seed's MaskedSoftmaxCELoss, summed over the batch (or the per-token mean)."""
    T = labels.shape[1]
    mask = (torch.arange(T)[None, :] < valid_len[:, None]).to(logits.dtype)
    nll = nn.functional.cross_entropy(logits.permute(0, 2, 1), labels, reduction="none")
    if reduction == "seq":
        return (nll * mask).mean(dim=1).sum()
    return (nll * mask).sum() / mask.sum().clamp(min=1)


def seed_grad_clipping(net, theta):
    """The seed's grad_clipping: scale by theta / norm exactly (``clip_grad_norm_`` divides
    by norm + 1e-6 instead). Returns the norm before clipping."""
    params = [p for p in net.parameters() if p.grad is not None]
    norm = torch.sqrt(sum(torch.sum(p.grad**2) for p in params))
    if norm > theta:
        for p in params:
            p.grad.mul_(theta / norm)
    return float(norm)
