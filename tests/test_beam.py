"""Beam search: greedy at K = 1, exhaustive search when K holds every prefix, and no work
spent on finished hypotheses — for both decoders. What a search found is checked against
the teacher-forced forward (the model as trained), not against the step function the
search itself runs."""

import itertools

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.data import Vocab
from minis2s.decode import beam as beam_mod
from minis2s.decode import beam_search, greedy_decode
from minis2s.model import DECODERS, ModelConfig, encoder_forward, init_params
from minis2s.model.attention import attention_weights
from minis2s.model.steps import select_rows, step

F64 = get_backend("numpy", "float64")
EOS = 3
MODELS = list(DECODERS)


def _model(model, V=9, seed=4, eos_bias=0.5, cell="gru", bidirectional=False):
    cfg = ModelConfig(src_vocab_size=12, tgt_vocab_size=V, embed_size=6, num_hiddens=8,
                      num_layers=2, dropout=0.0, bidirectional=bidirectional, cell=cell,
                      model=model)
    params = init_params(cfg, F64, np.random.default_rng(seed))
    params["decoder.dense.bias"][EOS] += eos_bias  # some sentences end early
    vocab = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>"]
                              + [f"w{i}" for i in range(V - 4)])
    return cfg, params, vocab


def _sources(n=16, S=5, seed=1):
    rng = np.random.default_rng(seed)
    src = rng.integers(4, 12, (n, S))
    valid = rng.integers(1, S + 1, n)
    src[np.arange(S)[None, :] >= valid[:, None]] = 1  # <pad> past each valid length
    return src, valid


# per decoder that attends: its forward's cache -> the attention weights (N, T, S) of every
# teacher-forced step; a new decoder that attends needs its own entry
TEACHER_FORCED_WEIGHTS = {"attention": attention_weights}


def _teacher_forced(params, cfg, src, valid, seqs, bos=2):
    """The model as trained, on one source: seqs (B, L) token sequences, each fed to the
    decoder's teacher-forced forward after <bos>. Returns the logits (B, L, V) of each
    position given the tokens before it, log P of each sequence's tokens (B, L), and the
    attention weights (B, L, S) (None for a decoder that does not attend)."""
    seqs = np.asarray(seqs, dtype=np.int64).reshape(-1, np.shape(seqs)[-1])
    B = len(seqs)
    encoded, _ = encoder_forward(params, cfg, np.repeat(src[None], B, axis=0),
                                 np.full(B, valid))
    ids = np.concatenate([np.full((B, 1), bos), seqs[:, :-1]], axis=1)
    logits, cache = cfg.decoder.forward(params, cfg, ids, encoded)
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    weights = TEACHER_FORCED_WEIGHTS[cfg.model](cache) if cfg.decoder.attends else None
    return logits, np.take_along_axis(logp, seqs[..., None], axis=-1)[..., 0], weights


def _emitted(hyp):
    """The tokens a hypothesis emitted: its output, then <eos> if it ended with one."""
    return [*hyp.tokens, EOS] if hyp.finished else list(hyp.tokens)


# per decoder: (seed, eos_bias) of a model whose greedy outputs have several lengths and
# end both ways (<eos>, or num_steps tokens); a new decoder needs its own entry
GREEDY = {"seq2seq": (4, 0.5), "attention": (5, 0.2)}


@pytest.mark.parametrize("model", MODELS)
def test_a_beam_of_one_is_greedy_decoding(model):
    seed, eos_bias = GREEDY[model]
    cfg, params, vocab = _model(model, seed=seed, eos_bias=eos_bias)
    src, valid = _sources()
    decoded = greedy_decode(params, cfg, src, vocab, 7, F64, valid, return_weights=True)
    greedy = [d.tokens for d in decoded]
    hyps = beam_search(params, cfg, src, vocab, 7, F64, 1, 0.75, valid, return_weights=True)
    assert [h.tokens for h in hyps] == greedy
    assert len({len(g) for g in greedy}) >= 3  # outputs of several lengths
    assert {h.finished for h in hyps} == {True, False}  # both ways of ending
    for i, (d, h) in enumerate(zip(decoded, hyps)):
        emitted = _emitted(h)
        # the model as trained picks each emitted token, given the ones before it
        logits, _, weights = _teacher_forced(params, cfg, src[i], valid[i], [emitted])
        assert logits[0].argmax(axis=-1).tolist() == emitted
        if cfg.decoder.attends:  # and pays the attention both searches report
            np.testing.assert_allclose(d.weights, weights[0], rtol=0, atol=1e-12)
            np.testing.assert_allclose(h.weights, weights[0], rtol=0, atol=1e-12)
        else:
            assert d.weights is None and h.weights is None


# models whose exhaustive best is not the greedy output (so the search must look past the
# best prefix), and whose best ends with <eos> after some words (so the length penalty
# counts), or runs to the last step
# (seed, eos_bias) per decoder; a new decoder needs its own entries
EXHAUSTIVE = {"seq2seq": [(9, 0.3), (10, 0.3)], "attention": [(5, -0.5), (1, 0.3)]}


