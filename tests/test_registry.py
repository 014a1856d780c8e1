"""The decoder seam: a decoder written here, outside the package, registers itself and
then trains, passes the gradient check, decodes greedily and by beam search, survives a
checkpoint round trip and a resume, and runs through gradflow and the commands — with no
package file edited for it. Also: every decoder's step function is its teacher-forced
forward one step at a time, and nothing outside a decoder's own module asks which
decoder (or which cell) it holds."""

import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from minis2s import checkpoint
from minis2s import gradcheck as gc
from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.data import DataSpec, Vocab
from minis2s.decode import beam_search, greedy_decode
from minis2s.gradflow import batch_of_pairs, gradient_flow
from minis2s.model import (
    DECODERS,
    Decoder,
    DecoderGrads,
    ModelConfig,
    StepOutput,
    encoder_forward,
    init_params,
    register_decoder,
)
from minis2s.model.attention import attention_decoder_forward, attention_weights
from minis2s.model.bridge import initial_state_forward
from minis2s.model.decoder import decoder_run
from minis2s.model.weights import dense_params, embedding_param, scope, stack_params
from minis2s.ops import (
    CELLS,
    dense_backward,
    dense_forward,
    embed_project_backward,
    embed_project_forward,
    param_suffix,
    stack_backward,
    stack_flops,
    stack_forward,
)
from minis2s.settings import ConfigError, check

F64 = get_backend("numpy", "float64")
W_IH0 = "decoder.rnn.weight_ih" + param_suffix(0, 0)
B_IH0 = "decoder.rnn.bias_ih" + param_suffix(0, 0)


# ------------------------------------------------------------------ the decoder


class PlainCache(NamedTuple):
    embedded: Any
    rnn: Any
    dense: Any
    padded: bool


class PlainDecoder(Decoder):
    """d2l's decoder without the context: each step reads only the embedding of the
    previous token, from the encoder's final state; nothing else of the source."""

    name = "plain"

    def param_specs(self, cfg):
        W = cfg.decoder_units
        return {"decoder.embedding.weight": embedding_param(cfg.tgt_vocab_size,
                                                            cfg.embed_size),
                **stack_params("decoder.rnn.", cfg.recurrent.gates, cfg.embed_size, W,
                               cfg.num_layers),
                **dense_params("decoder.dense.", W, cfg.tgt_vocab_size)}

    def _run(self, params, cfg, ids, state, masks=None, batch_sizes=None, probes=None):
        padded = batch_sizes is None
        gi, embedded = embed_project_forward(ids.T if padded else ids,
                                             params["decoder.embedding.weight"],
                                             params[W_IH0], params[B_IH0])
        (out, state_n), rnn = stack_forward(cfg.recurrent, None, scope(params, "decoder.rnn."),
                                            cfg.num_layers, False, state, masks,
                                            batch_sizes=batch_sizes, input_proj=[gi],
                                            probes=probes)
        logits, dense = dense_forward(out, params["decoder.dense.weight"],
                                      params["decoder.dense.bias"])
        if padded:
            logits = logits.transpose(1, 0, 2)
        return logits, state_n, PlainCache(embedded, rnn, dense, padded)

    def forward(self, params, cfg, ids, encoded, masks=None, batch_sizes=None,
                probes=None):
        logits, _, cache = self._run(params, cfg, ids, encoded.state, masks, batch_sizes,
                                     probes)
        return logits, cache

    def backward(self, dlogits, cache, record=False):
        if cache.padded:
            dlogits = dlogits.transpose(1, 0, 2)
        dout, g_dense = dense_backward(dlogits, cache.dense)
        g = stack_backward(dout, None, cache.rnn, record)
        ge = embed_project_backward(g.dproj[0], cache.embedded)
        grads = {"decoder.embedding.weight": ge["embedding"], W_IH0: ge["weight"],
                 B_IH0: ge["bias"]}
        grads.update({"decoder.rnn." + k: v for k, v in g.params.items()})
        grads.update({"decoder.dense." + k: v for k, v in g_dense.items()})
        return DecoderGrads(g.dstate0, None, grads, g.recorded)

    def begin(self, params, cfg, encoded):
        return encoded.state, None  # the first state is all it reads of the source

    def step(self, params, cfg, ids, state, memory):
        logits, state, _ = self._run(params, cfg, ids[:, None], state)
        return StepOutput(logits[:, 0], state, None)

    def flops(self, cfg, S, T):
        W = cfg.decoder_units
        return (stack_flops(cfg.recurrent.gates, T, cfg.embed_size, W, cfg.num_layers)
                + 2 * T * W * cfg.tgt_vocab_size)


