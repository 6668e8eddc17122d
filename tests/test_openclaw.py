"""What the OpenClaw agent really sends (shared/reference/openclaw-requests.md):
a ~48 KB system prompt with attempt markers, a Runtime line with sessionId in
the first user message, 12 tools, a trailing internal-context user message on
every request, always streaming with include_usage and max_completion_tokens,
and no session headers. One session per sessionId; the skills follow the
user's real instruction, never the tool result or the internal block."""

from __future__ import annotations

import json
import secrets

import pytest

import fake_upstream as fu
from harness import (QUERIES, Capture, assert_injected, assert_passthrough_openai, openclaw_internal_message,
                     openclaw_runtime, openclaw_system, openclaw_tools, openclaw_user, text_of, uid,
                     upstream_system_text)

MODEL = "tool-fake-gpt"


def _traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class OpenClawAgent:
    """Drives the openai SDK the way OpenClaw's provider does."""

    def __init__(self, srv, sid: str):
        self.cap = Capture()
        self.client = srv.openai(self.cap, api_key="openclaw-provider-key",
                                 default_headers={"accept": "application/json"})
        self.sid = sid
        self.system = openclaw_system(MODEL)
        self.tools = openclaw_tools()
        self.history: list[dict] = [{"role": "system", "content": self.system}]

    def request(self, traceparent: str):
        messages = self.history + [openclaw_internal_message()]
        chunks = list(self.client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True},
            tools=self.tools, tool_choice="auto", max_completion_tokens=8192,
            extra_headers={"traceparent": traceparent}))
        text, calls, finish = "", {}, None
        for c in chunks:
            for ch in c.choices:
                text += ch.delta.content or ""
                for tc in ch.delta.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                    slot["id"] = slot["id"] or (tc.id or "")
                    slot["name"] += (tc.function.name or "") if tc.function else ""
                    slot["args"] += (tc.function.arguments or "") if tc.function else ""
                finish = ch.finish_reason or finish
        usage = [c for c in chunks if c.usage is not None]
        assert len(usage) == 1 and usage[0].choices == [] and usage[0] is chunks[-1], "include_usage chunk"
        assert usage[0].usage.prompt_tokens == fu.PROMPT_TOKENS
        return text, [calls[i] for i in sorted(calls)], finish

    def turn(self, typed: str, stamp: str, first: bool = False):
        content = openclaw_user(typed, stamp)
        if first:
            content += "\n\n" + openclaw_runtime(self.sid, MODEL)
        self.history.append({"role": "user", "content": content})
        trace = _traceparent()
        replies = []
        while True:
            text, calls, finish = self.request(trace)
            replies.append((text, calls, finish))
            if not calls:
                self.history.append({"role": "assistant", "content": text})
                return replies
            # OpenClaw replays tool calls with ids stripped of non-alphanumerics
            # and arguments re-serialised compactly.
            replay = [{"id": "".join(ch for ch in c["id"] if ch.isalnum()), "type": "function",
                       "function": {"name": c["name"],
                                    "arguments": json.dumps(json.loads(c["args"]), separators=(",", ":"))}}
                      for c in calls]
            self.history.append({"role": "assistant", "content": None, "tool_calls": replay})
            for c in replay:
                # The tool result mentions git words: they must not drive injection.
                self.history.append({"role": "tool", "tool_call_id": c["id"],
                                     "content": '{"city":"Paris","sky":"clear","celsius":21,'
                                                '"log":"Rebase feature branch onto main, merge conflicts"}'})
            assert len(replies) < 4, "tool loop did not end"


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_openclaw_session_with_tool_loop(proxy_for, fake, upstream):
    srv = proxy_for[upstream]
    sid = f"oc-{uid()}"
    agent = OpenClawAgent(srv, sid)

    # Turn 1: weather question -> tool call -> tool result -> answer.
    replies = agent.turn(QUERIES["weather-briefing"], "Wed 2026-11-25 03:11 UTC", first=True)
    assert len(replies) == 2
    (_, calls, finish1), (text2, calls2, finish2) = replies
    assert finish1 == "tool_calls" and calls[0]["name"] == fu.TOOL_NAME
    assert json.loads(calls[0]["args"]) == fu.TOOL_ARGS
    assert (text2, calls2, finish2) == (fu.TOOL_FOLLOWUP_TEXT, [], "stop")

    # Turn 2: a new instruction in the same session.
    replies = agent.turn(QUERIES["email-drafting"], "Wed 2026-11-25 03:14 UTC")
    assert replies == [(fu.TOOL_FOLLOWUP_TEXT, [], "stop")]

    recs = fake.find(f"sessionId={sid}")
    assert len(recs) == 3
    expected = [("weather-briefing", ["sql-tuning", "kubernetes-debugging", "email-drafting"]),
                ("weather-briefing", ["git-rebase-helper", "sql-tuning", "kubernetes-debugging"]),
                ("email-drafting", ["weather-briefing", "sql-tuning", "kubernetes-debugging", "git-rebase-helper"])]
    for i, (rec, (want, absent)) in enumerate(zip(recs, expected)):
        system = upstream_system_text(rec.body, upstream)
        assert system.startswith(agent.system), f"request {i}: the 48 KB system prompt was not kept intact"
        assert "<!-- openclaw:attempt:DYNAMIC -->" in system
        assert_injected(system, [want], absent=absent)
        assert fu.credentials(rec) == [fake.api_key]
        if upstream == "openai":
            assert_passthrough_openai(agent.cap.bodies[i], rec.body)
            assert rec.body["max_completion_tokens"] == 8192
            assert rec.body["stream_options"] == {"include_usage": True}
            assert rec.headers.get("authorization") == f"Bearer {fake.api_key}"
        else:
            body = rec.body
            assert body["max_tokens"] == 8192 and body["stream"] is True
            assert [t["name"] for t in body["tools"]] == [t["function"]["name"] for t in agent.tools]
            assert all(m["role"] in ("user", "assistant") for m in body["messages"])
            # The internal-context block still reaches the model, last.
            assert "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>" in json.dumps(body["messages"][-1])
    # The second request of the loop carries the replayed call and its result.
    if upstream == "anthropic":
        blocks = [b for m in recs[1].body["messages"] if isinstance(m["content"], list) for b in m["content"]]
        use = next(b for b in blocks if b["type"] == "tool_use")
        res = next(b for b in blocks if b["type"] == "tool_result")
        assert use["input"] == fu.TOOL_ARGS and res["tool_use_id"] == use["id"]

    # One session, three main turns, in order.
    turns = srv.mc.wait_turns(f"sessionId={sid}", 3)
    assert len({t["_session"]["id"] for t in turns}) == 1, "OpenClaw requests of one sessionId split sessions"
    session = srv.mc.session(turns[0]["_session"]["id"])
    assert session["session"]["turn_count"] == 3
    assert len(session["turns"]) == 3
    assert [t["turn_type"] for t in turns] == ["main"] * 3
    assert all(t["stream"] is True and t["status"] == "complete" for t in turns)
    assert [t["injected_skills"] for t in turns] == [["weather-briefing"], ["weather-briefing"], ["email-drafting"]]
    idx = [t["turn_index"] for t in sorted(session["turns"], key=lambda t: t["turn_index"])]
    assert len(set(idx)) == 3
    for t, rec in zip(turns, recs):
        assert t["request"] == rec.body