@pytest.mark.parametrize(("model", "case"), [(m, c) for m in MODELS for c in range(2)])
@pytest.mark.parametrize("alpha", [0.0, 0.75])
def test_a_beam_that_holds_every_prefix_is_exhaustive_search(model, case, alpha):
    """V = 5 tokens, 3 steps: K = 125 keeps every prefix. The best score over every
    sequence (ending at its first <eos>, or 3 tokens without one) must be the beam's."""
    seed, eos_bias = EXHAUSTIVE[model][case]
    cfg, params, vocab = _model(model, V=5, seed=seed, eos_bias=eos_bias)
    src, valid = _sources(n=4, seed=2)
    steps, V = 3, 5
    hyps = beam_search(params, cfg, src, vocab, steps, F64, V ** steps, alpha, valid)
    greedy = [d.tokens for d in greedy_decode(params, cfg, src, vocab, steps, F64, valid)]
    assert any(h.tokens != g for h, g in zip(hyps, greedy))  # not greedy in disguise
    words = [t for t in range(V) if t != EOS]
    every = list(itertools.product(range(V), repeat=steps))
    for i, h in enumerate(hyps):
        # log P of every prefix of every sequence of `steps` tokens, teacher-forced
        _, logp, _ = _teacher_forced(params, cfg, src[i], valid[i], every)
        prefix = {seq[:L]: float(total) for seq, row in zip(every, logp.cumsum(axis=1))
                  for L, total in enumerate(row, start=1)}
        emitted = tuple(_emitted(h))  # the result's own numbers: log P(y) and L
        assert h.log_prob == pytest.approx(prefix[emitted], abs=1e-10)
        assert h.score == pytest.approx(h.log_prob / len(emitted) ** alpha, abs=1e-12)
        scores = {}  # every sequence: ending at its first <eos>, or `steps` tokens without
        for L in range(1, steps + 1):
            for body in itertools.product(words, repeat=L - 1):  # ... then <eos>
                seq = (*body, EOS)
                scores[seq] = prefix[seq] / L ** alpha
        for seq in itertools.product(words, repeat=steps):  # still going at the end
            scores[seq] = prefix[seq] / steps ** alpha
        best = max(scores, key=scores.get)
        assert h.score == pytest.approx(scores[best], abs=1e-10)
        assert emitted == best


@pytest.mark.parametrize("model", MODELS)
def test_finished_hypotheses_cost_no_more_compute(model, monkeypatch):
    """Every decoder step runs exactly the live hypotheses: a beam that loses hypotheses
    to <eos> runs fewer rows the next step, and never more than N·K."""
    cfg, params, vocab = _model(model, eos_bias=1.5)
    src, valid = _sources(n=6)
    K, rows = 4, []
    finished_so_far = []

    def counting_step(params_, cfg_, ids, state, memory):
        rows.append(len(ids))
        return step(params_, cfg_, ids, state, memory)

    real_select = select_rows

    def counting_select(cfg_, state, memory, keep):
        finished_so_far.append(len(keep))
        return real_select(cfg_, state, memory, keep)

    monkeypatch.setattr(beam_mod, "step", counting_step)
    monkeypatch.setattr(beam_mod, "select_rows", counting_select)
    hyps = beam_search(params, cfg, src, vocab, 8, F64, K, 0.75, valid)
    assert rows[0] == len(src)  # one empty hypothesis per sentence to start
    assert rows[1:] == finished_so_far[:len(rows) - 1]  # then exactly the live ones
    assert max(rows) <= len(src) * K
    assert any(b < a for a, b in zip(rows[1:], rows[2:]))  # the beam narrowed
    assert all(h is not None for h in hyps)


@pytest.mark.parametrize(("beam", "alpha", "message"), [
    (0, 0.75, "beam size must be at least 1"),
    (2, float("nan"), "length penalty must be a number >= 0"),
    (2, -0.5, "length penalty must be a number >= 0"),
    (2, float("inf"), "length penalty must be a number >= 0")])
@pytest.mark.parametrize("model", MODELS)
def test_a_bad_beam_or_length_penalty_is_refused(model, beam, alpha, message):
    cfg, params, vocab = _model(model)
    src, valid = _sources(n=2)
    with pytest.raises(ValueError, match=message):
        beam_search(params, cfg, src, vocab, 5, F64, beam, alpha)


# per decoder: (seed, eos_bias) of a model whose beams end both ways; a new decoder needs
# its own entry
WEIGHTS = {"seq2seq": (4, 0.2), "attention": (5, 0.2)}


@pytest.mark.parametrize("model", MODELS)
def test_each_hypothesis_carries_the_attention_weights_of_its_own_steps(model):
    """A hypothesis's weights (L, S) are those of the teacher-forced forward over its own
    tokens: row t is the attention paid while emitting token t (<eos> included). A decoder
    that does not attend gives no weights."""
    seed, eos_bias = WEIGHTS[model]
    cfg, params, vocab = _model(model, seed=seed, eos_bias=eos_bias)
    src, valid = _sources(n=6)
    hyps = beam_search(params, cfg, src, vocab, 4, F64, 3, 0.75, valid, return_weights=True)
    assert {h.finished for h in hyps} == {True, False}
    for i, h in enumerate(hyps):
        emitted = _emitted(h)
        _, _, weights = _teacher_forced(params, cfg, src[i], valid[i], [emitted])
        if not cfg.decoder.attends:
            assert h.weights is None and weights is None
            continue
        assert h.weights.shape == (len(emitted), src.shape[1])
        np.testing.assert_allclose(h.weights, weights[0], rtol=0, atol=1e-12)
