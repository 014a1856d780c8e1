"""The commands on a generated task: a short training that learns to reverse strings,
and translate, evaluate, gradflow, heat maps, info, resuming and the Python API on its
checkpoint, each checked against the library called in-process."""

import json
import shutil

import numpy as np
import pytest

import minis2s
from minis2s import checkpoint
from minis2s.backend import get_backend
from minis2s.cli import main
from minis2s.data import build_array, load_task_data
from minis2s.decode import beam_search, greedy_decode
from minis2s.evaluate import AccuracyReport, accuracy
from minis2s.gradflow import batch_of_pairs, gradient_flow

from .fixture_models import train_for_fixture

# reverse strings of 3 to 5 of 8 symbols, with attention: about 98% of the test part
# right after 5 epochs of 1,500 pairs (a few seconds on a 2-core CPU)
TASK = ["--task", "reverse", "--min-len", "3", "--max-len", "5", "--symbols", "8",
        "--train-size", "1500", "--valid-size", "0", "--test-size", "200"]
MODEL = ["--model", "attention", "--num-layers", "1", "--num-hiddens", "64",
         "--embed-size", "16", "--dropout", "0", "--lr", "0.02", "--batch-size", "32"]
STRINGS = ["abcde", "hgf", "cab", "ddhh", "gfedc", "aaab", "hbhb", "fcg", "egga", "bcdef"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_for_fixture([*TASK, *MODEL, "--epochs", "5", "--quiet"],
                             tmp_path_factory.mktemp("reverse"))


def _loaded(path, dtype="float32"):
    ck = checkpoint.load(path)
    backend = get_backend("numpy", dtype)
    return ck, ck.params_on(backend), backend


def _decode(ck, params, backend, texts, beam=1):
    """The library in-process: each text as the task's tokens (forward: this task reads
    its sources as written), ids by the vocabulary, greedy decoding or beam search; the
    outputs as token lists."""
    tokens = [[c for c in t if not c.isspace()] for t in texts]
    src, valid = build_array(tokens, ck.src_vocab, ck.data.num_steps)
    if beam == 1:
        found = greedy_decode(params, ck.config, src, ck.tgt_vocab, ck.data.num_steps,
                              backend, valid)
    else:
        found = beam_search(params, ck.config, src, ck.tgt_vocab, ck.data.num_steps,
                            backend, beam, 0.75, valid)
    return [ck.tgt_vocab.to_tokens(h.tokens) for h in found]


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_a_short_training_learns_to_reverse(trained, capsys):
    """The stated accuracy: at least 90% of the test part exactly right (98% when this
    was written), and 95% of its tokens."""
    assert main(["evaluate", "--model", str(trained), "--json"]) == 0
    (found,) = _json_lines(capsys.readouterr().out)
    assert found["pairs"] == 200
    assert found["exact_match"] >= 90 and found["token_accuracy"] >= 95
    ck = checkpoint.load(trained)
    assert ck.task.to_dict() == {"name": "reverse", "train_size": 1500, "seed": 0, "options": {
        "symbols": 8, "min_len": 3, "max_len": 5, "reverse_source": False}}
    assert ck.data.num_steps == 6 and ck.data.min_freq == 1
    assert ck.training["train_pairs"] == 1500
    assert set(ck.src_vocab.idx_to_token[4:]) == set("abcdefgh")


def test_translate_reads_the_tasks_input_and_writes_its_text(trained, capsys):
    ck, params, backend = _loaded(trained)
    assert main(["translate", "--model", str(trained), *STRINGS, "a b c"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = ["".join(t) for t in _decode(ck, params, backend, [*STRINGS, "abc"])]
    assert lines == expected  # "a b c" read as "abc": spaces are no symbols
    assert sum(out == s[::-1] for out, s in zip(lines, STRINGS)) >= 8
    assert main(["translate", "--model", str(trained), "--json", "--detokenize",
                 *STRINGS[:3]]) == 0
    for record, text, out in zip(_json_lines(capsys.readouterr().out), STRINGS, expected):
        assert record["translation"] == record["detokenized"] == out
        assert record["tokens"] == list(out)
        assert record["source_tokens"] == [*text, "<eos>"]


def test_evaluate_scores_a_task_model_by_accuracy(trained, capsys, monkeypatch, tmp_path):
    """Exact match and token accuracy of the outputs the library decodes in-process, on
    the whole and per source length; no corpus is read (MINIS2S_DATA names none here)."""
    monkeypatch.setenv("MINIS2S_DATA", str(tmp_path / "no-such-corpus.zip"))
    ck, params, backend = _loaded(trained)
    test = load_task_data(ck.task, ck.data).test
    lengths = [len(s) for s in test.src_tokens]
    for beam in (1, 3):
        assert main(["evaluate", "--model", str(trained), "--by-length", "--json",
                     "--beam", str(beam)]) == 0
        out, err = capsys.readouterr()
        (found,) = _json_lines(out)
        hyps = _decode(ck, params, backend, ["".join(s) for s in test.src_tokens], beam)
        report = accuracy(hyps, test.tgt_tokens, lengths)
        assert (found["exact_match"], found["token_accuracy"]) == (
            report.exact_match, report.token_accuracy)
        assert found["by_length"] == [b.__dict__ for b in report.buckets]
        assert [b["label"] for b in found["by_length"]] == ["3", "4", "5"]
        assert "bleu" not in found and found["task"]["name"] == "reverse"
        assert err.splitlines()[1:3] == [
            f"exact match {report.exact_match:.2f}%  (outputs equal to their reference, "
            "every token)",
            f"token accuracy {report.token_accuracy:.2f}%  (positions right, each pair "
            "counting the longer of output and reference)"]
        assert err.splitlines()[3] == "source tokens   pairs   exact   token"
    assert main(["evaluate", "--model", str(trained), "--show", "2"]) == 0
    shown = capsys.readouterr().out.splitlines()[-2:]
    for line, src, ref in zip(shown, test.src_tokens, test.tgt_tokens):
        assert line.startswith(f"  {''.join(src)} => ")
        assert line.endswith(f"   [ref: {''.join(ref)}]")


def test_evaluate_says_a_task_model_reads_no_corpus(trained, tmp_path, capsys):
    assert main(["evaluate", "--model", str(trained), "--data",
                 str(tmp_path / "fra.txt")]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [f"minis2s: --data is not read for {trained}: a task model "
                                "makes its pairs again"]


@pytest.fixture(scope="module")
def corpus_model(tiny_corpus, tmp_path_factory):
    return train_for_fixture(["--data", str(tiny_corpus), "--examples", "60", "--epochs",
                              "1", "--test-size", "10", "--quiet"],
                             tmp_path_factory.mktemp("corpus"))


def test_one_plot_takes_models_of_one_kind(trained, corpus_model, tiny_corpus, tmp_path,
                                           capsys):
    plot = tmp_path / "scores.png"
    assert main(["evaluate", "--model", str(trained), "--model", str(corpus_model),
                 "--data", str(tiny_corpus), "--plot", str(plot)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        "minis2s: error: --plot draws BLEU and chrF for a corpus model and accuracy for a "
        "task model: give models of one kind (several --plot runs)"]
    assert not plot.exists()
    # without a figure, both are scored, each its own way
    assert main(["evaluate", "--model", str(trained), "--model", str(corpus_model),
                 "--data", str(tiny_corpus), "--json"]) == 0
    task_line, corpus_line = _json_lines(capsys.readouterr().out)
    assert "exact_match" in task_line and "bleu" not in task_line
    assert "bleu" in corpus_line and "exact_match" not in corpus_line


def test_the_accuracy_plot_draws_what_evaluate_reports(trained, tmp_path, capsys,
                                                        monkeypatch):
    pytest.importorskip("matplotlib")
    import minis2s.evaluate as evaluation

    figures = []
    real = evaluation.make_by_length_figure
    monkeypatch.setattr(evaluation, "make_by_length_figure",
                        lambda *a: figures.append(real(*a)) or figures[-1])
    plot = tmp_path / "accuracy.png"
    assert main(["evaluate", "--model", str(trained), "--json", "--plot", str(plot)]) == 0
    (found,) = _json_lines(capsys.readouterr().out)
    assert plot.is_file()
    (fig,) = figures
    for ax, key in zip(fig.axes[:2], ("exact_match", "token_accuracy")):
        (line,) = ax.get_lines()
        assert list(line.get_ydata()) == [b[key] for b in found["by_length"]]


def test_gradflow_reads_the_pairs_as_the_task_does(trained, tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("abcde\tedcba\nh g f\tfgh\n\nca\tac\n", encoding="utf-8")
    assert main(["gradflow", "--model", str(trained), "--pairs", str(pairs), "--json"]) == 0
    (name, flow), = json.loads(capsys.readouterr().out).items()
    ck, params, backend = _loaded(trained, "float64")
    tokens = [(list("abcde"), list("edcba")), (list("hgf"), list("fgh")),
              (list("ca"), list("ac"))]
    expected = gradient_flow(params, ck.config, batch_of_pairs(
        tokens, ck.src_vocab, ck.tgt_vocab, ck.data.num_steps, backend))
    assert flow == json.loads(json.dumps(expected.to_dict()))
    assert len(flow["decoder"][0]) == ck.data.num_steps


def test_heat_maps_of_a_task_model(trained, tmp_path, capsys):
    maps = tmp_path / "maps"
    assert main(["translate", "--model", str(trained), "--json", "--attention-plot",
                 str(maps), "abcde", "fgh"]) == 0
    out, err = capsys.readouterr()
    for record, text in zip(_json_lines(out), ["abcde", "fgh"]):
        weights = np.array(record["attention"])
        assert weights.shape == (len(record["tokens"]) + 1, len(text) + 1)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    pytest.importorskip("matplotlib")
    assert sorted(p.name for p in maps.iterdir()) == ["sentence_0001.png",
                                                       "sentence_0002.png"]


def test_info_names_the_task(trained, capsys):
    assert main(["info", str(trained)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4] == ("task      reverse (symbols 8, min_len 3, max_len 5, reverse_source "
                        "off; 1,500 training pairs, seed 0)")
    assert main(["info", str(trained), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == checkpoint.load(
        trained).task.to_dict()


def test_resuming_goes_on_with_the_task_and_refuses_another(trained, corpus_model,
                                                            tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained.parent, run)
    for flags, trained_on in [
            (["--max-len", "6"], "task reverse (symbols 8, min_len 3, max_len 5, "
                                 "reverse_source off; 1,500 training pairs, seed 0)"),
            (["--task", "copy"], "task reverse (symbols 8, min_len 3, max_len 5, "
                                 "reverse_source off; 1,500 training pairs, seed 0)")]:
        assert main(["train", "--resume", "--out", str(run), "--epochs", "6", *flags]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(f"minis2s: error: {run / 'checkpoint.npz'} was trained on "
                               f"{trained_on}, not task ")
        assert line.endswith("; leave the task flags out to go on with its own")
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_model.parent, corpus)
    assert main(["train", "--resume", "--out", str(corpus), "--epochs", "2", "--task",
                 "add"]) == 2
    assert " was trained on the corpus, not task add (digits 3, " in capsys.readouterr().err
    # the flags that agree, or none: one more epoch of the same task
    assert main(["train", "--resume", "--out", str(run), "--epochs", "6", "--task",
                 "reverse", "--symbols", "8", "--quiet"]) == 0
    ck = checkpoint.load(run / "checkpoint.npz")
    assert ck.training["epochs"] == 6 and ck.task == checkpoint.load(trained).task


def test_the_python_api_on_a_task_model(trained, capsys):
    model = minis2s.load(trained, backend="numpy")
    assert main(["translate", "--model", str(trained), *STRINGS[:4]]) == 0
    assert model.translate(STRINGS[:4]) == capsys.readouterr().out.splitlines()
    assert model.translate(STRINGS[:4], detokenize=True) == model.translate(STRINGS[:4])
    report = model.evaluate()
    assert isinstance(report, AccuracyReport) and report.pairs == 200
    flow = model.gradient_flow(["abcde\tedcba", ("hgf", "fgh")])
    assert len(flow.encoder[0]) == 6
    assert model.info()["task"]["name"] == "reverse"


def _have_mpi() -> bool:
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None and shutil.which("mpiexec")


@pytest.mark.skipif(not _have_mpi(), reason="needs mpi4py and mpiexec (the mpi extra)")
def test_a_task_trains_on_two_ranks_as_on_one(tmp_path):
    """Each rank makes the task's pairs itself, alike (the ranks compare their data), and
    the run is the one-process run: the same losses, to float32's rounding."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    flags = ["-m", "minis2s", "train", "--task", "add", "--digits", "2", "--train-size",
             "600", "--valid-size", "50", "--test-size", "50", "--epochs", "2", "--quiet"]
    runs = {"one": [sys.executable], "two": [shutil.which("mpiexec"), "-n", "2",
                                             sys.executable]}
    for name, start in runs.items():
        r = subprocess.run([*start, *flags, "--out", str(tmp_path / name)], cwd=root,
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    one, two = (checkpoint.load(tmp_path / n / "checkpoint.npz") for n in runs)
    assert one.task == two.task and one.task.name == "add"
    for a, b in zip(one.training["history"], two.training["history"]):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6)
        assert b["valid_loss"] == pytest.approx(a["valid_loss"], rel=1e-6)
