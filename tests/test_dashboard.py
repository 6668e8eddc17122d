"""The dashboard (ui/dist, served by `metaclaw serve` at /ui/) end to end in
a real headless Chromium driven by Playwright, under the CSP the server
sends, against data the real engine produced:

* `rl` mode with the fake Tinker service (`fake_tinker.py`) and the scripted
  judge of `test_rl.py`: finished sessions are scored and trained on, so the
  training page has real steps and checkpoints;
* `skills.review = manual` with a fake evolver (the scripted judge of
  `test_prm.py` answering with a skill): a failed session leaves a skill
  pending review;
* sleep hours, a daily meeting in a real `.ics` file (both away from the
  time the test runs), and a window opened from the page with "Train now",
  for the schedule timeline.

The browser opens the dashboard the way `metaclaw dashboard` does (the admin
token in the URL fragment), then: searches, opens, edits (the SKILL.md on
disk changes), disables and re-enables a skill; approves the pending one;
opens a session and its turns (and sees a new session arrive live); sees the
reward chart and the timeline render; pauses and resumes; saves a setting
and gets a field error for a bad one; and checks that a skill whose text
holds `<script>` and `onerror=` runs nothing. A missing or wrong token shows
the refusal page and the API answers 401. Every page must load without a
CSP violation or a script error. Screenshots go to tests/artifacts/ and the
README's to ui/screenshot-dashboard.png.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness import (REPO, copy_reference_skills, http_request, make_test_skills, uid, wait_until,
                     write_skill)
from test_evolver import EVOLVER_KEY, SKILL as EVOLVED_SKILL
from test_prm import FakeJudge
from test_rl import (STEP_DEADLINE, TINKER_KEY, Model, ScriptedJudge, ask, policy_script, rl_settings,
                     session_db_id, trained_steps)
from fake_tinker import FakeTinker

CHROMIUM = Path(os.environ.get("METACLAW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DIST = REPO / "ui" / "dist" / "index.html"
ARTIFACTS = REPO / "tests" / "artifacts"
README_SCREENSHOT = REPO / "ui" / "screenshot-dashboard.png"
# A hang guard for the browser waiting on the page, not a speed threshold.
UI_DEADLINE_MS = 20_000

PENDING = "zorblat-meeting-offsets"
XSS_SKILL = "untrusted-markup"
XSS_BODY = """Follow these steps.

<script>window.__xss = 'script'; alert('script')</script>

<img src=x onerror="window.__xss = 'img'; alert('img')">

<iframe src="javascript:window.__xss = 'iframe'"></iframe>

<a href="#" onclick="window.__xss = 'click'">press</a> and [a link](javascript:window.__xss='link')

