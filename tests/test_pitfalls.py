"""d2l's exercises and known pitfalls behind switches: each does exactly what it names,
checked against code that does not share its loop (and, for the loss, its gradient
against finite differences)."""

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.checkpoint import Checkpoint, save
from minis2s.cli import main
from minis2s.data import DataSpec, Vocab
from minis2s.data.text import CorpusText
from minis2s.decode import greedy_decode, translate, translations
from minis2s.decode.greedy import check_context_from
from minis2s.model import ModelConfig, encoder_forward, init_params
from minis2s.model.decoder import decoder_run

F64 = get_backend("numpy", "float64")
EOS = 3


def _vocab(size):
    return Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>"]
                             + [f"w{i}" for i in range(size - 4)])


def _model(seed=5, model="seq2seq", cell="gru"):
    cfg = ModelConfig(src_vocab_size=12, tgt_vocab_size=9, embed_size=6, num_hiddens=8,
                      num_layers=2, dropout=0.0, model=model, cell=cell)
    params = init_params(cfg, F64, np.random.default_rng(seed))
    params["decoder.dense.bias"][EOS] -= 1.0  # long outputs
    return cfg, params


def _d2l_predict(params, cfg, src_row, bos, num_steps):
    """d2l's ``predict_seq2seq`` for one sentence: at each step the decoder is given the
    state it returned, and its forward takes the context from that state's top layer."""
    encoded, _ = encoder_forward(params, cfg, src_row[None])
    state, out, prev = encoded.state, [], bos
    for _ in range(num_steps):
        (logits, state), _ = decoder_run(params, cfg, np.array([[prev]]), state, state.top)
        prev = int(logits[0, 0].argmax())
        if prev == EOS:
            break
        out.append(prev)
    return out


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_context_from_the_decoder_is_d2l_predict_seq2seq(cell):
    cfg, params = _model(cell=cell)
    vocab = _vocab(cfg.tgt_vocab_size)
    src = np.random.default_rng(2).integers(4, cfg.src_vocab_size, (12, 5))
    ours = [d.tokens for d in greedy_decode(params, cfg, src, vocab, 8, F64,
                                            context_from="decoder")]
    assert ours == [_d2l_predict(params, cfg, row, vocab.bos, 8) for row in src]
    kept = [d.tokens for d in greedy_decode(params, cfg, src, vocab, 8, F64)]
    assert ours != kept  # the switch changes the outputs ...
    assert [o[:1] for o in ours] == [k[:1] for k in kept]  # ... from the second token on


def test_the_context_from_the_decoder_is_refused_where_it_means_nothing():
    cfg, params = _model(model="attention")
    vocab = _vocab(cfg.tgt_vocab_size)
    with pytest.raises(ValueError, match="seed's decoder"):
        greedy_decode(params, cfg, np.full((1, 3), 4), vocab, 4, F64, context_from="decoder")
    cfg, params = _model()
    with pytest.raises(ValueError, match="greedy"):
        translations(params, cfg, _vocab(12), vocab, ["w1"], 4, F64, beam=2,
                     context_from="decoder")
    with pytest.raises(ValueError, match="one of encoder, decoder"):
        greedy_decode(params, cfg, np.full((1, 3), 4), vocab, 4, F64, context_from="state")


def test_each_refusal_of_the_decoders_context_says_why_word_for_word():
    cfg, _ = _model()
    attention, _ = _model(model="attention")
    narrow = ModelConfig(src_vocab_size=12, tgt_vocab_size=9, embed_size=6, num_hiddens=8,
                         num_layers=2, dropout=0.0, decoder_hiddens=4)
    cases = [(("state", cfg), "context_from must be one of encoder, decoder, not 'state'"),
             (("decoder", attention), "the context from the decoder's state is the seed's "
                                      "decoder's (seq2seq); this model's decoder is attention"),
             (("decoder", narrow), "the context from the decoder's state needs a decoder as "
                                   "wide as the encoder's state (8); this one has 4 units"),
             (("decoder", cfg, 2), "the context from the decoder's state is for greedy "
                                   "decoding (--beam 1)")]
    for args, message in cases:
        with pytest.raises(ValueError) as refused:
            check_context_from(*args)
        assert str(refused.value) == message
    check_context_from("decoder", cfg)  # what is allowed passes
    check_context_from("decoder", cfg, 1)
    check_context_from("encoder", narrow, 5)


