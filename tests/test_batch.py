"""The batch runner (facedit.batch) against an in-process fake ComfyUI that speaks the real protocol."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _fake_comfy import FakeComfy, example_workflow

from facedit.batch import (
    BatchInterrupted,
    BatchOptions,
    BatchRun,
    iter_output_files,
    load_jobs,
    load_workflow,
    patch_workflow,
    resolve_job,
    run_batch,
)
from facedit.batch.__main__ import main as cli_main
from facedit.batch.client import format_validation_error

ROOT = Path(__file__).resolve().parents[1]
FAST = {"retry_delay": 0.0, "poll_interval": 0.5, "reconnect_timeout": 1.0, "history_wait": 3.0}


# ---------------------------------------------------------------- helpers
def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """Small 'media' files whose content identifies them in the fake's renders."""
    folder = tmp_path / "media"
    (folder / "other").mkdir(parents=True)
    (folder / "clip_a.mp4").write_text("VIDEO-A")
    (folder / "clip_b.mp4").write_text("VIDEO-B")
    (folder / "other" / "clip_a.mp4").write_text("VIDEO-A-OTHER")  # same name, other content
    (folder / "speech_a.wav").write_text("SPEECH-A")
    (folder / "speech_b.wav").write_text("SPEECH-B")
    (folder / "words_a.json").write_text(json.dumps({"words": [["hello", 0.0, 0.4], ["world", 0.5, 0.9]]}))
    return folder


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "workflow_api.json"
    path.write_text(json.dumps(example_workflow()))
    return path


@pytest.fixture
def fake(tmp_path: Path):
    with FakeComfy(tmp_path / "comfy") as server:
        yield server


def job_record(job_id: str, video: str, speech: str, spans: str = "0.5-1.5", seed: int = 1, **extra) -> dict:
    record = {"id": job_id, "Load Video.file": f"@file:{video}", "2.audio": f"@file:{speech}", "3.spans": spans}
    record["Edit Plan.seed"] = seed
    record.update(extra)
    return record


def render_of(out_dir: Path, relative: str) -> dict:
    return json.loads((out_dir / relative).read_text())


# ---------------------------------------------------------------- jobs files and patching
def test_csv_jobs_patch_inputs_by_node_id_and_title_with_types(tmp_path, media, workflow_file):
    jobs_file = write_csv(
        media / "jobs.csv",
        ["id", "Load Video.file", "2.audio", "Edit Plan.spans", "3.seed", "3.cfg", "3.timestamps", "# note"],
        [
            ["a", "@file:clip_a.mp4", "@file:speech_a.wav", "0.5-1.5", "7", "1.5", "@text:words_a.json", "x"],
            ["b", "@file:clip_b.mp4", "@file:speech_b.wav", "", "8", "", "", ""],
        ],
    )
    workflow = load_workflow(workflow_file)
    jobs = load_jobs(jobs_file)
    assert [job.id for job in jobs] == ["a", "b"]
    uploaded = {(media / "clip_a.mp4").resolve(): "clip_a.mp4", (media / "speech_a.wav").resolve(): "speech_a.wav"}
    uploaded |= {(media / "clip_b.mp4").resolve(): "clip_b (1).mp4", (media / "speech_b.wav").resolve(): "sb.wav"}

    a = patch_workflow(workflow, resolve_job(workflow, jobs[0]), uploaded)
    assert a["1"]["inputs"]["file"] == "clip_a.mp4"
    assert a["3"]["inputs"]["seed"] == 7 and isinstance(a["3"]["inputs"]["seed"], int)
    assert a["3"]["inputs"]["cfg"] == 1.5 and isinstance(a["3"]["inputs"]["cfg"], float)
    assert a["3"]["inputs"]["spans"] == "0.5-1.5"
    assert json.loads(a["3"]["inputs"]["timestamps"])["words"][1][0] == "world"
    assert a["3"]["inputs"]["video"] == ["1", 0], "links must stay links"

    b = patch_workflow(workflow, resolve_job(workflow, jobs[1]), uploaded)
    assert b["1"]["inputs"]["file"] == "clip_b (1).mp4"
    assert b["3"]["inputs"]["spans"] == "0.0-1.0", "an empty cell keeps the workflow's value"
    assert b["3"]["inputs"]["cfg"] == 2.0
    assert workflow["1"]["inputs"]["file"] == "placeholder.mp4", "the workflow itself is never modified"


