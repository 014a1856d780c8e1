"""Generated tasks: sequence pairs made in-process from a random seed, in place of the
corpus.

Four tasks, each a :class:`Task` in :data:`TASKS`:

* ``copy`` — a string of random symbols, copied: ``cabbage`` → ``cabbage``;
* ``reverse`` — the same strings, reversed: ``cabbage`` → ``egabbac``;
* ``add`` — decimal addition: ``123+45`` → ``168``;
* ``date`` — a date as people write it, in one of :data:`DATE_FORMATS`, to ISO 8601:
  ``september 27, 1994`` → ``1994-09-27``.

Every task reads and writes **characters**: each character is a token (whitespace is
dropped, except in a date, where a run of it is one token ``_``). A character vocabulary is
small and closed, so every string of the task, seen in training or not, is spelled in
known tokens (a date's year or an addend as a word token would be ``<unk>`` whenever that
year or number was never drawn for training); and every output character has source
characters it comes from, which is what an attention decoder learns to align.

A :class:`TaskSpec` (the task's name, its options, the number of training pairs and the
random seed) names one data set exactly. :meth:`TaskSpec.pairs` draws distinct pairs from
the seed (no source is drawn twice, so no pair is in two parts), and
:func:`load_task_data` splits them into training, validation and test parts and indexes
them as :func:`~minis2s.data.load_data` does the corpus's lines, as a
:class:`~minis2s.data.DataSpec` says. Everything downstream (batches, training, decoding,
checkpoints, scores) takes a task's data as it takes the corpus's.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from ..settings import CHOICES, ConfigError, check, flag
from ..wording import plural
from .corpus import DataSpec, Part, TranslationData, make_part, split_pairs
from .errors import DataError
from .text import Pair, Tokens
from .vocab import Vocab

SYMBOLS = string.ascii_lowercase + string.ascii_uppercase + string.digits  # --symbols K: K first
SPACE = "_"  # the token of a space inside a date ("27_sep_1994")
CHUNK = 4096  # candidates drawn at a time; pairs are the first distinct ones of the stream
SHARED = {"reverse_source": False}  # every task's options, besides its own
HELD_OUT = 1000  # a task's default validation and test pairs, each


def read_characters(text: str) -> Tokens:
    """Each character a token, whitespace dropped: ``"123 + 45"`` -> ``1 2 3 + 4 5``."""
    return [c for c in text if not c.isspace()]


class Task:
    """One kind of task: its options with their defaults, how it draws pairs and how it
    reads and writes text. Subclasses fill in :meth:`draw`, :meth:`capacity` and
    :meth:`max_lengths`."""

    name = ""
    summary = ""  # one line, for --help and the docs
    defaults: dict = {}  # its own options and their values when not given
    train_size = 20000  # training pairs when --train-size is not given
    epochs = 10  # the epochs a run of this task trains when --epochs is not given

    def problems(self, options: Mapping) -> list[str]:
        """What is wrong between options, each rule of its own already met."""
        return []

    def capacity(self, options: Mapping) -> int:
        """How many distinct pairs the task has with these options."""
        raise NotImplementedError

    def max_lengths(self, options: Mapping) -> tuple[int, int]:
        """The most tokens a source and a target can have (``<eos>`` not counted)."""
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, options: Mapping,
             count: int) -> list[tuple[str, str]]:
        """``count`` (source, target) texts drawn from ``rng``; some may repeat."""
        raise NotImplementedError

    def read(self, text: str) -> Tokens:
        """A source or target text as tokens."""
        return read_characters(text)

    def write(self, tokens) -> str:
        """Tokens as the task's text (the inverse of :meth:`read`)."""
        return "".join(tokens)


class Strings(Task):
    """Random strings of ``symbols`` symbols (``a``-``z``, then ``A``-``Z``, then
    ``0``-``9``), of lengths ``min_len`` to ``max_len``: the length drawn uniformly, then
    each symbol."""

    defaults = {"symbols": 10, "min_len": 3, "max_len": 10}
    turn = staticmethod(lambda s: s)  # the target made of the source

    def problems(self, options):
        if options["max_len"] < options["min_len"]:
            return [f"--max-len must be >= --min-len ({options['min_len']}), got "
                    f"{options['max_len']}"]
        return []

    def capacity(self, options):
        k = options["symbols"]
        return sum(k ** n for n in range(options["min_len"], options["max_len"] + 1))

    def max_lengths(self, options):
        return options["max_len"], options["max_len"]

    def draw(self, rng, options, count):
        lo, hi, k = options["min_len"], options["max_len"], options["symbols"]
        alphabet = np.array(list(SYMBOLS[:k]))
        lengths = rng.integers(lo, hi + 1, size=count)
        symbols = rng.integers(0, k, size=(count, hi))
        sources = ["".join(alphabet[row[:n]]) for n, row in zip(lengths, symbols)]
        return [(s, self.turn(s)) for s in sources]


