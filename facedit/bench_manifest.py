"""FacEDiT Bench manifest: one record per evaluation sample.

A manifest is a JSON Lines file (one JSON object per line, ``#`` comment lines and blank lines allowed),
or a JSON file holding a list of objects or ``{"samples": [...]}``. Relative paths are relative to the
manifest's folder. Fields of a sample:

=====================  ========  ================================================================
field                  required  meaning
=====================  ========  ================================================================
id                     yes       unique name; the edited video is looked up as ``<id>.mp4``
original_video         yes       the original talking-face video
original_speech        no        the original speech (default: the original video's audio track)
original_transcript    yes       the original transcript
edited_transcript      yes       the edited transcript
edited_speech          yes       the edited speech (the edited video's soundtrack)
edit_type              yes       ``substitution``, ``insertion`` or ``deletion``
original_start_s       yes       start of the edited words in the ORIGINAL speech, seconds
original_end_s         yes       their end (== start for an insertion: the insertion point)
edited_start_s         no        start of the new words in the EDITED speech (default: original_start_s)
edited_end_s           no        their end (== start for a deletion); default: original_end_s plus the
                                 difference of the edited and original speech durations
span_words             no*       number of edited words, 1..10
span_class             no*       ``short`` (1-3 words), ``medium`` (4-6) or ``long`` (7-10)
edited_video           no        an already edited video for this sample (default: looked up by id)
=====================  ========  ================================================================

(*) at least one of ``span_words`` and ``span_class``; when both are given they must agree.
Unknown fields are an error (typos would otherwise be ignored).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

EDIT_TYPES = ("substitution", "insertion", "deletion")
SPAN_CLASSES = {"short": (1, 3), "medium": (4, 6), "long": (7, 10)}

_REQUIRED = (
    "id",
    "original_video",
    "original_transcript",
    "edited_transcript",
    "edited_speech",
    "edit_type",
    "original_start_s",
    "original_end_s",
)
_OPTIONAL = ("original_speech", "edited_start_s", "edited_end_s", "span_words", "span_class", "edited_video")
_PATHS = ("original_video", "original_speech", "edited_speech", "edited_video")


class ManifestError(ValueError):
    """Every problem found in a manifest, one per line, each naming the sample and the field."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class BenchSample:
    id: str
    original_video: str
    original_transcript: str
    edited_transcript: str
    edited_speech: str
    edit_type: str
    original_start_s: float
    original_end_s: float
    span_class: str
    original_speech: str | None = None
    edited_start_s: float | None = None
    edited_end_s: float | None = None
    span_words: int | None = None
    edited_video: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def span_class_for(words: int) -> str:
    """``short`` (1-3 words), ``medium`` (4-6) or ``long`` (7-10)."""
    for name, (lo, hi) in SPAN_CLASSES.items():
        if lo <= words <= hi:
            return name
    raise ValueError(f"span_words: expected 1..10 words, got {words}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _check_record(rec: Any, where: str, base_dir: str, check_files: bool) -> tuple[BenchSample | None, list[str]]:
    if not isinstance(rec, dict):
        return None, [f"{where}: expected a JSON object, got {type(rec).__name__}"]
    name = rec.get("id")
    label = f"sample {name!r} ({where})" if isinstance(name, str) and name else where
    problems: list[str] = []

    def bad(field: str, message: str) -> None:
        problems.append(f"{label}: field '{field}': {message}")

    for field in sorted(set(rec) - set(_REQUIRED) - set(_OPTIONAL)):
        bad(field, "unknown field")
    for field in _REQUIRED:
        if rec.get(field) is None or rec.get(field) == "":
            bad(field, "missing")
    for field in ("id", "original_transcript", "edited_transcript", *_PATHS):
        if field in rec and rec[field] is not None and not isinstance(rec[field], str):
            bad(field, f"expected a string, got {type(rec[field]).__name__}")
    if problems:
        return None, problems

    paths: dict[str, str | None] = {}
    for field in _PATHS:
        value = rec.get(field)
        if value is None:
            paths[field] = None
            continue
        path = value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))
        paths[field] = path
        if check_files and not os.path.isfile(path):
            bad(field, f"file not found: {path}")

    edit_type = rec["edit_type"]
    if edit_type not in EDIT_TYPES:
        bad("edit_type", f"expected one of {EDIT_TYPES}, got {edit_type!r}")

    times: dict[str, float | None] = {}
    for field in ("original_start_s", "original_end_s", "edited_start_s", "edited_end_s"):
        value = rec.get(field)
        if value is None:
            times[field] = None
            continue
        number = _number(value)
        if number is None or number < 0:
            bad(field, f"expected a time in seconds >= 0, got {value!r}")
        times[field] = number
    os_, oe = times["original_start_s"], times["original_end_s"]
    es, ee = times["edited_start_s"], times["edited_end_s"]
    if os_ is not None and oe is not None:
        if oe < os_:
            bad("original_end_s", f"ends ({oe}) before original_start_s ({os_})")
        elif edit_type == "insertion" and oe != os_:
            bad("original_end_s", f"an insertion removes nothing: expected original_end_s == original_start_s ({os_})")
        elif edit_type in ("substitution", "deletion") and oe == os_:
            bad("original_end_s", f"a {edit_type} replaces words: expected original_end_s > original_start_s")
    if (es is None) != (ee is None):
        bad("edited_end_s" if ee is None else "edited_start_s", "give both edited_start_s and edited_end_s, or neither")
    elif es is not None and ee is not None:
        if ee < es:
            bad("edited_end_s", f"ends ({ee}) before edited_start_s ({es})")
        elif edit_type == "deletion" and ee != es:
            bad("edited_end_s", f"a deletion adds nothing: expected edited_end_s == edited_start_s ({es})")
        elif edit_type in ("substitution", "insertion") and ee == es:
            bad("edited_end_s", f"a {edit_type} adds words: expected edited_end_s > edited_start_s")

    words, span_class = rec.get("span_words"), rec.get("span_class")
    if words is None and span_class is None:
        bad("span_class", "missing (give span_class or span_words)")
    if words is not None:
        if isinstance(words, bool) or not isinstance(words, int) or not 1 <= words <= 10:
            bad("span_words", f"expected an integer 1..10, got {words!r}")
            words = None
    if span_class is not None and span_class not in SPAN_CLASSES:
        bad("span_class", f"expected one of {tuple(SPAN_CLASSES)}, got {span_class!r}")
    elif words is not None:
        derived = span_class_for(words)
        if span_class is not None and span_class != derived:
            bad("span_class", f"{span_class!r} disagrees with span_words={words} ({derived!r})")
        span_class = derived
    if problems:
        return None, problems
    return (
        BenchSample(
            id=rec["id"],
            original_video=paths["original_video"],
            original_transcript=rec["original_transcript"],
            edited_transcript=rec["edited_transcript"],
            edited_speech=paths["edited_speech"],
            edit_type=edit_type,
            original_start_s=os_,
            original_end_s=oe,
            span_class=span_class,
            original_speech=paths["original_speech"],
            edited_start_s=es,
            edited_end_s=ee,
            span_words=words,
            edited_video=paths["edited_video"],
        ),
        [],
    )


