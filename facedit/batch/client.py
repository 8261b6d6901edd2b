"""ComfyUI's HTTP and websocket API, as the batch runner uses it.

Facts taken from ComfyUI's ``server.py``, ``execution.py`` and ``main.py``:

- ``POST /prompt`` takes ``{"prompt", "client_id", "prompt_id"}``; 200 answers ``{"prompt_id", "number",
  "node_errors"}``, 400 answers ``{"error": {type, message, details, extra_info}, "node_errors": {node_id:
  {"errors": [...], "dependent_outputs", "class_type"}}}``. Versions before ``prompt_id`` was accepted
  choose their own id, so the reply's id is the one that counts.
- Every websocket event of a prompt goes to the socket whose ``clientId`` submitted it, as JSON
  ``{"type", "data"}``; previews are binary frames. ``execution_interrupted`` is broadcast.
- History (``/history/{id}``) is written AFTER ``execution_success`` / ``execution_error`` are sent and
  BEFORE the final ``executing`` with ``node: null``, so a finished prompt may briefly lack a history entry.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import mimetypes
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

try:
    import aiohttp
except ImportError:  # only talking to a server needs it; ``--help`` and the job files do not
    aiohttp = None

AIOHTTP_MISSING = "facedit.batch needs aiohttp to talk to ComfyUI: pip install aiohttp (it comes with ComfyUI)"

# Events that end a prompt. "executing" with node None ends it too (older servers send only that).
TERMINAL_EVENTS = ("execution_success", "execution_error", "execution_interrupted")
# Synthetic events the event stream adds for its subscribers.
RECONNECTED = "_reconnected"
CONNECTION_LOST = "_connection_lost"


class ComfyError(RuntimeError):
    """ComfyUI answered, but not with what was asked for."""


class ComfyConnectionError(ComfyError):
    """ComfyUI could not be reached, or the connection broke."""


class PromptRejected(ComfyError):
    """``POST /prompt`` answered 400: the workflow failed validation. Holds ComfyUI's error and node_errors."""

    def __init__(self, error: Any, node_errors: dict[str, Any]):
        self.error = error
        self.node_errors = node_errors
        super().__init__(format_validation_error(error, node_errors))


def format_validation_error(error: Any, node_errors: dict[str, Any]) -> str:
    """ComfyUI's validation error as text: the summary line (if any), then one line per node error."""
    lines = []
    if isinstance(error, dict):
        head = str(error.get("message", "invalid prompt"))
        lines.append(head + (f": {error['details']}" if error.get("details") else ""))
    elif error:
        lines.append(str(error))
    for node_id, info in (node_errors or {}).items():
        class_type = info.get("class_type", "?") if isinstance(info, dict) else "?"
        reasons = info.get("errors", []) if isinstance(info, dict) else []
        for reason in reasons:
            text = f"{reason.get('message', '')}: {reason.get('details', '')}".strip(": ")
            lines.append(f"node {node_id} ({class_type}): {text}")
    return "\n".join(lines)


def format_execution_error(data: dict[str, Any]) -> str:
    """An ``execution_error`` message as text: node, exception type and ComfyUI's exception message."""
    node = data.get("node_id", "?")
    node_type = data.get("node_type", "?")
    kind = data.get("exception_type", "error")
    return f"{node_type} (node {node}): {kind}: {data.get('exception_message', '').strip()}"


