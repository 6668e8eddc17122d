"""`metaclaw config set/get/show`, validation of every key, secrets that never
appear in full in any CLI output or in the server's log, and `metaclaw status`."""

from __future__ import annotations

import re

import openai
import pytest

import fake_upstream as fu
from harness import (PROXY_KEY, UPSTREAM_KEY, MetaClaw, ProxyServer, config_lookup, make_test_skills, uid,
                     upstream_settings, walk_items, walk_values, write_skill)

DEFAULTS = {
    "mode": "auto",
    "proxy.host": "127.0.0.1",
    "proxy.port": 30000,
    "proxy.max_body_mb": 32,
    "upstream.timeout_secs": 300,
    "upstream.model": "",
    "skills.top_k": 6,
    "skills.enabled": True,
    "session.idle_timeout_minutes": 30,
}


def same(value, expected) -> bool:
    """Compare a CLI value (string or JSON) with an expected one."""
    if isinstance(expected, bool):
        return str(value).strip().lower() == str(expected).lower()
    if isinstance(expected, (int, float)):
        try:
            return float(value) == float(expected)
        except (TypeError, ValueError):
            return False
    return str(value).strip().strip('"') == expected


def test_defaults(mc):
    for key, want in DEFAULTS.items():
        got = mc.config_get(key)
        assert same(got, want), f"{key}: {got!r} != default {want!r}"
    shown = mc.json("config", "show", "--json")
    for key, want in DEFAULTS.items():
        assert same(config_lookup(shown, key), want), key


VALID = [
    ("mode", "rl"), ("mode", "auto"), ("mode", "skills_only"),
    ("proxy.host", "127.0.0.2"), ("proxy.port", "31337"),
    ("proxy.max_body_mb", "0.01"), ("proxy.max_body_mb", "64"),
    ("upstream.api", "anthropic"), ("upstream.api", "openai"),
    ("upstream.base_url", "http://127.0.0.1:9/v1"), ("upstream.model", "gpt-test"), ("upstream.model", ""),
    ("upstream.timeout_secs", "5"),
    ("skills.top_k", "3"), ("skills.enabled", "false"), ("skills.enabled", "true"),
    ("session.idle_timeout_minutes", "0.05"),
]


# Keys that need others set first (training needs a service and a model).
PREREQUISITES = {
    ("mode", "rl"): {"rl.base_url": "http://127.0.0.1:9", "rl.model": "Qwen/Qwen3-4B-Instruct-2507",
                    "rl.tokenizer": "/models/qwen3"},
    ("mode", "auto"): {"rl.base_url": "http://127.0.0.1:9", "rl.model": "Qwen/Qwen3-4B-Instruct-2507",
                    "rl.tokenizer": "/models/qwen3"},
}


@pytest.mark.parametrize("key,value", VALID)
def test_set_get_roundtrip(mc, key, value):
    mc.configure(PREREQUISITES.get((key, value), {}))
    mc.config_set(key, value)
    got = mc.config_get(key)
    try:
        assert float(got) == float(value)
    except ValueError:
        assert got.strip('"') == value
    shown = mc.json("config", "show", "--json")
    v = config_lookup(shown, key)
    try:
        assert float(v) == float(value)
    except (TypeError, ValueError):
        assert str(v).lower() == value


def test_skills_dir_default_is_shown(mc):
    """The documented default of skills.dir is $METACLAW_HOME/skills: show it."""
    assert mc.config_get("skills.dir") == str(mc.home / "skills")


def test_skills_dir_roundtrip(mc, tmp_path):
    mc.config_set("skills.dir", str(tmp_path / "my-skills"))
    assert mc.config_get("skills.dir") == str(tmp_path / "my-skills")


