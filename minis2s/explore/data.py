"""What the explorer shows, for one model and one sentence, as JSON-able data.

Plain functions over a loaded checkpoint (:class:`Explorer`), no web code:

* :meth:`Explorer.translate` — the greedy and the beam-search translation, with their
  attention weights, as ``minis2s translate --json`` computes them;
* :func:`beam_tree` — beam search for one sentence, recording every hypothesis each step
  considered: kept, pruned (among each live row's K best extensions but not among the
  step's K best) or finished;
* :func:`connectivity` — for each output token y_t, the norm of ∂log p(y_t)/∂e_s for every
  source embedding e_s and every decoder input embedding, read off the hand-derived
  backward (one backward per target step), together with the gradient each step's loss
  alone sends to every layer's state (the per-sentence view of ``gradflow
  --by-distance``) and the whole ∂L/∂h_t with what clipping does to it.

Decoding runs in float32, as ``minis2s translate``. :func:`connectivity` computes in
float64 by default (the tests check those numbers against finite differences);
:meth:`Explorer.explore` asks it for float32, which agrees to about 1e-6 relative and is
about twice as fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend import get_backend, to_numpy
from ..data import CORPUS_TEXT, make_batch
from ..decode import encode_sentences, translations
from ..model import encoder_backward, encoder_forward
from ..model.steps import select_rows, start, step
from ..ops import reduction_scale

MAX_BEAM = 16  # the widest beam the explorer searches
MAX_CHARS = 1000  # the longest sentence it reads
MAX_LENGTH_PENALTY = 10.0


class ExploreError(ValueError):
    """Input the explorer refuses, with a message a person can act on."""


@dataclass
class Explorer:
    """One checkpoint, ready to explore: its parameters in float32 for decoding and in
    float64 for gradients. ``name`` labels it on the page; ``precision`` is the one
    :func:`connectivity` runs in for :meth:`explore`."""

    ck: object  # minis2s.checkpoint.Checkpoint
    name: str
    path: str | None = None
    precision: str = "float32"

    def __post_init__(self):
        self.backend = get_backend("numpy", "float32")
        self.backend64 = get_backend("numpy", "float64")
        self.params = self.ck.params_on(self.backend)
        self.params64 = self.ck.params_on(self.backend64)

    @classmethod
    def load(cls, path, name: str | None = None) -> Explorer:
        from .. import checkpoint

        resolved = checkpoint.resolve(path)
        ck = checkpoint.load(resolved)
        return cls(ck, name or model_name(path, ck), str(resolved))

    @property
    def num_steps(self) -> int:
        return self.ck.data.num_steps

    def settings(self) -> dict:
        """The model's settings, data spec and training record (as ``minis2s info``)."""
        from ..api import Model

        about = Model(self.ck, self.backend, Path(self.path) if self.path else None).info()
        history = self.ck.training.get("history")
        last = history[-1] if isinstance(history, list) and history else None
        about["training"]["last_epoch"] = last if isinstance(last, dict) else None
        about["training"]["grad_clip"] = _grad_clip(self.ck)
        about["name"] = self.name
        return _jsonable(about)

    def check_words(self, sentence: str) -> None:
        """Refuse a sentence none of whose words the model knows (all ``<unk>``)."""
        from ..data import preprocess, tokenize

        words = tokenize(preprocess(sentence))
        vocab = self.ck.src_vocab
        if words and all(vocab[w] == vocab.unk for w in words):
            raise ExploreError("the model knows none of these words; try one of: "
                               + ", ".join(vocab.idx_to_token[4:9]))

    def translate(self, sentence: str, beam: int, length_penalty: float,
                  tree: dict | None = None) -> dict:
        """Greedy and beam translations of ``sentence`` with their attention weights, as
        :func:`minis2s.decode.translations` (and so ``minis2s translate``) gives them.
        With ``tree``, :func:`beam_tree`'s for the same beam and length penalty, the beam
        translation is its choice (the same search: one is not run twice); a beam of 1
        is the greedy translation."""
        ck = self.ck
        said: list[str] = []
        out = {}
        for key, k in (("greedy", 1), ("beam", beam)):
            if key == "beam" and k == 1:
                out[key] = dict(out["greedy"])
                continue
            if key == "beam" and tree is not None:
                valid = len(out["source_tokens"])
                w = tree["_weights"]
                out[key] = {"tokens": tree["tokens"],
                            "text": CORPUS_TEXT.target_text(tree["tokens"]),
                            "attention": None if w is None else w[:, :valid].tolist()}
                continue
            t = translations(self.params, ck.config, ck.src_vocab, ck.tgt_vocab, [sentence],
                             self.num_steps, self.backend, warn=said.append, beam=k,
                             length_penalty=length_penalty, with_weights=True)[0]
            out[key] = {"tokens": t.tokens, "text": t.text,
                        "attention": None if t.weights is None else t.weights.tolist()}
            out["source_tokens"] = t.source
        out["warnings"] = sorted(set(said))
        return {"greedy": out["greedy"], "beam": out["beam"],
                "source_tokens": out["source_tokens"], "warnings": out["warnings"]}

    def explore(self, sentence: str, beam: int = 4, length_penalty: float = 0.75,
                parts=("translation", "beam", "connectivity")) -> dict:
        """Every view for one sentence, checked first (:func:`check_request`)."""
        check_request(sentence, beam, length_penalty)
        self.check_words(sentence)
        result = {"model": self.name, "sentence": sentence, "beam_size": beam,
                  "length_penalty": length_penalty}
        tree = None
        if "beam" in parts:
            tree = _beam_tree(self, sentence, beam, length_penalty)
            result["beam_tree"] = {k: v for k, v in tree.items() if k != "_weights"}
        if "translation" in parts:
            result["translation"] = self.translate(sentence, beam, length_penalty, tree)
        if "connectivity" in parts:
            tokens = (result["translation"]["greedy"]["tokens"] if "translation" in result
                      else self.translate(sentence, 1, 0.75)["greedy"]["tokens"])
            result["gradients"] = connectivity(self, sentence, tokens, self.precision)
        return result


