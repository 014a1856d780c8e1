"""minis2s from Python (minis2s/api.py) and ``minis2s info``.

Each method of :class:`minis2s.Model` is checked against what the command line does with
the same checkpoint and inputs (or the lower-level function it stands for); ``info``
against the checkpoint's own fields; and the README's "From Python" example is run as it
is written, after the training command it gives.
"""

import json
import re
import shlex
import warnings
from pathlib import Path

import numpy as np
import pytest

import minis2s
from minis2s import checkpoint
from minis2s.backend import get_backend
from minis2s.bleu import detokenize
from minis2s.checkpoint import Checkpoint, CheckpointError
from minis2s.cli import main
from minis2s.cli.info import describe
from minis2s.cli.parser import build_parser
from minis2s.data import ENV_DATA, DataError
from minis2s.decode import translate, translations
from minis2s.evaluate import PARTS, evaluate_model
from minis2s.settings import ConfigError

from .fixture_models import train_for_fixture

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["I am home.", "Go.", "", "He is calm and we see it, you run home.",
             "Zebra xylophone ."]


def _train(corpus, out, *flags):
    return train_for_fixture(["--data", str(corpus), "--preset", "zh", "--examples", "199",
                              "--epochs", "1", "--quiet", *flags], out)


def from_python_section() -> str:
    """The text under README.md's '## From Python' heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## From Python\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "README.md has no '## From Python' section"
    return section.group(1)


def from_python_train_command() -> list[str]:
    """The words of the `minis2s train ...` command the 'From Python' section asks for."""
    found = re.findall(r"`(minis2s train [^`]*--out [^`]+)`", from_python_section())
    assert len(found) == 1, f"expected one `minis2s train` command, found {found}"
    return shlex.split(found[0])


def out_folder(words: list[str]) -> str:
    return words[words.index("--out") + 1]


@pytest.fixture(scope="module")
def runs(tiny_corpus, tmp_path_factory):
    """A folder in which the README's 'From Python' training command has run (one epoch
    of 200 pairs of the tiny corpus): the seed's model with a test part of a tenth of the
    pairs, which the README's example evaluates on."""
    root = tmp_path_factory.mktemp("api")
    words = from_python_train_command()
    assert words[:2] == ["minis2s", "train"]
    train_for_fixture([*words[2:-2], "--data", str(tiny_corpus), "--examples", "199",
                       "--epochs", "1", "--quiet"], root / out_folder(words))
    return root


@pytest.fixture(scope="module")
def seq2seq_path(runs):
    return runs / out_folder(from_python_train_command()) / "checkpoint.npz"


@pytest.fixture(scope="module")
def attention_path(tiny_corpus, tmp_path_factory):
    """An attention model with a validation part (so a validation loss is recorded)."""
    return _train(tiny_corpus, tmp_path_factory.mktemp("api_attention"), "--model",
                  "attention", "--valid-size", "20", "--test-size", "20")


def from_python_snippet() -> str:
    """The ```python block under README.md's '## From Python' heading."""
    block = re.search(r"^```python\n(.*?)^```", from_python_section(), re.M | re.S)
    assert block, "README.md's 'From Python' section has no ```python block"
    return block.group(1)


