"""Benchmark of the tray app at rest (`bash .ci/bench tray`): resident
memory of the app and its WebKit processes, with and without the dashboard
window and after closing it, and the CPU they use over 60 s of idling. Runs the release binary
in the same desktop session as tests/test_desktop.py (Xvfb, a private
session bus, the fake notification server and StatusNotifierWatcher).
Prints Markdown tables."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_desktop import Desktop, close_window, x_server  # noqa: E402
from harness import REPO, MetaClaw, clean_env, free_port, http_request, wait_until  # noqa: E402

APP = Path(os.environ.get("METACLAW_APP_BIN") or REPO / "target" / "release" / "metaclaw-app")
IDLE_SECONDS = 60
SETTLE_SECONDS = 10
TICKS = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def name(pid: int) -> str:
    """The program's file name (comm is cut at 15 characters)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        return Path(argv0).name or "?"
    except (OSError, UnicodeDecodeError):
        return "?"


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB; PSS shares each shared page among its users, so
    the sum over processes does not count the shared libraries twice."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def snapshot(root: int) -> dict[int, tuple[str, int, int]]:
    return {pid: (name(pid), *memory(pid)) for pid in tree(root)}


def idle_cpu(root: int) -> float:
    """CPU seconds the app's processes use over IDLE_SECONDS of rest."""
    before = {pid: cpu_ticks(pid) for pid in tree(root)}
    time.sleep(IDLE_SECONDS)
    after = {pid: cpu_ticks(pid) for pid in tree(root)}
    return sum(after[p] - before.get(p, 0) for p in after) / TICKS


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def describe(processes: dict[int, tuple[str, int, int]]) -> str:
    names: dict[str, int] = {}
    for proc_name, _, _ in processes.values():
        names[proc_name] = names.get(proc_name, 0) + 1
    return ", ".join(f"{n}×{k}" if n > 1 else k for k, n in names.items())


def main() -> int:
    if not APP.exists():
        print(f"error: {APP} is missing (cargo build --release -p metaclaw-app)", file=sys.stderr)
        return 1
    xvfb, display = x_server()
    try:
        bus = Desktop()
    except Exception:
        xvfb.terminate()
        raise
    home = Path(tempfile.mkdtemp(prefix="metaclaw-bench-tray-"))
    mc = MetaClaw(home / "home")
    port = free_port()
    mc.configure({"proxy.host": "127.0.0.1", "proxy.port": port})
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    env = clean_env(mc.home, {
        "DISPLAY": display, "DBUS_SESSION_BUS_ADDRESS": bus.address, "GDK_BACKEND": "x11",
        "HOME": str(home / "user"), "XDG_RUNTIME_DIR": str(runtime), "NO_AT_BRIDGE": "1",
        "WEBKIT_DISABLE_COMPOSITING_MODE": "1", "LIBGL_ALWAYS_SOFTWARE": "1", "METACLAW_LOG": "warn",
    })
    log = open(home / "app.log", "wb")
    started = time.monotonic()
    app = subprocess.Popen([str(APP)], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_until(lambda: bus.watcher.registrations, 60, 0.01, "the tray item")
        to_tray = time.monotonic() - started

        def healthy() -> bool:
            try:
                return http_request(port, "GET", "/healthz", timeout=2)[0] == 200
            except OSError:
                return False

        wait_until(healthy, 60, 0.05, "the proxy")
        time.sleep(SETTLE_SECONDS)
        tray_only = snapshot(app.pid)
        tray_cpu = idle_cpu(app.pid)

        opened = time.monotonic()
        subprocess.run([str(APP), "--dashboard"], env=env, check=True, timeout=60)

        def dashboard() -> list[int]:
            out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", r"^Skills \("],
                                 env={**os.environ, "DISPLAY": display}, capture_output=True, text=True)
            return [int(w) for w in out.stdout.split()]

        windows = wait_until(dashboard, 60, 0.05, "the dashboard window")
        to_dashboard = time.monotonic() - opened
        time.sleep(SETTLE_SECONDS)
        with_window = snapshot(app.pid)
        window_cpu = idle_cpu(app.pid)

        for window in windows:
            close_window(display, window)
        wait_until(lambda: not dashboard(), 30, 0.05, "the dashboard to close")
        time.sleep(SETTLE_SECONDS)
        closed = snapshot(app.pid)
    finally:
        try:
            app.terminate()
            app.wait(30)
            log.close()
            bus.close()
        finally:
            xvfb.terminate()
            xvfb.wait(10)

    def row(label: str, processes: dict[int, tuple[str, int, int]]) -> str:
        rss = sum(r for _, r, _ in processes.values())
        pss = sum(p for _, _, p in processes.values())
        return f"| {label} ({describe(processes)}) | **{mib(pss)}** | {mib(rss)} |"

    print("### Tray app at rest\n")
    print(f"Release build, 2 cores, Xvfb; no upstream traffic; {SETTLE_SECONDS} s after each step.\n")
    print("| resident memory | PSS | RSS |")
    print("|---|---|---|")
    print(row("in the tray, no window", tray_only))
    print(row("dashboard window open", with_window))
    print(row("after closing the dashboard", closed))
    print()
    print(f"| CPU over {IDLE_SECONDS} s idle | CPU time | share of one core |")
    print("|---|---|---|")
    print(f"| in the tray, no window | **{tray_cpu * 1000:.0f} ms** | {tray_cpu / IDLE_SECONDS:.2%} |")
    print(f"| dashboard window open | **{window_cpu * 1000:.0f} ms** | {window_cpu / IDLE_SECONDS:.2%} |")
    print()
    print("| start-up | time |")
    print("|---|---|")
    print(f"| launch to tray item registered (engine open, proxy listening) | {to_tray * 1000:.0f} ms |")
    print(f"| `--dashboard` (second launch) to the dashboard showing its data | {to_dashboard * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
