"""Runs a list of jobs through a ComfyUI server: upload, patch, submit, follow, collect, report."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import sys
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .client import (
    CONNECTION_LOST,
    RECONNECTED,
    TERMINAL_EVENTS,
    ComfyClient,
    ComfyConnectionError,
    ComfyError,
    EventStream,
    PromptRejected,
    format_execution_error,
    format_validation_error,
    normalise_server_url,
)
from .jobs import InputPatch, Job, jobs_from_records, load_jobs, load_workflow, patch_workflow, resolve_job
from .report import FAILED, INTERRUPTED, NOT_RUN, SUCCESS, BatchReport, JobResult


@dataclass(frozen=True)
class BatchOptions:
    """How to talk to the server. ``timeout`` counts from when ComfyUI starts executing a job's prompt."""

    server: str = "http://127.0.0.1:8188"
    client_id: str | None = None
    concurrency: int = 1  # prompts of this batch in ComfyUI's queue at once
    retry: int = 0  # re-submissions of a failed job
    timeout: float | None = None
    retry_delay: float = 1.0
    reconnect_timeout: float = 15.0  # how long a dropped websocket may take to come back
    poll_interval: float = 5.0  # /history is checked this often in case an event was missed
    history_wait: float = 30.0  # how long a finished prompt may take to appear in /history
    upload_subfolder: str = ""
    include_temp: bool = False  # also download "temp" files (PreviewImage and friends)
    progress: bool = False

    def __post_init__(self) -> None:
        normalise_server_url(self.server)
        if self.concurrency < 1:
            raise ValueError(f"concurrency: expected at least 1, got {self.concurrency}")
        if self.retry < 0:
            raise ValueError(f"retry: expected 0 or more, got {self.retry}")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout: expected a positive number of seconds, got {self.timeout}")
        for name in ("retry_delay", "reconnect_timeout", "poll_interval", "history_wait"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected 0 or more seconds, got {getattr(self, name)}")
        if self.poll_interval == 0:
            raise ValueError("poll_interval: expected a positive number of seconds, got 0")
        if ".." in PurePosixPath(self.upload_subfolder).parts or self.upload_subfolder.startswith("/"):
            raise ValueError(f"upload_subfolder: expected a relative folder, got {self.upload_subfolder!r}")


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the batch; ``report`` holds what was done (prompts were interrupted on the server)."""

    def __init__(self, report: BatchReport):
        super().__init__("batch interrupted")
        self.report = report


class _JobFailure(Exception):
    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details


def run_batch(
    workflow: str | Path | Mapping[str, Any],
    jobs: str | Path | Sequence[Job] | Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    report_path: str | Path | None = None,
    options: BatchOptions | None = None,
    base_dir: str | Path | None = None,
    **option_fields: Any,
) -> BatchReport:
    """Run every job and return the report. Keyword ``option_fields`` override ``options`` (BatchOptions).

    Bad jobs raise ValueError/FileNotFoundError before anything is sent. Ctrl-C interrupts this batch's
    prompts on the server and raises BatchInterrupted carrying the partial report.
    """
    run = BatchRun(workflow, jobs, out_dir, options, base_dir=base_dir, **option_fields)
    try:
        return asyncio.run(run.run(report_path))
    except KeyboardInterrupt:
        raise BatchInterrupted(run.report()) from None


async def run_batch_async(
    workflow: str | Path | Mapping[str, Any],
    jobs: str | Path | Sequence[Job] | Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    report_path: str | Path | None = None,
    options: BatchOptions | None = None,
    base_dir: str | Path | None = None,
    **option_fields: Any,
) -> BatchReport:
    """As run_batch, inside a running event loop; cancelling it interrupts the batch's prompts."""
    run = BatchRun(workflow, jobs, out_dir, options, base_dir=base_dir, **option_fields)
    return await run.run(report_path)


def iter_output_files(outputs: Mapping[str, Any], types: Iterable[str] = ("output",)) -> Iterator[dict[str, Any]]:
    """File references in a history entry's outputs, whatever key a node uses (images, gifs, audio...)."""
    wanted = set(types)
    seen = set()
    for node_output in outputs.values():
        if not isinstance(node_output, Mapping):
            continue
        for items in node_output.values():
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, Mapping) or not isinstance(item.get("filename"), str):
                    continue
                kind = item.get("type", "output")
                key = (kind, item.get("subfolder") or "", item["filename"])
                if kind in wanted and key not in seen:
                    seen.add(key)
                    yield dict(item)


