"""A fake OpenAI-compatible chat server on 127.0.0.1 that answers annotation prompts like the stub would.

Real HTTP, for tests and `make bench BENCH=annotate`: it can be slow, fail with 5xx, or reply with malformed
JSON, and it counts what it saw (requests, peak concurrency). It stops itself after `max_lifetime_s`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spinal.annotate.backends.stub import stub_answer

_TASK_RE = re.compile(r"^TASK: (\w+)$", re.MULTILINE)
_CONTEXT_RE = re.compile(r"^Context: (.*)$", re.MULTILINE)
_CORRECTION_MARK = "could not be used"

# Reply modes for `FakeVlmServer.mode`:
#   "ok"       plain JSON
#   "wrapped"  JSON inside a <think> block and a ```json fence (needs repair, no reprompt)
#   "garbage_first"  prose without JSON, then valid JSON once the corrective reprompt arrives
#   "garbage"  prose without JSON, always
MODES = ("ok", "wrapped", "garbage_first", "garbage")

Responder = Callable[[str, dict[str, Any], dict[str, Any]], str | None]


def _prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
            )
    return "\n".join(parts)


class FakeVlmServer:
    """Start with `with FakeVlmServer() as server:`; point a backend at `server.base_url`."""

    def __init__(
        self,
        *,
        mode: str = "ok",
        delay_s: float = 0.0,
        fail_first: int = 0,
        fail_status: int = 503,
        responder: Responder | None = None,
        max_lifetime_s: float = 600.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        self.mode = mode
        self.delay_s = delay_s
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.responder = responder
        self.max_lifetime_s = max_lifetime_s
        self.requests = 0
        self.failures_sent = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.kinds: Counter[str] = Counter()
        self.corrections = 0
        self.authorization: set[str] = set()
        self.peak_reached = threading.Event()
        self.wait_for_peak: int | None = None
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeVlmServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle on, delayed ACKs would add ~40 ms per reply.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "fake-vlm", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(length, 64 * 1024 * 1024))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                try:
                    body = json.loads(raw)
                    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                        raise ValueError("no messages")
                except ValueError:
                    self._send(400, {"error": {"message": "body must be a JSON chat request with messages"}})
                    return
                status, payload = server._handle(body, self.headers.get("Authorization", ""))
                self._send(status, payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-vlm", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeVlmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, body: dict[str, Any], authorization: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            self.authorization.add(authorization)
            if self.failures_sent < self.fail_first:
                self.failures_sent += 1
                return self.fail_status, {
                    "error": {"message": "overloaded, try again", "type": "server_error"}
                }
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            if self.wait_for_peak is not None and self.in_flight >= self.wait_for_peak:
                self.peak_reached.set()
        try:
            if self.wait_for_peak is not None:
                self.peak_reached.wait(timeout=10.0)
            if self.delay_s:
                time.sleep(self.delay_s)
            text = self._reply(body)
        finally:
            with self._lock:
                self.in_flight -= 1
        return 200, {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "fake-vlm")),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def _reply(self, body: dict[str, Any]) -> str:
        prompt = _prompt_text(body)
        kind_match, context_match = _TASK_RE.search(prompt), _CONTEXT_RE.search(prompt)
        kind = kind_match.group(1) if kind_match else ""
        try:
            context = json.loads(context_match.group(1)) if context_match else {}
        except ValueError:
            context = {}
        corrected = _CORRECTION_MARK in prompt
        with self._lock:
            self.kinds[kind] += 1
            self.corrections += int(corrected)
        if self.responder is not None:
            canned = self.responder(kind, context, body)
            if canned is not None:
                return canned
        answer = json.dumps(stub_answer(kind, context) or {})
        if self.mode == "wrapped":
            return f"<think>The frames show a robot arm.</think>\nHere you go:\n```json\n{answer}\n```"
        if self.mode == "garbage" or (self.mode == "garbage_first" and not corrected):
            return "I think the robot is picking something up, but I am not sure."
        return answer
