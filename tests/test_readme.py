"""Every Python code block of README.md runs, in order, in one namespace (issue 9)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    first_block = lines[lines.index("```") + 1 : lines.index("```") + 3]
    assert first_block[0].startswith("make demo") and first_block[1].startswith("make test")


def test_readme_python_blocks_run(capsys):
    blocks = _blocks(README.read_text())
    assert len(blocks) >= 4  # simulate, attack, certify, cross-validate
    namespace = {"__name__": "readme"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "hidden spikes" in out


def test_readme_has_no_unfilled_placeholders():
    assert "BENCHMARK_TABLE" not in README.read_text()
