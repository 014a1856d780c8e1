"""The Chinese pages (docs/zh/) stay in step with the English ones.

The prose is written for a Chinese reader, not translated line by line, so these tests
compare what must not change: code blocks, commands, the numbers of the prose (in their
order, section by section), what each number counts where a word or sign says so (a per
cent, a number of times, a factor written ×, a number of steps), figures and links.
They also check that each page uses d2l-zh's own terms (隐状态, 门控循环单元, 记忆元, ...)
and none of the other translations d2l-zh does not use.

What they cannot check is the meaning the words around a number give it, beyond those
units. A norm called a ratio (the gradient's norm at the first step, 6e−12, said to be
the ratio of the first step's to the last's), a ratio turned round (first / last said as
last / first), "less" for "more", or a table column's heading reworded so that it names
another quantity (its numbers unchanged) all pass: the numbers and their units are the
same. ``test_what_the_number_check_cannot_see`` plants such a change and shows it pass;
a reviewer reading both pages is the check for it (docs/contributing.md says so).
"""

import difflib
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ZH = DOCS / "zh"
PAGES = ("README.md", "bptt.md", "symbols.md", "exercises.md", "experiments.md")

FENCE = re.compile(r"^(`{3,})[^\n`]*\n.*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")
LINK = re.compile(r"(!?)\[[^\]\n]*\]\(([^)\s]+)\)")
# 0.43, 2.2e−6 (the English writes the Unicode minus), 1e-12, 200,000, 42%
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:e[−-]?\d+)?%?")
CJK = re.compile(r"[\u4e00-\u9fff]")
TABLE_ROW_LABELS = ("| vanilla RNN", "| GRU", "| LSTM")
TABLE_ROWS = 17  # rows of measurements in docs/bptt.md's tables


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def fenced_blocks(text: str) -> list[str]:
    """Every fenced code block, fences and language tag included."""
    return [m.group(0) for m in FENCE.finditer(text)]


def without_fences(text: str) -> str:
    return FENCE.sub("", text)


def indented_blocks(text: str) -> list[str]:
    """Indented code blocks (four spaces after a blank line), outside fenced blocks."""
    blocks, current, previous_blank = [], [], True
    for line in without_fences(text).splitlines():
        if line.startswith("    ") and (current or previous_blank):
            current.append(line)
        elif current and not line.strip():
            current.append(line)
        else:
            if current:
                blocks.append("\n".join(current).rstrip())
            current = []
        previous_blank = not line.strip()
    if current:
        blocks.append("\n".join(current).rstrip())
    return blocks


def section(text: str, heading: str) -> str:
    """The text under a ``## heading``, up to the next heading of that level."""
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"no section '## {heading}'"
    return m.group(1)


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def code_spans(text: str) -> set[str]:
    """Inline code, whitespace normalised (a span may be wrapped across lines)."""
    return {" ".join(s.split()) for s in CODE_SPAN.findall(without_fences(text))}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = without_fences(read(path))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def links(path: Path) -> list[tuple[bool, str]]:
    """(is an image, target) for every link outside code."""
    text = CODE_SPAN.sub("", without_fences(read(path)))
    return [(bool(m.group(1)), m.group(2)) for m in LINK.finditer(text)]


def local(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)


# (a) the pages exist


@pytest.mark.parametrize("page", PAGES)
def test_page_exists(page):
    assert (ZH / page).is_file(), f"docs/zh/{page} is missing"


# (b) code blocks and commands, verbatim


@pytest.mark.parametrize("page", ["bptt.md", "exercises.md", "experiments.md"])
def test_every_code_block_of_the_english_page_is_in_the_chinese_one(page):
    en, zh = read(DOCS / page), read(ZH / page)
    blocks = fenced_blocks(en)
    assert len(blocks) >= 3, f"found too few fenced blocks in docs/{page}: is the scan broken?"
    missing = [b for b in blocks if b not in zh]
    assert not missing, f"docs/zh/{page} lacks these code blocks of docs/{page}:\n\n" + \
        "\n\n".join(missing)