class BatchRun:
    """One batch. ``await run()`` executes it; ``report()`` gives the state at any time (also after Ctrl-C)."""

    def __init__(
        self,
        workflow: str | Path | Mapping[str, Any],
        jobs: str | Path | Sequence[Job] | Sequence[Mapping[str, Any]],
        out_dir: str | Path,
        options: BatchOptions | None = None,
        *,
        base_dir: str | Path | None = None,
        **option_fields: Any,
    ):
        self.options = dataclasses.replace(options or BatchOptions(), **option_fields)
        self.workflow_name = str(workflow) if isinstance(workflow, (str, Path)) else None
        self.workflow = load_workflow(workflow)
        self.jobs = _as_jobs(jobs, base_dir)
        self.plans = {job.id: resolve_job(self.workflow, job) for job in self.jobs}
        self.out_dir = Path(out_dir)
        self.client_id = self.options.client_id or uuid.uuid4().hex
        self.results = {job.id: JobResult(job.id) for job in self.jobs}
        self.interrupted = False
        self.warnings: list[str] = []
        self._started_at = ""
        self._t0: float | None = None
        self._seconds = 0.0
        self._open_prompts: dict[str, str] = {}  # submitted, not known to be finished -> job id
        self._running_prompts: set[str] = set()
        self._uploaded: dict[Path, str] = {}
        self._upload_locks: dict[Path, asyncio.Lock] = {}
        self._client: ComfyClient | None = None
        self._events: EventStream | None = None
        self._progress: _Progress | None = None
        self._report_path: Path | None = None

    def report(self) -> BatchReport:
        seconds = self._seconds if self._t0 is None else time.monotonic() - self._t0
        return BatchReport(
            server=normalise_server_url(self.options.server),
            client_id=self.client_id,
            out_dir=str(self.out_dir),
            jobs=[dataclasses.replace(self.results[job.id]) for job in self.jobs],
            started_at=self._started_at,
            seconds=round(seconds, 3),
            interrupted=self.interrupted,
            workflow=self.workflow_name,
            warnings=list(self.warnings),
        )

    async def run(self, report_path: str | Path | None = None) -> BatchReport:
        self._started_at = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        self._t0 = time.monotonic()
        self._report_path = Path(report_path) if report_path is not None else None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._progress = _Progress(self.options.progress, len(self.jobs))
        pending = collections.deque(self.jobs)
        try:
            async with ComfyClient(self.options.server, self.client_id) as client:
                self._client = client
                self._events = EventStream(client, self.options.reconnect_timeout)
                workers = [
                    asyncio.create_task(self._worker(pending), name=f"facedit-batch-worker-{i}")
                    for i in range(min(self.options.concurrency, len(self.jobs)))
                ]
                try:
                    await asyncio.gather(*workers)
                except asyncio.CancelledError:
                    self.interrupted = True
                    for worker in workers:
                        worker.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
                    _uncancel()
                    await self._abort_on_server()
                    raise
                finally:
                    await self._events.close()
        finally:
            self._seconds = time.monotonic() - self._t0
            self._t0 = None
            self._progress.close()
            self._write_report()
        return self.report()

    async def _worker(self, pending: collections.deque) -> None:
        while pending:
            await self._run_job(pending.popleft())

    async def _run_job(self, job: Job) -> None:
        result = self.results[job.id]
        bar = self._progress.job(job.id)
        t0 = time.monotonic()
        try:
            for attempt in range(1, self.options.retry + 2):
                result.attempts = attempt
                a0 = time.monotonic()
                try:
                    result.outputs = await self._attempt(job, result, bar)
                except _JobFailure as failure:
                    result.status, result.error, result.error_details = FAILED, failure.message, failure.details
                    result.attempt_log.append(_log_entry(result, a0, failure.message))
                    if attempt <= self.options.retry:
                        self._progress.write(
                            f"{job.id}: attempt {attempt} failed, retrying: {_first_line(failure.message)}"
                        )
                        bar.stage("waiting to retry")
                        await asyncio.sleep(self.options.retry_delay)
                        continue
                    break
                else:
                    result.status, result.error, result.error_details = SUCCESS, None, None
                    result.attempt_log.append(_log_entry(result, a0, None))
                    break
        except asyncio.CancelledError:
            result.status, result.error = INTERRUPTED, "interrupted before it finished (Ctrl-C or cancelled)"
            raise
        except Exception as e:  # a bug in one job must not stop the others
            result.status, result.error = FAILED, f"internal error: {type(e).__name__}: {e}"
            result.error_details = {"traceback": traceback.format_exc().splitlines()}
        finally:
            result.seconds = round(time.monotonic() - t0, 3)
            bar.close()
            self._progress.job_done(result.status)
            if result.status == FAILED:
                self._progress.write(f"{job.id}: failed: {_first_line(result.error or '')}")
            self._write_report()

    async def _attempt(self, job: Job, result: JobResult, bar: _JobBar) -> list[str]:
        assert self._client is not None and self._events is not None
        try:
            await self._events.connect()
            bar.stage("uploading")
            uploaded = await self._upload_files(self.plans[job.id])
        except ComfyError as e:
            raise _JobFailure(str(e)) from e
        patched = patch_workflow(self.workflow, self.plans[job.id], uploaded)
        prompt_id = str(uuid.uuid4())
        queue = self._events.subscribe(prompt_id)
        self._open_prompts[prompt_id] = job.id  # before sending, so Ctrl-C during the POST still finds it
        try:
            bar.stage("submitting")
            try:
                reply = await self._client.queue_prompt(patched, prompt_id)
            except PromptRejected as e:
                self._open_prompts.pop(prompt_id, None)
                raise _JobFailure(str(e), {"error": e.error, "node_errors": e.node_errors}) from e
            except ComfyError as e:
                self._open_prompts.pop(prompt_id, None)
                raise _JobFailure(str(e)) from e
            if reply["prompt_id"] != prompt_id:
                queue = self._events.rename(prompt_id, reply["prompt_id"])
                self._open_prompts.pop(prompt_id, None)
                prompt_id = reply["prompt_id"]
                self._open_prompts[prompt_id] = job.id
            result.prompt_id = prompt_id
            if reply.get("node_errors"):
                result.warnings.append(
                    "some outputs failed validation and were skipped:\n"
                    + format_validation_error(None, reply["node_errors"])
                )
            bar.stage("queued")
            entry = await self._follow(prompt_id, queue, bar)
            bar.stage("downloading")
            return await self._collect(job, result, entry)
        finally:
            self._events.unsubscribe(prompt_id)

    async def _upload_files(self, patches: list[InputPatch]) -> dict[Path, str]:
        """Upload each file once per batch, even when several jobs (or retries) share it."""
        assert self._client is not None
        names = {}
        for patch in patches:
            if patch.upload is None:
                continue
            lock = self._upload_locks.setdefault(patch.upload, asyncio.Lock())
            async with lock:
                if patch.upload not in self._uploaded:
                    self._uploaded[patch.upload] = await self._client.upload(
                        patch.upload, self.options.upload_subfolder
                    )
            names[patch.upload] = self._uploaded[patch.upload]
        return names

    async def _follow(self, prompt_id: str, queue: asyncio.Queue, bar: _JobBar) -> dict[str, Any]:
        """Wait for the prompt to end (websocket events, /history as a fallback); return its history entry."""
        loop = asyncio.get_running_loop()
        timeout = self.options.timeout
        started: float | None = None
        final: tuple[str, dict[str, Any]] | None = None
        entry = None
        while final is None and entry is None:
            wait = self.options.poll_interval
            if timeout is not None and started is not None:
                left = started + timeout - loop.time()
                if left <= 0:
                    await self._give_up_on(prompt_id)
                    raise _JobFailure(f"timed out after {timeout:g} s of execution; interrupted on the server")
                wait = min(wait, left)
            item = await _get_within(queue, wait)
            if item is None:
                entry = await self._history(prompt_id)
                continue
            kind, data = item
            if kind == CONNECTION_LOST:
                self._open_prompts.pop(prompt_id, None)
                raise _JobFailure(data["error"])
            if kind == RECONNECTED:
                entry = await self._history(prompt_id)
                if entry is None:
                    state = await self._queue_state(prompt_id)
                    if state == "running" and started is None:
                        started = loop.time()
                    elif state is None:
                        entry = await self._history(prompt_id)
                        if entry is None:
                            self._open_prompts.pop(prompt_id, None)
                            raise _JobFailure(
                                f"prompt {prompt_id} is gone from ComfyUI's queue and history after the websocket "
                                f"dropped ({data['reason']}); was the server restarted?"
                            )
                continue
            if kind == "execution_start":
                started = loop.time()
                self._running_prompts.add(prompt_id)
                bar.stage("running")
            elif kind == "execution_cached":
                bar.stage(f"running ({len(data.get('nodes') or [])} nodes cached)")
            elif kind == "executing":
                node = data.get("node")
                if node is None:
                    final = (kind, data)
                else:
                    started = started if started is not None else loop.time()
                    bar.stage(self._node_label(node))
            elif kind == "progress":
                started = started if started is not None else loop.time()
                bar.progress(data.get("value"), data.get("max"), self._node_label(data.get("node")))
            elif kind in TERMINAL_EVENTS:
                final = (kind, data)
        self._open_prompts.pop(prompt_id, None)
        self._running_prompts.discard(prompt_id)
        if entry is None:
            entry = await self._wait_for_history(prompt_id)
        return _judge(prompt_id, entry, final)

    async def _history(self, prompt_id: str) -> dict[str, Any] | None:
        assert self._client is not None
        try:
            return await self._client.history(prompt_id)
        except ComfyConnectionError:
            return None  # the websocket side decides whether the connection is lost
        except ComfyError as e:
            raise _JobFailure(str(e)) from e

    async def _queue_state(self, prompt_id: str) -> str | None:
        assert self._client is not None
        try:
            running, pending = await self._client.queue()
        except ComfyError as e:
            raise _JobFailure(str(e)) from e
        if prompt_id in running:
            return "running"
        return "pending" if prompt_id in pending else None

    async def _wait_for_history(self, prompt_id: str) -> dict[str, Any] | None:
        """History is written just after the final events are sent, so poll briefly."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.history_wait
        delay = 0.02
        while True:
            entry = await self._history(prompt_id)
            if entry is not None or loop.time() >= deadline:
                return entry
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _give_up_on(self, prompt_id: str) -> None:
        assert self._client is not None
        self._open_prompts.pop(prompt_id, None)
        self._running_prompts.discard(prompt_id)
        with contextlib.suppress(ComfyError):
            await self._client.interrupt(prompt_id)

    async def _collect(self, job: Job, result: JobResult, entry: dict[str, Any]) -> list[str]:
        assert self._client is not None
        types = ("output", "temp") if self.options.include_temp else ("output",)
        refs = sorted(iter_output_files(entry.get("outputs") or {}, types), key=lambda ref: ref.get("type") != "output")
        if not refs:
            result.warnings.append(f"the prompt finished but listed no files of type {' or '.join(types)}")
        job_dir = self.out_dir / job.id
        paths = []
        for ref in refs:
            dest = job_dir / _local_name(ref)
            try:
                await self._client.download(ref, dest)
            except ComfyError as e:
                raise _JobFailure(str(e)) from e
            paths.append(dest.relative_to(self.out_dir).as_posix())
        return paths

    async def _abort_on_server(self) -> None:
        """After Ctrl-C: drop this batch's queued prompts, then interrupt its running ones."""
        if not self._open_prompts or self._client is None:
            return
        ours = set(self._open_prompts)
        running, pending = set(self._running_prompts), ours - self._running_prompts
        try:
            server_running, server_pending = await asyncio.wait_for(self._client.queue(), 5.0)
            running, pending = ours & set(server_running), ours & set(server_pending)
        except (ComfyError, asyncio.TimeoutError) as e:
            self.warnings.append(f"could not read ComfyUI's queue while stopping: {e}")
        try:
            if pending:
                await asyncio.wait_for(self._client.delete_queued(sorted(pending)), 5.0)
            for prompt_id in sorted(running):
                await asyncio.wait_for(self._client.interrupt(prompt_id), 5.0)
        except (ComfyError, asyncio.TimeoutError) as e:
            self.warnings.append(f"could not stop this batch's prompts on the server: {e}")
        for prompt_id, job_id in self._open_prompts.items():
            what = "interrupted on the server" if prompt_id in running else "removed from the queue"
            self.results[job_id].warnings.append(f"prompt {prompt_id} {what} (Ctrl-C)")

    def _node_label(self, node: Any) -> str:
        if node is None:
            return ""
        spec = self.workflow.get(str(node).split(":")[-1]) or self.workflow.get(str(node)) or {}
        return f"node {node} {spec.get('class_type', '')}".rstrip()

    def _write_report(self) -> None:
        if self._report_path is not None:
            self.report().write(self._report_path)


