"""The commands' own work, in this process: what ``gradcheck`` and ``explore`` hand on,
``info``'s text for every kind of record and its JSON, the words after ``exercise
start``, Ctrl-C ignored once a command only reports; what ``translate``, ``evaluate``,
``gradflow`` and ``train`` hand on, refuse, title and say; and ``main``'s Ctrl-C handler
and closed stdout. (Mutation testing runs these for the commands, benchmarks/mutation.py.)"""

import json
import re
import signal
import threading

import pytest

from minis2s.cli import commands, main
from minis2s.cli.info import describe
from minis2s.exercises import EXERCISES

from .fixture_models import train_for_fixture


def _info(**changes) -> dict:
    """A :meth:`minis2s.Model.info` dict, every field set, with ``changes`` per part
    (``model={...}`` updates the model's part, ``file_bytes=None`` a top-level field)."""
    info = {
        "checkpoint": "runs/a/checkpoint.npz", "file_bytes": 2048, "parameters": 1234,
        "dtype": "float32",
        "model": {"model": "seq2seq", "cell": "gru", "embed_size": 32, "num_hiddens": 16,
                  "num_layers": 2, "dropout": 0.1, "bidirectional": False,
                  "decoder_hiddens": None, "output_layer": "dense"},
        "data": {"num_steps": 10, "num_examples": 600, "valid_size": 0, "test_size": 0,
                 "split_seed": 0, "min_freq": 2, "src_vocab_size": 184,
                 "tgt_vocab_size": 201, "train_pairs": 600},
        "task": None,
        "training": {"preset": "zh", "epochs": 30, "total_epochs": 300, "seed": 0,
                     "loss": 0.12345, "valid_loss": None, "resumable": True},
    }
    for part, value in changes.items():
        if isinstance(value, dict) and isinstance(info[part], dict):
            info[part].update(value)
        else:
            info[part] = value
    return info


def test_info_text_says_every_field_of_a_full_record():
    assert describe(_info()).splitlines() == [
        "runs/a/checkpoint.npz: 2.0 KiB, 1,234 parameters (float32)",
        "model     seq2seq decoder, gru cell, embed_size 32, num_hiddens 16, num_layers 2, "
        "dropout 0.1, unidirectional encoder",
        "data      num_steps 10, examples 600, valid_size 0, test_size 0, split_seed 0, "
        "min_freq 2",
        "vocab     184 source, 201 target tokens; 600 training pairs",
        "training  preset zh, epoch 30 of 300, seed 0, loss 0.1235; can be resumed"]


@pytest.mark.parametrize("changes, line, expected", [
    ({"model": {"bidirectional": True}}, 1, "dropout 0.1, bidirectional encoder"),
    ({"model": {"decoder_hiddens": 24}}, 1,
     "dropout 0.1, unidirectional encoder, decoder_hiddens 24"),
    ({"model": {"output_layer": "deep"}}, 1, "dropout 0.1, unidirectional encoder, deep "
     "output layer"),
    ({"model": {"decoder_hiddens": 8, "output_layer": "deep", "bidirectional": True}}, 1,
     "dropout 0.1, bidirectional encoder, decoder_hiddens 8, deep output layer"),
    ({"file_bytes": None}, 0, "runs/a/checkpoint.npz: 1,234 parameters (float32)"),
    ({"data": {"num_examples": None}}, 2, "data      num_steps 10, examples all, valid_size "
     "0, test_size 0, split_seed 0, min_freq 2"),
    ({"data": {"train_pairs": None}}, 3, "vocab     184 source, 201 target tokens"),
    ({"training": {"preset": None}}, 4,
     "training  epoch 30 of 300, seed 0, loss 0.1235; can be resumed"),
    ({"training": {"total_epochs": None}}, 4,
     "training  preset zh, epoch 30, seed 0, loss 0.1235; can be resumed"),
    ({"training": {"seed": None, "valid_loss": 0.5}}, 4,
     "training  preset zh, epoch 30 of 300, loss 0.1235, validation loss 0.5000; can be "
     "resumed"),
    ({"training": {"resumable": False}}, 4,
     "training  preset zh, epoch 30 of 300, seed 0, loss 0.1235; cannot be resumed"),
    ({"training": {"preset": None, "epochs": None, "seed": None, "loss": None,
                   "resumable": False}}, 4, "training  not recorded; cannot be resumed"),
], ids=["bidirectional", "bridge", "deep-output", "all-three", "no-file", "all-examples",
        "no-pairs", "no-preset", "no-total", "valid-loss", "not-resumable", "no-record"])
def test_info_text_says_what_the_record_holds_and_nothing_it_lacks(changes, line, expected):
    lines = describe(_info(**changes)).splitlines()
    assert lines[line] == expected or lines[line].endswith(expected), lines[line]
    assert len(lines) == 5