def test_jsonl_jobs_keep_json_types_skip_comments_and_default_ids(tmp_path, media, workflow_file):
    path = media / "jobs.jsonl"
    path.write_text(
        "# a comment line\n"
        + json.dumps({"3.seed": 5, "3.cfg": 3, "3.spans": "", "3.timestamps": None})
        + "\n\n"
        + json.dumps({"id": "two", "Edit Plan.seed": 6.0})
        + "\n"
    )
    workflow = load_workflow(workflow_file)
    jobs = load_jobs(path)
    assert [job.id for job in jobs] == ["job0001", "two"]
    first = patch_workflow(workflow, resolve_job(workflow, jobs[0]))
    assert first["3"]["inputs"]["seed"] == 5
    assert first["3"]["inputs"]["cfg"] == 3.0 and isinstance(first["3"]["inputs"]["cfg"], float)
    assert first["3"]["inputs"]["spans"] == "", "JSON empty string sets an empty string"
    assert first["3"]["inputs"]["timestamps"] == "", "null keeps the workflow's value"
    assert patch_workflow(workflow, resolve_job(workflow, jobs[1]))["3"]["inputs"]["seed"] == 6


BAD_JOBS = [
    # (file name, content, expected words in the message)
    (
        "jobs.csv",
        "id,9.seed\na,1\n",
        ["job 'a'", "jobs.csv line 2", "9.seed", "no node with id or title '9'", '3 (FacEDiTEditPlan "Edit Plan")'],
    ),
    ("jobs.csv", "id,3.sead\na,1\n", ["column '3.sead'", "has no input 'sead'", "spans, seed, cfg"]),
    ("jobs.csv", "id,Edit Plan.seed\na,x1\n", ["column 'Edit Plan.seed'", "expected an integer", "'x1'"]),
    ("jobs.csv", "id,3.cfg\na,fast\n", ["expected a number", "'fast'"]),
    ("jobs.csv", "id,seed\na,1\n", ["column 'seed'", "<node id or title>.<input name>"]),
    ("jobs.csv", "id,3.seed\na,1\nb,2,3\n", ["jobs.csv line 3", "3 fields", "header has 2"]),
    ("jobs.csv", "id,3.seed\na\n", ["line 2", "1 fields", "header has 2"]),
    ("jobs.csv", "id,3.seed,3.seed\na,1,2\n", ["duplicate column", "3.seed"]),
    ("jobs.csv", "id,3.seed\na,1\na,2\n", ["job id 'a' is used twice", "line 2"]),
    ("jobs.csv", "id,3.seed\n../up,1\n", ["cannot name an output folder", "'../up'"]),
    ("jobs.csv", "id,3.seed\n", ["holds no jobs"]),
    ("jobs.csv", "id,1.file\na,@file:nowhere.mp4\n", ["job 'a'", "column '1.file'", "file not found", "nowhere.mp4"]),
    ("jobs.csv", "id,3.seed\na,@text:words_a.json\n", ["@text: needs a STRING input"]),
    ("jobs.jsonl", '{"id": "a", "3.seed": 1}\n{"id": "b", \n', ["jobs.jsonl line 2", "not valid JSON"]),
    ("jobs.jsonl", '["a", 1]\n', ["line 1", "expected a JSON object", "list"]),
    ("jobs.jsonl", '{"id": "a", "3.seed": true}\n', ["expected an integer", "True"]),
    ("jobs.jsonl", '{"id": "a", "3.spans": [1, 2]}\n', ["expected a single value"]),
    ("jobs.txt", "id\n", ["unknown extension", ".csv, .jsonl or .json"]),
]


@pytest.mark.parametrize("name, content, expected", BAD_JOBS)
def test_bad_jobs_fail_before_anything_is_sent_with_a_clear_message(
    tmp_path, media, workflow_file, name, content, expected
):
    path = media / name
    path.write_text(content)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        BatchRun(workflow_file, path, tmp_path / "out", BatchOptions(server="http://127.0.0.1:9"))
    for words in expected:
        assert words in str(info.value), (words, str(info.value))


