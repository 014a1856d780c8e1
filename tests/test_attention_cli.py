"""The attention model and beam search through the commands."""

import json

import numpy as np
import pytest

from minis2s import checkpoint
from minis2s.cli import main

from .fixture_models import train_for_fixture

SHORT = ["--preset", "zh", "--examples", "199", "--quiet", "--min-freq", "1"]


@pytest.fixture(scope="module")
def attention_model(tiny_corpus, tmp_path_factory):
    return train_for_fixture(["--data", str(tiny_corpus), *SHORT, "--model", "attention",
                              "--epochs", "3"], tmp_path_factory.mktemp("attention"))


def test_train_records_the_attention_model(attention_model):
    ck = checkpoint.load(attention_model)
    assert ck.config.model == "attention"
    assert ck.params["decoder.attention.W_q.weight"].shape == (32, 32)
    assert ck.params["decoder.rnn.weight_ih_l0"].shape == (96, 32 + 32)  # [context ; emb]


def test_translate_json_and_heat_maps(attention_model, tmp_path, capsys):
    sentences = ["i lost .", "", "you go home .", "he is calm ."]
    maps = tmp_path / "maps"
    assert main(["translate", "--model", str(attention_model), "--json",
                 "--attention-plot", str(maps), *sentences]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["source"] for r in records] == sentences
    assert records[1]["attention"] is None and records[1]["attention_plot"] is None
    for r in records[:1] + records[2:]:
        w = np.array(r["attention"])
        assert w.shape == (min(len(r["tokens"]) + 1, 10), len(r["source_tokens"]))
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)  # over the source
        assert r["source_tokens"][-1] == "<eos>"
    pytest.importorskip("matplotlib")
    # numbered in the order drawn: the empty line gets no map, and each record names its own
    drawn = ["sentence_0001.png", "sentence_0002.png", "sentence_0003.png"]
    assert sorted(p.name for p in maps.iterdir()) == drawn
    assert [r["attention_plot"] for r in records] == [
        str(maps / drawn[0]), None, str(maps / drawn[1]), str(maps / drawn[2])]
    assert "3 attention heat maps in" in err


def test_beam_search_through_the_commands(attention_model, tiny_corpus, tmp_path, capsys):
    """The beam options are taken and reported (the report's heading, the JSON); that
    they reach the search, tests/test_decoding_commands.py shows."""
    assert main(["translate", "--model", str(attention_model), "--beam", "4",
                 "--length-penalty", "0.5", "i lost .", "go ."]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["evaluate", "--model", str(attention_model), "--data", str(tiny_corpus),
                 "--part", "train", "--beam", "2", "--by-length", "--json",
                 "--plot", str(tmp_path / "by_length.png")]) == 0
    out, err = capsys.readouterr()  # with --json: the JSON on stdout, the report on stderr
    lines = err.splitlines()
    assert lines[0].endswith("attention model, beam 2, length penalty 0.75")
    assert lines[4].split() == ["source", "tokens", "pairs", "BLEU", "chrF"]
    report = json.loads(out)
    assert report["beam"] == 2 and sum(b["pairs"] for b in report["by_length"]) == \
        report["pairs"]


@pytest.mark.parametrize(("args", "message"), [
    (["--beam", "0"], "--beam must be a whole number >= 1, got 0"),
    (["--beam", "-2"], "--beam must be a whole number >= 1, got -2"),
    (["--length-penalty", "-1"], "--length-penalty must be a number >= 0, got -1.0"),
    (["--length-penalty", "nan"], "--length-penalty must be a number >= 0, got nan"),
])
def test_bad_beam_settings_are_one_error_line(attention_model, capsys, args, message):
    assert main(["translate", "--model", str(attention_model), *args, "go ."]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"minis2s: error: {message}"]


def test_heat_maps_of_the_seeds_model_are_refused(tiny_corpus, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_corpus), *SHORT, "--epochs", "1", "--out",
                 str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    assert main(["translate", "--model", str(tmp_path / "plain" / "checkpoint.npz"),
                 "--attention-plot", str(tmp_path / "maps"), "go ."]) == 2
    assert "has no attention weights to draw" in capsys.readouterr().err
    assert not (tmp_path / "maps").exists()


def test_gradflow_reads_an_attention_checkpoint(attention_model, tiny_corpus, capsys):
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--model", str(attention_model),
                 "--json", "--batch-size", "8"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert list(flows) == [f"{attention_model.parent} (attention, gru)"]
    flow = flows[f"{attention_model.parent} (attention, gru)"]
    assert len(flow["encoder"]) == len(flow["decoder"]) == 2
    assert all(len(row) == 10 for row in flow["decoder"])
