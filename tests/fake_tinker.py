"""A local fake of a Tinker training and sampling service, speaking the wire
format of the official SDK (``tinker==0.38.0``): JSON requests, a protobuf
``forward_backward`` body, request futures long-polled through
``retrieve_future`` (protobuf results for forward_backward and sample, JSON
for the rest), per-model ``seq_id`` ordering and session heartbeats.

It runs in a background thread on a free loopback port (standard library
only; protobuf is encoded and decoded by hand from the schema below, so the
fake shares no code with either client it checks).

The "model" is trivial but deterministic and validates shapes like the real
service: forward_backward returns per-token log-probs computed from the
target tokens and a loss computed from the inputs; sampling returns
deterministic tokens and log-probs.

Fault injection (all one-shot unless noted):

* ``fail(path, status, times=1, retry_after=None)``  answer the next POST to
  ``/api/v1/<path>`` with ``status`` (before the request is processed)
* ``expire(kind)``        the next poll of a future of ``kind`` (e.g.
                          ``"Sample"``, ``"OptimStep"``) answers 410 and forgets it
* ``try_again_polls``     polls answering ``try_again`` before each result (default 1)
* ``hold(kind)`` / ``release(kind)``  futures of ``kind`` answer ``try_again`` until
                          released (the request is "running" on the service);
                          ``held_polls(kind)`` counts the polls answered so
* ``metadata_first``      answer the first allowed poll with ``complete_metadata``
* ``drop_session(id)``    the session ends: heartbeats and its requests get 410
* ``session_timeout``     seconds without a heartbeat after which a session ends
* ``jwt_auth``            ``client/config`` asks for the JWT exchange and other
                          requests must carry the JWT

Scripted sampling: ``sample_script`` (``script_samples(fn)``), when set, is
called as ``fn(prompt_tokens, sampler)`` for each sequence an ``asample``
returns (``sampler`` is the ``SamplingSession``, with its ``version`` and
``model_path``) and gives the sampled token ids, or ``(tokens, logprobs)``;
tokens past ``max_tokens`` are cut (stop reason ``length``, else ``stop``).
Without it sampling is the deterministic default.

Every request is recorded (``FakeTinker.requests``): method, path below
``/api/v1/``, lower-cased headers with the credential replaced by
``<api-key>`` / ``<jwt>`` / ``<wrong>``, and the decoded body (JSON, or the
protobuf decoded to a dict with token and tensor bytes unpacked).
``violations`` lists protocol problems (seq_id order, bad shapes…).
``python tests/fake_tinker.py`` runs it by hand.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

API_PREFIX = "/api/v1/"
PROTOBUF = "application/x-protobuf"
DEFAULT_KEY = "tml-fake-tinker-key-0123456789"
DEFAULT_MAX_TOKENS = 4
TRY_AGAIN_HOLD = 0.01  # seconds a try_again poll is held (a tiny long-poll)

ALLOWED_LOSSES = {"cross_entropy", "importance_sampling", "ppo", "cispo", "dro", "gspo",
                  "stable_reinforce", "custom"}
RL_LOSSES = {"importance_sampling", "ppo", "cispo"}
ALLOWED_INPUTS = {"target_tokens", "weights", "logprobs", "advantages", "clip_low_threshold",
                  "clip_high_threshold", "sequence_ratio_mask"}
INPUT_DTYPES = {"target_tokens": "int64", "logprobs": "float32", "advantages": "float32",
                "weights": "float32"}
DTYPES = {0: "unspecified", 1: "float32", 2: "int64", 3: "int32", 4: "bfloat16"}
TRAINING_KINDS = {"forward_backward": "ForwardBackward", "optim_step": "OptimStep",
                  "save_weights": "SaveWeights", "save_weights_for_sampler": "SaveWeightsForSampler",
                  "load_weights": "LoadWeights"}


# --------------------------------------------------------------------------- protobuf

# message -> {tag: (field name, type)}; "X*" = repeated, "map:K:V" = map.
SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "ForwardBackwardRequest": {1: ("model_id", "string"), 2: ("seq_id", "int32"), 3: ("data", "Datum*"),
                               4: ("loss_fn", "string"), 5: ("loss_fn_config", "map:string:double"),
                               6: ("forward_only", "bool"),
                               7: ("loss_fn_config_v2", "map:string:LossConfigValue")},
    "LossConfigValue": {1: ("number", "double"), 2: ("text", "string")},
    "Datum": {1: ("model_input", "Chunk*"), 2: ("loss_fn_inputs", "map:string:Tensor"),
              3: ("model_input_spans", "ProvenanceSpan*"), 4: ("loss_fn_input_spans", "ProvenanceSpan*")},
    "Chunk": {1: ("encoded_text", "EncodedTextChunk"), 2: ("image", "ImageChunk"), 3: ("dmel", "DmelChunk")},
    "EncodedTextChunk": {1: ("tokens", "bytes")},
    "ImageChunk": {1: ("data", "bytes"), 2: ("format", "string"), 3: ("expected_tokens", "int32"),
                   4: ("override_dimensions", "ImageDimensions")},
    "ImageDimensions": {1: ("width", "uint32"), 2: ("height", "uint32")},
    "DmelChunk": {1: ("dmel", "bytes")},
    "Tensor": {1: ("dense", "bytes"), 2: ("sparse_csr", "SparseCsr"), 3: ("dtype", "enum"), 4: ("shape", "int64*")},
    "SparseCsr": {1: ("values", "bytes"), 2: ("crow_indices", "bytes"), 3: ("col_indices", "bytes")},
    "ProvenanceSpan": {1: ("prompt_tokens", "Span"), 2: ("sampled_tokens", "Span")},
    "Span": {1: ("sequence_id", "string"), 2: ("offset", "int64"), 3: ("length", "int64")},
}


class ProtoError(ValueError):
    pass


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtoError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ProtoError("varint too long")


def _wire_fields(buf: bytes):
    """Yields (tag, wire type, raw value) for every field of a message."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        tag, wt = key >> 3, key & 7
        if wt == 0:
            value, i = _read_varint(buf, i)
        elif wt == 1:
            value, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _read_varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wt == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ProtoError(f"unsupported wire type {wt}")
        if i > len(buf):
            raise ProtoError("truncated field")
        yield tag, wt, value