def test_the_readmes_from_python_training_does_not_meet_the_tours_checkpoint():
    """The README's tour trains into some folders first; the 'From Python' command must
    train into one of its own, or ``train`` refuses to replace the tour's checkpoint."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = text[:text.index("## From Python")]
    taken = set(re.findall(r"^minis2s train .*?--out (\S+)", tour, re.M))
    assert "runs/zh" in taken, f"the tour's folders are not found: {taken}"
    folder = out_folder(from_python_train_command())
    assert folder.startswith("runs/") and folder not in taken, folder
    assert f'minis2s.load("{folder}")' in from_python_snippet()


def test_the_readmes_from_python_example_runs(runs, tiny_corpus, monkeypatch, capsys):
    """The example exactly as README.md shows it, after the training command the section
    gives. It names its checkpoint by a relative path and finds its corpus as the
    commands do; so it runs in the folder the command trained in, with $MINIS2S_DATA
    naming the corpus it was trained on (no variables are set for it)."""
    code = from_python_snippet()
    for call in ("translate(", "evaluate(", "gradient_flow(", "info()"):
        assert call in code, f"the README example does not show {call}"
    monkeypatch.chdir(runs)
    monkeypatch.setenv(ENV_DATA, str(tiny_corpus))
    exec(compile(code, "README.md (From Python)", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5, out
    assert re.fullmatch(r"BLEU \d+\.\d\d, chrF \d+\.\d\d", out[2])
    assert "'epochs': 1" in out[4] and "'preset': 'zh'" in out[4]


def test_load_reads_a_file_or_its_folder(seq2seq_path):
    ck = checkpoint.load(seq2seq_path)
    for where in (seq2seq_path, seq2seq_path.parent, str(seq2seq_path.parent)):
        model = minis2s.load(where, backend="numpy")
        assert model.path == seq2seq_path
        assert model.backend == get_backend("numpy")
        assert model.params.dtype == np.float32
        assert list(model.params) == list(ck.params)
        for name, value in ck.params.items():
            np.testing.assert_array_equal(model.params[name], value)
    assert minis2s.load(seq2seq_path, backend=get_backend("numpy", "float64")) \
        .params.dtype == np.float64


def test_load_of_a_bad_path_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*checkpoint.npz"):
        minis2s.load(tmp_path)  # a folder without checkpoint.npz
    (tmp_path / "x.npz").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable .npz checkpoint"):
        minis2s.load(tmp_path / "x.npz")


def _reference(path, dtype="float32"):
    ck = checkpoint.load(path)
    backend = get_backend("numpy", dtype)
    return ck, ck.params_on(backend), backend


@pytest.mark.parametrize("beam", [1, 3])
def test_translate_is_decode_translate(seq2seq_path, attention_path, beam):
    for path in (seq2seq_path, attention_path):
        model = minis2s.load(path, backend="numpy")
        ck, params, backend = _reference(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = model.translate(SENTENCES, beam=beam, length_penalty=0.5)
        want = translate(params, ck.config, ck.src_vocab, ck.tgt_vocab, SENTENCES,
                         ck.data.num_steps, backend, beam=beam, length_penalty=0.5)
        assert got == want and len(got) == len(SENTENCES) and got[2] == ""
        assert [str(w.message) for w in caught] == [  # the long one, as a Python warning
            'sentence 4 ("He is calm and we ...") has 12 tokens; the model reads only the '
            "first 10, without <eos>"]
        with pytest.warns(UserWarning, match="sentence 4") as caught:
            assert model.translate(SENTENCES, beam=beam, length_penalty=0.5,
                                   detokenize=True) == [detokenize(t) for t in want]
        assert caught[0].filename == __file__  # the warning points at the caller
        assert model.translate("Go.", beam=beam, length_penalty=0.5) == [want[1]]


def test_translations_are_decode_translations_with_weights(seq2seq_path, attention_path):
    for path, attends in ((seq2seq_path, False), (attention_path, True)):
        model = minis2s.load(path, backend="numpy")
        ck, params, backend = _reference(path)
        got = model.translations(SENTENCES[:2], beam=2)
        want = translations(params, ck.config, ck.src_vocab, ck.tgt_vocab, SENTENCES[:2],
                            ck.data.num_steps, backend, beam=2, with_weights=True)
        for g, w in zip(got, want, strict=True):
            assert (g.source, g.tokens, g.text) == (w.source, w.tokens, w.text)
            assert (g.weights is not None) is attends
            if attends:
                assert g.weights.shape == (len(g.tokens) + 1, len(g.source))
                np.testing.assert_array_equal(g.weights, w.weights)


def test_decoding_options_are_checked(seq2seq_path, tiny_corpus):
    model = minis2s.load(seq2seq_path, backend="numpy")
    with pytest.raises(ConfigError, match="beam"):
        model.translate(["go ."], beam=0)
    with pytest.raises(ConfigError, match="length_penalty"):
        model.translations(["go ."], length_penalty=-1)
    with pytest.raises(ConfigError, match="beam"):
        model.evaluate(tiny_corpus, beam=0)


def test_the_part_is_checked_in_one_place_before_anything_is_read(seq2seq_path, tmp_path):
    """``evaluate_model`` checks the part by :data:`PARTS` before it reads the corpus (here
    a path that does not exist), for Python callers and the command line alike; the
    command's ``--part`` choices are the same tuple."""
    message = re.escape("unknown part 'dev'; choose one of test, valid, train")
    ck, missing = checkpoint.load(seq2seq_path), tmp_path / "no-such-corpus.txt"
    with pytest.raises(DataError, match=message):
        evaluate_model(ck, get_backend("numpy"), missing, part="dev")
    with pytest.raises(DataError, match=message):
        minis2s.load(seq2seq_path, backend="numpy").evaluate(missing, part="dev")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    part = next(a for a in sub.choices["evaluate"]._actions if a.dest == "part")
    assert part.choices is PARTS and PARTS == ("test", "valid", "train")