def parse_manifest(
    records: list[Any], base_dir: str = ".", source: str = "manifest", check_files: bool = True
) -> list[BenchSample]:
    """Validate records (dicts) into samples; raises :class:`ManifestError` listing every problem."""
    samples, problems, seen = [], [], {}
    for index, rec in enumerate(records):
        where = f"record {index + 1}"
        sample, found = _check_record(rec, where, base_dir, check_files)
        problems.extend(found)
        if sample is None:
            continue
        if sample.id in seen:
            problems.append(f"sample {sample.id!r} ({where}): field 'id': duplicate of {seen[sample.id]}")
            continue
        seen[sample.id] = where
        samples.append(sample)
    if not records:
        problems.append("no samples")
    if problems:
        raise ManifestError(source, problems)
    return samples


def load_manifest(path: str | os.PathLike, check_files: bool = True) -> list[BenchSample]:
    """Read and validate a manifest file (JSON Lines, or JSON list / ``{"samples": [...]}``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"manifest not found: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    records: list[Any] = []
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and '"samples"' in stripped.split("\n", 1)[0]):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(path, [f"not valid JSON: {exc}"]) from exc
        records = data["samples"] if isinstance(data, dict) and "samples" in data else data
        if not isinstance(records, list):
            raise ManifestError(path, ["expected a list of samples or {'samples': [...]}"])
    else:
        problems = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not valid JSON: {exc.msg}")
        if problems:
            raise ManifestError(path, problems)
    return parse_manifest(records, os.path.dirname(os.path.abspath(path)), path, check_files)


def write_manifest(samples: list[BenchSample], path: str | os.PathLike) -> None:
    """Write samples as JSON Lines (absolute paths)."""
    with open(path, "w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(sample.to_dict(), ensure_ascii=False) + "\n")
