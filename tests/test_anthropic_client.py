"""The real `anthropic` SDK as the client, against an Anthropic-kind upstream
(pass-through) and an OpenAI-kind upstream (translation): non-stream, stream
(raw event sequence and the SDK's stream helper), tool use, tool loops,
images, system blocks, real streaming and /v1/models."""

from __future__ import annotations

import json

import pytest

import fake_upstream as fu
from harness import (PNG_B64, QUERIES, SKILLS_CLOSE, TOOLS_ANTHROPIC, Capture, Collector, assert_injected,
                     assert_passthrough_anthropic, check_turn, others, text_of, uid, upstream_system_text,
                     wait_until)

UPSTREAMS = ["anthropic", "openai"]
MODES = ["text", "stream", "tools", "tools-stream"]
RAW_EVENTS = {"message_start", "content_block_start", "content_block_delta", "content_block_stop",
              "message_delta", "message_stop"}


def _system(m: str) -> str:
    return f"You are a careful assistant. (conversation {m})"


def assert_event_sequence(events) -> None:
    """The raw Anthropic stream grammar: message_start, then blocks (start,
    deltas, stop) with increasing indexes, then message_delta, message_stop."""
    raw = [e for e in events if e.type in RAW_EVENTS]
    types = [e.type for e in raw]
    assert types[0] == "message_start", types
    assert types[-2:] == ["message_delta", "message_stop"], types
    open_idx = None
    seen = []
    for e in raw[1:-2]:
        if e.type == "content_block_start":
            assert open_idx is None, "a block started before the previous one stopped"
            open_idx = e.index
            assert e.index == len(seen), "block indexes must count up from 0"
            seen.append(e.content_block.type)
        elif e.type == "content_block_delta":
            assert e.index == open_idx, "a delta for a block that is not open"
        elif e.type == "content_block_stop":
            assert e.index == open_idx
            open_idx = None
        else:
            raise AssertionError(f"unexpected {e.type} inside the message: {types}")
    assert open_idx is None and seen, types


