"""Recording: every field of a turn, streams assembled, aborted streams
(client disconnects -> upstream cancelled -> status 'aborted'), and
durability across `kill -9`."""

from __future__ import annotations

import json
import time

import pytest

import fake_upstream as fu
from harness import QUERIES, ProxyServer, check_turn, uid

COMBOS = [("openai", "openai"), ("openai", "anthropic"), ("anthropic", "anthropic"), ("anthropic", "openai")]


def test_turn_fields_and_timing(openai_proxy, fake):
    m = uid()
    t0 = int(time.time() * 1000)
    r = openai_proxy.openai().chat.completions.create(
        model="fake-gpt-4o", max_tokens=32,
        messages=[{"role": "user", "content": f"{QUERIES['kubernetes-debugging']} {m}"}])
    t1 = int(time.time() * 1000)
    assert r.choices[0].message.content == fu.SCRIPTED_TEXT
    rec = fake.only(m)
    t = openai_proxy.mc.wait_turn(m)
    check_turn(t, client="openai", upstream="openai", model="fake-gpt-4o", stream=False, rec=rec,
               injected=["kubernetes-debugging"])
    assert t0 - 1000 <= t["started_at_ms"] <= t1 + 1000, "started_at_ms is not a Unix time in ms"
    assert t["latency_ms"] <= (t1 - t0) + 1000
    s = t["_session"]
    assert s["started_at_ms"] <= t["started_at_ms"] <= s["last_seen_at_ms"]
    # `sessions show` gives the same session fields as `sessions list`.
    listed = next(x for x in openai_proxy.mc.sessions() if x["id"] == s["id"])
    assert listed == s


def test_request_ids_are_unique(openai_proxy, fake):
    m = uid()
    for i in range(3):
        openai_proxy.openai().chat.completions.create(
            model="fake-gpt-4o", max_tokens=8, messages=[{"role": "user", "content": f"n{i} {m}"}],
            extra_headers={"X-Session-Id": f"ids-{m}"})
    turns = openai_proxy.mc.wait_turns(m, 3)
    assert len({t["request_id"] for t in turns}) == 3
    assert len({t["id"] for t in turns}) == 3


def test_sessions_show_unknown_id_fails(openai_proxy):
    p = openai_proxy.mc.run("sessions", "show", "no-such-session-42", "--json", check=False)
    assert p.returncode != 0
    assert p.stderr.strip() or p.stdout.strip()


@pytest.mark.parametrize("client,upstream", COMBOS)
def test_client_disconnect_aborts(proxy_for, fake, client, upstream):
    """Close the stream after a few chunks: the proxy cancels the upstream
    request (the fake sees its client leave) and records the turn 'aborted'
    with what had arrived so far."""
    srv = proxy_for[upstream]
    m = uid()
    got = []
    if client == "openai":
        stream = srv.openai().chat.completions.create(
            model="endless-gpt", stream=True, max_tokens=64, messages=[{"role": "user", "content": f"go {m}"}])
        for c in stream:
            got.extend(ch.delta.content or "" for ch in c.choices)
            if "tick 2" in "".join(got):
                break
        stream.close()
    else:
        stream = srv.anthropic().messages.create(
            model="endless-claude", stream=True, max_tokens=64, messages=[{"role": "user", "content": f"go {m}"}])
        for e in stream:
            if e.type == "content_block_delta":
                got.append(e.delta.text)
            if "tick 2" in "".join(got):
                break
        stream.close()
    assert "tick 0" in "".join(got)
    rec = fake.only(m)
    assert rec.client_gone.wait(10), "the proxy kept the upstream stream open after its client left"
    assert not rec.finished.is_set()
    t = srv.mc.wait_turn(m, timeout=10, pred=lambda t: t["status"] == "aborted")
    assert t["status"] == "aborted"
    assert t["stream"] is True
    assert "tick 0" in json.dumps(t["response"]), "the partial response was not kept"
    # The server is fine afterwards.
    r = srv.openai().chat.completions.create(model="fake-gpt-4o", max_tokens=8,
                                             messages=[{"role": "user", "content": f"after {m}"}])
    assert r.choices[0].message.content == fu.SCRIPTED_TEXT


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_stream_assembled_equals_non_stream(proxy_for, fake, upstream):
    """The recorded response of a stream equals the recorded response of the
    same request without streaming (ids aside)."""
    srv = proxy_for[upstream]
    m = uid()
    results = {}
    for stream in (False, True):
        marker = f"{m}-{int(stream)}"
        if upstream == "openai":
            r = srv.openai().chat.completions.create(
                model="tool-fake-gpt", max_tokens=32, messages=[{"role": "user", "content": marker}],
                **({"stream": True, "stream_options": {"include_usage": True}} if stream else {}))
        else:
            r = srv.anthropic().messages.create(model="tool-claude", max_tokens=32, stream=stream,
                                                messages=[{"role": "user", "content": marker}])
        if stream:
            list(r)
        results[stream] = srv.mc.wait_turn(marker)["response"]

    def normal(resp):
        resp = json.loads(json.dumps(resp))
        resp.pop("id", None)
        if upstream == "openai":
            msg = resp["choices"][0]["message"]
            return (msg.get("role"), msg.get("content") or None,
                    [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                     for c in msg["tool_calls"]], resp["choices"][0]["finish_reason"],
                    resp["usage"]["prompt_tokens"], resp["usage"]["completion_tokens"], resp.get("model"))
        return (resp["role"], resp["content"], resp["stop_reason"], resp["usage"]["input_tokens"],
                resp["usage"]["output_tokens"], resp.get("model"))
    assert normal(results[True]) == normal(results[False])


def test_kill9_loses_no_completed_turn(proxies, fake):
    srv = proxies.start("openai", name="durable")
    home = srv.mc  # the same METACLAW_HOME for the restart
    m = uid()
    client = srv.openai()
    for i in range(3):
        client.chat.completions.create(model="fake-gpt-4o", max_tokens=8,
                                       messages=[{"role": "user", "content": f"durable {i} {m}"}])
    for i in range(3, 5):
        list(client.chat.completions.create(model="fake-gpt-4o", max_tokens=8, stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": f"durable {i} {m}"}]))
    r = srv.anthropic().messages.create(model="claude-fake-sonnet", max_tokens=8,
                                        messages=[{"role": "user", "content": f"durable 5 {m}"}])
    assert r.content[0].text == fu.SCRIPTED_TEXT
    srv.kill9()  # right after the last response

    turns = home.turns_with(m)
    found = sorted(int(json.dumps(t["request"]).split("durable ")[1][0]) for t in turns)
    assert found == list(range(6)), f"completed turns were lost by kill -9: only {found} of 0..5 were recorded"
    assert [t["status"] for t in turns] == ["complete"] * 6

    again = ProxyServer(home, "durable-restarted")
    proxies.servers.append(again)
    again.start()
    r = again.openai().chat.completions.create(model="fake-gpt-4o", max_tokens=8,
                                               messages=[{"role": "user", "content": f"durable 6 {m}"}])
    assert r.choices[0].message.content == fu.SCRIPTED_TEXT
    assert len(again.mc.wait_turns(m, 7)) == 7
