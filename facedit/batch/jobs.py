"""Job lists (CSV / JSON lines) and how their fields patch an API-format ComfyUI workflow.

A job is one row (CSV) or one object (JSON lines). Its keys:

- ``id``: the job's name and the folder its outputs go to (``OUT/<id>/``); ``job0001``... when absent.
- ``<node>.<input>``: sets that input of that node. ``<node>`` is a node id of the API workflow (``"12"``,
  ``"5:3"`` inside subgraphs) or a node title (the workflow's ``_meta.title``). The key is split at its
  LAST dot, so titles may contain dots.
- keys starting with ``#``: comments, ignored.

Values:

- ``@file:PATH``: the file is uploaded to ComfyUI's input folder (``/upload/image``, used for every
  kind of file) and the input receives the name ComfyUI gave it.
- ``@text:PATH``: the input receives the file's content as text (UTF-8), e.g. a word-timestamp JSON.
- anything else is a literal, converted to the type of the value the workflow already holds (INT, FLOAT,
  BOOLEAN, STRING). An empty CSV cell or a JSON ``null`` keeps the workflow's value.

Relative paths are resolved against the jobs file's folder. In JSON lines files, blank lines and lines
starting with ``#`` are skipped; in CSV files, blank rows are.
"""

from __future__ import annotations

import copy
import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_PREFIX = "@file:"
TEXT_PREFIX = "@text:"
ID_KEY = "id"
_ID_PATTERN = re.compile(r"^[^/\\\x00-\x1f]{1,120}$")


@dataclass(frozen=True)
class Job:
    """One job of a batch: its id, its raw fields and where it came from (for error messages)."""

    id: str
    fields: Mapping[str, Any]
    source: str
    base_dir: Path = field(default_factory=Path.cwd)

    def where(self) -> str:
        return f"job '{self.id}' ({self.source})"


@dataclass(frozen=True)
class InputPatch:
    """One workflow input set by one job field: a literal, a file to upload, or a text file's content."""

    column: str
    node_id: str
    input_name: str
    value: Any = None
    upload: Path | None = None


