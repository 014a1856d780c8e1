"""Decoding at its edges: defaults, the arguments passed along, numbers at their limits,
the batched beam against a plain one, the truncation warning word for word, and the heat
map's geometry and styling."""

import importlib
import math
import textwrap

import numpy as np
import pytest

from minis2s.backend import get_backend
from minis2s.data import Vocab
from minis2s.decode import (
    Translation,
    beam_search,
    encode_sentences,
    greedy_decode,
    translate,
    translations,
)
from minis2s.decode import beam as beam_mod
from minis2s.model import ModelConfig, init_params
from minis2s.model.steps import start, step

translate_mod = importlib.import_module("minis2s.decode.translate")
F64 = get_backend("numpy", "float64")
EOS = 3
WORDS = ["un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit"]
SRC_VOCAB = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>", *WORDS])


def _model(model="attention", V=9, seed=4, eos_bias=0.2):
    cfg = ModelConfig(src_vocab_size=len(SRC_VOCAB), tgt_vocab_size=V, embed_size=6,
                      num_hiddens=8, num_layers=2, dropout=0.0, model=model)
    params = init_params(cfg, F64, np.random.default_rng(seed))
    params["decoder.dense.bias"][EOS] += eos_bias
    vocab = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>"]
                              + [f"w{i}" for i in range(V - 4)])
    return cfg, params, vocab


def _sources(n=8, S=5, seed=1):
    rng = np.random.default_rng(seed)
    src = rng.integers(4, len(SRC_VOCAB), (n, S))
    valid = rng.integers(1, S + 1, n)
    src[np.arange(S)[None, :] >= valid[:, None]] = 1  # <pad> past each valid length
    return src, valid


# ---------------------------------------------------------------- greedy and beam


def test_log_softmax_keeps_each_row_exact_at_extreme_logits():
    """Each row is shifted by its own maximum before exp: a row far below another's
    maximum, or one whose maximum alone would overflow, still gives finite values."""
    tokens, got = beam_mod._best_extensions(
        np.array([[1000.0, 0.0], [0.0, -1.0]], dtype=np.float32), np.zeros(2), 2)
    got = np.take_along_axis(got, np.argsort(tokens, axis=1), axis=1)  # by token
    tail = math.log1p(math.exp(-1.0))
    np.testing.assert_allclose(got, [[0.0, -1000.0], [-tail, -1.0 - tail]], atol=1e-12)
    assert got.dtype == np.float64


@pytest.mark.parametrize("model", ["seq2seq", "attention"])
def test_without_valid_lengths_every_source_position_is_read(model):
    cfg, params, vocab = _model(model)
    src, _ = _sources()
    full = np.full(len(src), src.shape[1])
    for decode, extra in ((greedy_decode, {}), (beam_search, {"beam_size": 3})):
        by_default = decode(params, cfg, src, vocab, 6, F64, return_weights=True, **extra)
        given = decode(params, cfg, src, vocab, 6, F64, src_valid_len=full,
                       return_weights=True, **extra)
        for a, b in zip(by_default, given):
            assert a.tokens == b.tokens
            if cfg.decoder.attends:
                np.testing.assert_array_equal(a.weights, b.weights)


def test_weights_come_only_when_asked_for():
    cfg, params, vocab = _model("attention")
    src, valid = _sources()
    assert all(d.weights is None
               for d in greedy_decode(params, cfg, src, vocab, 6, F64, valid))
    assert all(h.weights is None
               for h in beam_search(params, cfg, src, vocab, 6, F64, 3, 0.75, valid))


def test_output_ids_are_python_ints():
    cfg, params, vocab = _model("attention")
    src, valid = _sources()
    for found in (greedy_decode(params, cfg, src, vocab, 6, F64, valid),
                  beam_search(params, cfg, src, vocab, 6, F64, 3, 0.75, valid)):
        assert any(f.tokens for f in found)
        assert all(type(t) is int for f in found for t in f.tokens)


def test_the_default_length_penalty_is_three_quarters():
    cfg, params, vocab = _model("seq2seq")
    src, valid = _sources()
    for h in beam_search(params, cfg, src, vocab, 6, F64, 3, src_valid_len=valid):
        length = len(h.tokens) + h.finished
        assert h.score == pytest.approx(h.log_prob / length ** 0.75, abs=1e-12)


