"""The seed's whole model on one screen: embedding, GRU encoder, GRU decoder that reads the
context at every step, dense layer and masked softmax cross-entropy; the forward pass,
then the backward pass read in reverse, every backward line commented.

It covers one configuration and refuses any other with a ValueError: the GRU cell, the
seed's decoder (``model="seq2seq"``, d2l's ``Seq2SeqDecoder``), L >= 1 layers, a one-way
encoder, no dropout (``dropout=0``: the fast model with ``masks=None`` computes the same).
Its parameters are the fast model's own (:func:`minis2s.model.init_params`: the same names
and layouts), so one dict feeds both; tests/test_one_screen.py holds the two equal to
1e-10 in float64, loss and every gradient, and this file to finite differences.

Shapes: N batch, S source steps, T target steps, E embedding size, H hidden units, V target
vocabulary, L layers. Inside, arrays are time-major: (S, N, ·) and (T, N, ·).

    encoder   layer 0 reads emb_src[src_s]; layer l reads layer l−1's outputs; h^l_{−1} = 0
    context   c = h^{L−1}_{S−1}, the top layer's final state                      (N, H)
    decoder   layer 0 reads [emb_tgt[tgt_in_t] ; c] at every step t (teacher forcing);
              layer l starts from the encoder's final state of layer l, h^l_{S−1}
    output    logits_t = top_t W_denseᵀ + b_dense, top_t the decoder's top-layer output
              at step t (N, H); all steps: (T, N, V)
    loss      Σ_n Σ_{t < valid_n} −log softmax(logits_t[n])[tgt_t[n]] · scale

with scale 1/T ("seq", the seed's reduction and the trainer's) or 1/#valid ("token"). The
source is read whole, padding included, as the seed's encoder reads it: its valid lengths
matter to attention only, not here.

The gradient enters the encoder two ways, both at its last step, S − 1:
  (1) through its final states, which start the decoder: BPTT through decoder layer l ends
      in the gradient of that layer's initial state, which is h^l_{S−1}'s;
  (2) through the context c, read at every decoder step through the context's columns of
      decoder weight_ih_l0: its gradient is that part of layer 0's input gradient, summed
      over the T steps.
c is h^{L−1}_{S−1}, so the top layer's final state gets (1) + (2); the layers below get (1)
only. Then BPTT runs through the encoder, layer by layer from the top. Drop either term and
every encoder gradient is wrong.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ...backend import array_module, index_add
from .gru import gru_backward, gru_forward

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # of each GRU layer, suffix _l{l}


class OneScreenCache(NamedTuple):
    src: Any  # (S, N) source ids
    tgt_in: Any  # (T, N) decoder input: <bos>, then the target shifted right
    enc_caches: list  # per encoder layer, the reference GRU's step caches
    dec_caches: list  # per decoder layer, the same
    top: Any  # (T, N, H) the decoder's top-layer outputs, which the dense layer read
    probs: Any  # (T, N, V) softmax of the logits
    onehot: Any  # (T, N, V) the labels
    weight: Any  # (T, N) each position's factor in the loss: scale, or 0 where padded
    params: Any  # by name, as the fast model's
    num_layers: int


def check_covered(cfg) -> None:
    """Refuse a configuration this file does not compute, naming each setting."""
    wrong = [f"{name}={got!r} (needs {want!r})" for name, got, want in
             [("cell", cfg.cell, "gru"), ("model", cfg.model, "seq2seq"),
              ("bidirectional", cfg.bidirectional, False), ("dropout", cfg.dropout, 0)]
             if got != want]
    if wrong:
        raise ValueError("the one-screen model covers the GRU seq2seq model (one-way "
                         "encoder, no dropout) only; got " + ", ".join(wrong))


def _layer(params, part, l):
    """The reference GRU's parameters of layer l of ``part`` ("encoder" or "decoder")."""
    return {name: params[f"{part}.rnn.{name}_l{l}"] for name in NAMES}