def load_workflow(workflow: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Read an API-format workflow (a dict of node id -> {class_type, inputs}) and check its shape."""
    name = "workflow"
    if isinstance(workflow, (str, Path)):
        name = str(workflow)
        path = Path(workflow)
        if not path.is_file():
            raise FileNotFoundError(f"workflow file not found: {path}")
        try:
            workflow = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{name}: not valid JSON ({e})") from e
    if not isinstance(workflow, Mapping):
        raise ValueError(f"{name}: expected a JSON object of nodes, got {type(workflow).__name__}")
    if "nodes" in workflow and "links" in workflow:
        raise ValueError(
            f"{name} is a UI-format workflow; the batch runner needs the API format "
            "(in ComfyUI: Workflow > Export (API))"
        )
    if not workflow:
        raise ValueError(f"{name}: the workflow has no nodes")
    for node_id, node in workflow.items():
        if not isinstance(node, Mapping) or "class_type" not in node or not isinstance(node.get("inputs"), Mapping):
            raise ValueError(f"{name}: node '{node_id}' is not an API-format node (needs class_type and inputs)")
    return copy.deepcopy(dict(workflow))


def load_jobs(path: str | Path) -> list[Job]:
    """Read jobs from a ``.csv`` file or a JSON lines file (``.jsonl``/``.ndjson``; ``.json`` holding a list)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"jobs file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _read_csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        records = _read_jsonl(path)
    elif suffix == ".json":
        records = _read_json_list(path)
    else:
        raise ValueError(f"jobs file {path}: unknown extension '{path.suffix}'; expected .csv, .jsonl or .json")
    if not records:
        raise ValueError(f"jobs file {path} holds no jobs")
    return jobs_from_records(records, base_dir=path.resolve().parent)


def jobs_from_records(
    records: Iterable[Mapping[str, Any] | tuple[str, Mapping[str, Any]]], base_dir: str | Path | None = None
) -> list[Job]:
    """Build jobs from dicts (or ``(source, dict)`` pairs); checks ids (unique, usable as folder names)."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    jobs: list[Job] = []
    seen: dict[str, str] = {}
    for index, record in enumerate(records, start=1):
        source, fields = record if isinstance(record, tuple) else (f"job #{index}", record)
        if not isinstance(fields, Mapping):
            raise ValueError(f"{source}: a job must be an object of fields, got {type(fields).__name__}")
        raw_id = fields.get(ID_KEY)
        job_id = f"job{index:04d}" if raw_id is None or raw_id == "" else str(raw_id)
        if not _ID_PATTERN.match(job_id) or job_id.strip() != job_id or job_id in (".", ".."):
            raise ValueError(
                f"{source}: job id {job_id!r} cannot name an output folder "
                "(no slashes or control characters, no surrounding spaces, 1-120 characters)"
            )
        if job_id in seen:
            raise ValueError(f"{source}: job id '{job_id}' is used twice (first in {seen[job_id]})")
        seen[job_id] = source
        rest = {k: v for k, v in fields.items() if k != ID_KEY}
        jobs.append(Job(id=job_id, fields=rest, source=source, base_dir=base))
    return jobs


def resolve_job(workflow: Mapping[str, Any], job: Job) -> list[InputPatch]:
    """Map a job's fields onto workflow inputs; every mistake names the job, the column and what exists."""
    patches = []
    for column, raw in job.fields.items():
        if not isinstance(column, str):
            raise ValueError(f"{job.where()}: field name {column!r} is not a string")
        if column.startswith("#") or raw is None:
            continue
        node_id, input_name = _resolve_column(workflow, job, column)
        current = workflow[node_id]["inputs"][input_name]
        if isinstance(raw, str) and raw.startswith(FILE_PREFIX):
            path = _job_path(job, column, raw[len(FILE_PREFIX) :])
            patches.append(InputPatch(column, node_id, input_name, upload=path))
        elif isinstance(raw, str) and raw.startswith(TEXT_PREFIX):
            path = _job_path(job, column, raw[len(TEXT_PREFIX) :])
            if not _is_link(current) and not isinstance(current, str):
                raise ValueError(
                    f"{job.where()}, column '{column}': {TEXT_PREFIX} needs a STRING input, "
                    f"but the workflow holds {current!r}"
                )
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{job.where()}, column '{column}': {path} is not UTF-8 text ({e})") from e
            patches.append(InputPatch(column, node_id, input_name, value=text))
        else:
            value = _coerce(raw, current, f"{job.where()}, column '{column}'")
            patches.append(InputPatch(column, node_id, input_name, value=value))
    return patches


def patch_workflow(
    workflow: Mapping[str, Any], patches: Iterable[InputPatch], uploaded: Mapping[Path, str] | None = None
) -> dict[str, Any]:
    """A patched deep copy of the workflow; ``uploaded`` maps each uploaded path to ComfyUI's name for it."""
    patched = copy.deepcopy(dict(workflow))
    for patch in patches:
        if patch.upload is not None:
            if uploaded is None or patch.upload not in uploaded:
                raise ValueError(f"column '{patch.column}': {patch.upload} has not been uploaded")
            value = uploaded[patch.upload]
        else:
            value = patch.value
        patched[patch.node_id]["inputs"][patch.input_name] = value
    return patched


def describe_nodes(workflow: Mapping[str, Any]) -> str:
    parts = []
    for node_id, node in workflow.items():
        title = (node.get("_meta") or {}).get("title")
        label = f"{node_id} ({node['class_type']}"
        parts.append(label + (f' "{title}")' if title else ")"))
    return ", ".join(parts)


def _resolve_column(workflow: Mapping[str, Any], job: Job, column: str) -> tuple[str, str]:
    where = f"{job.where()}, column '{column}'"
    if "." not in column:
        raise ValueError(
            f"{where}: a column must be 'id', '#comment' or '<node id or title>.<input name>' "
            f"(e.g. '12.seed'); workflow nodes: {describe_nodes(workflow)}"
        )
    node_ref, input_name = column.rsplit(".", 1)
    if node_ref in workflow:
        node_id = node_ref
    else:
        titled = [nid for nid, node in workflow.items() if (node.get("_meta") or {}).get("title") == node_ref]
        if not titled:
            raise ValueError(
                f"{where}: no node with id or title '{node_ref}'; workflow nodes: {describe_nodes(workflow)}"
            )
        if len(titled) > 1:
            raise ValueError(
                f"{where}: the title '{node_ref}' names several nodes ({', '.join(titled)}); use a node id instead"
            )
        node_id = titled[0]
    inputs = workflow[node_id]["inputs"]
    if input_name not in inputs:
        node = workflow[node_id]
        raise ValueError(
            f"{where}: node {node_id} ({node['class_type']}) has no input '{input_name}'; "
            f"its inputs: {', '.join(inputs) or '(none)'}"
        )
    return node_id, input_name


def _job_path(job: Job, column: str, text: str) -> Path:
    if not text:
        raise ValueError(f"{job.where()}, column '{column}': no path after the @-prefix")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = job.base_dir / path
    if not path.is_file():
        raise FileNotFoundError(f"{job.where()}, column '{column}': file not found: {path}")
    return path.resolve()


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _coerce(value: Any, current: Any, where: str) -> Any:
    """Convert a job value to the type of the workflow's current value (CSV gives strings only)."""
    if isinstance(value, (list, dict)):
        raise ValueError(f"{where}: expected a single value, got {type(value).__name__} {value!r}")
    if _is_link(current) or current is None:
        return _infer(value) if isinstance(value, str) else value
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"{where}: expected a boolean (true/false), got {value!r}")
    if isinstance(current, int):
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if isinstance(current, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if isinstance(current, str):
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{where}: expected a string, got {value!r}")
    return value


def _infer(text: str) -> Any:
    """A value for an input the workflow links to another node (no literal to take the type from)."""
    stripped = text.strip()
    for kind in (int, float):
        try:
            return kind(stripped)
        except ValueError:
            pass
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    return text


def _read_csv(path: Path) -> list[tuple[str, dict[str, str | None]]]:
    """Rows as dicts; an empty cell becomes None (keep the workflow's value)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return []
        except csv.Error as e:
            raise ValueError(f"{path} line {reader.line_num}: {e}") from e
        header = [name.strip() for name in header]
        for i, name in enumerate(header, start=1):
            if not name:
                raise ValueError(f"{path} line 1: column {i} of the header has no name")
        duplicates = sorted({n for n in header if header.count(n) > 1})
        if duplicates:
            raise ValueError(f"{path} line 1: duplicate column(s) {', '.join(duplicates)}")
        records = []
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise ValueError(f"{path} line {reader.line_num}: {e}") from e
            if not row or all(cell.strip() == "" for cell in row):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path} line {reader.line_num}: {len(row)} fields, but the header has {len(header)} "
                    f"({', '.join(header)})"
                )
            fields = {name: (cell if cell != "" else None) for name, cell in zip(header, row, strict=True)}
            records.append((f"{path.name} line {reader.line_num}", fields))
    return records


def _read_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} line {number}: not valid JSON ({e.msg} at column {e.colno})") from e
        if not isinstance(value, dict):
            raise ValueError(f"{path} line {number}: expected a JSON object, got {type(value).__name__}")
        records.append((f"{path.name} line {number}", value))
    return records


def _read_json_list(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(value, list):
        raise ValueError(f"{path}: expected a JSON list of job objects, got {type(value).__name__}")
    return [(f"{path.name} item {i}", item) for i, item in enumerate(value, start=1)]