def test_a_beam_of_one_step_is_allowed_and_none_is_refused():
    cfg, params, vocab = _model("seq2seq", eos_bias=-5.0)
    src, valid = _sources()
    hyps = beam_search(params, cfg, src, vocab, 1, F64, 2, 0.75, valid)
    assert all(len(h.tokens) == 1 and not h.finished for h in hyps)
    with pytest.raises(ValueError) as caught:
        beam_search(params, cfg, src, vocab, 0, F64, 2, 0.75, valid)
    assert str(caught.value) == "num_steps must be at least 1, got 0"


def test_a_beam_whose_hypotheses_all_end_at_once_returns_them():
    cfg, params, vocab = _model("attention", eos_bias=50.0)
    src, valid = _sources()
    hyps = beam_search(params, cfg, src, vocab, 6, F64, 1, 0.75, valid,
                       return_weights=True)
    assert [(h.tokens, h.finished) for h in hyps] == [([], True)] * len(src)
    assert all(h.weights.shape == (1, src.shape[1]) for h in hyps)


def _log_probs_after(params, cfg, src_row, valid, bos, prefix):
    """log P(next token | prefix), the decoder run from the start on the prefix."""
    state, memory = start(params, cfg, src_row[None], np.array([valid]))
    prev = np.array([bos])
    for token in [*prefix, None]:
        logits, state, _ = step(params, cfg, prev, state, memory)
        prev = np.array([token])
    z = np.asarray(logits[0], dtype=np.float64)
    return z - z.max() - np.log(np.exp(z - z.max()).sum())


def _plain_beam(params, cfg, src_row, valid, vocab, num_steps, K, alpha):
    """Beam search for one sentence as d2l says it, with sorted lists: at each step the
    K best one-token extensions of the live hypotheses; those ending in <eos> finish;
    the best score log P / L^alpha among finished and still-live ones wins."""
    live, done = [((), 0.0)], []
    for _ in range(num_steps):
        ext = [(prefix + (t,), lp + float(step_lp[t]))
               for prefix, lp in live
               for step_lp in [_log_probs_after(params, cfg, src_row, valid, vocab.bos,
                                                list(prefix))]
               for t in range(cfg.tgt_vocab_size)]
        ext.sort(key=lambda e: -e[1])
        kept = ext[:K]
        done += [(seq[:-1], lp, True) for seq, lp in kept if seq[-1] == vocab.eos]
        live = [(seq, lp) for seq, lp in kept if seq[-1] != vocab.eos]
        if not live:
            break
    done += [(seq, lp, False) for seq, lp in live]
    return max(done, key=lambda d: d[1] / (len(d[0]) + d[2]) ** alpha)


def test_a_beam_of_one_is_greedy_over_a_thousand_tokens():
    """K = 1 over V = 1000: each row's best extension is found among many (a selection
    that is right only for small rows would pick another token here)."""
    cfg, params, vocab = _model("seq2seq", V=1000, seed=5, eos_bias=0.0)
    params["decoder.dense.weight"][...] *= 4.0
    src, valid = _sources(n=6, seed=2)
    greedy = greedy_decode(params, cfg, src, vocab, 5, F64, src_valid_len=valid)
    beam = beam_search(params, cfg, src, vocab, 5, F64, 1, 0.75, valid)
    assert [h.tokens for h in beam] == [g.tokens for g in greedy]
    assert any(len(g.tokens) >= 2 for g in greedy)


@pytest.mark.parametrize(("K", "model", "sharpen", "eos_bias"), [
    (1, "seq2seq", 3.0, 1.0), (3, "attention", 3.0, 0.0), (4, "attention", 6.0, 0.0)])
def test_the_batched_beam_is_the_plain_beam_over_a_large_vocabulary(K, model, sharpen,
                                                                     eos_bias):
    """V = 60: the per-row and per-sentence selections (argpartition) must find the true
    K best among many candidates, not just among a few. (The output layer's weights are
    scaled up so that the tokens' probabilities differ more than at initialisation.)"""
    cfg, params, vocab = _model(model, V=60, seed=7, eos_bias=eos_bias)
    params["decoder.dense.weight"][...] *= sharpen
    src, valid = _sources(n=6, seed=3)
    hyps = beam_search(params, cfg, src, vocab, 4, F64, K, 0.75, valid)
    assert {h.finished for h in hyps} == {True, False}
    for i, h in enumerate(hyps):
        tokens, log_prob, finished = _plain_beam(params, cfg, src[i], valid[i], vocab, 4,
                                                 K, 0.75)
        assert (h.tokens, h.finished) == (list(tokens), finished)
        assert h.log_prob == pytest.approx(log_prob, abs=1e-9)


# ---------------------------------------------------------------- sentences in, texts out


