"""The chapter's claims measured on the generated tasks: every run and figure of
docs/experiments.md, by the same ``minis2s`` commands the page gives.

    python benchmarks/experiments.py [--out runs/experiments] [--only NAME ...] [--dry-run]

Each experiment trains its models with ``minis2s train`` (a model already trained in
OUT is used again), scores them with ``minis2s evaluate --json`` and draws its figure
into OUT (:data:`FIGURES`: ``experiments_reverse_by_length.png`` ...; docs/ ships them
under the same names). ``--dry-run`` prints the commands and runs
none. Every command is printed as it runs, with its wall and CPU seconds; the numbers
found go to OUT/results_NAME.json, one file per experiment.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the small model every task run uses: one layer of 64 units, large batches
SHAPE = ["--num-layers", "1", "--embed-size", "32", "--num-hiddens", "64",
         "--batch-size", "128", "--lr", "0.01"]
REVERSE = ["--task", "reverse", "--max-len", "20"]
REVERSE_EPOCHS = 1
ADD_EPOCHS = 2
DATE_EPOCHS = 1
LOSS_EPOCHS = 2  # the runs comparing the loss's reductions (reverse, lengths 3 to 10)
REDUCTIONS = ("seq", "sum", "mean", "unmasked")
DATE_PAIRS = 6000  # training pairs of date (the task's default: 20,000)
CELLS = ("rnn", "gru", "lstm")
DECODERS = ("seq2seq", "attention")
BEAMS = (1, 2, 5, 10)
PENALTIES = (0.0, 0.75, 1.0)
DATE_EXAMPLE = "tuesday, september 27, 1994"
# on French (the corpus of $MINIS2S_DATA): the big preset (20,000 pairs, 10 epochs) with
# d2l's loss and the two others, then its beam sweep
FRENCH = ["--preset", "big"]
FRENCH_REDUCTIONS = ("seq", "sum", "mean")
FRENCH_BEAMS = (1, 2, 3, 5, 7, 10)
# each experiment's figure, in OUT (docs/ ships them under the same names)
FIGURES = {name: f"experiments_{name}.png" for name in
           ("reverse_by_length", "add_reverse_source", "date_attention", "beam",
            "gradflow_reverse", "french_beam")}
GRADFLOW_PAIRS = 64  # reverse pairs of length 20 for the gradient figure


def train_args(name: str) -> list[str]:
    """``minis2s train``'s options (less ``--out``) of the run called ``name``:
    ``reverse_<decoder>_<cell>``, ``add_plain``, ``add_reversed``, ``date_attention`` or
    ``loss_<reduction>`` on the tasks, or ``french_<reduction>`` on the corpus."""
    if name.startswith("reverse_"):
        _, decoder, cell = name.split("_")
        if decoder not in DECODERS or cell not in CELLS:
            raise ValueError(f"no run called {name!r}")
        return [*REVERSE, "--model", decoder, "--cell", cell, *SHAPE,
                "--epochs", str(REVERSE_EPOCHS)]
    if name.startswith("loss_"):
        reduction = name.removeprefix("loss_")
        if reduction not in REDUCTIONS:
            raise ValueError(f"no run called {name!r}")
        return ["--task", "reverse", "--model", "seq2seq", *SHAPE, "--loss-reduction",
                reduction, "--epochs", str(LOSS_EPOCHS)]
    if name.startswith("french_"):
        reduction = name.removeprefix("french_")
        if reduction not in FRENCH_REDUCTIONS:
            raise ValueError(f"no run called {name!r}")
        return [*FRENCH, "--loss-reduction", reduction]
    if name == "add_plain":
        return ["--task", "add", *SHAPE, "--epochs", str(ADD_EPOCHS)]
    if name == "add_reversed":
        return ["--task", "add", "--reverse-source", *SHAPE, "--epochs", str(ADD_EPOCHS)]
    if name == "date_attention":
        return ["--task", "date", "--train-size", str(DATE_PAIRS), "--model", "attention",
                *SHAPE, "--epochs", str(DATE_EPOCHS)]
    raise ValueError(f"no run called {name!r}")


def with_epochs(args: list[str], epochs: int) -> list[str]:
    """``args`` with its ``--epochs`` value replaced by ``epochs``."""
    i = args.index("--epochs")
    return [*args[:i + 1], str(epochs), *args[i + 2:]]


def reverse_pairs(n: int, length: int = 20, symbols: str = "abcdefghij",
                  seed: int = 0) -> list[str]:
    """``n`` lines ``source<TAB>reversed source``, strings of ``length`` symbols drawn
    uniformly from ``seed`` (as the reverse task draws them, its default 10 symbols)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        s = "".join(rng.choice(symbols) for _ in range(length))
        lines.append(f"{s}\t{s[::-1]}")
    return lines


