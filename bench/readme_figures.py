"""The README's measured figures, each tied to the benchmark result it quotes.

A figure is written as ``74.4%<!-- person_distil.json shipped.vww96.accuracy % -->``:
the number, then the JSON file under ``benchmarks/`` and the key path (list
indices as numbers) of the value it shows, with `` M`` (millions) or `` %``
(a fraction shown as a percentage) when scaled. The number keeps the decimals
it is written with; a figure written with a sign (``+``, ``-`` or ``−``) keeps one, as ``+`` or ``−``.

    python bench/readme_figures.py            # list stale figures; exit 1 if any
    python bench/readme_figures.py --write    # rewrite them from benchmarks/*.json

``tests/test_safety.py`` checks that every figure equals its result.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from larq_glt import atomic

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# A sign only where no digit precedes it: in "10-12" the hyphen is a range, not a minus.
FIGURE = re.compile(r"((?<![\d.,])[+\-−]?\d[\d,.]*)(%?)<!-- (\w+\.json) ([\w.]+)( M| %)? -->")


def value(source: str, path: str, root: Path = ROOT):
    """The value at ``path`` (dot-separated keys and list indices) in ``benchmarks/source``."""
    v = json.loads((root / "benchmarks" / source).read_text())
    for key in path.split("."):
        v = v[int(key)] if isinstance(v, list) else v[key]
    return v


def shown(written: str, v, unit: str | None) -> str:
    """``v`` as the README shows it, in the style of ``written`` (decimals,
    separators, a sign if it has one); negatives always with "−"."""
    if unit:
        decimals = len(written.partition(".")[2])
        text = f"{v / (1e6 if unit == ' M' else 0.01):.{decimals}f}"
    else:
        n = int(round(v))
        text = f"{n:,}" if "," in written or abs(n) >= 1000 else str(n)
    if text.startswith("-") and text.strip("-0.,") == "":  # -0.0: no sign to show
        text = text[1:]
    if text.startswith("-"):
        return "−" + text[1:]
    return ("+" + text) if written[0] in "+-−" else text


def stale(text: str, root: Path = ROOT) -> list[tuple[str, str, str]]:
    """(reference, written, current) for every figure that differs from its result."""
    out = []
    for m in FIGURE.finditer(text):
        written, _, source, path, unit = m.groups()
        current = shown(written, value(source, path, root), unit)
        if current != written:
            out.append((f"{source} {path}", written, current))
    return out


def refresh(text: str, root: Path = ROOT) -> str:
    def sub(m):
        written, pct, source, path, unit = m.groups()
        return f"{shown(written, value(source, path, root), unit)}{pct}<!-- {source} {path}{unit or ''} -->"

    return FIGURE.sub(sub, text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="rewrite the stale figures in README.md")
    args = p.parse_args(argv)
    text = README.read_text()
    try:
        changes = stale(text)
    except (FileNotFoundError, KeyError, IndexError, TypeError, ValueError) as e:
        print(f"error: a README figure refers to a missing result: {e}", file=sys.stderr)
        return 2
    for ref, written, current in changes:
        print(f"{ref}: {written} -> {current}")
    if args.write and changes:
        atomic.write_text(README, refresh(text))
        print(f"README.md: {len(changes)} figures rewritten")
        return 0
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
