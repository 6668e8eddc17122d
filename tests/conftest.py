"""Fixtures for the end-to-end suite: one fake LLM upstream for the whole run,
`metaclaw serve` processes per module (or per test when a test needs its own
configuration), and the proxy's stderr attached to every failing test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_upstream import FakeUpstream  # noqa: E402
from harness import (BIN, LIVE_SERVERS, UPSTREAM_KEY, MetaClaw, ProxyServer,  # noqa: E402
                     make_test_skills, upstream_settings)


def pytest_report_header(config):
    return f"metaclaw binary: {BIN} ({'present' if BIN.exists() else 'MISSING'})"


@pytest.fixture(scope="session")
def fake():
    f = FakeUpstream(api_key=UPSTREAM_KEY).start()
    yield f
    f.stop()


@pytest.fixture(scope="session")
def metaclaw_bin():
    if not BIN.exists():
        pytest.fail(f"metaclaw binary not found at {BIN} (build it or set METACLAW_BIN)")
    return BIN


class ProxyFactory:
    """Starts `metaclaw serve` processes and stops them all at teardown."""

    def __init__(self, tmp_factory: pytest.TempPathFactory, fake: FakeUpstream):
        self.tmp = tmp_factory
        self.fake = fake
        self.servers: list[ProxyServer] = []

    def home(self, name: str = "home") -> Path:
        return self.tmp.mktemp(name)

    def start(self, kind: str | None = "openai", settings: dict | None = None, *, name: str = "proxy",
              skills: str | Path | None = "test", home: Path | None = None,
              env_extra: dict | None = None) -> ProxyServer:
        """kind: upstream kind ('openai' | 'anthropic' | None for no upstream);
        skills: 'test' (the disjoint test bank), a path, or None (default dir)."""
        home = home or self.home(name)
        mc = MetaClaw(home)
        cfg: dict = {}
        if kind is not None:
            cfg.update(upstream_settings(self.fake, kind))
        if skills == "test":
            cfg["skills.dir"] = str(make_test_skills(home / "test-skills"))
        elif skills is not None:
            cfg["skills.dir"] = str(skills)
        cfg.update(settings or {})
        mc.configure(cfg)
        srv = ProxyServer(mc, name, env_extra)
        self.servers.append(srv)
        return srv.start()

    def stop_all(self) -> None:
        for s in self.servers:
            s.stop()


@pytest.fixture(scope="module")
def module_proxies(tmp_path_factory, fake, metaclaw_bin):
    f = ProxyFactory(tmp_path_factory, fake)
    yield f
    f.stop_all()


@pytest.fixture()
def proxies(tmp_path_factory, fake, metaclaw_bin):
    """Per-test servers (for tests that need their own configuration)."""
    f = ProxyFactory(tmp_path_factory, fake)
    yield f
    f.stop_all()


@pytest.fixture(scope="module")
def openai_proxy(module_proxies):
    """A proxy whose upstream is the fake's OpenAI endpoint (test skill bank)."""
    return module_proxies.start("openai", name="openai-up")


@pytest.fixture(scope="module")
def anthropic_proxy(module_proxies):
    """A proxy whose upstream is the fake's Anthropic endpoint (test skill bank)."""
    return module_proxies.start("anthropic", name="anthropic-up")


@pytest.fixture(scope="module")
def proxy_for(openai_proxy, anthropic_proxy):
    return {"openai": openai_proxy, "anthropic": anthropic_proxy}


@pytest.fixture()
def mc(tmp_path, metaclaw_bin):
    """The CLI with a fresh METACLAW_HOME (no server)."""
    return MetaClaw(tmp_path / "home")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for s in LIVE_SERVERS:
            if s.proc is None:
                continue
            state = "running" if s.alive() else f"exited {s.proc.returncode}"
            report.sections.append((f"metaclaw serve [{s.name}] port {s.port} ({state}) stderr: {s.stderr_path}",
                                    s.log_tail(40)))


def pytest_runtest_teardown(item, nextitem):
    # Forget servers that are gone, so later failures show only relevant logs.
    LIVE_SERVERS[:] = [s for s in LIVE_SERVERS if s.alive()]