@dataclass
class Runner:
    """Runs ``minis2s`` commands (or, on a dry run, only prints them) and keeps what
    each cost: wall seconds and the CPU seconds of the process and its children."""

    out: Path
    dry_run: bool = False
    log: list = field(default_factory=list)

    def __call__(self, *args: str, capture: bool = False) -> str:
        words = ["minis2s", *args]
        print("$ " + shlex.join(words), flush=True)
        if self.dry_run:
            return ""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "minis2s", *args], env=env,
                              stdout=subprocess.PIPE if capture else None, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        user = after.ru_utime - before.ru_utime
        if done.returncode:
            raise SystemExit(f"failed ({done.returncode}): {shlex.join(words)}")
        self.log.append({"command": shlex.join(words), "wall_s": round(wall, 1),
                         "user_s": round(user, 1), "cpu_s": round(cpu, 1)})
        print(f"  ({wall:.1f} s wall, {user:.1f} s user CPU)", flush=True)
        return done.stdout or ""

    def folder(self, name: str) -> str:
        return str(self.out / name)

    def train(self, name: str, args: list[str] | None = None) -> str:
        """Train the run ``name`` unless OUT already holds its checkpoint."""
        folder = self.folder(name)
        if not self.dry_run and (Path(folder) / "checkpoint.npz").is_file():
            print(f"# {folder} is trained already", flush=True)
            return folder
        self("train", *(args if args is not None else train_args(name)), "--quiet",
             "--out", folder)
        return folder

    def evaluate(self, *args: str) -> list[dict]:
        """``minis2s evaluate --json ARGS``: one dict per model."""
        text = self("evaluate", "--json", "--show", "0", *args, capture=True)
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def reverse_by_length(run: Runner, results: dict) -> None:
    """Exact match against source length on reverse, every cell, with and without
    attention: one ``evaluate --by-length --plot`` of the six models."""
    names = [f"reverse_{d}_{c}" for d in DECODERS for c in CELLS]
    models = []
    for name in names:
        models += ["--model", run.train(name)]
    found = run.evaluate(*models, "--by-length", "--plot",
                         str(run.out / FIGURES["reverse_by_length"]))
    results["reverse"] = {
        name: {"exact_match": r["exact_match"], "token_accuracy": r["token_accuracy"],
               "by_length": {b["label"]: b["exact_match"] for b in r["by_length"]}}
        for name, r in zip(names, found)}


ADD_RUNS = ("add_plain", "add_reversed")


def add_curve(run: Runner, name: str) -> dict:
    """Train add run ``name`` one epoch at a time (``train --resume``), scoring the
    validation part after each; OUT/NAME/curve.json keeps the scores found, so that an
    interrupted run goes on where it stopped. Returns the curve and the test part's
    exact match."""
    folder = run.folder(name)
    saved = Path(folder) / "curve.json"
    curve = [] if run.dry_run or not saved.is_file() else \
        json.loads(saved.read_text(encoding="utf-8"))["valid_exact_match_by_epoch"]
    for epoch in range(len(curve) + 1, ADD_EPOCHS + 1):
        done = 0
        if not run.dry_run and (Path(folder) / "checkpoint.npz").is_file():
            done = json.loads(run("info", "--json", folder, capture=True))["training"][
                "epochs"] or 0
        if done < epoch:
            args = (with_epochs(train_args(name), epoch) if epoch == 1
                    else ["--resume", "--epochs", str(epoch)])
            run("train", *args, "--quiet", "--out", folder)
        found = run.evaluate("--model", folder, "--part", "valid")
        if found:
            curve.append(found[0]["exact_match"])
            saved.write_text(json.dumps({"valid_exact_match_by_epoch": curve}) + "\n",
                             encoding="utf-8")
    test = run.evaluate("--model", folder)
    return {"valid_exact_match_by_epoch": curve,
            "test_exact_match": test[0]["exact_match"] if test else None}