- a **bold** point
- [the docs](https://example.com/docs)
"""


def quiet_hours() -> tuple[int, int]:
    """(sleep start hour, meeting hour), UTC, both away from now: a sleep or
    meeting trigger holding during the test would open windows by itself."""
    hour = datetime.now(timezone.utc).hour
    return (20, 16) if hour < 12 else (2, 6)


def meeting_ics(hour: int) -> str:
    """A real calendar: a daily one-hour meeting (recurring, so it is there today)."""
    return f"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//MetaClaw tests//dashboard//EN
BEGIN:VEVENT
UID:dashboard-standup@metaclaw.test
DTSTAMP:20200101T000000Z
DTSTART:20200101T{hour:02d}0000Z
DTEND:20200101T{hour + 1:02d}0000Z
RRULE:FREQ=DAILY
SUMMARY:Dashboard standup
END:VEVENT
END:VCALENDAR
"""


# --------------------------------------------------------------------------- the seeded engine

class Seeded:
    """One `metaclaw serve` with everything the pages show, and what was sent."""

    def __init__(self, srv: Any, skills_dir: Path, marker: str, sessions: dict[str, str],
                 sleep_hour: int = 0, meeting_hour: int = 0):
        self.srv = srv
        self.sleep_hour = sleep_hour
        self.meeting_hour = meeting_hour
        self.skills_dir = skills_dir
        self.marker = marker
        self.sessions = sessions  # X-Session-Id -> the user's text

    @property
    def token(self) -> str:
        path = self.srv.mc.home / "admin-token"
        assert path.is_file(), f"no admin-token file in {self.srv.mc.home}"
        return path.read_text("utf-8").strip()

    @property
    def dashboard_url(self) -> str:
        # What `metaclaw dashboard` opens: the token after the #, never sent to a server.
        url = self.srv.mc.run("dashboard", "--print-url").stdout.strip()
        assert url == f"{self.srv.url}/ui/#token={self.token}", url
        return url

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """An API call with the admin token, another ``token``, or none (``""``)."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, _, raw = http_request(self.srv.port, method, path, data, headers)
        return status, json.loads(raw) if raw else None

    def skill_status(self, name: str) -> str | None:
        for s in self.srv.mc.json("skills", "list", "--json"):
            if s["name"] == name:
                return s["status"]
        return None


@pytest.fixture(scope="module")
def seeded(module_proxies, tmp_path_factory) -> Iterator[Seeded]:
    if not DIST.is_file():
        pytest.fail(f"the dashboard is not built ({DIST} missing): run `npm --prefix ui ci && npm --prefix ui run build`")
    with ExitStack() as stack:
        yield seed(module_proxies, tmp_path_factory.mktemp("dashboard"), stack)


def seed(module_proxies: Any, tmp: Path, stack: ExitStack) -> Seeded:
    """Starts the fakes (stopped by ``stack``) and the server, and lets the
    engine produce sessions, scores, training steps and a pending skill."""
    tinker = FakeTinker(api_key=TINKER_KEY).start()
    stack.callback(tinker.stop)
    tinker.try_again_polls = 0
    judge = ScriptedJudge()
    stack.callback(judge.stop)
    evolver = stack.enter_context(FakeJudge([(200, json.dumps(EVOLVED_SKILL))]))
    model = Model(tmp / "qwen-like")
    tinker.script_samples(policy_script(model))

    # A real bank (what the README picture shows) plus the disjoint test skills.
    skills = copy_reference_skills(tmp / "skills")
    make_test_skills(skills)
    write_skill(skills, XSS_SKILL, "Untrusted text with markup in it", XSS_BODY, "tests")
    calendar = tmp / "calendar" / "work.ics"
    calendar.parent.mkdir()
    sleep_hour, meeting_hour = quiet_hours()
    calendar.write_text(meeting_ics(meeting_hour), "utf-8")

    settings = {
        "scheduler.timezone": "UTC",
        "scheduler.sleep_start": f"{sleep_hour:02d}:00",
        "scheduler.sleep_end": f"{sleep_hour + 2:02d}:00",
        "scheduler.idle_threshold_minutes": 600,
        "scheduler.calendars": str(calendar),
        **rl_settings(tinker, judge, model, "rl"),
    }
    srv = module_proxies.start("openai", settings, name="dashboard", skills=skills, env_extra={"DISPLAY": ""})
    m = uid()
    # Two rounds of finished sessions, judged and trained on. A step trains
    # on turns the current policy sampled, so the second round is sent after
    # the first step: two steps, two points on the chart.
    rounds = [
        {f"good-weather-{m}": f"GOOD-{m} what is the weather in Paris?",
         f"bad-{m}": f"BAD-{m} weather in Oslo, and be quick"},
        {f"good-hello-{m}": f"GOOD-{m} say hello to the dashboard",
         f"plain-{m}": f"Say something plain {m}"},
    ]
    sessions: dict[str, str] = {}
    client = srv.openai()
    for n, batch in enumerate(rounds, start=1):
        for sid, text in batch.items():
            ask(client, sid, text, stream=False, done=True)
        sessions.update(batch)
        wait_until(lambda: len(trained_steps(srv)) >= n, STEP_DEADLINE, 0.3, f"{n} trained step(s)")

    # Then the evolver in review mode, and the curator (a background worker,
    # so "Train now" has something to run in the window it opens); both are
    # read at start: a restart, which also shows the history survives one.
    # Every evolution makes its session a support set, kept out of
    # training, so the evolver starts after the steps.
    srv.stop()
    srv.mc.configure({
        "evolver.model": "evolver-model",
        "evolver.base_url": evolver.base_url,
        "evolver.api_key": EVOLVER_KEY,
        "evolver.timeout_secs": 10,
        "evolver.enabled": True,
        "skills.review": "manual",
        "curator.enabled": True,
    })
    srv.start()
    failed = f"bad-zorblat-{m}"
    sessions[failed] = f"BAD-{m} when is the zorblat meeting with the Singapore team?"
    ask(srv.openai(), failed, sessions[failed], stream=False, done=True)
    wait_until(lambda: Seeded(srv, skills, m, sessions).skill_status(PENDING) == "pending", STEP_DEADLINE, 0.3,
               f"the evolved skill {PENDING} pending review")
    return Seeded(srv, skills, m, sessions, sleep_hour, meeting_hour)


# --------------------------------------------------------------------------- the browser

class Watch:
    """What a page did that it must not: dialogs, script errors, CSP violations."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.unauthorized: list[str] = []

    def attach(self, page: Any) -> None:
        def on_dialog(d: Any) -> None:
            self.dialogs.append(f"{d.type}: {d.message}")
            d.dismiss()

        def on_console(msg: Any) -> None:
            if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
                self.errors.append(f"console: {msg.text}")
            if "Content Security Policy" in msg.text:
                self.errors.append(f"CSP: {msg.text}")

        def on_response(r: Any) -> None:
            if "/api/" in r.url and r.status == 401:
                self.unauthorized.append(r.url)

        page.on("dialog", on_dialog)
        page.on("console", on_console)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("response", on_response)

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"the page opened dialogs: {self.dialogs}"
        assert self.errors == [], "the page logged errors:\n" + "\n".join(self.errors)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt install chromium, or set METACLAW_CHROMIUM)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("the `playwright` Python package is missing (pip install -r tests/requirements.txt)")
    expect.set_options(timeout=UI_DEADLINE_MS)
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="metaclaw-chromium-") as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860}, color_scheme="light", locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(UI_DEADLINE_MS)
        yield context
        context.close()


