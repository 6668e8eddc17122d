"""The training scheduler end to end: `metaclaw serve` reading real idle time
from an Xvfb display (moved with xdotool), real .ics files, proxy requests,
pause/resume, restart recovery, and the admin API that guards it all."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import MetaClaw, http_request, wait_until

# Idle threshold for these tests: 3 seconds.
FAST = {
    "scheduler.idle_threshold_minutes": 0.05,
    "scheduler.min_window_minutes": 0,
    "scheduler.sleep_start": "",
}


@pytest.fixture(scope="module")
def xvfb():
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: install the {package} package (.ci/run does)")
    for n in range(120 + os.getpid() % 50, 300):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    display = f":{n}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: Path(f"/tmp/.X11-unix/X{n}").exists(), timeout=10)
    yield display
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def move_pointer(display: str) -> None:
    env = {**os.environ, "DISPLAY": display}
    for x, y in ((10, 10), (200, 150)):
        subprocess.run(["xdotool", "mousemove", str(x), str(y)], env=env, check=True)


def status(srv) -> dict:
    out = srv.mc.json("schedule", "status", "--json")
    assert out["running"] is True, out
    return out["status"]


def wait_state(srv, state: str, timeout: float = 15) -> dict:
    last = {}

    def check():
        nonlocal last
        last = status(srv)
        return last if last["state"] == state else None

    try:
        return wait_until(check, timeout=timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(f"state never became {state}; last status: {last}") from None


def start_idle_server(proxies, xvfb, **settings):
    return proxies.start("openai", settings={**FAST, **settings}, env_extra={"DISPLAY": xvfb})


def test_idle_opens_a_window_and_input_closes_it_within_a_second(proxies, xvfb):
    srv = start_idle_server(proxies, xvfb)
    move_pointer(xvfb)
    s = wait_state(srv, "window_open")
    assert s["idle_seconds"]["source"] == "x11-screensaver"
    assert s["window"]["triggers"] == ["idle"]
    assert "window is open" in s["explanation"]

    move_pointer(xvfb)
    moved = time.monotonic()
    s = wait_state(srv, "waiting", timeout=5)
    # Generous: the status command itself takes part of this.
    assert time.monotonic() - moved < 3
    assert "keyboard or mouse used recently" in s["explanation"]

    day = srv.mc.json("schedule", "timeline", "--json")
    closed = [w for w in day["windows"] if w["closed_at_ms"] is not None]
    assert closed and closed[0]["triggers"] == ["idle"]
    assert "you are here" in closed[0]["close_reason"]


def test_a_proxy_request_closes_the_window(proxies, xvfb):
    srv = start_idle_server(proxies, xvfb)
    wait_state(srv, "window_open")
    srv.openai().chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    s = wait_state(srv, "waiting", timeout=5)
    assert "your agent made a request" in s["explanation"]
    assert s["last_request"] is not None


def test_pause_resume_and_train_now(proxies, xvfb):
    # Without the curator there is no background worker in skills_only mode.
    srv = start_idle_server(proxies, xvfb, **{"curator.enabled": False})
    wait_state(srv, "window_open")
    out = srv.mc.run("schedule", "pause", "--for", "1h").stdout
    assert "paused until" in out
    s = wait_state(srv, "waiting", timeout=5)
    assert s["paused_until"] is not None
    assert "paused until" in s["explanation"]
    assert "paused" in srv.mc.run("schedule", "status").stdout

    srv.mc.run("schedule", "resume")
    wait_state(srv, "window_open")

    # No background worker exists in skills_only mode: said plainly.
    p = srv.mc.run("schedule", "train-now", check=False)
    assert p.returncode != 0
    assert "nothing to run" in p.stderr

    p = srv.mc.run("schedule", "pause", "--for", "soon", check=False)
    assert p.returncode != 0 and "--for" in p.stderr


def test_train_now_runs_the_curator_in_a_window(proxies):
    # No display: no idle signal and no sleep hours, so only train-now opens a window.
    srv = proxies.start("openai", settings=FAST, env_extra={"DISPLAY": ""})
    assert status(srv)["state"] == "waiting"
    out = srv.mc.run("schedule", "train-now").stdout
    assert "training window opened" in out

    def curator_work():
        day = srv.mc.json("schedule", "timeline", "--json")
        for window in day["windows"]:
            for work in window["work"]:
                if work["worker"] == "curator" and work["outcome"] is not None:
                    return window, work
        return None

    window, work = wait_until(curator_work, timeout=15, interval=0.2)
    assert window["triggers"] == ["manual"]
    assert work["outcome"] == "finished"
    assert work["summary"] == "merged 0, disabled 0"
    # Train-now asked for one piece of work: once it is done the window closes.
    wait_state(srv, "waiting", timeout=5)


def test_pause_without_a_server_applies_at_the_next_start(proxies, xvfb):
    home = proxies.home("paused-home")
    mc = MetaClaw(home)
    mc.run("schedule", "pause", "--tomorrow")
    srv = proxies.start("openai", settings=FAST, home=home, env_extra={"DISPLAY": xvfb})
    time.sleep(4)
    s = status(srv)
    assert s["state"] == "waiting"
    assert s["paused_until"] is not None


def test_window_left_open_by_a_killed_process_is_closed_at_restart(proxies, xvfb):
    srv = start_idle_server(proxies, xvfb)
    wait_state(srv, "window_open")
    srv.kill9()
    srv.start()
    day = srv.mc.json("schedule", "timeline", "--json")
    reasons = [w["close_reason"] for w in day["windows"]]
    assert "metaclaw stopped" in reasons, day["windows"]


def test_clean_shutdown_records_the_window_end(proxies, xvfb):
    srv = start_idle_server(proxies, xvfb)
    wait_state(srv, "window_open")
    srv.stop()
    day = srv.mc.json("schedule", "timeline", "--json")
    assert all(w["closed_at_ms"] is not None for w in day["windows"]), day["windows"]


def ics_event(start: dt.datetime, end: dt.datetime, summary: str) -> str:
    f = "%Y%m%dT%H%M%SZ"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:now-1@test\r\nDTSTAMP:{start.strftime(f)}\r\nDTSTART:{start.strftime(f)}\r\n"
            f"DTEND:{end.strftime(f)}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_a_meeting_opens_a_window_until_it_ends(proxies, tmp_path):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    end = now + dt.timedelta(minutes=45)
    cal = tmp_path / "work.ics"
    cal.write_text(ics_event(now - dt.timedelta(minutes=5), end, "Planning"))
    # No display: no idle signal, so the meeting alone decides.
    srv = proxies.start("openai", settings={**FAST, "scheduler.calendars": str(cal)},
                        env_extra={"DISPLAY": ""})
    s = wait_state(srv, "window_open")
    assert s["window"]["triggers"] == ["calendar"]
    assert s["window"]["expected_end"].startswith(end.strftime("%Y-%m-%dT%H:%M:%S"))
    assert s["calendars"][0]["state"] == "ok"
    assert s["idle_seconds"]["source"] is None
    assert any("DISPLAY" in r for r in s["idle_seconds"]["unavailable"])
    text = srv.mc.run("schedule", "timeline").stdout
    assert "meeting: Planning" in text
    assert "window (calendar)" in text


def test_admin_api_needs_the_token(proxies, xvfb):
    srv = start_idle_server(proxies, xvfb)
    token_file = srv.mc.home / "admin-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    status_code, _, _ = http_request(srv.port, "GET", "/api/schedule")
    assert status_code == 401
    status_code, _, _ = http_request(srv.port, "GET", "/api/schedule",
                                     headers={"Authorization": "Bearer wrong"})
    assert status_code == 401
    status_code, _, body = http_request(srv.port, "GET", "/api/schedule",
                                        headers={"Authorization": f"Bearer {token}"})
    assert status_code == 200 and b'"state"' in body
    status_code, _, body = http_request(srv.port, "POST", "/api/schedule/pause", b'{"until": "soon"}',
                                        headers={"Authorization": f"Bearer {token}",
                                                 "Content-Type": "application/json"})
    assert status_code == 400 and b"RFC 3339" in body
    # The token never appears in the server's log.
    assert token not in srv.log()