def test_ambiguous_titles_and_ui_workflows_are_rejected(tmp_path, media):
    workflow = example_workflow()
    workflow["5"]["_meta"]["title"] = "Edit Plan"
    jobs = [{"id": "a", "Edit Plan.seed": 1}]
    with pytest.raises(ValueError, match=r"'Edit Plan' names several nodes \(3, 5\)"):
        BatchRun(workflow, jobs, tmp_path / "out")
    with pytest.raises(ValueError, match="UI-format workflow.*Export \\(API\\)"):
        load_workflow({"nodes": [], "links": [], "version": 0.4})
    with pytest.raises(ValueError, match="node '1' is not an API-format node"):
        load_workflow({"1": {"inputs": {}}})


def test_output_files_are_found_under_any_key_and_filtered_by_type():
    outputs = {
        "4": {"images": [{"filename": "v.mp4", "subfolder": "video", "type": "output"}], "animated": [True]},
        "5": {"gifs": [{"filename": "c.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4"}]},
        "6": {"audio": [{"filename": "s.flac", "subfolder": "audio", "type": "output"}], "text": ["not a file"]},
        "7": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]},
        "8": {"images": [{"filename": "v.mp4", "subfolder": "video", "type": "output"}]},  # listed twice
    }
    assert [r["filename"] for r in iter_output_files(outputs)] == ["v.mp4", "c.mp4", "s.flac"]
    assert [r["filename"] for r in iter_output_files(outputs, ("output", "temp"))][-1] == "p.png"


@pytest.mark.parametrize(
    "ref, expected",
    [
        ({"filename": "a.mp4", "subfolder": "video/x"}, "video/x/a.mp4"),
        ({"filename": "a.mp4", "subfolder": ""}, "a.mp4"),
        ({"filename": "../../a.mp4", "subfolder": "../up"}, "a.mp4"),
        ({"filename": "a.mp4", "subfolder": "ok\\win"}, "ok/win/a.mp4"),
    ],
)
def test_downloaded_files_stay_inside_the_job_folder(ref, expected):
    from facedit.batch.runner import _local_name

    assert _local_name(ref).as_posix() == expected


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("concurrency", 0, "concurrency: expected at least 1"),
        ("retry", -1, "retry: expected 0 or more"),
        ("timeout", 0, "timeout: expected a positive number"),
        ("server", "ftp://host", "server: expected an address like http://127.0.0.1:8188"),
        ("upload_subfolder", "../x", "upload_subfolder: expected a relative folder"),
    ],
)
def test_bad_options_are_rejected_by_name(field, value, words):
    with pytest.raises(ValueError, match=words.replace("(", "\\(")):
        BatchOptions(**{field: value})


def test_waiting_for_an_event_never_swallows_a_cancellation():
    """asyncio.wait_for on Python < 3.12 returns the item and drops a cancel that lands as the item arrives;
    Ctrl-C would then be ignored. Every cancel that the task accepts must surface as CancelledError."""
    from facedit.batch.runner import _get_within

    async def trial(spins: int) -> bool | None:
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(_get_within(queue, 5.0))
        await asyncio.sleep(0)
        queue.put_nowait(("progress", {}))
        for _ in range(spins):
            await asyncio.sleep(0)
        if not task.cancel():
            return None  # it had already returned the item
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    async def main() -> list:
        return [await trial(spins) for spins in range(5)]

    outcomes = asyncio.run(main())
    assert False not in outcomes and outcomes.count(True) >= 2, outcomes


def test_validation_error_text_lists_every_node_error():
    error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": ""}
    node_errors = {
        "1": {
            "errors": [{"message": "Value not in list", "details": "file: 'x.mp4' not in []"}],
            "class_type": "LoadVideo",
        }
    }
    text = format_validation_error(error, node_errors)
    assert text.splitlines() == [
        "Prompt outputs failed validation",
        "node 1 (LoadVideo): Value not in list: file: 'x.mp4' not in []",
    ]