class _Bars(CorpusText):
    """Text rules that write a target's tokens joined by bars."""

    @staticmethod
    def target_text(tokens) -> str:
        return "|".join(tokens)


def test_translate_hands_its_rules_and_its_context_to_the_decoding():
    cfg, params = _model(seed=0)  # a model whose outputs the context changes
    src_vocab, vocab = _vocab(12), _vocab(9)
    sentences = ["w1 w2 w3 w4", "w5", "w6 w7", "w2 w2 w8", "w7 w1"]
    texts = {}
    for context_from in ("encoder", "decoder"):
        texts[context_from] = translate(params, cfg, src_vocab, vocab, sentences, 8, F64,
                                        rules=_Bars(), context_from=context_from)
        assert texts[context_from] == [
            t.text for t in translations(params, cfg, src_vocab, vocab, sentences, 8, F64,
                                         rules=_Bars(), context_from=context_from)]
        assert all("|" in t for t in texts[context_from])  # the rules wrote them
    assert texts["encoder"] != texts["decoder"]  # and the context reached the decoding


def test_evaluate_refuses_the_decoders_context_where_it_means_nothing_in_one_line(tmp_path, capsys):
    cfg, params = _model(model="attention")
    vocab = _vocab(12)
    path = tmp_path / "checkpoint.npz"
    save(path, Checkpoint({k: np.asarray(v, np.float32) for k, v in params.items()}, cfg,
                          DataSpec(num_steps=6), vocab, _vocab(9), {}))
    assert main(["evaluate", "--model", str(path), "--context-from", "decoder"]) == 2
    err = capsys.readouterr().err
    assert "--context-from decoder" in err and "attention" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    cfg, params = _model()
    seed = tmp_path / "seed.npz"
    save(seed, Checkpoint({k: np.asarray(v, np.float32) for k, v in params.items()}, cfg,
                          DataSpec(num_steps=6), vocab, _vocab(9), {}))
    assert main(["evaluate", "--model", str(seed), "--context-from", "decoder", "--beam",
                 "3"]) == 2
    err = capsys.readouterr().err
    assert "greedy" in err and len(err.strip().splitlines()) == 1


# --- the loss's reductions (train --loss-reduction) ---------------------------------------

def _nll(logits, labels):
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]


def _by_hand(reduction, logits, labels, valid_len):
    """Each sequence's token losses, weighed as the reduction says, summed."""
    nll = _nll(logits, labels)
    N, T = labels.shape
    total = 0.0
    for i in range(N):
        valid = nll[i, :valid_len[i]]
        total += {"seq": valid.sum() / T, "sum": valid.sum(),
                  "mean": valid.sum() / max(valid_len[i], 1),
                  "unmasked": nll[i].sum() / T,
                  "token": valid.sum() / max(valid_len.sum(), 1)}[reduction]
    return total


@pytest.mark.parametrize("reduction", ["seq", "token", "sum", "mean", "unmasked"])
def test_each_reduction_is_its_formula(reduction):
    from minis2s.ops import masked_softmax_ce_forward

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 6, 5)) * 2
    labels = rng.integers(0, 5, (4, 6))
    valid_len = np.array([6, 2, 0, 4])
    loss, _ = masked_softmax_ce_forward(logits, labels, valid_len, reduction)
    assert float(loss) == pytest.approx(_by_hand(reduction, logits, labels, valid_len),
                                        rel=1e-12)