@pytest.fixture()
def page(browser, seeded):
    """A new tab (its own sessionStorage) with the dashboard open."""
    watch = Watch()
    tab = browser.new_page()
    watch.attach(tab)
    tab.watch = watch
    tab.goto(seeded.dashboard_url)
    ready(tab, r"Skills \(\d+\)")
    yield tab
    watch.assert_clean()
    tab.close()


def ready(page: Any, title: str, state: str = "ready") -> None:
    """Waits until the page's data is in: the title says so (as the desktop test reads it)."""
    from playwright.sync_api import expect
    expect(page).to_have_title(re.compile(rf"^{title} — MetaClaw$"))
    expect(page.locator("body")).to_have_attribute("data-state", state)


def go(page: Any, hash_: str, title: str, state: str = "ready") -> None:
    page.evaluate("h => { location.hash = h }", hash_)
    ready(page, title, state)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# --------------------------------------------------------------------------- tests

def test_a_missing_or_wrong_admin_token_is_refused(browser, seeded):
    from playwright.sync_api import expect
    # The API itself: no token, a wrong one.
    status, body = seeded.api("GET", "/api/overview", token="")
    assert status == 401 and body["error"]["code"] == "unauthorized", body
    status, body = seeded.api("GET", "/api/skills", token="wrong-token-0123456789")
    assert status == 401 and body["error"]["code"] == "unauthorized", body

    watch = Watch()
    tab = browser.new_page()
    watch.attach(tab)
    # No token at all: how to open the dashboard, and no API call made.
    tab.goto(f"{seeded.srv.url}/ui/")
    expect(tab).to_have_title("Open from MetaClaw — MetaClaw")
    expect(tab.get_by_role("heading", level=1)).to_have_text("Open the dashboard from MetaClaw")
    expect(tab.locator("pre code")).to_have_text("metaclaw dashboard")
    assert watch.unauthorized == []

    tab.close()

    # A wrong token (in a new tab: a new page load): the API refuses it (401)
    # and the page says so.
    tab = browser.new_page()
    watch.attach(tab)
    tab.goto(f"{seeded.srv.url}/ui/#token=wrong-token-0123456789")
    expect(tab).to_have_title("Access refused — MetaClaw")
    expect(tab.get_by_role("heading", level=1)).to_have_text("The admin token was refused")
    expect(tab.get_by_role("alert")).to_contain_text("missing or wrong admin token")
    assert watch.unauthorized, "the page made no API call that was refused"
    assert "wrong-token" not in tab.url, f"the token stayed in the address bar: {tab.url}"
    # A refused token is forgotten: a reload asks for a new one.
    assert tab.evaluate("sessionStorage.length") == 0
    tab.reload()
    expect(tab).to_have_title("Open from MetaClaw — MetaClaw")
    shot(tab, "refused")
    # Pasting a right address into the same tab signs in (and the token
    # leaves the address bar again).
    tab.evaluate("t => { location.hash = 'token=' + t }", seeded.token)
    ready(tab, r"Skills \(\d+\)")
    assert seeded.token not in tab.url, tab.url
    tab.close()
    watch.assert_clean()