class Copy(Strings):
    name = "copy"
    summary = "random symbol strings, copied (abcab -> abcab)"


class Reverse(Strings):
    name = "reverse"
    summary = "random symbol strings, reversed (abcab -> bacba)"
    turn = staticmethod(lambda s: s[::-1])


def _numbers(rng: np.random.Generator, digits: int, count: int) -> list[int]:
    """``count`` whole numbers: the number of digits drawn uniformly from 1 to
    ``digits``, then each digit (the first not 0, unless the number has one digit)."""
    lengths = rng.integers(1, digits + 1, size=count)
    first = rng.integers(1, 10, size=count)
    single = rng.integers(0, 10, size=count)
    rest = rng.integers(0, 10, size=(count, max(digits - 1, 1)))
    if digits <= 18:  # int64 holds them: the same numbers, without a loop in Python
        col = np.arange(rest.shape[1])[None, :]
        used = col < (lengths - 1)[:, None]
        scale = 10 ** np.maximum(lengths[:, None] - 2 - col, 0)
        tail = (rest * scale * used).sum(axis=1)
        values = np.where(lengths == 1, single, first * 10 ** (lengths - 1) + tail)
        return values.tolist()
    out = []
    for n, f, s, r in zip(lengths, first, single, rest):
        out.append(int(s) if n == 1 else int(str(f) + "".join(map(str, r[:n - 1]))))
    return out


class Add(Task):
    name = "add"
    summary = "decimal addition, digits and '+' as tokens (123+45 -> 168)"
    defaults = {"digits": 3}
    train_size = 50000

    def capacity(self, options):
        return 10 ** (2 * options["digits"])

    def max_lengths(self, options):
        d = options["digits"]
        return 2 * d + 1, d + 1

    def draw(self, rng, options, count):
        a = _numbers(rng, options["digits"], count)
        b = _numbers(rng, options["digits"], count)
        return [(f"{x}+{y}", str(x + y)) for x, y in zip(a, b)]


MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# The formats of the date task, each a template of fields: {month} the month's name,
# {mon} its first three letters, {weekday} the day's name, {wkd} its first three letters,
# {d} the day of the month, {dd} the same on two digits, {dth} with its ordinal suffix
# (1st, 2nd, 3rd, 4th, 11th, 21st), {m} the month's number, {mm} on two digits, {yyyy}
# the year, {yy} its last two digits. Slashes are always month/day (American), dots and
# dashes day-month (European), so that no text names two dates.
DATE_FORMATS = (
    "{month} {d}, {yyyy}",  # september 27, 1994
    "{mon} {d}, {yyyy}",  # sep 27, 1994
    "{d} {month} {yyyy}",  # 27 september 1994
    "{d} {mon} {yyyy}",  # 27 sep 1994
    "{month} {dth}, {yyyy}",  # september 27th, 1994
    "the {dth} of {month} {yyyy}",  # the 27th of september 1994
    "{weekday}, {d} {month} {yyyy}",  # tuesday, 27 september 1994
    "{weekday}, {month} {d}, {yyyy}",  # tuesday, september 27, 1994
    "{wkd}, {d} {mon} {yyyy}",  # tue, 27 sep 1994
    "{m}/{d}/{yy}",  # 9/27/94
    "{m}/{d}/{yyyy}",  # 9/27/1994
    "{dd}.{mm}.{yyyy}",  # 27.09.1994
    "{d}.{m}.{yy}",  # 27.9.94
    "{d}-{mon}-{yy}",  # 27-sep-94
)
# the widest each field can be
FIELD_WIDTHS = {"month": 9, "mon": 3, "weekday": 9, "wkd": 3, "d": 2, "dd": 2, "dth": 4,
                "m": 2, "mm": 2, "yyyy": 4, "yy": 2}


def ordinal(day: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``12th``, ``13th``, ``21st`` ..."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10,
                                                                                 "th")
    return f"{day}{suffix}"


