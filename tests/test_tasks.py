"""The generated tasks (minis2s/data/tasks.py): pairs drawn alike from one seed and
otherwise from another, parts that share no pair, strings in their length range, sums
that are sums, sources read backwards on request, every date format read back to its
ISO date by an independent parser, bad options refused in one line, and a checkpoint
that keeps its task."""

import json
import re
from datetime import date, datetime

import numpy as np
import pytest

from minis2s import checkpoint
from minis2s.backend import get_backend, to_numpy
from minis2s.checkpoint import Checkpoint, CheckpointError
from minis2s.cli import main
from minis2s.data import (
    DATE_FORMATS,
    TASKS,
    DataSpec,
    TaskSpec,
    load_task_data,
    make_task,
)
from minis2s.model import ModelConfig, init_params
from minis2s.presets import get_preset
from minis2s.settings import ConfigError

SMALL = {"train_size": 300}  # each task with few pairs, for speed


def task(name, **options):
    return make_task(name, {**SMALL, **options})


def spec_for(t, valid=40, test=50, **changes):
    return DataSpec(num_steps=t.min_num_steps(), num_examples=None, valid_size=valid,
                    test_size=test, min_freq=1, **changes)


def as_text(pairs):
    return [("".join(s), "".join(t)) for s, t in pairs]


# ---------------------------------------------------------------- seeds and parts


@pytest.mark.parametrize("name", list(TASKS))
def test_each_task_draws_the_same_pairs_from_the_same_seed(name):
    t = task(name, task_seed=5)
    assert t.pairs(400) == task(name, task_seed=5).pairs(400)
    a, b = load_task_data(t, spec_for(t)), load_task_data(t, spec_for(t))
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(a, part).src, getattr(b, part).src)
        np.testing.assert_array_equal(getattr(a, part).tgt, getattr(b, part).tgt)
    assert a.src_vocab.idx_to_token == b.src_vocab.idx_to_token
    # the first n of more pairs are the n pairs asked for alone
    assert t.pairs(5000)[:400] == t.pairs(400)


@pytest.mark.parametrize("name", list(TASKS))
def test_another_seed_draws_other_pairs(name):
    first = set(as_text(task(name, task_seed=0).pairs(400)))
    other = set(as_text(task(name, task_seed=1).pairs(400)))
    assert len(first & other) < 40, "two seeds drew mostly the same pairs"
    # and the split seed deals the same pairs out otherwise
    t = task(name)
    a, b = load_task_data(t, spec_for(t)), load_task_data(t, spec_for(t, split_seed=1))
    assert a.test.src_tokens != b.test.src_tokens
    assert sorted(map(tuple, a.test.src_tokens + a.valid.src_tokens + a.train.src_tokens)) \
        == sorted(map(tuple, b.test.src_tokens + b.valid.src_tokens + b.train.src_tokens))


@pytest.mark.parametrize("name", list(TASKS))
def test_the_parts_share_no_pair(name):
    t = task(name, train_size=2000)
    data = load_task_data(t, spec_for(t, valid=300, test=400))
    parts = {}
    for part in ("train", "valid", "test"):
        chosen = getattr(data, part)
        parts[part] = {(tuple(s), tuple(g)) for s, g in zip(chosen.src_tokens,
                                                             chosen.tgt_tokens)}
        assert len(parts[part]) == len(chosen)  # no pair twice inside a part either
    assert [len(parts[p]) for p in ("train", "valid", "test")] == [2000, 300, 400]
    assert not parts["train"] & parts["valid"]
    assert not parts["train"] & parts["test"]
    assert not parts["valid"] & parts["test"]
    # nor a source: each source has one target, so a shared source would be a shared pair
    sources = [s for p in parts.values() for s, _ in p]
    assert len(set(sources)) == len(sources)


# ---------------------------------------------------------------- copy and reverse


@pytest.mark.parametrize("name", ["copy", "reverse"])
@pytest.mark.parametrize(("lo", "hi", "k"), [(2, 4, 3), (5, 5, 10), (1, 12, 62)])
def test_strings_keep_their_lengths_and_symbols(name, lo, hi, k):
    t = task(name, min_len=lo, max_len=hi, symbols=k)
    pairs = t.pairs(min(600, t.capacity()))
    alphabet = set(("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")[:k])
    lengths = {len(s) for s, _ in pairs}
    assert min(lengths) >= lo and max(lengths) <= hi
    assert lengths == set(range(lo, hi + 1))  # every length is drawn
    assert all(set(s) <= alphabet for s, _ in pairs)
    assert set().union(*(set(s) for s, _ in pairs)) == alphabet  # every symbol is drawn
    for s, target in pairs:
        assert target == (s if name == "copy" else s[::-1])
    assert t.min_num_steps() == hi + 1