async def _get_within(queue: asyncio.Queue, timeout: float) -> Any:
    """``queue.get()`` or None after ``timeout`` s. Not wait_for: before Python 3.12 it can swallow a
    cancellation (Ctrl-C) that arrives just as the item does."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    try:
        done, _ = await asyncio.wait({getter}, timeout=timeout)
    finally:
        if not getter.done():
            getter.cancel()
    return getter.result() if getter in done else None


def _judge(prompt_id: str, entry: dict[str, Any] | None, final: tuple[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The prompt's outcome, from its history entry (authoritative) or else from the websocket's last event."""
    messages: list[tuple[str, dict[str, Any]]] = []
    status_str = None
    if entry is not None:
        status = entry.get("status") or {}
        status_str = status.get("status_str")
        messages = [tuple(m) for m in status.get("messages") or [] if isinstance(m, (list, tuple)) and len(m) == 2]
    if final is not None and final[0] in TERMINAL_EVENTS:
        messages.append(final)
    for kind, data in messages:
        if kind == "execution_error":
            raise _JobFailure(format_execution_error(data), {"execution_error": data})
    for kind, data in messages:
        if kind == "execution_interrupted":
            where = f"{data.get('node_type', '?')} (node {data.get('node_id', '?')})"
            raise _JobFailure(f"interrupted on the server while running {where}", {"execution_interrupted": data})
    if entry is None:
        raise _JobFailure(f"prompt {prompt_id} finished but /history has no entry for it, so its outputs are unknown")
    if status_str == "error":
        raise _JobFailure(
            "ComfyUI reports the prompt failed but sent no error message", {"status": entry.get("status")}
        )
    return entry