def _collect():
    lines = []
    return lines, lines.append


@pytest.mark.parametrize(("sentence", "preview"), [
    ("un deux trois quatre cinq", "un deux trois quatre cinq"),  # 5 words: all
    ("un deux trois quatre cinq six", "un deux trois quatre cinq ..."),  # 6: cut
    ("a" * 40, "a" * 40),  # 40 characters: all
    ("a" * 41, "a" * 40 + " ..."),  # 41: cut to 40
    ("ab cd " + "e" * 40, "ab cd " + "e" * 34 + " ..."),
])
def test_a_truncated_sentence_is_named_by_its_first_words(sentence, preview):
    lines, warn = _collect()
    encode_sentences([sentence], SRC_VOCAB, 1, warn)
    assert lines == [f'sentence 1 ("{preview}") has {len(sentence.split())} tokens; the '
                     "model reads only the first 1, without <eos>"]


def test_encoding_warns_only_of_sentences_that_lose_their_eos():
    lines, warn = _collect()
    ids = encode_sentences(["un deux", "un deux trois", "un deux trois quatre"], SRC_VOCAB,
                           3, warn, numbers=[7, 8, 9])
    # "un deux" + <eos> fits 3 steps exactly; 3 words lose <eos>; 4 words lose more
    assert lines == [
        'sentence 8 ("un deux trois") has 3 tokens; the model reads only the first 3, '
        "without <eos>",
        'sentence 9 ("un deux trois quatre") has 4 tokens; the model reads only the first '
        "3, without <eos>"]
    assert ids.dtype == np.int64
    assert ids.tolist() == [[4, 5, EOS], [4, 5, 6], [4, 5, 6]]
    lines.clear()
    encode_sentences(["un", "un deux trois"], SRC_VOCAB, 2, warn)  # numbered from 1
    assert [line.split(" (")[0] for line in lines] == ["sentence 2"]
    encode_sentences(["un deux trois"], SRC_VOCAB, 2)  # no warn: no warning, no error


class Spy:
    """Wraps a decoding function, recording the arguments of each call."""

    def __init__(self, monkeypatch, name):
        self.calls = []
        real = getattr(translate_mod, name)

        def spy(*args, **kwargs):
            self.calls.append((args, kwargs))
            return real(*args, **kwargs)

        monkeypatch.setattr(translate_mod, name, spy)


@pytest.fixture
def spies(monkeypatch):
    return Spy(monkeypatch, "greedy_decode"), Spy(monkeypatch, "beam_search")


SENTENCES = ["un deux", "", "trois quatre cinq six sept", "  ", "huit un deux",
             "six sept huit un deux trois"]


def test_translations_by_default_are_greedy_without_weights(spies):
    greedy, beam = spies
    cfg, params, vocab = _model("attention")
    out = translations(params, cfg, SRC_VOCAB, vocab, SENTENCES, 8, F64)
    assert beam.calls == [] and len(greedy.calls) == 1
    args, kwargs = greedy.calls[0]
    assert args[6].tolist() == [3, 6, 4, 7]  # valid lengths: tokens and <eos>
    assert kwargs == {"return_weights": False, "context_from": "encoder"}
    assert all(t.weights is None for t in out)
    assert out[1] == Translation([], [], "", None) and out[3] == Translation([], [], "", None)
    assert out[0].source == ["un", "deux", "<eos>"]
    assert out[5].source == [*SENTENCES[5].split(), "<eos>"]


@pytest.mark.parametrize("beam_size", [1, 2, 3])
def test_translations_decode_by_the_beam_asked_for(spies, beam_size):
    greedy, beam = spies
    cfg, params, vocab = _model("attention")
    out = translations(params, cfg, SRC_VOCAB, vocab, SENTENCES, 8, F64, beam=beam_size,
                       with_weights=True)
    used, other = (greedy, beam) if beam_size == 1 else (beam, greedy)
    assert len(used.calls) == 1 and other.calls == []
    args, kwargs = used.calls[0]
    valid = args[8] if beam_size > 1 else args[6]
    assert valid.tolist() == [3, 6, 4, 7]
    assert kwargs == ({"return_weights": True} if beam_size > 1 else
                      {"return_weights": True, "context_from": "encoder"})
    if beam_size > 1:
        assert args[6:8] == (beam_size, 0.75)
    for t in out:
        if t.tokens or t.source:
            assert t.weights.shape == (min(len(t.tokens) + 1, 8), len(t.source))
            np.testing.assert_allclose(t.weights.sum(axis=1), 1.0)