def add_reverse_source(run: Runner, results: dict, names=ADD_RUNS) -> None:
    """Exact match on held-out add pairs after every epoch, the plain model reading the
    source forwards and reversed (:func:`add_curve` for each of ``names``); the figure
    once both curves are there."""
    curves = {name: add_curve(run, name) for name in names}
    results["add"] = curves
    if not run.dry_run and set(curves) == set(ADD_RUNS):
        plot_curves(curves, run.out / FIGURES["add_reverse_source"])


def plot_curves(curves: dict, path: Path) -> None:
    """Exact match per epoch, one line per run."""
    from minis2s.figures import new_figure, save_figure

    fig = new_figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    labels = {"add_plain": "source forwards", "add_reversed": "source reversed"}
    for name, c in curves.items():
        ys = c["valid_exact_match_by_epoch"]
        ax.plot(range(1, len(ys) + 1), ys, "o-", label=labels.get(name, name))
    ax.set_xticks(range(1, max(len(c["valid_exact_match_by_epoch"]) for c in curves.values())
                        + 1))
    ax.set_xlabel("epoch")
    ax.set_ylabel("exact match, validation (%)")
    ax.set_ylim(0, 100)
    ax.set_title("add (3 digits), seq2seq + GRU")
    ax.legend()
    save_figure(fig, path)


def date_attention(run: Runner, results: dict) -> None:
    """Attention on date: its accuracy, and the heat map of one date's alignment."""
    folder = run.train("date_attention")
    found = run.evaluate("--model", folder)
    heat = run.out / "date_heat"
    run("translate", "--model", folder, "--attention-plot", str(heat), DATE_EXAMPLE)
    if found:
        results["date"] = {"exact_match": found[0]["exact_match"],
                           "token_accuracy": found[0]["token_accuracy"]}
    if not run.dry_run:
        figure = (heat / "sentence_0001.png").read_bytes()
        (run.out / FIGURES["date_attention"]).write_bytes(figure)


def beam_sweep(run: Runner, folder: str, widths, measures) -> list[dict]:
    """``minis2s evaluate`` of the model in ``folder`` at every width of ``widths`` and
    every length penalty (greedy, width 1, once): a row per run with its ``measures``
    (fields of evaluate's JSON) and the CPU seconds it took."""
    table = []
    for alpha in PENALTIES:
        for k in widths:
            if k == 1 and alpha != PENALTIES[0]:
                continue  # greedy has no length penalty
            start = len(run.log)
            found = run.evaluate("--model", folder, "--beam", str(k),
                                 "--length-penalty", str(alpha))
            if found:
                table.append({"beam": k, "length_penalty": alpha,
                              **{m: found[0][m] for m in measures},
                              "user_s": run.log[start]["user_s"]})
    return table


def beam(run: Runner, results: dict) -> None:
    """Greedy against beam search where greedy fails (the plain GRU on reverse): exact
    match and decoding seconds for every width and length penalty."""
    folder = run.train("reverse_seq2seq_gru")
    table = beam_sweep(run, folder, BEAMS, ("exact_match", "token_accuracy"))
    results["beam"] = table
    if not run.dry_run:
        plot_beam(table, run.out / FIGURES["beam"])
        results["beam_against_greedy"] = [
            {"beam": k, "length_penalty": alpha, **beam_against_greedy(folder, k, alpha)}
            for k, alpha in ((10, 0.0), (10, 1.0))]
        for row in results["beam_against_greedy"]:
            print(f"beam {row['beam']}, α = {row['length_penalty']}: right where greedy is "
                  f"wrong {row['won']}, wrong where greedy is right {row['lost']} (of those: "
                  f"longer {row['lost_longer']}, shorter {row['lost_shorter']}, the "
                  f"reference's length {row['lost_same_length']})", flush=True)


def compare_outputs(greedy: list[str], beam: list[str], refs: list[str]) -> dict:
    """How beam search's outputs differ from greedy decoding's against the references:
    the pairs beam gets right and greedy not (``won``), the reverse (``lost``), and of
    the lost ones how many of beam's outputs are longer, shorter or as long as the
    reference (in characters: a task's text)."""
    lost = [i for i, r in enumerate(refs) if greedy[i] == r and beam[i] != r]
    won = sum(greedy[i] != r and beam[i] == r for i, r in enumerate(refs))
    longer = sum(len(beam[i]) > len(refs[i]) for i in lost)
    shorter = sum(len(beam[i]) < len(refs[i]) for i in lost)
    return {"won": won, "lost": len(lost), "lost_longer": longer, "lost_shorter": shorter,
            "lost_same_length": len(lost) - longer - shorter}