PLAIN = PlainDecoder()


@pytest.fixture
def plain():
    """The decoder in the table for one test, and gone after it."""
    register_decoder(PLAIN)
    yield PLAIN
    del DECODERS[PLAIN.name]


def _cfg(cell="gru", model="plain", bidirectional=False, dropout=0.3, **kw):
    return ModelConfig(src_vocab_size=9, tgt_vocab_size=8, embed_size=3, num_hiddens=4,
                       num_layers=2, dropout=dropout, bidirectional=bidirectional, cell=cell,
                       model=model, **kw)


# ------------------------------------------------------------------ the seam holds


def test_registering_twice_under_one_name_is_refused(plain):
    register_decoder(plain)  # the same object again: nothing changes
    with pytest.raises(ValueError, match="registered already"):
        register_decoder(PlainDecoder())


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
def test_a_registered_decoder_passes_the_gradient_check(plain, cell, packed):
    rows = gc.check_seq2seq(np.random.default_rng(1), _cfg(cell, bidirectional=not packed),
                            packed=packed)
    names = {r.name for r in rows}
    assert "decoder.rnn.weight_ih_l0" in names and "encoder.embedding.weight" in names
    assert max(r.error for r in rows) < gc.TOLERANCE, [r for r in rows
                                                       if r.error >= gc.TOLERANCE]


# per decoder: the state after a teacher-forced run over ids (N, t), from the encoder's
# state; a new decoder needs its own entry
def _seq2seq_state(params, cfg, ids, encoded):
    state0, _ = initial_state_forward(params, cfg, encoded.state)  # the bridge's, if any
    (_, state), _ = decoder_run(params, cfg, ids, state0, encoded.state.top)
    return state


def _attention_state(params, cfg, ids, encoded):
    return attention_decoder_forward(params, cfg, ids, encoded)[1].final_state


def _plain_state(params, cfg, ids, encoded):
    return PLAIN._run(params, cfg, ids, encoded.state)[1]


TEACHER_FORCED_STATE = {"seq2seq": _seq2seq_state, "attention": _attention_state,
                        "plain": _plain_state}
# per decoder that attends: its forward's cache -> the attention weights (N, T, S) of every
# teacher-forced step
TEACHER_FORCED_WEIGHTS = {"attention": attention_weights}


# the package's own model switches, on its own decoders: a decoder of other units than the
# encoder's state (through the bridge), and a deep output layer
SWITCHES = {"as-seeded": {}, "bridge": {"decoder_hiddens": 5},
            "deep-output": {"output_layer": "deep"}}
STEP_CASES = [(model, switch) for model in sorted({*DECODERS, PLAIN.name})
              for switch in SWITCHES if model in DECODERS or switch == "as-seeded"]


