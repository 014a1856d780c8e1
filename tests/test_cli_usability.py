"""The command line's usability: checkpoints named alike by evaluate and gradflow and
kept apart, output a script can read, a folder for --model, flags never guessed from a
prefix, errors shown with the right command's usage, bench refused under a launcher of
several ranks, defaults in every --help."""

import argparse
import json

import pytest

from minis2s import gradflow as gradflow_module
from minis2s.cli import main
from minis2s.cli.parser import build_parser

from .fixture_models import train_for_fixture

TINY = ["--preset", "zh", "--examples", "199", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def two_models(tiny_corpus, tmp_path_factory):
    """Two GRU checkpoints side by side in one folder: the seed's model and attention."""
    runs = tmp_path_factory.mktemp("runs")
    for model in ("seq2seq", "attention"):
        train_for_fixture(["--data", str(tiny_corpus), *TINY, "--model", model],
                          runs / model)
    return runs / "seq2seq", runs / "attention"


def error_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


# --- gradflow: one entry per checkpoint -------------------------------------------------


def test_gradflow_keeps_two_checkpoints_of_one_cell_apart(two_models, tiny_corpus, tmp_path,
                                                           capsys, monkeypatch):
    seq2seq, attention = two_models
    drawn = []
    real_plot = gradflow_module.plot_flow

    def plot_flow(flows, path, *args, **kwargs):
        drawn.append(list(flows))
        return real_plot(flows, path, *args, **kwargs)

    monkeypatch.setattr(gradflow_module, "plot_flow", plot_flow)
    capsys.readouterr()
    common = ["gradflow", "--pairs", str(tiny_corpus), "--batch-size", "8",
              "--model", str(seq2seq), "--model", str(attention)]
    labels = [f"{seq2seq} (seq2seq, gru)", f"{attention} (attention, gru)"]

    assert main([*common, "--plot", str(tmp_path / "flow.png")]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if ": 8 pairs, " in line]
    assert [h.split(": 8 pairs, ")[0] for h in headers] == labels
    assert drawn == [labels]
    assert main([*common, "--json"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert list(flows) == labels
    assert flows[labels[0]]["decoder"] != flows[labels[1]]["decoder"]  # two models, two flows

    assert main([*common, "--label", "plain", "--label", "attends", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["plain", "attends"]

    # one checkpoint: the same JSON shape, keyed by its name or its --label
    one = ["gradflow", "--pairs", str(tiny_corpus), "--batch-size", "8", "--json", "--model",
           str(seq2seq)]
    assert main(one) == 0
    assert list(json.loads(capsys.readouterr().out)) == labels[:1]
    assert main([*one, "--label", "mine"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["mine"]

    # the same checkpoint twice: two entries still, the second numbered
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--batch-size", "8", "--json",
                 "--model", str(seq2seq), "--model", str(seq2seq / "checkpoint.npz")]) == 0
    assert list(json.loads(capsys.readouterr().out)) == [
        f"{seq2seq} (seq2seq, gru)", f"{seq2seq} (seq2seq, gru) #2"]


def test_evaluate_and_gradflow_name_a_checkpoint_alike(two_models, tiny_corpus, tmp_path,
                                                       capsys, monkeypatch):
    import minis2s.evaluate as evaluation

    seq2seq, attention = two_models
    legends = []
    monkeypatch.setattr(evaluation, "plot_by_length",
                        lambda reports, *args, **kwargs: legends.append(list(reports)))
    models = ["--model", str(seq2seq / "checkpoint.npz"), "--model", str(attention),
              "--model", str(seq2seq)]
    assert main(["evaluate", *models, "--data", str(tiny_corpus), "--part", "train",
                 "--show", "0", "--plot", str(tmp_path / "scores.png")]) == 0
    assert legends == [[f"{seq2seq} (seq2seq, gru, greedy)",
                        f"{attention} (attention, gru, greedy)",
                        f"{seq2seq} (seq2seq, gru, greedy) #2"]]
    capsys.readouterr()
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--batch-size", "4", "--json",
                 *models]) == 0
    assert list(json.loads(capsys.readouterr().out)) == [
        f"{seq2seq} (seq2seq, gru)", f"{attention} (attention, gru)",
        f"{seq2seq} (seq2seq, gru) #2"]


@pytest.mark.parametrize(("labels", "message"), [
    (["one"], "give one --label per --model (2 models, 1 label)"),
    (["same", "same"], "--label 'same' is given twice; each model needs a name of its own"),
])
def test_gradflow_labels_must_fit_the_models(two_models, tiny_corpus, capsys, labels,
                                             message):
    seq2seq, attention = two_models
    flags = [w for name in labels for w in ("--label", name)]
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--model", str(seq2seq),
                 "--model", str(attention), *flags]) == 2
    assert error_lines(capsys) == [f"minis2s: error: {message}"]


def test_a_label_needs_a_checkpoint(tiny_corpus, capsys):
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--label", "fresh"]) == 2
    assert error_lines(capsys) == [
        "minis2s: error: --label names the checkpoints given with --model; fresh models are "
        "named by their cells"]


# --- output a script can read -----------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2])
def test_evaluate_json_puts_only_json_on_stdout(two_models, tiny_corpus, capsys, count):
    paths = [m / "checkpoint.npz" for m in two_models][:count]
    capsys.readouterr()
    assert main(["evaluate", *[w for p in paths for w in ("--model", str(p))], "--data",
                 str(tiny_corpus), "--part", "train", "--by-length", "--json"]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["checkpoint"] for r in records] == [str(p) for p in paths]
    assert [r["model"] for r in records] == ["seq2seq", "attention"][:count]
    assert "BLEU " in err and " => " in err  # the report a person reads: on stderr


def test_evaluate_names_each_checkpoint_it_reports(two_models, tiny_corpus, capsys):
    paths = [m / "checkpoint.npz" for m in two_models]
    capsys.readouterr()
    assert main(["evaluate", "--model", str(paths[0]), "--model", str(paths[1]), "--data",
                 str(tiny_corpus), "--part", "train", "--show", "0"]) == 0
    firsts = [line for line in capsys.readouterr().out.splitlines() if " part: " in line]
    assert firsts == [f"{paths[0]}, train part: 200 pairs, seq2seq model, greedy",
                      f"{paths[1]}, train part: 200 pairs, attention model, greedy"]


def test_translate_detokenize_is_what_evaluate_scores(two_models, tiny_corpus, capsys,
                                                      monkeypatch):
    """The lines of ``translate --detokenize`` are the hypotheses evaluate hands to
    sacrebleu for the same sentences; ``--json`` gives them as ``detokenized``."""
    import minis2s.bleu as bleu_module

    scored = []  # the hypotheses of every corpus BLEU evaluate computes, in order

    class Spy(bleu_module.BLEU):
        def corpus_score(self, hypotheses, references, *args, **kwargs):
            scored.append(list(hypotheses))
            return super().corpus_score(hypotheses, references, *args, **kwargs)

    monkeypatch.setattr(bleu_module, "BLEU", Spy)
    model, shown = str(two_models[1]), 8
    capsys.readouterr()
    assert main(["evaluate", "--model", model, "--data", str(tiny_corpus), "--part", "train",
                 "--show", str(shown)]) == 0
    examples = [line.strip().split("   [ref: ")[0].split(" => ")
                for line in capsys.readouterr().out.splitlines() if " => " in line]
    sources, tokens = [s for s, _ in examples], [t for _, t in examples]
    assert len(sources) == shown
    whole = scored[-1]  # the last corpus BLEU: the whole part's, not a length bucket's
    assert len(whole) == 200
    assert whole[:shown] != tokens  # there is something to join
    assert main(["translate", "--model", model, "--detokenize", *sources]) == 0
    assert capsys.readouterr().out.splitlines() == whole[:shown]
    assert main(["translate", "--model", model, *sources]) == 0
    assert capsys.readouterr().out.splitlines() == tokens
    assert main(["translate", "--model", model, "--json", *sources]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["translation"] for r in records] == tokens
    assert [r["detokenized"] for r in records] == whole[:shown]


# --- --model DIR --------------------------------------------------------------------------


def test_a_run_folder_serves_as_model(two_models, tiny_corpus, capsys):
    folder = two_models[1]
    capsys.readouterr()
    for model in (folder / "checkpoint.npz", folder):
        assert main(["translate", "--model", str(model), "go ."]) == 0
    by_file, by_folder = capsys.readouterr().out.splitlines()
    assert by_file == by_folder
    assert main(["evaluate", "--model", str(folder), "--data", str(tiny_corpus), "--part",
                 "train", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == str(folder / "checkpoint.npz")
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--batch-size", "4", "--model",
                 str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"{folder} (attention, gru): 4 pairs, ")


@pytest.mark.parametrize("command", [["translate", "go ."], ["evaluate"],
                                     ["gradflow", "--pairs", "PAIRS"]])
def test_a_folder_without_a_checkpoint_names_the_file(tmp_path, tiny_corpus, capsys,
                                                      command):
    command = [str(tiny_corpus) if w == "PAIRS" else w for w in command]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*command, "--model", str(empty)]) == 2
    assert error_lines(capsys) == [
        f"minis2s: error: no checkpoint at {empty / 'checkpoint.npz'}: the folder holds no "
        ".npz file (minis2s train --out writes one)"]
    (empty / "best.npz").write_bytes(b"")
    assert main([*command, "--model", str(empty)]) == 2
    assert error_lines(capsys) == [
        f"minis2s: error: no checkpoint at {empty / 'checkpoint.npz'}; the folder holds "
        f"{empty / 'best.npz'}: give one of these files"]