def date_fields(when: date) -> dict[str, str]:
    """Every field of :data:`DATE_FORMATS` for one date."""
    month, weekday = MONTHS[when.month - 1], WEEKDAYS[when.weekday()]
    return {"month": month, "mon": month[:3], "weekday": weekday, "wkd": weekday[:3],
            "d": str(when.day), "dd": f"{when.day:02d}", "dth": ordinal(when.day),
            "m": str(when.month), "mm": f"{when.month:02d}", "yyyy": f"{when.year:04d}",
            "yy": f"{when.year % 100:02d}"}


class Dates(Task):
    """A day drawn uniformly from ``min_year``-01-01 to ``max_year``-12-31, then one of
    the formats in use, uniformly. The formats with a two-digit year are in use only when
    the years span at most a century (then two digits name one year of the range)."""

    name = "date"
    summary = "dates as people write them, to YYYY-MM-DD (september 27, 1994 -> 1994-09-27)"
    defaults = {"min_year": 1950, "max_year": 2049}

    def problems(self, options):
        if options["max_year"] < options["min_year"]:
            return [f"--max-year must be >= --min-year ({options['min_year']}), got "
                    f"{options['max_year']}"]
        return []

    @staticmethod
    def formats(options) -> tuple[str, ...]:
        """The formats in use with these options."""
        if options["max_year"] - options["min_year"] < 100:
            return DATE_FORMATS
        return tuple(f for f in DATE_FORMATS if "{yy}" not in f)

    @staticmethod
    def _days(options) -> tuple[date, int]:
        first = date(options["min_year"], 1, 1)
        return first, (date(options["max_year"], 12, 31) - first).days + 1

    def capacity(self, options):
        formats = self.formats(options)
        _, days = self._days(options)
        # May is "may" in full and shortened: a format and its twin with {mon} for
        # {month} write every day of May alike
        twins = sum(1 for f in formats if "{month}" in f
                    and f.replace("{month}", "{mon}") in formats)
        mays = 31 * (options["max_year"] - options["min_year"] + 1)
        return days * len(formats) - twins * mays

    def max_lengths(self, options):
        widest = 0
        for template in self.formats(options):
            text = template
            for name, width in FIELD_WIDTHS.items():
                text = text.replace("{" + name + "}", "x" * width)
            widest = max(widest, len(text))
        return widest, len("yyyy-mm-dd")

    def draw(self, rng, options, count):
        formats = self.formats(options)
        first, days = self._days(options)
        offsets = rng.integers(0, days, size=count)
        chosen = rng.integers(0, len(formats), size=count)
        out = []
        for offset, f in zip(offsets, chosen):
            when = first + timedelta(days=int(offset))
            out.append((formats[f].format(**date_fields(when)), when.isoformat()))
        return out

    def read(self, text):
        """Lower case, runs of whitespace as one ``_``, every other character a token."""
        return list(" ".join(text.lower().split()).replace(" ", SPACE))

    def write(self, tokens):
        return "".join(tokens).replace(SPACE, " ")


TASKS: dict[str, Task] = {t.name: t for t in (Copy(), Reverse(), Add(), Dates())}
CHOICES["task"] = TASKS
OPTIONS = ("symbols", "min_len", "max_len", "digits", "min_year", "max_year",
           "reverse_source")  # every task option, as TASK_FIELDS names them


def options_of(name: str) -> tuple[str, ...]:
    """The options task ``name`` takes: its own, then the shared ones."""
    return (*TASKS[name].defaults, *SHARED)