def test_the_reductions_weigh_long_and_short_targets_as_they_say():
    """Two targets, 2 and 8 tokens, every token's loss 1: seq and sum weigh each token
    alike (1/T, 1), mean gives each sequence 1 whatever its length, and unmasked counts
    the padding of the short one too."""
    from minis2s.ops import loss_weights

    valid = np.array([2, 8])
    w = {r: loss_weights(r, valid, 8) for r in ("seq", "sum", "mean", "unmasked")}
    assert w["seq"].sum(axis=1).tolist() == [2 / 8, 1.0]
    assert w["sum"].sum(axis=1).tolist() == [2.0, 8.0]
    assert w["mean"].sum(axis=1).tolist() == [1.0, 1.0]
    assert w["mean"][0, 1] == 4 * w["mean"][1, 7]  # the short target's <eos>: 4x the long's
    assert w["unmasked"].sum(axis=1).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("reduction", ["sum", "mean", "unmasked"])
def test_each_reduction_has_its_gradient(reduction):
    """Finite differences of the loss alone and of the whole model through it, packed
    (the trainer's path) as the plain one is (unmasked always runs the plain one)."""
    from minis2s.gradcheck.cases import SCALE_FLOOR, check_seq2seq, check_softmax_ce

    rng = np.random.default_rng(3)
    rows = check_softmax_ce(rng, reduction=reduction)
    rows += check_seq2seq(rng, reduction=reduction, scale_floor=SCALE_FLOOR)
    worst = max(r.error for r in rows)
    assert worst < 1e-6, [r for r in rows if r.error >= 1e-6]


@pytest.mark.parametrize("reduction", ["seq", "sum", "mean"])
def test_the_packed_loss_is_the_padded_one(reduction):
    from minis2s.gradcheck.cases import make_batch
    from minis2s.model import seq2seq_backward, seq2seq_forward

    cfg, params = _model()
    batch = make_batch(np.random.default_rng(1), cfg, 5, 4, 6)
    packed, cp = seq2seq_forward(params, cfg, batch, reduction=reduction)
    padded, cq = seq2seq_forward(params, cfg, batch, reduction=reduction, packed=False)
    assert float(packed) == pytest.approx(float(padded), rel=1e-12)
    gp, gq = seq2seq_backward(1.0, cp).params, seq2seq_backward(1.0, cq).params
    for name in gp:
        np.testing.assert_allclose(gp[name], gq[name], rtol=1e-9, atol=1e-14)


def test_the_unmasked_loss_counts_the_padding():
    from minis2s.gradcheck.cases import make_batch
    from minis2s.model import seq2seq_forward

    cfg, params = _model()
    batch = make_batch(np.random.default_rng(1), cfg, 5, 4, 6)
    full = batch._replace(tgt_valid_len=np.full(5, 6))  # every position a token
    unmasked, _ = seq2seq_forward(params, cfg, batch, reduction="unmasked")
    masked, _ = seq2seq_forward(params, cfg, batch, reduction="seq", packed=False)
    assert float(unmasked) > float(masked)
    every, _ = seq2seq_forward(params, cfg, full, reduction="seq", packed=False)
    assert float(unmasked) == pytest.approx(float(every), rel=1e-12)


def test_training_uses_the_reduction_asked_for_and_keeps_it(tmp_path, monkeypatch, capsys):
    import minis2s.train.trainer as trainer
    from minis2s.checkpoint import load
    from minis2s.train.resume import saved_settings

    seen = []
    real = trainer.seq2seq_forward

    def spy(*args, **kwargs):
        seen.append(kwargs.get("reduction", "seq"))
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "seq2seq_forward", spy)
    out = tmp_path / "run"
    task = ["--task", "reverse", "--max-len", "4", "--train-size", "200", "--valid-size",
            "0", "--test-size", "20", "--num-hiddens", "8", "--embed-size", "4",
            "--num-layers", "1", "--epochs", "1", "--quiet"]
    assert main(["train", *task, "--loss-reduction", "mean", "--out", str(out)]) == 0
    assert seen and set(seen) == {"mean"}
    preset, _ = saved_settings(load(out / "checkpoint.npz"))
    assert preset.loss_reduction == "mean"
    assert main(["train", "--resume", "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    assert set(seen) == {"mean"}
    assert main(["train", *task, "--out", str(tmp_path / "seed")]) == 0
    assert seen[-1] == "seq"  # the default is the seed's
