"""Self-test of the fake upstream: the real `openai` and `anthropic` SDKs talk to
it DIRECTLY (no proxy). If these pass, the fake's wire format is what the SDKs
expect, so a proxy failure elsewhere is the proxy's, not the fake's."""

from __future__ import annotations

import json
import re

import anthropic
import httpx2
import openai
import pytest

import fake_upstream as fu
from harness import (QUERIES, TEST_SKILLS, TOOLS_ANTHROPIC, TOOLS_OPENAI, Collector, http_request, uid,
                     wait_until)

@pytest.fixture()
def oai(fake):
    return openai.OpenAI(api_key=fake.api_key, base_url=fake.openai_base_url, max_retries=0, timeout=30)


@pytest.fixture()
def ant(fake):
    return anthropic.Anthropic(api_key=fake.api_key, base_url=fake.anthropic_base_url, max_retries=0, timeout=30)


def test_openai_non_stream(fake, oai):
    m = uid()
    r = oai.chat.completions.create(model="fake-gpt-4o", messages=[{"role": "user", "content": f"hi {m}"}])
    assert r.choices[0].message.content == fu.SCRIPTED_TEXT
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == fu.PROMPT_TOKENS and r.usage.completion_tokens == fu.COMPLETION_TOKENS
    assert r.model == "fake-gpt-4o" and r.object == "chat.completion"
    rec = fake.only(m)
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == f"Bearer {fake.api_key}"
    assert rec.body["messages"][0]["content"] == f"hi {m}"
    assert rec.response["id"] == r.id


def test_openai_stream_with_usage(fake, oai):
    m = uid()
    chunks = list(oai.chat.completions.create(model="fake-gpt-4o", stream=True,
                                              stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": f"hi {m}"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == fu.SCRIPTED_TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage.total_tokens == fu.PROMPT_TOKENS + fu.COMPLETION_TOKENS
    assert all(c.usage is None for c in chunks[:-1])
    rec = fake.only(m)
    assert rec.finished.wait(5)


def test_openai_stream_without_usage_has_no_usage_chunk(fake, oai):
    m = uid()
    chunks = list(oai.chat.completions.create(model="fake-gpt-4o", stream=True,
                                              messages=[{"role": "user", "content": f"hi {m}"}]))
    assert all(c.choices for c in chunks)
    assert all(getattr(c, "usage", None) is None for c in chunks)


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_call(fake, oai, stream):
    m = uid()
    kw = dict(model="tool-fake-gpt", tools=TOOLS_OPENAI, messages=[{"role": "user", "content": f"weather {m}"}])
    if not stream:
        r = oai.chat.completions.create(**kw)
        call = r.choices[0].message.tool_calls[0]
        assert r.choices[0].finish_reason == "tool_calls"
        assert (call.id, call.function.name, json.loads(call.function.arguments)) == \
               (fu.OPENAI_TOOL_CALL_ID, "get_weather", fu.TOOL_ARGS)
    else:
        args, name, ids, finish = "", None, [], None
        for c in oai.chat.completions.create(stream=True, **kw):
            for tc in c.choices[0].delta.tool_calls or []:
                ids.append(tc.id)
                name = name or (tc.function.name if tc.function else None)
                args += (tc.function.arguments or "") if tc.function else ""
            finish = c.choices[0].finish_reason or finish
        assert (name, json.loads(args), finish) == ("get_weather", fu.TOOL_ARGS, "tool_calls")
        assert fu.OPENAI_TOOL_CALL_ID in ids
    # After a tool result the tool model answers with text.
    follow = oai.chat.completions.create(model="tool-fake-gpt", tools=TOOLS_OPENAI, messages=[
        {"role": "user", "content": f"weather {m}"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": fu.OPENAI_TOOL_CALL_ID, "type": "function",
                                                              "function": {"name": "get_weather",
                                                                           "arguments": fu.TOOL_ARGS_JSON}}]},
        {"role": "tool", "tool_call_id": fu.OPENAI_TOOL_CALL_ID, "content": "clear, 21C"}])
    assert follow.choices[0].message.content == fu.TOOL_FOLLOWUP_TEXT


def test_anthropic_non_stream(fake, ant):
    m = uid()
    r = ant.messages.create(model="claude-fake-sonnet", max_tokens=100, system="be brief",
                            messages=[{"role": "user", "content": f"hi {m}"}])
    assert r.content[0].type == "text" and r.content[0].text == fu.SCRIPTED_TEXT
    assert r.stop_reason == "end_turn"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (fu.PROMPT_TOKENS, fu.COMPLETION_TOKENS)
    rec = fake.only(m)
    assert rec.path == "/v1/messages"
    assert fu.credentials(rec) == [fake.api_key] and "anthropic-version" in rec.headers
    assert rec.body["system"] == "be brief"


