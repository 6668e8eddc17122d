"""Helpers for the end-to-end tests: run the `metaclaw` CLI, start and stop
`metaclaw serve`, make SDK clients, raw HTTP, skill folders, and poll the
recorded sessions/turns."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("METACLAW_BIN") or REPO / "target" / "debug" / "metaclaw")
REFERENCE_SKILLS = (REPO.parent / "shared" / "reference" / "metaclaw-skills").resolve()

UPSTREAM_KEY = "sk-upstream-test-0123456789abcdef"
CLIENT_KEY = "client-key-never-forwarded-42"
PROXY_KEY = "sk-proxy-secret-9f8e7d6c5b4a3210"

START_DEADLINE = 60.0  # seconds to wait for /healthz after spawning serve
RECORD_DEADLINE = 5.0  # recording is asynchronous: poll this long before asserting

# Environment variables the proxy could fall back to; never leak the host's.
_STRIPPED_ENV_PREFIXES = ("OPENAI_", "ANTHROPIC_")

# Every server started in this pytest process (so a failing test can show logs).
LIVE_SERVERS: list["ProxyServer"] = []


def uid() -> str:
    return uuid.uuid4().hex[:12]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    return free_port()


def wait_until(fn: Callable[[], Any], timeout: float = RECORD_DEADLINE, interval: float = 0.1,
               what: str = "condition") -> Any:
    """Poll ``fn`` until it returns something truthy (returned) or raise after ``timeout``.
    Exceptions inside ``fn`` count as 'not yet' and the last one is reported."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    last_val: Any = None
    while True:
        try:
            last_val = fn()
            if last_val:
                return last_val
        except AssertionError as e:
            last_exc = e
        except (subprocess.SubprocessError, ValueError, KeyError, IndexError, TypeError) as e:
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last_val!r}; "
                                 f"last error {last_exc!r}")
        time.sleep(interval)


# --------------------------------------------------------------------------- CLI

def clean_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV_PREFIXES)}
    env["METACLAW_HOME"] = str(home)
    env.setdefault("NO_COLOR", "1")
    # Keys go to the secrets file, never the developer's own keychain
    # (test_api.py turns a private Secret Service on explicitly).
    env.setdefault("METACLAW_KEYCHAIN", "off")
    if extra:
        env.update(extra)
    return env


