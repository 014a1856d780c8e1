"""The Chinese pages (docs/zh/) stay in step with the English ones.

The prose is written for a Chinese reader, not translated line by line, so these tests
compare what must not change: code blocks, commands, measured numbers, figures and links.
They also check that each page uses d2l-zh's own terms (隐状态, 门控循环单元, 记忆元, ...)
and none of the other translations d2l-zh does not use.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ZH = DOCS / "zh"
PAGES = ("README.md", "bptt.md", "symbols.md")

FENCE = re.compile(r"^(`{3,})[^\n`]*\n.*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")
LINK = re.compile(r"(!?)\[[^\]\n]*\]\(([^)\s]+)\)")
# 0.43, 2.2e−6 (the English writes the Unicode minus), 1e-12, 200,000, 42%
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:e[−-]?\d+)?%?")
CJK = re.compile(r"[\u4e00-\u9fff]")
TABLE_ROW_LABELS = ("| vanilla RNN", "| GRU", "| LSTM")


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


def test_every_code_block_of_the_tutorial_is_in_the_chinese_one():
    en, zh = read(DOCS / "bptt.md"), read(ZH / "bptt.md")
    blocks = fenced_blocks(en)
    assert len(blocks) >= 3, "found too few fenced blocks in docs/bptt.md: is the scan broken?"
    missing = [b for b in blocks if b not in zh]
    assert not missing, "docs/zh/bptt.md lacks these code blocks of docs/bptt.md:\n\n" + \
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
    assert len(rows) == 6, f"expected 6 rows of measurements in docs/bptt.md, got {len(rows)}"
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


def test_every_number_of_the_tutorial_appears_in_the_chinese_one():
    zh = set(numbers(read(ZH / "bptt.md")))
    missing = sorted(set(numbers(read(DOCS / "bptt.md"))) - zh)
    assert not missing, f"numbers of docs/bptt.md missing from docs/zh/bptt.md: {missing}"


def test_every_number_and_code_span_of_the_lecture_map_is_in_the_symbol_map():
    en, zh = read(DOCS / "lecture.md"), read(ZH / "symbols.md")
    missing_numbers = sorted(set(numbers(en)) - set(numbers(zh)))
    assert not missing_numbers, f"numbers of docs/lecture.md missing: {missing_numbers}"
    zh_text = " ".join(zh.split())
    missing = sorted(s for s in code_spans(en) if s not in zh_text)
    assert not missing, f"code of docs/lecture.md missing from docs/zh/symbols.md: {missing}"


def test_every_code_span_of_the_tutorial_is_in_the_chinese_one():
    zh_text = " ".join(read(ZH / "bptt.md").split())
    missing = sorted(s for s in code_spans(read(DOCS / "bptt.md")) if s not in zh_text)
    assert not missing, f"code of docs/bptt.md missing from docs/zh/bptt.md: {missing}"


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
    assert len(english) == 2
    assert english <= images(ZH / "bptt.md")


def test_the_chinese_readme_links_every_chinese_page_and_the_english_ones():
    targets = {(ZH / t.partition("#")[0]).resolve() for _, t in links(ZH / "README.md")
               if local(t)}
    wanted = [ZH / "bptt.md", ZH / "symbols.md", ROOT / "README.md", DOCS / "bptt.md",
              DOCS / "lecture.md", DOCS / "bptt_notebook.py"]
    missing = [str(p.relative_to(ROOT)) for p in wanted if p.resolve() not in targets]
    assert not missing, f"docs/zh/README.md does not link {missing}"


# (e) d2l-zh's terms

TERMS = {
    "README.md": ["种子代码", "序列到序列", "编码器", "解码器", "门控循环单元", "长短期记忆网络",
                  "隐状态", "上下文变量", "强制教学", "词元", "掩蔽", "交叉熵",
                  "通过时间反向传播", "梯度裁剪", "CC-BY 2.0", "https://www.manythings.org/anki",
                  "https://tatoeba.org", "--cell"],
    "bptt.md": ["通过时间反向传播", "梯度裁剪", "梯度消失", "梯度爆炸", "隐状态", "循环神经网络",
                "门控循环单元", "长短期记忆网络", "重置门", "更新门", "候选隐状态", "输入门",
                "遗忘门", "输出门", "记忆元", "候选记忆元", "强制教学", "交叉熵", "编码器",
                "解码器", "词元", "填充", "H_t", "Z_t", "H̃_t", "F_t", "C_t", "C̃_t"],
    "symbols.md": ["种子代码", "隐状态", "重置门", "更新门", "候选隐状态", "输入门", "遗忘门",
                   "输出门", "记忆元", "候选记忆元", "上下文变量", "词元", "词表", "填充", "掩蔽",
                   "门控循环单元", "长短期记忆网络", "H_t", "X_t", "R_t", "Z_t", "H̃_t", "I_t",
                   "F_t", "O_t", "C̃_t", "C_t", "W_xr", "W_hr", "b_r", "weight_ih", "weight_hh",
                   "bias_ih", "bias_hh", "r、z、n", "i、f、g、o"],
}
# translations d2l-zh 2.0 does not use, for terms it does: 隐状态, 记忆元, 强制教学, 词元,
# 词表, 暂退法
NOT_D2L = ["隐藏状态", "记忆单元", "细胞状态", "教师强制", "令牌", "词汇表", "丢弃法"]


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