def _local_name(ref: Mapping[str, Any]) -> Path:
    """Where an output lands inside the job's folder: its subfolder and name, never outside the folder."""
    parts = [p for p in PurePosixPath(str(ref.get("subfolder") or "").replace("\\", "/")).parts if p not in ("", ".")]
    if any(p == ".." or p.startswith("/") for p in parts):
        parts = []
    name = PurePosixPath(ref["filename"].replace("\\", "/")).name
    return Path(*parts, name)


def _as_jobs(jobs: Any, base_dir: str | Path | None) -> list[Job]:
    if isinstance(jobs, (str, Path)):
        return load_jobs(jobs)
    jobs = list(jobs)
    if not jobs:
        raise ValueError("jobs: the batch has no jobs")
    if all(isinstance(job, Job) for job in jobs):
        ids = [job.id for job in jobs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"jobs: duplicate job id(s) {', '.join(duplicates)}")
        return jobs
    if all(isinstance(job, Mapping) for job in jobs):
        return jobs_from_records(jobs, base_dir)
    raise ValueError("jobs: expected a jobs file path, a list of Job, or a list of dicts")


def _log_entry(result: JobResult, t0: float, error: str | None) -> dict[str, Any]:
    return {
        "attempt": result.attempts,
        "prompt_id": result.prompt_id,
        "status": SUCCESS if error is None else FAILED,
        "seconds": round(time.monotonic() - t0, 3),
        "error": error,
    }


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _uncancel() -> None:
    """Let clean-up awaits run after a caught cancellation (Python 3.11+ counts cancellations)."""
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()