def seq2seq_forward(params, cfg, batch, reduction="seq"):
    """Teacher-forced loss (a 0-d array) of ``batch``: src (N, S), tgt_in and tgt (N, T),
    tgt_valid_len (N,) (src_valid_len is not read) -> ``(loss, cache)``."""
    check_covered(cfg)
    if reduction not in ("seq", "token"):
        raise ValueError(f"reduction must be 'seq' or 'token', not {reduction!r}")
    L = cfg.num_layers
    src, tgt_in, labels = batch.src.T, batch.tgt_in.T, batch.tgt.T  # time-major
    x = params["encoder.embedding.weight"][src]  # (S, N, E)
    xp = array_module(x)
    N, H = src.shape[1], params["encoder.rnn.weight_hh_l0"].shape[1]
    finals, enc_caches = [], []
    for l in range(L):  # the encoder, layer by layer, each from a zero state
        x, h_last, caches = gru_forward(x, xp.zeros((N, H), dtype=x.dtype),
                                        _layer(params, "encoder", l))  # x: (S, N, H)
        finals.append(h_last)  # (N, H): starts decoder layer l
        enc_caches.append(caches)
    context = finals[-1]  # (N, H): the top layer's final state
    T = tgt_in.shape[0]
    y = params["decoder.embedding.weight"][tgt_in]  # (T, N, E)
    x = xp.concatenate([y, xp.broadcast_to(context, (T, N, H))], axis=2)  # (T, N, E + H)
    dec_caches = []
    for l in range(L):  # the decoder: layer l starts where encoder layer l ended
        x, _, caches = gru_forward(x, finals[l], _layer(params, "decoder", l))  # (T, N, H)
        dec_caches.append(caches)  # its final state is not used
    logits = x @ params["decoder.dense.weight"].T + params["decoder.dense.bias"]  # (T, N, V)
    z = logits - logits.max(axis=2, keepdims=True)  # shifted: exp cannot overflow
    ez = xp.exp(z)
    probs = ez / ez.sum(axis=2, keepdims=True)  # softmax, kept for the backward
    log_probs = z - xp.log(ez.sum(axis=2, keepdims=True))  # log softmax
    onehot = (xp.arange(logits.shape[2]) == labels[..., None]).astype(logits.dtype)  # labels
    mask = xp.arange(T)[:, None] < batch.tgt_valid_len[None, :]  # (T, N): t < valid_len
    scale = 1.0 / T if reduction == "seq" else 1.0 / max(int(mask.sum()), 1)
    weight = mask.astype(logits.dtype) * scale  # 0 at padded positions
    loss = (-(log_probs * onehot).sum(axis=2) * weight).sum()  # weighted −log p(label)
    return loss, OneScreenCache(src, tgt_in, enc_caches, dec_caches, x, probs, onehot,
                                weight, params, L)


def loss_backward(dloss, cache: OneScreenCache):
    """dL/dlogits (T, N, V): dloss · weight · (softmax − onehot), exactly 0 where padded."""
    return dloss * cache.weight[..., None] * (cache.probs - cache.onehot)


def _embedding_grad(weight, ids, drows):
    """A looked-up table's gradient: each id's row sums the rows of drows it was read into."""
    dW = array_module(drows).zeros(weight.shape, dtype=drows.dtype)
    index_add(dW, ids.reshape(-1), drows.reshape(-1, weight.shape[1]))  # repeats add up
    return dW


def seq2seq_backward(dloss, cache: OneScreenCache) -> dict:
    """Every parameter's gradient, by the fast model's names: the forward read in reverse."""
    p, L = cache.params, cache.num_layers
    xp = array_module(cache.probs)
    grads = {}  # by name, filled from the loss down to the source embedding
    dlogits = loss_backward(dloss, cache)  # (T, N, V): the loss, first
    V, H = dlogits.shape[2], cache.top.shape[2]
    grads["decoder.dense.weight"] = (  # Σ over (t, n) of dlogits[t, n]ᵀ top[t, n]: rows folded
        dlogits.reshape(-1, V).T @ cache.top.reshape(-1, H))
    grads["decoder.dense.bias"] = dlogits.sum(axis=(0, 1))  # the bias is added at every position
    dx = dlogits @ p["decoder.dense.weight"]  # (T, N, H): the top decoder layer's outputs
    dfinals = [None] * L  # the gradient of each encoder layer's final state h^l_{S−1}
    for l in range(L - 1, -1, -1):  # BPTT through the decoder, top layer first
        dx, dfinals[l], layer_grads = gru_backward(dx, None, cache.dec_caches[l])  # None:
        #      final state unused; dfinals[l], the initial state's gradient: path (1)
        grads.update({f"decoder.rnn.{name}_l{l}": layer_grads[name]  # summed over steps
                      for name in NAMES})
    E = p["decoder.embedding.weight"].shape[1]  # dx (T, N, E + H): embedding first, then c
    grads["decoder.embedding.weight"] = _embedding_grad(  # layer 0 read [y ; c]: y's part
        p["decoder.embedding.weight"], cache.tgt_in, dx[:, :, :E])
    dcontext = dx[:, :, E:].sum(axis=0)  # (N, H), path (2): c was read at all T steps
    dfinals[-1] = dfinals[-1] + dcontext  # c is the top layer's final state: the paths add
    dx = xp.zeros((cache.src.shape[0], *dcontext.shape), dtype=dcontext.dtype)  # (S, N, H):
    #      nothing reads the top encoder layer's outputs, only its final state
    for l in range(L - 1, -1, -1):  # BPTT through the encoder, from its final states
        dx, _, layer_grads = gru_backward(dx, dfinals[l], cache.enc_caches[l])  # it started
        #      from zeros, a constant: its gradient is not needed
        grads.update({f"encoder.rnn.{name}_l{l}": layer_grads[name]  # summed over steps
                      for name in NAMES})
    grads["encoder.embedding.weight"] = _embedding_grad(  # layer 0 read emb_src[src]
        p["encoder.embedding.weight"], cache.src, dx)
    return grads