def test_skills_search_open_edit_disable(page, seeded):
    from playwright.sync_api import expect
    # The token left the address bar; the header shows the live overview.
    assert "#token" not in page.url and seeded.token not in page.url, page.url
    expect(page.locator(".overview")).to_contain_text("rl")
    expect(page.locator(".overview")).to_contain_text("pending")
    expect(page.locator(".conn")).to_have_text("Live")

    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # Search (name, description and body, on the engine).
    page.get_by_label("Search skills").fill("kubectl pods")
    ready(page, r"Skills \(1\)")
    rows = page.locator("table.skills-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-skill", "kubernetes-debugging")
    assert "q=kubectl" in page.url

    # Open it from the keyboard.
    page.get_by_role("link", name="kubernetes-debugging").focus()
    page.keyboard.press("Enter")
    ready(page, "Skill kubernetes-debugging")
    expect(page.locator("article.markdown")).to_contain_text("Check kubectl describe events before restarting pods.")
    expect(page.locator("aside")).to_contain_text("SKILL.md")

    # Edit the whole SKILL.md; the file on disk changes.
    path = seeded.skills_dir / "kubernetes-debugging" / "SKILL.md"
    before = path.read_text("utf-8")
    page.get_by_role("button", name="Edit").click()
    editor = page.get_by_label("SKILL.md")
    expect(editor).to_be_focused()
    assert editor.input_value() == before
    added = f"Also check the node's memory pressure ({seeded.marker})."
    editor.fill(before.rstrip("\n") + f"\n\n{added}\n")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("article.markdown")).to_contain_text(added)
    assert added in path.read_text("utf-8")

    # A file that cannot be a skill is refused, with the reason on the field.
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("SKILL.md").fill("no front matter at all")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("SKILL.md")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-error")).not_to_be_empty()
    assert added in path.read_text("utf-8"), "a refused edit must not be written"
    page.get_by_role("button", name="Cancel").click()

    # Disable, then enable.
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("h1 .badge")).to_have_text("disabled")
    assert seeded.skill_status("kubernetes-debugging") == "disabled"
    assert "status: disabled" in path.read_text("utf-8")
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("h1 .badge")).to_have_text("active")
    assert seeded.skill_status("kubernetes-debugging") == "active"

    # Delete asks first (a modal dialog); Cancel keeps the skill.
    doomed = seeded.skills_dir / "git-rebase-helper"
    go(page, "#/skills/git-rebase-helper", "Skill git-rebase-helper")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete git-rebase-helper?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert doomed.is_dir()
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    ready(page, r"Skills \(\d+\)")
    expect(page.locator('tr[data-skill="git-rebase-helper"]')).to_have_count(0)
    assert not (doomed / "SKILL.md").exists()

    # An unknown skill: the engine's error, shown as it is.
    go(page, "#/skills/no-such-skill", "Skill no-such-skill: error", state="error")
    expect(page.get_by_role("alert")).to_contain_text("no skill named `no-such-skill`")