@pytest.mark.parametrize(("model", "switch"), STEP_CASES)
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_each_decoders_step_is_its_forward_one_step_at_a_time(plain, model, switch, cell):
    """Feeding the teacher-forced inputs through begin() and step() gives, at every step,
    the padded forward's logits, its attention weights (decoders that attend) and the
    state a teacher-forced run of the same prefix ends in: what greedy and beam search
    decode with is the model that was trained, with a bridge or a deep output too."""
    cfg = _cfg(cell, model, bidirectional=True, dropout=0.0, **SWITCHES[switch])
    rng = np.random.default_rng(2)
    params = init_params(cfg, F64, rng)
    for name, value in params.items():  # no bias may be zero: a dropped one must show
        if "bias" in name:
            value[...] = rng.uniform(0.5, 1.0, value.shape) * rng.choice([-1, 1], value.shape)
    batch = gc.make_batch(rng, cfg, 4, 5, 6)
    assert len(set(batch.src_valid_len.tolist())) > 1  # some sources padded, some not
    encoded, _ = encoder_forward(params, cfg, batch.src, batch.src_valid_len)
    logits, cache = cfg.decoder.forward(params, cfg, batch.tgt_in, encoded)
    weights = TEACHER_FORCED_WEIGHTS[model](cache) if cfg.decoder.attends else None
    state, memory = cfg.decoder.begin(params, cfg, encoded)
    for t in range(batch.tgt_in.shape[1]):
        out = cfg.decoder.step(params, cfg, batch.tgt_in[:, t], state, memory)
        np.testing.assert_allclose(out.logits, logits[:, t], rtol=0, atol=1e-12)
        assert (out.weights is not None) == cfg.decoder.attends
        if cfg.decoder.attends:
            np.testing.assert_allclose(out.weights, weights[:, t], rtol=0, atol=1e-12)
        expected = TEACHER_FORCED_STATE[model](params, cfg, batch.tgt_in[:, :t + 1],
                                               encoded)
        np.testing.assert_allclose(out.state.h, expected.h, rtol=0, atol=1e-12)
        assert (out.state.c is None) == (expected.c is None) == (cell != "lstm")
        if cell == "lstm":
            np.testing.assert_allclose(out.state.c, expected.c, rtol=0, atol=1e-12)
        state = out.state


def test_a_registered_decoder_decodes_greedily_and_by_beam_search(plain):
    cfg = _cfg(dropout=0.0)
    rng = np.random.default_rng(3)
    params = init_params(cfg, F64, rng)
    vocab = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>", *"abcd"])
    src = rng.integers(4, 9, (5, 4))
    greedy = greedy_decode(params, cfg, src, vocab, 6, F64, return_weights=True)
    beam1 = beam_search(params, cfg, src, vocab, 6, F64, beam_size=1)
    assert [g.tokens for g in greedy] == [h.tokens for h in beam1]
    assert all(g.weights is None for g in greedy)  # it does not attend
    wide = beam_search(params, cfg, src, vocab, 6, F64, beam_size=4)
    assert all(w.score >= b.score - 1e-12 for w, b in zip(wide, beam1))


def test_a_registered_decoder_trains_saves_resumes_translates_and_flows(plain, tiny_corpus,
                                                                         tmp_path, capsys):
    """Through the commands, as a user would: the CLI's choices read the table."""
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_corpus), "--preset", "zh", "--examples", "199",
            "--quiet", "--model", "plain", "--cell", "lstm", "--out", str(out)]
    assert main([*args, "--epochs", "2"]) == 0
    ck = checkpoint.load(out / "checkpoint.npz")
    assert ck.config.model == "plain" and ck.config.cell == "lstm"
    assert set(ck.params) == set(PLAIN.param_specs(ck.config)) | {
        k for k in ck.params if k.startswith("encoder.")}
    losses = [h["loss"] for h in ck.training["history"]]
    assert losses[1] < losses[0]
    assert main([*args, "--epochs", "3", "--resume"]) == 0
    assert len(checkpoint.load(out / "checkpoint.npz").training["history"]) == 3
    capsys.readouterr()
    assert main(["translate", "--model", str(out / "checkpoint.npz"), "--beam", "3",
                 "i am home .", "go ."]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["gradflow", "--model", str(out / "checkpoint.npz"), "--pairs",
                 str(tiny_corpus), "--batch-size", "8", "--json"]) == 0
    assert '"decoder"' in capsys.readouterr().out