@pytest.mark.parametrize("part, beam", [("test", 1), ("train", 2)])
def test_evaluate_is_evaluate_model(seq2seq_path, tiny_corpus, part, beam):
    model = minis2s.load(seq2seq_path, backend="numpy")
    ck = checkpoint.load(seq2seq_path)
    want = evaluate_model(ck, get_backend("numpy"), tiny_corpus, part=part, beam=beam,
                          length_penalty=0.5).report
    got = model.evaluate(tiny_corpus, part=part, beam=beam, length_penalty=0.5)
    assert got == want
    assert got.pairs == {"test": 20, "train": 180}[part]


def test_evaluate_refuses_a_part_the_checkpoint_lacks(seq2seq_path, tiny_corpus):
    """The message names the parts that have pairs, in words that fit Python callers
    (no command-line flag) as well as the command line."""
    with pytest.raises(DataError) as caught:
        minis2s.load(seq2seq_path, backend="numpy").evaluate(tiny_corpus, part="valid")
    assert str(caught.value) == ("the checkpoint's data settings leave no valid part "
                                 "(preset zh); score the test or train part instead")


def test_evaluate_puts_the_parameters_on_the_backend_once(seq2seq_path, tiny_corpus,
                                                          monkeypatch):
    calls = []
    real = Checkpoint.params_on

    def params_on(ck, backend):
        calls.append(backend)
        return real(ck, backend)

    monkeypatch.setattr(Checkpoint, "params_on", params_on)
    model = minis2s.load(seq2seq_path, backend="numpy")
    model.translate(["Go."])
    model.evaluate(tiny_corpus)
    model.evaluate(tiny_corpus, part="train")
    assert len(calls) == 1  # the model's own, reused by evaluate_model


PAIRS_FILE = ["I lost.\tJe perdu.\tCC-BY 2.0",
              "He is calm and we see it, you run home.\tIl est calme et nous le vois, tu "
              "cours chez moi !",
              "a line without a tab", "",
              "  \t va !",
              "We see it.\tNous le vois."]