@dataclass(frozen=True)
class TaskSpec:
    """One generated data set: task ``name`` with ``options`` (every option the task
    takes, defaults filled in), ``train_size`` training pairs and the random seed
    ``seed`` of the pairs drawn. Made by :func:`make_task`, which checks it."""

    name: str
    options: Mapping = field(default_factory=dict)
    train_size: int = 0
    seed: int = 0

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def task(self) -> Task:
        return TASKS[self.name]

    def to_dict(self) -> dict:
        """As a checkpoint stores it: ``name``, ``train_size``, ``seed``, ``options``."""
        return {"name": self.name, "train_size": self.train_size, "seed": self.seed,
                "options": dict(self.options)}

    @classmethod
    def from_dict(cls, found, name=str) -> TaskSpec:
        """The spec :meth:`to_dict` wrote, checked as :func:`make_task` checks one;
        ``name(field)`` names a field in the message (default: the field itself)."""
        if not isinstance(found, dict):
            raise ConfigError("task is not a JSON object")
        missing = [k for k in ("name", "train_size", "seed", "options") if k not in found]
        if missing:
            raise ConfigError(f"task lacks {', '.join(missing)}")
        options = found["options"]
        if not isinstance(options, dict):
            raise ConfigError("task options is not a JSON object")
        task = found["name"]
        check({"task": task}, name=name)
        lacking = [k for k in options_of(task) if k not in options]
        if lacking:
            raise ConfigError(f"task {task} lacks options {', '.join(lacking)}")
        return make_task(task, {**options, "train_size": found["train_size"],
                                "task_seed": found["seed"]}, name_field=name)

    # --- text: what the model reads and writes, and back

    def source_tokens(self, text: str) -> Tokens:
        """A source as the model reads it: the task's tokens, reversed with
        ``reverse_source``."""
        tokens = self.task.read(text)
        return tokens[::-1] if self.options["reverse_source"] else tokens

    def target_tokens(self, text: str) -> Tokens:
        return self.task.read(text)

    def source_text(self, tokens) -> str:
        """The text whose :meth:`source_tokens` are ``tokens`` (the reversal undone)."""
        tokens = list(tokens)
        return self.task.write(tokens[::-1] if self.options["reverse_source"] else tokens)

    def target_text(self, tokens) -> str:
        return self.task.write(tokens)

    # --- sizes

    def min_num_steps(self) -> int:
        """The fewest tokens per sequence that hold every source and target with its
        ``<eos>``."""
        return max(self.task.max_lengths(self.options)) + 1

    def capacity(self) -> int:
        return self.task.capacity(self.options)

    def problems(self, valid_size, test_size, num_steps: int) -> list[str]:
        """What the data settings of a run leave impossible for this task: held-out sizes
        that are not counts, sequences cut short, more pairs asked than there are."""
        found = []
        for what, size in (("--valid-size", valid_size), ("--test-size", test_size)):
            if isinstance(size, float):
                found.append(f"with --task, {what} is a count of pairs, got {size}")
        least = self.min_num_steps()
        if num_steps < least:
            src, tgt = self.task.max_lengths(self.options)
            found.append(f"--num-steps {num_steps} is too short for task {self.name}: its "
                         f"sources have up to {src} tokens and its targets up to {tgt}, "
                         f"each with <eos> after; give at least {least}")
        if not found:
            asked = self.train_size + valid_size + test_size
            have = self.capacity()
            if asked > have:
                found.append(f"task {self.name} has {plural(have, 'distinct pair', ',')} "
                             f"with {self.describe_options()}; {asked:,} asked (train "
                             f"{self.train_size:,}, valid {valid_size:,}, test "
                             f"{test_size:,})")
        return found

    # --- the pairs

    def pairs(self, count: int) -> list[Pair]:
        """``count`` distinct pairs as tokens: the first ``count`` distinct sources drawn
        (in chunks of :data:`CHUNK`) from the random seed, each with its target. The first
        ``n`` of ``count`` pairs are the ``n`` pairs asked for alone. Raises
        :class:`DataError` if the task has fewer, or if they are so few beyond ``count``
        that drawing does not find them."""
        have = self.capacity()
        if count > have:
            raise DataError(f"task {self.name} has {plural(have, 'distinct pair', ',')} with "
                            f"{self.describe_options()}; {count:,} asked")
        rng = np.random.default_rng(self.seed)
        found: dict[str, str] = {}  # source -> target, in the order drawn
        drawn, most = 0, 200 * count + 1_000_000
        while len(found) < count:
            if drawn >= most:
                raise DataError(f"drew {drawn:,} {self.name} pairs and found only "
                                f"{len(found):,} distinct ones of the {count:,} asked "
                                f"({have:,} exist with {self.describe_options()}); ask for "
                                "fewer pairs or widen the task")
            for source, target in self.task.draw(rng, self.options, CHUNK):
                if source not in found:
                    found[source] = target
                    if len(found) == count:
                        break
            drawn += CHUNK
        return [(self.source_tokens(s), self.target_tokens(t)) for s, t in found.items()]

    # --- words

    def describe_options(self) -> str:
        """``digits 3, reverse_source off``."""
        def shown(value):
            return ("on" if value else "off") if isinstance(value, bool) else f"{value}"

        return ", ".join(f"{k} {shown(v)}" for k, v in self.options.items())

    def describe(self) -> str:
        """``add (digits 3, reverse_source off; 50,000 training pairs, seed 0)``."""
        return (f"{self.name} ({self.describe_options()}; "
                f"{plural(self.train_size, 'training pair', ',')}, seed {self.seed})")


