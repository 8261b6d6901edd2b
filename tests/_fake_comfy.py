"""An in-process fake of ComfyUI's HTTP + websocket API for the batch runner's tests.

It follows the shapes of ComfyUI's server.py / execution.py / main.py (version 0.8): POST /prompt replies,
400 bodies with ``node_errors``, validation reasons (``value_not_in_list``, ``required_input_missing``,
``invalid_input_type``), websocket events sent to the submitting client id (``status``,
``execution_start``, ``execution_cached``, ``executing``, ``progress``, ``progress_state``, ``executed``,
``execution_success``, ``execution_error``, broadcast ``execution_interrupted``, binary preview frames),
history entries written after the final events and before ``executing`` with ``node: None``,
/upload/image renaming ("name (1).ext") and de-duplication, /view, /queue, /interrupt (targeted by
``prompt_id``).

It runs a handful of node classes. ``FacEDiTEditPlan`` reacts to its ``spans`` input, which is how tests
ask for trouble: ``HANG`` runs until interrupted, ``CRASH`` shuts the whole server down, ``FLAKY`` fails
its first run, ``DROPWS`` closes every websocket once and carries on, and text that is not
``start-end`` raises like a node would. Output nodes write a JSON "render" of everything upstream (literal
inputs and the content of input files), so a test can tell which job's inputs produced which file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import struct
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

FILE, STRING, INT, FLOAT, LINK = "FILE", "STRING", "INT", "FLOAT", "LINK"
NODES: dict[str, dict[str, Any]] = {
    "LoadVideo": {"inputs": {"file": FILE}},
    "LoadAudio": {"inputs": {"audio": FILE}},
    "FacEDiTEditPlan": {
        "inputs": {"video": LINK, "audio": LINK, "timestamps": STRING, "spans": STRING, "seed": INT, "cfg": FLOAT}
    },
    "SaveVideo": {"inputs": {"video": LINK, "filename_prefix": STRING}, "output": "video"},
    "VHS_VideoCombine": {"inputs": {"images": LINK, "filename_prefix": STRING, "frame_rate": FLOAT}, "output": "gifs"},
    "SaveAudio": {"inputs": {"audio": LINK, "filename_prefix": STRING}, "output": "audio"},
    "PreviewImage": {"inputs": {"images": LINK}, "output": "preview"},
}
SPANS = re.compile(r"^\s*\d+(\.\d+)?\s*-\s*\d+(\.\d+)?\s*$")


class Interrupted(Exception):
    pass


class NodeFailure(Exception):
    def __init__(self, node_id: str, exc: Exception):
        super().__init__(str(exc))
        self.node_id = node_id
        self.exc = exc


def example_workflow() -> dict[str, Any]:
    """An API-format workflow shaped like ours: load video + audio, edit plan, save video/audio/preview."""
    return {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "placeholder.mp4"}, "_meta": {"title": "Load Video"}},
        "2": {"class_type": "LoadAudio", "inputs": {"audio": "placeholder.wav"}, "_meta": {"title": "Edited Speech"}},
        "3": {
            "class_type": "FacEDiTEditPlan",
            "inputs": {
                "video": ["1", 0],
                "audio": ["2", 0],
                "timestamps": "",
                "spans": "0.0-1.0",
                "seed": 0,
                "cfg": 2.0,
            },
            "_meta": {"title": "Edit Plan"},
        },
        "4": {"class_type": "SaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": "video/facedit"}},
        "5": {
            "class_type": "VHS_VideoCombine",
            "inputs": {"images": ["3", 0], "filename_prefix": "combined", "frame_rate": 25.0},
            "_meta": {"title": "Video Combine"},
        },
        "6": {"class_type": "SaveAudio", "inputs": {"audio": ["2", 0], "filename_prefix": "audio/speech"}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }


class FakeComfy:
    """Start with ``with FakeComfy(tmp_path) as fake:``; ``fake.url`` is the server's address.

    Everything it received is recorded: ``uploads``, ``prompts`` (POST /prompt bodies), ``interrupts``,
    ``queue_posts``, ``views``, ``history``; ``max_queued`` is the most prompts it held at once.
    ``legacy=True`` behaves like servers from before mid-2024: it ignores a client's ``prompt_id``, sends
    no ``execution_success`` and leaves ``prompt_id`` out of ``progress``.
    """

    def __init__(self, root: Path, *, legacy: bool = False, step_delay: float = 0.005, history_delay: float = 0.03):
        self.root = Path(root)
        self.dirs = {kind: self.root / kind for kind in ("input", "output", "temp")}
        for path in self.dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        self.legacy = legacy
        self.step_delay = step_delay
        self.history_delay = history_delay
        self.uploads: list[dict[str, Any]] = []
        self.prompts: list[dict[str, Any]] = []
        self.interrupts: list[dict[str, Any]] = []
        self.queue_posts: list[dict[str, Any]] = []
        self.views: list[dict[str, str]] = []
        self.history: dict[str, dict[str, Any]] = {}
        self.executed_ids: list[str] = []
        self.max_queued = 0
        self.crashed = False
        self.running_event = threading.Event()  # set when a HANG node is running
        self._flaky_seen: set[str] = set()
        self._dropped_ws = False
        self._number = 0
        self._counters: dict[str, int] = {}
        self._pending: list[tuple] = []
        self._running: tuple | None = None
        self._interrupt = False
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wakeup: asyncio.Event | None = None
        self._executor: asyncio.Task | None = None
        self.port = 0

    # ---- lifecycle (the server runs in its own thread and loop) ----
    def __enter__(self) -> FakeComfy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake ComfyUI did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def queue_ids(self) -> tuple[list[str], list[str]]:
        """Prompt ids (running, pending), as GET /queue would list them."""
        running = [self._running[1]] if self._running is not None else []
        return running, [item[1] for item in list(self._pending)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/prompt", self._post_prompt)
        app.router.add_post("/upload/image", self._upload)
        app.router.add_get("/history/{prompt_id}", self._get_history)
        app.router.add_get("/view", self._view)
        app.router.add_get("/queue", self._get_queue)
        app.router.add_post("/queue", self._post_queue)
        app.router.add_post("/interrupt", self._post_interrupt)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._wakeup = asyncio.Event()
        self._executor = asyncio.create_task(self._execute_forever())

    async def _shutdown(self) -> None:
        if self._executor is not None and self._executor is not asyncio.current_task():
            self._executor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._executor
        for ws in list(self._sockets.values()):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- websocket ----
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "") or uuid.uuid4().hex
        self._sockets[sid] = ws
        try:
            await self._send("status", {"status": self._queue_info(), "sid": sid}, sid)
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            if self._sockets.get(sid) is ws:
                del self._sockets[sid]
        return ws

    async def _send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        targets = list(self._sockets.values()) if sid is None else [self._sockets[sid]] if sid in self._sockets else []
        for ws in targets:
            with contextlib.suppress(Exception):
                await ws.send_json({"type": event, "data": data})

    async def _send_preview(self, sid: str | None) -> None:
        ws = self._sockets.get(sid) if sid else None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.send_bytes(struct.pack(">I", 1) + struct.pack(">I", 1) + b"\xff\xd8fake-jpeg")

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": len(self._pending) + (self._running is not None)}}

    # ---- HTTP routes ----
    async def _post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.prompts.append(body)
        if "prompt" not in body:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        prompt_id = str(uuid.uuid4()) if self.legacy else str(body.get("prompt_id", uuid.uuid4()))
        error, outputs, node_errors = self._validate(prompt)
        if error is not None:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        number = self._number
        self._number += 1
        extra = {"client_id": body["client_id"]} if "client_id" in body else {}
        extra["create_time"] = int(time.time() * 1000)
        self._pending.append((number, prompt_id, prompt, extra, outputs))
        self.max_queued = max(self.max_queued, len(self._pending) + (self._running is not None))
        self._wakeup.set()
        await self._send("status", {"status": self._queue_info()}, None)
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def _upload(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        if image is None or not getattr(image, "file", None) or not image.filename:
            return web.Response(status=400)
        kind = post.get("type") or "input"
        subfolder = post.get("subfolder", "")
        overwrite = post.get("overwrite")
        data = image.file.read()
        folder = self.dirs[kind] / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        name = image.filename
        stem, dot, ext = name.rpartition(".")
        stem, ext = (stem, dot + ext) if dot else (name, "")
        i = 1
        if overwrite not in ("true", "1"):
            while (folder / name).exists() and (folder / name).read_bytes() != data:
                name = f"{stem} ({i}){ext}"
                i += 1
        (folder / name).write_bytes(data)
        self.uploads.append(
            {"filename": image.filename, "name": name, "subfolder": subfolder, "type": kind, "overwrite": overwrite}
        )
        return web.json_response({"name": name, "subfolder": subfolder, "type": kind})

    async def _get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def _view(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.rel_url.query)
        self.views.append(query)
        folder = self.dirs.get(query.get("type", "output"))
        filename = query.get("filename", "")
        if folder is None or not filename or filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        path = folder / query.get("subfolder", "") / Path(filename).name
        if not path.is_file():
            return web.Response(status=404)
        return web.FileResponse(path, headers={"Content-Disposition": f'filename="{path.name}"'})

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [list(self._running[:5])] if self._running is not None else []
        return web.json_response(
            {"queue_running": running, "queue_pending": [list(item[:5]) for item in self._pending]}
        )

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.queue_posts.append(body)
        if body.get("clear"):
            self._pending.clear()
        for prompt_id in body.get("delete", []):
            self._pending = [item for item in self._pending if item[1] != prompt_id]
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        self.interrupts.append(body)
        prompt_id = body.get("prompt_id")
        if not prompt_id or (self._running is not None and self._running[1] == prompt_id):
            self._interrupt = True
        return web.Response(status=200)

    # ---- validation, as execution.validate_prompt reports it ----
    def _validate(self, prompt: dict[str, Any]) -> tuple[dict | None, list[str], dict[str, Any]]:
        for node_id, node in prompt.items():
            if node.get("class_type") not in NODES:
                error = {
                    "type": "invalid_prompt",
                    "message": f"Cannot execute because node {node.get('class_type')} does not exist.",
                    "details": f"Node ID '#{node_id}'",
                    "extra_info": {},
                }
                return error, [], {}
        outputs = [nid for nid, node in prompt.items() if "output" in NODES[node["class_type"]]]
        node_errors: dict[str, Any] = {}
        for node_id, node in prompt.items():
            reasons = self._check_inputs(node)
            if reasons:
                node_errors[node_id] = {"errors": reasons, "dependent_outputs": [], "class_type": node["class_type"]}
        if not node_errors:
            return None, outputs, {}
        good = []
        for output in outputs:
            upstream = self._upstream(prompt, output)
            for node_id in upstream:
                if node_id in node_errors:
                    node_errors[node_id]["dependent_outputs"].append(output)
            if not any(node_id in node_errors for node_id in upstream):
                good.append(output)
        if good:  # like ComfyUI: run the valid outputs, report the rest in node_errors of a 200 reply
            return None, good, node_errors
        # ComfyUI's details list only the output nodes' own reasons; upstream failures show in node_errors
        details = "\n".join(
            f"{reason['message']}: {reason['details']}"
            for output in outputs
            for reason in node_errors.get(output, {}).get("errors", [])
        )
        error = {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }
        return error, [], node_errors

    def _check_inputs(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        reasons = []
        for name, kind in NODES[node["class_type"]]["inputs"].items():
            if name not in node["inputs"]:
                reasons.append(
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": name,
                        "extra_info": {"input_name": name},
                    }
                )
                continue
            value = node["inputs"][name]
            if kind == FILE:
                files = sorted(
                    p.relative_to(self.dirs["input"]).as_posix() for p in self.dirs["input"].rglob("*") if p.is_file()
                )
                if value not in files:
                    reasons.append(
                        {
                            "type": "value_not_in_list",
                            "message": "Value not in list",
                            "details": f"{name}: '{value}' not in {files}",
                            "extra_info": {"input_name": name, "input_config": None, "received_value": value},
                        }
                    )
            elif kind in (INT, FLOAT):
                try:
                    (int if kind == INT else float)(value)
                except (TypeError, ValueError) as ex:
                    reasons.append(
                        {
                            "type": "invalid_input_type",
                            "message": f"Failed to convert an input value to a {kind} value",
                            "details": f"{name}, {value}, {ex}",
                            "extra_info": {"input_name": name, "received_value": value, "exception_message": str(ex)},
                        }
                    )
        return reasons

    @staticmethod
    def _upstream(prompt: dict[str, Any], node_id: str) -> list[str]:
        seen: list[str] = []
        stack = [node_id]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.append(current)
            for value in prompt[current]["inputs"].values():
                if isinstance(value, list) and len(value) == 2:
                    stack.append(value[0])
        return seen

    # ---- execution, as main.prompt_worker + execution.PromptExecutor do it ----
    async def _execute_forever(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            self._pending.sort(key=lambda item: item[0])
            self._running = self._pending.pop(0)
            await self._execute(self._running)
            self._running = None
            if self.crashed:
                return

    async def _execute(self, item: tuple) -> None:
        number, prompt_id, prompt, extra, outputs = item
        sid = extra.get("client_id")
        self._interrupt = False
        self.executed_ids.append(prompt_id)
        messages: list[list[Any]] = []

        async def message(event: str, data: dict[str, Any], broadcast: bool = False) -> None:
            data = {**data, "timestamp": int(time.time() * 1000)}
            messages.append([event, data])
            await self._send(event, data, None if broadcast else sid)

        await message("execution_start", {"prompt_id": prompt_id})
        await message("execution_cached", {"nodes": [], "prompt_id": prompt_id})
        ui_outputs: dict[str, Any] = {}
        executed: list[str] = []
        order = self._order(prompt, outputs)
        try:
            for node_id in order:
                await self._send("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}, sid)
                ui = await self._run_node(prompt, node_id, prompt_id, sid)
                if self.crashed:
                    return
                executed.append(node_id)
                if ui is not None:
                    ui_outputs[node_id] = {"meta": {"node_id": node_id, "display_node": node_id}, "output": ui}
                    await self._send(
                        "executed",
                        {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": prompt_id},
                        sid,
                    )
        except Interrupted:
            node_id = order[len(executed)]
            await message(
                "execution_interrupted",
                {
                    "prompt_id": prompt_id,
                    "node_id": node_id,
                    "node_type": prompt[node_id]["class_type"],
                    "executed": executed,
                },
                broadcast=True,
            )
            success = False
        except NodeFailure as failure:
            node_id = failure.node_id
            await message(
                "execution_error",
                {
                    "prompt_id": prompt_id,
                    "node_id": node_id,
                    "node_type": prompt[node_id]["class_type"],
                    "executed": executed,
                    "exception_message": str(failure.exc),
                    "exception_type": type(failure.exc).__name__,
                    "traceback": ['  File "fake.py", line 1, in run\n'],
                    "current_inputs": {},
                    "current_outputs": executed,
                },
            )
            success = False
        else:
            success = True
            if not self.legacy:
                await message("execution_success", {"prompt_id": prompt_id})
        await asyncio.sleep(self.history_delay)  # task_done runs after the executor returns
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, prompt, extra, outputs],
            "outputs": {nid: value["output"] for nid, value in ui_outputs.items()},
            "status": {"status_str": "success" if success else "error", "completed": success, "messages": messages},
            "meta": {nid: value["meta"] for nid, value in ui_outputs.items()},
        }
        await self._send("status", {"status": self._queue_info()}, None)
        await self._send("executing", {"node": None, "prompt_id": prompt_id}, sid)

    def _order(self, prompt: dict[str, Any], outputs: list[str]) -> list[str]:
        order: list[str] = []

        def visit(node_id: str) -> None:
            if node_id in order:
                return
            for value in prompt[node_id]["inputs"].values():
                if isinstance(value, list) and len(value) == 2:
                    visit(value[0])
            order.append(node_id)

        for output in sorted(outputs, key=int):
            visit(output)
        return order

    async def _run_node(self, prompt: dict[str, Any], node_id: str, prompt_id: str, sid: str | None) -> Any:
        node = prompt[node_id]
        kind = node["class_type"]
        if kind == "FacEDiTEditPlan":
            spans = node["inputs"]["spans"]
            for step in range(1, 4):
                await asyncio.sleep(self.step_delay)
                self._check_interrupt()
                progress = {"value": step, "max": 3, "prompt_id": prompt_id, "node": node_id}
                if self.legacy:
                    del progress["prompt_id"]
                await self._send("progress", progress, sid)
                await self._send("progress_state", {"prompt_id": prompt_id, "nodes": {}}, sid)
                await self._send_preview(sid)
            if "DROPWS" in spans and not self._dropped_ws:
                self._dropped_ws = True
                for ws in list(self._sockets.values()):
                    await ws.close()
                await asyncio.sleep(0.05)
            if "CRASH" in spans:
                self.crashed = True
                asyncio.get_running_loop().create_task(self._shutdown())
                return None
            if "HANG" in spans:
                self.running_event.set()
                while True:
                    await asyncio.sleep(0.01)
                    self._check_interrupt()
            if "FLAKY" in spans and spans not in self._flaky_seen:
                self._flaky_seen.add(spans)
                raise NodeFailure(node_id, RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (fake)"))
            if not SPANS.match(spans.replace("FLAKY", "").replace("DROPWS", "")):
                raise NodeFailure(
                    node_id, ValueError(f"spans: cannot parse {spans!r}; expected 'start-end' in seconds")
                )
            return None
        output = NODES[kind].get("output")
        if output is None:
            return None
        render = json.dumps(self._render(prompt, node_id), sort_keys=True).encode()
        if output == "preview":
            return {"images": [self._save("temp", "ComfyUI_temp_abcde", ".png", render)]}
        prefix = node["inputs"]["filename_prefix"]
        if output == "video":
            return {"images": [self._save("output", prefix, ".mp4", render)], "animated": [True]}
        if output == "audio":
            return {"audio": [self._save("output", prefix, ".flac", render)]}
        ref = self._save("output", prefix, ".mp4", render)
        ref.update({"format": "video/h264-mp4", "frame_rate": node["inputs"]["frame_rate"], "workflow": "x.png"})
        ref["fullpath"] = str(self.dirs["output"] / ref["subfolder"] / ref["filename"])
        return {"gifs": [ref]}

    def _check_interrupt(self) -> None:
        if self._interrupt:
            self._interrupt = False
            raise Interrupted()

    def _render(self, prompt: dict[str, Any], node_id: str) -> dict[str, Any]:
        """Every literal input upstream of an output node, and the content of every input file."""
        render: dict[str, Any] = {}
        for nid in self._upstream(prompt, node_id):
            node = prompt[nid]
            for name, value in node["inputs"].items():
                if isinstance(value, list):
                    continue
                render[f"{nid}.{name}"] = value
                if NODES[node["class_type"]]["inputs"].get(name) == FILE:
                    render[f"{nid}.{name}#content"] = (self.dirs["input"] / value).read_text()
        return render

    def _save(self, kind: str, prefix: str, ext: str, data: bytes) -> dict[str, str]:
        subfolder, _, stem = prefix.rpartition("/")
        counter = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = counter
        name = f"{stem}_{counter:05}_{ext}"
        folder = self.dirs[kind] / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        return {"filename": name, "subfolder": subfolder, "type": kind}
