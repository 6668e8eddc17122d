"""The skill library: the bundled starter bank, loading a third-party bank
unchanged, `skills list/show/search/check`, broken SKILL.md files, live
reload while serving, skills.enabled / skills.top_k, usage statistics."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness import (QUERIES, TEST_SKILLS, MetaClaw, assert_injected, assert_not_injected, copy_reference_skills,
                     injected_names, make_test_skills, reference_skill_names, uid, upstream_system_text,
                     wait_until, write_skill)


def front_matter(path: Path) -> dict[str, str]:
    text = path.read_text("utf-8")
    fm = text.split("---", 2)[1]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^(\w+):\s*(.*)$", fm, flags=re.M)}


@pytest.fixture()
def ref_mc(tmp_path, metaclaw_bin):
    mc = MetaClaw(tmp_path / "home")
    mc.config_set("skills.dir", str(copy_reference_skills(tmp_path / "bank")))
    return mc


def broken_bank(root: Path) -> dict[str, str]:
    """Two good skills plus broken ones; returns {folder: why it is broken}."""
    make_test_skills(root)
    for extra in ("sql-tuning", "git-rebase-helper", "kubernetes-debugging"):
        shutil.rmtree(root / extra)
    broken = {
        "bad-yaml": "---\nname: bad-yaml\ndescription: [unclosed, list\ncategory: x\n---\nBody.\n",
        "no-description": "---\nname: no-description\ncategory: general\n---\nZeppelin helium valves.\n",
        "name-mismatch": "---\nname: another-name\ndescription: Zeppelin helium valves mismatch.\n---\nBody.\n",
        "no-front-matter": "# Just markdown\n\nZeppelin helium valves without front matter.\n",
    }
    for folder, raw in broken.items():
        write_skill(root, folder, "", "", folder=folder, raw=raw)
    return broken


# --------------------------------------------------------------------------- CLI

def test_reference_bank_loads_unchanged(ref_mc):
    listed = ref_mc.json("skills", "list", "--json")
    assert isinstance(listed, list)
    names = sorted(s["name"] for s in listed)
    assert names == reference_skill_names()
    for s in listed:
        for f in ("name", "description", "category", "status", "origin", "injected", "last_used_ms"):
            assert f in s, f"skills list: field {f} missing"
        fm = front_matter(Path(ref_mc.config_get("skills.dir")) / s["name"] / "SKILL.md")
        assert s["description"] == fm["description"]
        assert s["category"] == fm["category"]
        assert s["status"] == "active"
        assert not s["injected"]


def test_skills_show(ref_mc):
    shown = ref_mc.json("skills", "show", "sql-best-practices", "--json")
    assert shown["name"] == "sql-best-practices"
    assert shown["description"].startswith("Use this skill when writing SQL queries")
    assert shown["category"] == "data_analysis"
    assert "# SQL Best Practices" in str(shown), "the Markdown body is not shown"
    p = ref_mc.run("skills", "show", "no-such-skill", "--json", check=False)
    assert p.returncode != 0
    assert "no-such-skill" in p.stdout + p.stderr


def test_skills_search(ref_mc):
    hits = ref_mc.json("skills", "search", "SQL joins indexes", "--json")
    assert isinstance(hits, list) and hits
    assert hits[0]["name"] == "sql-best-practices"
    scores = [h["score"] for h in hits]
    assert all(isinstance(x, (int, float)) and x > 0 for x in scores)
    assert scores == sorted(scores, reverse=True)
    names = [h["name"] for h in hits]
    assert "professional-email-drafting" not in names  # shares no word with the query
    assert ref_mc.json("skills", "search", "zzqxv wqpzt", "--json") == []


def test_skills_check_clean(ref_mc):
    p = ref_mc.run("skills", "check", "--json")
    out = json.loads(p.stdout)
    assert out["skills"] == len(reference_skill_names())
    assert out["problems"] == []
    assert p.returncode == 0


def test_skills_check_reports_broken_files(mc, tmp_path):
    root = tmp_path / "broken-bank"
    broken = broken_bank(root)
    mc.config_set("skills.dir", str(root))
    p = mc.run("skills", "check", "--json", check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert out["skills"] == 2
    probs = out["problems"]
    for folder in broken:
        hit = [x for x in probs if folder in x["path"]]
        assert hit, f"{folder} not reported: {probs}"
        assert isinstance(hit[0]["reason"], str) and hit[0]["reason"].strip()
    assert not any("weather-briefing" in x["path"] or "email-drafting" in x["path"] for x in probs)
    names = {s["name"] for s in mc.json("skills", "list", "--json")}
    assert {"weather-briefing", "email-drafting"} <= names


def test_unsafe_skill_name_is_rejected(mc, tmp_path):
    root = tmp_path / "bank"
    make_test_skills(root)
    write_skill(root, "x", "", "", folder="escape", raw="---\nname: ../escape\ndescription: Escape.\n---\nBody\n")
    write_skill(root, "x", "", "", folder="Bad Name!", raw="---\nname: Bad Name!\ndescription: Bad.\n---\nBody\n")
    mc.config_set("skills.dir", str(root))
    p = mc.run("skills", "check", "--json", check=False)
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["skills"] == len(TEST_SKILLS)
    assert any("escape" in x["path"] for x in out["problems"])
    assert any("Bad Name!" in x["path"] for x in out["problems"])


# --------------------------------------------------------------------------- serving

def test_starter_bank_is_seeded(proxies):
    srv = proxies.start("openai", skills=None, name="seeded")
    listed = srv.mc.json("skills", "list", "--json")
    assert len(listed) >= 20, f"starter bank has {len(listed)} skills"
    for s in listed:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", s["name"]), s["name"]
        assert s["description"].strip()
    skills_dir = srv.mc.home / "skills"  # the documented default
    assert len(list(skills_dir.glob("*/SKILL.md"))) >= 20
    p = srv.mc.run("skills", "check", "--json")
    assert p.returncode == 0
    # The bundled bank is not the third-party reference bank copied in.
    assert {s["name"] for s in listed} != set(reference_skill_names())


def test_reference_bank_injection(proxies, fake, tmp_path):
    bank = copy_reference_skills(tmp_path / "bank")
    srv = proxies.start("openai", skills=bank, name="refbank")
    m = uid()
    srv.openai().chat.completions.create(model="fake-gpt-4o", messages=[
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": f"SQL joins indexes {m}"}])
    system = upstream_system_text(fake.only(m).body, "openai")
    assert_injected(system, ["sql-best-practices"], absent=["professional-email-drafting", "git-workflow"])
    names = injected_names(system)
    assert 1 <= len(names) <= 6, "skills.top_k defaults to 6"
    assert "# SQL Best Practices" in system, "the skill body was not injected"


def test_top_k(proxies, fake, tmp_path):
    bank = copy_reference_skills(tmp_path / "bank")
    srv = proxies.start("openai", {"skills.top_k": "1"}, skills=bank, name="topk")
    m = uid()
    srv.openai().chat.completions.create(model="fake-gpt-4o", messages=[
        {"role": "user", "content": f"Debug this failing test before you ship the SQL migration script {m}"}])
    assert len(injected_names(upstream_system_text(fake.only(m).body, "openai"))) == 1


def test_skills_disabled(proxies, fake):
    srv = proxies.start("openai", {"skills.enabled": "false"}, name="disabled")
    m = uid()
    srv.openai().chat.completions.create(model="fake-gpt-4o", messages=[
        {"role": "system", "content": f"sys {m}"}, {"role": "user", "content": QUERIES["weather-briefing"]}])
    rec = fake.only(m)
    assert_not_injected(upstream_system_text(rec.body, "openai"))
    assert rec.body["messages"][0] == {"role": "system", "content": f"sys {m}"}
    t = srv.mc.wait_turn(m)
    assert t["injected_skills"] == []


def test_server_skips_broken_skills(proxies, fake, tmp_path):
    root = tmp_path / "broken-bank"
    broken_bank(root)
    srv = proxies.start("openai", skills=root, name="broken")
    client = srv.openai()
    m = uid()
    client.chat.completions.create(model="fake-gpt-4o", messages=[
        {"role": "user", "content": f"{QUERIES['weather-briefing']} {m}"}])
    assert_injected(upstream_system_text(fake.only(m).body, "openai"), ["weather-briefing"])
    m2 = uid()
    client.chat.completions.create(model="fake-gpt-4o", messages=[
        {"role": "user", "content": f"Zeppelin helium valves mismatch {m2}"}])
    names = injected_names(upstream_system_text(fake.only(m2).body, "openai"))
    assert not names & {"bad-yaml", "no-description", "name-mismatch", "another-name", "no-front-matter"}
    assert srv.alive()


def test_live_reload(proxies, fake, tmp_path):
    root = make_test_skills(tmp_path / "live-bank")
    srv = proxies.start("openai", skills=root, name="live")
    client = srv.openai()
    query = "Zeppelin helium valves inspection"

    def injected_now() -> tuple[set[str], str]:
        m = uid()
        client.chat.completions.create(model="fake-gpt-4o", max_tokens=8,
                                       messages=[{"role": "user", "content": f"{query} {m}"}])
        system = upstream_system_text(fake.only(m).body, "openai")
        return injected_names(system), system

    assert "zeppelin-maintenance" not in injected_now()[0]
    write_skill(root, "zeppelin-maintenance", "Inspect zeppelin airship envelopes and helium valves.",
                "Check every helium valve seal first.", "ops")
    wait_until(lambda: "zeppelin-maintenance" in injected_now()[0], timeout=15, interval=0.3,
               what="a new skill folder to be picked up")
    # Edit it: the new body is what gets injected.
    mark = f"MARK{uid()}"
    write_skill(root, "zeppelin-maintenance", "Inspect zeppelin airship envelopes and helium valves.",
                f"Check every helium valve seal first. {mark}", "ops")
    wait_until(lambda: mark in injected_now()[1], timeout=15, interval=0.3, what="an edited skill to reload")
    listed = {s["name"] for s in srv.mc.json("skills", "list", "--json")}
    assert "zeppelin-maintenance" in listed
    # Delete it: no longer injected.
    shutil.rmtree(root / "zeppelin-maintenance")
    wait_until(lambda: "zeppelin-maintenance" not in injected_now()[0], timeout=15, interval=0.3,
               what="a deleted skill to stop being injected")
    assert srv.alive()


def test_usage_statistics(proxies, fake):
    srv = proxies.start("openai", name="stats")
    for _ in range(2):
        srv.openai().chat.completions.create(model="fake-gpt-4o", max_tokens=8, messages=[
            {"role": "user", "content": f"{QUERIES['sql-tuning']} {uid()}"}])

    def stats():
        by = {s["name"]: s for s in srv.mc.json("skills", "list", "--json")}
        s = by["sql-tuning"]
        return by if s["injected"] and s["last_used_ms"] else None
    by = wait_until(stats, what="usage statistics of sql-tuning")
    if isinstance(by["sql-tuning"]["injected"], int) and not isinstance(by["sql-tuning"]["injected"], bool):
        assert by["sql-tuning"]["injected"] == 2
    assert not by["email-drafting"]["injected"]
    assert not by["email-drafting"]["last_used_ms"]
    shown = srv.mc.json("skills", "show", "sql-tuning", "--json")
    assert shown["name"] == "sql-tuning"
