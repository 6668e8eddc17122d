"""Session identity: X-Session-Id / X-Turn-Type / X-Session-Done headers and
the same as body fields (stripped before the upstream), derived sessions for
plain conversations, side turns, session end by 'done' and by idle time."""

from __future__ import annotations

import pytest

import fake_upstream as fu
from harness import (QUERIES, SESSION_FIELDS, assert_injected, assert_not_injected, others, uid,
                     upstream_system_text, wait_until)

DIALECTS = ["openai", "anthropic"]


def ask(srv, dialect: str, messages: list[dict], *, system: str | None = None, headers: dict | None = None,
        body: dict | None = None, model: str | None = None):
    """One non-stream request with either SDK; returns the assistant text."""
    if dialect == "openai":
        msgs = ([{"role": "system", "content": system}] if system else []) + messages
        r = srv.openai().chat.completions.create(model=model or "fake-gpt-4o", max_tokens=64, messages=msgs,
                                                 extra_headers=headers, extra_body=body)
        return r.choices[0].message.content
    kw = {"system": system} if system else {}
    r = srv.anthropic().messages.create(model=model or "claude-fake-sonnet", max_tokens=64, messages=messages,
                                        extra_headers=headers, extra_body=body, **kw)
    return r.content[0].text


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


@pytest.fixture(scope="module")
def srv(module_proxies):
    return module_proxies.start("openai", name="sessions")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_header_session_id(srv, fake, dialect):
    sid, other = f"s-{uid()}", f"s-{uid()}"
    m = uid()
    ask(srv, dialect, [user(f"first {m}")], headers={"X-Session-Id": sid})
    ask(srv, dialect, [user(f"unrelated conversation {m}")], headers={"X-Session-Id": sid})
    ask(srv, dialect, [user(f"third {m}")], headers={"X-Session-Id": other})
    turns = srv.mc.wait_turns(m, 3)
    by_session: dict = {}
    for t in turns:
        by_session.setdefault(t["_session"]["id"], []).append(t)
    assert len(by_session) == 2, "X-Session-Id must decide the session"
    sess = {ts[0]["_session"]["session_key"]: ts for ts in by_session.values()}
    k1 = next(k for k in sess if sid in k)
    k2 = next(k for k in sess if other in k)
    assert (len(sess[k1]), len(sess[k2])) == (2, 1)
    detail = srv.mc.session(sess[k1][0]["_session"]["id"])
    assert detail["session"]["turn_count"] == 2
    assert detail["session"]["ended_at_ms"] is None and detail["session"]["end_reason"] is None
    idx = [t["turn_index"] for t in detail["turns"]]
    assert len(set(idx)) == 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_body_session_fields_are_stripped(srv, fake, dialect):
    sid = f"b-{uid()}"
    m = uid()
    ask(srv, dialect, [user(f"{QUERIES['weather-briefing']} {m}")],
        body={"session_id": sid, "turn_type": "main", "session_done": False})
    rec = fake.only(m)
    for f in SESSION_FIELDS:
        assert f not in rec.body, f"{f} reached the upstream"
    assert_injected(upstream_system_text(rec.body, "openai"), ["weather-briefing"])
    t = srv.mc.wait_turn(m)
    assert sid in t["_session"]["session_key"]
    assert t["turn_type"] == "main"
    assert t["_session"]["ended_at_ms"] is None