def normalise_server_url(server: str) -> str:
    """``host:port`` or ``http(s)://host:port[/prefix]`` -> base URL without trailing slash."""
    text = server.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"server: expected an address like http://127.0.0.1:8188, got {server!r}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class ComfyClient:
    """The HTTP half: submit, upload, history, queue, interrupt, download. Use as ``async with``."""

    def __init__(self, server: str, client_id: str | None = None, request_timeout: float = 600.0):
        if aiohttp is None:
            raise ImportError(AIOHTTP_MISSING)
        self.base_url = normalise_server_url(server)
        self.client_id = client_id or uuid.uuid4().hex
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=15.0, sock_read=request_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ComfyClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ComfyClient is not open; use 'async with ComfyClient(...)'")
        return self._session

    def url(self, path: str) -> str:
        return self.base_url + path

    def ws_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path + "/ws", f"clientId={self.client_id}", ""))

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
        try:
            async with self.session.request(method, self.url(path), **kwargs) as response:
                return response.status, await response.read()
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
            raise ComfyConnectionError(f"cannot reach ComfyUI at {self.base_url}: {_describe(e)}") from e

    async def queue_prompt(self, workflow: dict[str, Any], prompt_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": workflow, "client_id": self.client_id}
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        status, raw = await self._request("POST", "/prompt", json=body)
        data = _json_or_none(raw)
        if status == 400 and isinstance(data, dict) and "error" in data:
            raise PromptRejected(data["error"], data.get("node_errors") or {})
        if status != 200 or not isinstance(data, dict) or "prompt_id" not in data:
            raise ComfyError(f"POST /prompt answered HTTP {status}: {_snippet(raw)}")
        return data

    async def upload(self, path: Path, subfolder: str = "", overwrite: bool = False) -> str:
        """Upload any input file (video, audio, image, JSON) and return the value an input needs for it."""
        form = aiohttp.FormData()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as f:
            form.add_field("image", f, filename=path.name, content_type=content_type)
            form.add_field("type", "input")
            form.add_field("subfolder", subfolder)
            form.add_field("overwrite", "true" if overwrite else "false")
            status, raw = await self._request("POST", "/upload/image", data=form)
        data = _json_or_none(raw)
        if status != 200 or not isinstance(data, dict) or "name" not in data:
            raise ComfyError(f"uploading {path} answered HTTP {status}: {_snippet(raw)}")
        folder = data.get("subfolder") or ""
        return f"{folder}/{data['name']}" if folder else data["name"]

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        status, raw = await self._request("GET", f"/history/{prompt_id}")
        data = _json_or_none(raw)
        if status != 200 or not isinstance(data, dict):
            raise ComfyError(f"GET /history/{prompt_id} answered HTTP {status}: {_snippet(raw)}")
        return data.get(prompt_id)

    async def queue(self) -> tuple[list[str], list[str]]:
        """Prompt ids (running, pending) in ComfyUI's queue."""
        status, raw = await self._request("GET", "/queue")
        data = _json_or_none(raw)
        if status != 200 or not isinstance(data, dict):
            raise ComfyError(f"GET /queue answered HTTP {status}: {_snippet(raw)}")

        def ids(items: Any) -> list[str]:
            return [item[1] for item in items or [] if isinstance(item, list) and len(item) > 1]

        return ids(data.get("queue_running")), ids(data.get("queue_pending"))

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """Interrupt one running prompt (servers that know ``prompt_id``) or whatever runs (older servers)."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        status, raw = await self._request("POST", "/interrupt", json=body)
        if status != 200:
            raise ComfyError(f"POST /interrupt answered HTTP {status}: {_snippet(raw)}")

    async def delete_queued(self, prompt_ids: Iterable[str]) -> None:
        status, raw = await self._request("POST", "/queue", json={"delete": list(prompt_ids)})
        if status != 200:
            raise ComfyError(f"POST /queue answered HTTP {status}: {_snippet(raw)}")

    async def download(self, ref: dict[str, Any], dest: Path) -> Path:
        """Fetch one output file (``{"filename", "subfolder", "type"}``) through ``/view`` into ``dest``."""
        params = {
            "filename": ref["filename"],
            "subfolder": ref.get("subfolder") or "",
            "type": ref.get("type", "output"),
        }
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        try:
            async with self.session.get(self.url("/view"), params=params) as response:
                if response.status != 200:
                    raise ComfyError(
                        f"GET /view {params} answered HTTP {response.status}: {_snippet(await response.read())}"
                    )
                with partial.open("wb") as f:
                    async for chunk in response.content.iter_chunked(1 << 20):
                        f.write(chunk)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
            partial.unlink(missing_ok=True)
            raise ComfyConnectionError(f"downloading {ref['filename']} from {self.base_url}: {_describe(e)}") from e
        partial.replace(dest)
        return dest


class EventStream:
    """The websocket half: one connection for the whole batch, events routed to per-prompt queues.

    When the socket drops it reconnects (the server may still be running our prompts) and tells every
    subscriber ``_reconnected`` so it can check history; if it cannot reconnect within
    ``reconnect_timeout`` seconds, every subscriber gets ``_connection_lost`` with the reason.
    """

    def __init__(self, client: ComfyClient, reconnect_timeout: float = 15.0):
        self.client = client
        self.reconnect_timeout = reconnect_timeout
        self._queues: dict[str, asyncio.Queue] = {}
        self._orphans: collections.deque = collections.deque(maxlen=2000)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task | None = None
        self._running_prompt: str | None = None
        self._lost: str | None = None
        self._connect_lock = asyncio.Lock()

    async def connect(self) -> None:
        """Open the socket if it is not open; raises ComfyConnectionError when the server is unreachable."""
        async with self._connect_lock:
            if self._reader is not None and not self._reader.done():
                return
            self._ws = await self._open()
            self._lost = None
            self._reader = asyncio.create_task(self._read_loop(), name="comfy-ws-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    def subscribe(self, prompt_id: str) -> asyncio.Queue:
        queue = self._queues.setdefault(prompt_id, asyncio.Queue())
        self._drain_orphans(prompt_id, queue)
        return queue

    def rename(self, old: str, new: str) -> asyncio.Queue:
        """The server chose another prompt id than ours (older servers): move the subscription."""
        queue = self._queues.pop(old, None) or asyncio.Queue()
        self._queues[new] = queue
        self._drain_orphans(new, queue)
        return queue

    def unsubscribe(self, prompt_id: str) -> None:
        self._queues.pop(prompt_id, None)

    def running_prompt(self) -> str | None:
        return self._running_prompt

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self.client.session.ws_connect(self.client.ws_url(), heartbeat=30.0, max_msg_size=0)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise ComfyConnectionError(
                f"cannot open ComfyUI's websocket at {self.client.ws_url()}: {_describe(e)}"
            ) from e

    async def _read_loop(self) -> None:
        while True:
            reason = await self._pump()
            if not await self._reconnect(reason):
                return

    async def _pump(self) -> str:
        """Read until the socket ends; return why it ended."""
        ws = self._ws
        assert ws is not None
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    return f"websocket error: {_describe(ws.exception())}"
                # Binary frames are previews; nothing in a batch needs them.
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            return f"websocket error: {_describe(e)}"
        return f"websocket closed by the server (code {ws.close_code})"

    async def _reconnect(self, reason: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        delay = 0.1
        last = reason
        while loop.time() < deadline:
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, 2.0)
            try:
                self._ws = await self._open()
            except ComfyConnectionError as e:
                last = str(e)
                continue
            self._broadcast(RECONNECTED, {"reason": reason})
            return True
        self._lost = f"lost connection to ComfyUI at {self.client.base_url} ({reason}; reconnecting failed: {last})"
        self._broadcast(CONNECTION_LOST, {"error": self._lost})
        return False

    def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        for queue in self._queues.values():
            queue.put_nowait((kind, data))

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        data = message.get("data")
        if not isinstance(kind, str) or not isinstance(data, dict):
            return
        prompt_id = data.get("prompt_id")
        if kind == "execution_start" and prompt_id:
            self._running_prompt = prompt_id
        if prompt_id is None and kind in ("executing", "progress", "executed"):
            prompt_id = self._running_prompt  # older servers leave prompt_id out of these
        if prompt_id is None:
            return  # status, feature_flags, ...: not about one prompt
        if kind in TERMINAL_EVENTS and prompt_id == self._running_prompt:
            self._running_prompt = None
        queue = self._queues.get(prompt_id)
        if queue is None:
            self._orphans.append((prompt_id, kind, data))
        else:
            queue.put_nowait((kind, data))

    def _drain_orphans(self, prompt_id: str, queue: asyncio.Queue) -> None:
        kept = collections.deque(maxlen=self._orphans.maxlen)
        for pid, kind, data in self._orphans:
            if pid == prompt_id:
                queue.put_nowait((kind, data))
            else:
                kept.append((pid, kind, data))
        self._orphans = kept


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _snippet(raw: bytes, limit: int = 500) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(e: BaseException | None) -> str:
    if e is None:
        return "unknown error"
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