def test_gradient_flow_of_a_registered_decoder(plain):
    vocab = Vocab([["a", "b", "c", "d", "a", "b", "c", "d"]], min_freq=1)
    cfg = ModelConfig(src_vocab_size=len(vocab), tgt_vocab_size=len(vocab), embed_size=3,
                      num_hiddens=4, num_layers=2, dropout=0.0, model="plain")
    params = init_params(cfg, F64, np.random.default_rng(4))
    pairs = [(["a", "b"], ["c", "d", "a"]), (["b"], ["d"]), (["a", "c", "d"], ["b"])]
    flow = gradient_flow(params, cfg, batch_of_pairs(pairs, vocab, vocab, 5, F64))
    assert len(flow.encoder) == len(flow.decoder) == 2
    assert all(len(layer) == 5 for layer in flow.encoder + flow.decoder)
    assert all(v > 0 for v in flow.encoder[1])  # the gradient reaches every source step


def test_an_unregistered_decoder_is_refused_everywhere(tiny_corpus, tmp_path, capsys):
    """Once the decoder leaves the table: the settings, ModelConfig, the flags and a
    checkpoint that names it all refuse it, naming the decoders there are."""
    register_decoder(PLAIN)
    try:
        cfg = _cfg(dropout=0.0)
        params = init_params(cfg, F64, np.random.default_rng(0))
        vocab = Vocab.from_tokens(["<unk>", "<pad>", "<bos>", "<eos>", *"abcd"])
        path = checkpoint.save(tmp_path / "plain.npz", checkpoint.Checkpoint(
            {k: np.asarray(v) for k, v in params.items()}, cfg, DataSpec(num_steps=4),
            vocab, vocab))
    finally:
        del DECODERS[PLAIN.name]
    known = ", ".join(DECODERS)
    with pytest.raises(ConfigError, match=f"--model must be one of {known}, got 'plain'"):
        check({"model": "plain"})
    with pytest.raises(ConfigError, match="model must be one of"):
        _cfg()
    with pytest.raises(checkpoint.CheckpointError, match=f"one of {known}, got 'plain'"):
        checkpoint.load(path)
    assert main(["translate", "--model", str(path), "a b"]) == 2
    assert "got 'plain'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", str(tiny_corpus), "--model", "plain", "--out",
              str(tmp_path)])
    assert "invalid choice: 'plain'" in capsys.readouterr().err


# ------------------------------------------------------------------ nothing else asks


PACKAGE = Path(__file__).resolve().parents[1] / "minis2s"
DECODER_MODULES = {"model/decoder.py", "model/attention.py"}
CELL_MODULES = {"ops/gru.py", "ops/lstm.py", "ops/rnn.py"}
# a comparison with, or a membership test against, a name of the tables; or a list of
# names written out (the table's keys are the list)
_BRANCH = (r"""(==|!=|\bis\b|\bin\b)\s*[\(\[{{]?\s*["']({names})["']|["']({names})["']\s*(==|!=)"""
           r"""|["']({names})["']\s*,\s*["']({names})["']""")


def _branches(names, allowed):
    pattern = re.compile(_BRANCH.format(names="|".join(map(re.escape, names))))
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in allowed:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) or re.search(r"\bcfg\.attention\b", line):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


def test_nothing_outside_a_decoders_module_branches_on_its_name():
    assert _branches(list(DECODERS), DECODER_MODULES) == []


def test_nothing_outside_a_cells_module_branches_on_its_name():
    assert _branches(list(CELLS), CELL_MODULES) == []


def test_the_branch_finder_finds_a_planted_branch(tmp_path, monkeypatch):
    planted = tmp_path / "minis2s" / "model"
    planted.mkdir(parents=True)
    (planted / "steps.py").write_text('if cfg.model == "attention":\n    pass\n')
    (planted / "greedy.py").write_text('if cell in ("gru", "rnn"):\n    pass\n')
    (planted / "cli.py").write_text('choices = ["seq2seq", "attention"]\n')
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "minis2s")
    assert len(_branches(["seq2seq", "attention"], DECODER_MODULES)) == 2
    assert len(_branches(["gru", "lstm", "rnn"], CELL_MODULES)) == 1