def test_info_text_names_a_task_on_a_line_of_its_own():
    from minis2s.data import make_task

    task = make_task("copy", {"max_len": 4})
    lines = describe(_info(task=task.to_dict())).splitlines()
    assert len(lines) == 6 and lines[4] == f"task      {task.describe()}"


def test_info_json_keeps_the_path_as_written_and_reads_on_numpy_whatever_the_default(
        tmp_path, monkeypatch, capsys):
    """``info`` never needs the GPU, nor the default backend: with $MINIS2S_BACKEND naming
    one that cannot be had it still reads the file on NumPy; and --json writes a non-ASCII
    path as itself."""
    from minis2s import checkpoint
    from tests.test_checkpoint import ck as make_ck

    folder = tmp_path / "modèle"
    checkpoint.save(folder / "checkpoint.npz", make_ck.__wrapped__())
    monkeypatch.setenv("MINIS2S_BACKEND", "no-such-backend")
    assert main(["info", str(folder), "--json"]) == 0
    out = capsys.readouterr().out
    assert "modèle" in out and "\\u00e8" not in out
    assert json.loads(out)["checkpoint"] == str(folder / "checkpoint.npz")


def test_gradcheck_hands_its_seed_and_backend_on(monkeypatch):
    from minis2s import gradcheck

    seen = []
    monkeypatch.setattr(gradcheck, "main", lambda **kw: seen.append(kw) or 7)
    assert main(["gradcheck", "--seed", "3", "--backend", "numpy"]) == 7
    assert main(["gradcheck"]) == 7
    assert seen == [{"seed": 3, "backend": "numpy"}, {"seed": 0, "backend": None}]


def test_gradcheck_refuses_a_negative_seed_before_checking(monkeypatch, capsys):
    from minis2s import gradcheck

    monkeypatch.setattr(gradcheck, "main", lambda **kw: pytest.fail("checked anyway"))
    assert main(["gradcheck", "--seed", "-1"]) == 2
    assert "seed" in capsys.readouterr().err


def test_explore_hands_its_arguments_to_the_explorer(monkeypatch):
    from minis2s.explore import command

    seen = []
    monkeypatch.setattr(command, "run", lambda args: seen.append(args) or 5)
    assert main(["explore", "--model", "runs/a", "--beam", "3"]) == 5
    assert len(seen) == 1 and seen[0].model == ["runs/a"] and seen[0].beam == 3


def test_exercise_start_says_what_to_do_next_line_by_line(tmp_path, capsys):
    folder = tmp_path / "work"
    assert main(["exercise", "start", str(folder)]) == 0
    first = next(iter(EXERCISES.values()))
    assert capsys.readouterr().out.splitlines()[1:] == [
        "next:",
        f"  cd {folder}",
        f"  # open {first.name}.py: its docstring says what to write; replace the raise "
        f"NotImplementedError in {first.function}",
        f"  minis2s exercise check {first.name}    # which output is wrong, how and where",
        "then the others, in the order listed by: minis2s exercise list"]


def test_once_a_command_only_reports_ctrl_c_is_ignored_in_the_main_thread_only():
    before = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        done = []
        worker = threading.Thread(target=lambda: done.append(
            commands.stop_listening_to_ctrl_c()))
        worker.start()
        worker.join()
        assert done == [None]  # elsewhere it does nothing (signals are the main thread's)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        commands.stop_listening_to_ctrl_c()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


# --- evaluate's report ----------------------------------------------------------------------

SMALL = ["--epochs", "1", "--quiet", "--embed-size", "8", "--num-hiddens", "8"]


@pytest.fixture(scope="module")
def scored(tiny_corpus, tmp_path_factory):
    """A corpus model trained on a corpus with one blank line among its first lines (which
    reading it again warns about), that corpus, and a model of the copy task."""
    runs = tmp_path_factory.mktemp("scored")
    lines = tiny_corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    corpus = runs / "corpus.txt"
    corpus.write_text("".join(lines[:5] + ["\n"] + lines[5:]), encoding="utf-8")
    train_for_fixture(["--data", str(corpus), "--examples", "150", *SMALL],
                      runs / "corpus_model")
    train_for_fixture(["--task", "copy", "--max-len", "3", "--train-size", "200",
                       "--valid-size", "20", "--test-size", "20", *SMALL], runs / "task_model")
    train_for_fixture(["--data", str(corpus), "--examples", "150", *SMALL, "--model",
                       "attention"], runs / "attention_model")
    return corpus, runs / "corpus_model", runs / "task_model"


