"""Manual edit spans written as text: ``start end new_duration`` in seconds of the original speech.

One parser for the CLI (``--spans "1.0 1.4 0.8; 2 2.5 0.6"``) and the Edit Plan node (one span per line).
"""

from __future__ import annotations

import re

from .edits import SpanEdit


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_spans(text: str, name: str = "spans") -> list[SpanEdit]:
    """Spans separated by new lines or ';', values by spaces, tabs or commas; '#' starts a comment.

    ``name`` is how the error calls the input (the node's widget, the CLI option).
    """
    spans = []
    items = []
    for n, line in enumerate((text or "").splitlines(), 1):
        pieces = line.split("#", 1)[0].split(";")
        items += [(f"line {n}" if len(pieces) == 1 else f"line {n} item {j}", p) for j, p in enumerate(pieces, 1)]
    for where, item in items:
        item = item.strip()
        if not item:
            continue
        parts = [p for p in re.split(r"[,\s]+", item) if p]
        bad = []
        values = []
        for p in parts:
            try:
                values.append(float(p))
            except ValueError:
                bad.append(p)
        if bad or len(values) != 3:
            why = f"{_excerpt(bad[0])} is not a number" if bad else f"{len(values)} value(s)"
            raise ValueError(f"{name} {where} {_excerpt(item)}: expected 'start end new_duration' in seconds ({why})")
        spans.append(SpanEdit(*values))
    if not spans:
        raise ValueError(f"{name}: give at least one 'start end new_duration' (seconds of the original speech)")
    return spans
