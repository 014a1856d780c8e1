"""minis2s's models written with torch.nn, for parity tests and benchmarks: the encoder
and a twin of each decoder (:data:`TORCH_DECODERS`, by the names of
:data:`minis2s.model.DECODERS`), with torch's module for each cell (:data:`MODULES`, by
the names of :data:`minis2s.ops.CELLS`).

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
    def __init__(self, cfg):
        super().__init__()
        self.embedding = nn.Embedding(cfg.src_vocab_size, cfg.embed_size)
        self.rnn = MODULES[cfg.cell](cfg.embed_size, cfg.num_hiddens, cfg.num_layers,
                                     dropout=_between(cfg.dropout, cfg.num_layers),
                                     bidirectional=cfg.bidirectional)


def _decoder_stack(cfg, input_size):
    """The decoder's stack: ``cfg.decoder_units`` units, no directions."""
    return MODULES[cfg.cell](input_size, cfg.decoder_units, cfg.num_layers,
                             dropout=_between(cfg.dropout, cfg.num_layers))


def _add_bridge(module, cfg):
    """With ``cfg.has_bridge``, the decoder's ``bridge`` (and, for the LSTM,
    ``bridge_c``): nn.Linear from the encoder's width to L·Wd, registered last."""
    module.bridges = ()
    if cfg.has_bridge:
        out = cfg.num_layers * cfg.decoder_units
        module.bridge = nn.Linear(cfg.encoder_width, out)
        module.bridges = (module.bridge,)
        if cfg.recurrent.paired:  # the cell state c too
            module.bridge_c = nn.Linear(cfg.encoder_width, out)
            module.bridges = (module.bridge, module.bridge_c)


def _add_deep(module, cfg):
    """With ``--output-layer deep``, the decoder's ``deep``: nn.Linear from
    [output ; context ; embedding] to Wd units, under tanh, before the dense layer."""
    module.deep = None
    if cfg.output_layer == "deep":
        module.deep = nn.Linear(cfg.decoder_units + cfg.encoder_width + cfg.embed_size,
                                cfg.decoder_units)


def _deep(module, out, context, emb):
    """What the dense layer reads: ``out`` (T, N, Wd), or with a deep output
    ``tanh(deep([out ; context ; emb]))``."""
    if module.deep is None:
        return out
    return torch.tanh(module.deep(torch.cat([out, context, emb], dim=2)))


def _first_state(module, state):
    """The decoder's first state: the encoder's ``state``, or, with a bridge, every layer
    l from ``tanh(top Wᵀ + b)``'s columns l·Wd to (l+1)·Wd, top the encoder's top layer."""
    if not module.bridges:
        return state
    parts = state if isinstance(state, tuple) else (state,)
    L = parts[0].shape[0]
    out = []
    for bridge, s in zip(module.bridges, parts):
        s0 = torch.tanh(bridge(s[-1]))  # (N, L·Wd)
        out.append(s0.reshape(s0.shape[0], L, -1).permute(1, 0, 2).contiguous())
    return tuple(out) if isinstance(state, tuple) else out[0]


def _top_h(state):
    """The top layer's h of torch's state: h, or h of (h, c)."""
    return (state[0] if isinstance(state, tuple) else state)[-1]


class Seq2SeqDecoder(nn.Module):
    """The seed's decoder: the encoder's top-layer final h concatenated to every step's
    embedding, the encoder's final state as the first state."""

    def __init__(self, cfg):
        super().__init__()
        self.embedding = nn.Embedding(cfg.tgt_vocab_size, cfg.embed_size)
        self.rnn = _decoder_stack(cfg, cfg.embed_size + cfg.encoder_width)
        _add_deep(self, cfg)
        self.dense = nn.Linear(cfg.decoder_units, cfg.tgt_vocab_size)
        _add_bridge(self, cfg)

    def forward(self, tgt_in, state, enc_out, src_valid_len, masks):
        """tgt_in (N, T) -> logits (N, T, V); ``masks``: None, or the model's masks
        (their ``decoder`` part: L - 1 masks (T, N, W), or None)."""
        emb = self.embedding(tgt_in.T)  # (T, N, E)
        context = _top_h(state).expand(emb.shape[0], -1, -1)  # the same at every step
        x = torch.cat([emb, context], dim=2)
        state = _first_state(self, state)
        if masks is None:
            out, _ = self.rnn(x, state)
        else:
            out, _ = run_masked(self.rnn, x, state, masks.decoder)
        return self.dense(_deep(self, out, context, emb)).permute(1, 0, 2)  # (N, T, V)


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