INVALID = [
    ("mode", "turbo", "skills_only"),
    ("upstream.api", "gemini", "anthropic"),
    ("proxy.port", "70000", None),
    ("proxy.port", "abc", None),
    ("proxy.max_body_mb", "-1", None),
    ("proxy.max_body_mb", "lots", None),
    ("skills.top_k", "-3", None),
    ("skills.top_k", "many", None),
    ("skills.enabled", "maybe", None),
    ("session.idle_timeout_minutes", "0", None),
    ("session.idle_timeout_minutes", "-5", None),
    ("session.idle_timeout_minutes", "soon", None),
    ("upstream.timeout_secs", "-1", None),
    ("upstream.timeout_secs", "forever", None),
]


@pytest.mark.parametrize("key,value,allowed", INVALID)
def test_invalid_value_is_refused(mc, key, value, allowed):
    before = mc.config_get(key)
    # `--` so that negative numbers reach the validator whatever the CLI
    # parser does with them (test_negative_value_needs_no_double_dash).
    p = mc.run("config", "set", key, "--", value, check=False) if value.startswith("-") else \
        mc.run("config", "set", key, value, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"`config set {key} {value}` was accepted"
    assert key in out, f"the error does not name the key: {out!r}"
    if allowed:
        assert allowed in out, f"the error does not say what is allowed: {out!r}"
    assert mc.config_get(key) == before, "a refused value changed the configuration"


@pytest.mark.parametrize("key,value", [(k, v) for k, v, _ in INVALID if v.startswith("-")])
def test_negative_value_needs_no_double_dash(mc, key, value):
    """`metaclaw config set skills.top_k -3` as a user types it: refused with
    a message naming the key (not a bare argument-parser error)."""
    p = mc.run("config", "set", key, value, check=False)
    assert p.returncode != 0
    assert key in p.stdout + p.stderr, f"the error does not name the key: {p.stdout + p.stderr!r}"


def test_unknown_key(mc):
    for args in (("config", "set", "proxy.colour", "blue"), ("config", "get", "nonsense.key")):
        p = mc.run(*args, check=False)
        assert p.returncode != 0
        assert args[2] in p.stdout + p.stderr


def test_config_show_text_and_json_agree(mc):
    mc.config_set("skills.top_k", "4")
    mc.config_set("upstream.model", "m-1")
    text = mc.run("config", "show").stdout
    assert "skills.top_k" in text or "top_k" in text
    assert "m-1" in text
    shown = mc.json("config", "show", "--json")
    assert same(config_lookup(shown, "skills.top_k"), 4)
    assert config_lookup(shown, "upstream.model") == "m-1"


# --------------------------------------------------------------------------- secrets

def test_secrets_never_printed_in_full(tmp_path, fake, metaclaw_bin):
    mc = MetaClaw(tmp_path / "home", env_extra={"RUST_LOG": "debug", "METACLAW_LOG": "debug"})
    mc.configure({**upstream_settings(fake, "openai"), "proxy.api_key": PROXY_KEY,
                  "skills.dir": str(make_test_skills(tmp_path / "skills"))})
    outputs = []
    for args in (("config", "show"), ("config", "show", "--json"), ("config", "get", "upstream.api_key"),
                 ("config", "get", "proxy.api_key"), ("status",), ("status", "--json")):
        p = mc.run(*args)
        outputs.append(p.stdout + p.stderr)
    shown = mc.json("config", "show", "--json")
    for key in ("upstream.api_key", "proxy.api_key"):
        v = config_lookup(shown, key)
        assert v not in (None, "", False), f"{key} shows as unset although it is set: {v!r}"

    srv = ProxyServer(mc, "secrets").start()
    try:
        m = uid()
        r = srv.openai(api_key=PROXY_KEY).chat.completions.create(
            model="fake-gpt-4o", messages=[{"role": "user", "content": f"hello {m}"}])
        assert r.choices[0].message.content == fu.SCRIPTED_TEXT
        # Errors too: a wrong client key, an upstream 401.
        with pytest.raises(openai.AuthenticationError):
            srv.openai(api_key="wrong").chat.completions.create(model="fake-gpt-4o", messages=[
                {"role": "user", "content": "x"}])
        with pytest.raises(openai.AuthenticationError):
            srv.openai(api_key=PROXY_KEY).chat.completions.create(model="fault-401", messages=[
                {"role": "user", "content": "x"}])
        srv.mc.wait_turn(m)
        for args in (("status",), ("status", "--json"), ("sessions", "list", "--json")):
            outputs.append(mc.run(*args).stdout)
    finally:
        srv.stop()
    everything = "\n".join(outputs + mc.outputs + [srv.log(), srv.stdout_path.read_text("utf-8", "replace")])
    for secret in (UPSTREAM_KEY, PROXY_KEY):
        assert secret not in everything, "a secret was printed in full"
        # Not even most of it.
        assert secret[4:-4] not in everything, "a secret was printed nearly in full"


# --------------------------------------------------------------------------- status

UP_KEYS = {"up", "running", "reachable", "alive", "online", "serving", "proxy_up", "proxy_running",
           "proxy_reachable"}


def proxy_up_flag(obj) -> bool:
    flags = [v for k, v in walk_items(obj) if re.split(r"[.\[]", k)[-1] in UP_KEYS and isinstance(v, bool)]
    assert flags, f"`status --json` has no up/running flag: {obj}"
    return flags[0]


def test_status(proxies, fake):
    srv = proxies.start("openai", name="status")
    n_skills = len(srv.mc.json("skills", "list", "--json"))
    st = srv.mc.json("status", "--json")
    assert proxy_up_flag(st) is True
    values = list(walk_values(st))
    assert "auto" in values
    assert any(isinstance(v, str) and fake.openai_base_url in v for v in values), "status does not name the upstream"
    assert n_skills in values, "status does not give the library size"
    text = srv.mc.run("status").stdout
    assert str(srv.port) in text and "auto" in text
    srv.stop()
    st = srv.mc.json("status", "--json", check=False)
    assert proxy_up_flag(st) is False


def test_status_counts_problems(mc, tmp_path):
    root = make_test_skills(tmp_path / "bank")
    write_skill(root, "x", "", "", folder="broken-one", raw="---\nname: broken-one\n---\nno description\n")
    mc.config_set("skills.dir", str(root))
    st = mc.json("status", "--json", check=False)
    assert proxy_up_flag(st) is False
    problems = [v for k, v in walk_items(st) if k.split(".")[-1] in ("problems", "problem_count", "skill_problems")]
    assert problems, f"status has no problems entry: {st}"
    p = problems[0]
    assert (p == 1) or (isinstance(p, list) and len(p) == 1), p


def test_training_modes_need_a_service_and_a_model_first(mc):
    # auto (the default) is valid before the training service is set and
    # reports why it does not train yet; rl refuses to start without it.
    assert mc.config_get("mode") == "auto"
    status = mc.run("train", "status").stdout
    assert "waiting for the training service" in status and "rl.base_url" in status
    mc.config_set("mode", "skills_only")
    assert "off in skills_only mode" in mc.run("train", "status").stdout
    p = mc.run("config", "set", "mode", "rl", check=False)
    assert p.returncode != 0
    assert "rl.base_url" in p.stderr and "set rl.base_url first" in p.stderr
    mc.config_set("rl.base_url", "http://127.0.0.1:9")
    p = mc.run("config", "set", "mode", "rl", check=False)
    assert p.returncode != 0 and "rl.model" in p.stderr
    mc.config_set("rl.model", "Qwen/Qwen3-4B-Instruct-2507")
    p = mc.run("config", "set", "mode", "rl", check=False)
    assert p.returncode != 0 and "rl.tokenizer" in p.stderr
    mc.config_set("rl.tokenizer", "/models/qwen3")
    mc.config_set("mode", "rl")
    assert mc.config_get("mode") == "rl"
