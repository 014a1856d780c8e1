"""The seed's encoder-decoder written with torch.nn, for parity tests and benchmarks.

Module names follow minis2s's parameter names, so ``state_dict`` keys are identical and
weights move both ways. PyTorch is optional: only tests and ``minis2s bench --vs-torch``
import this module.

Dropout: called without masks, the GRU stacks are plain ``nn.GRU`` modules, which in train
mode draw their own dropout from torch's generator. Called with minis2s's masks
(:func:`minis2s.model.draw_dropout_masks`), the stacks run one layer at a time and each
non-top layer's output is multiplied by its mask, so both libraries drop the same units.
"""

import torch
from torch import nn
from torch.func import functional_call

_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _as_mask(mask, like):
    return None if mask is None else torch.as_tensor(mask, dtype=like.dtype, device=like.device)


def run_gru_masked(rnn: nn.GRU, x, h0, masks):
    """``rnn(x, h0)`` computed one layer at a time, inverted dropout given by ``masks``.

    x (T, N, D); h0 (L * dirs, N, H) or None; masks: None, or L - 1 masks shaped like a
    layer's output (T, N, dirs * H), forward direction's columns first, each multiplying
    the output of a layer but the last (a None entry keeps that layer's output as it is).
    Each layer is torch's own one-layer GRU run on ``rnn``'s layer-k parameters (through
    ``functional_call``), so gradients reach ``rnn.weight_ih_l{k}`` and the rest. ``rnn``'s
    own dropout is never applied. Returns ``(out, h_n)`` as ``rnn`` does.
    """
    L, dirs, H = rnn.num_layers, 2 if rnn.bidirectional else 1, rnn.hidden_size
    if masks is not None and len(masks) != L - 1:
        raise ValueError(f"expected {L - 1} dropout masks, got {len(masks)}")
    out, h_n = x, []
    for k in range(L):
        layer = nn.GRU(out.shape[-1], H, 1, bidirectional=rnn.bidirectional,
                       device="meta")  # a shape only: every parameter comes from rnn
        params = {}
        for name in _WEIGHTS:
            for sfx in ("", "_reverse")[:dirs]:
                params[f"{name}_l0{sfx}"] = getattr(rnn, f"{name}_l{k}{sfx}")
        hk = None if h0 is None else h0[k * dirs:(k + 1) * dirs]
        out, hk_n = functional_call(layer, params, (out, hk))
        h_n.append(hk_n)
        if k < L - 1 and masks is not None and masks[k] is not None:
            out = out * _as_mask(masks[k], out)
    return out, torch.cat(h_n, dim=0)


class Encoder(nn.Module):
    def __init__(self, vocab, embed, hidden, layers, dropout, bidirectional):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = nn.GRU(embed, hidden, layers, dropout=dropout, bidirectional=bidirectional)


class Decoder(nn.Module):
    def __init__(self, vocab, embed, hidden, layers, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = nn.GRU(embed + hidden, hidden, layers, dropout=dropout)
        self.dense = nn.Linear(hidden, vocab)


class TorchSeq2Seq(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.src_vocab_size, cfg.embed_size, cfg.num_hiddens,
                               cfg.num_layers, cfg.dropout, cfg.bidirectional)
        self.decoder = Decoder(cfg.tgt_vocab_size, cfg.embed_size, cfg.decoder_hiddens,
                               cfg.num_layers, cfg.dropout)

    def encode(self, src, masks=None):
        """src (N, T) -> the decoder's initial state (L, N, dirs * H). ``masks``: as for
        :meth:`forward`; only the encoder's (``masks[0]``) are used."""
        x = self.encoder.embedding(src.T)
        if masks is None:
            _, h_n = self.encoder.rnn(x)
        else:
            _, h_n = run_gru_masked(self.encoder.rnn, x, None, masks[0])
        L = self.cfg.num_layers
        if self.cfg.bidirectional:  # (2L, N, H) -> (L, N, 2H): directions side by side
            N, H = h_n.shape[1], h_n.shape[2]
            h_n = h_n.reshape(L, 2, N, H).permute(0, 2, 1, 3).reshape(L, N, 2 * H)
        return h_n

    def forward(self, src, tgt_in, masks=None):
        """src (N, T_src), tgt_in (N, T_tgt) -> logits (N, T_tgt, V).

        ``masks``: None, or a pair ``(encoder, decoder)`` such as minis2s's DropoutMasks
        (lists of L - 1 arrays or tensors, (T_src, N, dirs * H) and (T_tgt, N, Hd), or None
        for no dropout). With masks, both GRU stacks drop exactly those units and nothing
        else, in train and eval mode alike.
        """
        state = self.encode(src, masks)
        x = self.decoder.embedding(tgt_in.T)  # (T, N, E)
        context = state[-1].expand(x.shape[0], -1, -1)  # encoder's top layer, every step
        x = torch.cat([x, context], dim=2)
        if masks is None:
            out, _ = self.decoder.rnn(x, state)
        else:
            out, _ = run_gru_masked(self.decoder.rnn, x, state, masks[1])
        return self.decoder.dense(out).permute(1, 0, 2)  # (N, T, V)


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