def test_every_formula_block_of_the_tutorial_is_in_the_chinese_one():
    en, zh = read(DOCS / "bptt.md"), read(ZH / "bptt.md")
    blocks = indented_blocks(en)
    assert len(blocks) >= 4, "found too few indented blocks in docs/bptt.md"
    missing = [b for b in blocks if b not in zh]
    assert not missing, "docs/zh/bptt.md lacks these indented blocks of docs/bptt.md:\n\n" + \
        "\n\n".join(missing)


@pytest.mark.parametrize("heading", ["Set-up", "Command line"])
def test_readme_command_blocks_are_in_the_chinese_readme(heading):
    blocks = fenced_blocks(section(read(ROOT / "README.md"), heading))
    assert blocks, f"README.md's '{heading}' section has no code block"
    assert blocks[0] in read(ZH / "README.md"), \
        f"docs/zh/README.md lacks README.md's '{heading}' block:\n{blocks[0]}"


# (c) measured numbers, in the same order


def english_table_rows() -> list[list[str]]:
    rows = [cells(line)[1:] for line in read(DOCS / "bptt.md").splitlines()
            if line.startswith(TABLE_ROW_LABELS)]
    assert len(rows) == TABLE_ROWS, \
        f"expected {TABLE_ROWS} rows of measurements in docs/bptt.md, got {len(rows)}"
    for row in rows:
        assert all(NUMBER.fullmatch(c) for c in row), f"not a row of numbers: {row}"
    return rows