class MetaClaw:
    """The `metaclaw` CLI bound to one METACLAW_HOME. Every output it ever
    produced is kept in ``outputs`` (the secret-leak test reads it)."""

    def __init__(self, home: Path, env_extra: dict[str, str] | None = None):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.env_extra = env_extra or {}
        self.outputs: list[str] = []

    @property
    def env(self) -> dict[str, str]:
        return clean_env(self.home, self.env_extra)

    def run(self, *args: Any, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(BIN), *[str(a) for a in args]]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        self.outputs.append(p.stdout + p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"`metaclaw {' '.join(map(str, args))}` exited {p.returncode}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def json(self, *args: Any, check: bool = True) -> Any:
        p = self.run(*args, check=check)
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise AssertionError(f"`metaclaw {' '.join(map(str, args))}` did not print JSON: {e}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}") from None

    def config_set(self, key: str, value: Any) -> None:
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.run("config", "set", key, value)

    def configure(self, settings: dict[str, Any]) -> None:
        for k, v in settings.items():
            self.config_set(k, v)

    def config_get(self, key: str) -> str:
        return self.run("config", "get", key).stdout.strip()

    # ----- recording
    def sessions(self) -> list[dict]:
        out = self.json("sessions", "list", "--json")
        assert isinstance(out, list), out
        return out

    def session(self, sid: Any) -> dict:
        out = self.json("sessions", "show", sid, "--json")
        assert isinstance(out, dict) and "session" in out and "turns" in out, out
        return out

    def sessions_with(self, marker: str) -> list[dict]:
        """Every recorded session (``{"session", "turns"}``) with a turn whose
        upstream request contains ``marker``, newest first."""
        found = []
        for s in self.sessions():
            detail = self.session(s["id"])
            if any(marker in json.dumps(t.get("request"), ensure_ascii=False) for t in detail["turns"]):
                found.append(detail)
        return found

    def turns_with(self, marker: str) -> list[dict]:
        turns = []
        for detail in self.sessions_with(marker):
            for t in detail["turns"]:
                if marker in json.dumps(t.get("request"), ensure_ascii=False):
                    t = dict(t)
                    t["_session"] = detail["session"]
                    turns.append(t)
        return sorted(turns, key=lambda t: (t.get("started_at_ms") or 0, t.get("turn_index") or 0))

    def wait_turns(self, marker: str, n: int = 1, timeout: float = RECORD_DEADLINE,
                   pred: Callable[[list[dict]], bool] | None = None) -> list[dict]:
        def check() -> list[dict] | None:
            ts = self.turns_with(marker)
            if len(ts) >= n and (pred is None or pred(ts)):
                return ts
            return None
        return wait_until(check, timeout, 0.2, f"{n} recorded turn(s) containing {marker!r}")

    def wait_turn(self, marker: str, timeout: float = RECORD_DEADLINE,
                  pred: Callable[[dict], bool] | None = None) -> dict:
        ts = self.wait_turns(marker, 1, timeout, (lambda ts: pred(ts[-1])) if pred else None)
        assert len(ts) == 1, f"expected one turn with {marker!r}, got {len(ts)}"
        return ts[0]


# --------------------------------------------------------------------------- server

class ProxyServer:
    """One `metaclaw serve` process on a free loopback port."""

    def __init__(self, mc: MetaClaw, name: str = "proxy", env_extra: dict[str, str] | None = None):
        self.mc = mc
        self.name = name
        self.env_extra = env_extra or {}
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.stderr_path = mc.home / f"serve-{name}.stderr.log"
        self.stdout_path = mc.home / f"serve-{name}.stdout.log"
        self._logs: list[Any] = []
        LIVE_SERVERS.append(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self, port: int | None = None) -> "ProxyServer":
        self.port = port or free_port()
        self.mc.configure({"proxy.host": "127.0.0.1", "proxy.port": self.port})
        env = clean_env(self.mc.home, {**self.mc.env_extra, **self.env_extra})
        err = open(self.stderr_path, "ab")
        out = open(self.stdout_path, "ab")
        self._logs += [err, out]
        self.proc = subprocess.Popen([str(BIN), "serve", "--port", str(self.port)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"metaclaw serve exited with {self.proc.returncode} before it was healthy\n"
                                     f"stderr:\n{self.log_tail()}")
            try:
                status, _, body = http_request(self.port, "GET", "/healthz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"metaclaw serve not healthy within {START_DEADLINE}s\n"
                                     f"stderr:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in self._logs:
            f.close()
        self._logs = []

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for f in self._logs:
            f.close()
        self._logs = []

    def log(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 120) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    # ----- clients
    def openai(self, capture: "Capture | None" = None, **kw: Any):
        """An `openai.OpenAI` client pointed at this proxy (max_retries=0)."""
        import openai
        kw.setdefault("api_key", CLIENT_KEY)
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 60)
        if capture is not None:
            kw["http_client"] = openai.DefaultHttpxClient(event_hooks={"request": [capture.hook]})
        return openai.OpenAI(base_url=self.openai_base_url, **kw)

    def anthropic(self, capture: "Capture | None" = None, **kw: Any):
        """An `anthropic.Anthropic` client pointed at this proxy (max_retries=0)."""
        import anthropic
        kw.setdefault("api_key", CLIENT_KEY)
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 60)
        if capture is not None:
            kw["http_client"] = anthropic.DefaultHttpxClient(event_hooks={"request": [capture.hook]})
        return anthropic.Anthropic(base_url=self.url, **kw)

    def client(self, dialect: str, capture: "Capture | None" = None, **kw: Any):
        return self.openai(capture, **kw) if dialect == "openai" else self.anthropic(capture, **kw)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None,
             timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
        data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
        h = {"content-type": "application/json"}
        h.update(headers or {})
        return http_request(self.port, "POST", path, data, h, timeout)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return http_request(self.port, "GET", path, None, headers or {})


class Capture:
    """Records the exact JSON bodies an SDK client sends (an httpx event hook)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []

    def hook(self, request: Any) -> None:
        try:
            self.bodies.append(json.loads(request.content) if request.content else None)
        except ValueError:
            self.bodies.append(None)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})

    @property
    def last(self) -> Any:
        assert self.bodies, "the client sent nothing"
        return self.bodies[-1]


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def start_proxy(home: Path, settings: dict[str, Any], name: str = "proxy",
                env_extra: dict[str, str] | None = None) -> ProxyServer:
    mc = MetaClaw(home)
    mc.configure(settings)
    return ProxyServer(mc, name, env_extra).start()


def upstream_settings(fake: Any, kind: str, **more: Any) -> dict[str, Any]:
    base = fake.openai_base_url if kind == "openai" else fake.anthropic_base_url
    s = {"upstream.api": kind, "upstream.base_url": base, "upstream.api_key": fake.api_key}
    s.update(more)
    return s


# --------------------------------------------------------------------------- skills

def write_skill(root: Path, name: str, description: str, body: str, category: str = "general",
                folder: str | None = None, raw: str | None = None) -> Path:
    d = Path(root) / (folder or name)
    d.mkdir(parents=True, exist_ok=True)
    text = raw if raw is not None else (
        f"---\nname: {name}\ndescription: {description}\ncategory: {category}\n---\n\n{textwrap.dedent(body).strip()}\n")
    (d / "SKILL.md").write_text(text, "utf-8")
    return d


# A small bank with disjoint vocabularies, so BM25 gives each test instruction
# exactly one relevant skill and zero overlap with the others.
TEST_SKILLS = {
    "weather-briefing": ("Use when asked about weather, forecast, temperature or rain in a city.",
                         "Give the forecast with temperature in Celsius and mention rain chances.", "tools"),
    "sql-tuning": ("Optimise slow SQL queries: indexes, joins, explain plans, database migrations.",
                   "Read the EXPLAIN plan before adding an index.", "coding"),
    "git-rebase-helper": ("Rebase git branches and resolve merge conflicts safely.",
                          "Create a backup branch before rebasing.", "coding"),
    "email-drafting": ("Draft professional email replies to a manager, colleague or customer.",
                       "Open with the answer, keep paragraphs short, close with a clear ask.", "communication"),
    "kubernetes-debugging": ("Debug crashing Kubernetes pods, deployments and kubectl logs.",
                             "Check kubectl describe events before restarting pods.", "ops"),
}
# Instructions that share words with exactly one skill of TEST_SKILLS
# (checked by test_fake_upstream.py::test_test_vocabulary_is_disjoint).
QUERIES = {
    "weather-briefing": "Weather forecast for Lyon tomorrow, please?",
    "sql-tuning": "Optimise this slow SQL query",
    "email-drafting": "Please draft email reply for my manager",
    "git-rebase-helper": "Rebase feature branch onto main",
    "kubernetes-debugging": "Kubernetes pods crashing again",
}


def others(*names: str) -> list[str]:
    """The test skills other than ``names`` (those must not be injected)."""
    return [n for n in TEST_SKILLS if n not in names]


TOOLS_OPENAI = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}}]
TOOLS_ANTHROPIC = [{"name": "get_weather", "description": "Get the current weather for a city",
                    "input_schema": {"type": "object",
                                     "properties": {"city": {"type": "string", "description": "City name"}},
                                     "required": ["city"]}}]

# A 1x1 transparent PNG.
PNG_B64 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")

# Distinctive words of each skill's body, to find it in an injected block.
TEST_SKILL_BODY_MARK = {name: body.split(".")[0] for name, (_, body, _) in TEST_SKILLS.items()}


def make_test_skills(root: Path) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name, (desc, body, cat) in TEST_SKILLS.items():
        write_skill(root, name, desc, body, cat)
    return root


def copy_reference_skills(dest: Path) -> Path:
    assert REFERENCE_SKILLS.is_dir(), f"reference skill bank missing at {REFERENCE_SKILLS}"
    shutil.copytree(REFERENCE_SKILLS, dest)
    return Path(dest)


def reference_skill_names() -> list[str]:
    return sorted(p.parent.name for p in REFERENCE_SKILLS.glob("*/SKILL.md"))


# --------------------------------------------------------------------------- injection

SKILLS_OPEN = "<metaclaw_skills>"
SKILLS_CLOSE = "</metaclaw_skills>"


def text_of(content: Any) -> str:
    """Text of an OpenAI/Anthropic content value: a string or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def upstream_system_text(rec_body: dict, kind: str) -> str:
    """The system prompt as the upstream received it."""
    if kind == "anthropic":
        return text_of(rec_body.get("system"))
    for m in rec_body.get("messages", []):
        if m.get("role") in ("system", "developer"):
            return text_of(m.get("content"))
    return ""


def skills_block(system_text: str) -> str | None:
    start = system_text.find(SKILLS_OPEN)
    if start < 0:
        return None
    end = system_text.find(SKILLS_CLOSE, start)
    assert end > start, "a <metaclaw_skills> block was opened but never closed"
    return system_text[start:end + len(SKILLS_CLOSE)]


def injected_names(system_text: str) -> set[str]:
    block = skills_block(system_text)
    if block is None:
        return set()
    return set(re.findall(r"^##\s+([A-Za-z0-9][A-Za-z0-9._-]*)\s*$", block, flags=re.M))


def assert_injected(system_text: str, expected: Iterable[str], absent: Iterable[str] = ()) -> set[str]:
    names = injected_names(system_text)
    block = skills_block(system_text) or ""
    for n in expected:
        assert n in names, f"skill {n!r} was not injected; injected: {sorted(names)}\nsystem tail:\n" \
                           f"{system_text[-1500:]}"
        if n in TEST_SKILLS:
            assert TEST_SKILLS[n][0] in block, f"description of {n!r} missing from the injected block"
            assert TEST_SKILL_BODY_MARK[n] in block, f"body of {n!r} missing from the injected block"
    for n in absent:
        assert n not in names, f"irrelevant skill {n!r} was injected; injected: {sorted(names)}"
    return names


def assert_not_injected(system_text: str) -> None:
    assert SKILLS_OPEN not in system_text, f"skills were injected but should not be:\n{system_text[-1500:]}"


# --------------------------------------------------------------------------- JSON helpers

def error_body_openai(data: bytes) -> dict:
    obj = json.loads(data)
    assert isinstance(obj, dict) and isinstance(obj.get("error"), dict), f"not an OpenAI error body: {data[:500]!r}"
    assert isinstance(obj["error"].get("message"), str) and obj["error"]["message"], obj
    return obj["error"]


def error_body_anthropic(data: bytes) -> dict:
    obj = json.loads(data)
    assert isinstance(obj, dict) and obj.get("type") == "error", f"not an Anthropic error body: {data[:500]!r}"
    err = obj.get("error")
    assert isinstance(err, dict) and isinstance(err.get("type"), str) and err["type"], obj
    assert isinstance(err.get("message"), str) and err["message"], obj
    return err


def error_body(dialect: str, data: bytes) -> dict:
    return error_body_openai(data) if dialect == "openai" else error_body_anthropic(data)


def walk_values(obj: Any) -> Iterable[Any]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk_values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk_values(v)
    else:
        yield obj


def walk_items(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            yield key, v
            yield from walk_items(v, key)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk_items(v, f"{prefix}[{i}]")


def config_lookup(cfg: Any, key: str) -> Any:
    """Find ``key`` (dotted) in `config show --json` output: a flat or nested
    object, or a list of {"key", "value"} entries."""
    if isinstance(cfg, list):
        for e in cfg:
            if isinstance(e, dict) and e.get("key") == key:
                return e.get("value")
        raise KeyError(key)
    if isinstance(cfg, dict) and key in cfg:
        return cfg[key]
    cur = cfg
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(key)
        cur = cur[part]
    if isinstance(cur, dict) and "value" in cur:
        return cur["value"]
    return cur


class Collector(threading.Thread):
    """Consume an iterator in a background thread (used to prove streaming)."""

    def __init__(self, it: Iterable[Any]):
        super().__init__(daemon=True)
        self.it = it
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self.first = threading.Event()

    def run(self) -> None:
        try:
            for x in self.it:
                self.items.append(x)
                self.first.set()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.error = e
        finally:
            self.first.set()


# --------------------------------------------------------------------------- turn checks

def response_text(resp: Any, api: str) -> str:
    """Assistant text of a recorded/returned response object in ``api`` format."""
    if api == "openai":
        return text_of(resp["choices"][0]["message"].get("content"))
    return "".join(b.get("text", "") for b in resp.get("content", []) if b.get("type") == "text")


def response_tool_call(resp: Any, api: str) -> tuple[str, Any]:
    """(name, parsed arguments) of the first tool call in a response object."""
    if api == "openai":
        call = resp["choices"][0]["message"]["tool_calls"][0]
        return call["function"]["name"], json.loads(call["function"]["arguments"])
    block = next(b for b in resp["content"] if b.get("type") == "tool_use")
    return block["name"], block["input"]


def check_turn(turn: dict, *, client: str, upstream: str, model: str, stream: bool, rec: Any,
               injected: Iterable[str] = (), text: str | None = None, tool: bool = False,
               turn_type: str = "main") -> None:
    """Assert every documented field of a completed recorded turn."""
    import fake_upstream as fu
    assert turn["status"] == "complete", turn
    assert turn["http_status"] == 200
    assert turn["client_dialect"] == client
    assert turn["upstream_api"] == upstream
    assert turn["model"] == model
    assert turn["stream"] is stream
    assert turn["turn_type"] == turn_type
    assert turn["skill_generation"] == 0
    assert turn["prompt_tokens"] == fu.PROMPT_TOKENS
    assert turn["completion_tokens"] == fu.COMPLETION_TOKENS
    assert sorted(turn["injected_skills"]) == sorted(injected)
    assert turn.get("error") in (None, ""), turn.get("error")
    assert isinstance(turn["request_id"], str) and turn["request_id"]
    assert isinstance(turn["turn_index"], int)
    for k in ("started_at_ms", "latency_ms"):
        assert isinstance(turn[k], (int, float)) and turn[k] >= 0, (k, turn[k])
    if stream:
        assert isinstance(turn["ttfb_ms"], (int, float)) and 0 <= turn["ttfb_ms"] <= turn["latency_ms"]
    # The request as it was sent upstream.
    assert turn["request"] == rec.body, "recorded request differs from what the upstream received"
    # The response, streams assembled into the non-stream equivalent.
    resp = turn["response"]
    assert isinstance(resp, dict), resp
    if tool:
        assert response_tool_call(resp, upstream) == (fu.TOOL_NAME, fu.TOOL_ARGS)
    else:
        assert response_text(resp, upstream) == (text if text is not None else fu.SCRIPTED_TEXT)
    if upstream == "openai":
        assert resp["choices"][0]["finish_reason"] == ("tool_calls" if tool else "stop")
        assert resp["usage"]["prompt_tokens"] == fu.PROMPT_TOKENS
        assert resp["usage"]["completion_tokens"] == fu.COMPLETION_TOKENS
    else:
        assert resp["stop_reason"] == ("tool_use" if tool else "end_turn")
        assert resp["usage"]["input_tokens"] == fu.PROMPT_TOKENS
        assert resp["usage"]["output_tokens"] == fu.COMPLETION_TOKENS
    if not stream:
        assert resp == rec.response, "recorded non-stream response differs from the upstream's"


SESSION_FIELDS = ("session_id", "turn_type", "session_done")


def assert_passthrough_openai(client_body: dict, up_body: dict, model_override: str | None = None) -> None:
    """Same dialect (OpenAI): the upstream got the client's body unchanged but for
    the injected system text and the stripped session fields."""
    cb = {k: v for k, v in client_body.items() if k not in SESSION_FIELDS}
    for f in SESSION_FIELDS:
        assert f not in up_body, f"session field {f!r} leaked upstream"
    assert set(up_body) == set(cb), f"keys differ: sent {sorted(cb)}, upstream got {sorted(up_body)}"
    for k in cb:
        if k == "messages":
            continue
        if k == "model" and model_override:
            assert up_body["model"] == model_override
            continue
        assert up_body[k] == cb[k], f"field {k!r} changed: {cb[k]!r} -> {up_body[k]!r}"
    cm, um = cb["messages"], up_body["messages"]
    sys_idx = next((i for i, m in enumerate(cm) if m.get("role") == "system"), None)
    if sys_idx is None:
        assert len(um) == len(cm) + 1 and um[0]["role"] == "system", "no system message was inserted at 0"
        assert skills_block(text_of(um[0]["content"])) is not None
        assert um[1:] == cm
        return
    assert len(um) == len(cm)
    for i, (a, b) in enumerate(zip(cm, um)):
        if i == sys_idx:
            assert b["role"] == "system"
            assert {k: v for k, v in a.items() if k != "content"} == {k: v for k, v in b.items() if k != "content"}
            orig, got = text_of(a["content"]), text_of(b["content"])
            if skills_block(got) is not None:
                assert got.startswith(orig), "the original system text is not kept at the start"
                assert got.rstrip().endswith(SKILLS_CLOSE), "the skills block is not appended at the end"
            else:
                assert b == a
        else:
            assert b == a, f"message {i} changed: {a!r} -> {b!r}"


def assert_passthrough_anthropic(client_body: dict, up_body: dict, model_override: str | None = None) -> None:
    cb = {k: v for k, v in client_body.items() if k not in SESSION_FIELDS}
    for f in SESSION_FIELDS:
        assert f not in up_body, f"session field {f!r} leaked upstream"
    assert set(up_body) - {"system"} == set(cb) - {"system"}, \
        f"keys differ: sent {sorted(cb)}, upstream got {sorted(up_body)}"
    for k in cb:
        if k == "system":
            continue
        if k == "model" and model_override:
            assert up_body["model"] == model_override
            continue
        assert up_body[k] == cb[k], f"field {k!r} changed: {cb[k]!r} -> {up_body[k]!r}"
    orig, got = text_of(cb.get("system")), text_of(up_body.get("system"))
    if skills_block(got) is not None:
        assert got.startswith(orig)
        assert got.rstrip().endswith(SKILLS_CLOSE)
    else:
        assert up_body.get("system") == cb.get("system")


# --------------------------------------------------------------------------- OpenClaw-shaped requests

OPENCLAW_INTERNAL = ("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\n"
                     "Active background processes:\n"
                     "- pid 4242: SQL database migration, optimise slow query indexes joins (running 12m)\n"
                     "Sub-agents: kubernetes pods crashing debugger (idle)\n"
                     "<<<END_OPENCLAW_INTERNAL_CONTEXT>>>")


def openclaw_runtime(sid: str, model: str) -> str:
    return (f"Runtime: agent=main | session=agent:main:explicit:{sid} | sessionId={sid} | host=devbox | "
            f"repo=/home/dev/project | os=Linux 6.8.0 (x64) | node=v24.16.0 | model=fake/{model} | "
            f"default_model=fake/{model} | shell=bash | channel=cli | capabilities=none | thinking=off")


def openclaw_system(model: str, size: int = 48_000) -> str:
    """A ~48 KB OpenClaw system prompt with its attempt markers."""
    head = ("<!-- openclaw:attempt:STABLE -->\n"
            "You are a personal assistant running inside OpenClaw.\n\n## Tooling\n"
            "Tool availability (filtered by policy): read, write, edit, apply_patch, exec, process, web_search, "
            "web_fetch, browser, message, sessions_spawn, get_weather.\n\n## Workspace\n")
    dynamic = ("<!-- openclaw:attempt:DYNAMIC -->\n## Current Date & Time\nWed 2026-11-25 03:11 UTC\n"
               f"Time zone: UTC\n## Model\nfake/{model}\n")
    parts = [head]
    i = 0
    while sum(map(len, parts)) < size - len(dynamic) - 200:
        i += 1
        parts.append(f"### Workspace file notes/file-{i:03d}.md\n"
                     f"- Line {i}: the quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet, "
                     f"consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore.\n"
                     f"- Keep answers short. Prefer tools over guessing. Never print credentials.\n\n")
    parts.append("<!-- /openclaw:attempt:STABLE -->\n")
    parts.append(dynamic)
    return "".join(parts)


def openclaw_tools() -> list[dict]:
    """12 OpenAI function tools, about 10 KB of JSON."""
    names = ["read", "write", "edit", "apply_patch", "exec", "process", "web_search", "web_fetch", "browser",
             "message", "sessions_spawn", "get_weather"]
    tools = []
    for n in names:
        props = {"path": {"type": "string", "description": f"Path for {n}, relative to the workspace root."},
                 "timeout": {"type": "number", "description": "Seconds before giving up (default 30)."},
                 "mode": {"type": "string", "enum": ["auto", "fast", "careful"], "description": "Execution mode."}}
        if n == "get_weather":
            props = {"city": {"type": "string", "description": "City name"}}
        tools.append({"type": "function", "function": {
            "name": n,
            "description": (f"{n}: OpenClaw built-in tool. " + "Use it when the task needs it; read its output "
                            "carefully, report failures verbatim and do not retry blindly. " * 5)[:470],
            "parameters": {"type": "object", "properties": props,
                           "required": ["city"] if n == "get_weather" else ["path"],
                           "additionalProperties": False}}})
    return tools


def openclaw_user(text: str, stamp: str = "Wed 2026-11-25 03:11 UTC") -> str:
    return f"[{stamp}] {text}"


def openclaw_internal_message() -> dict:
    return {"role": "user", "content": [{"type": "text", "text": OPENCLAW_INTERNAL}]}