def make_task(name: str | None, given: Mapping, base: TaskSpec | None = None,
              name_field=flag) -> TaskSpec | None:
    """The task a run asks for: task ``name`` with the options ``given`` (field names of
    :data:`minis2s.settings.TASK_FIELDS` other than ``task``: ``train_size``,
    ``task_seed`` and the tasks' options; a None value counts as not given), the others
    taken from ``base`` where it is the same task (resuming), else from the task's
    defaults. ``name`` None keeps ``base`` (None: no task, the corpus), with the options
    given applied to it. Every problem is named, by ``name_field(field)`` (default: its
    flag), in one :class:`ConfigError`."""
    given = {k: v for k, v in given.items() if v is not None}
    if name is None and base is None:
        if given:
            raise ConfigError(f"{', '.join(flag(k) for k in given)} "
                              f"{'is an option' if len(given) == 1 else 'are options'} of "
                              f"the generated tasks: give --task NAME too (one of "
                              f"{', '.join(TASKS)})")
        return None
    if name is None:
        name = base.name
    check({"task": name}, name=name_field)
    task = TASKS[name]
    own = options_of(name)
    foreign = [k for k in given if k in OPTIONS and k not in own]
    if foreign:
        raise ConfigError(f"{', '.join(name_field(k) for k in foreign)} "
                          f"{'is not an option' if len(foreign) == 1 else 'are not options'}"
                          f" of task {name} (its options: "
                          f"{', '.join(name_field(k) for k in own)})")
    unknown = sorted(k for k in given if k not in OPTIONS and k not in ("train_size",
                                                                          "task_seed"))
    if unknown:
        raise ConfigError(f"unknown task settings {', '.join(unknown)}")
    if base is not None and base.name == name:
        start = {**base.options, "train_size": base.train_size, "task_seed": base.seed}
    else:
        start = {**task.defaults, **SHARED, "train_size": task.train_size, "task_seed": 0}
    values = {**start, **given}
    check(values, name=name_field)
    options = {k: values[k] for k in own}
    problems = task.problems(options)
    if problems:
        raise ConfigError("; ".join(problems))
    return TaskSpec(name, options, values["train_size"], values["task_seed"])


def task_preset_fields(task: TaskSpec) -> dict:
    """The run settings a task sets, over a preset's, before flags: tokens per sequence
    to hold its longest, :data:`HELD_OUT` validation and test pairs, every token in the
    vocabulary (``min_freq`` 1), no corpus lines (``num_examples`` None) and its
    epochs."""
    return {"num_steps": task.min_num_steps(), "num_examples": None, "valid_size": HELD_OUT,
            "test_size": HELD_OUT, "min_freq": 1, "epochs": task.task.epochs}


def load_task_data(task: TaskSpec, spec: DataSpec) -> TranslationData:
    """The task's pairs, ``task.train_size`` + ``spec.valid_size`` + ``spec.test_size``
    of them, split into parts by a permutation drawn from ``spec.split_seed`` (as the
    corpus's lines are) and indexed as ``spec`` says; vocabularies come from the training
    part."""
    problems = task.problems(spec.valid_size, spec.test_size, spec.num_steps)
    if spec.num_examples is not None:
        problems.append("--examples counts corpus lines; a task's training pairs are "
                        "--train-size")
    if problems:
        raise DataError("; ".join(problems))
    pairs = task.pairs(task.train_size + spec.valid_size + spec.test_size)
    split = split_pairs(pairs, spec.valid_size, spec.test_size, spec.split_seed)
    src_vocab = Vocab(split.train_src, min_freq=spec.min_freq)
    tgt_vocab = Vocab(split.train_tgt, min_freq=spec.min_freq)

    def part(src, tgt) -> Part:
        return make_part(src, tgt, src_vocab, tgt_vocab, spec.num_steps)

    return TranslationData(src_vocab=src_vocab, tgt_vocab=tgt_vocab, spec=spec,
                           train=part(split.train_src, split.train_tgt),
                           valid=part(split.valid_src, split.valid_tgt),
                           test=part(split.test_src, split.test_tgt), task=task)
