"""The tray app (`metaclaw-app`) end to end on a real X server (Xvfb) and a
private D-Bus session bus, with the desktop services a panel provides
written to their specifications in fake_desktop.py: a notification server
and a StatusNotifierWatcher.

One app runs through what a user does: it starts in the tray (no window),
its tray item registers and says its state; pause and resume from the menu;
a second launch with `--dashboard` opens the dashboard, which loads its
data through the IPC command; a real evolution (fake judge and evolver, as
in test_evolver.py) raises a notification over D-Bus, the open dashboard
updates from the forwarded engine event, and clicking the notification
opens the new skill's page; `--settings` opens the settings window; closing
the windows keeps the app; Start at login writes and removes the autostart
entry; Quit in the tray menu (a dbusmenu click, as a panel sends it) ends
the app with status 0 after the store is flushed. A second app whose port
is taken stays in the tray saying why, and `--quit` stops it."""

from __future__ import annotations

import json
import os
import re
import socket
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from harness import (REPO, MetaClaw, ProxyServer, clean_env, free_port, http_request, make_test_skills, uid,
                     upstream_settings, wait_until)
from fake_desktop import close_window
from test_evolver import SKILL, failing_conversation, settings as evolver_settings
from test_prm import FakeJudge

APP_BIN = Path(os.environ.get("METACLAW_APP_BIN") or REPO / "target" / "debug" / "metaclaw-app")
ARTIFACTS = REPO / "tests" / "artifacts"
SKILL_NAME = "zorblat-meeting-offsets"

# Starting WebKit under Xvfb on two cores takes seconds; these are upper
# bounds for polling, not expectations.
WINDOW_DEADLINE = 60.0
EVOLUTION_DEADLINE = 60.0


def missing_app() -> str | None:
    if APP_BIN.exists():
        return None
    reason = (f"the tray app binary {APP_BIN} is not built (cargo build -p metaclaw-app, "
              f"or set METACLAW_APP_BIN)")
    if os.environ.get("CI"):
        # CI builds every binary of the workspace: a missing one is a failure.
        pytest.fail(reason)
    return reason


@pytest.fixture(scope="module")
def desktop():
    reason = missing_app()
    if reason:
        pytest.skip(reason)
    for tool, package in (("xdotool", "xdotool"), ("import", "imagemagick")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: install the {package} package (.ci/run does)")
    from fake_desktop import Desktop, x_server

    xvfb, display = x_server()
    try:
        bus = Desktop()
        try:
            yield bus, display
        finally:
            bus.close()
    finally:
        xvfb.send_signal(signal.SIGTERM)
        xvfb.wait(10)


class TrayApp(ProxyServer):
    """`metaclaw-app` in a desktop session, serving on a free port; shares
    ProxyServer's logs and clients (its proxy is the same engine)."""

    def __init__(self, mc: MetaClaw, display: str, bus_address: str):
        super().__init__(mc, "tray-app")
        runtime = mc.home / "xdg-runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        self.session_env = {
            "DISPLAY": display,
            "DBUS_SESSION_BUS_ADDRESS": bus_address,
            "GDK_BACKEND": "x11",
            # A private desktop user: autostart entries, WebKit's caches.
            "HOME": str(mc.home / "user"),
            "XDG_CONFIG_HOME": str(mc.home / "user" / ".config"),
            "XDG_DATA_HOME": str(mc.home / "user" / ".local" / "share"),
            "XDG_CACHE_HOME": str(mc.home / "user" / ".cache"),
            "XDG_RUNTIME_DIR": str(runtime),
            # Xvfb has no GPU: let WebKit draw in software.
            "WEBKIT_DISABLE_COMPOSITING_MODE": "1",
            "LIBGL_ALWAYS_SOFTWARE": "1",
            "METACLAW_LOG": "info",
            # No accessibility bus in this session.
            "NO_AT_BRIDGE": "1",
        }

    def env(self) -> dict[str, str]:
        return clean_env(self.mc.home, self.session_env)

    def start(self, port: int | None = None, healthy: bool = True) -> "TrayApp":
        self.port = port or free_port()
        self.mc.configure({"proxy.host": "127.0.0.1", "proxy.port": self.port})
        err = open(self.stderr_path, "ab")
        out = open(self.stdout_path, "ab")
        self._logs += [err, out]
        self.proc = subprocess.Popen([str(APP_BIN)], env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err)

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"metaclaw-app exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                return http_request(self.port, "GET", "/healthz", timeout=2)[0] == 200
            except OSError:
                return False

        if healthy:
            wait_until(answers, 60, 0.1, "the tray app's proxy to answer /healthz")
        return self

    def again(self, *args: str) -> subprocess.CompletedProcess:
        """A second launch: it hands its arguments over and exits."""
        return subprocess.run([str(APP_BIN), *args], env=self.env(), capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)