def _assert_translated_request(cb: dict, up: dict) -> None:
    """Anthropic client body -> what the OpenAI upstream must have received."""
    assert up["model"] == cb["model"]
    assert (up.get("max_completion_tokens") or up.get("max_tokens")) == cb["max_tokens"]
    assert bool(up.get("stream")) == bool(cb.get("stream"))
    if cb.get("system"):
        assert up["messages"][0]["role"] == "system"
        assert text_of(up["messages"][0]["content"]).startswith(text_of(cb["system"]))
    if "tools" in cb:
        want = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                  "parameters": t["input_schema"]}} for t in cb["tools"]]
        got = [{"type": t["type"], "function": {k: t["function"].get(k) for k in ("name", "description",
                                                                                  "parameters")}}
               for t in up["tools"]]
        assert got == want


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_messages(proxy_for, fake, upstream, mode):
    srv = proxy_for[upstream]
    cap = Capture()
    client = srv.anthropic(cap)
    m = uid()
    tools = mode.startswith("tools")
    stream = mode.endswith("stream")
    model = "tool-claude" if tools else "claude-fake-sonnet"
    kw: dict = dict(model=model, max_tokens=256, system=_system(m),
                    messages=[{"role": "user", "content": f"{QUERIES['weather-briefing']} [{m}]"}])
    if tools:
        kw["tools"] = TOOLS_ANTHROPIC

    if stream:
        events = []
        with client.messages.stream(**kw) as s:
            for e in s:
                events.append(e)
            final = s.get_final_message()
        assert_event_sequence(events)
        start = next(e for e in events if e.type == "message_start")
        assert start.message.role == "assistant"
        if upstream == "anthropic":
            # (An OpenAI upstream reports usage only at the end; the final
            # message's usage below covers the translated case.)
            assert start.message.usage.input_tokens == fu.PROMPT_TOKENS
        delta = next(e for e in events if e.type == "message_delta")
        assert delta.usage.output_tokens == fu.COMPLETION_TOKENS
        if not tools:
            assert "".join(e.delta.text for e in events
                           if e.type == "content_block_delta" and e.delta.type == "text_delta") == fu.SCRIPTED_TEXT
    else:
        final = client.messages.create(**kw)
    # ---- what the client received
    assert final.role == "assistant" and final.type == "message"
    if tools:
        use = next(b for b in final.content if b.type == "tool_use")
        assert (use.name, use.input) == (fu.TOOL_NAME, fu.TOOL_ARGS) and use.id
        assert final.stop_reason == "tool_use"
    else:
        assert [b.type for b in final.content] == ["text"]
        assert final.content[0].text == fu.SCRIPTED_TEXT
        assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (fu.PROMPT_TOKENS, fu.COMPLETION_TOKENS)

    # ---- what the upstream received
    rec = fake.only(m)
    assert rec.path == ("/v1/messages" if upstream == "anthropic" else "/v1/chat/completions")
    assert fu.credentials(rec) == [fake.api_key], "the upstream must get upstream.api_key, never the client's"
    system = upstream_system_text(rec.body, upstream)
    assert system.startswith(_system(m))
    assert_injected(system, ["weather-briefing"], absent=others("weather-briefing"))
    if upstream == "anthropic":
        assert "anthropic-version" in rec.headers
        assert_passthrough_anthropic(cap.last, rec.body)
        if not stream:
            assert final.id == rec.response["id"]
    else:
        _assert_translated_request(cap.last, rec.body)
        assert text_of(rec.body["messages"][-1]["content"]) == kw["messages"][0]["content"]

    # ---- what was recorded
    turn = srv.mc.wait_turn(m)
    check_turn(turn, client="anthropic", upstream=upstream, model=model, stream=stream, rec=rec,
               injected=["weather-briefing"], tool=tools)


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_raw_stream_create(proxy_for, fake, upstream):
    """`messages.create(stream=True)`: the raw events, text deltas in order."""
    m = uid()
    events = list(proxy_for[upstream].anthropic().messages.create(
        model="claude-fake-sonnet", max_tokens=64, stream=True,
        messages=[{"role": "user", "content": f"{QUERIES['sql-tuning']} {m}"}]))
    assert_event_sequence(events)
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == fu.SCRIPTED_TEXT
    assert next(e for e in events if e.type == "message_delta").delta.stop_reason == "end_turn"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_tool_loop(proxy_for, fake, upstream):
    srv = proxy_for[upstream]
    client = srv.anthropic()
    m = uid()
    messages = [{"role": "user", "content": f"{QUERIES['weather-briefing']} [{m}]"}]
    first = client.messages.create(model="tool-claude", max_tokens=128, system=_system(m), tools=TOOLS_ANTHROPIC,
                                   messages=messages)
    use = next(b for b in first.content if b.type == "tool_use")
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                               "content": "Rebase feature branch onto main: merge conflicts (git)."}]}]
    second = client.messages.create(model="tool-claude", max_tokens=128, system=_system(m), tools=TOOLS_ANTHROPIC,
                                    messages=messages)
    assert second.content[0].text == fu.TOOL_FOLLOWUP_TEXT and second.stop_reason == "end_turn"

    recs = fake.find(m)
    assert len(recs) == 2
    up = recs[1].body
    assert_injected(upstream_system_text(up, upstream), ["weather-briefing"], absent=["git-rebase-helper"])
    if upstream == "anthropic":
        assert up["messages"] == messages
    else:
        assistant = next(x for x in up["messages"] if x["role"] == "assistant")
        call = assistant["tool_calls"][0]
        assert call["function"]["name"] == fu.TOOL_NAME and json.loads(call["function"]["arguments"]) == fu.TOOL_ARGS
        tool_msg = next(x for x in up["messages"] if x["role"] == "tool")
        assert tool_msg["tool_call_id"] == call["id"]
        assert "merge conflicts" in text_of(tool_msg["content"])
        assert up["messages"][-1] is tool_msg or up["messages"][-1]["role"] == "tool"
    turns = srv.mc.wait_turns(m, 2)
    assert len({t["_session"]["id"] for t in turns}) == 1, "a tool loop must stay in one session"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_image_blocks(proxy_for, fake, upstream):
    m = uid()
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
               {"type": "text", "text": f"Describe this picture {m}"}]
    r = proxy_for[upstream].anthropic().messages.create(model="claude-fake-sonnet", max_tokens=64,
                                                        messages=[{"role": "user", "content": content}])
    assert r.content[0].text == fu.SCRIPTED_TEXT
    last = fake.only(m).body["messages"][-1]
    if upstream == "anthropic":
        assert last["content"] == content
    else:
        img = next(p for p in last["content"] if p["type"] == "image_url")
        assert img["image_url"]["url"] == f"data:image/png;base64,{PNG_B64}"