def test_anthropic_stream_events(fake, ant):
    m = uid()
    events = list(ant.messages.create(model="claude-fake-sonnet", max_tokens=100, stream=True,
                                      messages=[{"role": "user", "content": f"hi {m}"}]))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert types[-2] == "message_delta" and "content_block_start" in types and "content_block_stop" in types
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == fu.SCRIPTED_TEXT
    with ant.messages.stream(model="claude-fake-sonnet", max_tokens=100,
                             messages=[{"role": "user", "content": f"again {m}"}]) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert streamed == fu.SCRIPTED_TEXT
    assert final.content[0].text == fu.SCRIPTED_TEXT and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == fu.COMPLETION_TOKENS and final.usage.input_tokens == fu.PROMPT_TOKENS


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use(fake, ant, stream):
    m = uid()
    kw = dict(model="tool-claude", max_tokens=100, tools=TOOLS_ANTHROPIC,
              messages=[{"role": "user", "content": f"weather {m}"}])
    if stream:
        with ant.messages.stream(**kw) as s:
            final = s.get_final_message()
    else:
        final = ant.messages.create(**kw)
    block = final.content[0]
    assert (block.type, block.id, block.name, block.input) == ("tool_use", fu.ANTHROPIC_TOOL_USE_ID,
                                                               "get_weather", fu.TOOL_ARGS)
    assert final.stop_reason == "tool_use"
    follow = ant.messages.create(model="tool-claude", max_tokens=100, tools=TOOLS_ANTHROPIC, messages=[
        {"role": "user", "content": f"weather {m}"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": fu.ANTHROPIC_TOOL_USE_ID, "name": "get_weather",
                                           "input": fu.TOOL_ARGS}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": fu.ANTHROPIC_TOOL_USE_ID,
                                      "content": "clear, 21C"}]}])
    assert follow.content[0].text == fu.TOOL_FOLLOWUP_TEXT


def test_models_both_formats(fake, oai, ant):
    assert [m.id for m in oai.models.list()] == fu.OPENAI_MODELS
    assert [m.id for m in ant.models.list()] == fu.ANTHROPIC_MODELS
    assert fake.requests[-1].headers.get("anthropic-version")