def test_a_pending_skill_is_approved(page, seeded):
    from playwright.sync_api import expect
    go(page, "#/skills?status=pending", r"Skills \(1\)")
    row = page.locator(f'tr[data-skill="{PENDING}"]')
    expect(row).to_contain_text("pending review")
    expect(row).to_contain_text("evolved")
    row.get_by_role("link").click()
    ready(page, f"Skill {PENDING}")
    expect(page.locator(".alert-info")).to_contain_text("waits for your review")
    expect(page.locator("article.markdown")).to_contain_text("ZQX-OFFSET-RULE")
    # Provenance: the session it was evolved from links to that session.
    expect(page.locator("aside a[href^='#/sessions/']")).to_have_count(1)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("h1 .badge")).to_have_text("active")
    assert seeded.skill_status(PENDING) == "active"
    expect(page.locator(".history")).to_contain_text("approved")


def test_untrusted_skill_text_runs_nothing(page, seeded):
    from playwright.sync_api import expect
    page.evaluate("() => { window.__xss = undefined }")
    go(page, f"#/skills/{XSS_SKILL}", f"Skill {XSS_SKILL}")
    article = page.locator("article.markdown")
    # The markup is shown as text, and none of it became elements.
    expect(article).to_contain_text("<script>window.__xss = 'script'; alert('script')</script>")
    expect(article).to_contain_text('<img src=x onerror="window.__xss = \'img\'; alert(\'img\')">')
    expect(article.locator("li strong")).to_have_text("bold")
    assert article.locator("script, img, iframe, [onclick], [onerror]").count() == 0
    js_link = article.get_by_role("link", name="a link")
    assert js_link.count() == 0 or js_link.get_attribute("href") is None
    docs = article.get_by_role("link", name="the docs")
    assert docs.get_attribute("rel") == "noopener noreferrer" and docs.get_attribute("target") == "_blank"
    # Clicking what is left runs nothing either.
    article.get_by_text("press").click()
    # The whole document: no script from the skill ever ran.
    assert page.evaluate("() => window.__xss === undefined"), page.evaluate("() => String(window.__xss)")
    assert page.evaluate("() => document.querySelectorAll('script:not([src])').length") == 0
    assert page.watch.dialogs == []


