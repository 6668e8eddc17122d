"""The skill evolver end to end: the real openai client has a conversation
through `metaclaw serve` that fails (the user corrects it), a local fake
judge scores its turns -1, and a local fake evolver (OpenAI wire format)
first answers with malformed JSON and then, asked to repair it, with one
skill. The skill appears as a SKILL.md with provenance, the skill generation
goes up, the very next request carries it, and its turns are the
evolution's support set. In review mode the skill waits, uninjected, until
`metaclaw skills approve`."""

from __future__ import annotations

import json
import sqlite3

from harness import http_request, uid, upstream_system_text, wait_until
from test_prm import FakeJudge

EVOLVER_KEY = "sk-evolver-test-0123456789abcdef"
RULE = "ZQX-OFFSET-RULE: always write meeting times with their UTC offset"
SKILL = [{"name": "Zorblat Meeting Offsets!",
          "description": "Use when stating zorblat meeting times",
          "category": "Time",
          "body": f"- {RULE}, e.g. 10:00+08:00.\n- Name the time zone too."}]


def settings(judge: FakeJudge, evolver: FakeJudge, review: str) -> dict:
    return {
        "prm.model": "judge-model",
        "prm.enabled": True,
        "prm.base_url": judge.base_url,
        "prm.votes": 1,
        "evolver.model": "evolver-model",
        "evolver.enabled": True,
        "evolver.base_url": evolver.base_url,
        "evolver.api_key": EVOLVER_KEY,
        "evolver.timeout_secs": 10,
        "skills.review": review,
    }


def failing_conversation(srv) -> str:
    sid = f"evo-{uid()}"
    client = srv.openai()
    history = [{"role": "user", "content": "When is the zorblat meeting with the Singapore team?"}]
    first = client.chat.completions.create(model="fake-gpt-4o", max_tokens=64, messages=history,
                                           extra_headers={"X-Session-Id": sid})
    history += [{"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "no, the time must include the +08:00 offset"}]
    client.chat.completions.create(model="fake-gpt-4o", max_tokens=64, messages=history,
                                   extra_headers={"X-Session-Id": sid, "X-Session-Done": "true"})
    return sid


def evolved_skill(srv, status: str) -> dict | None:
    for skill in srv.mc.json("skills", "list", "--json"):
        if skill["name"] == "zorblat-meeting-offsets" and skill["status"] == status:
            return skill
    return None


def generation(srv) -> int:
    status, _, body = http_request(srv.port, "GET", "/healthz")
    assert status == 200
    return json.loads(body)["skill_generation"]


def injected_into_next_request(srv, fake) -> bool:
    m = uid()
    srv.openai().chat.completions.create(
        model="fake-gpt-4o", max_tokens=64,
        messages=[{"role": "user", "content": f"When is the zorblat meeting on Monday? {m}"}])
    return RULE in upstream_system_text(fake.find(m)[-1].body, "openai")


def database(srv):
    return sqlite3.connect(f"file:{next(srv.mc.home.rglob('metaclaw.db'))}?mode=ro", uri=True)


def test_failed_turns_become_a_skill_the_next_request_carries(proxies, fake):
    with FakeJudge([(200, "The user had to correct the offset.\nScore: -1")]) as judge, \
            FakeJudge([(200, "Here you go:\n```json\n[{\"name\": \"zorblat\", \"description\": \n```"),
                       (200, "```json\n" + json.dumps(SKILL) + "\n```")]) as evolver:
        srv = proxies.start("openai", settings(judge, evolver, "auto"), name="evolver")
        assert srv.mc.config_get("evolver.api_key") != EVOLVER_KEY, "the key must show masked"
        assert generation(srv) == 0
        failing_conversation(srv)

        skill = wait_until(lambda: evolved_skill(srv, "active"), 30, 0.3, "the evolved skill")
        assert skill["origin"] == "evolved"
        text = srv.mc.run("skills", "show", "zorblat-meeting-offsets").stdout
        for key in ("origin: evolved", "evolved_from_session:", "evolved_from_turns:", "evolved_at:",
                    "evolver_model: evolver-model", "category: time", RULE):
            assert key in text, f"{key} missing:\n{text}"

        # The evolver read the judge's reason and the correction, was asked
        # once to repair its answer, and got its own key.
        assert len(evolver.prompts) == 2
        assert "The user had to correct the offset." in json.dumps(evolver.prompts)
        assert "only the JSON array" in evolver.prompts[1]
        assert all(a == f"Bearer {EVOLVER_KEY}" for a in evolver.auth)

        assert generation(srv) == 1
        assert injected_into_next_request(srv, fake)

        with database(srv) as db:
            status, added = db.execute("SELECT status, added FROM evolutions").fetchone()
            assert (status, added) == ("ok", 1)
            support = {r[0] for r in db.execute("SELECT turn_id FROM support_sets")}
            assert len(support) == 2
            # The training-data rule: generation-1 turns outside any support set.
            generations = {r[0] for r in db.execute(
                f"SELECT skill_generation FROM turns WHERE id IN ({','.join(map(str, support))})")}
            assert generations == {0}


def test_review_mode_keeps_the_skill_pending_until_approved(proxies, fake):
    with FakeJudge([(200, "Wrong offset.\nScore: -1")]) as judge, \
            FakeJudge([(200, json.dumps(SKILL))]) as evolver:
        srv = proxies.start("openai", settings(judge, evolver, "manual"), name="evolver-review")
        failing_conversation(srv)
        wait_until(lambda: evolved_skill(srv, "pending"), 30, 0.3, "the pending skill")
        assert generation(srv) == 0
        assert not injected_into_next_request(srv, fake)

        out = srv.mc.run("skills", "approve", "zorblat-meeting-offsets").stdout
        assert "approved zorblat-meeting-offsets" in out and "generation 1" in out
        assert evolved_skill(srv, "active")
        # The server's watcher picks the approved file up.
        wait_until(lambda: injected_into_next_request(srv, fake), 10, 0.5, "the approved skill to be injected")
        refused = srv.mc.run("skills", "reject", "zorblat-meeting-offsets", check=False)
        assert refused.returncode != 0 and "not pending" in refused.stderr
