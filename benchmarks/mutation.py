"""Mutation testing of the modules around the core, one module at a time, with mutmut.

    python benchmarks/mutation.py                  # every module, one after another
    python benchmarks/mutation.py decode evaluate  # only these
    python benchmarks/mutation.py --list           # the modules, their files and tests
    python benchmarks/mutation.py --report         # the last results again, no run

Each module is mutated in its own folder, ``.mutmut/MODULE/`` (git ignores it), whose
``pyproject.toml`` is this project's with the ``[tool.mutmut]`` table completed for that
module: the files to mutate (``only_mutate``) and the test files that may kill their
mutants (``pytest_add_cli_args_test_selection``), never the whole suite. mutmut runs every
selected test once to learn which tests reach which function, then runs each mutant
against those tests only, ``--jobs`` mutants at a time.

A later run reuses the results mutmut keeps in that folder: mutants of unchanged
functions are not tried again, except the survivors and the time-outs, which are tried
again against the tests as they are now (so a test added to kill one counts at once).
``--fresh`` starts the module from nothing.

The fixtures that train a model for their tests (a checkpoint to translate, evaluate or
read) train it once per run, not once per mutant: ``$MINIS2S_TEST_MODELS`` names a folder
where tests/fixture_models.py keeps each such model, made by the tests' first, unmutated
pass. A mutant of the training code is judged by the tests whose subject is training.

A survivor is "explained" when ``benchmarks/mutation_triage.md`` names it and quotes the
line it mutated exactly (so an entry goes stale, and the survivor counts as open again,
when the code under it changes); every other survivor is "open". "no tests" mutants (no
selected test reaches the function) count as survivors; time-outs count as killed.

The targets: no open survivor in decode and evaluate, and fewer than 10% survivors in
every other module. The exit status is 1 when a module that ran misses its target.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutmut"
TRIAGE = ROOT / "benchmarks" / "mutation_triage.md"
# what the tests read besides the package and themselves (the README's examples, docs)
LINKED = ["minis2s", "tests", "docs", "examples", "README.md"]
SURVIVOR_RATE_TARGET = 0.10


@dataclass(frozen=True)
class Module:
    mutate: tuple  # glob patterns of the files to mutate, from the repository root
    tests: tuple  # the test files (or tests, FILE::NAME) that may kill them
    strict: bool = False  # every survivor must be explained
    skip: tuple = ()  # tests of those files left out (FILE::NAME): slow, and reach no mutant


# the heat-map tests of tests/test_figures.py (its other tests draw other figures)
HEAT_MAPS = tuple(f"tests/test_figures.py::{name}" for name in (
    "test_heat_map_carries_the_sentence_and_keeps_its_tick_labels_inside",
    "test_heat_map_without_a_sentence_titles_the_tokens_read",
    "test_an_empty_line_leaves_no_gap_in_the_heat_map_numbers",
    "test_translate_refuses_an_attention_plot_folder_that_is_a_file"))

# d2l's context at prediction (evaluate --context-from decoder), tests/test_pitfalls.py
CONTEXT_FROM = tuple(f"tests/test_pitfalls.py::{name}" for name in (
    "test_the_context_from_the_decoder_is_d2l_predict_seq2seq",
    "test_the_context_from_the_decoder_is_refused_where_it_means_nothing",
    "test_evaluate_refuses_the_decoders_context_where_it_means_nothing_in_one_line",
    "test_each_refusal_of_the_decoders_context_says_why_word_for_word",
    "test_translate_hands_its_rules_and_its_context_to_the_decoding"))

# the gradflow command (tests/test_gradflow*.py; their other tests check the numbers of
# minis2s/gradflow.py by finite differences and reach no line of the command)
GRADFLOW_COMMAND = (
    *(f"tests/test_gradflow.py::{name}" for name in (
        "test_table_json_and_figure", "test_compare_cells_and_trained_models",
        "test_bad_input")),
    *(f"tests/test_gradflow_distance.py::{name}" for name in (
        "test_table", "test_json_shape", "test_trained_checkpoints_of_either_decoder",
        "test_figure", "test_clip_is_refused_with_by_distance")))

# minis2s info, its text and its JSON (tests/test_api.py, tests/test_task_commands.py)
INFO = (*(f"tests/test_api.py::{name}" for name in (
    "test_info_leaves_the_parameters_where_they_are",
    "test_info_of_a_checkpoint_without_a_training_record",
    "test_info_command_prints_the_info_as_text", "test_info_text_counts_in_words",
    "test_info_command_json_is_model_info", "test_info_of_a_bad_file_is_one_error_line")),
    "tests/test_task_commands.py::test_info_names_the_task")

MODULES = {
    "decode": Module(
        ("minis2s/decode/*",),
        ("tests/test_decode.py", "tests/test_beam.py", "tests/test_decode_edges.py",
         *HEAT_MAPS, *CONTEXT_FROM,
         "tests/test_task_commands.py::test_translate_reads_the_tasks_input_and_writes_its_text"),
        strict=True),
    "evaluate": Module(
        ("minis2s/evaluate.py",),
        ("tests/test_evaluate_edges.py", "tests/test_decoding_commands.py", "tests/test_api.py",
         "tests/test_cli_usability.py", "tests/test_figures.py", "tests/test_attention_cli.py",
         "tests/test_task_accuracy.py", "tests/test_evaluate_decoding.py",
         "tests/test_task_commands.py::test_evaluate_scores_a_task_model_by_accuracy",
         "tests/test_task_commands.py::test_the_accuracy_plot_draws_what_evaluate_reports",
         *CONTEXT_FROM),
        strict=True),
    "ranks": Module(
        ("minis2s/train/ranks.py",),
        ("tests/test_ranks_one_process.py", "tests/test_shards.py",
         # each rank's GPU: its rank on its machine, from the launcher's variables
         "tests/test_on_the_double.py::test_each_rank_takes_the_gpu_of_its_local_rank")),
    "trainer": Module(
        ("minis2s/train/trainer.py",),
        ("tests/test_trainer_edges.py", "tests/test_trainer_steps.py", "tests/test_train.py",
         "tests/test_reliability.py",
         "tests/test_progress_log.py", "tests/test_wording.py", "tests/test_no_overwrite.py",
         "tests/test_shards.py")),
    "checkpoint": Module(
        ("minis2s/checkpoint.py",),
        # (tests/test_reliability.py and tests/test_api.py reach load and save too, through
        # whole commands, a minute of tests per mutant that they add nothing to)
        ("tests/test_checkpoint_edges.py", "tests/test_checkpoint.py",
         "tests/test_no_overwrite.py")),
    "cli": Module(
        # parser.py is left out: it is the command line's words, defaults and choices, every
        # one of which shows in --help, which tests/test_commands_page.py compares with
        # docs/commands.md character for character (any edit there fails it by design)
        ("minis2s/cli/__init__.py", "minis2s/cli/commands.py", "minis2s/cli/info.py",
         "minis2s/cli/naming.py"),
        ("tests/test_cli.py", "tests/test_cli_usability.py",
         "tests/test_decoding_commands.py", "tests/test_attention_cli.py",
         "tests/test_no_overwrite.py", "tests/test_progress_log.py", "tests/test_wording.py",
         "tests/test_exercises.py", "tests/test_cli_ranks.py", "tests/test_cli_commands.py",
         "tests/test_task_commands.py", *INFO[:-1], *CONTEXT_FROM, *GRADFLOW_COMMAND,
         "tests/test_train.py::test_lr_decay_is_kept_by_the_checkpoint_and_resumed"),
        # each runs the command in a process of its own, where no mutant is counted
        skip=("tests/test_cli.py::test_gradcheck_command", "tests/test_cli.py::test_example_runs",
              # the slowest of the rest (2-14 s each, commands started as processes, which
              # every mutant of main and of train would pay for): what they check of the
              # commands is checked in process by tests/test_cli_commands.py and the others
              *(f"tests/test_cli.py::{name}" for name in (
                  "test_every_flag_reaches_the_model_the_checkpoint_and_the_commands",
                  "test_translate_prints_exactly_what_greedy_decoding_gives",
                  "test_no_progress_bar_when_stderr_is_not_a_terminal",
                  "test_evaluate_prints_sacrebleus_own_scores",
                  "test_missing_checkpoint_is_a_clear_error",
                  "test_evaluate_without_a_test_part_is_a_clear_error")),
              # two ranks under mpiexec: a process each, where no mutant is counted
              "tests/test_task_commands.py::test_a_task_trains_on_two_ranks_as_on_one")),
}

# mutmut's names for what became of a mutant, by the exit code it keeps
KILLED = {"killed", "timeout", "caught by type check"}
SURVIVED = {"survived", "no tests"}


def toml_value(value) -> str:
    """A TOML value for a string, number, bool or list of them (JSON spells these as TOML
    does, except booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def project_mutmut_settings() -> tuple[str, dict]:
    """This project's pyproject.toml without its ``[tool.mutmut]`` table, and that table."""
    import tomllib

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    settings = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    kept, inside = [], False
    for line in text.splitlines():
        if line.startswith("["):
            inside = line.strip() == "[tool.mutmut]"
        if not inside:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n", settings


def prepare(name: str, module: Module) -> Path:
    """``.mutmut/NAME/``: links to the package, the tests and the files they read, and a
    pyproject.toml whose ``[tool.mutmut]`` names this module's files and tests."""
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    for entry in LINKED:
        link = folder / entry
        if not link.is_symlink():
            link.symlink_to(Path("..", "..", entry))
    base, settings = project_mutmut_settings()
    tests = [t for t in module.tests if (ROOT / t.split("::")[0]).is_file()]
    for test in module.skip:
        tests += ["--deselect", test]
    settings = {**settings, "only_mutate": list(module.mutate),
                "pytest_add_cli_args_test_selection": tests}
    also = [p for p in settings.get("also_copy", []) if p not in ("tests", "tests/")]
    settings["also_copy"] = also
    table = "\n".join(f"{k} = {toml_value(v)}" for k, v in settings.items())
    (folder / "pyproject.toml").write_text(f"{base}\n[tool.mutmut]\n{table}\n",
                                          encoding="utf-8")
    return folder


def sync_unmutated(folder: Path, module: Module) -> None:
    """Bring mutmut's copies of the files it does not mutate up to date: mutmut copies
    them once and never again, while it redoes a mutated file whenever it changes."""
    copies = folder / "mutants"
    if not copies.is_dir():
        return
    for source in (ROOT / "minis2s").rglob("*.py"):
        rel = source.relative_to(ROOT).as_posix()
        if any(fnmatch.fnmatch(rel, pattern) for pattern in module.mutate):
            continue
        copy = copies / rel
        if not copy.is_file() or copy.read_bytes() != source.read_bytes():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)