def beam_against_greedy(folder: Path, k: int, alpha: float) -> dict:
    """:func:`compare_outputs` of the model in ``folder`` on its test part, beam search of
    width ``k`` and penalty ``alpha`` against greedy decoding (the library's own
    evaluation, which ``minis2s evaluate`` runs)."""
    import minis2s
    from minis2s.evaluate import evaluate_model

    model = minis2s.load(folder, "numpy")
    greedy = evaluate_model(model.checkpoint, model.backend)
    beam = evaluate_model(model.checkpoint, model.backend, beam=k, length_penalty=alpha)
    return compare_outputs(greedy.hyps, beam.hyps, greedy.refs)


def plot_beam(table: list[dict], path: Path, measure: str = "exact_match",
              label: str = "exact match, test (%)",
              title: str = "reverse (length 3-20), seq2seq + GRU"):
    """``measure`` (a key of the table's rows) and decoding CPU seconds against beam
    width, a line per length penalty; returns the figure (saved to ``path``)."""
    from minis2s.figures import new_figure, save_figure

    fig = new_figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    greedy = [r for r in table if r["beam"] == 1]
    for alpha in PENALTIES:
        rows = greedy + [r for r in table if r["beam"] > 1 and r["length_penalty"] == alpha]
        ks = [r["beam"] for r in rows]
        axes[0].plot(ks, [r[measure] for r in rows], "o-", label=f"α = {alpha}")
        axes[1].plot(ks, [r["user_s"] for r in rows], "o-", label=f"α = {alpha}")
    axes[0].set_ylabel(label)
    axes[1].set_ylabel("evaluate's CPU seconds (1,000 pairs)")
    for ax in axes:
        ax.set_xlabel("beam width (1: greedy)")
        ax.legend()
    fig.suptitle(title)
    save_figure(fig, path)
    return fig


def gradflow(run: Runner, results: dict) -> None:
    """The gradient by distance of a model that learned reverse (attention, GRU) beside
    one that did not (seq2seq, vanilla RNN), on 64 strings of length 20."""
    learned, failed = run.train("reverse_attention_gru"), run.train("reverse_seq2seq_rnn")
    pairs = run.out / "reverse_pairs.txt"
    if not run.dry_run:
        pairs.write_text("\n".join(reverse_pairs(GRADFLOW_PAIRS)) + "\n", encoding="utf-8")
    text = run("gradflow", "--model", learned, "--model", failed, "--label",
               "learned (attention, gru)", "--label", "did not (seq2seq, rnn)",
               "--pairs", str(pairs), "--by-distance", "--json", "--plot",
               str(run.out / FIGURES["gradflow_reverse"]), capture=True)
    if text:
        results["gradflow"] = json.loads(text)


def loss(run: Runner, results: dict) -> None:
    """The loss's reductions (``train --loss-reduction``) on reverse, the plain GRU, 2
    epochs each: exact match and token accuracy on the test part, by source length."""
    results["loss"] = reduction_table(run, "loss_", REDUCTIONS,
                                      ("exact_match", "token_accuracy"))


def reduction_table(run: Runner, prefix: str, reductions, scores: tuple,
                    more=None) -> dict:
    """For each loss reduction, the run ``prefix + reduction`` trained and evaluated by
    length: its ``scores``, the first of them by length, and ``more(folder)`` if given."""
    table = {}
    for reduction in reductions:
        folder = run.train(f"{prefix}{reduction}")
        found = run.evaluate("--model", folder, "--by-length")
        if found:
            table[reduction] = {
                **{name: found[0][name] for name in scores},
                "by_length": {b["label"]: b[scores[0]] for b in found[0]["by_length"]},
                **(more(folder) if more else {})}
    return table


def context(run: Runner, results: dict) -> None:
    """d2l's ``predict_seq2seq`` pitfall measured: the seed's decoder scored greedily with
    the encoder's context (as trained) and with its own state's (``--context-from
    decoder``), on reverse and on add."""
    table = {}
    for name in ("reverse_seq2seq_gru", "add_plain"):
        folder = run.train(name)
        for source in ("encoder", "decoder"):
            found = run.evaluate("--model", folder, "--context-from", source)
            if found:
                table.setdefault(name, {})[source] = {
                    "exact_match": found[0]["exact_match"],
                    "token_accuracy": found[0]["token_accuracy"]}
    results["context"] = table


