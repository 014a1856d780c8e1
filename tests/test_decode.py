"""Greedy decoding against oracles that do not share its loop."""

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.data import Vocab
from minis2s.decode import greedy_decode, predict_seq2seq, translate
from minis2s.model import ModelConfig, encoder_forward, init_params
from minis2s.model.decoder import decoder_run

F64 = get_backend("numpy", "float64")
EOS = 3  # <eos>'s id in every vocabulary


def _model(bidirectional, seed, eos_bias=0.5):
    """A random model whose greedy outputs have many lengths, 0 and num_steps included:
    its ``<eos>`` logit is raised just enough to end some sentences early."""
    cfg = ModelConfig(src_vocab_size=12, tgt_vocab_size=9, embed_size=6, num_hiddens=8,
                      num_layers=2, dropout=0.0, bidirectional=bidirectional)
    params = init_params(cfg, F64, np.random.default_rng(seed))
    params["decoder.dense.bias"][EOS] += eos_bias
    return cfg, params


def _target_vocab(size):
    return Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>"]
                             + [f"w{i}" for i in range(size - 4)])


@pytest.mark.parametrize(("bidirectional", "seed"), [(False, 4), (True, 3)])
def test_each_greedy_token_is_the_teacher_forced_argmax(bidirectional, seed):
    """Decode a batch step by step; then run the teacher-forced decoder on ``<bos>`` and
    the decoded tokens in one pass. At every step its argmax must be the token chosen;
    a sentence ends at the step whose argmax is ``<eos>`` (not included in the output),
    or after num_steps tokens, and never contains ``<eos>``."""
    num_steps = 7
    cfg, params = _model(bidirectional, seed)
    tgt_vocab = _target_vocab(cfg.tgt_vocab_size)
    rng = np.random.default_rng(1)
    src = rng.integers(4, cfg.src_vocab_size, (16, 5))
    decoded = greedy_decode(params, cfg, src, tgt_vocab, num_steps, F64)
    assert len(decoded) == len(src)
    assert all(d.weights is None for d in decoded)  # the seed's decoder does not attend
    outputs = [d.tokens for d in decoded]
    ended = [len(y) < num_steps for y in outputs]
    assert any(ended) and not all(ended)  # both ways of stopping are exercised
    assert len({len(y) for y in outputs}) >= 4
    for i, ys in enumerate(outputs):
        assert EOS not in ys
        encoded, _ = encoder_forward(params, cfg, src[i:i + 1])
        context = encoded.state.top
        fed = np.array([[tgt_vocab.bos, *ys]])
        steps = len(ys) + 1 if ended[i] else len(ys)  # the <eos> step, when it came
        (logits, _), _ = decoder_run(params, cfg, fed[:, :steps], encoded.state, context)
        chosen = logits[0].argmax(axis=-1).tolist()
        assert chosen == (ys + [EOS] if ended[i] else ys), i


def _literal_predict(params, cfg, src_vocab, tgt_vocab, sentence, num_steps):
    """d2l's predict_seq2seq written out, one sentence, one step at a time (with the
    context taken from the encoder, as minis2s trains it)."""
    from minis2s.decode import encode_sentences

    src = encode_sentences([sentence], src_vocab, num_steps)
    encoded, _ = encoder_forward(params, cfg, src)
    state, context = encoded.state, encoded.state.top
    token, out = tgt_vocab.bos, []
    for _ in range(num_steps):
        (logits, state), _ = decoder_run(params, cfg, np.array([[token]]), state, context)
        token = int(logits[0, 0].argmax())
        if token == tgt_vocab.eos:
            break
        out.append(token)
    return " ".join(tgt_vocab.to_tokens(out))


def test_batched_translation_equals_the_one_sentence_loop():
    """Sentences of different lengths decoded together, each as if alone."""
    cfg, params = _model(False, seed=4)
    src_vocab = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>"]
                                  + [f"e{i}" for i in range(cfg.src_vocab_size - 4)])
    tgt_vocab = _target_vocab(cfg.tgt_vocab_size)
    rng = np.random.default_rng(2)
    sentences = [" ".join(f"e{j}" for j in rng.integers(0, 8, rng.integers(1, 6)))
                 for _ in range(20)]
    batched = translate(params, cfg, src_vocab, tgt_vocab, sentences, 6, F64, batch_size=7)
    alone = [_literal_predict(params, cfg, src_vocab, tgt_vocab, s, 6) for s in sentences]
    assert batched == alone
    assert len({len(t.split()) for t in alone}) > 1  # outputs of several lengths
    assert [predict_seq2seq(params, cfg, s, src_vocab, tgt_vocab, 6, F64)
            for s in sentences[:3]] == alone[:3]
