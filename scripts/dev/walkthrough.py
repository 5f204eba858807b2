"""Chapter 10 walked through in code: writes docs/walkthrough.md by running its snippets, or checks it.

    .venv/bin/python scripts/dev/walkthrough.py           # run every snippet, (re)write docs/walkthrough.md
    .venv/bin/python scripts/dev/walkthrough.py --check   # run them again, name the first drift from the file

The one source is walkthrough_source.md beside this file: the prose and the Python cells, in the order and
under the headings of chapter 10 ("NLP Deep Dive: RNNs"). Every cell runs in one shared namespace, as a
notebook's cells do, in a fresh temporary folder; what it prints, and the value of its last line when that is
an expression (as a notebook shows it), is inserted after it: that is docs/walkthrough.md. The cells set one thread, fp32 and fixed seeds, so the outputs are
the same on every run; two things are normalised: trailing spaces, and the time column of the epoch tables
(`--:--`: a duration is no output of the code).

Kernels for other CPUs (AVX2, AVX-512, AMX) may round the last bits of a float differently, so `first_drift`
compares a fresh run with the file as text, exactly, except decimal numbers inside outputs, which may differ
by `RTOL` of their size plus 2 units of their last printed digit. tests/test_walkthrough.py runs `--check`.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import pprint
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "walkthrough.md"
SOURCE = Path(__file__).with_name("walkthrough_source.md")
RTOL = 1e-4

CELL = re.compile(r"```python\n(.*?)```\n", re.S)
TIME = re.compile(r"^(\d+ +(?:-?\d+\.\d+ +)+)\d+:\d\d(?::\d\d)?$")  # an epoch-table row ending in mm:ss
NUM = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def run_cell(code: str, ns: dict, name: str) -> str:
    """Execute `code` in `ns`; what it printed, then the repr of its last line when that is an expression
    (a notebook's Out[]); a trailing `;` hides it, as in a notebook."""
    tree = ast.parse(code, name)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    show = last is not None and not code.rstrip().endswith(";")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(tree, name, "exec"), ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), name, "eval"), ns)
            if show and value is not None:
                print(repr(value) if isinstance(value, str) else pprint.pformat(value, width=110, compact=True))
    lines = [TIME.sub(r"\1--:--", line.rstrip()) for line in buf.getvalue().rstrip().splitlines()]
    return "\n".join(lines)


def render(chapter: str | None = None) -> str:
    """Run every cell of `chapter` (default: walkthrough_source.md) in order, in one namespace and a temporary
    folder; the Markdown with each cell's output after it."""
    chapter = SOURCE.read_text(encoding="utf-8") if chapter is None else chapter
    out, pos, ns = [], 0, {"__name__": "__walkthrough__"}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="walkthrough-") as tmp:
        os.chdir(tmp)
        try:
            for n, m in enumerate(CELL.finditer(chapter), 1):
                out.append(chapter[pos:m.end()])
                pos = m.end()
                printed = run_cell(m.group(1), ns, f"<walkthrough cell {n}>")
                if printed:
                    out.append(f"```text\n{printed}\n```\n")
        finally:
            os.chdir(cwd)
    out.append(chapter[pos:])
    return "".join(out)


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    last_digit = 10.0 ** -len(a.split(".")[1].split("e")[0])
    return abs(x - y) <= RTOL * max(abs(x), abs(y)) + 2 * last_digit


def first_drift(expected: str, actual: str) -> str | None:
    """None when `actual` matches `expected`, else where and how they first differ. Text must be equal; a
    decimal number inside an output block may differ by RTOL of its size plus 2 units of its last digit."""
    exp, act = expected.splitlines(), actual.splitlines()
    in_output = False
    for i, (e, a) in enumerate(zip(exp, act), 1):
        same = e == a or (in_output and NUM.sub("#", e) == NUM.sub("#", a)
                          and all(_close(p, q) for p, q in zip(NUM.findall(e), NUM.findall(a))))
        if not same:
            return f"line {i}:\n  expected: {e}\n  got:      {a}"
        if e.startswith("```"):
            in_output = e == "```text"
    if len(exp) != len(act):
        n = min(len(exp), len(act))
        extra = exp[n] if len(exp) > n else act[n]
        return (f"{len(exp)} lines expected, {len(act)} produced; line {n + 1} is only in the "
                f"{'expected' if len(exp) > n else 'produced'} text: {extra}")
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="re-run and compare with the file; exit 1 on drift")
    ap.add_argument("--out", type=Path, default=DOC, help=f"the Markdown file (default {DOC.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    t0 = time.time()
    text = render()
    seconds = time.time() - t0
    if args.check:
        if not args.out.is_file():
            print(f"{args.out}: missing; write it with {Path(__file__).name} (no --check)", file=sys.stderr)
            return 1
        drift = first_drift(args.out.read_text(encoding="utf-8"), text)
        if drift:
            print(f"{args.out} drifted from its snippets' outputs, {drift}\n"
                  f"If the change is intended, regenerate it: .venv/bin/python scripts/dev/walkthrough.py",
                  file=sys.stderr)
            return 1
        print(f"{args.out}: every snippet's output matches ({seconds:.0f}s)")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({seconds:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
