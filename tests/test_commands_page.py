"""docs/commands.md is every command's --help as the parser prints it now: an option, a
default or a help text changed without making the page again fails here."""

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("make_commands", ROOT / "docs" / "make_commands.py")
make_commands = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_commands)


def test_the_page_is_what_the_parser_prints():
    page = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    made = make_commands.page()
    assert page == made, "docs/commands.md is stale: run python docs/make_commands.py"


def test_every_command_and_option_is_on_the_page(monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # the page's width is its own, not the caller's
    page = make_commands.page()
    assert page == (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    for name, parser in make_commands.parsers().items():
        assert f"\n## {name}\n" in page and f"](#{name.replace(' ', '-').replace('.', '')})" \
            in page
        section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:  # internal (bench's --worker)
                continue
            for flag in action.option_strings:
                assert flag in section, (name, flag)


def test_check_says_when_the_page_is_stale(tmp_path, monkeypatch):
    stale = tmp_path / "commands.md"
    stale.write_text("# Commands\n", encoding="utf-8")
    monkeypatch.setattr(make_commands, "PAGE", stale)
    monkeypatch.setattr(make_commands, "ROOT", tmp_path)
    assert make_commands.main(["--check"]) == 1
    assert make_commands.main([]) == 0 and make_commands.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == make_commands.page()


def test_the_script_runs_as_the_page_says():
    done = subprocess.run([sys.executable, "docs/make_commands.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