def test_sessions_and_their_turns(page, seeded):
    from playwright.sync_api import expect
    go(page, "#/sessions", r"Sessions \(\d+\+?\)")
    rows = page.locator("table.sessions-table tbody tr")
    assert rows.count() >= len(seeded.sessions)

    # Open the session of "say hello" and read its turn.
    sid = next(s for s in seeded.sessions if s.startswith("good-hello-"))
    session_id = session_db_id(seeded.srv, sid)
    page.locator(f'tr[data-session="{session_id}"] a').click()
    ready(page, r"Session \S+ \(1 turn\)")
    turn = page.locator("li.turn").first
    expect(turn.locator(".bubble-user")).to_contain_text(seeded.sessions[sid])
    expect(turn.locator(".bubble-assistant")).to_contain_text("Plain answer from policy v")
    expect(turn).to_contain_text("+1 good")
    expect(turn.locator(".judge")).to_contain_text("Scripted verdict.")
    # The JSON is built when it is opened.
    expect(turn.locator("pre.json")).to_have_count(0)
    turn.get_by_text("Request JSON").click()
    expect(turn.locator("pre.json")).to_contain_text(seeded.marker)
    shot(page, "session")

    # A weather session had the weather skill injected; the chip links to it.
    wid = next(s for s in seeded.sessions if s.startswith("good-weather-"))
    go(page, f"#/sessions/{session_db_id(seeded.srv, wid)}", r"Session \S+ \(1 turn\)")
    expect(page.locator("li.turn .chips")).to_contain_text("weather-briefing")
    expect(page.locator("li.turn .bubble-assistant")).to_contain_text("tool call get_weather")

    # Live: a new conversation appears in the list without a reload.
    go(page, "#/sessions", r"Sessions \(\d+\+?\)")
    n = rows.count()
    new_sid = f"live-{uid()}"
    ask(seeded.srv.openai(), new_sid, f"Live arrival {seeded.marker}", stream=True)
    live_id = session_db_id(seeded.srv, new_sid)
    expect(page.locator(f'tr[data-session="{live_id}"]')).to_have_count(1)
    assert rows.count() == n + 1
    shot(page, "sessions")


def test_training_chart_and_checkpoints(page, seeded):
    from playwright.sync_api import expect
    steps = trained_steps(seeded.srv)
    go(page, "#/training", r"Training \(\d+ steps\)")
    title = page.title()
    shown = int(re.search(r"\((\d+) steps\)", title).group(1))
    assert shown >= len(steps) >= 2, (title, steps)
    chart = page.locator("figure.chart")
    expect(chart).to_have_attribute("data-rendered", "true")
    assert int(chart.get_attribute("data-points")) >= 2
    canvas = chart.locator("canvas")
    expect(canvas).to_have_count(1)
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100, box
    # The canvas has drawn pixels (uPlot ran), read back inside the page.
    painted = page.evaluate("""() => {
        const c = document.querySelector('figure.chart canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
    }""")
    assert painted > 500, painted
    expect(page.locator("table.steps-table tbody tr")).to_have_count(shown)
    expect(page.locator("table.steps-table")).to_contain_text("no window")
    expect(page.get_by_text("metaclaw-policy-000001").first).to_be_visible()
    shot(page, "training")


def test_schedule_timeline_pause_resume_and_train_now(page, seeded):
    from playwright.sync_api import expect
    go(page, "#/schedule", r"Schedule \(today\)")
    timeline = page.locator("svg.timeline")
    expect(timeline).to_be_visible()
    expect(timeline.locator("rect.tl-sleep")).to_have_count(1)
    expect(timeline.locator("rect.tl-meeting")).to_have_count(1)
    expect(timeline.locator("rect.tl-meeting title")).to_contain_text("Dashboard standup")
    h = seeded.meeting_hour
    expect(page.locator(".day-list").filter(has_text="Meetings")).to_contain_text(
        f"{h:02d}:00–{h + 1:02d}:00 Dashboard standup")
    s = seeded.sleep_hour
    expect(page.locator(".day-list").filter(has_text="Sleep hours")).to_contain_text(f"{s:02d}:00–{s + 2:02d}:00")

    # Pause for an hour: the engine is paused, the page and the header say so.
    page.get_by_role("button", name="Pause for 1 hour").click()
    expect(page.locator(".status-panel")).to_contain_text("Paused until")
    status, body = seeded.api("GET", "/api/schedule")
    assert status == 200 and body["paused_until"], body
    expect(page.locator(".overview")).to_contain_text("Paused")
    page.get_by_role("button", name="Resume now").click()
    expect(page.get_by_role("button", name="Resume now")).to_have_count(0)
    status, body = seeded.api("GET", "/api/schedule")
    assert body["paused_until"] is None, body

    # Train now opens a window; the timeline shows it (live, from the events).
    page.get_by_role("button", name="Train now").click()
    expect(page.locator(".toast").filter(has_text="window")).to_have_count(1)
    expect(timeline.locator("rect.tl-window")).not_to_have_count(0)
    expect(page.locator(".day-list").filter(has_text="Windows")).to_contain_text("manual")
    shot(page, "schedule")


