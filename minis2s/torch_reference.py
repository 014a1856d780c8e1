"""The seed's encoder-decoder written with torch.nn, for parity tests and benchmarks.

Module names follow minis2s's parameter names, so ``state_dict`` keys are identical and
weights move both ways. PyTorch is optional: only tests and ``minis2s bench --vs-torch``
import this module.
"""

import torch
from torch import nn


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

    def encode(self, src):
        _, h_n = self.encoder.rnn(self.encoder.embedding(src.T))
        L = self.cfg.num_layers
        if self.cfg.bidirectional:  # (2L, N, H) -> (L, N, 2H): directions side by side
            N, H = h_n.shape[1], h_n.shape[2]
            h_n = h_n.reshape(L, 2, N, H).permute(0, 2, 1, 3).reshape(L, N, 2 * H)
        return h_n

    def forward(self, src, tgt_in):
        state = self.encode(src)
        x = self.decoder.embedding(tgt_in.T)  # (T, N, E)
        context = state[-1].expand(x.shape[0], -1, -1)  # encoder's top layer, every step
        out, _ = self.decoder.rnn(torch.cat([x, context], dim=2), state)
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