@pytest.mark.parametrize("how", ["header", "body"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_side_turn_gets_no_skills(srv, fake, dialect, how):
    m = uid()
    sid = f"side-{uid()}"
    if how == "header":
        kw = {"headers": {"X-Session-Id": sid, "X-Turn-Type": "side"}}
    else:
        kw = {"body": {"session_id": sid, "turn_type": "side"}}
    text = ask(srv, dialect, [user(f"{QUERIES['weather-briefing']} {m}")], system=f"sys {m}", **kw)
    assert text == fu.SCRIPTED_TEXT
    rec = fake.only(m)
    system = upstream_system_text(rec.body, "openai")
    assert_not_injected(system)
    assert system == f"sys {m}"
    assert "turn_type" not in rec.body
    t = srv.mc.wait_turn(m)
    assert t["turn_type"] == "side"
    assert t["injected_skills"] == []


@pytest.mark.parametrize("value,how", [("true", "header"), ("1", "header"), (True, "body")])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_session_done(srv, fake, dialect, value, how):
    sid = f"d-{uid()}"
    m = uid()
    ask(srv, dialect, [user(f"one {m}")], headers={"X-Session-Id": sid})
    if how == "header":
        ask(srv, dialect, [user(f"two {m}")], headers={"X-Session-Id": sid, "X-Session-Done": value})
    else:
        ask(srv, dialect, [user(f"two {m}")], body={"session_id": sid, "session_done": value})
    assert all("session_done" not in r.body for r in fake.find(m))

    def ended():
        turns = srv.mc.turns_with(m)
        if len(turns) == 2 and turns[-1]["_session"]["end_reason"] == "done":
            return turns
        return None
    turns = wait_until(ended, what="the session to end with reason 'done'")
    s = turns[-1]["_session"]
    assert turns[0]["_session"]["id"] == s["id"]
    assert s["turn_count"] == 2
    assert isinstance(s["ended_at_ms"], int) and s["ended_at_ms"] >= s["started_at_ms"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_derived_session_for_plain_conversations(srv, fake, dialect):
    """No headers: the turns of one conversation (history grows) share one
    session; another conversation is another session."""
    m = uid()
    system = f"You are terse. {m}"
    conv = [user(f"Hello there {m}")]
    a1 = ask(srv, dialect, conv, system=system)
    conv += [assistant(a1), user("And a follow-up question")]
    a2 = ask(srv, dialect, conv, system=system)
    conv += [assistant(a2), user("A third one")]
    ask(srv, dialect, conv, system=system)
    ask(srv, dialect, [user(f"A different conversation {m}")], system=system)
    turns = srv.mc.wait_turns(m, 4)
    first_conv = [t for t in turns if f"Hello there {m}" in str(t["request"])]
    other_conv = [t for t in turns if f"A different conversation {m}" in str(t["request"])]
    assert len(first_conv) == 3 and len(other_conv) == 1
    assert len({t["_session"]["id"] for t in first_conv}) == 1, "one conversation was split into sessions"
    assert other_conv[0]["_session"]["id"] != first_conv[0]["_session"]["id"]
    s = srv.mc.session(first_conv[0]["_session"]["id"])
    assert s["session"]["turn_count"] == 3
    assert isinstance(s["session"]["key_source"], str) and s["session"]["key_source"]
    assert isinstance(s["session"]["session_key"], str) and s["session"]["session_key"]
    idx = sorted(t["turn_index"] for t in s["turns"])
    assert idx == list(range(idx[0], idx[0] + 3))


def test_sessions_list_newest_first(srv, fake):
    m = uid()
    ask(srv, "openai", [user(f"older {m}")], headers={"X-Session-Id": f"old-{m}"})
    srv.mc.wait_turns(m, 1)
    ask(srv, "openai", [user(f"newer {m}")], headers={"X-Session-Id": f"new-{m}"})
    srv.mc.wait_turns(m, 2)
    keys = [s["session_key"] for s in srv.mc.sessions()]
    i_old = next(i for i, k in enumerate(keys) if f"old-{m}" in k)
    i_new = next(i for i, k in enumerate(keys) if f"new-{m}" in k)
    assert i_new < i_old, "sessions list must be newest first"
    for s in srv.mc.sessions():
        for f in ("id", "session_key", "key_source", "started_at_ms", "last_seen_at_ms", "ended_at_ms",
                  "end_reason", "turn_count"):
            assert f in s, f"session field {f} missing"
        assert s["last_seen_at_ms"] >= s["started_at_ms"]


def test_injection_follows_the_latest_instruction(srv, fake):
    """Multi-turn conversation: the skills follow the latest user message."""
    m = uid()
    conv = [user(f"{QUERIES['sql-tuning']} {m}")]
    a1 = ask(srv, "openai", conv)
    conv += [assistant(a1), user(QUERIES["kubernetes-debugging"])]
    ask(srv, "openai", conv)
    r1, r2 = fake.find(m)
    assert_injected(upstream_system_text(r1.body, "openai"), ["sql-tuning"], absent=others("sql-tuning"))
    assert_injected(upstream_system_text(r2.body, "openai"), ["kubernetes-debugging"],
                    absent=others("kubernetes-debugging"))


def test_idle_timeout_ends_session(proxies, fake):
    srv = proxies.start("openai", {"session.idle_timeout_minutes": "0.05"}, name="idle")
    m = uid()
    ask(srv, "openai", [user(f"idle soon {m}")], headers={"X-Session-Id": f"idle-{m}"})
    srv.mc.wait_turns(m, 1)

    def ended():
        s = next((s for s in srv.mc.sessions() if f"idle-{m}" in s["session_key"]), None)
        return s if s and s["end_reason"] == "idle" else None
    s = wait_until(ended, timeout=45, interval=0.5, what="the idle timeout (3 s) to end the session")
    assert s["ended_at_ms"] is not None and s["ended_at_ms"] >= s["last_seen_at_ms"]
    assert s["turn_count"] == 1
