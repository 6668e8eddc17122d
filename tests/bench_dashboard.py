"""Benchmark of the dashboard's first render with a big store
(`bash .ci/bench dashboard`): a real `metaclaw serve` (release build) with
2,000 generated skills and 10,000 turns recorded through the proxy, then
headless Chromium opening each page cold (a new browser context each run:
no cache, no storage) and the API calls behind the two biggest pages timed
from Python. Prints Markdown tables.

The turns take the real path: 2,500 conversations of 4 turns each sent by
concurrent HTTP clients to the proxy, answered by the fake upstream
(tests/fake_upstream.py, in its own process so it does not share this
process's interpreter lock with the clients), with skills retrieved and
injected as for any request; the benchmark waits until the store has
committed all of them."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (BIN, CLIENT_KEY, REPO, UPSTREAM_KEY, MetaClaw, ProxyServer,  # noqa: E402
                     http_request, wait_until, write_skill)

SKILLS = 2_000
SESSIONS = 2_500
TURNS_PER_SESSION = 4
CLIENTS = 16  # concurrent conversations while seeding
RUNS = 7  # cold page loads per page
API_RUNS = 20
COMMIT_DEADLINE = 300.0  # seconds for the store to catch up after the last answer
PAGE_DEADLINE_MS = 60_000  # a hang guard, not a threshold

CHROMIUM = Path(os.environ.get("METACLAW_CHROMIUM", "/usr/bin/chromium"))
# The flags of tests/test_dashboard.py.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DIST = REPO / "ui" / "dist" / "index.html"

# --------------------------------------------------------------------------- generated data

TOPICS = [
    "postgres", "kubernetes", "terraform", "react", "rust", "python", "docker", "nginx", "kafka", "redis",
    "graphql", "oauth", "webpack", "pandas", "spark", "airflow", "grafana", "prometheus", "ansible", "jenkins",
    "django", "flask", "fastapi", "typescript", "golang", "swift", "android", "ios", "aws-lambda", "gcp-iam",
    "azure-devops", "elasticsearch", "mongodb", "sqlite", "vim", "tmux", "git", "bash", "excel", "calendar",
]
ACTIONS = [
    "debug", "profile", "migrate", "secure", "review", "document", "test", "deploy", "monitor", "refactor",
    "optimise", "upgrade", "benchmark", "audit", "package", "configure", "troubleshoot", "automate", "backup",
    "restore", "scale", "lint", "format", "explain", "summarise", "plan", "estimate", "triage", "patch",
    "rollback", "index", "cache", "shard", "localise", "translate", "visualise", "schedule", "draft", "archive",
    "validate", "sanitise", "bootstrap", "containerise", "instrument", "trace", "harden", "tune", "simplify",
    "split", "merge",
]
assert len(TOPICS) * len(ACTIONS) >= SKILLS
NOUNS = ["queries", "pods", "modules", "components", "crates", "scripts", "images", "configs", "topics", "keys",
         "schemas", "tokens", "bundles", "dataframes", "jobs", "dags", "dashboards", "alerts", "playbooks",
         "pipelines", "views", "routes", "endpoints", "types", "goroutines", "layouts", "builds", "releases",
         "functions", "roles", "boards", "indices", "collections", "tables", "buffers", "panes", "branches",
         "aliases", "sheets", "events"]
CATEGORIES = ["coding", "ops", "data", "security", "writing", "productivity", "testing", "cloud"]
FILLER = ["first read the error message in full", "keep a copy of the original before changing anything",
          "prefer the smallest change that fixes the problem", "write down what you tried and what happened",
          "check the version numbers of every tool involved", "ask the user before running anything destructive",
          "link to the official documentation when you cite a rule", "measure before and after the change",
          "look for the same problem in the issue tracker", "explain the trade-off in one sentence"]


def skill_text(rng: random.Random, i: int) -> tuple[str, str, str, str]:
    """(name, description, body, category) of the i-th generated skill."""
    topic = TOPICS[i % len(TOPICS)]
    action = ACTIONS[i // len(TOPICS)]
    noun = NOUNS[(i * 7) % len(NOUNS)]
    name = f"{action}-{topic}-{noun}"
    description = rng.choice([
        f"Use when asked to {action} {topic} {noun}, or when {topic} {noun} misbehave after a change",
        f"How to {action} {noun} in {topic} projects safely and explain each step to the user",
        f"A checklist to {action} {topic} {noun} with the tools already installed",
        f"When the user mentions {topic} and wants to {action} their {noun}",
    ])
    steps = [f"{n}. {rng.choice(FILLER).capitalize()} ({topic} {noun}, step {n})."
             for n in range(1, rng.randint(3, 10) + 1)]
    parts = [f"# {action.capitalize()} {topic} {noun}", "", f"Goal: {action} the {noun} of a {topic} setup "
             f"without surprises.", "", "## Steps", "", *steps]
    if rng.random() < 0.5:
        parts += ["", "## Example", "", "```sh", f"{topic.split('-')[0]} {action} --{noun} --dry-run", "```"]
    for _ in range(rng.randint(0, 6)):
        parts += ["", " ".join(rng.choice(FILLER).capitalize() + "." for _ in range(rng.randint(2, 6)))]
    return name, description, "\n".join(parts), CATEGORIES[i % len(CATEGORIES)]


def make_library(root: Path) -> list[str]:
    rng = random.Random(20_000)
    names = []
    for i in range(SKILLS):
        name, description, body, category = skill_text(rng, i)
        write_skill(root, name, description, body, category)
        names.append(name)
    return names


def question(rng: random.Random) -> str:
    return (f"Can you help me {rng.choice(ACTIONS)} the {rng.choice(NOUNS)} of our {rng.choice(TOPICS)} "
            f"project? {rng.choice(FILLER).capitalize()}. Ticket #{rng.randint(1000, 99999)}.")


# --------------------------------------------------------------------------- the fake upstream, in its own process

def serve_fake_upstream() -> int:
    """`--fake-upstream`: the fake provider, keeping no record of requests
    (10,000 of them would only fill memory); prints its port."""
    import fake_upstream as fu

    class Forgetful(fu.FakeUpstream):
        def _add(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> fu.RecordedRequest:
            return fu.RecordedRequest(0, method, path, headers, raw)

    fake = Forgetful(api_key=UPSTREAM_KEY).start()
    print(fake.port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    fake.stop()
    return 0


def start_fake_upstream() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, __file__, "--fake-upstream"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        raise RuntimeError(f"the fake upstream did not start (printed {line!r})")
    return proc, int(line)


# --------------------------------------------------------------------------- seeding through the proxy

def converse(client: Any, url: str, n: int) -> None:
    """One conversation of TURNS_PER_SESSION turns, the history growing as a
    client's does; every fourth streams, every other one is ended explicitly."""
    import fake_upstream as fu
    rng = random.Random(n)
    sid = f"bench-{n:05d}"
    stream = n % 4 == 0
    messages: list[dict] = [{"role": "system", "content": "You are a helpful engineering assistant."}]
    for turn in range(TURNS_PER_SESSION):
        messages.append({"role": "user", "content": question(rng)})
        body: dict[str, Any] = {"model": "fake-gpt-4o" if n % 3 else "fake-gpt-4o-mini",
                                "messages": messages, "stream": stream}
        headers = {"Authorization": f"Bearer {CLIENT_KEY}", "X-Session-Id": sid}
        if turn == TURNS_PER_SESSION - 1 and n % 2 == 0:
            headers["X-Session-Done"] = "true"
        if stream:
            with client.stream("POST", url, json=body, headers=headers) as r:
                data = r.read()
                if r.status_code != 200 or b"[DONE]" not in data:
                    raise RuntimeError(f"{sid} turn {turn}: HTTP {r.status_code}: {data[:300]!r}")
        else:
            r = client.post(url, json=body, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"{sid} turn {turn}: HTTP {r.status_code}: {r.text[:300]}")
        messages.append({"role": "assistant", "content": fu.SCRIPTED_TEXT})