def window_ids(display: str, pattern: str) -> list[int]:
    """The visible windows whose title matches ``pattern``."""
    env = {**os.environ, "DISPLAY": display}
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", pattern], env=env,
                         capture_output=True, text=True).stdout
    return [int(w) for w in out.split()]


def windows_named(display: str, pattern: str) -> list[str]:
    """Titles of the visible windows whose title matches ``pattern``."""
    env = {**os.environ, "DISPLAY": display}
    titles = []
    for wid in window_ids(display, pattern):
        name = subprocess.run(["xdotool", "getwindowname", str(wid)], env=env, capture_output=True, text=True)
        titles.append(name.stdout.strip())
    return titles


def screenshot(display: str, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    subprocess.run(["import", "-display", display, "-window", "root", str(path)], check=True, timeout=60)
    return path


def admin(mc: MetaClaw) -> dict[str, str]:
    """The admin API's header, from the token file the engine wrote."""
    token = next(mc.home.rglob("admin-token")).read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def tray_menu_labels(bus) -> dict[str, object]:
    return {item.label: item for item in bus.menu().walk() if item.label}


def test_tray_dashboard_notification_and_quit(desktop, fake, tmp_path):
    bus, display = desktop
    with FakeJudge([(200, "The user had to correct the offset.\nScore: -1")]) as judge, \
            FakeJudge([(200, "```json\n" + json.dumps(SKILL) + "\n```")]) as evolver:
        mc = MetaClaw(tmp_path / "home")
        mc.configure({**upstream_settings(fake, "openai"),
                      "skills.dir": str(make_test_skills(mc.home / "test-skills")),
                      **evolver_settings(judge, evolver, "auto")})
        app = TrayApp(mc, display, bus.address).start()
        try:
            # In the tray, registered with the panel's watcher; no window.
            wait_until(lambda: bus.watcher.registrations, 30, 0.1, "the tray item to register")
            assert windows_named(display, "MetaClaw") == []
            tooltip = wait_until(lambda: bus.item_property("ToolTip"), 10, 0.1, "the tray tooltip")
            assert tooltip[3] == "MetaClaw: idle", tooltip
            labels = wait_until(lambda: tray_menu_labels(bus), 10, 0.1, "the tray menu")
            for label in ("Open dashboard", "Pause learning", "For 1 hour", "Until tomorrow", "Resume",
                          "Train now", "Mode", "Skills only", "RL", "Auto", "Settings…",
                          "Start at login", "Quit"):
                assert label in labels, f"{label!r} missing from the tray menu: {list(labels)}"
            status = next(i for i in bus.menu().walk() if i.label.startswith("Auto ·"))
            assert status.enabled is False and "5 skills" in status.label, status
            # Not paused: nothing to resume. No rl settings: rl cannot be
            # chosen; auto (the default) can, and trains once they are set.
            assert labels["Resume"].enabled is False
            assert labels["RL"].enabled is False and labels["Auto"].enabled is True
            assert labels["Auto"].toggle_state == 1

            # Pausing from the tray goes through the engine's API: the
            # tooltip says until when, and Resume applies.
            bus.click("For 1 hour")
            tooltip = wait_until(lambda: bus.item_property("ToolTip")[3].startswith("MetaClaw: paused until ")
                                 and bus.item_property("ToolTip")[3], 15, 0.1, "the paused tooltip")
            assert re.fullmatch(r"MetaClaw: paused until (\w{3} )?\d\d:\d\d", tooltip), tooltip
            assert wait_until(lambda: tray_menu_labels(bus)["Resume"].enabled, 10, 0.1, "Resume to apply")
            assert json.loads(http_request(app.port, "GET", "/api/schedule", headers=admin(mc))[2])["paused_until"]
            bus.click("Resume")
            wait_until(lambda: bus.item_property("ToolTip")[3] == "MetaClaw: idle", 15, 0.1, "the idle tooltip")
            assert json.loads(http_request(app.port, "GET", "/api/schedule", headers=admin(mc))[2])[
                "paused_until"] is None

            # A second launch opens the dashboard in the running app; the
            # page's title names what it loaded through the IPC command.
            second = app.again("--dashboard")
            assert second.returncode == 0, second.stderr
            titles = wait_until(lambda: windows_named(display, r"^Skills \(5\) — MetaClaw$"), WINDOW_DEADLINE,
                                0.2, "the dashboard window with the skill count")
            assert titles == ["Skills (5) — MetaClaw"]
            time.sleep(1)  # let the first paint settle before the screenshot
            shot = screenshot(display, "desktop-dashboard.png")
            assert shot.stat().st_size > 10_000

            # A real evolution: the skill arrives as a notification through
            # the Notifications interface on the session bus.
            failing_conversation(app)
            note = wait_until(lambda: next((n for n in bus.notifications.received
                                            if SKILL_NAME in n.summary), None),
                              EVOLUTION_DEADLINE, 0.2, "the new-skill notification")
            assert note.app_name == "MetaClaw"
            assert note.summary == f"New skill learned: {SKILL_NAME}"
            assert note.body == SKILL[0]["description"]
            assert "default" in note.actions

            # The open dashboard heard of it (the engine event reached the
            # web view) and reloaded its list through the IPC command.
            wait_until(lambda: windows_named(display, r"^Skills \(6\) — MetaClaw$"), 30, 0.2,
                       "the dashboard to list the new skill")

            # The tray says what happened.
            wait_until(lambda: any(f"learned a new skill: {SKILL_NAME}" in i.label
                                   for i in bus.menu().walk()), 15, 0.2, "the status line to name the skill")
            assert bus.item_property("ToolTip")[3] == "MetaClaw: idle"

            # Clicking the notification opens the skill's page.
            bus.invoke_action(note.id)
            wait_until(lambda: windows_named(display, f"^Skill {SKILL_NAME} — MetaClaw$"), WINDOW_DEADLINE, 0.2,
                       "the dashboard to show the new skill")
            screenshot(display, "desktop-skill.png")

            # The settings window, from another second launch.
            assert app.again("--settings").returncode == 0
            wait_until(lambda: windows_named(display, "^Settings — MetaClaw$"), WINDOW_DEADLINE, 0.2,
                       "the settings window")

            # Closing the windows leaves the app running in the tray.
            for wid in window_ids(display, "— MetaClaw$"):
                close_window(display, wid)
            wait_until(lambda: not window_ids(display, "— MetaClaw$"), 30, 0.2, "the windows to close")
            time.sleep(1)
            assert app.alive() and http_request(app.port, "GET", "/healthz")[0] == 200

            # Start at login: an autostart entry that runs this binary.
            entry = mc.home / "user" / ".config" / "autostart" / "MetaClaw.desktop"
            bus.click("Start at login")
            # (It is created, then written: wait for the whole entry.)
            wait_until(lambda: entry.exists() and f"Exec={APP_BIN.resolve()}" in entry.read_text(), 10, 0.1,
                       "the autostart entry to run the app")
            wait_until(lambda: tray_menu_labels(bus)["Start at login"].toggle_state == 1, 10, 0.1,
                       "the Start at login check mark")
            bus.click("Start at login")
            wait_until(lambda: not entry.exists(), 10, 0.1, "the autostart entry to go")
            wait_until(lambda: tray_menu_labels(bus)["Start at login"].toggle_state == 0, 10, 0.1,
                       "the check mark to clear")

            # A conversation still open when the user quits.
            open_session = f"open-{uid()}"
            app.openai().chat.completions.create(
                model="fake-gpt-4o", max_tokens=16, messages=[{"role": "user", "content": "hello"}],
                extra_headers={"X-Session-Id": open_session})

            # Quit from the tray menu: a clean exit, the store flushed.
            bus.click("Quit")
            assert app.proc.wait(60) == 0, app.log_tail()
            database = next(mc.home.rglob("metaclaw.db"))
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
                ended = db.execute("SELECT end_reason FROM sessions WHERE session_key = ?", (f"id:{open_session}",)).fetchone()
                assert ended == ("shutdown",), ended
                evolved = db.execute("SELECT status, added FROM evolutions").fetchall()
                assert evolved == [("ok", 1)], evolved
        finally:
            app.stop()


def test_a_port_in_use_leaves_the_app_in_the_tray_saying_why(desktop, tmp_path):
    bus, display = desktop
    bus.watcher.registrations.clear()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        mc = MetaClaw(tmp_path / "home")
        app = TrayApp(mc, display, bus.address).start(port, healthy=False)
        try:
            wait_until(lambda: bus.watcher.registrations, 30, 0.1, "the tray item to register")
            tooltip = wait_until(lambda: bus.item_property("ToolTip")[3], 10, 0.1, "the tray tooltip")
            assert tooltip.startswith(f"MetaClaw: not running: cannot listen on 127.0.0.1:{port}"), tooltip
            labels = tray_menu_labels(bus)
            # What needs the engine is disabled; opening windows and quitting are not.
            for label in ("Pause learning", "Train now", "Mode"):
                assert labels[label].enabled is False, label
            for label in ("Open dashboard", "Settings…", "Quit"):
                assert labels[label].enabled is True, label
            assert app.alive()
            # `--quit` from another launch stops it.
            assert app.again("--quit").returncode == 0
            assert app.proc.wait(60) == 0, app.log_tail()
        finally:
            app.stop()
