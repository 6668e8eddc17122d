"""Every error the contract names, in the endpoint's own dialect: bad client
input (400), proxy auth (401), body too large (413), no upstream (503),
upstream unreachable (502), upstream hang (504), upstream 401/404/429/500
passed through, and failures after a stream started (an error event the SDKs
raise)."""

from __future__ import annotations

import http.client
import json

import anthropic
import openai
import pytest

import fake_upstream as fu
from harness import (PROXY_KEY, QUERIES, closed_port, error_body, error_body_anthropic, error_body_openai, uid,
                     upstream_settings)

DIALECTS = ["openai", "anthropic"]
PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
TIMEOUT_SECS = 2


def body_for(dialect: str, text: str, model: str | None = None, stream: bool = False, **more) -> dict:
    b = {"model": model or ("fake-gpt-4o" if dialect == "openai" else "claude-fake-sonnet"),
         "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    if stream:
        b["stream"] = True
    b.update(more)
    return b


def sdk_call(srv, dialect: str, model: str, text: str, stream: bool = False, **client_kw):
    """Make one SDK call and consume it fully (streams included)."""
    if dialect == "openai":
        r = srv.openai(**client_kw).chat.completions.create(
            model=model, max_tokens=64, messages=[{"role": "user", "content": text}], stream=stream,
            **({"stream_options": {"include_usage": True}} if stream else {}))
        return list(r) if stream else r
    r = srv.anthropic(**client_kw).messages.create(model=model, max_tokens=64, stream=stream,
                                                   messages=[{"role": "user", "content": text}])
    return list(r) if stream else r


def sdk_message(e: Exception, dialect: str) -> str:
    body = getattr(e, "body", None)
    if dialect == "openai" and isinstance(body, dict):
        return str(body.get("message"))
    if dialect == "anthropic" and isinstance(body, dict):
        return str(body.get("error", {}).get("message"))
    return str(e)


def raw_stream(srv, dialect: str, body: dict, headers: dict | None = None) -> tuple[int, bytes]:
    """POST a streaming request and read it to the end with http.client: an
    IncompleteRead here means the proxy cut the connection instead of ending
    the stream properly."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    try:
        h = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
        h.update(headers or {})
        conn.request("POST", PATH[dialect], json.dumps(body).encode(), h)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def sse_data(raw: bytes) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    out = []
    for block in raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        ev, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                ev = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            out.append((ev, "\n".join(data)))
    return out


# --------------------------------------------------------------------------- servers

@pytest.fixture(scope="module")
def up(module_proxies):
    """Proxies to each upstream kind, with upstream.timeout_secs = 2."""
    return {k: module_proxies.start(k, {"upstream.timeout_secs": TIMEOUT_SECS}, name=f"err-{k}")
            for k in ("openai", "anthropic")}


@pytest.fixture(scope="module")
def keyed(module_proxies):
    return module_proxies.start("openai", {"proxy.api_key": PROXY_KEY}, name="keyed")


@pytest.fixture(scope="module")
def tiny(module_proxies):
    return module_proxies.start("openai", {"proxy.max_body_mb": "0.01"}, name="tiny")


@pytest.fixture(scope="module")
def unreachable(module_proxies, fake):
    port = closed_port()
    return {
        "openai": module_proxies.start(None, {**upstream_settings(fake, "openai"),
                                              "upstream.base_url": f"http://127.0.0.1:{port}/v1"},
                                       name="closed-openai"),
        "anthropic": module_proxies.start(None, {**upstream_settings(fake, "anthropic"),
                                                 "upstream.base_url": f"http://127.0.0.1:{port}"},
                                          name="closed-anthropic")}


@pytest.fixture(scope="module")
def no_upstream(module_proxies):
    return module_proxies.start(None, name="no-upstream")


# --------------------------------------------------------------------------- client input

@pytest.mark.parametrize("dialect", DIALECTS)
def test_malformed_json(up, fake, dialect):
    m = uid()
    status, _, data = up["openai"].post(PATH[dialect], f'{{"model": "x", "messages": [{{"{m}'.encode())
    assert status == 400
    error_body(dialect, data)
    assert not fake.find(m)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", ["missing", "not-a-list", "empty"])
def test_missing_messages(up, fake, dialect, case):
    m = uid()
    b: dict = {"model": f"fake-{m}", "max_tokens": 64}
    if case == "not-a-list":
        b["messages"] = "hello"
    elif case == "empty":
        b["messages"] = []
    status, _, data = up["openai"].post(PATH[dialect], b)
    assert status == 400
    assert "messages" in error_body(dialect, data)["message"]
    assert not fake.find(m)


def test_anthropic_without_max_tokens(up, fake):
    m = uid()
    b = body_for("anthropic", m)
    del b["max_tokens"]
    for srv in up.values():
        status, _, data = srv.post("/v1/messages", b)
        assert status == 400
        assert "max_tokens" in error_body_anthropic(data)["message"]
    assert not fake.find(m)
    with pytest.raises(anthropic.BadRequestError):
        up["anthropic"].anthropic().messages.create(model="claude-fake", max_tokens=None,  # type: ignore[arg-type]
                                                    messages=[{"role": "user", "content": m}])


@pytest.mark.parametrize("dialect", DIALECTS)
def test_sdk_bad_request_error(up, dialect):
    """The SDKs see a 400 as BadRequestError."""
    exc = openai.BadRequestError if dialect == "openai" else anthropic.BadRequestError
    srv = up["openai"]
    with pytest.raises(exc):
        if dialect == "openai":
            srv.openai().chat.completions.create(model="fake-gpt-4o", messages=[])
        else:
            srv.anthropic().messages.create(model="claude", max_tokens=5, messages=[])


# --------------------------------------------------------------------------- proxy auth

@pytest.mark.parametrize("dialect", DIALECTS)
def test_proxy_key_required(keyed, fake, dialect):
    m = uid()
    status, _, data = keyed.post(PATH[dialect], body_for(dialect, m), {"anthropic-version": "2023-06-01"})
    assert status == 401
    error_body(dialect, data)
    for bad in ({"authorization": "Bearer wrong-key"}, {"x-api-key": "wrong-key"}):
        status, _, data = keyed.post(PATH[dialect], body_for(dialect, m), {**bad, "anthropic-version": "2023-06-01"})
        assert status == 401
        error_body(dialect, data)
    assert not fake.find(m), "a request without the proxy key reached the upstream"
    exc = openai.AuthenticationError if dialect == "openai" else anthropic.AuthenticationError
    with pytest.raises(exc):
        sdk_call(keyed, dialect, "fake-gpt-4o", m, api_key="wrong-key")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_proxy_key_accepted(keyed, fake, dialect):
    m = uid()
    r = sdk_call(keyed, dialect, "fake-gpt-4o", f"sdk {m}", api_key=PROXY_KEY)
    text = r.choices[0].message.content if dialect == "openai" else r.content[0].text
    assert text == fu.SCRIPTED_TEXT
    for hdr in ({"authorization": f"Bearer {PROXY_KEY}"}, {"x-api-key": PROXY_KEY}):
        status, _, data = keyed.post(PATH[dialect], body_for(dialect, f"raw {m} {sorted(hdr)[0]}"),
                                     {**hdr, "anthropic-version": "2023-06-01"})
        assert status == 200, data
    recs = fake.find(m)
    assert len(recs) == 3
    for r in recs:
        assert fu.credentials(r) == [fake.api_key], "the upstream must get upstream.api_key only"
        assert PROXY_KEY not in json.dumps(r.headers)


def test_proxy_key_and_other_endpoints(keyed):
    status, _, body = keyed.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, data = keyed.get("/v1/models")
    assert status == 401
    error_body_openai(data)
    status, _, data = keyed.get("/v1/models", {"anthropic-version": "2023-06-01"})
    assert status == 401
    error_body_anthropic(data)
    status, _, _ = keyed.get("/v1/models", {"authorization": f"Bearer {PROXY_KEY}"})
    assert status == 200


# --------------------------------------------------------------------------- body size

@pytest.mark.parametrize("dialect", DIALECTS)
def test_body_too_large(tiny, fake, dialect):
    m = uid()
    big = body_for(dialect, f"{m} " + "x" * 64_000)
    status, _, data = tiny.post(PATH[dialect], big, {"anthropic-version": "2023-06-01"})
    assert status == 413
    error_body(dialect, data)
    assert not fake.find(m)
    # A body under the limit (0.01 MB) still goes through.
    small = body_for(dialect, f"small {m}")
    status, _, data = tiny.post(PATH[dialect], small, {"anthropic-version": "2023-06-01"})
    assert status == 200, data


# --------------------------------------------------------------------------- upstream trouble

@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_upstream_unreachable_502(unreachable, dialect, kind, stream):
    status, _, data = unreachable[kind].post(PATH[dialect], body_for(dialect, uid(), stream=stream),
                                             {"anthropic-version": "2023-06-01"})
    assert status == 502
    error_body(dialect, data)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_upstream_503(no_upstream, dialect):
    status, _, data = no_upstream.post(PATH[dialect], body_for(dialect, uid()), {"anthropic-version": "2023-06-01"})
    assert status == 503
    assert "upstream.base_url" in error_body(dialect, data)["message"]
    exc = openai.APIStatusError if dialect == "openai" else anthropic.APIStatusError
    with pytest.raises(exc) as ei:
        sdk_call(no_upstream, dialect, "fake-gpt-4o", "hello")
    assert ei.value.status_code == 503


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_upstream_hang_504(up, fake, dialect, kind, stream):
    m = uid()
    status, _, data = up[kind].post(PATH[dialect], body_for(dialect, m, "fault-hang", stream=stream),
                                    {"anthropic-version": "2023-06-01"})
    assert status == 504
    error_body(dialect, data)
    rec = fake.only(m)
    assert rec.client_gone.wait(10), "the proxy did not drop the hung upstream request"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_upstream_reset_before_headers_502(up, fake, dialect, kind, stream):
    m = uid()
    status, _, data = up[kind].post(PATH[dialect], body_for(dialect, m, "fault-reset", stream=stream),
                                    {"anthropic-version": "2023-06-01"})
    assert status == 502
    error_body(dialect, data)
    assert fake.find(m)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_upstream_malformed_body_502(up, fake, dialect, kind):
    m = uid()
    status, _, data = up[kind].post(PATH[dialect], body_for(dialect, m, "fault-malformed"),
                                    {"anthropic-version": "2023-06-01"})
    assert status == 502
    error_body(dialect, data)


STATUS_EXC = {
    "openai": {401: openai.AuthenticationError, 404: openai.NotFoundError, 429: openai.RateLimitError,
               500: openai.InternalServerError},
    "anthropic": {401: anthropic.AuthenticationError, 404: anthropic.NotFoundError, 429: anthropic.RateLimitError,
                  500: anthropic.InternalServerError},
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("code", [401, 404, 429, 500])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_upstream_status_passed_through(up, fake, dialect, kind, code, stream):
    m = uid()
    with pytest.raises(STATUS_EXC[dialect][code]) as ei:
        sdk_call(up[kind], dialect, f"fault-{code}", m, stream=stream)
    e = ei.value
    assert e.status_code == code
    assert fu.ERROR_MESSAGES[code] in sdk_message(e, dialect), sdk_message(e, dialect)
    if code == 429:
        assert e.response.headers.get("retry-after") == fu.RETRY_AFTER
    assert fake.only(m), "the upstream was never asked"
    # The body is in the client's dialect.
    status, _, data = up[kind].post(PATH[dialect], body_for(dialect, f"raw {m}", f"fault-{code}", stream=stream),
                                    {"anthropic-version": "2023-06-01"})
    assert status == code
    assert fu.ERROR_MESSAGES[code] in error_body(dialect, data)["message"]


def test_upstream_error_is_recorded(up, fake):
    m = uid()
    with pytest.raises(openai.InternalServerError):
        sdk_call(up["openai"], "openai", "fault-500", m)
    t = up["openai"].mc.wait_turn(m)
    assert t["status"] == "upstream_error"
    assert t["http_status"] == 500
    assert t["error"]


# --------------------------------------------------------------------------- failures mid-stream

def _assert_stream_error(dialect: str, e: BaseException) -> None:
    if dialect == "openai":
        assert isinstance(e, openai.APIError) and not isinstance(e, openai.APIConnectionError), \
            f"expected an error chunk, got {type(e).__name__}: {e}"
    else:
        assert isinstance(e, anthropic.APIStatusError), f"expected an `event: error`, got {type(e).__name__}: {e}"


@pytest.mark.parametrize("fault", ["fault-midstream-reset", "fault-stall", "fault-malformed"])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_failure_after_stream_started(up, fake, dialect, kind, fault):
    srv = up[kind]
    m = uid()
    with pytest.raises(Exception) as ei:
        sdk_call(srv, dialect, fault, m, stream=True)
    _assert_stream_error(dialect, ei.value)
    if fault == "fault-stall":
        assert fake.only(m).client_gone.wait(10), "the proxy did not drop the stalled upstream"

    # The raw stream: text first, then an error event in the client's dialect,
    # and a properly terminated HTTP body.
    m2 = uid()
    status, raw = raw_stream(srv, dialect, body_for(dialect, f"raw {m2}", fault, stream=True))
    assert status == 200
    events = sse_data(raw)
    if dialect == "openai":
        payloads = [json.loads(d) for _, d in events if d != "[DONE]"]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in payloads if c.get("choices"))
        errors = [c for c in payloads if "error" in c]
        assert errors, f"no error chunk in {raw[-600:]!r}"
        assert isinstance(errors[-1]["error"].get("message"), str) and errors[-1]["error"]["message"]
    else:
        text = "".join(json.loads(d).get("delta", {}).get("text", "") for ev, d in events
                       if ev == "content_block_delta")
        errors = [json.loads(d) for ev, d in events if ev == "error"]
        assert errors, f"no `event: error` in {raw[-600:]!r}"
        assert errors[-1]["type"] == "error" and errors[-1]["error"]["message"]
        assert "message_stop" not in [ev for ev, _ in events], "a failed stream must not claim a clean stop"
    assert text.startswith("".join(fu.TEXT_PIECES[:fu.MIDSTREAM_CHUNKS]))

    t = srv.mc.wait_turn(m)
    assert t["status"] == "upstream_error", t["status"]
    assert t["error"]


def test_still_serving_after_all_that(up, fake):
    for kind, srv in up.items():
        for dialect in DIALECTS:
            r = sdk_call(srv, dialect, "fake-gpt-4o", f"{QUERIES['sql-tuning']} {uid()}")
            text = r.choices[0].message.content if dialect == "openai" else r.content[0].text
            assert text == fu.SCRIPTED_TEXT
        assert srv.alive()


def test_env_upstream_fallback(proxies, fake):
    """With upstream.base_url unset, OPENAI_BASE_URL / OPENAI_API_KEY from the
    server's environment are used (the 503 case above is 'no config and no env')."""
    srv = proxies.start(None, name="env-upstream",
                        env_extra={"OPENAI_BASE_URL": fake.openai_base_url, "OPENAI_API_KEY": fake.api_key})
    m = uid()
    r = srv.openai().chat.completions.create(model="fake-gpt-4o", max_tokens=8,
                                             messages=[{"role": "user", "content": f"env {m}"}])
    assert r.choices[0].message.content == fu.SCRIPTED_TEXT
    assert fu.credentials(fake.only(m)) == [fake.api_key]