def test_settings_save_and_field_errors(page, seeded):
    from playwright.sync_api import expect
    go(page, "#/settings", "Settings")
    # Keys are write-only: masked, with where they are kept.
    key_field = page.get_by_label("API key", exact=True)
    expect(key_field).to_have_value("")
    expect(page.locator("#settings-provider")).to_contain_text("Set:")
    assert "sk-upstream-test-0123456789abcdef" not in page.content()

    # Each calendar with how it reads.
    expect(page.locator(".calendar-list")).to_contain_text("work.ics")
    expect(page.locator(".calendar-list")).to_contain_text("ok")

    # A bad port: nothing is saved, the message is on the field.
    page.get_by_label("Port").fill("70000")
    page.get_by_label("Skills per request").fill("3")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_label("Port")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#setting-proxy-port-error")).to_contain_text("65535")
    assert seeded.srv.mc.config_get("skills.top_k") != "3"

    page.get_by_label("Port").fill(str(seeded.srv.port))
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".save-result")).to_contain_text("Saved")
    assert seeded.srv.mc.config_get("skills.top_k") == "3"

    # The tray's settings window: the same page without the navigation.
    go(page, "#/settings?window=settings", "Settings")
    page.reload()
    ready(page, "Settings")
    expect(page.locator("nav")).to_have_count(0)
    expect(page.get_by_label("Skills per request")).to_have_value("3")


def test_a_library_of_thousands_is_shown_a_page_at_a_time(browser, proxies):
    """2,000 skills: the table holds a hundred rows until asked for more."""
    from playwright.sync_api import expect
    home = proxies.home("big-library")
    library = home / "skills"
    for i in range(2000):
        write_skill(library, f"bulk-skill-{i:04d}", f"Generated skill number {i} about topic-{i % 40}",
                    f"Step {i}: do the thing for topic-{i % 40}.", f"cat-{i % 7}")
    srv = proxies.start("openai", {}, name="big-library", skills=library, home=home)
    seeded_like = Seeded(srv, library, "", {})
    watch = Watch()
    tab = browser.new_page()
    watch.attach(tab)
    tab.goto(seeded_like.dashboard_url)
    ready(tab, r"Skills \(2,000\)")
    rows = tab.locator("table.skills-table tbody tr")
    expect(rows).to_have_count(100)
    expect(tab.locator(".summary")).to_have_text("2,000 skills; showing the first 100.")
    tab.get_by_role("button", name="Show 100 more").click()
    expect(rows).to_have_count(200)
    # Search narrows on the engine: 50 skills mention topic-7.
    tab.get_by_label("Search skills").fill("topic-7")
    ready(tab, r"Skills \(50\)")
    expect(rows).to_have_count(50)
    expect(tab.get_by_role("button", name=re.compile("Show .* more"))).to_have_count(0)
    # Auto mode with no training service: the training page says what it
    # waits for and where to set it.
    go(tab, "#/training", r"Training \(0 steps\)")
    expect(tab.locator(".empty")).to_contain_text("Waiting for the training service")
    expect(tab.locator(".empty")).to_contain_text("rl.base_url")
    tab.close()
    watch.assert_clean()


def test_readme_screenshot(page, seeded):
    """The README's picture: the skills page with the live header."""
    from playwright.sync_api import expect
    go(page, "#/skills", r"Skills \(\d+\)")
    expect(page.locator("table.skills-table tbody tr").first).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 760})
    page.mouse.move(0, 0)
    page.screenshot(path=str(README_SCREENSHOT))
    shot(page, "skills")
    assert README_SCREENSHOT.stat().st_size > 10_000