def test_translate_passes_its_settings_along(spies):
    greedy, beam = spies
    cfg, params, vocab = _model("attention")
    lines, warn = _collect()
    texts = translate(params, cfg, SRC_VOCAB, vocab, SENTENCES, 4, F64, warn=warn, beam=3,
                      length_penalty=0.25)
    assert beam.calls[0][0][6:8] == (3, 0.25)
    assert texts == [t.text for t in translations(params, cfg, SRC_VOCAB, vocab, SENTENCES,
                                                  4, F64, beam=3, length_penalty=0.25)]
    assert [line.split(" (")[0] for line in lines] == ["sentence 3", "sentence 6"]
    translate(params, cfg, SRC_VOCAB, vocab, SENTENCES[:1], 4, F64, beam=2)
    assert beam.calls[-1][0][6:8] == (2, 0.75)  # the default length penalty


def test_long_inputs_go_in_chunks_numbered_across_them(spies):
    greedy, _ = spies
    cfg, params, vocab = _model("seq2seq")
    lines, warn = _collect()
    out = translations(params, cfg, SRC_VOCAB, vocab, SENTENCES, 4, F64, batch_size=2,
                       warn=warn)
    assert [len(args[2]) for args, _ in greedy.calls] == [2, 2]  # 4 non-empty lines
    # each truncated sentence warned of once, by its place in the whole input
    assert [line.split(" (")[0] for line in lines] == ["sentence 3", "sentence 6"]
    assert out == translations(params, cfg, SRC_VOCAB, vocab, SENTENCES, 4, F64)


@pytest.mark.parametrize("function", [translate, translations])
def test_by_default_512_sentences_go_to_a_batch(spies, function):
    greedy, _ = spies
    cfg, params, vocab = _model("seq2seq")
    function(params, cfg, SRC_VOCAB, vocab, ["un deux"] * 513, 4, F64)
    assert [len(args[2]) for args, _ in greedy.calls] == [512, 1]


# ---------------------------------------------------------------- the heat map


def _translation(source, tokens, rows=None, seed=0):
    rng = np.random.default_rng(seed)
    rows = len(tokens) + 1 if rows is None else rows
    return Translation(source, tokens, " ".join(tokens),
                       rng.dirichlet(np.ones(len(source)), size=rows))


def test_the_heat_map_title_wraps_the_source_at_50_characters():
    from minis2s.decode.heatmap import attention_title

    t = _translation(["il", "parle", "vite", "<eos>"], ["he", "speaks", "fast"])
    assert attention_title(t) == "Attention weights\nsource: il parle vite"
    assert attention_title(t, "  Il parle vite.  ", "attention decoder") == \
        "Attention weights\nmodel: attention decoder\nsource: Il parle vite."
    # hyphens do not break a line, nor does a long word get split
    sentence = ("Le chat-noir de la voisine dort sur le canapé-lit du salon, et "
                + "x" * 60 + " fin")
    assert attention_title(t, sentence).split("\n")[1:] == [
        "source: Le chat-noir de la voisine dort sur le",
        "canapé-lit du salon, et",
        "x" * 60,
        "fin"]
    # "source: " and 20 "a " and "ab" (50 characters) fit a line; one more does not
    assert attention_title(t, "a " * 20 + "ab") == "Attention weights\nsource: " + "a " * 20 + "ab"
    assert attention_title(t, "a " * 20 + "abc") == \
        "Attention weights\nsource: " + "a " * 19 + "a\nabc"


def _size(t, title):
    """The heat map's size in inches, as its docstring promises: room for the cells
    (0.45 in per source token, 0.4 in per output step), the longest tick labels, the
    title's lines and the colour bar."""
    lines = title.split("\n")
    rows = [*t.tokens, "<eos>"][:t.weights.shape[0]]
    width = 0.45 * t.weights.shape[1] + 0.085 * max(map(len, rows)) + 2.2
    width = max(width, 0.09 * max(map(len, lines)) + 0.4)
    height = (0.4 * t.weights.shape[0] + 0.085 * max(map(len, t.source))
              + 0.25 * len(lines) + 1.0)
    return width, height