# ---------------------------------------------------------------- runs against the fake server
@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy-protocol"])
def test_successful_batch_uploads_patches_submits_and_downloads(tmp_path, media, workflow_file, fake, legacy):
    fake.legacy = legacy
    jobs = write_jsonl(
        media / "jobs.jsonl",
        [
            job_record(
                "a", "clip_a.mp4", "speech_a.wav", spans="0.5-1.5", seed=11, **{"3.timestamps": "@text:words_a.json"}
            ),
            job_record("b", "clip_b.mp4", "speech_b.wav", spans="1.0-2.0", seed=12),
            job_record("c", "other/clip_a.mp4", "speech_a.wav", spans="2.0-3.0", seed=13),
        ],
    )
    out = tmp_path / "out"
    report = run_batch(
        workflow_file, jobs, out, server=fake.url, concurrency=2, report_path=out / "report.json", **FAST
    )

    assert report.ok and [j.status for j in report.jobs] == ["success"] * 3
    # speech_a.wav is shared by a and c: uploaded once; the second clip_a.mp4 (other content) was renamed.
    assert sorted(u["name"] for u in fake.uploads) == [
        "clip_a (1).mp4",
        "clip_a.mp4",
        "clip_b.mp4",
        "speech_a.wav",
        "speech_b.wav",
    ]
    assert all(u["type"] == "input" and u["overwrite"] == "false" for u in fake.uploads)
    sent = {body["prompt"]["3"]["inputs"]["seed"]: body for body in fake.prompts}
    assert sent[13]["prompt"]["1"]["inputs"]["file"] == "clip_a (1).mp4"
    assert sent[11]["prompt"]["3"]["inputs"]["timestamps"] == (media / "words_a.json").read_text()
    assert all(body["client_id"] == report.client_id for body in fake.prompts)
    assert 1 < fake.max_queued <= 2, "concurrency 2 keeps two prompts queued, never more"

    for job, video, spans in (
        ("a", "VIDEO-A", "0.5-1.5"),
        ("b", "VIDEO-B", "1.0-2.0"),
        ("c", "VIDEO-A-OTHER", "2.0-3.0"),
    ):
        result = next(j for j in report.jobs if j.id == job)
        # SaveVideo ("images" + animated) into video/, VHS Video Combine ("gifs") at the top, SaveAudio into audio/
        names = {Path(o).parent.as_posix(): o for o in result.outputs}
        assert set(names) == {f"{job}/video", job, f"{job}/audio"} and len(result.outputs) == 3, result.outputs
        assert Path(names[f"{job}/video"]).name.startswith("facedit_") and names[job].startswith(f"{job}/combined_")
        names = {"video": names[f"{job}/video"], "audio": names[f"{job}/audio"], job: names[job]}
        render = render_of(out, names["video"])
        assert render["1.file#content"] == video and render["3.spans"] == spans
        assert render_of(out, names[job])["1.file#content"] == video
        assert render_of(out, names["audio"])["2.audio#content"] == ("SPEECH-B" if job == "b" else "SPEECH-A")
        assert not any(o.endswith(".png") for o in result.outputs), "temp previews are not downloaded by default"
        assert result.prompt_id in fake.history and result.attempts == 1 and result.error is None
    saved = json.loads((out / "report.json").read_text())
    assert saved["counts"]["success"] == 3 and saved["jobs"][0]["outputs"] == report.jobs[0].outputs


def test_validation_and_execution_errors_are_reported_while_other_jobs_succeed(tmp_path, media, workflow_file, fake):
    jobs = [
        job_record("good", "clip_a.mp4", "speech_a.wav"),
        {**job_record("invalid", "clip_a.mp4", "speech_a.wav"), "Load Video.file": "missing.mp4", "2.audio": "no.wav"},
        job_record("broken", "clip_b.mp4", "speech_b.wav", spans="from one to two"),
        job_record("good2", "clip_b.mp4", "speech_b.wav"),
    ]
    report = run_batch(
        workflow_file, jobs, tmp_path / "out", base_dir=media, server=fake.url, include_temp=True, **FAST
    )
    by_id = {j.id: j for j in report.jobs}
    assert [by_id[i].status for i in ("good", "invalid", "broken", "good2")] == [
        "success",
        "failed",
        "failed",
        "success",
    ]
    assert report.exit_code() == 1

    invalid = by_id["invalid"]
    assert invalid.error.startswith("Prompt outputs failed validation")
    assert "node 1 (LoadVideo): Value not in list: file: 'missing.mp4' not in [" in invalid.error
    assert "node 2 (LoadAudio): Value not in list: audio: 'no.wav' not in [" in invalid.error
    assert invalid.error_details["node_errors"]["1"]["class_type"] == "LoadVideo"
    assert invalid.prompt_id is None and invalid.outputs == []

    broken = by_id["broken"]
    expected = "spans: cannot parse 'from one to two'; expected 'start-end' in seconds"
    assert broken.error == f"FacEDiTEditPlan (node 3): ValueError: {expected}"
    assert broken.error_details["execution_error"]["traceback"]
    assert broken.outputs == [] and not (tmp_path / "out" / "broken").exists()
    assert any(o.endswith(".png") for o in by_id["good"].outputs), "include_temp downloads previews"
    table = report.format_table(width=200)
    assert "broken" in table and "failed" in table and "spans: cannot parse" in table
    assert "2 success, 2 failed" in table