def test_a_task_hands_out_all_its_pairs_and_no_more():
    t = task("reverse", min_len=1, max_len=3, symbols=2)
    assert t.capacity() == 2 + 4 + 8
    assert sorted("".join(s) for s, _ in t.pairs(14)) == sorted(
        ["a", "b", "aa", "ab", "ba", "bb", "aaa", "aab", "aba", "abb", "baa", "bab", "bba",
         "bbb"])


# ---------------------------------------------------------------- add


@pytest.mark.parametrize("digits", [1, 2, 3, 5, 25])
def test_add_answers_are_the_sums(digits):
    t = task("add", digits=digits, train_size=min(300, 10 ** (2 * digits) // 2))
    pairs = as_text(t.pairs(t.train_size))
    lengths = set()
    for source, target in pairs:
        m = re.fullmatch(r"(0|[1-9]\d*)\+(0|[1-9]\d*)", source)  # no leading zeros
        assert m, source
        a, b = m.group(1), m.group(2)
        assert len(a) <= digits and len(b) <= digits
        lengths.update((len(a), len(b)))
        assert int(target) == int(a) + int(b) and target == str(int(target))
    assert lengths == set(range(1, digits + 1))  # numbers of every size are drawn
    assert t.min_num_steps() == 2 * digits + 2


@pytest.mark.parametrize("name", list(TASKS))
def test_reverse_source_reads_the_same_pairs_backwards(name):
    plain, turned = task(name), task(name, reverse_source=True)
    forward, backward = plain.pairs(300), turned.pairs(300)
    assert [s[::-1] for s, _ in forward] == [s for s, _ in backward]
    assert [t for _, t in forward] == [t for _, t in backward]
    for source, _ in backward[:20]:  # the text is the forward one; the model reads it back
        assert turned.source_tokens(turned.source_text(source)) == source
        assert turned.source_text(source) == plain.source_text(source[::-1])


def test_reverse_source_on_an_addition():
    t = task("add", reverse_source=True)
    assert t.source_tokens("123+45") == list("54+321")
    assert t.source_text(list("54+321")) == "123+45"
    for source, target in as_text(t.pairs(200)):
        a, b = source[::-1].split("+")
        assert int(target) == int(a) + int(b)


# ---------------------------------------------------------------- dates

# An independent reading of every format: a pattern of the text's shape (padding, two or
# four digits) and the strptime format that reads it; C-locale names, as the task writes.
DAY = r"(?:[1-9]|[12]\d|3[01])"
MONTH = r"(?:[1-9]|1[0-2])"
FULL = "(?:january|february|march|april|may|june|july|august|september|october|november|" \
    "december)"
ABBR = "(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
WEEKDAY = "(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
WKD = "(?:mon|tue|wed|thu|fri|sat|sun)"
READERS = [
    (rf"{FULL} {DAY}, \d{{4}}", "%B %d, %Y"),  # september 27, 1994
    (rf"{ABBR} {DAY}, \d{{4}}", "%b %d, %Y"),  # sep 27, 1994
    (rf"{DAY} {FULL} \d{{4}}", "%d %B %Y"),  # 27 september 1994
    (rf"{DAY} {ABBR} \d{{4}}", "%d %b %Y"),  # 27 sep 1994
    (rf"{FULL} {DAY}(?:st|nd|rd|th), \d{{4}}", "%B %d, %Y"),  # september 27th, 1994
    (rf"the {DAY}(?:st|nd|rd|th) of {FULL} \d{{4}}", "the %d of %B %Y"),
    (rf"{WEEKDAY}, {DAY} {FULL} \d{{4}}", "%A, %d %B %Y"),  # tuesday, 27 september 1994
    (rf"{WEEKDAY}, {FULL} {DAY}, \d{{4}}", "%A, %B %d, %Y"),  # tuesday, september 27, 1994
    (rf"{WKD}, {DAY} {ABBR} \d{{4}}", "%a, %d %b %Y"),  # tue, 27 sep 1994
    (rf"{MONTH}/{DAY}/\d\d", "%m/%d/%y"),  # 9/27/94
    (rf"{MONTH}/{DAY}/\d{{4}}", "%m/%d/%Y"),  # 9/27/1994
    (r"(?:0[1-9]|[12]\d|3[01])\.(?:0[1-9]|1[0-2])\.\d{4}", "%d.%m.%Y"),  # 27.09.1994
    (rf"{DAY}\.{MONTH}\.\d\d", "%d.%m.%y"),  # 27.9.94
    (rf"{DAY}-{ABBR}-\d\d", "%d-%b-%y"),  # 27-sep-94
]
SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}  # else "th"


def read_date(text: str, lo: int, hi: int) -> tuple[date, list[int]]:
    """The date a text names, by READERS alone, and the readers that read it (every
    reader whose shape fits must give the same date)."""
    found, which = set(), []
    for number, (shape, pattern) in enumerate(READERS):
        if not re.fullmatch(shape, text):
            continue
        plain = text
        suffix = re.search(r"(\d+)(st|nd|rd|th)\b", text)
        if suffix:
            assert SUFFIX.get(int(suffix.group(1)), "th") == suffix.group(2), text
            plain = text[:suffix.start(2)] + text[suffix.end(2):]
        when = datetime.strptime(plain, pattern).date()
        if "%y" in pattern:  # the one year of the range with these last two digits
            (year,) = [y for y in range(lo, hi + 1) if y % 100 == when.year % 100]
            when = when.replace(year=year)
        if "%A" in pattern or "%a" in pattern:  # strptime does not check the weekday
            assert when.strftime("%A" if "%A" in pattern else "%a").lower() == \
                text.split(",")[0], text
        found.add(when)
        which.append(number)
    assert len(found) == 1, f"{text!r} read as {found or 'nothing'}"
    return found.pop(), which


def test_the_readers_are_the_formats():
    assert len(READERS) == len(DATE_FORMATS)


@pytest.mark.parametrize(("lo", "hi"), [(1950, 2049), (1995, 1996), (1000, 1099)])
def test_every_date_format_reads_back_to_its_iso_date(lo, hi):
    t = task("date", min_year=lo, max_year=hi, train_size=3000)
    seen = set()
    for source, target in as_text(t.pairs(3000)):
        text = source.replace("_", " ")
        when, which = read_date(text, lo, hi)
        assert target == when.isoformat() and re.fullmatch(r"\d{4}-\d\d-\d\d", target)
        assert lo <= when.year <= hi
        seen.update(which)
        assert len(t.target_tokens(target)) == 10
        assert len(t.source_tokens(text)) <= t.min_num_steps() - 1
    assert seen == set(range(len(READERS))), "some format was never drawn"


def test_a_date_of_each_format_by_hand():
    """The docs' examples, written by hand: tuesday 27 september 1994 in every format."""
    from minis2s.data.tasks import date_fields

    fields = date_fields(date(1994, 9, 27))
    assert [f.format(**fields) for f in DATE_FORMATS] == [
        "september 27, 1994", "sep 27, 1994", "27 september 1994", "27 sep 1994",
        "september 27th, 1994", "the 27th of september 1994", "tuesday, 27 september 1994",
        "tuesday, september 27, 1994", "tue, 27 sep 1994", "9/27/94", "9/27/1994",
        "27.09.1994", "27.9.94", "27-sep-94"]


def test_two_digit_years_only_within_a_century():
    wide = task("date", min_year=1900, max_year=2049, train_size=3000)
    texts = [s.replace("_", " ") for s, _ in as_text(wide.pairs(3000))]
    two = [i for i, (_, p) in enumerate(READERS) if "%y" in p]
    assert not [t for t in texts if any(re.fullmatch(READERS[i][0], t) for i in two)]
    assert wide.capacity() == (date(2049, 12, 31) - date(1900, 1, 1)).days * 11 + 11 \
        - 2 * 31 * 150  # 11 formats; may is may in full and shortened, in two formats


def test_date_text_is_read_in_lower_case_with_spaces_as_one_token():
    t = task("date")
    assert t.source_tokens("  September 27,\t1994 ") == list("september_27,_1994")
    assert t.source_text(list("september_27,_1994")) == "september 27, 1994"
    assert t.target_text(list("1994-09-27")) == "1994-09-27"


@pytest.mark.parametrize("name", list(TASKS))
def test_text_and_tokens_round_trip(name):
    t = task(name)
    for source, target in t.pairs(200):
        assert t.source_tokens(t.source_text(source)) == source
        assert t.target_tokens(t.target_text(target)) == target


# ---------------------------------------------------------------- options and refusals


def test_defaults_fill_in_what_is_not_given():
    assert make_task("add", {}) == TaskSpec("add", {"digits": 3, "reverse_source": False},
                                            50000, 0)
    assert make_task("reverse", {"max_len": 20}).options == {
        "symbols": 10, "min_len": 3, "max_len": 20, "reverse_source": False}
    assert make_task("date", {}).options == {"min_year": 1950, "max_year": 2049,
                                             "reverse_source": False}
    assert make_task(None, {}) is None  # no task: the corpus
    base = make_task("copy", {"max_len": 7, "train_size": 99})
    assert make_task(None, {"task_seed": 3}, base=base) == TaskSpec(
        "copy", {"symbols": 10, "min_len": 3, "max_len": 7, "reverse_source": False}, 99, 3)
    # another task than the base's starts from its own defaults
    assert make_task("add", {}, base=base) == make_task("add", {})


def test_a_task_sets_the_data_settings_over_the_preset_and_flags_over_it():
    preset = get_preset("zh").with_task(make_task("add", {}), lr=0.01, test_size=10)
    assert (preset.num_steps, preset.num_examples, preset.valid_size, preset.test_size,
            preset.min_freq, preset.epochs, preset.lr) == (8, None, 1000, 10, 1, 10, 0.01)
    assert preset.embed_size == get_preset("zh").embed_size  # the model is the preset's


@pytest.mark.parametrize(("flags", "message"), [
    (["--digits", "4"], "--digits is an option of the generated tasks: give --task NAME "
                        "too (one of copy, reverse, add, date)"),
    (["--min-len", "2", "--max-len", "4"], "--min-len, --max-len are options of the "
                                           "generated tasks: give --task NAME too (one of "
                                           "copy, reverse, add, date)"),
    (["--task", "copy", "--digits", "4"], "--digits is not an option of task copy (its "
                                          "options: --symbols, --min-len, --max-len, "
                                          "--reverse-source)"),
    (["--task", "date", "--symbols", "4", "--max-len", "3"],
     "--symbols, --max-len are not options of task date (its options: --min-year, "
     "--max-year, --reverse-source)"),
    (["--task", "copy", "--min-len", "4", "--max-len", "3"],
     "--max-len must be >= --min-len (4), got 3"),
    (["--task", "date", "--min-year", "2000", "--max-year", "1999"],
     "--max-year must be >= --min-year (2000), got 1999"),
    (["--task", "reverse", "--symbols", "63"], "--symbols must be a whole number from 2 to "
                                               "62, got 63"),
    (["--task", "reverse", "--symbols", "1", "--min-len", "0"],
     "--symbols must be a whole number from 2 to 62, got 1; --min-len must be a whole "
     "number >= 1, got 0"),
    (["--task", "add", "--digits", "0"], "--digits must be a whole number from 1 to 30, "
                                         "got 0"),
    (["--task", "date", "--min-year", "999"], "--min-year must be a whole number from 1000 "
                                              "to 9999, got 999"),
    (["--task", "add", "--train-size", "0"], "--train-size must be a whole number >= 1, "
                                             "got 0"),
    (["--task", "add", "--task-seed", "-1"], "--task-seed must be a whole number >= 0, "
                                             "got -1"),
    (["--task", "add", "--num-steps", "7"], "--num-steps 7 is too short for task add: its "
                                            "sources have up to 7 tokens and its targets up "
                                            "to 4, each with <eos> after; give at least 8"),
    (["--task", "add", "--valid-size", "0.1"], "with --task, --valid-size is a count of "
                                               "pairs, got 0.1"),
    (["--task", "add", "--examples", "100"], "--examples counts corpus lines; with --task "
                                             "the training pairs are --train-size"),
    (["--task", "add", "--digits", "1"], "task add has 100 distinct pairs with digits 1, "
                                         "reverse_source off; 52,000 asked (train 50,000, "
                                         "valid 1,000, test 1,000)"),
    (["--task", "copy", "--data", "fra.txt"], "--data names a corpus to read, and --task "
                                              "copy makes pairs of its own: give one or the "
                                              "other"),
])
def test_bad_task_options_are_one_error_line(tmp_path, capsys, flags, message):
    """Refused before any pair is drawn and before the output folder is made."""
    out = tmp_path / "run"
    assert main(["train", *flags, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"minis2s: error: {message}"]
    assert not out.exists()


def test_an_unknown_task_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", "--task", "multiply", "--out", str(tmp_path / "run")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "argument --task: invalid choice: 'multiply'" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_drawing_more_pairs_than_a_task_has_is_refused():
    t = task("copy", min_len=1, max_len=2, symbols=3)
    with pytest.raises(Exception) as caught:
        t.pairs(13)
    assert str(caught.value) == ("task copy has 12 distinct pairs with symbols 3, min_len 1, "
                                 "max_len 2, reverse_source off; 13 asked")


# ---------------------------------------------------------------- checkpoints


def _checkpoint(t: TaskSpec) -> Checkpoint:
    data = load_task_data(t, spec_for(t))
    cfg = ModelConfig(src_vocab_size=len(data.src_vocab), tgt_vocab_size=len(data.tgt_vocab),
                      embed_size=4, num_hiddens=6, num_layers=1, dropout=0.0)
    params = init_params(cfg, get_backend("numpy"), np.random.default_rng(0))
    return Checkpoint({k: to_numpy(v) for k, v in params.items()}, cfg, data.spec,
                      data.src_vocab, data.tgt_vocab, {"preset": "zh"}, task=t)


def test_a_checkpoint_keeps_its_task(tmp_path):
    t = make_task("date", {"min_year": 1990, "max_year": 1999, "reverse_source": True,
                           "train_size": 300, "task_seed": 7})
    path = checkpoint.save(tmp_path / "ck.npz", _checkpoint(t))
    back = checkpoint.load(path)
    assert back.task == t and back.task.options["reverse_source"] is True
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
    assert meta["task"] == {"name": "date", "train_size": 300, "seed": 7, "options": {
        "min_year": 1990, "max_year": 1999, "reverse_source": True}}
    # a corpus model's file has no task entry, and reads back with none
    corpus = Checkpoint(back.params, back.config, back.data, back.src_vocab, back.tgt_vocab)
    path = checkpoint.save(tmp_path / "corpus.npz", corpus)
    with np.load(path, allow_pickle=False) as npz:
        assert "task" not in json.loads(str(npz["meta"]))
    assert checkpoint.load(path).task is None


@pytest.mark.parametrize(("task_meta", "message"), [
    ({"name": "mul", "train_size": 300, "seed": 0, "options": {}},
     "task name must be one of copy, reverse, add, date, got 'mul'"),
    ({"name": "add", "train_size": 300, "seed": 0, "options": {"reverse_source": False}},
     "task add lacks options digits"),
    ({"name": "add", "train_size": 300, "seed": 0,
      "options": {"digits": 3, "symbols": 4, "reverse_source": False}},
     "task symbols is not an option of task add (its options: task digits, task "
     "reverse_source)"),
    ({"name": "add", "train_size": 0, "seed": 0,
      "options": {"digits": 3, "reverse_source": False}},
     "task train_size must be a whole number >= 1, got 0"),
    ({"name": "add", "seed": 0, "options": {"digits": 3, "reverse_source": False}},
     "task lacks train_size"),
    ({"name": "add", "train_size": 300, "seed": 0,
      "options": {"digits": 9, "reverse_source": False}},
     "--num-steps 8 is too short for task add: its sources have up to 19 tokens and its "
     "targets up to 10, each with <eos> after; give at least 20"),
    ("add", "task is not a JSON object"),
])
def test_a_spoiled_task_in_a_checkpoint_is_refused(tmp_path, capsys, task_meta, message):
    from tests.test_checkpoint import read_meta, rewrite, set_meta

    path = checkpoint.save(tmp_path / "ck.npz", _checkpoint(task("add")))
    meta = read_meta(path)
    meta["task"] = task_meta
    rewrite(path, set_meta(meta))
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(path)
    assert str(caught.value) == f"{path}: {message}"
    assert main(["translate", "--model", str(path), "1+2"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"minis2s: error: {path}: {message}"]


def test_a_vocabulary_of_characters_spells_every_pair():
    """min_freq 1 and a closed alphabet: no test source or target holds <unk>."""
    for name in TASKS:
        t = task(name, train_size=2000)
        data = load_task_data(t, spec_for(t, valid=0, test=500))
        assert not (data.test.src == data.src_vocab.unk).any()
        assert not (data.test.tgt == data.tgt_vocab.unk).any()


def test_a_preset_refuses_a_task_its_sizes_cannot_hold():
    with pytest.raises(ConfigError, match="too short for task copy"):
        get_preset("zh").with_task(make_task("copy", {"max_len": 30}), num_steps=20)
