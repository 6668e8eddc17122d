"""The real `openai` SDK as the client, against an OpenAI-kind upstream
(pass-through) and an Anthropic-kind upstream (translation): non-stream,
stream with include_usage, tool calls, tool loops, images, real streaming,
/v1/models and /healthz."""

from __future__ import annotations

import json

import pytest

import fake_upstream as fu
from harness import (PNG_B64, QUERIES, SKILLS_CLOSE, TOOLS_OPENAI, Capture, Collector,
                     assert_injected, assert_passthrough_openai, check_turn, others, skills_block, text_of, uid,
                     upstream_system_text, wait_until)

UPSTREAMS = ["openai", "anthropic"]
MODES = ["text", "stream", "tools", "tools-stream"]


def _system(m: str) -> str:
    return f"You are a careful assistant. (conversation {m})"


def _collect_stream(chunks) -> dict:
    """Fold OpenAI chunks into text, tool calls, finish reason, usage chunks."""
    out = {"text": "", "tools": {}, "finish": None, "usage_chunks": [], "chunks": 0, "roles": []}
    for c in chunks:
        out["chunks"] += 1
        if c.usage is not None:
            out["usage_chunks"].append(c)
        for ch in c.choices:
            d = ch.delta
            if d.role:
                out["roles"].append(d.role)
            out["text"] += d.content or ""
            for tc in d.tool_calls or []:
                slot = out["tools"].setdefault(tc.index, {"id": None, "name": "", "args": ""})
                slot["id"] = slot["id"] or tc.id
                if tc.function:
                    slot["name"] += tc.function.name or ""
                    slot["args"] += tc.function.arguments or ""
            out["finish"] = ch.finish_reason or out["finish"]
    return out