def test_partly_invalid_workflow_runs_the_valid_outputs_and_warns(tmp_path, media, fake):
    workflow = example_workflow()
    workflow["8"] = {"class_type": "LoadAudio", "inputs": {"audio": "not-uploaded.wav"}}
    workflow["9"] = {"class_type": "SaveAudio", "inputs": {"audio": ["8", 0], "filename_prefix": "extra"}}
    jobs = [job_record("a", "clip_a.mp4", "speech_a.wav")]
    report = run_batch(workflow, jobs, tmp_path / "out", base_dir=media, server=fake.url, **FAST)
    (job,) = report.jobs
    assert job.status == "success" and len(job.outputs) == 3
    assert (
        job.warnings[0].splitlines()[1].startswith("node 8 (LoadAudio): Value not in list: audio: 'not-uploaded.wav'")
    )


def test_retry_resubmits_failed_jobs(tmp_path, media, workflow_file, fake):
    jobs = [
        job_record("flaky", "clip_a.mp4", "speech_a.wav", spans="FLAKY 0.5-1.0"),
        job_record("bad", "clip_b.mp4", "speech_b.wav", spans="nope"),
    ]
    report = run_batch(workflow_file, jobs, tmp_path / "out", base_dir=media, server=fake.url, retry=2, **FAST)
    flaky, bad = report.jobs
    assert flaky.status == "success" and flaky.attempts == 2 and flaky.error is None
    assert flaky.attempt_log[0]["error"].endswith("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (fake)")
    assert bad.status == "failed" and bad.attempts == 3 and "cannot parse 'nope'" in bad.error
    spans_sent = [body["prompt"]["3"]["inputs"]["spans"] for body in fake.prompts]
    assert spans_sent.count("FLAKY 0.5-1.0") == 2 and spans_sent.count("nope") == 3
    assert len(fake.uploads) == 4, "retries reuse the uploaded files"


def test_retry_zero_reports_the_first_failure(tmp_path, media, workflow_file, fake):
    jobs = [job_record("flaky", "clip_a.mp4", "speech_a.wav", spans="FLAKY 0.5-1.0")]
    report = run_batch(workflow_file, jobs, tmp_path / "out", base_dir=media, server=fake.url, **FAST)
    assert report.jobs[0].status == "failed" and report.jobs[0].attempts == 1
    assert "CUDA out of memory" in report.jobs[0].error


def test_dropped_websocket_reconnects_and_the_job_completes(tmp_path, media, workflow_file, fake):
    jobs = [
        job_record("a", "clip_a.mp4", "speech_a.wav", spans="DROPWS 0.5-1.0"),
        job_record("b", "clip_b.mp4", "speech_b.wav"),
    ]
    report = run_batch(workflow_file, jobs, tmp_path / "out", base_dir=media, server=fake.url, **FAST)
    assert [j.status for j in report.jobs] == ["success", "success"], report.format_table(200)
    assert len(report.jobs[0].outputs) == 3


def test_server_crash_reports_lost_connection_and_the_batch_ends(tmp_path, media, workflow_file, fake):
    jobs = [
        job_record("a", "clip_a.mp4", "speech_a.wav"),
        job_record("crash", "clip_b.mp4", "speech_b.wav", spans="CRASH"),
        job_record("c", "clip_b.mp4", "speech_b.wav"),
    ]
    t0 = time.monotonic()
    report = run_batch(workflow_file, jobs, tmp_path / "out", base_dir=media, server=fake.url, **FAST)
    assert time.monotonic() - t0 < 20
    a, crash, c = report.jobs
    assert a.status == "success"
    assert crash.status == "failed" and crash.error.startswith(f"lost connection to ComfyUI at {fake.url}"), crash.error
    assert c.status == "failed" and "cannot" in c.error and fake.url.split("//")[1] in c.error, c.error