def store_counts(db: Path) -> tuple[int, int]:
    """(sessions, turns) committed to the store, read like any other reader would."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM turns)").fetchone()
    finally:
        conn.close()


def seed(srv: ProxyServer) -> tuple[float, float]:
    """Sends every conversation; returns (seconds until the last answer,
    seconds until the store held every turn)."""
    import httpx
    url = f"{srv.openai_base_url}/chat/completions"
    started = time.monotonic()
    done = 0
    lock = threading.Lock()

    def one(n: int) -> None:
        nonlocal done
        converse(client, url, n)
        with lock:
            done += 1
            if done % 500 == 0:
                print(f"  {done:,} conversations answered ({time.monotonic() - started:.0f} s)",
                      file=sys.stderr, flush=True)

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    with httpx.Client(timeout=120, limits=limits) as client, ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(one, n) for n in range(SESSIONS)]:
            future.result()
    answered = time.monotonic() - started
    db = srv.mc.home / "metaclaw.db"
    want = (SESSIONS, SESSIONS * TURNS_PER_SESSION)
    wait_until(lambda: store_counts(db) == want, COMMIT_DEADLINE, 0.2,
               f"{want[1]:,} turns in {want[0]:,} sessions committed to {db}")
    return answered, time.monotonic() - started


# --------------------------------------------------------------------------- measuring

# Installed before the page's scripts: notes when <body data-state> first
# becomes "ready" (the page's data is in and rendered into the DOM) and when
# the frame after it was produced, both in ms since navigation start.
OBSERVER = """(() => {
  const seen = () => {
    const state = document.body && document.body.dataset.state;
    if (window.__bench || (state !== 'ready' && state !== 'error')) return;
    window.__bench = {state, ready: performance.now()};
    requestAnimationFrame(() => setTimeout(() => { window.__bench.painted = performance.now(); }, 0));
  };
  new MutationObserver(seen).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-state']});
})();"""

# Per page: its hash route, and the API calls its first render waits for.
PAGES = [
    ("#/skills", ["/api/skills?"]),
    ("#/skills/{skill}", ["/api/skills/"]),
    ("#/sessions", ["/api/sessions?"]),
    ("#/sessions/{session}", ["/api/sessions/"]),
    ("#/training", ["/api/training"]),
    ("#/schedule", ["/api/schedule"]),
]


def measure_page(browser: Any, srv: ProxyServer, token: str, route: str, api: list[str]) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB", timezone_id="UTC")
    try:
        context.add_init_script(OBSERVER)
        page = context.new_page()
        sep = "&" if "?" in route else "?"
        page.goto(f"{srv.url}/ui/{route}{sep}token={token}", wait_until="commit")
        page.wait_for_function("() => window.__bench && window.__bench.painted !== undefined",
                               timeout=PAGE_DEADLINE_MS, polling=50)
        result = page.evaluate("""(api) => {
          const nav = performance.getEntriesByType('navigation')[0];
          const calls = performance.getEntriesByType('resource')
            .filter(e => api.some(p => new URL(e.name).pathname.concat(new URL(e.name).search).startsWith(p)));
          return {
            ...window.__bench,
            dcl: nav.domContentLoadedEventEnd,
            api_start: Math.min(...calls.map(e => e.startTime)),
            api_end: Math.max(...calls.map(e => e.responseEnd)),
            api_wait: Math.max(...calls.map(e => e.responseStart - e.requestStart)),
            api_bytes: calls.reduce((n, e) => n + e.decodedBodySize, 0),
            calls: calls.length,
          };
        }""", api)
        if result["state"] != "ready":
            raise RuntimeError(f"{route} ended in state {result['state']!r}: {page.title()}")
        if result["calls"] == 0:
            raise RuntimeError(f"{route}: no request to {api} was seen")
        return result
    finally:
        context.close()


def time_api(srv: ProxyServer, token: str, path: str) -> tuple[list[float], int]:
    headers = {"Authorization": f"Bearer {token}"}
    times, length = [], 0
    for _ in range(API_RUNS):
        started = time.perf_counter()
        status, _, body = http_request(srv.port, "GET", path, None, headers)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:300]!r}")
        length = len(body)
    return times, length


def ms(v: float) -> str:
    return f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def size(n: float) -> str:
    return f"{n / 1024:.0f} KiB" if n >= 10 * 1024 else f"{n / 1024:.1f} KiB"


def main() -> int:
    global SKILLS, SESSIONS, RUNS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fake-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skills", type=int, default=SKILLS, help="skills in the library (%(default)s)")
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="conversations of 4 turns (%(default)s)")
    parser.add_argument("--runs", type=int, default=RUNS, help="cold loads per page (%(default)s)")
    args = parser.parse_args()
    if args.fake_upstream:
        return serve_fake_upstream()
    SKILLS, SESSIONS, RUNS = args.skills, args.sessions, args.runs
    for what, path in (("metaclaw", BIN), ("Chromium", CHROMIUM), ("the built dashboard", DIST)):
        if not path.exists():
            print(f"error: {what} is missing at {path}", file=sys.stderr)
            return 1
    from playwright.sync_api import sync_playwright

    fake, fake_port = start_fake_upstream()
    home = Path(tempfile.mkdtemp(prefix="metaclaw-bench-dashboard-"))
    mc = MetaClaw(home / "home")
    srv = ProxyServer(mc, "bench")
    try:
        started = time.monotonic()
        make_library(home / "skills")
        library_secs = time.monotonic() - started
        mc.configure({
            "upstream.api": "openai", "upstream.base_url": f"http://127.0.0.1:{fake_port}/v1",
            "upstream.api_key": UPSTREAM_KEY, "skills.dir": str(home / "skills"),
            # The curator would merge and disable generated skills in a
            # training window and change the library under the benchmark.
            "curator.enabled": False,
        })
        srv.start()
        print(f"seeding: {SKILLS:,} skills, {SESSIONS:,} conversations × {TURNS_PER_SESSION} turns "
              f"through {srv.url} ({CLIENTS} clients)…", file=sys.stderr, flush=True)
        answered, committed = seed(srv)
        token = (mc.home / "admin-token").read_text("utf-8").strip()

        status, _, raw = http_request(srv.port, "GET", "/api/skills?status=all", None,
                                      {"Authorization": f"Bearer {token}"})
        listed = json.loads(raw)["skills"] if status == 200 else []
        shown = len(listed)
        if shown < SKILLS:
            raise RuntimeError(f"the API lists {shown} skills, not {SKILLS}: HTTP {status} {raw[:300]!r}")
        # The skill page of the most used skill: the most history to show.
        skill = max(listed, key=lambda s: s["uses"])["name"]
        _, _, raw = http_request(srv.port, "GET", "/api/sessions?limit=50", None, {"Authorization": f"Bearer {token}"})
        session = json.loads(raw)["sessions"][10]["id"]
        injected = sqlite3.connect(f"file:{mc.home / 'metaclaw.db'}?mode=ro", uri=True).execute(
            "SELECT count(*) FROM turn_skills").fetchone()[0]

        load = [os.getloadavg()[0]]
        apis = {path: time_api(srv, token, path) for path in
                ("/api/skills?status=all", f"/api/skills/{skill}", "/api/sessions?limit=50", f"/api/sessions/{session}",
                 "/api/training", "/api/schedule", "/api/schedule/timeline", "/api/overview")}

        results: dict[str, list[dict[str, float]]] = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                # One throw-away load, so Chromium's own start-up is not in the first run.
                measure_page(browser, srv, token, "#/training", ["/api/training"])
                for run in range(RUNS):
                    for route, api in PAGES:
                        route = route.format(session=session, skill=skill)
                        results.setdefault(route, []).append(measure_page(browser, srv, token, route, api))
            finally:
                browser.close()
        load.append(os.getloadavg()[0])
    finally:
        srv.stop()
        assert fake.stdin is not None
        fake.stdin.close()
        fake.wait(10)
        shutil.rmtree(home, ignore_errors=True)

    print("### Dashboard first render, big store\n")
    print(f"`{BIN.relative_to(REPO) if BIN.is_relative_to(REPO) else BIN}` ({BIN.parent.name} build), "
          f"{os.cpu_count()} cores (1-minute load average {load[0]:.1f} before the measurements, "
          f"{load[1]:.1f} after). {shown:,} skills; {SESSIONS * TURNS_PER_SESSION:,} turns in {SESSIONS:,} "
          f"sessions ({injected:,} skill injections), recorded through the proxy from the fake upstream.\n")
    print(f"Seeding: library written in {library_secs:.1f} s; {SESSIONS * TURNS_PER_SESSION:,} requests from "
          f"{CLIENTS} concurrent clients answered in {answered:.1f} s "
          f"({SESSIONS * TURNS_PER_SESSION / answered:.0f} requests/s), all committed to the store after "
          f"{committed:.1f} s.\n")
    print(f"Headless Chromium, a new browser context (no cache, no storage) for each of {RUNS} loads per page. "
          "*Ready*: navigation start to `<body data-state=ready>`; *painted*: the frame after it. The split "
          "(medians): the dashboard's script loaded (DOMContentLoaded), the page's API call(s) in flight "
          "(of which waiting for the server's first byte), then parsing the answer and building the DOM "
          "until ready.\n")
    print("| page | ready, median | ready, worst | painted, median | script loaded | API call | "
          "of which server | answer → ready | API bytes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for route, runs in results.items():
        def med(key: str) -> float:
            return statistics.median(r[key] for r in runs)
        label = ("`#/sessions/<id>` (4 turns)" if route.startswith("#/sessions/")
                 else "`#/skills/<name>` (the most used)" if route.startswith("#/skills/") else f"`{route}`")
        print(f"| {label} | **{ms(med('ready'))}** | {ms(max(r['ready'] for r in runs))} | "
              f"{ms(med('painted'))} | {ms(med('dcl'))} | "
              f"{ms(statistics.median(r['api_end'] - r['api_start'] for r in runs))} | {ms(med('api_wait'))} | "
              f"{ms(statistics.median(r['ready'] - r['api_end'] for r in runs))} | "
              f"{size(runs[0]['api_bytes'])} |")
    print()
    print(f"API from Python (`http.client`, a new connection per call, {API_RUNS} calls each):\n")
    print("| request | median | worst | body |")
    print("|---|---|---|---|")
    for path, (times, length) in apis.items():
        label = path.replace(session, "<id>").replace(skill, "<name>")
        print(f"| `GET {label}` | **{ms(statistics.median(times))}** | {ms(max(times))} | {size(length)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
