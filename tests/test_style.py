"""House rule enforced by test: Python lines are at most 100 characters long.

Characters, not bytes: a line is measured with ``len()`` after decoding the file as UTF-8, so
λ, θ or ∂ count as one each.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRS = ("evsnn", "certify", "validation", "tests", "bench")
MAX_LINE = 100

# (path relative to the repository, start of the line with its indentation stripped). Keep this
# list as short as possible: rewrap instead (implicit concatenation of adjacent string literals
# keeps a message byte-identical). Each entry says why the line cannot be shorter.
WHITELIST = (
    # A doctest's expected exception output: doctest compares it with the message exactly as
    # raised, which is one line of 141 characters; wrapping it would need NORMALIZE_WHITESPACE
    # and then show readers text the code never prints.
    ("validation/crossval/backends.py",
     "ValueError: layers[0] is an IF neuron with reset by subtraction: Norse's IAFCell only"),
)


def _python_files():
    for d in DIRS:
        yield from sorted((ROOT / d).rglob("*.py"))


def _long_lines():
    """Every line over MAX_LINE characters, as (relative path, line number, length, text)."""
    found = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        # split on "\n" only: str.splitlines would also break at form feeds and U+2028
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
            line = line.rstrip("\r")
            if len(line) > MAX_LINE:
                found.append((rel, number, len(line), line))
    return found


def _whitelisted(rel, line):
    return any(rel == path and line.lstrip().startswith(prefix) for path, prefix in WHITELIST)


def test_the_scan_sees_the_project():
    files = {p.relative_to(ROOT).parts[0] for p in _python_files()}
    assert files == set(DIRS), f"no Python files found under {sorted(set(DIRS) - files)}"


def test_lines_are_at_most_100_characters():
    offenders = [
        f"{rel}:{number}:{length}"
        for rel, number, length, line in _long_lines()
        if not _whitelisted(rel, line)
    ]
    for offender in offenders:
        print(offender)
    assert not offenders, (
        f"{len(offenders)} line(s) longer than {MAX_LINE} characters (path:line:length); rewrap "
        "them (split strings by implicit concatenation, keeping the text identical):\n"
        + "\n".join(offenders)
    )


def test_every_whitelist_entry_still_matches_a_long_line():
    long_lines = _long_lines()
    stale = [
        (path, prefix)
        for path, prefix in WHITELIST
        if not any(rel == path and line.lstrip().startswith(prefix)
                   for rel, _, _, line in long_lines)
    ]
    assert not stale, f"whitelist entries that no longer match a long line; remove them: {stale}"