# --- flags: whole names only, errors from the command's own parser ----------------------


def parsers():
    """The top parser, every command's, and ``python -m minis2s.bench``'s, by name."""
    from minis2s.bench import build_parser as bench_parser

    top = build_parser()
    commands = top._commands.choices
    return {"minis2s": top, **{f"minis2s {name}": p for name, p in commands.items()},
            "python -m minis2s.bench": bench_parser()}


def test_no_parser_takes_a_prefix_for_a_flag():
    assert all(p.allow_abbrev is False for p in parsers().values())


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--epoch", "5", "--out", "OUT"],
     "minis2s train: error: unrecognized arguments: --epoch 5 (did you mean --epochs?)"),
    (["train", "--num", "5", "--out", "OUT"],
     "minis2s train: error: unrecognized arguments: --num 5 (did you mean --num-hiddens, "
     "--num-layers or --num-steps?)"),
    (["translate", "--model", "OUT", "--jsn", "go ."],
     "minis2s translate: error: unrecognized arguments: --jsn (did you mean --json?)"),
    (["evaluate", "--model", "OUT", "--beam=2", "--plt", "x.png"],
     "minis2s evaluate: error: unrecognized arguments: --plt x.png (did you mean --plot "
     "or --part?)"),
    (["translate", "--mod", "OUT", "go ."],
     "minis2s translate: error: the following arguments are required: --model; "
     "unrecognized arguments: --mod (did you mean --model?)"),
    (["bench", "--rank", "2"],
     "minis2s bench: error: unrecognized arguments: --rank 2 (did you mean --ranks?)"),
])
def test_a_misspelt_flag_is_refused_by_its_command(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    argv = [str(out) if w == "OUT" else w for w in argv]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    command = message.split(":")[0]
    assert err.startswith(f"usage: {command} ")  # the command's usage, not minis2s's own
    assert err.strip().splitlines()[-1] == message
    assert not out.exists()


def test_bench_alone_refuses_a_prefix(capsys, monkeypatch):
    import minis2s.bench as benchmark

    def never(*args, **kwargs):
        raise AssertionError("--rank was taken for --ranks: the benchmark started")

    monkeypatch.setattr(benchmark, "bench", never)
    with pytest.raises(SystemExit) as stop:
        benchmark.main(["--rank", "2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: minis2s bench ")
    assert err.strip().splitlines()[-1] == \
        "minis2s bench: error: unrecognized arguments: --rank 2 (did you mean --ranks?)"


# --- bench under an MPI launcher -------------------------------------------------------

LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                      "PMIX_RANK", "PMIX_SIZE")


@pytest.mark.parametrize("variables", [{"PMI_RANK": "0", "PMI_SIZE": "2"},
                                       {"OMPI_COMM_WORLD_RANK": "0",
                                        "OMPI_COMM_WORLD_SIZE": "2"},
                                       {"PMIX_RANK": "0", "PMIX_SIZE": "2"}])
def test_bench_under_mpiexec_is_refused_in_one_line(monkeypatch, capsys, variables):
    import minis2s.bench as benchmark

    def never(*args, **kwargs):
        raise AssertionError("the benchmark ran under a launcher")

    monkeypatch.setattr(benchmark, "bench", never)
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    refusal = ["minis2s bench: error: it starts its own processes, so it does not run under "
               "mpiexec with 2 ranks: run it as plain minis2s bench --ranks 2"]
    assert main(["bench", "--ranks", "2"]) == 2
    assert error_lines(capsys) == refusal
    assert benchmark.main(["--ranks", "2"]) == 2  # python -m minis2s.bench: the same line
    assert error_lines(capsys) == refusal
    rank = next(iter(variables))
    monkeypatch.setenv(rank, "1")  # the other ranks stop without a word
    assert main(["bench"]) == 2
    assert benchmark.main([]) == 2
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("variables", [{"PMI_RANK": "0", "PMI_SIZE": "1"},
                                       {"OMPI_COMM_WORLD_RANK": "0",
                                        "OMPI_COMM_WORLD_SIZE": "1"},
                                       {"PMIX_RANK": "0"}])
def test_bench_under_a_launcher_of_one_rank_runs(monkeypatch, capsys, variables):
    """``mpiexec -n 1``, or a shell under ``srun --mpi=pmix`` that sets only PMIX_RANK:
    one process, as training sees it, so the benchmark runs."""
    import minis2s.bench as benchmark

    ran = []
    monkeypatch.setattr(benchmark, "bench", lambda *args, **kwargs: ran.append(kwargs))
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert main(["bench", "--ranks", "2"]) == 0
    assert benchmark.main(["--ranks", "2"]) == 0
    assert [r["ranks"] for r in ran] == [2, 2]
    assert capsys.readouterr().err == ""


# --- counts and defaults ----------------------------------------------------------------


def test_one_of_a_thing_is_singular(two_models, tiny_corpus, tmp_path, capsys):
    from minis2s.wording import plural

    assert [plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert plural(1200, "pair", ",") == "1,200 pairs"
    capsys.readouterr()
    assert main(["train", "--data", str(tiny_corpus), *TINY, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert ", 1 epoch on numpy" in err and "1 epochs" not in err
    assert main(["gradflow", "--pairs", str(tiny_corpus), "--batch-size", "1", "--num-steps",
                 "1", "--model", str(two_models[0])]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        f"{two_models[0]} (seq2seq, gru): 1 pair, 1 source and 1 target step"


def option_helps(parser) -> dict[str, str]:
    """Each option's help as --help prints it (whitespace collapsed), by its last flag."""
    entries, current = {}, None
    for line in parser.format_help().splitlines():
        stripped = line.strip()
        if line.startswith("  -"):
            flags = stripped.split("  ")[0]
            current = flags.split(", ")[-1].split(" ")[0]
            entries[current] = stripped[len(flags):]
        elif current and line.startswith("    "):
            entries[current] += " " + stripped
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in entries.items()}


def test_help_shows_every_default():
    from minis2s.cli.commands import FLAG_FIELDS

    checked = 0
    for name, parser in parsers().items():
        helps = option_helps(parser)
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            flag = action.option_strings[-1]
            text = helps[flag]
            if action.dest in FLAG_FIELDS and name == "minis2s train":
                assert "(default: the preset's; zh: " in text, (name, flag, text)
            elif action.default not in (None, False, argparse.SUPPRESS) \
                    and not action.required:
                assert f"default: {action.default}" in text, (name, flag, text)
                checked += 1
    assert checked >= 12
    train = option_helps(parsers()["minis2s train"])
    assert train["--embed-size"].endswith("(default: the preset's; zh: 32)")
    assert train["--no-bidirectional"].endswith("(default: the preset's; zh: off)")
    assert train["--examples"].endswith("(default: the preset's; zh: 600)")


def test_train_passes_overwrite_on(tiny_corpus, tmp_path, monkeypatch):
    import minis2s.train as training

    seen = {}

    def run_experiment(*args, **kwargs):
        seen.update(kwargs)
        raise training.TrainingError("stopped here")

    monkeypatch.setattr(training, "run_experiment", run_experiment)
    for flag, expected in (([], False), (["--overwrite"], True)):
        assert main(["train", "--data", str(tiny_corpus), *TINY, "--out",
                     str(tmp_path / "run"), *flag]) == 2
        assert seen["overwrite"] is expected


# --- standard input -----------------------------------------------------------------------


class _Stdin:
    """Standard input as bytes (``buffer``), as a terminal or a pipe gives it."""

    def __init__(self, raw: bytes):
        import io

        self.buffer = io.BytesIO(raw)


@pytest.mark.parametrize("raw, lines", [
    (b"go .\ni lost .\n", ["go .", "i lost ."]),  # the final newline starts no line
    (b"go .\ni lost .", ["go .", "i lost ."]),  # nor does its absence lose one
    (b"\xef\xbb\xbfgo .\r\nhe's calm .\r\n", ["go .", "he's calm ."]),  # BOM, CRLF
    (b"\n\n", ["", ""]),  # empty lines stay lines
    (b"a\rb\n", ["a\rb"]),  # a \r alone inside a line is the line's
    (b"", []),
])
def test_stdin_is_split_at_newlines_only(monkeypatch, capsys, raw, lines):
    from minis2s.cli import commands

    monkeypatch.setattr(commands.sys, "stdin", _Stdin(raw))
    assert commands._stdin_lines() == lines
    assert capsys.readouterr().err == ""


def test_stdin_that_is_not_utf8_is_read_with_a_warning_naming_the_line(monkeypatch,
                                                                       capsys):
    from minis2s.cli import commands

    monkeypatch.setattr(commands.sys, "stdin", _Stdin(b"go .\nbad \xff bytes\r\nok\n"))
    assert commands._stdin_lines() == ["go .", "bad \ufffd bytes", "ok"]
    assert capsys.readouterr().err == ("minis2s: input line 2 is not valid UTF-8; "
                                       "undecodable bytes read as U+FFFD\n")


def test_a_text_stream_for_stdin_is_read_as_lines(monkeypatch):
    import io

    from minis2s.cli import commands

    # a trailing space is the line's own; only the newline and a \r before it go
    text = "go . \r\ni lost .\nTAX\nMAX\r\n"
    monkeypatch.setattr(commands.sys, "stdin", io.StringIO(text, newline=""))
    assert commands._stdin_lines() == ["go . ", "i lost .", "TAX", "MAX"]