def output_lengths(folder: str, **decoding) -> dict:
    """How long the outputs of the model in ``folder`` are on its test part (the library's
    own evaluation, which ``minis2s evaluate`` runs; ``decoding``: its beam, length
    penalty or context), as :func:`length_stats` counts them."""
    import minis2s
    from minis2s.evaluate import evaluate_model

    model = minis2s.load(folder, "numpy")
    found = evaluate_model(model.checkpoint, model.backend, **decoding)
    return length_stats(found.hyps, found.refs, model.checkpoint.data.num_steps)


def length_stats(hyps: list[str], refs: list[str], limit: int) -> dict:
    """Output tokens per reference token of ``hyps`` against ``refs`` (tokens joined by
    spaces), on all pairs and on the longest tenth of the references (those of at least
    ``long_from`` tokens), and the per cent of outputs of ``limit`` tokens (the step
    limit: ``<eos>`` never chosen)."""
    out = [len(h.split()) for h in hyps]
    ref = [len(r.split()) for r in refs]
    long_from = sorted(ref)[int(0.9 * len(ref))]
    longer = [i for i, n in enumerate(ref) if n >= long_from]
    return {"length_ratio": round(sum(out) / sum(ref), 4),
            "long_from": long_from, "long_pairs": len(longer),
            "long_length_ratio": round(sum(out[i] for i in longer)
                                       / sum(ref[i] for i in longer), 4),
            "at_limit": round(100.0 * sum(n >= limit for n in out) / len(out), 2)}


def french(run: Runner, results: dict) -> None:
    """On the corpus, the big preset: d2l's loss (``seq``: every token over the padded
    length) against the sum and the per-sequence mean, BLEU and the outputs' lengths;
    the context from the decoder's own state at prediction (d2l's ``predict_seq2seq``);
    and the beam sweep, BLEU and CPU seconds per width and length penalty, with the pairs
    where beam search loses what greedy got (one sentence BLEU against another)."""
    results["loss"] = reduction_table(run, "french_", FRENCH_REDUCTIONS, ("bleu", "chrf"),
                                      output_lengths)
    folder = run.folder("french_seq")
    found = run.evaluate("--model", folder, "--context-from", "decoder")
    if found:
        results["context_from_decoder"] = {"bleu": found[0]["bleu"],
                                           "chrf": found[0]["chrf"],
                                           **output_lengths(folder, context_from="decoder")}
    sweep = beam_sweep(run, folder, FRENCH_BEAMS, ("bleu", "chrf"))
    results["beam"] = sweep
    if not run.dry_run:  # how long beam search's outputs are, where it may lose to greedy
        results["beam_lengths"] = [
            {"beam": k, "length_penalty": alpha,
             **output_lengths(folder, beam=k, length_penalty=alpha)}
            for k, alpha in ((10, 0.0), (10, 0.75), (10, 1.0))]
        plot_beam(sweep, run.out / FIGURES["french_beam"], "bleu",
                  "corpus BLEU, test (0-100)",
                  "eng-fra, preset big (seq2seq + GRU, 20,000 pairs, 10 epochs)")


EXPERIMENTS = {"reverse": reverse_by_length, "add": add_reverse_source,
               "date": date_attention, "beam": beam, "gradflow": gradflow,
               "context": context, "loss": loss, "french": french}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/experiments", help="runs, results and "
                        "figures (default: runs/experiments)")
    parser.add_argument("--only", nargs="+", choices=list(EXPERIMENTS), metavar="NAME",
                        help=f"run only these: {', '.join(EXPERIMENTS)} (default: all)")
    parser.add_argument("--add-runs", nargs="+", choices=ADD_RUNS, default=ADD_RUNS,
                        metavar="RUN", help="add: train and score only these runs (two "
                        "processes can share the work; the figure needs both)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = Runner(out, args.dry_run)
    for name in args.only or EXPERIMENTS:
        print(f"# {name}", flush=True)
        results = {}
        if name == "add":
            add_reverse_source(run, results, args.add_runs)
        else:
            EXPERIMENTS[name](run, results)
        if not args.dry_run:
            results["commands"] = run.log[:]
            run.log.clear()
            part = "" if name != "add" or set(args.add_runs) == set(ADD_RUNS) else \
                "_" + "_".join(args.add_runs)
            (out / f"results_{name}{part}.json").write_text(json.dumps(results, indent=1) + "\n",
                                                      encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