def test_two_openclaw_sessions_stay_apart(openai_proxy, fake):
    """Same agent, same system prompt, same typed text: a different sessionId is
    a different session."""
    sids = [f"oc-{uid()}", f"oc-{uid()}"]
    for sid in sids:
        OpenClawAgent(openai_proxy, sid).turn("Kubernetes pods crashing again", "Wed 2026-11-25 05:00 UTC",
                                              first=True)
    a = openai_proxy.mc.wait_turns(f"sessionId={sids[0]}", 1)
    b = openai_proxy.mc.wait_turns(f"sessionId={sids[1]}", 1)
    assert a[0]["_session"]["id"] != b[0]["_session"]["id"]
    assert a[0]["injected_skills"] == ["kubernetes-debugging"]


def test_openclaw_retry_keeps_the_session(openai_proxy, fake):
    """OpenClaw's retry rewrites the first user message (queued notice) but
    keeps the Runtime line: still the same session."""
    sid = f"oc-{uid()}"
    agent = OpenClawAgent(openai_proxy, sid)
    agent.turn(QUERIES["sql-tuning"], "Wed 2026-11-25 06:00 UTC", first=True)
    retry = OpenClawAgent(openai_proxy, sid)
    retry.history.append({"role": "user", "content": openclaw_user(
        "[Queued messages while agent was busy]\n---\nQueued #1\n" + QUERIES["sql-tuning"],
        "Wed 2026-11-25 06:01 UTC") + "\n\n" + openclaw_runtime(sid, MODEL)})
    retry.request(_traceparent())
    turns = openai_proxy.mc.wait_turns(f"sessionId={sid}", 2)
    assert len({t["_session"]["id"] for t in turns}) == 1


def test_internal_context_alone_is_not_the_instruction(openai_proxy, fake):
    """A request whose only user text besides the Runtime line is followed by
    the internal block: the block's words (SQL, Kubernetes) never pick skills."""
    sid = f"oc-{uid()}"
    agent = OpenClawAgent(openai_proxy, sid)
    agent.turn(QUERIES["git-rebase-helper"], "Wed 2026-11-25 07:00 UTC", first=True)
    rec = fake.find(f"sessionId={sid}")[0]
    assert text_of(rec.body["messages"][-1]["content"]).startswith("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>")
    assert_injected(upstream_system_text(rec.body, "openai"), ["git-rebase-helper"],
                    absent=["sql-tuning", "kubernetes-debugging"])
