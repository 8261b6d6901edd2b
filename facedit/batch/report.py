"""What a batch did: one record per job, written as JSON and printed as a table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUCCESS = "success"
FAILED = "failed"
INTERRUPTED = "interrupted"
NOT_RUN = "not_run"
STATUSES = (SUCCESS, FAILED, INTERRUPTED, NOT_RUN)
REPORT_VERSION = 1


@dataclass
class JobResult:
    """One job's outcome. ``outputs`` are paths relative to the batch's output folder."""

    id: str
    status: str = NOT_RUN
    seconds: float = 0.0
    attempts: int = 0
    prompt_id: str | None = None
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    error_details: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    attempt_log: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BatchReport:
    server: str
    client_id: str
    out_dir: str
    jobs: list[JobResult]
    started_at: str = ""
    seconds: float = 0.0
    interrupted: bool = False
    workflow: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(job.status == SUCCESS for job in self.jobs)

    def counts(self) -> dict[str, int]:
        return {status: sum(job.status == status for job in self.jobs) for status in STATUSES}

    def exit_code(self) -> int:
        """0 all jobs succeeded, 1 some failed, 130 interrupted (as a shell reports Ctrl-C)."""
        if self.interrupted:
            return 130
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = REPORT_VERSION
        data["counts"] = self.counts()
        return data

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        partial.replace(path)
        return path

    def format_table(self, width: int | None = None) -> str:
        """A plain-text table: job, status, seconds, outputs, error (on one line, shortened to ``width``)."""
        rows = [("job", "status", "seconds", "outputs", "error")]
        for job in self.jobs:
            outputs = ""
            if job.outputs:
                outputs = job.outputs[0] + (f" (+{len(job.outputs) - 1})" if len(job.outputs) > 1 else "")
            error = " | ".join(line.strip() for line in (job.error or "").splitlines() if line.strip())
            attempts = f" x{job.attempts}" if job.attempts > 1 else ""
            rows.append((job.id, job.status + attempts, f"{job.seconds:.1f}", outputs, error))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = []
        for row in rows:
            head = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4]))
            room = max(20, width - len(head) - 2) if width else len(row[4])
            error = row[4] if len(row[4]) <= room else row[4][: room - 3] + "..."
            lines.append(f"{head}  {error}".rstrip())
        rule = max(len(line) for line in lines)
        lines.insert(1, "-" * (min(width, rule) if width else rule))
        counts = self.counts()
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        lines.append(
            f"{len(self.jobs)} jobs: {summary} in {self.seconds:.1f} s" + (" (interrupted)" if self.interrupted else "")
        )
        return "\n".join(lines)