def numeric_table_rows(text: str) -> list[list[str]]:
    """Table rows whose cells after the first are all single numbers."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or re.fullmatch(r"[|\-: ]+", line.strip()):
            continue
        row = cells(line)[1:]
        if row and all(NUMBER.fullmatch(c) for c in row):
            rows.append(row)
    return rows


def test_measurement_tables_match_the_english_ones():
    assert numeric_table_rows(read(ZH / "bptt.md")) == english_table_rows()


# Numbers in the prose, in order. The Chinese pages are written for their reader, not
# translated paragraph by paragraph, so their paragraphs do not pair one for one with the
# English ones; the sections do, by their headings (SECTION_PAIRS; the symbol map's
# first six sections, d2l-zh's notation, have no English twin). Within each pair of
# sections the Chinese prose must give the English numbers in the English order. What
# may legitimately differ is tolerated as follows:
# - formatting: thousands separators (200,000 = 200000), the Unicode minus and the
#   hyphen (1e−12 = 1e-12), full-width digits, a per cent sign (42% = 42 % = 42);
# - units and words around a number (2-vCPU, 2 个 vCPU; 40 steps, 40 个时间步): only the
#   numbers are compared;
# - digits inside names (minis2s, d2l, float64, weight_ih_l0) and in subscripts
#   (H_{t−1}): they are not quantities;
# - code: fenced and indented blocks and inline code are compared verbatim by the other
#   tests of this file, and left out here;
# - a passage the Chinese words in another order, or adds for its reader (d2l-zh's
#   section numbers and formulas): listed in READINGS with the numbers it stands for, in
#   the English order. The passage must be found as written (line breaks aside), so a
#   changed number inside it fails the test too.

PROSE_NUMBER = re.compile(
    r"(?<![A-Za-z_\d.,])(\d+(?:,\d{3})*(?:\.\d+)?(?:e[−-]?\d+)?)([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]*)%?"
    r"(?![A-Za-z_\d]|\.\d)")
SUPERSCRIPTS = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")

# (English page, Chinese page, pairs of headings: the English one, the Chinese one, each
# matched by its start; "" is the text before the first "## " heading)
SECTION_PAIRS = {
    "bptt.md": ("bptt.md", "zh/bptt.md", [
        ("", ""), ("1. ", "1. "), ("2. ", "2. "), ("3. ", "3. "), ("4. ", "4. "),
        ("5. ", "5. "), ("Exercises", "练习")]),
    "lecture.md": ("lecture.md", "zh/symbols.md", [
        ("", ""), ("Where each piece of the seed lives", "7. "),
        ("Where minis2s departs from the seed", "8. ")]),
    "exercises.md": ("exercises.md", "zh/exercises.md", [
        ("", ""), ("Start, write, check", "开始"), ("The exercises", "八道练习"),
        ("How the report reads", "怎样读报告"), ("Where things are", "文件在哪里")]),
    # the Chinese heading "`date` 上的注意力…" is "  上的注意力…" once its code is left out
    "experiments.md": ("experiments.md", "zh/experiments.md", [
        ("", ""), ("The bottleneck", "瓶颈"), ("Reversing the source", "反转源序列"),
        ("Attention on", "  上的注意力"), ("Greedy against", "贪心解码"),
        ("Gradient flow", "学会了的模型"), ("d2l's exercises", "d2l 的练习"),
        ("On French", "法语上的陷阱"), ("Targets", "目标"), ("How fast", "多快"),
        ("The commands", "命令")]),
}

# Chinese passages (as written, inline code and all) and the numbers they stand for, in
# the order the English gives them
READINGS = {
    "zh/bptt.md": [
        # the pseudo-code's steps, explained in prose (the English has them in the code)
        ("时间步从 T − 1 倒数到第一步", []),
        # d2l-zh's sections and formulas, for the Chinese reader
        ("（d2l-zh §8.7 去掉激活函数来研究", []),
        ("d2l 写作 H_t = Z_t ⊙ H_{t−1} + (1 − Z_t) ⊙ H̃_t", []),
        ("这也就是 d2l 所说的：更新门接近 1 时", []),
        ("也就是 d2l-zh §8.5 的 g ← min(1, θ/‖g‖) g", []),
        ("（即 d2l-zh §8.7 中的截断时间步）", []),
        # the English's words: "all ones", and a comment in a code block
        ("从不取全 1", []),
        ("（这些句子的英语一侧有 19 到 45 个词元。）", []),
        ("（这些句子的英语一侧有 4 或 5 个词元。）", []),
        # the same numbers in the Chinese order
        ("从偏置为 0 时的 1.1e−5（GRU）和 1.2e−5（LSTM），变为偏置为 2 时的 0.21 和 0.062",
         ["1.1e−5", "1.2e−5", "0", "0.21", "0.062", "2"]),
        ("在它的 18,000 个训练句子对上训练 3 个迭代周期", ["3", "18,000"]),
        ("K = 1 时 `dW_hh` 变化 74%，K = 5 时 9.2%，K = 15 时 0.32%",
         ["74%", "1", "9.2%", "5", "0.32%", "15"]),
    ],
    "zh/exercises.md": [
        # the English's words: "all ones"
        ("从不取全 1", []),
    ],
    "zh/experiments.md": [
        # the same numbers in the Chinese order
        ("（3 个符号时 27%，5 个时 2%）", ["27%", "3", "2%", "5"]),
        ("长短期记忆网络到长度 12 都在 92% 以上，长度 20 时为 20%", ["92%", "12", "20%", "20"]),
    ],
    "zh/symbols.md": [
        # the English names the lecture by its number and by its title, "62 序列到序列学习"
        ("第 62 讲“序列到序列学习”", ["62", "62"]),
        # a pointer to a section of the Chinese page only
        ("见上文第 3 节", []),
    ],
}
# a passage's place in the text while the numbers are read (private-use characters)
MARKS = re.compile(r"[\U000F0000-\U000FFFFD]")


def prose(text: str) -> str:
    """The text less code (fenced, indented, inline), link targets and subscripts."""
    text = without_fences(text)
    for block in indented_blocks(text):
        text = text.replace(block, "", 1)
    text = CODE_SPAN.sub(" ", text)
    text = re.sub(r"\]\([^)\s]*\)", "]", text)
    return re.sub(r"_\{[^}\n]*\}", "", text)


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of the text before the first ``## `` heading ("") and of each
    ``## `` section."""
    parts = re.split(r"^## (.*)\n", text, flags=re.M)
    return [("", parts[0]), *zip(parts[1::2], parts[2::2])]