@pytest.mark.parametrize(("source", "tokens", "rows", "model", "width", "height"), [
    # the cells set the width
    (["il", "parle", "vite", "<eos>"], ["he", "speaks"], None, "attention, greedy",
     0.45 * 4 + 0.085 * 6 + 2.2, 0.4 * 3 + 0.085 * 5 + 0.25 * 3 + 1.0),
    # the title sets the width; no <eos> step (num_steps reached), so no "<eos>" row
    (["il", "parle", "<eos>"], ["he", "speaks", "fast", "now"], 4, "m" * 70,
     0.09 * 77 + 0.4, 0.4 * 4 + 0.085 * 5 + 0.25 * 3 + 1.0),
])
def test_the_heat_map_is_sized_and_drawn_as_designed(source, tokens, rows, model, width,
                                                     height):
    pytest.importorskip("matplotlib")
    from minis2s.decode.heatmap import make_attention_figure

    t = _translation(source, tokens, rows)
    fig = make_attention_figure(t, " ".join(source[:-1]), model)
    title = fig._suptitle.get_text()
    assert (fig._suptitle.get_fontsize(), len(title.split("\n"))) == (10, 3)
    assert _size(t, title) == pytest.approx((width, height))
    np.testing.assert_allclose(fig.get_size_inches(), (width, height))
    fig.canvas.draw()
    ax, bar = fig.axes
    image = ax.images[0]
    assert image.get_cmap().name == "Reds" and image.get_clim() == (0.0, 1.0)
    assert image.colorbar is not None and image.colorbar.ax is bar
    assert bar.get_ylabel() == "weight"
    assert bar.get_position().height == pytest.approx(0.8 * ax.get_position().height)
    xlabels = ax.get_xticklabels()
    assert [lb.get_text() for lb in xlabels] == source
    assert {lb.get_rotation() for lb in xlabels} == {90.0}
    want_rows = [*tokens, "<eos>"][:t.weights.shape[0]]
    assert [lb.get_text() for lb in ax.get_yticklabels()] == want_rows
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("source tokens (keys)",
                                                  "output tokens (queries)")


@pytest.mark.filterwarnings("ignore:Attempting to set identical")
@pytest.mark.parametrize(("source", "rows", "size"), [
    (["il", "parle", "<eos>"], 0, (0.45 * 3 + 0.085 * 1 + 2.2, 0.085 * 5 + 0.25 * 2 + 1.0)),
    ([], 2, (0.085 * 5 + 2.2, 0.4 * 2 + 0.085 * 1 + 0.25 * 2 + 1.0)),
])
def test_an_empty_heat_map_is_sized_for_one_character_labels(source, rows, size):
    """No output step, or no source token: the missing labels count as one character."""
    pytest.importorskip("matplotlib")
    from minis2s.decode.heatmap import make_attention_figure

    t = Translation(source, [], "", np.zeros((rows, len(source))))
    np.testing.assert_allclose(make_attention_figure(t).get_size_inches(), size)


def test_the_heat_map_without_a_model_or_sentence_says_neither(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from minis2s.decode import heatmap

    t = _translation(["il", "parle", "vite", "<eos>"], ["he", "speaks"])
    fig = heatmap.make_attention_figure(t)
    assert fig._suptitle.get_text() == "Attention weights\nsource: il parle vite"
    saved = []
    monkeypatch.setattr(heatmap, "save_figure",
                        lambda fig, path, tight: saved.append((fig, path, tight)))
    assert heatmap.draw_attention(t, tmp_path / "a.png") is True
    assert heatmap.draw_attention(t, tmp_path / "b.png", "Il parle vite !", "gru") is True
    assert [f._suptitle.get_text() for f, _, _ in saved] == [
        "Attention weights\nsource: il parle vite",
        "Attention weights\nmodel: gru\nsource: Il parle vite !"]
    assert [(p.name, bool(tight)) for _, p, tight in saved] == [("a.png", False),
                                                                ("b.png", False)]


def test_without_matplotlib_no_heat_map_is_drawn(monkeypatch, tmp_path):
    from minis2s.decode import heatmap

    monkeypatch.setattr(heatmap, "new_figure", lambda **kwargs: None)
    t = _translation(["il", "<eos>"], ["he"])
    assert heatmap.make_attention_figure(t) is None
    assert heatmap.draw_attention(t, tmp_path / "map.png") is False
    assert not (tmp_path / "map.png").exists()


def test_wrapping_matches_textwrap_with_the_documented_settings():
    """The title's wrapping is textwrap's at width 50, keeping words and hyphens."""
    from minis2s.decode.heatmap import attention_title

    t = _translation(["va", "<eos>"], ["go"])
    text = "one-two three-four " * 6
    want = textwrap.wrap(f"source: {text.strip()}", width=50, break_long_words=False,
                         break_on_hyphens=False)
    assert attention_title(t, text).split("\n")[1:] == want