def model_name(path, ck) -> str:
    """A short label: the checkpoint's folder, decoder and cell."""
    p = Path(path)
    folder = p.parent if p.suffix == ".npz" else p
    return f"{folder.name or folder} ({ck.config.model}, {ck.config.cell})"


def _grad_clip(ck):
    tr = ck.training
    for key in ("grad_clip", "clip"):
        value = tr.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


def check_request(sentence, beam, length_penalty) -> None:
    """Refuse what the explorer does not read: a sentence that is not text, empty, or
    longer than :data:`MAX_CHARS` characters; a beam outside 1..:data:`MAX_BEAM`; a
    length penalty outside 0..:data:`MAX_LENGTH_PENALTY`."""
    if not isinstance(sentence, str):
        raise ExploreError("the sentence must be text")
    if not sentence.strip():
        raise ExploreError("type a sentence to translate (it is empty)")
    if len(sentence) > MAX_CHARS:
        raise ExploreError(f"the sentence has {len(sentence)} characters; the explorer reads "
                           f"at most {MAX_CHARS}")
    if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= MAX_BEAM:
        raise ExploreError(f"the beam width must be a whole number from 1 to {MAX_BEAM}, "
                           f"not {beam!r}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not 0 <= length_penalty <= MAX_LENGTH_PENALTY:
        raise ExploreError("the length penalty must be a number from 0 to "
                           f"{MAX_LENGTH_PENALTY:g}, not {length_penalty!r}")


def _source(ex: Explorer, sentence: str):
    """The source ids the model reads (1, S) and their valid length."""
    src = encode_sentences([sentence], ex.ck.src_vocab, ex.num_steps)
    valid = int((src != ex.ck.src_vocab.pad).sum())
    return src, valid


def _log_softmax(logits):
    z = to_numpy(logits).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def beam_tree(ex: Explorer, sentence: str, beam: int, length_penalty: float) -> dict:
    """Beam search for one sentence, as :func:`minis2s.decode.beam_search` runs it, with
    every hypothesis it looked at.

    Each step, each live hypothesis offers its K best one-token extensions; the K best of
    all those offered are kept, the rest pruned. A kept one ending in ``<eos>`` finishes.
    Nodes: ``id``, ``parent`` (None for the root, ``<bos>``), ``step`` (1-based),
    ``token``, ``log_prob`` (log P so far, float64), ``score`` (log P / L^alpha, L its
    tokens with ``<eos>``), ``status`` (``"root"``, ``"kept"``, ``"pruned"``,
    ``"finished"``; ``"live"`` for a hypothesis still live when the steps ran out).
    ``best`` is the node id of the chosen hypothesis and ``tokens`` its output."""
    tree = _beam_tree(ex, sentence, beam, length_penalty)
    del tree["_weights"]
    return tree


def _beam_tree(ex: Explorer, sentence: str, beam: int, length_penalty: float) -> dict:
    """:func:`beam_tree`, with ``"_weights"``: the chosen hypothesis's attention weights
    (steps, S) as :func:`minis2s.decode.beam_search` gives them (None if the decoder does
    not attend)."""
    ck, cfg = ex.ck, ex.ck.config
    tv = ck.tgt_vocab
    xp = ex.backend.xp
    src, valid = _source(ex, sentence)
    K, V = beam, cfg.tgt_vocab_size
    state, memory = start(ex.params, cfg, xp.asarray(src), xp.asarray([valid]))
    nodes = [{"id": 0, "parent": None, "step": 0, "token": "<bos>", "log_prob": 0.0,
              "score": 0.0, "status": "root"}]
    live = [0]  # node id of each live row
    tokens = [[]]
    attends = cfg.decoder.attends
    history = [[]]  # each live row's attention weights so far
    logp = np.zeros(1)
    prev = xp.full(1, tv.bos, dtype=src.dtype)
    best = None  # (score, node id, tokens, attention weights)

    def score_of(n_tokens, lp, finished):
        return lp / (n_tokens + finished) ** length_penalty

    def offer(node_id, toks, lp, finished, weights):
        nonlocal best
        s = score_of(len(toks), lp, finished)
        if best is None or s > best[0]:
            best = (s, node_id, toks, weights)

    for t in range(1, ex.num_steps + 1):
        logits, state, alpha = step(ex.params, cfg, prev, state, memory)
        alpha = to_numpy(alpha) if attends else None
        cand = logp[:, None] + _log_softmax(logits)  # (B, V)
        C = min(K, V)
        offered = []  # (log P, row, token)
        for r in range(len(live)):
            top = np.argsort(-cand[r], kind="stable")[:C]
            offered += [(float(cand[r, v]), r, int(v)) for v in top]
        order = sorted(range(len(offered)), key=lambda i: -offered[i][0])
        kept = set(order[:K])
        new_live, new_tokens, new_logp, rows, new_history = [], [], [], [], []
        for i, (lp, r, v) in enumerate(offered):
            finished = v == tv.eos
            toks = tokens[r] + ([] if finished else [v])
            status = ("finished" if finished else "kept") if i in kept else "pruned"
            node = {"id": len(nodes), "parent": live[r], "step": t,
                    "token": tv.to_tokens([v])[0], "log_prob": lp,
                    "score": score_of(len(toks), lp, finished), "status": status}
            nodes.append(node)
            weights = history[r] + [alpha[r]] if attends else None
            if status == "finished":
                offer(node["id"], toks, lp, True, weights)
            elif status == "kept":
                new_live.append(node["id"])
                new_tokens.append(toks)
                new_logp.append(lp)
                rows.append(r)
                new_history.append(weights)
        if not new_live:
            break
        live, tokens, logp = new_live, new_tokens, np.array(new_logp)
        history = new_history
        state, memory = select_rows(cfg, state, memory, xp.asarray(rows))
        prev = xp.asarray([tokens[i][-1] for i in range(len(tokens))]).astype(src.dtype)
    else:
        for r, node_id in enumerate(live):
            nodes[node_id]["status"] = "live"
            offer(node_id, tokens[r], float(logp[r]), False, history[r])
    weights = None if best[3] is None else np.array(best[3], dtype=np.float64)
    return {"nodes": nodes, "best": best[1], "tokens": tv.to_tokens(best[2]),
            "text": " ".join(tv.to_tokens(best[2])), "beam_size": K,
            "length_penalty": length_penalty, "_weights": weights}


def connectivity(ex: Explorer, sentence: str, output_tokens: list[str],
                 precision: str = "float64") -> dict:
    """Exact gradients for one sentence and an output (``output_tokens``, without
    ``<eos>``; the greedy translation on the page), the model teacher-forced on it.

    * ``source``: ``[t][s]`` = ‖∂log p(y_t)/∂e_s‖, e_s the embedding the encoder reads at
      source position s (``source_tokens``, ``<eos>`` included), y_t the t-th output
      token (``target_tokens``: the output and ``<eos>``);
    * ``decoder_inputs``: ``[t][u]`` = ‖∂log p(y_t)/∂d_u‖, d_u the embedding of the
      decoder's input at step u ≤ t (``<bos>``, y_1, ...); zero for u > t;
    * ``state``: ``{"encoder": [l][t][s], "decoder": [l][t][u]}`` = ‖∂L_t/∂h‖ of layer l's
      state at source step s or target step u, L_t = −log p(y_t) (for a bidirectional
      encoder both directions' h together);
    * ``flow``: the whole ∂L/∂h_t per layer and step (the seed's loss, the numbers
      :func:`minis2s.gradflow.gradient_flow` gives for this pair), the loss, the parameter
      gradient's norm and ``clip_factor``, the factor the checkpoint's clipping threshold
      (if recorded; else 1) scales every gradient by.

    One forward and one backward of a batch with one row per output token y_t, each row
    the sentence and the output, the gradient of row t kept at target step t alone (as
    :func:`~minis2s.model.seq2seq_backward` with ``target_step`` does for every row). The
    decoder runs to the output's length only (it is causal: later steps change nothing
    here), and the output layer and the softmax run at each row's own step only (N rows,
    not N × T): the decoder's forward and backward see an identity in place of the output
    layer, so its "logits" are the top layer's outputs and the gradient it is given is
    the one the real output layer sends back from row t's step t; the output layer's own
    gradient is formed from those N rows.
    Per-position embedding gradients come from one trick, not finite differences: every
    (row, position) gets its own row of the embedding table (a copy of its token's row),
    so the table's gradient, which the backward returns, holds each one apart.

    ``precision``: ``"float64"`` (the default, which the tests hold against finite
    differences) or ``"float32"`` (what the page shows: about twice as fast, the same
    numbers to about 1e-6 relative).
    """
    ck, cfg = ex.ck, ex.ck.config
    if cfg.output_layer != "dense":
        raise ExploreError("connectivity needs a decoder whose output layer is "
                           "decoder.dense alone (not --output-layer deep)")
    S = T = ex.num_steps
    src, valid = _source(ex, sentence)
    tv = ck.tgt_vocab
    out_ids = tv[list(output_tokens)] + [tv.eos]
    out_ids = out_ids[:T]
    n_out = len(out_ids)
    tgt = np.asarray([out_ids], dtype=np.int64)  # (1, n_out): the decoder stops there
    batch = make_batch(src, [valid], tgt, [n_out], tv.bos)
    N = n_out  # one row per output token y_t, its loss alone
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision must be float32 or float64, not {precision!r}")
    p = dict((ex.params64 if precision == "float64" else ex.params).items())
    batch_ids = {"encoder.embedding.weight": batch.src[0],
                 "decoder.embedding.weight": batch.tgt_in[0]}
    # one embedding row per (row, position): the table's gradient is then per position
    p["encoder.embedding.weight"] = np.tile(p["encoder.embedding.weight"][batch.src[0]],
                                            (N, 1))
    p["decoder.embedding.weight"] = np.tile(p["decoder.embedding.weight"][batch.tgt_in[0]],
                                            (N, 1))
    dense_w, dense_b = p["decoder.dense.weight"], p["decoder.dense.bias"]
    W = dense_w.shape[1]
    dtype = dense_w.dtype
    p["decoder.dense.weight"] = np.eye(W, dtype=dtype)  # the "logits": the top outputs
    p["decoder.dense.bias"] = np.zeros(W, dtype=dtype)
    rows = np.arange(N, dtype=np.int64)[:, None]
    # row t has t + 1 steps (its loss is at step t, and the decoder is causal): packed,
    # rows longest first, step u runs only the rows t >= u
    batch = make_batch(rows * S + np.arange(S), np.full(N, valid), np.repeat(tgt, N, axis=0),
                       np.arange(1, N + 1), tv.bos)
    batch = batch._replace(tgt_in=rows * n_out + np.arange(n_out))
    pk = batch.packing
    encoded, enc_cache = encoder_forward(p, cfg, batch.src[pk.order],
                                         batch.src_valid_len[pk.order])
    outputs, dec_cache = cfg.decoder.forward(p, cfg, batch.tgt_in[pk.rows, pk.steps], encoded,
                                             batch_sizes=pk.batch_sizes)  # (M, W)
    if outputs.shape != (len(pk.rows), W):
        raise ExploreError("connectivity needs a decoder whose output layer is "
                           "decoder.dense")
    diag = np.arange(N)
    last = np.flatnonzero(pk.steps == pk.rows)  # each row's own step, the last it runs
    last = last[np.argsort(pk.rows[last])]
    x = outputs[last]  # (N, W): row t's top output at its step t
    z = x @ dense_w.T + dense_b  # (N, V): the logits of step t
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    # the seed's loss scales each step by 1/T: T times it is -log p(y_t), whose gradient
    # with respect to the logits is softmax - one-hot
    dz = np.exp(log_p)
    dz[diag, out_ids] -= 1.0
    dout = np.zeros_like(outputs)
    dout[last] = dz @ dense_w
    dec = cfg.decoder.backward(dout, dec_cache, "state")
    enc = encoder_backward(dec.dstate, dec.doutputs, enc_cache, "state")
    dec.params["decoder.dense.weight"] = dz.T @ x
    dec.params["decoder.dense.bias"] = dz.sum(axis=0)
    loss = -log_p[diag, out_ids].sum() * reduction_scale("seq", T, n_out)
    L, dirs = cfg.num_layers, cfg.num_directions
    unsort = np.argsort(pk.order)  # the encoder's rows are longest first

    def enc_h(k):  # layer k's ∂L_t/∂h_s, (S, N, dirs·H), both directions side by side
        g = np.concatenate([to_numpy(enc.recorded[k * dirs + dd].h).reshape(S, N, -1)
                            for dd in range(dirs)], axis=2)
        return g[:, unsort]

    def dec_sq(k):  # layer k's packed rows -> (N, n_out) squared norms, 0 where not run
        grid = np.zeros((N, n_out))
        grid[pk.rows, pk.steps] = (to_numpy(dec.recorded[k].h) ** 2).sum(axis=1)
        return grid

    e = to_numpy(enc.params["encoder.embedding.weight"]).reshape(N, S, -1)
    d = to_numpy(dec.params["decoder.embedding.weight"]).reshape(N, n_out, -1)
    src_grad = np.sqrt((e[:, :valid] ** 2).sum(axis=2)).tolist()
    dec_grad = np.sqrt((d ** 2).sum(axis=2)).tolist()
    enc_g = [enc_h(k) for k in range(L)]
    enc_state = [np.sqrt((g ** 2).sum(axis=2).T)[:, :valid].tolist() for g in enc_g]
    dec_state = [np.sqrt(dec_sq(k)).tolist() for k in range(L)]
    # the whole loss L = (1/T) sum_t -log p(y_t) is the sum of the rows' over T: its
    # state gradients, parameter gradient and value come from the same pass (the backward
    # is linear), without one of its own as gradflow.gradient_flow runs
    flow_enc = [np.sqrt(((g.sum(axis=1) / T) ** 2).sum(axis=1))[:valid].tolist()
                for g in enc_g]
    flow_dec = []
    for k in range(L):
        total = np.zeros((n_out, W))
        np.add.at(total, pk.steps, to_numpy(dec.recorded[k].h))
        flow_dec.append(np.sqrt(((total / T) ** 2).sum(axis=1)).tolist())
    grads = {**enc.params, **dec.params}
    sq = 0.0
    for name, g in grads.items():
        g = to_numpy(g)
        if name.endswith("embedding.weight"):  # back from rows per position to the table
            ids = np.tile(batch_ids[name], N)
            g = np.add.reduceat(g[np.argsort(ids, kind="stable")],
                                np.flatnonzero(np.diff(np.sort(ids), prepend=-1)), axis=0)
        sq += float((g ** 2).sum())
    grad_norm = math.sqrt(sq) / T
    clip = _grad_clip(ck)
    factor = 1.0 if clip is None or grad_norm <= clip else clip / grad_norm
    return {"source_tokens": ck.src_vocab.to_tokens(src[0, :valid].tolist()),
            "target_tokens": tv.to_tokens(out_ids),
            "decoder_input_tokens": ["<bos>", *tv.to_tokens(out_ids[:n_out - 1])],
            "source": src_grad, "decoder_inputs": dec_grad,
            "state": {"encoder": enc_state, "decoder": dec_state},
            "flow": {"encoder": flow_enc, "decoder": flow_dec, "loss": float(loss),
                     "grad_norm": grad_norm, "clip": clip, "clip_factor": factor}}