# What a number counts, where a sign or a word right beside it says so; the two pages must
# agree on it for every number they share. (English pattern, Chinese pattern), matched
# right after the number, or for "×" right before it.
UNITS_AFTER = {
    "%": (r"\s?%", r"\s?[%％]"),
    "times": (r"\s*(?:times\b|-fold\b)", r"\s*倍"),
    "steps": (r"\s*(?:source\s+|target\s+|more\s+)?steps?\b",
              r"\s*个?(?:源|目标)?(?:时间)?步"),
}
UNITS_BEFORE = {"×": (r"×\s*$", r"(?:×|乘以)\s*$")}


def unit(text: str, m: re.Match, chinese: bool) -> str:
    """The unit of the number ``m`` found in ``text``: a key of UNITS_AFTER or
    UNITS_BEFORE, or "" where nothing beside it says what it counts."""
    after, before = text[m.end() - m.group(0).endswith("%"):], text[:m.start()][-8:]
    for name, patterns in UNITS_AFTER.items():
        if re.match(patterns[chinese], after):
            return name
    for name, patterns in UNITS_BEFORE.items():
        if re.search(patterns[chinese], before):
            return name
    return ""


def normal_number(m: re.Match) -> str:
    """A number as compared: 200,000 -> 200000, 1e−12 -> 1e-12, 10⁻⁶⁸ -> 10^-68."""
    value = unicodedata.normalize("NFKC", m.group(1)).replace(",", "").replace("−", "-")
    return value + ("^" + m.group(2).translate(SUPERSCRIPTS) if m.group(2) else "")


def passage_pattern(passage: str) -> re.Pattern:
    """A passage found as written, whatever the line breaks and spaces in it."""
    return re.compile(r"\s*".join(map(re.escape, "".join(passage.split()))))


def mark_readings(text: str, readings) -> tuple[str, list[list[str]], list[str]]:
    """The text with every passage of ``readings`` replaced by one mark; the numbers each
    mark stands for; the passages not found."""
    stands, missing = [], []
    for passage, numbers in readings:
        text, count = passage_pattern(passage).subn(chr(0xF0000 + len(stands)), text)
        stands.append([normal_number(m) for m in PROSE_NUMBER.finditer(" ".join(numbers))])
        if not count:
            missing.append(passage)
    return text, stands, missing


def numbers_in_order(text: str, stands=(), chinese: bool = False
                     ) -> list[tuple[str, int, str | None]]:
    """(number, offset, unit) for every number of ``text`` in order, a mark counting as
    the numbers it stands for (their unit None: not compared)."""
    found = [(normal_number(m), m.start(), unit(text, m, chinese))
             for m in PROSE_NUMBER.finditer(text)]
    found += [(n, m.start(), None) for m in MARKS.finditer(text)
              for n in stands[ord(m.group()) - 0xF0000]]
    return sorted(found, key=lambda found: found[1])


