"""The README's example and the package docstring run as written (a new user's first contact)."""
import doctest
import re
from pathlib import Path

import refopt

ROOT = Path(__file__).resolve().parents[1]


def test_package_docstring_example():
    result = doctest.testmod(refopt, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_readme_first_example_runs_and_prints_what_it_says(capsys):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## A first example\s+```python\n(.*?)```", text, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[0.94527864] (1, 1)"
    assert out[1].startswith("(6,) 2.849683426")


def test_refopt_rules_lists_every_default(capsys):
    from refopt.cli import main

    assert main(["rules", "alphaadam"]) == 0
    out = capsys.readouterr().out
    for key in refopt.RULES["alphaadam"].cls.defaults:
        assert f"    {key} = " in out
    assert "eps = None (= 1e-06 with the default options)" in out
    assert main(["rules", "adamax"]) == 2
    assert "unknown rule 'adamax'" in capsys.readouterr().err


def test_every_command_is_registered():
    from refopt.cli import build_parser

    text = build_parser().format_help()
    for command in ("rules", "report", "sweep", "golden", "verify", "compare", "bench", "prove"):
        assert f"    {command} " in text
