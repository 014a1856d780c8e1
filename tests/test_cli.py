"""The commands end to end: train, translate, evaluate, and the example."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minis2s import checkpoint
from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.data import DataSpec
from minis2s.decode import translate
from minis2s.params import ParamSet
from minis2s.presets import get_preset
from minis2s.settings import DATA_FIELDS, MODEL_FIELDS
from minis2s.train.resume import saved_settings

from .fixture_models import train_for_fixture

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["go .", "i lost .", "he's calm .", "I'm home."]


def run(*args, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "minis2s", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    # a raised learning rate: translations worth scoring in 40 epochs (BLEU ~11)
    return train_for_fixture(["--data", str(corpus), "--preset", "zh", "--epochs", "40",
                              "--lr", "0.02", "--quiet"], out)


def in_process(ckpt_path, sentences):
    ck = checkpoint.load(ckpt_path)
    backend = get_backend("numpy")
    params = ParamSet({k: v.shape for k, v in ck.params.items()}, backend.xp, backend.dtype)
    params.assign(ck.params)
    return translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sentences,
                     ck.data.num_steps, backend)


def test_translate_prints_exactly_what_greedy_decoding_gives(trained):
    expected = in_process(trained, SENTENCES)
    r = run("translate", "--model", str(trained), *SENTENCES)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(line + "\n" for line in expected)
    # the same from standard input, one line each, empty lines kept as empty lines
    r = run("translate", "--model", str(trained), stdin="\n".join([*SENTENCES, "  "]) + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == [*expected, ""]


def test_checkpoint_reads_back_identical(trained, corpus):
    from minis2s.data import load_data

    ck = checkpoint.load(trained)
    assert ck.data == DataSpec(num_steps=10, num_examples=600)  # preset zh's
    data = load_data(corpus, DataSpec(num_steps=10, num_examples=600))
    assert ck.src_vocab.idx_to_token == data.src_vocab.idx_to_token
    assert ck.tgt_vocab.idx_to_token == data.tgt_vocab.idx_to_token
    again = trained.parent / "again.npz"
    checkpoint.save(again, ck)
    ck2 = checkpoint.load(again)
    assert ck2.config == ck.config and ck2.data == ck.data
    assert ck2.data.num_steps == ck.data.num_steps == 10
    assert ck2.training == ck.training
    assert list(ck2.params) == list(ck.params)
    for name in ck.params:
        np.testing.assert_array_equal(ck2.params[name], ck.params[name])
        assert ck2.params[name].dtype == ck.params[name].dtype
    with np.load(trained, allow_pickle=False) as npz:
        assert "meta" in npz.files and "decoder.dense.weight" in npz.files


def test_evaluate_prints_sacrebleus_own_scores(trained, corpus):
    """The printed BLEU and chrF are sacrebleu's, called here directly on the same
    translations and references (detokenized: no space before , . ! ?)."""
    import re

    from sacrebleu.metrics import BLEU, CHRF

    from minis2s.data import load_data

    r = run("evaluate", "--model", str(trained), "--data", str(corpus), "--part", "train")
    assert r.returncode == 0, r.stderr
    ck = checkpoint.load(trained)
    part = load_data(corpus, ck.data).train
    hyps = in_process(trained, [" ".join(t) for t in part.src_tokens])

    def detok(text):
        return re.sub(r" ([,.!?])", r"\1", text)

    bleu, chrf = BLEU(), CHRF()
    hyps, refs = [detok(h) for h in hyps], [[detok(" ".join(t)) for t in part.tgt_tokens]]
    b, c = bleu.corpus_score(hyps, refs), chrf.corpus_score(hyps, refs)
    assert b.score > 1.0  # a trained model: the comparison is not 0 against 0
    lines = r.stdout.splitlines()
    assert lines[0] == f"train part: {len(part)} pairs, seq2seq model, greedy"
    assert lines[1] == f"BLEU {b.score:.2f}  ({bleu.get_signature()})"
    assert lines[2] == f"chrF {c.score:.2f}  ({chrf.get_signature()})"


def test_evaluate_without_a_test_part_is_a_clear_error(trained, corpus):
    r = run("evaluate", "--model", str(trained), "--data", str(corpus))
    assert r.returncode == 2
    assert "no test part" in r.stderr and "Traceback" not in r.stderr


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    r = run("translate", "--model", str(tmp_path / "nope.npz"), "go .")
    assert r.returncode == 2 and "no checkpoint at" in r.stderr
    assert "Traceback" not in r.stderr


def test_gradcheck_command():
    r = run("gradcheck")
    assert r.returncode == 0, r.stdout[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("max relative error ") and last.endswith(" parameters")
    assert float(last.split()[3]) <= 1e-6


def test_example_runs(corpus, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "examples/train_eng_fra.py", "--data", str(corpus),
                        "--epochs", "2", "--out", str(tmp_path)], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    blocks = r.stdout.strip().split("\n\n")
    assert len(blocks) == 2  # the seed's model, then the attention model
    for block, model in zip(blocks, ["seq2seq", "attention"]):
        lines = block.splitlines()
        assert lines[0] == f"model: {model}"
        assert lines[1].startswith("loss ") and "tokens/sec on cpu" in lines[1]
        assert [ln.split(" => ")[0] for ln in lines[2:]] == ["go .", "i lost .",
                                                              "he's calm .", "i'm home ."]
        assert all(", bleu " in ln for ln in lines[2:])
        ck = checkpoint.load(tmp_path / model / "checkpoint.npz")
        assert ck.config.model == model


# ------------------------------------------------------------ every knob of a preset

KNOBS = ["--bidirectional", "--num-hiddens", "16", "--embed-size", "8", "--num-layers", "3",
         "--dropout", "0.05", "--batch-size", "32", "--lr", "0.01", "--grad-clip", "2",
         "--lr-decay", "0.5", "--num-steps", "7", "--min-freq", "1", "--valid-size", "20",
         "--test-size", "0.1", "--split-seed", "3", "--examples", "199", "--epochs", "2"]


def test_every_flag_reaches_the_model_the_checkpoint_and_the_commands(corpus, tmp_path):
    out = tmp_path / "knobs"
    r = run("train", "--data", str(corpus), "--preset", "zh", *KNOBS, "--out", str(out))
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("minis2s: preset zh: embed_size 8 (preset: 32), num_hiddens 16 "
                            "(preset: 32), num_layers 3 (preset: 2)")
    assert "bidirectional True (preset: False)" in first and first.endswith("; random seed 0")
    ck = checkpoint.load(out / "checkpoint.npz")
    c = ck.config
    assert (c.embed_size, c.num_hiddens, c.num_layers, c.dropout, c.bidirectional) == (
        8, 16, 3, 0.05, True)
    assert ck.data.num_steps == 7
    assert ck.params["encoder.rnn.weight_hh_l2_reverse"].shape == (48, 16)
    assert ck.params["decoder.rnn.weight_hh_l2"].shape == (96, 32)  # 2H decoder units
    # each setting once: the data's in the spec, the optimisation's in the training record
    assert ck.data == DataSpec(num_steps=7, num_examples=199, valid_size=20, test_size=0.1,
                               split_seed=3, min_freq=1)
    saved = ck.training
    assert {k: saved[k] for k in ("batch_size", "lr", "lr_decay", "grad_clip",
                                  "total_epochs")} == {
        "batch_size": 32, "lr": 0.01, "lr_decay": 0.5, "grad_clip": 2.0, "total_epochs": 2}
    assert not {"preset_config", *MODEL_FIELDS, *DATA_FIELDS} & set(saved)
    assert ck.training["train_pairs"] == 200 - 20 - 20
    # and together they give back the run's whole configuration, to resume with
    preset, seed = saved_settings(ck)
    assert preset == get_preset("zh").with_overrides(
        bidirectional=True, num_hiddens=16, embed_size=8, num_layers=3, dropout=0.05,
        batch_size=32, lr=0.01, lr_decay=0.5, grad_clip=2.0, num_steps=7, min_freq=1,
        valid_size=20, test_size=0.1, split_seed=3, num_examples=199, epochs=2)
    assert seed == 0
    r = run("translate", "--model", str(out / "checkpoint.npz"), "go .", "i lost .")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2
    for part in ("valid", "test"):
        r = run("evaluate", "--model", str(out / "checkpoint.npz"), "--data", str(corpus),
                "--part", part)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0].startswith(f"{part} part: 20 pairs, seq2seq model")
    # the flags given to --resume must agree with the checkpoint's
    r = run("train", "--data", str(corpus), "--num-hiddens", "32", "--epochs", "3",
            "--out", str(out), "--resume")
    assert r.returncode == 2
    assert "num_hiddens 16 there, 32 asked" in r.stderr.splitlines()[-1]
    r = run("train", "--data", str(corpus), "--epochs", "3", "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr  # the checkpoint's settings, one more epoch
    assert checkpoint.load(out / "checkpoint.npz").training["epochs"] == 3


@pytest.mark.parametrize(("flags", "message"), [
    (["--epochs", "0"], "--epochs must be a whole number >= 1, got 0"),
    (["--epochs", "-3"], "--epochs must be a whole number >= 1, got -3"),
    (["--num-hiddens", "0"], "--num-hiddens must be a whole number >= 1, got 0"),
    (["--embed-size", "-2"], "--embed-size must be a whole number >= 1, got -2"),
    (["--batch-size", "0"], "--batch-size must be a whole number >= 1, got 0"),
    (["--num-steps", "0"], "--num-steps must be a whole number >= 1, got 0"),
    (["--min-freq", "0"], "--min-freq must be a whole number >= 1, got 0"),
    (["--num-layers", "0"], "--num-layers must be a whole number from 1 to 32, got 0"),
    (["--num-layers", "33"], "--num-layers must be a whole number from 1 to 32, got 33"),
    (["--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
    (["--dropout", "-0.1"], "--dropout must be in [0, 1), got -0.1"),
    (["--lr", "0"], "--lr must be a number > 0, got 0.0"),
    (["--lr", "nan"], "--lr must be a number > 0, got nan"),
    (["--grad-clip", "-1"], "--grad-clip must be a number > 0, got -1.0"),
    (["--lr-decay", "1.5"], "--lr-decay must be a number in (0, 1], got 1.5"),
    (["--lr-decay", "0"], "--lr-decay must be a number in (0, 1], got 0.0"),
    (["--lr-decay", "nan"], "--lr-decay must be a number in (0, 1], got nan"),
    (["--valid-size", "1.5"], "--valid-size must be a count >= 0 or a fraction in [0, 1), "
                              "got 1.5"),
    (["--test-size", "-4"], "--test-size must be a count >= 0 or a fraction in [0, 1), "
                            "got -4"),
    (["--examples", "-1"], "--examples must be a whole number >= 0, got -1"),
    (["--split-seed", "-1"], "--split-seed must be a whole number >= 0, got -1"),
    (["--seed", "-1"], "--seed must be a whole number >= 0, got -1"),
])
def test_nonsense_settings_are_one_error_line_before_any_work(tmp_path, capsys, flags,
                                                              message):
    """Refused before the corpus is looked for (it does not exist here) and before the
    output folder is made."""
    out = tmp_path / "run"
    rc = main(["train", "--data", str(tmp_path / "no-corpus.txt"), *flags, "--out",
               str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"minis2s: error: {message}"]
    assert not out.exists()


def test_the_example_refuses_nonsense_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "examples/train_eng_fra.py", "--epochs", "0",
                        "--out", str(tmp_path / "run")], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == ["minis2s: error: --epochs must be a whole number >= 1, "
                                     "got 0"]


def test_no_progress_bar_when_stderr_is_not_a_terminal(corpus, tmp_path):
    r = run("train", "--data", str(corpus), "--preset", "zh", "--examples", "199",
            "--epochs", "2", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "batch/s" not in r.stderr and "s/batch" not in r.stderr
    assert all(line.startswith("minis2s: ") for line in r.stderr.splitlines())
