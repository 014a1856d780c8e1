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
from minis2s.decode import translate
from minis2s.params import ParamSet

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["go .", "i lost .", "he's calm .", "I'm home."]


def run(*args, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "minis2s", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--data", str(corpus), "--preset", "zh", "--epochs", "3",
               "--out", str(out), "--quiet"])
    assert rc == 0
    return out / "checkpoint.npz"


def in_process(ckpt_path, sentences):
    ck = checkpoint.load(ckpt_path)
    backend = get_backend("numpy")
    params = ParamSet({k: v.shape for k, v in ck.params.items()}, backend.xp, backend.dtype)
    params.assign(ck.params)
    return translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, sentences,
                     ck.num_steps, backend)


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
    data = load_data(corpus, ck.num_steps, 600)
    assert ck.src_vocab.idx_to_token == data.src_vocab.idx_to_token
    assert ck.tgt_vocab.idx_to_token == data.tgt_vocab.idx_to_token
    again = trained.parent / "again.npz"
    checkpoint.save(again, ck)
    ck2 = checkpoint.load(again)
    assert ck2.config == ck.config and ck2.num_steps == ck.num_steps == 10
    assert list(ck2.params) == list(ck.params)
    for name in ck.params:
        np.testing.assert_array_equal(ck2.params[name], ck.params[name])
        assert ck2.params[name].dtype == ck.params[name].dtype
    with np.load(trained, allow_pickle=False) as npz:
        assert "meta" in npz.files and "decoder.dense.weight" in npz.files


def test_evaluate_prints_bleu_chrf_and_signature(corpus, tmp_path):
    out = tmp_path / "en"
    rc = main(["train", "--data", str(corpus), "--preset", "en", "--epochs", "1",
               "--out", str(out), "--quiet"])
    assert rc == 0
    r = run("evaluate", "--model", str(out / "checkpoint.npz"), "--data", str(corpus),
            "--part", "valid")
    assert r.returncode == 0, r.stderr
    assert "BLEU" in r.stdout and "chrF" in r.stdout and "nrefs:1" in r.stdout


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
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("loss ") and "tokens/sec on cpu" in lines[0]
    assert [ln.split(" => ")[0] for ln in lines[1:]] == ["go .", "i lost .", "he's calm .",
                                                          "i'm home ."]
    assert all(", bleu " in ln for ln in lines[1:])
    assert (tmp_path / "checkpoint.npz").is_file()


def test_seed_one_sentence_function_agrees_with_batched_translation(trained):
    from minis2s.decode import predict_seq2seq

    ck = checkpoint.load(trained)
    backend = get_backend("numpy")
    params = ParamSet({k: v.shape for k, v in ck.params.items()}, backend.xp, backend.dtype)
    params.assign(ck.params)
    for sentence, expected in zip(SENTENCES, in_process(trained, SENTENCES)):
        assert predict_seq2seq(params, ck.config, sentence, ck.src_vocab, ck.tgt_vocab,
                               ck.num_steps, backend) == expected
