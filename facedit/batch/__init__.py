"""Batch runs of a workflow through ComfyUI's HTTP/websocket API: ``python -m facedit.batch --help``.

Talking to a server needs aiohttp (and tqdm for progress bars); both come with ComfyUI. Without aiohttp the
job files still load and ``--help`` / ``--dry-run`` work.
"""

from .client import ComfyClient, ComfyConnectionError, ComfyError, EventStream, PromptRejected
from .jobs import InputPatch, Job, jobs_from_records, load_jobs, load_workflow, patch_workflow, resolve_job
from .report import BatchReport, JobResult
from .runner import BatchInterrupted, BatchOptions, BatchRun, iter_output_files, run_batch, run_batch_async

__all__ = [
    "BatchInterrupted",
    "BatchOptions",
    "BatchReport",
    "BatchRun",
    "ComfyClient",
    "ComfyConnectionError",
    "ComfyError",
    "EventStream",
    "InputPatch",
    "Job",
    "JobResult",
    "PromptRejected",
    "iter_output_files",
    "jobs_from_records",
    "load_jobs",
    "load_workflow",
    "patch_workflow",
    "resolve_job",
    "run_batch",
    "run_batch_async",
]