def test_timeout_interrupts_the_prompt_and_the_next_job_runs(tmp_path, media, workflow_file, fake):
    jobs = [
        job_record("slow", "clip_a.mp4", "speech_a.wav", spans="HANG"),
        job_record("b", "clip_b.mp4", "speech_b.wav"),
    ]
    report = run_batch(workflow_file, jobs, tmp_path / "out", base_dir=media, server=fake.url, timeout=0.3, **FAST)
    slow, b = report.jobs
    assert slow.status == "failed" and slow.error.startswith("timed out after 0.3 s")
    assert {"prompt_id": slow.prompt_id} in fake.interrupts
    assert b.status == "success"
    entry = fake.history[slow.prompt_id]
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


def test_cancelling_interrupts_the_running_prompt_and_deletes_queued_ones(tmp_path, media, workflow_file, fake):
    jobs = [
        job_record("hang1", "clip_a.mp4", "speech_a.wav", spans="HANG"),
        job_record("hang2", "clip_b.mp4", "speech_b.wav", spans="HANG 2"),
        job_record("never", "clip_b.mp4", "speech_b.wav", spans="1-2"),
    ]
    out = tmp_path / "out"
    run = BatchRun(workflow_file, jobs, out, base_dir=media, server=fake.url, concurrency=2, **FAST)

    async def scenario():
        task = asyncio.create_task(run.run(out / "report.json"))
        while not (fake.running_event.is_set() and len(fake.queue_ids()[1]) == 1):
            await asyncio.sleep(0.01)
        ids = fake.queue_ids()  # whichever HANG job was submitted first runs, the other waits
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return ids

    (running,), (queued,) = asyncio.run(scenario())
    report = run.report()
    assert report.interrupted and report.exit_code() == 130
    assert [j.status for j in report.jobs] == ["interrupted", "interrupted", "not_run"]
    assert {j.prompt_id for j in report.jobs[:2]} == {running, queued}
    assert fake.interrupts == [{"prompt_id": running}]
    assert fake.queue_posts == [{"delete": [queued]}]
    assert queued not in fake.executed_ids, "the queued prompt never ran"
    saved = json.loads((out / "report.json").read_text())
    assert saved["interrupted"] and [j["status"] for j in saved["jobs"]] == ["interrupted", "interrupted", "not_run"]


def test_keyboard_interrupt_in_run_batch_raises_with_partial_report(tmp_path, media, workflow_file, fake):
    jobs = [job_record("hang", "clip_a.mp4", "speech_a.wav", spans="HANG")]

    def press_ctrl_c():
        fake.running_event.wait(10)
        signal.pthread_kill(main_thread, signal.SIGINT)

    import threading

    main_thread = threading.get_ident()
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(BatchInterrupted) as info:
        run_batch(workflow_file, jobs, tmp_path / "out", base_dir=media, server=fake.url, **FAST)
    assert info.value.report.interrupted and info.value.report.jobs[0].status == "interrupted"
    assert {"prompt_id": info.value.report.jobs[0].prompt_id} in fake.interrupts


def test_unreachable_server_fails_every_job_with_the_address(tmp_path, media, workflow_file):
    jobs = [job_record("a", "clip_a.mp4", "speech_a.wav"), job_record("b", "clip_b.mp4", "speech_b.wav")]
    report = run_batch(
        workflow_file, jobs, tmp_path / "out", base_dir=media, server="http://127.0.0.1:9", retry=1, **FAST
    )
    assert [j.status for j in report.jobs] == ["failed", "failed"]
    assert all("127.0.0.1:9" in j.error and j.attempts == 2 for j in report.jobs)


# ---------------------------------------------------------------- the command line
def test_cli_runs_a_csv_batch_prints_the_table_and_writes_the_report(tmp_path, media, workflow_file, fake, capsys):
    jobs = write_csv(
        media / "jobs.csv",
        ["id", "Load Video.file", "2.audio", "3.spans"],
        [
            ["one", "@file:clip_a.mp4", "@file:speech_a.wav", "0-1"],
            ["two", "@file:clip_b.mp4", "@file:speech_b.wav", "?"],
        ],
    )
    out = tmp_path / "out"
    argv = ["--workflow", str(workflow_file), "--jobs", str(jobs), "--out", str(out), "--server", fake.url]
    rc = cli_main(argv + ["--client-id", "batch-test", "--concurrency", "2"])
    captured = capsys.readouterr()
    assert rc == 1
    lines = captured.out.splitlines()
    assert lines[0].split() == ["job", "status", "seconds", "outputs", "error"]
    assert lines[2].split()[:2] == ["one", "success"] and "one/video/facedit_" in lines[2]
    assert lines[3].split()[:2] == ["two", "failed"] and "cannot parse '?'" in lines[3]
    assert "batch" in captured.err, "progress bars go to stderr"
    saved = json.loads((out / "report.json").read_text())
    assert saved["client_id"] == "batch-test" and [j["status"] for j in saved["jobs"]] == ["success", "failed"]
    assert all(body["client_id"] == "batch-test" for body in fake.prompts)