def _signed64(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def _scalar(kind: str, wt: int, raw: Any) -> Any:
    if kind == "string":
        return bytes(raw).decode("utf-8")
    if kind == "bytes":
        return bytes(raw)
    if kind == "double":
        if wt != 1:
            raise ProtoError("double with wrong wire type")
        return struct.unpack("<d", raw)[0]
    if kind == "bool":
        return bool(raw)
    if kind in ("int32", "int64", "enum"):
        return _signed64(raw)
    if kind == "uint32":
        return raw
    return decode_message(kind, bytes(raw))


def decode_message(name: str, buf: bytes) -> dict:
    """Decodes `buf` as message `name` into a dict of the fields present."""
    schema = SCHEMA[name]
    out: dict[str, Any] = {}
    for tag, wt, raw in _wire_fields(buf):
        if tag not in schema:
            out.setdefault("_unknown_tags", []).append(tag)
            continue
        fname, kind = schema[tag]
        if kind.startswith("map:"):
            _, ktype, vtype = kind.split(":")
            entry = {t: (w, r) for t, w, r in _wire_fields(bytes(raw))}
            k = _scalar(ktype, *entry[1]) if 1 in entry else ""
            v = _scalar(vtype, *entry[2]) if 2 in entry else (decode_message(vtype, b"") if vtype in SCHEMA else 0)
            out.setdefault(fname, {})[k] = v
        elif kind.endswith("*"):
            base = kind[:-1]
            if base in ("int64", "int32") and wt == 2:  # packed
                j, vals = 0, []
                while j < len(raw):
                    v, j = _read_varint(bytes(raw), j)
                    vals.append(_signed64(v))
                out.setdefault(fname, []).extend(vals)
            else:
                out.setdefault(fname, []).append(_scalar(base, wt, raw))
        else:
            out[fname] = _scalar(kind, wt, raw)
    return out


def _enc_varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f_varint(tag: int, n: int) -> bytes:
    return _enc_varint(tag << 3) + _enc_varint(n) if n else b""


def _f_bytes(tag: int, b: bytes) -> bytes:
    return _enc_varint(tag << 3 | 2) + _enc_varint(len(b)) + b


def _f_double(tag: int, x: float) -> bytes:
    return _enc_varint(tag << 3 | 1) + struct.pack("<d", x)


def encode_forward_backward_output(per_datum_logprobs: list[list[float]], metrics: dict[str, float]) -> bytes:
    """ForwardBackwardOutput with one ArrayRecord holding float32 `logprobs`."""
    data = b"".join(struct.pack(f"<{len(v)}f", *v) for v in per_datum_logprobs)
    offsets, pos = [0], 0
    for v in per_datum_logprobs:
        pos += 4 * len(v)
        offsets.append(pos)
    batched = (_f_bytes(1, data) + _f_bytes(2, struct.pack(f"<{len(offsets)}q", *offsets))
               + _f_varint(3, 1))
    entry = _f_bytes(1, b"logprobs") + _f_bytes(2, batched)
    record = _f_bytes(2, entry) + _f_varint(3, len(per_datum_logprobs))
    metric_entries = b"".join(_f_bytes(3, _f_bytes(1, k.encode()) + _f_double(2, v))
                              for k, v in sorted(metrics.items()))
    return _f_bytes(1, b"ArrayRecord") + _f_bytes(2, record) + metric_entries


def encode_sample_response(sequences: list[tuple[list[int], list[float], str]]) -> bytes:
    out = b""
    for tokens, logprobs, stop in sequences:
        seq = (_f_varint(1, 1 if stop == "length" else 0)
               + _f_bytes(2, struct.pack(f"<{len(tokens)}i", *tokens))
               + _f_bytes(3, struct.pack(f"<{len(logprobs)}f", *logprobs)))
        out += _f_bytes(1, seq)
    return out


def _unpack(dtype: str, raw: bytes) -> list:
    fmt = {"float32": "f", "int64": "q", "int32": "i"}.get(dtype)
    size = {"float32": 4, "int64": 8, "int32": 4}.get(dtype)
    if fmt is None or len(raw) % size:
        raise ProtoError(f"cannot unpack {len(raw)} bytes as {dtype}")
    return list(struct.unpack(f"<{len(raw) // size}{fmt}", raw))


def logical_fwdbwd(req: dict) -> dict:
    """The decoded request with token and tensor bytes unpacked, for the
    record and for validation."""
    out = {k: v for k, v in req.items() if k != "data"}
    data = []
    for d in req.get("data", []):
        dd: dict[str, Any] = {k: v for k, v in d.items() if k not in ("model_input", "loss_fn_inputs")}
        chunks = []
        for c in d.get("model_input", []):
            if "encoded_text" in c:
                chunks.append({"encoded_text": _unpack("int32", c["encoded_text"].get("tokens", b""))})
            else:
                chunks.append({k: "<binary>" for k in c})
        dd["model_input"] = chunks
        inputs = {}
        for name, t in d.get("loss_fn_inputs", {}).items():
            dtype = DTYPES.get(t.get("dtype", 0), str(t.get("dtype")))
            tt: dict[str, Any] = {"dtype": dtype, "shape": t.get("shape", [])}
            if "dense" in t:
                tt["dense"] = _unpack(dtype, t["dense"])
            if "sparse_csr" in t:
                tt["sparse_csr"] = "<sparse>"
            inputs[name] = tt
        dd["loss_fn_inputs"] = inputs
        data.append(dd)
    out["data"] = data
    return out


# --------------------------------------------------------------------------- state

@dataclass
class RecordedRequest:
    index: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    body_format: str | None  # "json" | "protobuf" | None
    at: float
    status: int = 0
    fault: str | None = None

    def __repr__(self) -> str:
        return f"<{self.index} {self.method} {self.path} -> {self.status}{' ' + self.fault if self.fault else ''}>"


@dataclass
class Session:
    id: str
    created: float
    heartbeats: list[float] = field(default_factory=list)
    dropped: bool = False
    finished: bool = False


@dataclass
class Model:
    id: str
    session_id: str
    base_model: str
    rank: int
    last_seq: int = 0
    steps: int = 0
    seen: dict[int, tuple[bytes, str]] = field(default_factory=dict)  # seq -> (body, request_id)


@dataclass
class SamplingSession:
    id: str
    session_id: str
    base_model: str
    model_path: str | None
    last_seq: int = -1
    version: int = 0


@dataclass
class Future:
    id: str
    kind: str  # X-Tinker-Request-Type value
    json_result: Any
    proto_result: bytes | None = None
    polls: int = 0
    metadata_sent: bool = False


@dataclass
class _Fault:
    path: str
    status: int
    retry_after: str | None
    body: Any


class _Reply(Exception):
    """Raised inside a handler to answer with an HTTP error."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class FakeTinker:
    def __init__(self, api_key: str = DEFAULT_KEY, *, host: str = "127.0.0.1", port: int = 0):
        self.api_key = api_key
        self.host = host
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.sessions: dict[str, Session] = {}
        self.models: dict[str, Model] = {}
        self.samplers: dict[str, SamplingSession] = {}
        self.sampler_paths: dict[str, str] = {}  # tinker://… sampler path -> base model
        self.sampler_path_versions: dict[str, int] = {}  # … -> optimizer steps it holds
        self.checkpoints: dict[str, str] = {}  # tinker://… weights path -> model id
        self.futures: dict[str, Future] = {}
        self.jwts: set[str] = set()
        # Switches.
        self.try_again_polls = 1
        self.metadata_first = False
        self.session_timeout: float | None = None
        self.jwt_auth = False
        self.jwt_lifetime = 3600
        self.sample_script: Callable[[list[int], SamplingSession], Any] | None = None
        self._faults: list[_Fault] = []
        self._expire: list[str] = []
        self._held: set[str] = set()
        self._held_polls: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "FakeTinker":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-tinker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Forgets requests, state and pending faults (switches are kept)."""
        with self.lock:
            self.requests.clear()
            self.violations.clear()
            self.sessions.clear()
            self.models.clear()
            self.samplers.clear()
            self.sampler_paths.clear()
            self.sampler_path_versions.clear()
            self.checkpoints.clear()
            self.futures.clear()
            self._faults.clear()
            self._expire.clear()

    def script_samples(self, fn: Callable[[list[int], SamplingSession], Any] | None) -> None:
        """Sampling answers with ``fn(prompt_tokens, sampler)`` (see the module doc); None: the default."""
        with self.lock:
            self.sample_script = fn

    # ------------------------------------------------------------ faults

    def fail(self, path: str, status: int, times: int = 1, retry_after: float | str | None = None,
             body: Any = None) -> None:
        with self.lock:
            for _ in range(times):
                self._faults.append(_Fault(path, status, None if retry_after is None else str(retry_after),
                                           body if body is not None else {"detail": f"injected {status}"}))

    def expire(self, kind: str) -> None:
        with self.lock:
            self._expire.append(kind)

    def hold(self, kind: str) -> None:
        """Futures of ``kind`` (e.g. ``"OptimStep"``) stay unfinished until :meth:`release`."""
        with self.lock:
            self._held.add(kind)
            self._held_polls[kind] = 0

    def release(self, kind: str) -> None:
        with self.lock:
            self._held.discard(kind)

    def held_polls(self, kind: str) -> int:
        """Polls of a held ``kind`` answered ``try_again`` since :meth:`hold`."""
        with self.lock:
            return self._held_polls.get(kind, 0)

    def drop_session(self, session_id: str | None = None) -> None:
        with self.lock:
            for s in self.sessions.values():
                if session_id is None or s.id == session_id:
                    s.dropped = True

    # ------------------------------------------------------------ queries

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]

    def heartbeats(self, session_id: str | None = None) -> list[float]:
        with self.lock:
            if session_id is None:
                return [t for s in self.sessions.values() for t in s.heartbeats]
            return list(self.sessions[session_id].heartbeats)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def _violation(self, text: str) -> None:
        self.violations.append(text)

    # ------------------------------------------------------------ dispatch

    def handle(self, h: "_Handler") -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        path = h.path.split("?", 1)[0]
        rel = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else path
        headers = {k.lower(): v for k, v in h.headers.items()}
        ctype = headers.get("content-type", "")
        body: Any = None
        fmt: str | None = None
        decode_error: str | None = None
        if raw:
            if PROTOBUF in ctype:
                fmt = "protobuf"
                try:
                    body = logical_fwdbwd(decode_message("ForwardBackwardRequest", raw))
                except (ProtoError, KeyError, UnicodeDecodeError, struct.error) as e:
                    decode_error = f"bad protobuf body: {e}"
            else:
                fmt = "json"
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    decode_error = f"bad JSON body: {e}"
        credential = headers.get("x-api-key")
        headers["x-api-key"] = self._credential_label(credential)
        with self.lock:
            rec = RecordedRequest(len(self.requests), h.command, rel, headers, body, fmt, time.monotonic())
            self.requests.append(rec)
        try:
            if not path.startswith(API_PREFIX):
                raise _Reply(404, {"detail": "Not Found"})
            fault = self._take_fault(h.command, rel)
            if fault is not None:
                rec.fault = f"injected {fault.status}"
                extra = {"retry-after": fault.retry_after} if fault.retry_after else {}
                raise _Reply(fault.status, fault.body, extra)
            self._authenticate(rel, credential)
            if decode_error:
                raise _Reply(400, {"detail": decode_error})
            status, payload, content_type = self._route(h.command, rel, body, raw, headers)
        except _Reply as r:
            status, payload, content_type = r.status, r.body, "application/json"
            rec.status = status
            h.respond(status, payload, content_type, r.headers)
            return
        rec.status = status
        h.respond(status, payload, content_type, {})

    def _credential_label(self, credential: str | None) -> str:
        if credential is None:
            return "<missing>"
        if credential == self.api_key:
            return "<api-key>"
        if credential in self.jwts:
            return "<jwt>"
        return "<wrong>"

    def _take_fault(self, method: str, rel: str) -> _Fault | None:
        if method != "POST":
            return None
        with self.lock:
            for i, f in enumerate(self._faults):
                if f.path == rel:
                    return self._faults.pop(i)
        return None

    def _authenticate(self, rel: str, credential: str | None) -> None:
        if credential is None:
            raise _Reply(401, {"detail": "missing X-API-Key header"})
        if rel in ("client/config", "auth/token") or not self.jwt_auth:
            if credential != self.api_key and credential not in self.jwts:
                raise _Reply(401, {"detail": "Invalid API key"})
            return
        if credential not in self.jwts:
            raise _Reply(401, {"detail": "a JWT is required"},
                         {"www-authenticate": 'Bearer error="invalid_token"'})

    def _route(self, method: str, rel: str, body: Any, raw: bytes, headers: dict[str, str]):
        if method == "GET":
            if rel == "healthz":
                return 200, {"status": "ok"}, "application/json"
            if rel.startswith("samplers/"):
                return self._get_sampler(rel[len("samplers/"):])
            raise _Reply(404, {"detail": "Not Found"})
        if method != "POST":
            raise _Reply(405, {"detail": "Method Not Allowed"})
        if rel.startswith("sessions/") and rel.endswith("/finish"):
            return self._finish(rel[len("sessions/"):-len("/finish")], body)
        handler: Callable | None = {
            "client/config": self._client_config,
            "client/dynamic_config": lambda b, hd: (200, {}, "application/json"),
            "auth/token": self._auth_token,
            "telemetry": lambda b, hd: (200, {"status": "accepted"}, "application/json"),
            "create_session": self._create_session,
            "session_heartbeat": self._heartbeat,
            "create_model": self._create_model,
            "get_info": self._get_info,
            "forward_backward": self._forward_backward,
            "optim_step": self._optim_step,
            "save_weights_for_sampler": self._save_weights_for_sampler,
            "save_weights": self._save_weights,
            "load_weights": self._load_weights,
            "create_sampling_session": self._create_sampling_session,
            "asample": self._asample,
            "retrieve_future": self._retrieve_future,
        }.get(rel)
        if handler is None:
            raise _Reply(404, {"detail": "Not Found"})
        if rel == "forward_backward":
            if PROTOBUF not in headers.get("content-type", ""):
                raise _Reply(400, {"detail": "forward_backward needs Content-Type: application/x-protobuf"})
        elif not isinstance(body, dict):
            raise _Reply(422, {"detail": "the body must be a JSON object"})
        return handler(body, headers)

    # ------------------------------------------------------------ helpers

    def _require(self, body: dict, key: str, kind: type | tuple) -> Any:
        if key not in body:
            raise _Reply(422, {"detail": f"missing field {key}"})
        value = body[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise _Reply(422, {"detail": f"{key} has the wrong type"})
        if not isinstance(value, kinds):
            raise _Reply(422, {"detail": f"{key} has the wrong type"})
        return value

    def _live_session(self, session_id: str) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            raise _Reply(404, {"detail": f"unknown session {session_id}"})
        if self.session_timeout is not None and not s.dropped:
            last = s.heartbeats[-1] if s.heartbeats else s.created
            if time.monotonic() - last > self.session_timeout:
                s.dropped = True
        if s.dropped or s.finished:
            raise _Reply(410, {"detail": "the session has ended (missed heartbeats or finished)"})
        return s

    def _model(self, model_id: str) -> Model:
        m = self.models.get(model_id)
        if m is None:
            raise _Reply(404, {"detail": f"unknown model {model_id}"})
        self._live_session(m.session_id)
        return m

    def _future(self, kind: str, json_result: Any, proto_result: bytes | None = None,
                model_id: str | None = None, extra: dict | None = None):
        fid = self._next_id("req")
        self.futures[fid] = Future(fid, kind, json_result, proto_result)
        reply = {"request_id": fid}
        if model_id:
            reply["model_id"] = model_id
        reply.update(extra or {})
        return 200, reply, "application/json"

    @staticmethod
    def _user_error(message: str) -> dict:
        return {"error": message, "category": "user"}

    def _sequenced(self, model: Model, seq_id: Any, raw: bytes, kind: str):
        """Checks the training seq_id. Returns (duplicate request id, error)."""
        if not isinstance(seq_id, int) or isinstance(seq_id, bool):
            raise _Reply(422, {"detail": "seq_id must be an integer"})
        if seq_id in model.seen and model.seen[seq_id][0] == raw:
            return model.seen[seq_id][1], None  # a retried submission: same future
        expected = model.last_seq + 1
        if seq_id != expected:
            msg = f"{kind}: seq_id {seq_id} out of order for model {model.id} (expected {expected})"
            self._violation(msg)
            return None, msg
        model.last_seq = seq_id
        return None, None

    # ------------------------------------------------------------ session endpoints

    def _client_config(self, body, headers):
        if not isinstance(body.get("sdk_version"), str):
            self._violation("client/config without sdk_version")
        return 200, {"pjwt_auth_enabled": self.jwt_auth}, "application/json"

    def _auth_token(self, body, headers):
        now = int(time.time())
        enc = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()  # noqa: E731
        token = f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc({'iat': now, 'exp': now + self.jwt_lifetime, 'jti': uuid.uuid4().hex})}.x"
        with self.lock:
            self.jwts.add(token)
        return 200, {"jwt": token}, "application/json"

    def _create_session(self, body, headers):
        for key, kind in (("tags", list), ("user_metadata", dict), ("sdk_version", str)):
            self._require(body, key, kind)
        with self.lock:
            sid = str(uuid.uuid4())
            self.sessions[sid] = Session(sid, time.monotonic())
        return 200, {"session_id": sid, "type": "create_session", "info_message": None,
                     "warning_message": None, "error_message": None}, "application/json"

    def _heartbeat(self, body, headers):
        sid = self._require(body, "session_id", str)
        with self.lock:
            s = self.sessions.get(sid)
            if s is None:
                raise _Reply(404, {"detail": "unknown session"})
            self._live_session(sid)
            s.heartbeats.append(time.monotonic())
        return 200, {"type": "session_heartbeat"}, "application/json"

    def _finish(self, sid, body):
        with self.lock:
            s = self.sessions.get(sid)
            if s is None:
                raise _Reply(404, {"detail": "unknown session"})
            if not isinstance(body, dict) or not isinstance(body.get("reason"), dict):
                raise _Reply(422, {"detail": "finish needs a reason"})
            s.finished = True
        return 200, {}, "application/json"

    # ------------------------------------------------------------ training endpoints

    def _create_model(self, body, headers):
        sid = self._require(body, "session_id", str)
        model_seq = self._require(body, "model_seq_id", int)
        base = self._require(body, "base_model", str)
        lora = self._require(body, "lora_config", dict)
        self._require(body, "optimizer_config", dict)
        rank = lora.get("rank")
        if not isinstance(rank, int) or rank < 1:
            raise _Reply(422, {"detail": "lora_config.rank must be a positive integer"})
        with self.lock:
            self._live_session(sid)
            mid = f"{sid}:train:{model_seq}"
            if mid in self.models:
                self._violation(f"create_model reused model_seq_id {model_seq}")
            self.models[mid] = Model(mid, sid, base, rank)
            return self._future("CreateModel", {"model_id": mid, "type": "create_model"}, model_id=mid)

    def _get_info(self, body, headers):
        with self.lock:
            m = self._model(self._require(body, "model_id", str))
            return 200, {"type": "get_info", "model_id": m.id,
                         "model_data": {"arch": "fake", "model_name": m.base_model, "tokenizer_id": m.base_model},
                         "is_lora": True, "lora_rank": m.rank, "model_name": m.base_model,
                         "optimizer_config": {"type": "adamw"}}, "application/json"

    def _validate_fwdbwd(self, req: dict) -> str | None:
        loss = req.get("loss_fn", "")
        if loss not in ALLOWED_LOSSES:
            return f"unknown loss_fn {loss!r}"
        data = req.get("data", [])
        if not data:
            return "forward_backward needs at least one datum"
        for i, d in enumerate(data):
            tokens = sum(len(c.get("encoded_text", [])) for c in d["model_input"])
            if tokens == 0:
                return f"datum {i}: empty model_input"
            inputs = d["loss_fn_inputs"]
            unknown = set(inputs) - ALLOWED_INPUTS
            if unknown:
                return f"datum {i}: unknown loss_fn_inputs {sorted(unknown)}"
            needed = {"target_tokens", "logprobs", "advantages"} if loss in RL_LOSSES else {"target_tokens"}
            missing = needed - set(inputs)
            if missing:
                return f"datum {i}: {loss} needs {sorted(missing)}"
            for name, t in inputs.items():
                want = INPUT_DTYPES.get(name, "float32")
                if t["dtype"] != want:
                    return f"datum {i}: {name} must be {want}, got {t['dtype']}"
                values = t.get("dense")
                if values is None:
                    return f"datum {i}: {name} must be dense"
                if t["shape"] not in ([len(values)], []) or len(values) != tokens:
                    return f"datum {i}: {name} has {len(values)} values (shape {t['shape']}) for {tokens} input tokens"
                if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                    return f"datum {i}: {name} has non-finite values"
        return None

    def _model_logprobs(self, model: Model, targets: list[int]) -> list[float]:
        return [round(-0.1 * ((t % 10) + 1) - 0.01 * model.steps, 6) for t in targets]

    def _forward_backward(self, req, headers):
        with self.lock:
            m = self._model(req.get("model_id", ""))
            dup, seq_error = self._sequenced(m, req.get("seq_id", 0), json.dumps(req, sort_keys=True).encode(),
                                             "forward_backward")
            if dup:
                return 200, {"request_id": dup, "model_id": m.id}, "application/json"
            error = seq_error or self._validate_fwdbwd(req)
            if error:
                return self._future("ForwardBackward", self._user_error(error), model_id=m.id)
            per_datum, loss = [], 0.0
            for d in req["data"]:
                inputs = d["loss_fn_inputs"]
                targets = inputs["target_tokens"]["dense"]
                new_lp = self._model_logprobs(m, targets)
                per_datum.append(new_lp)
                if "advantages" in inputs:
                    old_lp, adv = inputs["logprobs"]["dense"], inputs["advantages"]["dense"]
                    loss += -sum(a * math.exp(n - o) for n, o, a in zip(new_lp, old_lp, adv))
                else:
                    loss += -sum(new_lp)
            metrics = {"loss:sum": loss}
            json_result = {"loss_fn_output_type": "ArrayRecord",
                           "loss_fn_outputs": [{"logprobs": {"data": lp, "dtype": "float32", "shape": [len(lp)]}}
                                               for lp in per_datum],
                           "metrics": metrics}
            result = self._future("ForwardBackward", json_result,
                                  encode_forward_backward_output(per_datum, metrics), model_id=m.id)
            m.seen[req["seq_id"]] = (json.dumps(req, sort_keys=True).encode(), result[1]["request_id"])
            return result

    def _json_training(self, body: dict, kind: str, make: Callable[[Model], Any]):
        """Shared path of the JSON training calls: model, seq_id, dedup."""
        with self.lock:
            m = self._model(self._require(body, "model_id", str))
            raw = json.dumps(body, sort_keys=True).encode()
            dup, seq_error = self._sequenced(m, body.get("seq_id"), raw, kind)
            if dup:
                return 200, {"request_id": dup, "model_id": m.id}, "application/json"
            result = self._user_error(seq_error) if seq_error else None
            if result is None:
                try:
                    result = make(m)
                except _Reply as r:  # validation problems become the future's error
                    result = self._user_error(r.body.get("detail", "bad request"))
            reply = self._future(TRAINING_KINDS[kind], result, model_id=m.id)
            m.seen[body["seq_id"]] = (raw, reply[1]["request_id"])
            return reply

    def _optim_step(self, body, headers):
        def make(m: Model):
            adam = self._require(body, "adam_params", dict)
            for key in ("learning_rate", "beta1", "beta2", "eps", "weight_decay", "grad_clip_norm"):
                v = adam.get(key)
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                    raise _Reply(422, {"detail": f"adam_params.{key} must be a finite number"})
            m.steps += 1
            return {"metrics": {"step:max": float(m.steps)}, "type": "optim_step"}
        return self._json_training(body, "optim_step", make)

    def _save_weights_for_sampler(self, body, headers):
        def make(m: Model):
            if "path" in body:
                name = self._require(body, "path", str)
                path = f"tinker://{m.id}/sampler_weights/{name}"
                self.sampler_paths[path] = m.base_model
                self.sampler_path_versions[path] = m.steps
                return {"path": path, "type": "save_weights_for_sampler"}
            self._require(body, "sampling_session_seq_id", int)
            sid = self._next_id("sampler")
            self.samplers[sid] = SamplingSession(sid, m.session_id, m.base_model, None, version=m.steps)
            return {"sampling_session_id": sid, "type": "save_weights_for_sampler"}
        return self._json_training(body, "save_weights_for_sampler", make)

    def _save_weights(self, body, headers):
        def make(m: Model):
            name = self._require(body, "path", str)
            path = f"tinker://{m.id}/weights/{name}"
            self.checkpoints[path] = m.id
            return {"path": path, "type": "save_weights"}
        return self._json_training(body, "save_weights", make)

    def _load_weights(self, body, headers):
        def make(m: Model):
            path = self._require(body, "path", str)
            self._require(body, "optimizer", bool)
            if path not in self.checkpoints:
                raise _Reply(404, {"detail": f"checkpoint {path} not found"})
            return {"path": path, "model_id": m.id, "type": "load_weights"}
        return self._json_training(body, "load_weights", make)

    # ------------------------------------------------------------ sampling endpoints

    def _create_sampling_session(self, body, headers):
        sid = self._require(body, "session_id", str)
        self._require(body, "sampling_session_seq_id", int)
        with self.lock:
            self._live_session(sid)
            path = body.get("model_path")
            if path is not None:
                if path not in self.sampler_paths:
                    raise _Reply(404, {"detail": f"sampler weights {path} not found"})
                base = self.sampler_paths[path]
            else:
                base = self._require(body, "base_model", str)
            version = self.sampler_path_versions.get(path, 0) if path is not None else 0
            sampler = SamplingSession(self._next_id("sampler"), sid, base, path, version=version)
            self.samplers[sampler.id] = sampler
        return 200, {"sampling_session_id": sampler.id, "type": "create_sampling_session"}, "application/json"

    def _get_sampler(self, sampler_id: str):
        with self.lock:
            s = self.samplers.get(sampler_id)
            if s is None:
                raise _Reply(404, {"detail": "unknown sampler"})
            return 200, {"sampler_id": s.id, "base_model": s.base_model, "model_path": s.model_path}, \
                "application/json"

    def _asample(self, body, headers):
        sid = self._require(body, "sampling_session_id", str)
        seq_id = self._require(body, "seq_id", int)
        n = self._require(body, "num_samples", int)
        prompt = self._require(body, "prompt", dict)
        params = self._require(body, "sampling_params", dict)
        if n < 1:
            raise _Reply(422, {"detail": "num_samples must be at least 1"})
        chunks = prompt.get("chunks")
        if not isinstance(chunks, list) or not chunks:
            raise _Reply(422, {"detail": "prompt.chunks must be a non-empty list"})
        tokens: list[int] = []
        for c in chunks:
            if c.get("type") != "encoded_text" or not all(isinstance(t, int) for t in c.get("tokens", [])):
                raise _Reply(422, {"detail": "prompt chunks must be encoded_text with integer tokens"})
            tokens.extend(c["tokens"])
        for key in ("temperature", "top_p"):
            if not isinstance(params.get(key), (int, float)):
                raise _Reply(422, {"detail": f"sampling_params.{key} must be a number"})
        if not isinstance(params.get("top_k"), int):
            raise _Reply(422, {"detail": "sampling_params.top_k must be an integer"})
        with self.lock:
            s = self.samplers.get(sid)
            if s is None:
                raise _Reply(404, {"detail": f"unknown sampling session {sid}"})
            self._live_session(s.session_id)
            if seq_id <= s.last_seq:
                self._violation(f"asample: seq_id {seq_id} not increasing for {sid} (last {s.last_seq})")
            s.last_seq = max(s.last_seq, seq_id)
            max_tokens = params.get("max_tokens") or DEFAULT_MAX_TOKENS
            base = sum(tokens) + 100 * s.version
            sequences = []
            for j in range(n):
                if self.sample_script is not None:
                    scripted = self.sample_script(list(tokens), s)
                    toks, lps = scripted if isinstance(scripted, tuple) else (scripted, None)
                    toks = [int(t) for t in toks]
                    if lps is None:
                        lps = [round(-0.125 * (1 + i % 4), 6) for i in range(len(toks))]
                    if len(lps) != len(toks):
                        raise _Reply(500, {"detail": "scripted sample: tokens and logprobs differ in length"})
                    stop = "length" if len(toks) > max_tokens else "stop"
                    sequences.append((toks[:max_tokens], [float(x) for x in lps[:max_tokens]], stop))
                    continue
                toks = [(base + 7 * j + i) % 1000 + 1 for i in range(max_tokens)]
                lps = [round(-0.1 * (i + 1) - 0.05 * j, 6) for i in range(max_tokens)]
                sequences.append((toks, lps, "length"))
            json_result = {"type": "sample", "prompt_logprobs": None, "topk_prompt_logprobs": None,
                           "sequences": [{"tokens": t, "logprobs": lp, "stop_reason": st} for t, lp, st in sequences]}
            ids = [self._next_id("seq") for _ in range(n)]
            return self._future("Sample", json_result, encode_sample_response(sequences),
                                extra={"sample_sequence_ids": ids})

    # ------------------------------------------------------------ futures

    def _retrieve_future(self, body, headers):
        rid = self._require(body, "request_id", str)
        allow_metadata = body.get("allow_metadata_only", False)
        with self.lock:
            f = self.futures.get(rid)
            if f is None:
                raise _Reply(404, {"detail": f"unknown request_id {rid}"})
            if headers.get("x-tinker-request-type") not in (None, f.kind):
                self._violation(f"retrieve_future for a {f.kind} sent X-Tinker-Request-Type "
                                f"{headers.get('x-tinker-request-type')}")
            if f.kind in self._expire:
                self._expire.remove(f.kind)
                del self.futures[rid]
                raise _Reply(410, {"detail": "the promise has expired"})
            f.polls += 1
            held = f.kind in self._held
            if held:
                self._held_polls[f.kind] = self._held_polls.get(f.kind, 0) + 1
            try_again = held or f.polls <= self.try_again_polls
            metadata = (not try_again and self.metadata_first and allow_metadata and not f.metadata_sent)
            if metadata:
                f.metadata_sent = True
        if try_again:
            time.sleep(TRY_AGAIN_HOLD)
            return 200, {"type": "try_again", "request_id": rid, "queue_state": "active"}, "application/json"
        wants_proto = PROTOBUF in headers.get("accept", "")
        if metadata:
            size = len(f.proto_result if (wants_proto and f.proto_result) else json.dumps(f.json_result).encode())
            return 200, {"status": "complete_metadata", "response_payload_size": size}, "application/json"
        if wants_proto and f.proto_result is not None:
            return 200, f.proto_result, PROTOBUF
        return 200, f.json_result, "application/json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle plus
    # the client's delayed ACK add ~40 ms to every response.
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake.handle(self)

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake.handle(self)

    def respond(self, status: int, payload: Any, content_type: str, headers: dict[str, str]) -> None:
        data = payload if isinstance(payload, (bytes, bytearray)) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, fake: FakeTinker):
        super().__init__(address, _Handler)
        self.fake = fake


if __name__ == "__main__":
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    fake = FakeTinker(port=port).start()
    print(f"fake Tinker on {fake.base_url} (key {fake.api_key}); Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