class Seq2SeqAttentionDecoder(nn.Module):
    """d2l's Seq2SeqAttentionDecoder: a Python loop over the steps, the query being the
    top layer's h before each step, the cell reading [context ; embedding]."""

    def __init__(self, cfg):
        super().__init__()
        W, Wd = cfg.encoder_width, cfg.decoder_units
        self.attention = AdditiveAttention(W, Wd, cfg.num_hiddens, cfg.dropout)
        self.embedding = nn.Embedding(cfg.tgt_vocab_size, cfg.embed_size)
        self.rnn = _decoder_stack(cfg, cfg.embed_size + W)
        _add_deep(self, cfg)
        self.dense = nn.Linear(Wd, cfg.tgt_vocab_size)
        _add_bridge(self, cfg)

    def forward(self, tgt_in, state, enc_out, src_valid_len, masks):
        """tgt_in (N, T) -> logits (N, T, V); ``masks``: None, or the model's masks (their
        ``decoder`` part: layers (T, N, Wd) and weights (T, N, S), or None)."""
        state = _first_state(self, state)
        x = self.embedding(tgt_in.T)  # (T, N, E)
        values = enc_out.permute(1, 0, 2)  # (N, S, W)
        dec = None if masks is None else masks.decoder
        layer_masks = None if dec is None else dec.layers
        att_masks = None if dec is None else dec.weights
        outs, contexts = [], []
        for t, x_t in enumerate(x):  # d2l's loop over the decoder's steps
            mask = None if masks is None else (
                torch.ones_like(values[:, :, 0]) if att_masks is None
                else _as_mask(att_masks[t], values))
            context = self.attention(_top_h(state).unsqueeze(1), values, values,
                                     src_valid_len, mask)  # (N, 1, W)
            step_in = torch.cat([context, x_t.unsqueeze(1)], dim=-1).permute(1, 0, 2)
            if masks is None:
                out, state = self.rnn(step_in, state)
            else:
                layer = None if layer_masks is None else [m[t:t + 1] for m in layer_masks]
                out, state = run_masked(self.rnn, step_in, state, layer)
            outs.append(out)
            contexts.append(context.permute(1, 0, 2))  # (1, N, W)
        out = _deep(self, torch.cat(outs, dim=0), torch.cat(contexts, dim=0), x)
        return self.dense(out).permute(1, 0, 2)


TORCH_DECODERS = {"seq2seq": Seq2SeqDecoder, "attention": Seq2SeqAttentionDecoder}


class TorchSeq2Seq(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        for name, table in ((cfg.model, TORCH_DECODERS), (cfg.cell, MODULES)):
            if name not in table:
                raise ValueError(f"no PyTorch twin of {name!r}; there are "
                                 f"{', '.join(table)}")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = TORCH_DECODERS[cfg.model](cfg)

    def encode(self, src, masks=None):
        """src (N, S) -> ``(state, outputs)``: the decoder's initial state (L, N, dirs *
        H), a pair (h, c) of them for the LSTM, and the top layer's outputs (S, N,
        dirs·H). ``masks``: as for :meth:`forward`; only the encoder's are used."""
        x = self.encoder.embedding(src.T)
        if masks is None:
            out, state = self.encoder.rnn(x)
        else:
            out, state = run_masked(self.encoder.rnn, x, None, masks.encoder)
        L = self.cfg.num_layers

        def side_by_side(s):  # (2L, N, H) -> (L, N, 2H): directions side by side
            N, H = s.shape[1], s.shape[2]
            return s.reshape(L, 2, N, H).permute(0, 2, 1, 3).reshape(L, N, 2 * H)

        if self.cfg.bidirectional:
            state = tuple(map(side_by_side, state)) if isinstance(state, tuple) \
                else side_by_side(state)
        return state, out

    def forward(self, src, tgt_in, masks=None, src_valid_len=None):
        """src (N, S), tgt_in (N, T) -> logits (N, T, V).

        ``masks``: None, or minis2s's :class:`~minis2s.model.DropoutMasks` (arrays or
        tensors; their parts None where nothing drops). With masks, the model drops
        exactly those units and nothing else, in train and eval mode alike.
        ``src_valid_len`` (N,): what attention may read (default: all)."""
        state, enc_out = self.encode(src, masks)
        if src_valid_len is None:
            src_valid_len = torch.full((src.shape[0],), src.shape[1], device=src.device)
        return self.decoder(tgt_in, state, enc_out, src_valid_len, masks)


def masked_ce(logits, labels, valid_len, reduction="seq"):
    """The seed's MaskedSoftmaxCELoss, summed over the batch (or the per-token mean)."""
    T = labels.shape[1]
    mask = (torch.arange(T, device=logits.device)[None, :] < valid_len[:, None]
            ).to(logits.dtype)
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
