"""``python -m facedit.batch``: run one API-format workflow once per job through a ComfyUI server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
from pathlib import Path

from ..cli import error_line
from . import client
from .jobs import load_jobs, load_workflow
from .report import BatchReport
from .runner import BatchOptions, BatchRun

EPILOG = """\
jobs file (CSV with a header row, or JSON lines with one object per line):
  id                 job name and output folder OUT/<id>/ (default job0001, job0002, ...)
  <node>.<input>     sets an input; <node> is a node id of the API workflow or its title (_meta.title)
  #anything          a comment column, ignored
values:
  @file:PATH         upload PATH through /upload/image; the input gets ComfyUI's name for the file
  @text:PATH         the input gets the content of the text file PATH (e.g. word timestamps JSON)
  other              a literal, converted to the type of the workflow's value; empty cell / null: keep it
  relative paths are relative to the jobs file; JSON lines: blank lines and lines starting with # are skipped

exit status: 0 all jobs succeeded, 1 some failed, 2 bad arguments or jobs file, 130 interrupted (Ctrl-C)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m facedit.batch",
        description="Run an API-format ComfyUI workflow once per job and collect the outputs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workflow", required=True, type=Path, metavar="API_JSON", help="API-format workflow JSON (Export (API))"
    )
    parser.add_argument(
        "--jobs", required=True, type=Path, metavar="FILE", help="jobs file: .csv, .jsonl/.ndjson, or .json list"
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="OUT", help="output folder; each job's files go to OUT/<id>/"
    )
    parser.add_argument(
        "--server", default="http://127.0.0.1:8188", metavar="URL", help="ComfyUI address (default %(default)s)"
    )
    parser.add_argument("--client-id", default=None, metavar="ID", help="websocket client id (default: a random one)")
    parser.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="prompts of this batch queued at once (default 1)"
    )
    parser.add_argument(
        "--retry", type=int, default=0, metavar="K", help="re-submit a failed job up to K times (default 0)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="fail and interrupt a job that runs over S seconds on the server",
    )
    parser.add_argument(
        "--report", type=Path, default=None, metavar="FILE", help="report JSON path (default OUT/report.json)"
    )
    parser.add_argument(
        "--upload-subfolder",
        default="",
        metavar="DIR",
        help="subfolder of ComfyUI's input folder for uploads (core LoadVideo/LoadAudio list only the top folder)",
    )
    parser.add_argument("--include-temp", action="store_true", help="also download temp files (previews)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--dry-run", action="store_true", help="check the jobs against the workflow and stop")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = BatchOptions(
            server=args.server,
            client_id=args.client_id,
            concurrency=args.concurrency,
            retry=args.retry,
            timeout=args.timeout,
            upload_subfolder=args.upload_subfolder,
            include_temp=args.include_temp,
            progress=not args.no_progress,
        )
        run = BatchRun(load_workflow(args.workflow), load_jobs(args.jobs), args.out, options)
        run.workflow_name = str(args.workflow)
    except (ValueError, OSError) as e:  # a workflow or jobs file that is missing, unreadable or a folder
        print(f"error: {error_line(e)}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(_describe_plans(run))
        return 0
    if client.aiohttp is None:
        print(f"error: {client.AIOHTTP_MISSING}", file=sys.stderr)
        return 2
    report_path = args.report or args.out / "report.json"
    report = _run_until_done_or_interrupted(run, report_path)
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    print(report.format_table(width))
    print(f"report: {report_path}")
    return report.exit_code()


def _run_until_done_or_interrupted(run: BatchRun, report_path: Path) -> BatchReport:
    """Run the batch; Ctrl-C (or SIGTERM) cancels it, which interrupts its prompts on the server."""

    async def guarded() -> BatchReport:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, task.cancel)
                installed.append(sig)
        try:
            return await run.run(report_path)
        except asyncio.CancelledError:
            return _interrupted_report(run, report_path)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:  # platforms without loop signal handlers
        return _interrupted_report(run, report_path)


def _interrupted_report(run: BatchRun, report_path: Path) -> BatchReport:
    run.interrupted = True
    report = run.report()
    report.write(report_path)
    return report


def _describe_plans(run: BatchRun) -> str:
    lines = []
    for job in run.jobs:
        lines.append(f"{job.id} ({job.source}):")
        for patch in run.plans[job.id]:
            node = run.workflow[patch.node_id]
            target = f"  {patch.node_id}.{patch.input_name} [{node['class_type']}]"
            if patch.upload is not None:
                lines.append(f"{target} <- upload {patch.upload}")
            elif isinstance(patch.value, str) and len(patch.value) > 60:
                lines.append(f"{target} = text of {len(patch.value)} characters")
            else:
                lines.append(f"{target} = {patch.value!r}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