@pytest.mark.parametrize("num_steps", [None, 14])
def test_gradient_flow_is_the_gradflow_command(seq2seq_path, attention_path, tmp_path,
                                              capsys, num_steps):
    """The same lines, as a file for ``minis2s gradflow --pairs FILE --model CKPT --json``
    (read by read_pairs) and as lines or (english, french) tuples for the API: the same
    pairs kept, the same lines skipped and said, the same figures."""
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("\n".join(PAIRS_FILE) + "\n", encoding="utf-8")
    kept = [PAIRS_FILE[0], PAIRS_FILE[1], PAIRS_FILE[-1]]
    tuples = [tuple(line.split("\t")[:2]) for line in kept]
    steps = [] if num_steps is None else ["--num-steps", str(num_steps)]
    for path in (seq2seq_path, attention_path):
        assert main(["gradflow", "--pairs", str(pairs_file), "--model", str(path), "--json",
                     *steps]) == 0
        out, err = capsys.readouterr()
        (want,) = json.loads(out).values()  # the one model's name to its flow
        assert err.splitlines() == ["minis2s: skipped 3 lines of pairs.txt (1 blank, 1 "
                                    "without a tab, 1 with an empty side)"]
        model = minis2s.load(path, backend="numpy")  # float32 parameters
        with pytest.warns(UserWarning) as caught:
            got = model.gradient_flow(PAIRS_FILE, num_steps=num_steps)
        assert [str(w.message) for w in caught] == [
            "skipped 3 lines of the pairs given (1 blank, 1 without a tab, 1 with an empty "
            "side)"]
        assert caught[0].filename == __file__  # the warning points at the caller
        assert got.to_dict() == want
        for given in (kept, tuples, [kept[0], *tuples[1:]]):
            assert model.gradient_flow(given, num_steps=num_steps).to_dict() == want
        steps_of = num_steps or checkpoint.load(path).data.num_steps
        assert len(got.encoder[0]) == len(got.decoder[0]) == steps_of
        assert len(got.encoder) == len(got.decoder) == model.checkpoint.config.num_layers


