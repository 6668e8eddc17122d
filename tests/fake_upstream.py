"""A local fake LLM provider that speaks the exact OpenAI and Anthropic wire formats.

It runs in a background thread of the pytest process on a free loopback port
and writes every byte itself (chunked transfer encoding, SSE framing), so it
can also misbehave on purpose: reset the TCP connection, hang, stall mid-stream
or send broken JSON.

Behaviour is chosen by the request's ``model`` (TensorZero style):

* any other model         scripted text reply (``SCRIPTED_TEXT``)
* ``tool-*``               a tool call ``get_weather {"city":"Paris"}``; once the
                           conversation holds a tool result, ``TOOL_FOLLOWUP_TEXT``
* ``slow-*``               streams the first text chunk, then waits (up to
                           ``SLOW_GATE_SECS``) until the test sets ``record.release``,
                           then sends the rest with small delays
* ``fault-500`` / ``fault-429`` / ``fault-401`` / ``fault-404``
                           an HTTP error in the dialect's format (429 has Retry-After)
* ``fault-hang``           reads the request, never answers
* ``fault-reset``          reads the request, then closes the socket with RST
* ``fault-malformed``      a stream with a broken JSON chunk (non-stream: a
                           truncated JSON body)
* ``fault-midstream-reset`` a few stream chunks, then RST
* ``fault-stall``          a few stream chunks, then silence
* ``endless-*``            streams a chunk every ``ENDLESS_INTERVAL`` s (bounded),
                           and sets ``record.client_gone`` when its client goes away

Every request is recorded (``FakeUpstream.requests``) with its path, lower-cased
headers and parsed JSON body. Requests must carry the configured key
(``Authorization: Bearer K`` on the OpenAI side, ``x-api-key: K`` on the
Anthropic side; `Authorization: Bearer K` is accepted there too, as the
current anthropic SDK sends it) or get a 401 in the proper format.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

SCRIPTED_TEXT = "Hello from the fake upstream! Paris est très belle — 21 °C ☀️. The end."
# The scripted text split into stream pieces (by characters, so multi-byte
# characters are whole inside each JSON chunk but the UTF-8 bytes of a chunk
# can still be split by TCP anywhere).
TEXT_PIECES = ["Hello", " from the fake", " upstream! Paris", " est très belle", " — 21 °C ☀️", ". The end."]
assert "".join(TEXT_PIECES) == SCRIPTED_TEXT

TOOL_FOLLOWUP_TEXT = "The weather in Paris is clear and 21 °C."
TOOL_FOLLOWUP_PIECES = ["The weather", " in Paris is", " clear and 21 °C."]
assert "".join(TOOL_FOLLOWUP_PIECES) == TOOL_FOLLOWUP_TEXT

TOOL_NAME = "get_weather"
TOOL_ARGS = {"city": "Paris"}
TOOL_ARGS_JSON = '{"city":"Paris"}'
TOOL_ARGS_PIECES = ['{"ci', 'ty":"Pa', 'ris"}']
assert "".join(TOOL_ARGS_PIECES) == TOOL_ARGS_JSON
OPENAI_TOOL_CALL_ID = "call_fake_0001"
ANTHROPIC_TOOL_USE_ID = "toolu_fake_0001"

PROMPT_TOKENS = 31
COMPLETION_TOKENS = 12
CREATED = 1700000000

ERROR_MESSAGES = {
    401: "fake upstream: invalid api key (fault-401)",
    404: "fake upstream: the model `fault-404` does not exist (fault-404)",
    429: "fake upstream: rate limit reached, try again in 7s (fault-429)",
    500: "fake upstream: the server had an error processing your request (fault-500)",
}
RETRY_AFTER = "7"
MALFORMED_FRAGMENT = '{"id": "broken", "choices": [{"delta": {"content": "oops"'
MIDSTREAM_CHUNKS = 2  # text pieces sent before fault-midstream-reset / fault-stall

SLOW_GATE_SECS = 15.0
SLOW_DELAY = 0.05
HANG_MAX_SECS = 60.0
ENDLESS_INTERVAL = 0.1
ENDLESS_MAX_CHUNKS = 600  # 60 s at most: every loop here is bounded

OPENAI_MODELS = ["fake-gpt-4o", "fake-gpt-4o-mini"]
ANTHROPIC_MODELS = ["claude-fake-sonnet", "claude-fake-haiku"]

_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                       429: "requests", 500: "server_error"}
_OPENAI_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                          429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


class _Abort(Exception):
    """Raised inside a handler to drop the connection without any more writes."""


class RecordedRequest:
    """One request as the fake received it, plus what happened to it."""

    def __init__(self, seq: int, method: str, path: str, headers: dict[str, str], raw: bytes):
        self.seq = seq
        self.method = method
        self.path = path
        self.headers = headers
        self.raw = raw
        self.body: Any = None
        if raw:
            try:
                self.body = json.loads(raw)
            except ValueError:
                self.body = None
        self.received_at = time.monotonic()
        # Set after the fake's last write for this request (stream or not).
        self.finished = threading.Event()
        # Set when a write to the client failed or the client closed its side.
        self.client_gone = threading.Event()
        # slow-* streams wait for this after their first text chunk.
        self.release = threading.Event()
        # The non-stream equivalent of what the fake answered (None for faults).
        self.response: Any = None
        self.chunks_sent = 0

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<RecordedRequest #{self.seq} {self.method} {self.path} model={self.model!r}>"


def _has_tool_result(body: dict, dialect: str) -> bool:
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        if dialect == "openai" and m.get("role") == "tool":
            return True
        if dialect == "anthropic" and isinstance(m.get("content"), list):
            if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in m["content"]):
                return True
    return False


def credentials(rec: RecordedRequest) -> list[str]:
    """Every credential a request carried (x-api-key and/or a Bearer token)."""
    out = []
    if "x-api-key" in rec.headers:
        out.append(rec.headers["x-api-key"])
    auth = rec.headers.get("authorization")
    if auth is not None:
        out.append(auth[7:] if auth.lower().startswith("bearer ") else auth)
    return out


def _j(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm/1.0"
    sys_version = ""
    fake: "FakeUpstream"  # set on the subclass made per server

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (_Abort, OSError, ValueError):
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, raw: bytes) -> RecordedRequest:
        headers = {k.lower(): v for k, v in self.headers.items()}
        return self.fake._add(self.command, self.path, headers, raw)

    def _gone(self, rec: RecordedRequest | None) -> None:
        if rec is not None:
            rec.client_gone.set()
        self.close_connection = True
        raise _Abort()

    def _send_bytes(self, rec: RecordedRequest | None, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self._gone(rec)

    def _send_json(self, rec: RecordedRequest | None, status: int, obj: Any,
                   extra_headers: dict[str, str] | None = None) -> None:
        body = _j(obj)
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('Status',))[0]}",
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
                f"x-request-id: req_fake_{rec.seq if rec else 0}"]
        for k, v in (extra_headers or {}).items():
            head.append(f"{k}: {v}")
        self._send_bytes(rec, ("\r\n".join(head) + "\r\n\r\n").encode() + body)
        if rec is not None:
            rec.finished.set()

    def _start_stream(self, rec: RecordedRequest) -> None:
        head = ["HTTP/1.1 200 OK",
                "Content-Type: text/event-stream; charset=utf-8",
                "Cache-Control: no-cache",
                "Transfer-Encoding: chunked",
                f"x-request-id: req_fake_{rec.seq}"]
        self._send_bytes(rec, ("\r\n".join(head) + "\r\n\r\n").encode())

    def _chunk(self, rec: RecordedRequest, data: bytes) -> None:
        self._send_bytes(rec, b"%x\r\n%s\r\n" % (len(data), data))
        rec.chunks_sent += 1

    def _end_stream(self, rec: RecordedRequest) -> None:
        self._send_bytes(rec, b"0\r\n\r\n")
        rec.finished.set()

    def _rst(self) -> None:
        """Close the connection with a TCP RST (SO_LINGER 0) and stop handling it."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            os.close(self.connection.detach())
        except OSError:
            pass
        self.close_connection = True
        raise _Abort()

    def _wait_client_gone(self, rec: RecordedRequest, max_secs: float) -> None:
        """Sit on the connection without answering until the client closes it."""
        deadline = time.monotonic() + max_secs
        sock = self.connection
        while time.monotonic() < deadline and not self.fake._stopping.is_set():
            try:
                readable, _, _ = select.select([sock], [], [], 0.1)
                if readable and sock.recv(1, socket.MSG_PEEK) == b"":
                    rec.client_gone.set()
                    break
            except OSError:
                rec.client_gone.set()
                break
        self.close_connection = True
        raise _Abort()

    def _client_closed(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # ------------------------------------------------------------------ errors
    def _error(self, rec: RecordedRequest | None, dialect: str, status: int, message: str,
               extra_headers: dict[str, str] | None = None) -> None:
        if dialect == "anthropic":
            obj = {"type": "error",
                   "error": {"type": _ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message},
                   "request_id": f"req_fake_{rec.seq if rec else 0}"}
        else:
            obj = {"error": {"message": message, "type": _OPENAI_ERROR_TYPES.get(status, "invalid_request_error"),
                             "param": None, "code": _OPENAI_ERROR_CODES.get(status)}}
        self._send_json(rec, status, obj, extra_headers)

    def _check_auth(self, rec: RecordedRequest, dialect: str) -> bool:
        key = self.fake.api_key
        if dialect == "anthropic":
            # Anthropic takes `x-api-key: K`; its current SDK (anthropic>=2) sends
            # `Authorization: Bearer K` instead, which the API accepts too. Every
            # credential header that is present must carry the key.
            xk, auth = rec.headers.get("x-api-key"), rec.headers.get("authorization")
            ok = (xk is not None or auth is not None) and xk in (None, key) and auth in (None, f"Bearer {key}")
            msg = "invalid x-api-key"
        else:
            ok = rec.headers.get("authorization") == f"Bearer {key}"
            msg = "Incorrect API key provided. You can find your API key at https://platform.example/api-keys."
        if not ok:
            self._error(rec, dialect, 401, msg)
        return ok

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802
        rec = self._record(b"")
        path = self.path.split("?")[0]
        if path not in ("/v1/models", "/models"):
            self._error(rec, "openai", 404, f"Unknown path {path}")
            return
        dialect = "anthropic" if "anthropic-version" in rec.headers else "openai"
        if not self._check_auth(rec, dialect):
            return
        if dialect == "anthropic":
            data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                     "created_at": "2025-01-01T00:00:00Z"} for m in ANTHROPIC_MODELS]
            obj = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        else:
            obj = {"object": "list",
                   "data": [{"id": m, "object": "model", "created": CREATED, "owned_by": "fake"} for m in OPENAI_MODELS]}
        rec.response = obj
        self._send_json(rec, 200, obj)

    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        rec = self._record(raw)
        path = self.path.split("?")[0]
        if path in ("/v1/chat/completions", "/chat/completions"):
            dialect = "openai"
        elif path in ("/v1/messages", "/messages"):
            dialect = "anthropic"
        else:
            self._error(rec, "openai", 404, f"Unknown path {path}")
            return
        if not self._check_auth(rec, dialect):
            return
        body = rec.body
        if not isinstance(body, dict):
            self._error(rec, dialect, 400, "We could not parse the JSON body of your request.")
            return
        problem = self._validate(body, dialect, rec)
        if problem:
            self._error(rec, dialect, 400, problem)
            return
        model = str(body.get("model") or "")
        stream = bool(body.get("stream"))

        if model.startswith("fault-"):
            self._fault(rec, dialect, model, stream, body)
            return
        if model.startswith("endless-"):
            if not stream:
                self._error(rec, dialect, 400, "endless-* models only stream")
                return
            self._endless(rec, dialect, body)
            return
        tool = model.startswith("tool-") and not _has_tool_result(body, dialect)
        if model.startswith("tool-") and not tool:
            pieces = TOOL_FOLLOWUP_PIECES
        else:
            pieces = TEXT_PIECES
        slow = model.startswith("slow-")
        if dialect == "openai":
            if stream:
                self._openai_stream(rec, body, pieces, tool=tool, slow=slow)
            else:
                if slow:
                    time.sleep(SLOW_DELAY)
                rec.response = self._openai_message(rec, body, "".join(pieces), tool)
                self._send_json(rec, 200, rec.response)
        else:
            if stream:
                self._anthropic_stream(rec, body, pieces, tool=tool, slow=slow)
            else:
                if slow:
                    time.sleep(SLOW_DELAY)
                rec.response = self._anthropic_message(rec, body, "".join(pieces), tool)
                self._send_json(rec, 200, rec.response)

    def _validate(self, body: dict, dialect: str, rec: RecordedRequest) -> str | None:
        if not body.get("model"):
            return "you must provide a model parameter"
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return "messages: field required"
        if dialect == "anthropic":
            if "anthropic-version" not in rec.headers:
                return "anthropic-version: header is required"
            if not isinstance(body.get("max_tokens"), int):
                return "max_tokens: Field required"
            for i, m in enumerate(msgs):
                if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                    return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        else:
            for i, m in enumerate(msgs):
                if not isinstance(m, dict) or "role" not in m:
                    return f"messages[{i}]: missing role"
                if m.get("role") == "tool" and not m.get("tool_call_id"):
                    return f"messages[{i}].tool_call_id: missing"
        return None

    # ------------------------------------------------------------------ OpenAI
    def _openai_message(self, rec: RecordedRequest, body: dict, text: str, tool: bool) -> dict:
        if tool:
            message = {"role": "assistant", "content": None,
                       "tool_calls": [{"id": OPENAI_TOOL_CALL_ID, "type": "function",
                                       "function": {"name": TOOL_NAME, "arguments": TOOL_ARGS_JSON}}],
                       "refusal": None, "annotations": []}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
            finish = "stop"
        return {"id": f"chatcmpl-fake-{rec.seq}", "object": "chat.completion", "created": CREATED,
                "model": body["model"], "choices": [{"index": 0, "message": message, "logprobs": None,
                                                     "finish_reason": finish}],
                "usage": self._openai_usage(), "service_tier": "default", "system_fingerprint": "fp_fake"}

    @staticmethod
    def _openai_usage() -> dict:
        return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    def _openai_chunk(self, rec: RecordedRequest, body: dict, delta: dict | None, finish: str | None = None,
                      usage: Any = "absent") -> bytes:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        obj: dict[str, Any] = {"id": f"chatcmpl-fake-{rec.seq}", "object": "chat.completion.chunk",
                               "created": CREATED, "model": body["model"], "service_tier": "default",
                               "system_fingerprint": "fp_fake",
                               "choices": [] if delta is None else
                               [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            obj["usage"] = None if usage == "absent" else usage
        return b"data: " + _j(obj) + b"\n\n"

    def _openai_stream(self, rec: RecordedRequest, body: dict, pieces: list[str], *, tool: bool,
                       slow: bool = False, fault: str | None = None) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._start_stream(rec)
        if tool:
            self._chunk(rec, self._openai_chunk(rec, body, {
                "role": "assistant", "content": None, "refusal": None,
                "tool_calls": [{"index": 0, "id": OPENAI_TOOL_CALL_ID, "type": "function",
                                "function": {"name": TOOL_NAME, "arguments": ""}}]}))
            for p in TOOL_ARGS_PIECES:
                self._chunk(rec, self._openai_chunk(rec, body, {"tool_calls": [{"index": 0,
                                                                               "function": {"arguments": p}}]}))
            finish = "tool_calls"
            rec.response = self._openai_message(rec, body, "", True)
        else:
            self._chunk(rec, self._openai_chunk(rec, body, {"role": "assistant", "content": "", "refusal": None}))
            for i, p in enumerate(pieces):
                if fault and i == MIDSTREAM_CHUNKS:
                    self._stream_fault(rec, "openai", fault)
                self._chunk(rec, self._openai_chunk(rec, body, {"content": p}))
                if slow:
                    if i == 0:
                        rec.release.wait(SLOW_GATE_SECS)
                    time.sleep(SLOW_DELAY)
            finish = "stop"
            rec.response = self._openai_message(rec, body, "".join(pieces), False)
        self._chunk(rec, self._openai_chunk(rec, body, {}, finish))
        if include_usage:
            self._chunk(rec, self._openai_chunk(rec, body, None, usage=self._openai_usage()))
        self._chunk(rec, b"data: [DONE]\n\n")
        self._end_stream(rec)

    # ------------------------------------------------------------------ Anthropic
    def _anthropic_message(self, rec: RecordedRequest, body: dict, text: str, tool: bool) -> dict:
        if tool:
            content = [{"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": TOOL_NAME, "input": dict(TOOL_ARGS)}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": text}]
            stop = "end_turn"
        return {"id": f"msg_fake_{rec.seq}", "type": "message", "role": "assistant", "model": body["model"],
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}

    @staticmethod
    def _event(name: str, obj: dict) -> bytes:
        return f"event: {name}\n".encode() + b"data: " + _j(obj) + b"\n\n"

    def _anthropic_stream(self, rec: RecordedRequest, body: dict, pieces: list[str], *, tool: bool,
                          slow: bool = False, fault: str | None = None) -> None:
        self._start_stream(rec)
        start = {"id": f"msg_fake_{rec.seq}", "type": "message", "role": "assistant", "model": body["model"],
                 "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1,
                           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        self._chunk(rec, self._event("message_start", {"type": "message_start", "message": start}))
        if tool:
            self._chunk(rec, self._event("content_block_start", {
                "type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": TOOL_NAME, "input": {}}}))
            self._chunk(rec, self._event("ping", {"type": "ping"}))
            for p in [""] + TOOL_ARGS_PIECES:
                self._chunk(rec, self._event("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": p}}))
            stop = "tool_use"
            rec.response = self._anthropic_message(rec, body, "", True)
        else:
            self._chunk(rec, self._event("content_block_start", {
                "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
            self._chunk(rec, self._event("ping", {"type": "ping"}))
            for i, p in enumerate(pieces):
                if fault and i == MIDSTREAM_CHUNKS:
                    self._stream_fault(rec, "anthropic", fault)
                self._chunk(rec, self._event("content_block_delta", {
                    "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}))
                if slow:
                    if i == 0:
                        rec.release.wait(SLOW_GATE_SECS)
                    time.sleep(SLOW_DELAY)
            stop = "end_turn"
            rec.response = self._anthropic_message(rec, body, "".join(pieces), False)
        self._chunk(rec, self._event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        self._chunk(rec, self._event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": COMPLETION_TOKENS}}))
        self._chunk(rec, self._event("message_stop", {"type": "message_stop"}))
        self._end_stream(rec)

    # ------------------------------------------------------------------ faults
    def _stream_fault(self, rec: RecordedRequest, dialect: str, fault: str) -> None:
        if fault == "fault-midstream-reset":
            self._rst()
        if fault == "fault-stall":
            self._wait_client_gone(rec, HANG_MAX_SECS)
        if fault == "fault-malformed":
            if dialect == "openai":
                self._chunk(rec, b"data: " + MALFORMED_FRAGMENT.encode() + b"\n\n")
            else:
                self._chunk(rec, b"event: content_block_delta\ndata: " + MALFORMED_FRAGMENT.encode() + b"\n\n")

    def _fault(self, rec: RecordedRequest, dialect: str, model: str, stream: bool, body: dict) -> None:
        code = {"fault-500": 500, "fault-429": 429, "fault-401": 401, "fault-404": 404}.get(model)
        if code is not None:
            extra = {"Retry-After": RETRY_AFTER} if code == 429 else None
            self._error(rec, dialect, code, ERROR_MESSAGES[code], extra)
            return
        if model == "fault-hang":
            self._wait_client_gone(rec, HANG_MAX_SECS)
        if model == "fault-reset":
            self._rst()
        if model in ("fault-malformed", "fault-midstream-reset", "fault-stall"):
            if not stream:
                if model == "fault-malformed":
                    data = MALFORMED_FRAGMENT.encode()
                    head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n").encode()
                    self._send_bytes(rec, head + data)
                    rec.finished.set()
                    return
                if model == "fault-stall":
                    self._wait_client_gone(rec, HANG_MAX_SECS)
                self._rst()
            if dialect == "openai":
                self._openai_stream(rec, body, TEXT_PIECES, tool=False, fault=model)
            else:
                self._anthropic_stream(rec, body, TEXT_PIECES, tool=False, fault=model)
            return
        self._error(rec, dialect, 404, f"fake upstream: unknown fault model {model}")

    def _endless(self, rec: RecordedRequest, dialect: str, body: dict) -> None:
        self._start_stream(rec)
        if dialect == "openai":
            self._chunk(rec, self._openai_chunk(rec, body, {"role": "assistant", "content": ""}))
        else:
            self._chunk(rec, self._event("message_start", {"type": "message_start", "message": {
                "id": f"msg_fake_{rec.seq}", "type": "message", "role": "assistant", "model": body["model"],
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1}}}))
            self._chunk(rec, self._event("content_block_start", {
                "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
        for i in range(ENDLESS_MAX_CHUNKS):
            if self.fake._stopping.is_set():
                break
            if self._client_closed():
                self._gone(rec)
            if dialect == "openai":
                self._chunk(rec, self._openai_chunk(rec, body, {"content": f"tick {i} "}))
            else:
                self._chunk(rec, self._event("content_block_delta", {
                    "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"tick {i} "}}))
            time.sleep(ENDLESS_INTERVAL)
        # Bounded: end the stream properly after ENDLESS_MAX_CHUNKS.
        if dialect == "openai":
            self._chunk(rec, self._openai_chunk(rec, body, {}, "length"))
            self._chunk(rec, b"data: [DONE]\n\n")
        else:
            self._chunk(rec, self._event("content_block_stop", {"type": "content_block_stop", "index": 0}))
            self._chunk(rec, self._event("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": "max_tokens", "stop_sequence": None}, "usage": {"output_tokens": ENDLESS_MAX_CHUNKS}}))
            self._chunk(rec, self._event("message_stop", {"type": "message_stop"}))
        self._end_stream(rec)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # silence tracebacks
        pass


class FakeUpstream:
    """The fake provider. ``start()`` it, point things at ``openai_base_url`` /
    ``anthropic_base_url``, read ``requests``; ``stop()`` when done."""

    def __init__(self, api_key: str = "sk-upstream-test-0123456789abcdef", host: str = "127.0.0.1"):
        self.api_key = api_key
        self.host = host
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._seq = itertools.count(1)
        self._stopping = threading.Event()
        handler = type("FakeHandler", (_Handler,), {"fake": self})
        self._server = _Server((host, 0), handler)
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> "FakeUpstream":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeUpstream":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # -------------------------------------------------------------- records
    def _add(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> RecordedRequest:
        rec = RecordedRequest(next(self._seq), method, path, headers, raw)
        with self._lock:
            self._requests.append(rec)
        return rec

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def find(self, marker: str) -> list[RecordedRequest]:
        """All recorded requests whose raw body contains ``marker``, oldest first."""
        return [r for r in self.requests if marker in r.text]

    def wait_for(self, pred: Callable[[RecordedRequest], bool], timeout: float = 10.0) -> RecordedRequest:
        deadline = time.monotonic() + timeout
        while True:
            for r in reversed(self.requests):
                if pred(r):
                    return r
            if time.monotonic() > deadline:
                raise AssertionError("the fake upstream received no matching request")
            time.sleep(0.02)

    def wait_marker(self, marker: str, timeout: float = 10.0) -> RecordedRequest:
        return self.wait_for(lambda r: marker in r.text, timeout)

    def only(self, marker: str) -> RecordedRequest:
        found = self.find(marker)
        assert len(found) == 1, f"expected exactly one upstream request with {marker!r}, got {found}"
        return found[0]


if __name__ == "__main__":  # run by hand: python tests/fake_upstream.py
    f = FakeUpstream().start()
    print(f"fake upstream on {f.url} (key {f.api_key})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        f.stop()
