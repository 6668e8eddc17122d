"""The engine's JSON API (src-tauri/crates/engine/API.md) end to end against
`metaclaw serve`: every endpoint with the admin token, the refusal without
it, skill edits and actions that change the files on disk, settings that
are validated whole and never put a key into config.toml, the events
stream, `metaclaw dashboard --print-url`, the /ui security headers, and API
keys kept in a real Secret Service (gnome-keyring on a private D-Bus)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from harness import (QUERIES, UPSTREAM_KEY, MetaClaw, ProxyServer, http_request, injected_names, make_test_skills,
                     uid, upstream_settings, upstream_system_text, wait_until, write_skill)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
PENDING_SKILL = ("---\nname: waiting-review\ndescription: Use when reviewing zeppelin hangars\n"
                 "status: pending\norigin: evolved\nevolution_id: ev-42\nevolved_from_session: s-42\n"
                 "---\nCount the zeppelins twice.\n")


class Api:
    """The API of one server, with its admin token."""

    def __init__(self, srv: ProxyServer):
        self.srv = srv

    @property
    def token(self) -> str:
        return (self.srv.mc.home / "admin-token").read_text("utf-8").strip()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
        headers = {}
        token = self.token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        status, response_headers, payload = http_request(self.srv.port, method, path, data, headers)
        parsed = json.loads(payload) if payload else None
        return status, response_headers, parsed

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, _, data = self.call(method, path, body)
        assert status == 200, f"{method} {path} answered {status}: {data}"
        return data

    def error(self, method: str, path: str, body: Any = None, *, status: int, code: str,
              token: str | None = None, raw: bytes | None = None) -> dict:
        got, headers, data = self.call(method, path, body, token, raw)
        assert got == status, f"{method} {path}: expected {status}, got {got}: {data}"
        assert headers.get("content-type", "").startswith("application/json"), headers
        err = data["error"]
        assert err["code"] == code and isinstance(err["message"], str) and err["message"], data
        return err


@pytest.fixture(scope="module")
def served(module_proxies):
    home = module_proxies.home("api")
    skills = make_test_skills(home / "test-skills")
    write_skill(skills, "waiting-review", "", "", raw=PENDING_SKILL)
    srv = module_proxies.start("openai", {"skills.dir": str(skills)}, name="api", home=home,
                               skills=None)
    return srv, Api(srv), skills


def chat(srv: ProxyServer, text: str, session: str, model: str = "fake-gpt") -> Any:
    client = srv.openai()
    return client.chat.completions.create(model=model, max_tokens=32,
                                          messages=[{"role": "user", "content": text}],
                                          extra_headers={"X-Session-Id": session})


def test_every_api_request_needs_the_admin_token(served):
    srv, api, _ = served
    for path in ["/api/overview", "/api/skills", "/api/sessions", "/api/training", "/api/settings",
                 "/api/schedule", "/api/skills/sql-tuning"]:
        api.error("GET", path, token="", status=401, code="unauthorized")
        api.error("GET", path, token="not-the-token", status=401, code="unauthorized")
    api.error("POST", "/api/skills/sql-tuning/disable", token="wrong", status=401, code="unauthorized")
    api.error("PUT", "/api/settings", {"values": {}}, token="", status=401, code="unauthorized")
    # Nothing changed behind the refusals.
    assert api.ok("GET", "/api/skills/sql-tuning")["status"] == "active"
    api.error("GET", "/api/no-such-endpoint", status=404, code="not_found")
    assert api.token not in srv.log()


def test_overview_sessions_and_turns(served, fake):
    srv, api, _ = served
    session = f"api-{uid()}"
    chat(srv, QUERIES["weather-briefing"], session)
    chat(srv, "And the day after?", session)
    wait_until(lambda: len(srv.mc.turns_with("day after")) == 1, what="the second turn recorded")

    overview = api.ok("GET", "/api/overview")
    assert overview["version"] and overview["mode"] == "auto"
    assert overview["state"] in {"waiting", "window_open", "working", "pausing", "disabled"}
    assert isinstance(overview["state_reason"], str) and overview["state_reason"]
    assert overview["skills"] == {"active": 5, "pending": 1, "disabled": 0, "problems": 0}
    assert overview["live_sessions"] >= 1
    assert overview["upstream"] == {"api": "openai", "base_url": fake.openai_base_url, "model": None}
    assert overview["training"] is None
    if overview["last_event"] is not None:
        assert set(overview["last_event"]) == {"type", "at", "text"}

    listed = api.ok("GET", "/api/sessions?limit=50")["sessions"]
    mine = [s for s in listed if s["turns"] == 2 and s["model"] == "fake-gpt"]
    assert mine, listed
    row = mine[0]
    assert row["main_turns"] == 2 and row["ended_at"] is None and row["end_reason"] is None
    assert row["mean_score"] is None and row["policy_version"] is None
    assert dt.datetime.fromisoformat(row["started_at"].replace("Z", "+00:00"))
    older = api.ok("GET", f"/api/sessions?before={row['started_at_ms']}")["sessions"]
    assert row["id"] not in [s["id"] for s in older]
    api.error("GET", "/api/sessions?limit=0", status=400, code="bad_request")
    api.error("GET", "/api/sessions?limit=many", status=400, code="bad_request")

    detail = api.ok("GET", f"/api/sessions/{row['id']}")
    assert detail["session"]["id"] == row["id"] and detail["session"]["main_turns"] == 2
    first, second = detail["turns"]
    assert (first["turn_index"], second["turn_index"]) == (0, 1)
    assert first["turn_type"] == "main" and first["status"] == "complete"
    assert first["client_dialect"] == "openai" and first["model"] == "fake-gpt"
    assert first["injected_skills"] == ["weather-briefing"]
    assert first["request"]["messages"][-1]["content"] == QUERIES["weather-briefing"]
    assert first["response"]["choices"][0]["message"]["content"]
    assert first["score"] is None and first["policy_version"] is None
    assert isinstance(first["latency_ms"], (int, float))
    api.error("GET", "/api/sessions/nonexistent-session-id", status=404, code="not_found")


def test_skills_are_listed_searched_and_shown(served):
    _, api, skills = served
    listed = api.ok("GET", "/api/skills")
    names = sorted(s["name"] for s in listed["skills"])
    assert names == ["email-drafting", "git-rebase-helper", "kubernetes-debugging", "sql-tuning",
                     "waiting-review", "weather-briefing"]
    assert listed["problems"] == []
    sql = next(s for s in listed["skills"] if s["name"] == "sql-tuning")
    assert (sql["status"], sql["origin"], sql["category"]) == ("active", "user", "coding")
    for key in ["description", "updated_at", "uses", "last_used_at", "mean_score", "baseline", "effect"]:
        assert key in sql, key
    assert api.ok("GET", "/api/skills?q=explain%20PLAN")["skills"][0]["name"] == "sql-tuning"
    assert [s["name"] for s in api.ok("GET", "/api/skills?status=pending")["skills"]] == ["waiting-review"]
    api.error("GET", "/api/skills?status=sleeping", status=400, code="bad_request")

    shown = api.ok("GET", "/api/skills/waiting-review")
    assert shown["markdown"] == PENDING_SKILL
    assert shown["body"] == "Count the zeppelins twice.\n"
    assert shown["front_matter"]["evolution_id"] == "ev-42"
    assert shown["provenance"]["evolution_id"] == "ev-42" and shown["provenance"]["session_id"] == "s-42"
    assert shown["path"] == str(skills / "waiting-review" / "SKILL.md")
    assert shown["history"] == [] and shown["usage"]["uses"] == 0
    assert api.ok("GET", "/api/skills/sql-tuning")["provenance"] is None
    for bad in ["Bad_Name", "..%2F..%2Fetc", "a%20b", "UPPER"]:
        api.error("GET", f"/api/skills/{bad}", status=400, code="bad_request")
    api.error("GET", "/api/skills/no-such-skill", status=404, code="not_found")


def test_an_edit_changes_the_file_and_a_broken_one_changes_nothing(served, fake):
    srv, api, skills = served
    path = skills / "email-drafting" / "SKILL.md"
    before = path.read_text("utf-8")
    for broken in ["no front matter at all",
                   "---\nname: email-drafting\n---\nno description\n",
                   "---\nname: other-name\ndescription: x\n---\nbody\n",
                   "---\nname: [unclosed\ndescription: x\n---\n"]:
        err = api.error("PUT", "/api/skills/email-drafting", {"markdown": broken}, status=422, code="invalid")
        assert err["fields"]["markdown"], err
        assert path.read_text("utf-8") == before
    api.error("PUT", "/api/skills/email-drafting", {"text": "x"}, status=400, code="bad_request")
    api.error("PUT", "/api/skills/email-drafting", raw=b"{not json", status=400, code="bad_request")

    marker = uid()
    text = ("---\nname: email-drafting\ndescription: Draft professional email replies to a manager, "
            f"colleague or customer.\ncategory: communication\n---\n# kept as written\nSign every draft {marker}.\n")
    edited = api.ok("PUT", "/api/skills/email-drafting", {"markdown": text})
    assert path.read_text("utf-8") == text
    assert edited["markdown"] == text and marker in edited["body"]
    assert [e["kind"] for e in edited["history"]] == ["edited"]
    # The proxy injects the new text from the next request on.
    chat(srv, QUERIES["email-drafting"], f"edit-{uid()}")
    system = upstream_system_text(fake.wait_marker(marker).body, "openai")
    assert "email-drafting" in injected_names(system)


def test_disable_enable_approve_reject_delete(served, fake):
    srv, api, skills = served
    disabled = api.ok("POST", "/api/skills/weather-briefing/disable", {"reason": "no weather talk"})
    assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "no weather talk")
    text = (skills / "weather-briefing" / "SKILL.md").read_text("utf-8")
    assert "status: disabled" in text and "disabled_reason: no weather talk" in text
    api.error("POST", "/api/skills/weather-briefing/disable", status=409, code="conflict")
    enabled = api.ok("POST", "/api/skills/weather-briefing/enable")
    assert enabled["status"] == "active" and enabled["disabled_reason"] is None
    assert "status:" not in (skills / "weather-briefing" / "SKILL.md").read_text("utf-8")
    assert [e["kind"] for e in enabled["history"]] == ["disabled", "enabled"]
    api.error("POST", "/api/skills/weather-briefing/enable", status=409, code="conflict")
    api.error("POST", "/api/skills/weather-briefing/approve", status=409, code="conflict")

    approved = api.ok("POST", "/api/skills/waiting-review/approve")
    assert approved["status"] == "active"
    assert "status:" not in (skills / "waiting-review" / "SKILL.md").read_text("utf-8")
    history = srv.mc.json("skills", "history", "waiting-review", "--json")
    assert [(e["event"], e["by"]) for e in history["events"]] == [("approved", "user")]

    write_skill(skills, "second-review", "", "", raw=PENDING_SKILL.replace("waiting-review", "second-review"))
    wait_until(lambda: api.call("GET", "/api/skills/second-review")[0] == 200, 10, 0.2,
               "the watcher to load the new skill")
    rejected = api.ok("POST", "/api/skills/second-review/reject")
    assert rejected["rejected"] == "second-review"
    assert not (skills / "second-review").exists()

    deleted = api.ok("DELETE", "/api/skills/kubernetes-debugging")
    assert deleted == {"deleted": "kubernetes-debugging", "message": deleted["message"]}
    assert not (skills / "kubernetes-debugging").exists()
    trash = srv.mc.home / "trash" / "skills"
    kept = sorted(p.name.rsplit("-", 2)[0] for p in trash.iterdir())
    assert kept == ["kubernetes-debugging", "second-review"]
    assert all((p / "SKILL.md").is_file() for p in trash.iterdir())
    api.error("DELETE", "/api/skills/kubernetes-debugging", status=404, code="not_found")
    api.error("POST", "/api/skills/Not_A_Slug/disable", status=400, code="bad_request")


def test_a_disabled_skill_is_no_longer_injected(served, fake):
    srv, api, _ = served
    api.ok("POST", "/api/skills/git-rebase-helper/disable")
    marker = uid()
    chat(srv, f"{QUERIES['git-rebase-helper']} {marker}", f"rebase-{uid()}")
    system = upstream_system_text(fake.wait_marker(marker).body, "openai")
    assert "git-rebase-helper" not in injected_names(system)
    api.ok("POST", "/api/skills/git-rebase-helper/enable")
    marker = uid()
    chat(srv, f"{QUERIES['git-rebase-helper']} {marker}", f"rebase-{uid()}")
    system = upstream_system_text(fake.wait_marker(marker).body, "openai")
    assert "git-rebase-helper" in injected_names(system)


def test_training_and_schedule(served):
    _, api, _ = served
    training = api.ok("GET", "/api/training")
    assert training["mode"] == "auto" and training["trains"] is False
    assert training["summary"]["steps"] == 0 and training["summary"]["pending_turns"] == 0
    assert training["summary"]["batch_size"] >= 1 and training["summary"]["last_step_at"] is None
    assert training["steps"] == [] and training["checkpoints"] == []

    status = api.ok("GET", "/api/schedule")
    assert status["state"] in {"waiting", "window_open", "working", "pausing"}
    today = dt.date.today().isoformat()
    timeline = api.ok("GET", f"/api/schedule/timeline?date={today}")
    assert timeline["date"] == today and "windows" in timeline and "sleep" in timeline
    api.error("GET", "/api/schedule/timeline?date=someday", status=400, code="bad_request")

    until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).replace(microsecond=0)
    paused = api.ok("POST", "/api/schedule/pause", {"until": until.isoformat().replace("+00:00", "Z")})
    assert paused["paused_until"]
    wait_until(lambda: api.ok("GET", "/api/overview")["paused_until"], what="the pause in the overview")
    api.error("POST", "/api/schedule/pause", {"until": "soon"}, status=400, code="bad_request")
    api.ok("POST", "/api/schedule/pause", {"until": None})
    wait_until(lambda: api.ok("GET", "/api/overview")["paused_until"] is None, what="the resume")

    # The curator is the one worker in auto mode without the training service: a window opens.
    assert api.ok("POST", "/api/training/now") == {"status": "window opened"}
    assert api.ok("POST", "/api/schedule/train-now") == {"status": "window opened"}


def test_training_now_without_any_worker_is_a_conflict(proxies):
    srv = proxies.start("openai", {"curator.enabled": False}, name="no-worker")
    err = Api(srv).error("POST", "/api/training/now", status=409, code="conflict")
    assert "nothing to run" in err["message"]


def test_settings_validation_refuses_bad_values_and_writes_nothing(served):
    srv, api, _ = served
    config = srv.mc.home / "config.toml"
    before = config.read_bytes()
    secrets = srv.mc.home / "secrets.toml"
    secrets_before = secrets.read_bytes() if secrets.exists() else None
    settings = api.ok("GET", "/api/settings")
    assert settings["values"]["proxy.port"] == srv.port
    assert settings["values"]["notifications.skill_learned"] is True
    assert settings["values"]["notifications.training_finished"] is True
    assert settings["values"]["notifications.errors"] is True
    assert "upstream.api_key" not in settings["values"]
    assert settings["secrets"]["upstream.api_key"]["set"] is True
    assert settings["secrets"]["upstream.api_key"]["store"] == "file"
    assert settings["secrets"]["upstream.api_key"]["masked"] == f"{UPSTREAM_KEY[:4]}…{UPSTREAM_KEY[-4:]}"
    presets = {p["id"]: p for p in settings["presets"]}
    assert set(presets) == {"openai", "anthropic", "openrouter", "kimi", "qwen", "ollama", "custom"}
    assert presets["ollama"]["base_url"] == "http://127.0.0.1:11434/v1"
    assert presets["anthropic"]["api"] == "anthropic"
    assert settings["calendars"] == [] and isinstance(settings["restart_required"], list)

    err = api.error("PUT", "/api/settings", {
        "values": {"skills.top_k": 0, "proxy.port": 70000, "mode": "fast", "skills.topk": 3,
                   "scheduler.sleep_start": "25:99", "notifications.errors": "maybe",
                   "upstream.base_url": "ftp://nowhere", "skills.review": "manual"},
        "secrets": {"upstream.api_key": "two\nlines", "upstream.model": "x"},
    }, status=422, code="invalid")
    assert set(err["fields"]) == {"skills.top_k", "proxy.port", "mode", "skills.topk",
                                  "scheduler.sleep_start", "notifications.errors", "upstream.base_url",
                                  "upstream.api_key", "upstream.model"}, err
    assert "skills_only" in err["fields"]["mode"]
    assert config.read_bytes() == before
    assert (secrets.read_bytes() if secrets.exists() else None) == secrets_before
    assert srv.mc.config_get("skills.review") == "auto"
    api.error("PUT", "/api/settings", {"values": {"upstream.api_key": "sk-in-the-wrong-place"}},
              status=422, code="invalid")
    api.error("PUT", "/api/settings", {"colors": {}}, status=400, code="bad_request")
    assert config.read_bytes() == before


def test_settings_are_saved_applied_live_and_keys_never_reach_config_toml(served, fake):
    srv, api, _ = served
    key = f"sk-settings-{uid()}-abcdef"
    events = EventStream(srv, api.token)
    try:
        saved = api.ok("PUT", "/api/settings", {
            "values": {"skills.top_k": 1, "notifications.skill_learned": False, "session.idle_timeout_minutes": 45},
            "secrets": {"prm.api_key": key},
        })
        assert sorted(saved["applied"]) == ["notifications.skill_learned", "skills.top_k"]
        assert {"session.idle_timeout_minutes", "prm.api_key"} <= set(saved["restart_required"])
        changed = events.wait_for("settings_changed")
        assert set(changed["keys"]) == {"skills.top_k", "notifications.skill_learned",
                                        "session.idle_timeout_minutes", "prm.api_key"}
    finally:
        events.close()
    text = (srv.mc.home / "config.toml").read_text("utf-8")
    assert key not in text and "top_k = 1" in text and "skill_learned = false" in text
    assert key in (srv.mc.home / "secrets.toml").read_text("utf-8")
    assert key not in json.dumps(api.ok("GET", "/api/settings"))
    assert api.ok("GET", "/api/settings")["secrets"]["prm.api_key"]["masked"] == f"{key[:4]}…{key[-4:]}"
    assert srv.mc.config_get("skills.top_k") == "1"
    assert key not in srv.log()
    # top_k applies to the very next request: one skill at most.
    marker = uid()
    chat(srv, f"{QUERIES['sql-tuning']} and {QUERIES['email-drafting']} {marker}", f"topk-{uid()}")
    assert len(injected_names(upstream_system_text(fake.wait_marker(marker).body, "openai"))) == 1
    # Removing the key and restoring the default.
    api.ok("PUT", "/api/settings", {"values": {"skills.top_k": None}, "secrets": {"prm.api_key": None}})
    assert api.ok("GET", "/api/settings")["secrets"]["prm.api_key"]["set"] is False
    assert "top_k" not in (srv.mc.home / "config.toml").read_text("utf-8")


class EventStream:
    """`GET /api/events` read line by line in a thread."""

    def __init__(self, srv: ProxyServer, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        self.conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {token}"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        assert self.response.getheader("content-type", "").startswith("text/event-stream")
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        kind = None
        try:
            for raw in self.response:
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind:
                    with self.lock:
                        self.events.append((kind, json.loads(line[5:])))
        except (OSError, ValueError, AttributeError):
            # The test closed the connection: the stream ends here.
            pass

    def wait_for(self, kind: str) -> dict:
        def found():
            with self.lock:
                return next((data for k, data in self.events if k == kind), None)
        data = wait_until(found, 10, 0.05, f"a `{kind}` event")
        assert data["type"] == kind
        return data

    def close(self) -> None:
        self.conn.close()


def test_a_calendar_added_in_the_settings_loads_at_once_and_a_broken_one_is_announced(served, tmp_path):
    srv, api, _ = served
    good = tmp_path / "work.ics"
    good.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//MetaClaw tests//api//EN\nBEGIN:VEVENT\n"
                    "UID:api-standup@metaclaw.test\nDTSTAMP:20200101T000000Z\nDTSTART:20200101T100000Z\n"
                    "DTEND:20200101T103000Z\nRRULE:FREQ=DAILY\nSUMMARY:API standup\nEND:VEVENT\n"
                    "END:VCALENDAR\n", "utf-8")
    missing = tmp_path / "gone.ics"
    events = EventStream(srv, api.token)
    try:
        saved = api.ok("PUT", "/api/settings", {"values": {"scheduler.calendars": [str(good), str(missing)]}})
        assert saved["applied"] == ["scheduler.calendars"]
        needed = events.wait_for("action_needed")
        assert needed["kind"] == "calendar" and "gone.ics" in needed["message"]
    finally:
        events.close()

    def loaded():
        calendars = {c["source"]: c for c in api.ok("GET", "/api/settings")["calendars"]}
        return calendars if calendars[str(good)]["status"] == "ok" else None
    calendars = wait_until(loaded, 10, 0.1, "the calendars to load")
    assert calendars[str(good)]["detail"] == "1 events"
    assert calendars[str(missing)]["status"] == "broken"
    assert "API standup" in json.dumps(api.ok("GET", "/api/schedule/timeline"))
    api.ok("PUT", "/api/settings", {"values": {"scheduler.calendars": None}})
    wait_until(lambda: api.ok("GET", "/api/schedule")["calendars"] == [], 10, 0.1, "the calendars to go")


def test_events_take_the_admin_token_and_announce_a_refused_upstream_key(served):
    srv, api, _ = served
    status, _, _ = api.call("GET", "/api/events", token="wrong")
    assert status == 401
    events = EventStream(srv, api.token)
    try:
        client = srv.openai()
        with pytest.raises(Exception):
            client.chat.completions.create(model="fault-401", max_tokens=8,
                                           messages=[{"role": "user", "content": "hi"}])
        needed = events.wait_for("action_needed")
        assert needed["kind"] == "upstream_auth" and "401" in needed["message"]
    finally:
        events.close()
    last = api.ok("GET", "/api/overview")["last_event"]
    assert last["type"] in {"action_needed", "schedule_changed", "settings_changed"}


def test_dashboard_command_and_ui_headers(served, tmp_path):
    srv, api, _ = served
    url = srv.mc.run("dashboard", "--print-url").stdout.strip()
    assert url == f"http://127.0.0.1:{srv.port}/ui/#token={api.token}"
    status, headers, body = http_request(srv.port, "GET", "/ui/")
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    if (Path(__file__).resolve().parent.parent / "ui" / "dist" / "index.html").is_file():
        assert status == 200 and b"<html" in body.lower()
    else:
        assert status == 404 and b"npm --prefix ui" in body
    status, headers, _ = http_request(srv.port, "GET", "/ui")
    assert status in (301, 308) and headers["location"] == "/ui/"
    status, headers, _ = http_request(srv.port, "GET", "/ui/no-such-file.js")
    assert status == 404 and headers["content-security-policy"] == CSP

    nobody = MetaClaw(tmp_path / "nobody")
    nobody.config_set("proxy.port", srv.port + 1 if srv.port < 65535 else srv.port - 1)
    out = nobody.run("dashboard", "--print-url", check=False)
    assert out.returncode != 0 and "not running" in out.stderr and "token" not in out.stdout


@pytest.fixture()
def secret_service(tmp_path):
    """A private session bus with gnome-keyring's Secret Service, unlocked."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (.ci/run installs the dbus and gnome-keyring packages)")
    home = tmp_path / "desktop-home"
    runtime = tmp_path / "runtime"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
           "XDG_DATA_HOME": str(home / ".local" / "share")}
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = bus.stdout.readline().strip()
    assert address.startswith("unix:"), address
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    keyring = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                               env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    keyring.stdin.write(b"test-keyring-password")
    keyring.stdin.close()
    yield {"DBUS_SESSION_BUS_ADDRESS": address, "METACLAW_KEYCHAIN": "on"}
    for proc in (keyring, bus):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_keys_go_to_a_real_secret_service_when_one_answers(secret_service, fake, tmp_path):
    mc = MetaClaw(tmp_path / "home", env_extra=secret_service)
    mc.configure(upstream_settings(fake, "openai"))
    # The upstream key went to the keychain: no file holds it.
    assert not (mc.home / "secrets.toml").exists()
    assert fake.api_key not in (mc.home / "config.toml").read_text("utf-8")
    shown = mc.json("config", "get", "upstream.api_key", "--json")
    assert shown["source"] == "secret_store" and shown["value"] == f"{fake.api_key[:4]}…{fake.api_key[-4:]}"
    # Without the keychain the key is not there at all.
    assert MetaClaw(mc.home).json("config", "get", "upstream.api_key", "--json")["source"] == "default"

    srv = ProxyServer(mc, "keychain", secret_service).start()
    try:
        api = Api(srv)
        settings = api.ok("GET", "/api/settings")
        assert settings["secrets"]["upstream.api_key"] == {
            "set": True, "masked": shown["value"], "store": "keychain"}
        assert settings["secrets"]["prm.api_key"]["store"] == "keychain"
        judge_key = f"sk-judge-{uid()}-0123456789"
        api.ok("PUT", "/api/settings", {"secrets": {"prm.api_key": judge_key}})
        assert not (mc.home / "secrets.toml").exists()
        assert judge_key not in (mc.home / "config.toml").read_text("utf-8")
        assert api.ok("GET", "/api/settings")["secrets"]["prm.api_key"]["store"] == "keychain"
        # The proxy answers with the key it read from the keychain.
        reply = srv.openai().chat.completions.create(
            model="fake-gpt", max_tokens=8, messages=[{"role": "user", "content": "keychain check"}])
        assert reply.choices[0].message.content
    finally:
        srv.stop()