@pytest.mark.parametrize("pairs, message", [
    (["go .  va !"], "the pairs given: no valid 'English<TAB>French' line found"),
    ([], "the pairs given: no valid 'English<TAB>French' line found"),
    ([("go .", "va !"), ("go\t.", "va !")], "pair 2 has a tab or a line break inside a side"),
    (["go .\tva !\nrun .\tcours !"], "pair 1 holds a line break"),
    ([("go .",)], "pair 1 is a tuple"),
    ([3], "pair 1 is a int"),
])
def test_gradient_flow_refuses_bad_pairs(seq2seq_path, pairs, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the lines skipped on the way
        with pytest.raises(DataError, match=re.escape(message)):
            minis2s.load(seq2seq_path, backend="numpy").gradient_flow(pairs)


def _unfinished_copy(path, tmp_path) -> Path:
    """The checkpoint as a run of 5 epochs stopped (Ctrl-C) after its first would leave
    it: the same record, but 5 epochs in all."""
    ck = checkpoint.load(path)
    ck.training["total_epochs"] = 5
    return checkpoint.save(tmp_path / "unfinished.npz", ck)


def test_info_gives_the_checkpoints_own_fields(attention_path, tmp_path):
    path = _unfinished_copy(attention_path, tmp_path)
    ck = checkpoint.load(path)
    tr, last = ck.training, ck.training["history"][-1]
    info = minis2s.load(path, backend="numpy").info()
    assert info["checkpoint"] == str(path)
    assert info["file_bytes"] == path.stat().st_size
    assert info["parameters"] == sum(v.size for v in ck.params.values())
    assert info["dtype"] == "float32"
    assert info["model"] == {"model": "attention", "cell": "gru", "embed_size": 32,
                             "num_hiddens": 32, "num_layers": 2, "dropout": 0.1,
                             "bidirectional": False, "decoder_hiddens": None,
                             "output_layer": "dense"}
    assert info["data"] == {**ck.data.to_dict(), "src_vocab_size": len(ck.src_vocab),
                            "tgt_vocab_size": len(ck.tgt_vocab),
                            "train_pairs": tr["train_pairs"]}
    assert info["data"]["valid_size"] == info["data"]["test_size"] == 20
    assert info["training"] == {"preset": "zh", "epochs": 1, "total_epochs": 5, "seed": 0,
                                "loss": last["loss"], "valid_loss": last["valid_loss"],
                                "resumable": True}
    assert len(tr["history"]) == 1 and last["valid_loss"] is not None


def test_info_leaves_the_parameters_where_they_are(seq2seq_path, monkeypatch, capsys):
    """Describing a model counts the checkpoint's NumPy arrays: nothing is put on a
    backend, by ``info()`` or by ``minis2s info``."""
    def params_on(ck, backend):
        raise AssertionError("the parameters were put on a backend")

    monkeypatch.setattr(Checkpoint, "params_on", params_on)
    info = minis2s.load(seq2seq_path, backend="numpy").info()
    assert info["parameters"] == sum(v.size for v in checkpoint.load(seq2seq_path)
                                     .params.values())
    assert main(["info", str(seq2seq_path)]) == 0
    assert capsys.readouterr().err == ""


def test_info_of_a_checkpoint_without_a_training_record(seq2seq_path, tmp_path):
    ck = checkpoint.load(seq2seq_path)
    ck.training, ck.extra = {}, {}
    path = checkpoint.save(tmp_path / "bare.npz", ck)
    info = minis2s.load(path, backend="numpy").info()
    assert info["training"] == {"preset": None, "epochs": None, "total_epochs": None,
                                "seed": None, "loss": None, "valid_loss": None,
                                "resumable": False}
    assert info["data"]["train_pairs"] is None
    assert main(["info", str(path)]) == 0


def test_info_command_prints_the_info_as_text(attention_path, tmp_path, capsys):
    path = _unfinished_copy(attention_path, tmp_path)
    info = minis2s.load(path, backend="numpy").info()
    assert main(["info", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 5
    assert lines[0] == (f"{path}: {path.stat().st_size / 1024:,.1f} KiB, "
                        f"{info['parameters']:,} parameters (float32)")
    assert lines[1] == ("model     attention decoder, gru cell, embed_size 32, num_hiddens "
                        "32, num_layers 2, dropout 0.1, unidirectional encoder")
    assert lines[2] == ("data      num_steps 10, examples 199, valid_size 20, test_size 20, "
                        "split_seed 0, min_freq 2")
    d, t = info["data"], info["training"]
    assert lines[3] == (f"vocab     {d['src_vocab_size']} source, {d['tgt_vocab_size']} "
                        f"target tokens; {d['train_pairs']} training pairs")
    assert lines[4] == (f"training  preset zh, epoch 1 of 5, seed 0, loss {t['loss']:.4f}, "
                        f"validation loss {t['valid_loss']:.4f}; can be resumed")


def test_info_text_counts_in_words(attention_path):
    """One of a kind is said in the singular: '1 training pair', '1 target token'."""
    info = minis2s.load(attention_path, backend="numpy").info()
    info["data"].update(train_pairs=1, tgt_vocab_size=1)
    info["parameters"] = 1
    lines = describe(info).splitlines()
    assert lines[0].endswith(": " + f"{info['file_bytes'] / 1024:,.1f} KiB, 1 parameter "
                             "(float32)")
    assert lines[3].endswith(" source, 1 target token; 1 training pair")
    info["data"].update(train_pairs=2, tgt_vocab_size=2)
    assert describe(info).splitlines()[3].endswith(" source, 2 target tokens; 2 training "
                                                   "pairs")


def test_info_command_json_is_model_info(seq2seq_path, capsys):
    want = minis2s.load(seq2seq_path, backend="numpy").info()
    for given in (seq2seq_path, seq2seq_path.parent):
        assert main(["info", str(given), "--json"]) == 0
        out, err = capsys.readouterr()
        assert err == "" and out.count("\n") == 1
        assert json.loads(out) == want
    assert want["training"]["epochs"] == want["training"]["total_epochs"] == 1
    assert want["training"]["valid_loss"] is None  # zh holds out no validation part


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable .npz checkpoint"),
    (b"PK\x03\x04 truncated", "not a readable .npz checkpoint"),
    (None, "no checkpoint at"),
])
def test_info_of_a_bad_file_is_one_error_line(tmp_path, capsys, content, message):
    path = tmp_path / "checkpoint.npz"
    if content is not None:
        path.write_bytes(content)
    assert main(["info", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("minis2s: error: ") and message in err