def test_cli_bad_jobs_file_exits_2_and_dry_run_sends_nothing(tmp_path, media, workflow_file, capsys):
    bad = write_csv(media / "bad.csv", ["id", "3.nope"], [["a", "1"]])
    argv = ["--workflow", str(workflow_file), "--out", str(tmp_path / "out"), "--server", "http://127.0.0.1:9"]
    assert cli_main(argv + ["--jobs", str(bad)]) == 2
    assert "node 3 (FacEDiTEditPlan) has no input 'nope'" in capsys.readouterr().err
    assert cli_main(argv + ["--jobs", str(media)]) == 2  # a folder: one line naming it, not a traceback
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ") and str(media) in err
    good = write_csv(media / "good.csv", ["id", "1.file", "3.seed"], [["a", "@file:clip_a.mp4", "4"]])
    assert cli_main(argv + ["--jobs", str(good), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1.file [LoadVideo] <- upload" in out and "3.seed [FacEDiTEditPlan] = 4" in out


def test_cli_ctrl_c_interrupts_on_the_server_writes_the_report_and_exits_130(tmp_path, media, workflow_file, fake):
    jobs = write_jsonl(
        media / "jobs.jsonl",
        [job_record("hang", "clip_a.mp4", "speech_a.wav", spans="HANG"), job_record("b", "clip_b.mp4", "speech_b.wav")],
    )
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "facedit.batch",
        "--workflow",
        str(workflow_file),
        "--jobs",
        str(jobs),
        "--out",
        str(out),
    ]
    cmd += ["--server", fake.url, "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert fake.running_event.wait(20), proc.stderr.read() if proc.poll() is not None else "never ran"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    saved = json.loads((out / "report.json").read_text())
    assert saved["interrupted"] and [j["status"] for j in saved["jobs"]] == ["interrupted", "not_run"]
    assert {"prompt_id": saved["jobs"][0]["prompt_id"]} in fake.interrupts
    assert "interrupted" in stdout


def test_help_and_dry_run_work_without_aiohttp_and_a_run_says_what_is_missing(tmp_path, media, workflow_file):
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules['aiohttp'] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[1])])}
    shown = subprocess.run([sys.executable, "-m", "facedit.batch", "--help"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "--workflow" in shown.stdout
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("id,1.file\nclip01,a.mp4\n")
    ran = subprocess.run(
        [sys.executable, "-m", "facedit.batch", "--workflow", str(workflow_file), "--jobs", str(jobs)]
        + ["--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ran.returncode == 2
    assert "needs aiohttp" in ran.stderr


def test_readme_batch_example_runs_against_the_shipped_api_workflow(tmp_path):
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if line.startswith("python -m facedit.batch --workflow"))
    args = shlex.split(command.rstrip("\\"))  # as a shell reads it: the workflow's name has spaces
    workflow_path = root / args[args.index("--workflow") + 1]
    assert workflow_path.is_file(), workflow_path
    csv_lines = [line for line in readme.splitlines() if line.startswith("id,") or line.startswith("clip01,")]
    assert len(csv_lines) == 2, csv_lines
    for name in ("clips/a.mp4", "speech/a.wav", "words/a.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('{"words": [["hello", 0.0, 0.4]]}' if name.endswith(".json") else "media")
    jobs_file = tmp_path / "jobs.csv"
    jobs_file.write_text("\n".join(csv_lines) + "\n")
    workflow = load_workflow(workflow_path)
    patches = resolve_job(workflow, load_jobs(jobs_file)[0])
    targets = {(workflow[p.node_id]["class_type"], p.input_name) for p in patches}
    assert targets == {
        ("LoadVideo", "file"),
        ("LoadAudio", "audio"),
        ("FacEDiTEditPlan", "edited_words"),
        ("FacEDiTInfill", "seed"),
    }
    patched = patch_workflow(workflow, patches, {p.upload: p.upload.name for p in patches if p.upload})
    infill = next(n for n in patched.values() if n["class_type"] == "FacEDiTInfill")
    assert infill["inputs"]["seed"] == 7