class _Progress:
    """One overall bar and one bar per job in flight (tqdm, on stderr); does nothing when disabled."""

    def __init__(self, enabled: bool, total: int):
        self._tqdm = None
        self._overall = None
        self._free: list[int] = []
        self._next = 1
        self._counts: collections.Counter = collections.Counter()
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError as e:
            raise ImportError("progress bars need tqdm: pip install tqdm (or turn progress off)") from e
        self._tqdm = tqdm
        self._overall = tqdm(total=total, desc="batch", unit="job", position=0, file=sys.stderr, dynamic_ncols=True)

    def job(self, job_id: str) -> _JobBar:
        if self._tqdm is None:
            return _JobBar(None)
        position = self._free.pop(0) if self._free else self._next
        if position == self._next:
            self._next += 1
        bar = self._tqdm(
            total=None, desc=job_id, unit="step", position=position, leave=False, file=sys.stderr, dynamic_ncols=True
        )
        return _JobBar(bar, lambda: self._free.append(position) or self._free.sort())

    def job_done(self, status: str) -> None:
        self._counts[status] += 1
        if self._overall is not None:
            self._overall.update(1)
            self._overall.set_postfix({k: v for k, v in self._counts.items() if k != NOT_RUN}, refresh=True)

    def write(self, message: str) -> None:
        if self._tqdm is not None:
            self._tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        if self._overall is not None:
            self._overall.close()
            self._overall = None


class _JobBar:
    def __init__(self, bar: Any, release: Any = None):
        self._bar = bar
        self._release = release

    def stage(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def progress(self, value: Any, maximum: Any, label: str) -> None:
        if self._bar is None or not isinstance(value, (int, float)) or not isinstance(maximum, (int, float)):
            return
        self._bar.total = maximum
        self._bar.n = value
        self._bar.set_postfix_str(label, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            if self._release is not None:
                self._release()