def test_evaluate_reports_a_corpus_model_line_by_line(scored, capsys):
    corpus, model, _ = scored
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--data", str(corpus), "--part", "train",
                 "--show", "0"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "train part: 150 pairs, seq2seq model, greedy"
    assert re.fullmatch(r"BLEU \d+\.\d\d  \(nrefs:1\|.*\)", lines[1]), lines[1]
    assert re.fullmatch(r"chrF \d+\.\d\d  \(nrefs:1\|.*\)", lines[2]), lines[2]
    assert re.fullmatch(r"mean sentence BLEU \(the seed's formula, k=2\) \d\.\d{3}", lines[3])
    assert len(lines) == 4
    # the corpus read again warns as it did in training
    assert err == f"minis2s: skipped 1 line of {corpus.name} (1 blank)\n"


def test_several_models_are_each_named_before_their_report(scored, capsys):
    corpus, model, _ = scored
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--model", str(model), "--data",
                 str(corpus), "--part", "train", "--show", "0"]) == 0
    heads = [ln for ln in capsys.readouterr().out.splitlines() if "part:" in ln]
    assert heads == [f"{model / 'checkpoint.npz'}, train part: 150 pairs, seq2seq model, "
                     "greedy"] * 2


def test_evaluate_reports_a_task_model_by_accuracy_on_stdout_or_beside_json(scored,
                                                                            capsys):
    _, _, task_model = scored
    capsys.readouterr()
    assert main(["evaluate", "--model", str(task_model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"test part: 20 pairs, seq2seq model, greedy, task copy .*", lines[0])
    assert re.fullmatch(r"exact match \d+\.\d\d%  \(outputs equal to their reference, every "
                        r"token\)", lines[1]), lines[1]
    assert re.fullmatch(r"token accuracy \d+\.\d\d%  \(positions right, each pair counting "
                        r"the longer of output and reference\)", lines[2]), lines[2]
    assert main(["evaluate", "--model", str(task_model), "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and json.loads(out)["pairs"] == 20  # JSON alone
    assert "exact match " in err and "token accuracy " in err


def test_evaluate_takes_its_backend_flag_over_the_default(scored, monkeypatch, capsys):
    corpus, model, _ = scored
    monkeypatch.setenv("MINIS2S_BACKEND", "no-such-backend")
    assert main(["evaluate", "--model", str(model), "--data", str(corpus), "--part",
                 "train", "--backend", "numpy", "--show", "0"]) == 0


def test_evaluate_names_the_checkpoint_whose_vocabulary_the_corpus_does_not_give(
        scored, tiny_corpus, capsys):
    _, model, _ = scored
    other = tiny_corpus.parent / "other_words.txt"
    other.write_text("Stop.\tArrête !\nWait.\tAttends !\n" * 80, encoding="utf-8")
    assert main(["evaluate", "--model", str(model), "--data", str(other), "--part",
                 "train"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"minis2s: error: this corpus does not give the vocabulary {model / 'checkpoint.npz'} "
        "was trained with: it is not the same data")


def test_evaluate_hands_every_decoding_choice_to_the_evaluation(scored, monkeypatch,
                                                                capsys):
    """... and names them in the report's first line."""
    from minis2s import evaluate as evaluate_module

    corpus, model, _ = scored
    real, seen = evaluate_module.evaluate_model, []

    def spy(ck, backend, data_path, **kw):
        seen.append((backend.name, data_path, kw))
        return real(ck, backend, data_path, **kw)

    monkeypatch.setattr(evaluate_module, "evaluate_model", spy)
    assert main(["evaluate", "--model", str(model), "--data", str(corpus), "--part", "train",
                 "--beam", "1", "--length-penalty", "0.5", "--context-from", "decoder",
                 "--backend", "numpy", "--show", "0"]) == 0
    assert seen == [("numpy", str(corpus), {
        "part": "train", "beam": 1, "length_penalty": 0.5, "warn": commands.warn,
        "where": str(model / "checkpoint.npz"), "context_from": "decoder"})]
    assert capsys.readouterr().out.splitlines()[0] == (
        "train part: 150 pairs, seq2seq model, greedy, context from the decoder's state")


def test_evaluate_json_has_its_fields_for_a_corpus_model_and_a_task_model(scored, capsys):
    corpus, model, task_model = scored
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--data", str(corpus), "--part", "train",
                 "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert set(found) == {"checkpoint", "model", "cell", "part", "pairs", "beam",
                          "length_penalty", "context_from", "bleu", "chrf", "by_length"}
    assert (found["cell"], found["part"], found["context_from"]) == ("gru", "train", "encoder")
    assert main(["evaluate", "--model", str(task_model), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert set(found) == {"checkpoint", "model", "cell", "part", "pairs", "beam",
                          "length_penalty", "context_from", "task", "exact_match",
                          "token_accuracy", "by_length"}
    assert found["task"]["name"] == "copy"
    assert 0 <= found["exact_match"] <= 100 and 0 <= found["token_accuracy"] <= 100


# --- translate ------------------------------------------------------------------------------


@pytest.fixture()
def attention_model(scored):
    return scored[1].parent / "attention_model"


@pytest.mark.parametrize("beam, decoding", [(1, "greedy"), (2, "beam 2")])
def test_translate_titles_each_heat_map_with_the_model_and_its_decoding(
        attention_model, tmp_path, monkeypatch, beam, decoding):
    from minis2s.decode import heatmap

    seen = []
    monkeypatch.setattr(heatmap, "draw_attention",
                        lambda t, path, sentence, about: seen.append((sentence, about)))
    assert main(["translate", "--model", str(attention_model), "--beam", str(beam),
                 "--attention-plot", str(tmp_path / "maps"), "go .", "i lost ."]) == 0
    assert seen == [("go .", f"attention decoder, gru cell, {decoding}"),
                    ("i lost .", f"attention decoder, gru cell, {decoding}")]


def test_translate_json_carries_the_weights_without_a_plot(attention_model, capsys):
    capsys.readouterr()
    assert main(["translate", "--model", str(attention_model), "--json", "go ."]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["attention"] is not None and found["attention_plot"] is None
    weights = found["attention"]
    assert len(weights) >= len(found["tokens"])  # a row per step written (<eos> too)
    assert all(abs(sum(row) - 1) < 1e-5 for row in weights)


def test_translate_refuses_a_plot_folder_that_is_a_file_before_reading_the_model(
        tmp_path, capsys):
    taken = tmp_path / "maps"
    taken.write_text("", encoding="utf-8")
    assert main(["translate", "--model", str(tmp_path / "none"), "--attention-plot",
                 str(taken), "go ."]) == 2
    err = capsys.readouterr().err
    assert str(taken) in err and "no checkpoint" not in err  # the folder, before the model


def test_translate_hands_its_choices_to_the_translation(scored, monkeypatch, capsys):
    from minis2s import decode

    _, model, task_model = scored
    real, seen = decode.translations, []

    def spy(*args, **kw):
        seen.append((args[6].name, kw))
        return real(*args, **kw)

    monkeypatch.setattr(decode, "translations", spy)
    monkeypatch.setenv("MINIS2S_BACKEND", "no-such-backend")
    assert main(["translate", "--model", str(model), "--backend", "numpy", "--beam", "2",
                 "--length-penalty", "0.5", "go ."]) == 0
    assert main(["translate", "--model", str(task_model), "--backend", "numpy", "abc"]) == 0
    (backend, kw), (_, task_kw) = seen
    assert backend == "numpy"
    assert (kw["warn"], kw["beam"], kw["length_penalty"], kw["with_weights"]) \
        == (commands.warn, 2, 0.5, False)
    assert type(kw["rules"]).__name__ == "CorpusText"  # the corpus's tokenizer
    assert getattr(task_kw["rules"], "name", None) == "copy"  # the task's own rules


def test_translate_reads_stdin_when_no_sentence_is_given(scored, monkeypatch, capsys):
    import io

    _, model, _ = scored
    monkeypatch.setattr(commands.sys, "stdin", io.StringIO("go .\ni lost .\n"))
    capsys.readouterr()
    assert main(["translate", "--model", str(model)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_translate_detokenizes_a_corpus_model_and_leaves_a_tasks_text(scored, capsys):
    _, model, task_model = scored
    capsys.readouterr()
    assert main(["translate", "--model", str(task_model), "--detokenize", "abc"]) == 0
    out = capsys.readouterr().out.strip()
    assert " " not in out  # a task's text has no spaces between its characters
    assert main(["translate", "--model", str(model), "--json", "go ."]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["detokenized"] == found["translation"].replace(" .", ".").replace(" !", "!")


def test_exercise_check_hands_its_time_limit_on(monkeypatch):
    import minis2s.exercises as exercises

    seen = []

    class Passed:
        passed = True

    monkeypatch.setattr(exercises, "check", lambda name, what, timeout: seen.append(
        (name, timeout)) or Passed())
    assert main(["exercise", "check", "rnn_step", "--solutions", "--timeout", "7"]) == 0
    assert main(["exercise", "check", "rnn_step", "--solutions", "--timeout", "0"]) == 0
    assert seen == [("rnn_step", 7.0), ("rnn_step", None)]  # 0: no limit


def test_info_text_of_a_record_without_an_output_layer_is_dense():
    info = _info()
    del info["model"]["output_layer"]  # as a Model.info of an older file may lack it
    assert describe(info).splitlines()[1].endswith("unidirectional encoder")


def test_the_command_exits_with_the_commands_status(monkeypatch, capsys):
    from minis2s import cli

    monkeypatch.setattr(cli.sys, "argv", ["minis2s", "exercise", "list"])
    with pytest.raises(SystemExit) as done:
        cli.console()
    assert done.value.code == 0 and "rnn_step" in capsys.readouterr().out
    monkeypatch.setattr(cli.sys, "argv", ["minis2s", "info", "no/such/file.npz"])
    with pytest.raises(SystemExit) as done:
        cli.console()
    assert done.value.code == 2


def test_translate_without_matplotlib_says_so_and_names_no_heat_map_file(
        attention_model, tmp_path, monkeypatch, capsys):
    """Where no heat map can be drawn (matplotlib missing: draw_attention returns False)
    for sentences that have weights, the closing line says why, and each JSON line names
    no file."""
    from minis2s.decode import heatmap

    monkeypatch.setattr(heatmap, "draw_attention", lambda *a: False)
    capsys.readouterr()
    maps = tmp_path / "maps"
    assert main(["translate", "--model", str(attention_model), "--json",
                 "--attention-plot", str(maps), "go .", "i lost ."]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2
    assert all(found["attention"] is not None and found["attention_plot"] is None
               for found in lines)
    assert err.strip().splitlines()[-1].endswith(
        "no heat maps: matplotlib is not installed (pip install 'minis2s[plot]')")


def test_translate_of_empty_lines_only_draws_nothing_and_counts_zero_maps(
        attention_model, tmp_path, capsys):
    """Empty sentences have no weights: no map is drawn, and that is no failure of
    matplotlib's: the closing line counts 0 maps."""
    capsys.readouterr()
    maps = tmp_path / "maps"
    assert main(["translate", "--model", str(attention_model), "--attention-plot",
                 str(maps), "", "   "]) == 0
    out, err = capsys.readouterr()
    assert out == "\n\n"
    assert err.strip().splitlines()[-1].endswith(f"0 attention heat maps in {maps}")


def test_translate_json_writes_the_sentence_as_given_not_escaped(attention_model, capsys):
    """JSON lines keep non-ASCII text as it is (UTF-8), not as \\u escapes."""
    capsys.readouterr()
    assert main(["translate", "--model", str(attention_model), "--json",
                 "naïve café ."]) == 0
    out = capsys.readouterr().out
    assert '"source": "naïve café ."' in out and "\\u" not in out


# --- main: Ctrl-C, a closed stdout --------------------------------------------------------


@pytest.mark.parametrize("how, status", [("done", 0), ("interrupted", 130), ("failed", 2)])
def test_main_puts_back_the_ctrl_c_handler_it_found(monkeypatch, capsys, how, status):
    """Called from Python, main leaves Ctrl-C to the handler it found (here one of the
    caller's own), whether the command ended, was interrupted (after which it ignores
    Ctrl-C to its end) or failed; as the ``minis2s`` command (``exiting``), an interrupted
    one leaves Ctrl-C ignored for the little that is left of the process."""
    from minis2s.data import DataError

    def callers_own(signum, frame):
        pass

    def command(args):
        if how == "interrupted":
            raise KeyboardInterrupt
        if how == "failed":
            raise DataError("no data")
        return 0

    monkeypatch.setattr(commands, "train", command)
    before = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, callers_own)
        capsys.readouterr()
        assert main(["train", "--out", "unused"]) == status
        assert signal.getsignal(signal.SIGINT) is callers_own
        assert capsys.readouterr() == ("", {"done": "", "interrupted": "minis2s: interrupted\n",
                                            "failed": "minis2s: error: no data\n"}[how])
        assert main(["train", "--out", "unused"], exiting=True) == status
        assert signal.getsignal(signal.SIGINT) is (
            signal.SIG_IGN if how == "interrupted" else callers_own)
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_reader_gone_away_ends_the_command_quietly_with_stdout_on_devnull(monkeypatch):
    """A BrokenPipeError (``minis2s translate ... | head -1``): exit status 141, and
    stdout's file descriptor now writes to /dev/null, so that Python's flush at exit
    raises nothing."""
    import os

    read_end, write_end = os.pipe()

    class Stdout:
        def fileno(self):
            return write_end

        def write(self, text):
            return len(text)

        def flush(self):
            pass

    def command(args):
        raise BrokenPipeError

    monkeypatch.setattr(commands, "train", command)
    monkeypatch.setattr(commands.sys, "stdout", Stdout())
    try:
        assert main(["train", "--out", "unused"]) == 141
        assert os.path.samestat(os.fstat(write_end), os.stat(os.devnull))
    finally:
        os.close(read_end)
        os.close(write_end)


def test_checkpoint_names_refuse_labels_that_do_not_match_the_checkpoints():
    """A guard for callers (the commands check --label before): one label per checkpoint."""
    from minis2s.cli.naming import checkpoint_names

    with pytest.raises(ValueError, match=r"^1 labels for 2 checkpoints$"):
        checkpoint_names(["a", "b"], [None, None], labels=["x"])


def test_gradflow_reads_a_checkpoint_in_float64_on_the_backend_asked(scored, tmp_path,
                                                                     monkeypatch, capsys):
    """Norms over many steps: the checkpoint's parameters come onto the backend in
    float64, whatever its default dtype."""
    from minis2s import checkpoint

    _, model, _ = scored
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("Go.\tVa !\nI lost.\tJ'ai perdu.\n", encoding="utf-8")
    real, seen = checkpoint.Checkpoint.params_on, []

    def spy(self, backend):
        seen.append(str(backend.dtype))
        return real(self, backend)

    monkeypatch.setattr(checkpoint.Checkpoint, "params_on", spy)
    monkeypatch.setenv("MINIS2S_BACKEND", "no-such-backend")  # the flag decides
    assert main(["gradflow", "--pairs", str(pairs), "--model", str(model), "--json",
                 "--backend", "numpy"]) == 0
    assert seen == ["float64"]


# --- gradflow and evaluate: what they hand on, refuse and say ------------------------------


def _pairs(tmp_path, lines=("Go.\tVa !", "I lost.\tJ'ai perdu.")):
    path = tmp_path / "pairs.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _spy_plots(monkeypatch):
    """plot_flow and plot_by_distance replaced by spies that record their title (and
    draw nothing, as without matplotlib when ``drawn`` is False)."""
    from minis2s import gradflow as gradflow_module

    seen = []

    def flow(flows, path, clip, title):
        seen.append(("flow", list(flows), clip, title))
        return True

    def by_distance(flows, path, title):
        seen.append(("distance", list(flows), None, title))
        return True

    monkeypatch.setattr(gradflow_module, "plot_flow", flow)
    monkeypatch.setattr(gradflow_module, "plot_by_distance", by_distance)
    return seen


def test_gradflow_titles_its_figure_with_the_pairs_the_models_and_one_decoder(
        scored, tmp_path, monkeypatch, capsys):
    corpus, model, _ = scored
    seen = _spy_plots(monkeypatch)
    pairs, plot = _pairs(tmp_path), str(tmp_path / "flow.png")
    assert main(["gradflow", "--pairs", str(pairs), "--plot", plot, "--clip", "1"]) == 0
    assert main(["gradflow", "--pairs", str(pairs), "--plot", plot, "--by-distance",
                 "--model", str(model)]) == 0
    attention = model.parent / "attention_model"
    assert main(["gradflow", "--pairs", str(pairs), "--plot", plot, "--model", str(model),
                 "--model", str(attention), "--label", "s", "--label", "a"]) == 0
    assert seen == [
        ("flow", ["gru"], 1.0, f"2 pairs of {pairs}; freshly initialised, preset zh, "
                               "seq2seq decoder"),
        ("distance", [f"{model} (seq2seq, gru)"], None, f"2 pairs of {pairs}; trained, "
                                                         "seq2seq decoder"),
        ("flow", ["s", "a"], None, f"2 pairs of {pairs}; trained")]  # two decoders
    assert capsys.readouterr().err.count(f"figure in {plot}") == 3


def test_gradflow_counts_thousands_of_pairs_with_a_comma(tmp_path, monkeypatch, capsys):
    seen = _spy_plots(monkeypatch)
    pairs = _pairs(tmp_path, ["Go.\tVa !"] * 1000)
    assert main(["gradflow", "--pairs", str(pairs), "--batch-size", "1000", "--num-steps",
                 "3", "--plot", str(tmp_path / "f.png")]) == 0
    assert seen[0][3].startswith(f"1,000 pairs of {pairs}; ")
    assert capsys.readouterr().out.startswith("gru: 1000 pairs, 3 source and 3 target steps")


def test_gradflow_by_distance_heads_each_table_with_its_steps(tmp_path, capsys):
    pairs = _pairs(tmp_path)
    assert main(["gradflow", "--pairs", str(pairs), "--by-distance", "--num-steps",
                 "4"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "gru: 2 pairs, 4 source and 4 target steps"


def test_gradflow_json_keeps_a_label_as_written(scored, tmp_path, capsys):
    _, model, _ = scored
    capsys.readouterr()
    assert main(["gradflow", "--pairs", str(_pairs(tmp_path)), "--model", str(model),
                 "--label", "modèle", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"modèle"' in out and "\\u" not in out


def test_gradflow_refuses_before_any_work(scored, tmp_path, monkeypatch, capsys):
    """A negative seed, a figure that cannot be written, --compare-cells with trained
    models: each one line, exit status 2, no gradient computed."""
    from minis2s import gradflow as gradflow_module

    _, model, _ = scored
    monkeypatch.setattr(gradflow_module, "gradient_flow",
                        lambda *a: pytest.fail("a gradient was computed"))
    pairs = str(_pairs(tmp_path))
    taken = tmp_path / "taken"
    taken.write_text("", encoding="utf-8")
    for argv, said in (
            (["--seed", "-1"], "--seed must be a whole number >= 0, got -1"),
            (["--plot", str(taken / "f.png")], str(taken)),
            (["--model", str(model), "--compare-cells"],
             "--compare-cells compares freshly initialised models; to compare trained "
             "ones, give --model once per checkpoint")):
        capsys.readouterr()
        assert main(["gradflow", "--pairs", pairs, *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err


def test_gradflow_takes_its_backend_flag_and_computes_in_float64(tmp_path, monkeypatch,
                                                                capsys):
    from minis2s import gradflow as gradflow_module

    real, seen = gradflow_module.fresh_model, []

    def spy(preset, cell, pairs, backend, seed):
        seen.append((backend.name, str(backend.dtype), seed))
        return real(preset, cell, pairs, backend, seed)

    monkeypatch.setattr(gradflow_module, "fresh_model", spy)
    monkeypatch.setenv("MINIS2S_BACKEND", "no-such-backend")
    assert main(["gradflow", "--pairs", str(_pairs(tmp_path)), "--backend", "numpy",
                 "--seed", "3", "--json"]) == 0
    assert seen == [("numpy", "float64", 3)]


def test_gradflow_warns_once_about_a_line_it_skips(scored, tmp_path, capsys):
    """The pairs are read once for the models that read them alike, and what is skipped
    is said once."""
    _, model, task_model = scored
    pairs = _pairs(tmp_path, ["Go.\tVa !", "", "I lost.\tJ'ai perdu."])
    capsys.readouterr()
    assert main(["gradflow", "--pairs", str(pairs), "--model", str(model), "--json"]) == 0
    assert capsys.readouterr().err == "minis2s: skipped 1 line of pairs.txt (1 blank)\n"
    pairs = _pairs(tmp_path, ["abc\tabc", "", "ba\tba"])  # read as the copy task reads
    assert main(["gradflow", "--pairs", str(pairs), "--model", str(task_model),
                 "--json"]) == 0
    assert capsys.readouterr().err == "minis2s: skipped 1 line of pairs.txt (1 blank)\n"


def test_evaluate_refuses_a_figure_it_cannot_write_before_scoring(scored, tmp_path,
                                                                   monkeypatch, capsys):
    from minis2s import evaluate as evaluate_module

    corpus, model, _ = scored
    monkeypatch.setattr(evaluate_module, "evaluate_model",
                        lambda *a, **k: pytest.fail("a model was scored"))
    taken = tmp_path / "taken"
    taken.write_text("", encoding="utf-8")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--data", str(corpus), "--plot",
                 str(taken / "f.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(taken) in err[0]


def test_evaluate_titles_its_figure_and_says_when_it_cannot_draw(scored, tmp_path,
                                                                 monkeypatch, capsys):
    """The by-length figure gets the title by_length_title gives; without matplotlib
    (the plot returns False) the closing line says so."""
    from minis2s import evaluate as evaluate_module

    corpus, model, _ = scored
    seen = []

    def plot(reports, path, title):
        seen.append((reports, title))
        return len(seen) == 1

    monkeypatch.setattr(evaluate_module, "plot_by_length", plot)
    path = str(tmp_path / "f.png")
    for drawn in (True, False):
        capsys.readouterr()
        assert main(["evaluate", "--model", str(model), "--data", str(corpus), "--part",
                     "train", "--show", "0", "--plot", path]) == 0
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last == (f"minis2s: figure in {path}" if drawn else
                        "minis2s: no figure: matplotlib is not installed (pip install "
                        "'minis2s[plot]')")
    reports, title = seen[0]
    assert list(reports) == [f"{model} (seq2seq, gru, greedy)"]
    assert title == "train part, 150 pairs"  # by_length_title of the part scored


def test_evaluate_names_every_task_model_whose_data_it_does_not_read(scored, capsys):
    corpus, _, task_model = scored
    capsys.readouterr()
    assert main(["evaluate", "--model", str(task_model), "--model", str(task_model),
                 "--data", str(corpus)]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (f"minis2s: --data is not read for {task_model / 'checkpoint.npz'}, "
                     f"{task_model / 'checkpoint.npz'}: a task model makes its pairs again")


def test_gradflow_says_what_it_skips_through_the_commands_warn(tmp_path, monkeypatch):
    """Its warnings go through the one place the commands speak from (commands.warn), as
    every command's do."""
    said = []
    monkeypatch.setattr(commands, "warn", said.append)
    pairs = _pairs(tmp_path, ["Go.\tVa !", "", "I lost.\tJ'ai perdu."])
    assert main(["gradflow", "--pairs", str(pairs), "--json"]) == 0
    assert said == ["minis2s: skipped 1 line of pairs.txt (1 blank)"]


def test_gradflow_says_when_it_cannot_draw(tmp_path, monkeypatch, capsys):
    from minis2s import gradflow as gradflow_module

    monkeypatch.setattr(gradflow_module, "plot_flow", lambda *a: False)
    capsys.readouterr()
    assert main(["gradflow", "--pairs", str(_pairs(tmp_path)), "--plot",
                 str(tmp_path / "f.png")]) == 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "minis2s: no figure: matplotlib is not installed (pip install 'minis2s[plot]')")


# --- train: a task, the backend flag, resuming ---------------------------------------------


def test_train_trains_the_task_it_is_given_on_the_backend_it_is_given(tmp_path, monkeypatch):
    from minis2s import checkpoint

    monkeypatch.setenv("MINIS2S_BACKEND", "no-such-backend")  # the flag decides
    out = tmp_path / "copy"
    assert main(["train", "--task", "copy", "--max-len", "3", "--train-size", "40",
                 "--valid-size", "4", "--test-size", "4", *SMALL, "--backend", "numpy",
                 "--out", str(out)]) == 0
    ck = checkpoint.load(out / "checkpoint.npz")
    assert ck.task.name == "copy" and ck.training["train_pairs"] == 40


def test_train_closes_with_its_summary_and_the_validation_loss(tmp_path, capsys):
    capsys.readouterr()
    assert main(["train", "--task", "copy", "--max-len", "3", "--train-size", "40",
                 "--valid-size", "4", "--test-size", "4", *SMALL, "--out",
                 str(tmp_path / "copy")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"loss \d\.\d{3}, \d+\.\d tokens/sec on cpu", out[0]), out
    assert re.fullmatch(r"validation loss \d\.\d{3}", out[1]) and len(out) == 2, out


def _stand_in_run(monkeypatch, outcome):
    """run_experiment replaced: it records what it was handed, then raises ``outcome``
    (an exception) or returns a run whose trainer's summary is ``outcome``."""
    import types

    from minis2s import train as train_pkg

    handed = []

    def run_experiment(preset, data, backend, out, **kw):
        handed.append(kw)
        if isinstance(outcome, BaseException):
            raise outcome
        last = types.SimpleNamespace(valid_loss=None)
        trainer = types.SimpleNamespace(summary_line=lambda: outcome, history=[last])
        return types.SimpleNamespace(trainer=trainer)

    monkeypatch.setattr(train_pkg, "run_experiment", run_experiment)
    return handed


def test_train_interrupted_says_where_it_stopped_and_exits_130(tiny_corpus, tmp_path,
                                                               monkeypatch, capsys):
    from minis2s.train import Interrupted

    _stand_in_run(monkeypatch, Interrupted("interrupted in epoch 2; saved to run"))
    before = signal.getsignal(signal.SIGINT)
    try:
        capsys.readouterr()
        assert main(["train", "--data", str(tiny_corpus), "--out", str(tmp_path)]) == 130
    finally:
        signal.signal(signal.SIGINT, before)
    out, err = capsys.readouterr()
    assert out == "" and err == "minis2s: interrupted in epoch 2; saved to run\n"


def test_only_the_first_rank_reports_and_every_rank_is_handed_its_ranks(
        tiny_corpus, tmp_path, monkeypatch, capsys):
    from minis2s import train as train_pkg
    from minis2s.train import Ranks

    for rank, printed in ((0, "loss 0.123\n"), (1, "")):
        ranks = Ranks()
        ranks.rank, ranks.size = rank, 2
        ranks.gather = lambda value: [value, value]  # every rank started alike
        monkeypatch.setattr(train_pkg, "world", lambda ranks=ranks: ranks)
        handed = _stand_in_run(monkeypatch, "loss 0.123")
        capsys.readouterr()
        assert main(["train", "--data", str(tiny_corpus), "--out", str(tmp_path)]) == 0
        assert capsys.readouterr().out == printed
        assert handed[0]["ranks"] is ranks


def test_resuming_refuses_a_preset_other_than_the_checkpoints(scored, capsys):
    corpus, model, _ = scored
    capsys.readouterr()
    assert main(["train", "--resume", "--preset", "en", "--data", str(corpus), "--out",
                 str(model)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"minis2s: error: {model / 'checkpoint.npz'} was trained with preset 'zh', not "
        "'en'; resume with --preset zh")