def number_differences(en_text: str, zh_text: str, pairs, readings) -> list[str]:
    """Where the Chinese prose does not give the English numbers in the English order,
    section by section; every English section must be paired and every reading found."""
    zh_text, stands, missing = mark_readings(zh_text, readings)
    en_sections, zh_sections = sections(prose(en_text)), sections(prose(zh_text))

    def pick(found, start):
        hits = [(h, body) for h, body in found if h.startswith(start) and (start or not h)]
        assert len(hits) == 1, f"expected one section headed '{start}…', found {len(hits)}"
        return hits[0]

    problems = [f"reading not found as written: “{p}”" for p in missing]
    unpaired = [h for h, _ in en_sections
                if not any(h.startswith(e) and (e or not h) for e, _ in pairs)]
    if unpaired:
        problems.append(f"English sections paired with no Chinese one: {unpaired}")
    for en_start, zh_start in pairs:
        (en_heading, en_body), (_, zh_body) = pick(en_sections, en_start), \
            pick(zh_sections, zh_start)
        en_found = numbers_in_order(en_body)
        zh_found = numbers_in_order(zh_body, stands, chinese=True)
        en, zh = [f[0] for f in en_found], [f[0] for f in zh_found]

        def near(j, zh_found=zh_found, zh_body=zh_body):
            at = zh_found[min(j, len(zh_found) - 1)][1] if zh_found else 0
            return MARKS.sub("…", " ".join(zh_body[max(0, at - 40):at + 40].split()))

        matcher = difflib.SequenceMatcher(None, en, zh, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                for i, j in zip(range(i1, i2), range(j1, j2)):
                    en_unit, zh_unit = en_found[i][2], zh_found[j][2]
                    if zh_unit is not None and en_unit != zh_unit:
                        problems.append(
                            f"section '{en_heading or '(top)'}': {en[i]} counts "
                            f"'{en_unit or 'nothing said'}' in the English, "
                            f"'{zh_unit or 'nothing said'}' in the Chinese, near “{near(j)}”")
                continue
            problems.append(f"section '{en_heading or '(top)'}': the English has "
                            f"{en[i1:i2]} where the Chinese has {zh[j1:j2]}, near “{near(j1)}”")
    return problems


@pytest.mark.parametrize("page", SECTION_PAIRS)
def test_the_chinese_prose_gives_the_english_numbers_in_order(page):
    en_page, zh_page, pairs = SECTION_PAIRS[page]
    en_text = read(DOCS / en_page)
    least = 5 if page == "exercises.md" else 10
    assert len(numbers_in_order(prose(en_text))) >= least, \
        f"found too few numbers in docs/{en_page}: is the scan broken?"
    problems = number_differences(en_text, read(DOCS / zh_page), pairs, READINGS[zh_page])
    assert not problems, f"docs/{zh_page} against docs/{en_page}:\n" + "\n".join(problems)


# the check itself: a changed or moved number fails it, a reformatted one does not

PLANTS = [  # (page, the Chinese as written, as planted)
    # a number changed into another the page has elsewhere, while the first also appears
    # elsewhere: the two sets of numbers stay the same
    ("bptt.md", "经过 30 个时间步，第一个时间步的梯度从", "经过 40 个时间步，第一个时间步的梯度从"),
    ("bptt.md", "整个梯度的范数是 38（RNN）", "整个梯度的范数是 40（RNN）"),
    # two numbers of one sentence swapped
    ("bptt.md", "在 Xeon 上是 0.262、0.162 和 0.189", "在 Xeon 上是 0.262、0.189 和 0.162"),
    ("lecture.md", "第 226、228 和 230 行", "第 228、226 和 230 行"),
    ("experiments.md", "正向读取时为 3.8% 和 5.3%", "正向读取时为 5.3% 和 3.8%"),
    # a number changed inside a passage of READINGS
    ("bptt.md", "K = 5 时 9.2%", "K = 5 时 0.32%"),
    # the same number counting something else: a number of times made a per cent, a
    # factor (×) made a plain number, a count of steps made a number of times
    ("bptt.md", "只增大了 36 倍", "只增大了 36%"),
    ("bptt.md", "乘以 0.8 时只剩", "在 0.8 时只剩"),
    ("bptt.md", "但只增大了 36 倍（跨过 29 步）", "但只增大了 36 倍（跨过 29 倍）"),
]


@pytest.mark.parametrize("page,written,planted", PLANTS)
def test_the_number_check_fails_on_a_changed_or_moved_number(page, written, planted):
    en_page, zh_page, pairs = SECTION_PAIRS[page]
    zh_text = read(DOCS / zh_page)
    assert written in zh_text, f"docs/{zh_page} no longer says “{written}”: pick another"
    problems = number_differences(read(DOCS / en_page), zh_text.replace(written, planted),
                                  pairs, READINGS[zh_page])
    assert problems, f"planting “{planted}” in docs/{zh_page} went unnoticed"


def test_what_the_number_check_cannot_see():
    """A change of meaning that keeps every number and its unit passes: here the ratios of
    the first step's norm to the last's are called norms, and the norms ratios. The
    module's docstring and docs/contributing.md say so; a reader of both pages is the
    check for it."""
    en_page, zh_page, pairs = SECTION_PAIRS["bptt.md"]
    zh_text = read(DOCS / zh_page)
    written = ("第一个时间步的梯度范数分别是 6e−12、0.0041 和 220，而最后一个时间步是\n"
               "6.1——两者之比为")
    planted = ("第一个时间步与最后一个时间步的梯度范数之比分别是 6e−12、0.0041 和 220，"
               "而最后一个时间步是\n6.1——两者的范数为")
    assert written in zh_text, f"docs/{zh_page} no longer says “{written}”: pick another"
    assert number_differences(read(DOCS / en_page), zh_text.replace(written, planted), pairs,
                              READINGS[zh_page]) == []


def test_the_number_check_ignores_formatting():
    """Thousands separators, full-width digits, a spaced per cent sign, the hyphen for the
    Unicode minus and a unit written another way change nothing."""
    en_page, zh_page, pairs = SECTION_PAIRS["bptt.md"]
    zh_text = read(DOCS / zh_page)
    reformatted = zh_text
    for written, other in [("200,000", "200000"), ("每层 256 个", "每层 ２５６ 个"),
                           ("38%", "38 %"), ("2.2e−6", "2.2e-6"), ("2 个 vCPU", "2-vCPU")]:
        assert written in zh_text
        reformatted = reformatted.replace(written, other)
    assert number_differences(read(DOCS / en_page), reformatted, pairs,
                              READINGS[zh_page]) == []


def test_every_code_span_of_the_lecture_map_is_in_the_symbol_map():
    zh_text = " ".join(read(ZH / "symbols.md").split())
    missing = sorted(s for s in code_spans(read(DOCS / "lecture.md")) if s not in zh_text)
    assert not missing, f"code of docs/lecture.md missing from docs/zh/symbols.md: {missing}"


@pytest.mark.parametrize("page", ["bptt.md", "exercises.md", "experiments.md"])
def test_every_code_span_of_the_english_page_is_in_the_chinese_one(page):
    zh_text = " ".join(read(ZH / page).split())
    missing = sorted(s for s in code_spans(read(DOCS / page)) if s not in zh_text)
    assert not missing, f"code of docs/{page} missing from docs/zh/{page}: {missing}"


# (d) links


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_point_to_files_that_exist(page):
    found = [t for _, t in links(ZH / page) if local(t)]
    assert found, f"docs/zh/{page} has no relative links: is the scan broken?"
    problems = []
    for target in found:
        file, _, anchor = target.partition("#")
        path = (ZH / page).parent / file if file else ZH / page
        if not path.resolve().is_file():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{target}: no heading with anchor #{anchor}")
    assert not problems, f"docs/zh/{page}: " + "; ".join(problems)


def test_the_tutorial_shows_the_same_figures():
    def images(page: Path) -> set[Path]:
        return {(page.parent / t).resolve() for image, t in links(page) if image and local(t)}

    english = images(DOCS / "bptt.md")
    assert len(english) == 3
    assert english <= images(ZH / "bptt.md")


def test_the_chinese_readme_links_every_chinese_page_and_the_english_ones():
    targets = {(ZH / t.partition("#")[0]).resolve() for _, t in links(ZH / "README.md")
               if local(t)}
    wanted = [ZH / "bptt.md", ZH / "symbols.md", ZH / "exercises.md", ROOT / "README.md",
              DOCS / "bptt.md", DOCS / "lecture.md", DOCS / "symbols.md", DOCS / "exercises.md",
              DOCS / "bptt_notebook.py"]
    missing = [str(p.relative_to(ROOT)) for p in wanted if p.resolve() not in targets]
    assert not missing, f"docs/zh/README.md does not link {missing}"


# (e) d2l-zh's terms

TERMS = {
    "README.md": ["课程代码", "序列到序列", "编码器", "解码器", "门控循环单元", "长短期记忆网络",
                  "隐状态", "上下文变量", "强制教学", "词元", "带遮蔽的", "交叉熵",
                  "通过时间反向传播", "梯度裁剪", "CC-BY 2.0", "https://www.manythings.org/anki",
                  "https://tatoeba.org", "--cell"],
    "bptt.md": ["通过时间反向传播", "梯度裁剪", "梯度消失", "梯度爆炸", "隐状态", "循环神经网络",
                "门控循环单元", "长短期记忆网络", "重置门", "更新门", "候选隐状态", "输入门",
                "遗忘门", "输出门", "记忆元", "候选记忆元", "强制教学", "交叉熵", "编码器",
                "解码器", "词元", "填充", "H_t", "Z_t", "H̃_t", "F_t", "C_t", "C̃_t"],
    "symbols.md": ["课程代码", "隐状态", "重置门", "更新门", "候选隐状态", "输入门", "遗忘门",
                   "输出门", "记忆元", "候选记忆元", "上下文变量", "词元", "词表", "填充", "掩蔽",
                   "门控循环单元", "长短期记忆网络", "H_t", "X_t", "R_t", "Z_t", "H̃_t", "I_t",
                   "F_t", "O_t", "C̃_t", "C_t", "W_xr", "W_hr", "b_r", "weight_ih", "weight_hh",
                   "bias_ih", "bias_hh", "r、z、n", "i、f、g、o", "倒置暂退法", "掩蔽 softmax"],
    "exercises.md": ["反向传播", "通过时间反向传播", "门控循环单元", "长短期记忆网络", "带遮蔽的",
                     "梯度裁剪", "束搜索", "有限差分", "暂退法", "隐状态", "词表"],
    "experiments.md": ["课程代码", "编码器", "解码器", "上下文变量", "隐状态", "注意力",
                       "门控循环单元", "长短期记忆网络", "循环神经网络", "束搜索", "贪心解码",
                       "词元", "梯度裁剪", "有限差分", "遮蔽"],
}
# translations d2l-zh 2.0 does not use, for terms it does: 隐状态, 记忆元, 强制教学, 词元,
# 词表, 暂退法
NOT_D2L = ["隐藏状态", "记忆单元", "细胞状态", "教师强制", "令牌", "词汇表", "丢弃法",
           # d2l-zh's masked softmax cross-entropy is 带遮蔽的, its inverted dropout 倒置
           "带掩蔽的", "带掩码的", "反向缩放暂退法",
           # the seed is the lecture's code: 课程代码, never a "seed code" that things grow from
           "种子代码", "长出来",
           # an activation function's derivative, not a "squashing function's"
           "压缩函数"]


@pytest.mark.parametrize("page", PAGES)
def test_pages_use_d2l_zh_terms(page):
    text = read(ZH / page)
    missing = [t for t in TERMS[page] if t not in text]
    assert not missing, f"docs/zh/{page} does not use {missing}"
    other = [t for t in NOT_D2L if t in text]
    assert not other, f"docs/zh/{page} uses {other}, not d2l-zh's terms"


@pytest.mark.parametrize("page", PAGES)
def test_every_paragraph_is_written_in_chinese(page):
    """Prose paragraphs (not code, tables, headings or figures) contain Chinese."""
    text = without_fences(read(ZH / page))
    english = []
    for paragraph in re.split(r"\n\s*\n", text):
        first = paragraph.lstrip("\n")
        if not first.strip() or first.startswith(("    ", "|", "#", "![")):
            continue
        if len(re.findall(r"[A-Za-z]", CODE_SPAN.sub("", paragraph))) > 40 \
                and not CJK.search(paragraph):
            english.append(paragraph.strip()[:80])
    assert not english, f"docs/zh/{page} has paragraphs without Chinese: {english}"