def _assert_translated_request(cb: dict, up: dict) -> None:
    """OpenAI client body -> what the Anthropic upstream must have received."""
    assert up["model"] == cb["model"]
    assert up["max_tokens"] == (cb.get("max_tokens") or cb.get("max_completion_tokens"))
    assert bool(up.get("stream")) == bool(cb.get("stream"))
    for m in up["messages"]:
        assert m["role"] in ("user", "assistant"), "a system/tool role leaked into Anthropic messages"
    sys_msgs = [m for m in cb["messages"] if m["role"] == "system"]
    if sys_msgs:
        assert text_of(up.get("system")).startswith(text_of(sys_msgs[0]["content"]))
    if "tools" in cb:
        want = [{"name": t["function"]["name"], "description": t["function"]["description"],
                 "input_schema": t["function"]["parameters"]} for t in cb["tools"]]
        got = [{k: t.get(k) for k in ("name", "description", "input_schema")} for t in up["tools"]]
        assert got == want
        if cb.get("tool_choice") == "auto":
            assert up.get("tool_choice") in (None, {"type": "auto"})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_chat(proxy_for, fake, upstream, mode):
    srv = proxy_for[upstream]
    cap = Capture()
    client = srv.openai(cap)
    m = uid()
    tools = mode.startswith("tools")
    stream = mode.endswith("stream")
    model = "tool-fake-gpt" if tools else "fake-gpt-4o"
    kw: dict = dict(model=model, max_tokens=256, messages=[
        {"role": "system", "content": _system(m)},
        {"role": "user", "content": f"{QUERIES['weather-briefing']} [{m}]"}])
    if tools:
        kw.update(tools=TOOLS_OPENAI, tool_choice="auto")
    if stream:
        kw.update(stream=True, stream_options={"include_usage": True})

    result = client.chat.completions.create(**kw)

    # ---- what the client received
    if stream:
        got = _collect_stream(result)
        assert got["roles"][:1] == ["assistant"]
        if tools:
            call = got["tools"][0]
            assert call["name"] == fu.TOOL_NAME and json.loads(call["args"]) == fu.TOOL_ARGS and call["id"]
            assert got["finish"] == "tool_calls"
        else:
            assert got["text"] == fu.SCRIPTED_TEXT
            assert got["finish"] == "stop"
        # include_usage: exactly one usage chunk, the last, with choices == []
        assert len(got["usage_chunks"]) == 1, "expected one usage chunk with include_usage"
        usage_chunk = got["usage_chunks"][0]
        assert usage_chunk.choices == []
        assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens,
                usage_chunk.usage.total_tokens) == (fu.PROMPT_TOKENS, fu.COMPLETION_TOKENS,
                                                    fu.PROMPT_TOKENS + fu.COMPLETION_TOKENS)
    else:
        msg = result.choices[0].message
        assert msg.role == "assistant"
        if tools:
            call = msg.tool_calls[0]
            assert call.type == "function" and call.id
            assert call.function.name == fu.TOOL_NAME and json.loads(call.function.arguments) == fu.TOOL_ARGS
            assert result.choices[0].finish_reason == "tool_calls"
            assert not msg.content
        else:
            assert msg.content == fu.SCRIPTED_TEXT
            assert result.choices[0].finish_reason == "stop"
        assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == \
               (fu.PROMPT_TOKENS, fu.COMPLETION_TOKENS, fu.PROMPT_TOKENS + fu.COMPLETION_TOKENS)
        if upstream == "openai":
            assert result.id == f"chatcmpl-fake-{fake.only(m).seq}"
            assert result.usage.model_dump(exclude_none=True) == fake.only(m).response["usage"]

    # ---- what the upstream received
    rec = fake.only(m)
    assert rec.path == ("/v1/chat/completions" if upstream == "openai" else "/v1/messages")
    assert fu.credentials(rec) == [fake.api_key], "the upstream must get upstream.api_key, never the client's"
    system = upstream_system_text(rec.body, upstream)
    assert system.startswith(_system(m))
    assert_injected(system, ["weather-briefing"], absent=others("weather-briefing"))
    if upstream == "openai":
        assert_passthrough_openai(cap.last, rec.body)
    else:
        assert "anthropic-version" in rec.headers
        _assert_translated_request(cap.last, rec.body)
        assert text_of(rec.body["messages"][-1]["content"]) == kw["messages"][1]["content"]

    # ---- what was recorded
    turn = srv.mc.wait_turn(m)
    check_turn(turn, client="openai", upstream=upstream, model=model, stream=stream, rec=rec,
               injected=["weather-briefing"], tool=tools)


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_stream_without_include_usage(proxy_for, fake, upstream):
    m = uid()
    chunks = list(proxy_for[upstream].openai().chat.completions.create(
        model="fake-gpt-4o", stream=True, max_tokens=64,
        messages=[{"role": "user", "content": f"{QUERIES['sql-tuning']} {m}"}]))
    got = _collect_stream(chunks)
    assert got["text"] == fu.SCRIPTED_TEXT and got["finish"] == "stop"
    assert all(c.choices for c in chunks), "a usage-only chunk was sent although include_usage was not asked"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_tool_loop(proxy_for, fake, upstream):
    """Tool call, then the tool result: the second request translates the tool
    messages faithfully, and injection still follows the user's instruction,
    not the tool result's text."""
    srv = proxy_for[upstream]
    client = srv.openai()
    m = uid()
    messages = [{"role": "system", "content": _system(m)},
                {"role": "user", "content": f"{QUERIES['weather-briefing']} [{m}]"}]
    first = client.chat.completions.create(model="tool-fake-gpt", max_tokens=128, tools=TOOLS_OPENAI,
                                           messages=messages)
    call = first.choices[0].message.tool_calls[0]
    messages += [{"role": "assistant", "content": None,
                  "tool_calls": [{"id": call.id, "type": "function",
                                  "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
                 {"role": "tool", "tool_call_id": call.id,
                  "content": "Rebase feature branch onto main: merge conflicts found (git)."}]
    second = client.chat.completions.create(model="tool-fake-gpt", max_tokens=128, tools=TOOLS_OPENAI,
                                            messages=messages)
    assert second.choices[0].message.content == fu.TOOL_FOLLOWUP_TEXT
    assert second.choices[0].finish_reason == "stop"

    recs = fake.find(m)
    assert len(recs) == 2
    up = recs[1].body
    system = upstream_system_text(up, upstream)
    assert_injected(system, ["weather-briefing"], absent=["git-rebase-helper"])
    if upstream == "openai":
        assert up["messages"][2]["tool_calls"][0]["id"] == call.id
        assert up["messages"][3] == messages[3]
    else:
        assistant, result = up["messages"][-2], up["messages"][-1]
        use = next(b for b in assistant["content"] if b["type"] == "tool_use")
        assert (use["name"], use["input"]) == (fu.TOOL_NAME, fu.TOOL_ARGS)
        res = next(b for b in result["content"] if b["type"] == "tool_result")
        assert res["tool_use_id"] == use["id"]
        assert "merge conflicts found" in (res["content"] if isinstance(res["content"], str)
                                           else text_of(res["content"]))
    turns = srv.mc.wait_turns(m, 2)
    assert len({t["_session"]["id"] for t in turns}) == 1, "a tool loop must stay in one session"
    assert [t["injected_skills"] for t in turns] == [["weather-briefing"], ["weather-briefing"]]


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_no_system_message_gets_one(proxy_for, fake, upstream):
    m = uid()
    r = proxy_for[upstream].openai().chat.completions.create(
        model="fake-gpt-4o", max_tokens=64, messages=[{"role": "user", "content": f"{QUERIES['sql-tuning']} {m}"}])
    assert r.choices[0].message.content == fu.SCRIPTED_TEXT
    rec = fake.only(m)
    if upstream == "openai":
        assert rec.body["messages"][0]["role"] == "system"
        assert rec.body["messages"][1] == {"role": "user", "content": f"{QUERIES['sql-tuning']} {m}"}
    system = upstream_system_text(rec.body, upstream)
    assert_injected(system, ["sql-tuning"], absent=others("sql-tuning"))
    assert system.strip().startswith("<metaclaw_skills>") and system.strip().endswith(SKILLS_CLOSE)


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_image_parts(proxy_for, fake, upstream):
    m = uid()
    content = [{"type": "text", "text": f"What is in this picture? {m}"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}]
    r = proxy_for[upstream].openai().chat.completions.create(
        model="fake-gpt-4o", max_tokens=64, messages=[{"role": "user", "content": content}])
    assert r.choices[0].message.content == fu.SCRIPTED_TEXT
    rec = fake.only(m)
    last = rec.body["messages"][-1]
    if upstream == "openai":
        assert last["content"] == content
    else:
        img = next(b for b in last["content"] if b["type"] == "image")
        assert img["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_B64}
        assert any(b["type"] == "text" and m in b["text"] for b in last["content"])


def test_passthrough_keeps_unknown_fields(openai_proxy, fake):
    """Same dialect: parameters the proxy does not know travel unchanged."""
    cap = Capture()
    m = uid()
    openai_proxy.openai(cap).chat.completions.create(
        model="fake-gpt-4o", messages=[{"role": "system", "content": "sys"},
                                       {"role": "user", "content": f"hello {m}"}],
        temperature=0.25, top_p=0.5, seed=7, user="u-1", stop=["\n\n"], n=1, logprobs=False,
        max_completion_tokens=99, parallel_tool_calls=False, tools=TOOLS_OPENAI,
        extra_body={"vendor_extension": {"nested": [1, 2, {"x": None}]}, "reasoning_effort": "low"})
    rec = fake.only(m)
    assert rec.body["vendor_extension"] == {"nested": [1, 2, {"x": None}]}
    assert_passthrough_openai(cap.last, rec.body)


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_first_chunk_arrives_before_upstream_finishes(proxy_for, fake, upstream):
    """Real streaming: the client holds the first text chunk while the fake is
    still holding back the rest (it finishes only after `release` is set)."""
    m = uid()
    stream = proxy_for[upstream].openai().chat.completions.create(
        model="slow-gpt", stream=True, max_tokens=64, messages=[{"role": "user", "content": f"hi {m}"}])
    col = Collector(stream)
    col.start()
    rec = fake.wait_marker(m)
    try:
        wait_until(lambda: any(c.choices and c.choices[0].delta.content for c in col.items),
                   fu.SLOW_GATE_SECS + 5, 0.01, "the first streamed text chunk")
        assert not rec.finished.is_set(), "the upstream had already finished: the proxy buffered the stream"
    finally:
        rec.release.set()
    col.join(30)
    assert col.error is None, col.error
    assert _collect_stream(col.items)["text"] == fu.SCRIPTED_TEXT


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_models_list(proxy_for, upstream):
    ids = [x.id for x in proxy_for[upstream].openai().models.list()]
    assert ids == (fu.OPENAI_MODELS if upstream == "openai" else fu.ANTHROPIC_MODELS)


def test_model_override(module_proxies, fake):
    srv = module_proxies.start("openai", {"upstream.model": "fake-override-model"}, name="override")
    client = srv.openai()
    m = uid()
    r = client.chat.completions.create(model="whatever-the-agent-says", max_tokens=16,
                                       messages=[{"role": "user", "content": f"hello {m}"}])
    assert r.choices[0].message.content == fu.SCRIPTED_TEXT
    assert fake.only(m).body["model"] == "fake-override-model"
    assert [x.id for x in client.models.list()] == ["fake-override-model"]


def test_healthz(openai_proxy):
    status, headers, body = openai_proxy.get("/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"


def test_client_key_is_not_required_without_proxy_key(openai_proxy, fake):
    """No proxy.api_key: any (or no) client key works, and never reaches the upstream."""
    m = uid()
    status, _, body = openai_proxy.post("/v1/chat/completions", {
        "model": "fake-gpt-4o", "messages": [{"role": "user", "content": f"no auth header {m}"}]})
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == fu.SCRIPTED_TEXT
    assert fu.credentials(fake.only(m)) == [fake.api_key]


def test_skills_block_format(openai_proxy, fake):
    m = uid()
    openai_proxy.openai().chat.completions.create(
        model="fake-gpt-4o", messages=[{"role": "system", "content": "S"},
                                       {"role": "user", "content": f"{QUERIES['email-drafting']} {m}"}])
    system = upstream_system_text(fake.only(m).body, "openai")
    block = skills_block(system)
    assert block is not None
    assert system.rstrip().endswith(block), "the skills block must be the end of the system prompt"
    lines = block.splitlines()
    assert "## email-drafting" in lines
    i = lines.index("## email-drafting")
    after = "\n".join(lines[i + 1:])
    assert after.find("Draft professional email replies") < after.find("Open with the answer")