def test_auth_is_checked(fake):
    bad_oai = openai.OpenAI(api_key="wrong", base_url=fake.openai_base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_oai.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "x"}])
    bad_ant = anthropic.Anthropic(api_key="wrong", base_url=fake.anthropic_base_url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as ei:
        bad_ant.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["error"]["type"] == "authentication_error"
    # On the Anthropic side the key is taken from x-api-key or a Bearer header,
    # but a wrong value in either is refused.
    body = json.dumps({"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}).encode()
    base = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
    for headers, expect in [({"x-api-key": fake.api_key}, 200),
                            ({"authorization": f"Bearer {fake.api_key}"}, 200),
                            ({"x-api-key": fake.api_key, "authorization": "Bearer client-key"}, 401),
                            ({"x-api-key": "client-key", "authorization": f"Bearer {fake.api_key}"}, 401),
                            ({}, 401)]:
        status, _, data = http_request(fake.port, "POST", "/v1/messages", body, {**base, **headers})
        assert status == expect, (headers, data)
        if expect == 401:
            assert json.loads(data)["type"] == "error"


@pytest.mark.parametrize("code,exc_o,exc_a", [
    (500, openai.InternalServerError, anthropic.InternalServerError),
    (429, openai.RateLimitError, anthropic.RateLimitError),
    (401, openai.AuthenticationError, anthropic.AuthenticationError),
    (404, openai.NotFoundError, anthropic.NotFoundError)])
def test_http_faults(oai, ant, code, exc_o, exc_a):
    with pytest.raises(exc_o) as eo:
        oai.chat.completions.create(model=f"fault-{code}", messages=[{"role": "user", "content": "x"}])
    assert fu.ERROR_MESSAGES[code] in str(eo.value)
    with pytest.raises(exc_a) as ea:
        ant.messages.create(model=f"fault-{code}", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ea.value.body["error"]["message"] == fu.ERROR_MESSAGES[code]
    if code == 429:
        assert eo.value.response.headers["retry-after"] == fu.RETRY_AFTER
        assert ea.value.response.headers["retry-after"] == fu.RETRY_AFTER


def test_reset_and_midstream_reset(oai, ant):
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="fault-reset", messages=[{"role": "user", "content": "x"}])
    got = []
    with pytest.raises(openai.APIConnectionError):
        for c in oai.chat.completions.create(model="fault-midstream-reset", stream=True,
                                             messages=[{"role": "user", "content": "x"}]):
            got.append(c)
    assert "".join(c.choices[0].delta.content or "" for c in got) == "".join(fu.TEXT_PIECES[:fu.MIDSTREAM_CHUNKS])
    # (the anthropic SDK lets the transport error through unwrapped mid-stream)
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        list(ant.messages.create(model="fault-midstream-reset", max_tokens=5, stream=True,
                                 messages=[{"role": "user", "content": "x"}]))


def test_malformed_stream_breaks_the_sdk(oai, ant):
    with pytest.raises(ValueError):  # json.JSONDecodeError
        list(oai.chat.completions.create(model="fault-malformed", stream=True,
                                         messages=[{"role": "user", "content": "x"}]))
    with pytest.raises(ValueError):
        list(ant.messages.create(model="fault-malformed", max_tokens=5, stream=True,
                                 messages=[{"role": "user", "content": "x"}]))


def test_hang_is_noticed_when_client_leaves(fake):
    m = uid()
    c = openai.OpenAI(api_key=fake.api_key, base_url=fake.openai_base_url, max_retries=0, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model="fault-hang", messages=[{"role": "user", "content": m}])
    rec = fake.only(m)
    assert rec.client_gone.wait(10), "the fake did not notice its client went away"
    assert not rec.finished.is_set()


def test_stall_mid_stream(fake):
    m = uid()
    c = openai.OpenAI(api_key=fake.api_key, base_url=fake.openai_base_url, max_retries=0, timeout=0.5)
    got = []
    with pytest.raises(openai.APITimeoutError):
        for ch in c.chat.completions.create(model="fault-stall", stream=True,
                                            messages=[{"role": "user", "content": m}]):
            got.append(ch)
    assert "".join(x.choices[0].delta.content or "" for x in got) == "".join(fu.TEXT_PIECES[:fu.MIDSTREAM_CHUNKS])
    assert fake.only(m).client_gone.wait(10)


def test_endless_notices_client_gone(fake, oai):
    m = uid()
    stream = oai.chat.completions.create(model="endless-gpt", stream=True, messages=[{"role": "user", "content": m}])
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    rec = fake.only(m)
    assert rec.client_gone.wait(10), "endless stream did not notice the client left"
    assert not rec.finished.is_set()


def test_slow_stream_is_gated(fake, oai):
    m = uid()
    stream = oai.chat.completions.create(model="slow-gpt", stream=True, messages=[{"role": "user", "content": m}])
    col = Collector(stream)
    col.start()
    rec = fake.wait_marker(m)
    wait_until(lambda: any(c.choices and c.choices[0].delta.content for c in col.items), 10, 0.01,
               "first text chunk")
    assert not rec.finished.is_set()
    rec.release.set()
    col.join(20)
    assert col.error is None and rec.finished.wait(5)
    assert "".join(c.choices[0].delta.content or "" for c in col.items if c.choices) == fu.SCRIPTED_TEXT


def test_bad_json_and_unknown_path(fake):
    status, _, body = http_request(fake.port, "POST", "/v1/chat/completions", b"{nope",
                                   {"authorization": f"Bearer {fake.api_key}"})
    assert status == 400 and "error" in json.loads(body)
    status, _, _ = http_request(fake.port, "POST", "/v2/whatever", b"{}", {"authorization": f"Bearer {fake.api_key}"})
    assert status == 404


# Test-of-the-tests: the instructions used elsewhere share no word with the
# skills they must NOT pull in, whatever BM25 variant the proxy uses.
def _words(s: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", s.lower()))


def test_test_vocabulary_is_disjoint():
    for target, q in QUERIES.items():
        for name, (desc, body, cat) in TEST_SKILLS.items():
            overlap = _words(q) & _words(f"{name} {desc} {body} {cat}")
            if name == target:
                assert overlap, (name, q)
            else:
                assert not overlap, (target, name, overlap)


def test_openclaw_noise_matches_no_skill():
    """The Runtime line and timestamps of OpenClaw messages share no word with
    any test skill; the internal-context block only with its decoys."""
    from harness import OPENCLAW_INTERNAL, openclaw_runtime, openclaw_user
    skill_words = {n: _words(f"{n} {d} {b} {c}") for n, (d, b, c) in TEST_SKILLS.items()}
    noise = _words(openclaw_user("", "Wed 2026-11-25 03:11 UTC") + openclaw_runtime("oc-0123abcd", "tool-fake-gpt"))
    for n, w in skill_words.items():
        assert not (noise & w), (n, noise & w)
    decoys = {n for n, w in skill_words.items() if _words(OPENCLAW_INTERNAL) & w}
    assert decoys == {"sql-tuning", "kubernetes-debugging"}