def test_system_blocks_keep_their_fields(anthropic_proxy, fake):
    """`system` as blocks: the original blocks (cache_control included) survive
    and the skills are added after them."""
    m = uid()
    system = [{"type": "text", "text": f"Block one {m}", "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": "Block two"}]
    anthropic_proxy.anthropic().messages.create(model="claude-fake-sonnet", max_tokens=64, system=system,
                                                messages=[{"role": "user", "content": QUERIES["sql-tuning"] + m}])
    up = fake.only(m).body["system"]
    assert isinstance(up, list)
    assert up[0] == system[0]
    assert up[1]["text"].startswith("Block two")
    full = text_of(up)
    assert full.startswith(f"Block one {m}\nBlock two")
    assert full.rstrip().endswith(SKILLS_CLOSE)
    assert_injected(full, ["sql-tuning"], absent=others("sql-tuning"))


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_first_event_arrives_before_upstream_finishes(proxy_for, fake, upstream):
    m = uid()
    events = proxy_for[upstream].anthropic().messages.create(
        model="slow-claude", max_tokens=64, stream=True, messages=[{"role": "user", "content": f"hi {m}"}])
    col = Collector(events)
    col.start()
    rec = fake.wait_marker(m)
    try:
        wait_until(lambda: any(e.type == "content_block_delta" for e in col.items), fu.SLOW_GATE_SECS + 5, 0.01,
                   "the first text delta")
        assert not rec.finished.is_set(), "the upstream had already finished: the proxy buffered the stream"
    finally:
        rec.release.set()
    col.join(30)
    assert col.error is None, col.error
    assert "".join(e.delta.text for e in col.items if e.type == "content_block_delta") == fu.SCRIPTED_TEXT


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_models_list(proxy_for, upstream):
    srv = proxy_for[upstream]
    ids = [x.id for x in srv.anthropic().models.list()]
    want = fu.ANTHROPIC_MODELS if upstream == "anthropic" else fu.OPENAI_MODELS
    assert ids == want
    status, _, body = srv.get("/v1/models", {"anthropic-version": "2023-06-01"})
    assert status == 200
    obj = json.loads(body)
    assert [x["id"] for x in obj["data"]] == want
    assert all(x.get("type") == "model" for x in obj["data"]), "Anthropic model list format expected"
    assert obj.get("has_more") is False
    # Without anthropic-version: the OpenAI format.
    status, _, body = srv.get("/v1/models")
    obj = json.loads(body)
    assert status == 200 and obj.get("object") == "list"
    assert [x["id"] for x in obj["data"]] == want and all(x.get("object") == "model" for x in obj["data"])


def test_model_override(module_proxies, fake):
    srv = module_proxies.start("anthropic", {"upstream.model": "claude-override"}, name="override")
    client = srv.anthropic()
    m = uid()
    r = client.messages.create(model="agent-picked-model", max_tokens=16,
                               messages=[{"role": "user", "content": f"hello {m}"}])
    assert r.content[0].text == fu.SCRIPTED_TEXT
    assert fake.only(m).body["model"] == "claude-override"
    assert [x.id for x in client.models.list()] == ["claude-override"]


def test_base_url_with_trailing_v1(module_proxies, fake):
    """An Anthropic-kind base_url may end in /v1: the proxy still POSTs to
    {host}/v1/messages, not /v1/v1/messages."""
    srv = module_proxies.start("anthropic", {"upstream.base_url": f"{fake.anthropic_base_url}/v1"}, name="v1-suffix")
    m = uid()
    r = srv.anthropic().messages.create(model="claude-fake-sonnet", max_tokens=16,
                                        messages=[{"role": "user", "content": f"hello {m}"}])
    assert r.content[0].text == fu.SCRIPTED_TEXT
    assert fake.only(m).path == "/v1/messages"