def uncommitted() -> list[str]:
    """The package's files that differ from git's HEAD (the run tests them as they are)."""
    shown = subprocess.run(["git", "diff", "--name-only", "HEAD", "--", "minis2s"],
                           cwd=ROOT, capture_output=True, text=True)
    return shown.stdout.split() if shown.returncode == 0 else []


def results(folder: Path) -> dict[str, str]:
    """mutmut's verdict on each mutant of the folder, by mutant name."""
    from mutmut.stats import status_by_exit_code

    found = {}
    for meta in sorted((folder / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
        for key, code in codes.items():
            found[key] = status_by_exit_code[code]
    return found


# run by mutant_diffs() in a module's folder: each name read from stdin, its diff out
_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
names = sys.stdin.read().split()
print(json.dumps({n: get_diff_for_mutant(n, path=find_mutant(n).path) for n in names}))
"""


def mutant_diffs(folder: Path, names: list[str]) -> dict[str, list[str]]:
    """The lines mutmut changed in each mutant of ``names``, as ``-old`` and ``+new``."""
    if not names:
        return {}
    shown = subprocess.run([sys.executable, "-c", _DIFFS], cwd=folder, input=" ".join(names),
                           capture_output=True, text=True, check=True)
    return {name: [line for line in diff.splitlines()
                   if line[:1] in "+-" and not line.startswith(("+++", "---"))]
            for name, diff in json.loads(shown.stdout).items()}


def read_triage() -> dict[str, str]:
    """The explained survivors in the triage file: mutant name -> the mutated line as
    quoted there (``+ `CODE```)."""
    if not TRIAGE.is_file():
        return {}
    entries, name = {}, None
    for line in TRIAGE.read_text(encoding="utf-8").splitlines():
        head = re.match(r"^### `([^`]+)`", line)
        if head:
            name = head.group(1)
            continue
        quoted = re.match(r"^- mutant: `(.*)`$", line)
        if quoted and name:
            entries[name] = quoted.group(1)
            name = None
    return entries


def added_line(diff: list[str]) -> str:
    """The mutated code of a mutant, its ``+`` lines stripped and joined."""
    return " ".join(line[1:].strip() for line in diff if line.startswith("+"))


def run_module(name: str, module: Module, jobs: int, fresh: bool) -> float:
    """Run mutmut over one module; returns the seconds it took."""
    folder = prepare(name, module)
    if fresh and (folder / "mutants").exists():
        shutil.rmtree(folder / "mutants")
    sync_unmutated(folder, module)
    changed = uncommitted()
    if changed:
        print(f"mutation: note: {', '.join(changed)} differ from HEAD; they are tested as "
              "they are now", flush=True)
    before = results(folder) if (folder / "mutants").exists() else {}
    # survivors, and time-outs (a mutant that hung may have hung the harness, not a test)
    again = sorted(k for k, v in before.items() if v in SURVIVED or v == "timeout")
    log = folder / "run.log"
    # Hypothesis derandomized, as in CI; the tests' own small corpus, never the real one
    # (a run then takes the same time and kills the same mutants on every machine)
    env = {k: v for k, v in os.environ.items() if k != "MINIS2S_DATA"}
    env["CI"] = "true"
    # the models the test fixtures train, each trained once by the unmutated code and
    # copied for every mutant after (tests/fixture_models.py); new for every run
    models = folder / "fixture_models"
    shutil.rmtree(models, ignore_errors=True)
    env["MINIS2S_TEST_MODELS"] = str(models)
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        for names in ([], again) if again else ([],):
            cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names]
            code = subprocess.run(cmd, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                  env=env).returncode
            if code != 0:
                tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                raise SystemExit(f"mutation: mutmut failed on {name} (exit {code}); "
                                 f"the end of {log}:\n{tail}")
    seconds = time.perf_counter() - started
    timing = WORK / "timings.json"
    times = json.loads(timing.read_text()) if timing.is_file() else {}
    times[name] = round(seconds, 1)
    timing.write_text(json.dumps(times, indent=1) + "\n")
    return seconds


def summarize(name: str, module: Module, triage: dict[str, str], verbose: bool) -> dict:
    """Counts for one module, and its open survivors printed with their diffs."""
    folder = WORK / name
    found = results(folder)
    row = {"module": name, "mutants": len(found), "killed": 0, "survived": 0,
           "explained": 0, "open": 0, "other": 0, "unchecked": 0, "timeouts": 0,
           "open_names": []}
    survivors = []
    for key, status in sorted(found.items()):
        if status == "not checked":  # a run stopped before it came to them
            row["unchecked"] += 1
        elif status in KILLED:
            row["killed"] += 1
            row["timeouts"] += status == "timeout"
        elif status in SURVIVED:
            survivors.append((key, status))
        else:
            row["other"] += 1
            print(f"  {key}: {status}")
    diffs = mutant_diffs(folder, [key for key, _ in survivors])
    for key, status in survivors:
        row["survived"] += 1
        quoted = triage.get(key)
        if quoted is not None and quoted == added_line(diffs[key]):
            row["explained"] += 1
            continue
        row["open"] += 1
        row["open_names"].append(key)
        if verbose:
            why = "stale triage entry" if quoted is not None else status
            print(f"  open ({why}): {key}")
            for line in diffs[key]:
                print(f"      {line}")
    row["rate"] = row["survived"] / row["mutants"] if row["mutants"] else 0.0
    row["target_met"] = (row["open"] == 0 if module.strict else
                         row["rate"] < SURVIVOR_RATE_TARGET) and not row["unchecked"]
    return row


def table(rows: list[dict]) -> str:
    times = json.loads((WORK / "timings.json").read_text()) \
        if (WORK / "timings.json").is_file() else {}
    lines = ["| module | mutants | killed (of which timed out) | survived (explained / open) "
             "| survival rate | target | time |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        target = "no open survivor" if MODULES[r["module"]].strict else "< 10% survivors"
        met = "met" if r["target_met"] else \
            f"{r['unchecked']} not run yet" if r["unchecked"] else "missed"
        t = times.get(r["module"])
        took = f"{t / 60:.1f} min" if t is not None else "?"
        lines.append(f"| {r['module']} | {r['mutants']} | {r['killed']} ({r['timeouts']}) "
                     f"| {r['survived']} "
                     f"({r['explained']} / {r['open']}) | {100 * r['rate']:.1f}% "
                     f"| {target}: {met} | {took} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/mutation.py",
        description="Mutation testing (mutmut) of decode, evaluate, ranks, trainer, "
                    "checkpoint and cli, each against its own tests.")
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="mutants tested at once (default: the number of cores)")
    parser.add_argument("--fresh", action="store_true",
                        help="forget the module's earlier results and start again")
    parser.add_argument("--report", action="store_true",
                        help="print the last results without running anything")
    parser.add_argument("--list", action="store_true",
                        help="print each module's files and tests and stop")
    parser.add_argument("--quiet", action="store_true",
                        help="the table only, without each open survivor's diff")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; choose from {', '.join(MODULES)}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    names = args.modules or list(MODULES)
    if args.list:
        for name in names:
            m = MODULES[name]
            print(f"{name}: mutate {' '.join(m.mutate)}; tests {' '.join(m.tests)}")
        return 0
    try:
        import mutmut  # noqa: F401
    except ImportError:
        print("mutation: mutmut is missing: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    if not args.report:
        for name in names:
            print(f"mutation: {name} ...", flush=True)
            seconds = run_module(name, MODULES[name], args.jobs, args.fresh)
            print(f"mutation: {name} done in {seconds / 60:.1f} min", flush=True)
    triage = read_triage()
    rows = []
    for name in names:
        if not (WORK / name / "mutants").is_dir():
            print(f"mutation: {name} has not run yet")
            continue
        print(f"mutation: {name}")
        rows.append(summarize(name, MODULES[name], triage, not args.quiet))
    print()
    print(table(rows))
    return 0 if all(r["target_met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
