"""Skill curation end to end: the real openai client makes turns through
`metaclaw serve`, a local fake judge (OpenAI wire format) scores the turns
that carry one skill -1 and the rest +1, and `metaclaw skills list` shows
each skill's use and effect against its baseline. `metaclaw schedule
train-now` gives the curator a window: it disables the skill that hurts
(the file stays, with the reason) and merges near-duplicate evolved skills;
the schedule's timeline records the run, `metaclaw skills history` tells
the story, and `metaclaw skills disable | enable` are the user's switch."""

from __future__ import annotations

import json
from pathlib import Path

from harness import (QUERIES, MetaClaw, http_request, injected_names, make_test_skills, uid,
                     upstream_system_text, wait_until, write_skill)
from test_prm import FakeJudge

HURTS = "ZQX-HURTS"

# No sleep hours and no display (so no idle signal): the only window is the
# one train-now opens.
QUIET = {"scheduler.sleep_start": "", "scheduler.min_window_minutes": 0}
NO_DISPLAY = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}


class RuleJudge(FakeJudge):
    """A fake judge scoring -1 when the judged turn contains HURTS, else +1."""

    def __init__(self) -> None:
        super().__init__([(200, "")])
        judge = self

        class ByPrompt:
            def __next__(self):
                prompt = judge.prompts[-1]
                return (200, "It made things worse.\nScore: -1") if HURTS in prompt \
                    else (200, "Fine.\nScore: 1")

        self.script = ByPrompt()


def skills_by_name(mc: MetaClaw) -> dict[str, dict]:
    return {s["name"]: s for s in mc.json("skills", "list", "--json")}


def ask(srv, text: str) -> str:
    """One finished single-turn session; returns its marker."""
    m = uid()
    srv.openai().chat.completions.create(
        model="fake-gpt-4o", max_tokens=32, messages=[{"role": "user", "content": f"{text} {m}"}],
        extra_headers={"X-Session-Id": f"cur-{m}", "X-Session-Done": "true"})
    return m


def injected(srv, fake, text: str) -> set[str]:
    m = ask(srv, text)
    return injected_names(upstream_system_text(fake.find(m)[-1].body, "openai"))


def generation(srv) -> int:
    status, _, body = http_request(srv.port, "GET", "/healthz")
    assert status == 200
    return json.loads(body)["skill_generation"]


def curator_runs(mc: MetaClaw) -> list[dict]:
    day = mc.json("schedule", "timeline", "--json")
    return [w for window in day["windows"] for w in window["work"] if w["worker"] == "curator"]


def train_now_and_wait(srv) -> dict:
    before = len(curator_runs(srv.mc))
    srv.mc.run("schedule", "train-now")

    def finished():
        runs = curator_runs(srv.mc)
        return runs[-1] if len(runs) > before and runs[-1]["outcome"] is not None else None

    return wait_until(finished, 30, 0.2, "the curator's run to end")


def front_matter(path: Path) -> str:
    return path.read_text("utf-8").split("---", 2)[1]


def test_effect_stats_and_the_curator_disables_a_skill_that_hurts(proxies, fake):
    with RuleJudge() as judge:
        srv = proxies.start("openai", {
            "prm.model": "judge-model",
            "prm.enabled": True,
            "prm.base_url": judge.base_url,
            "prm.votes": 1,
            "curator.min_uses": 3,
            "curator.harm_margin": 0.5,
            **QUIET,
        }, name="curation", env_extra=NO_DISPLAY)
        # The weather skill's turns go wrong; the SQL skill's turns, later, go fine.
        for _ in range(3):
            ask(srv, f"{QUERIES['weather-briefing']} {HURTS}")
        for _ in range(3):
            ask(srv, QUERIES["sql-tuning"])

        def all_scored():
            skills = skills_by_name(srv.mc)
            done = skills["weather-briefing"]["scored"] == 3 and skills["sql-tuning"]["scored"] == 3
            return skills if done else None

        skills = wait_until(all_scored, 30, 0.3, "every turn to be scored")
        weather, sql = skills["weather-briefing"], skills["sql-tuning"]
        assert weather["injected"] == 3 and weather["last_used_ms"] and weather["first_used_ms"]
        assert (weather["mean_score"], weather["baseline_scored"], weather["baseline_mean"]) == (-1.0, 3, 1.0)
        assert weather["effect"] == -2.0
        # Nothing scored without the SQL skill since its first use: no baseline yet.
        assert (sql["mean_score"], sql["baseline_scored"], sql["baseline_mean"], sql["effect"]) == (1.0, 0, None, None)
        assert skills["email-drafting"]["injected"] == 0 and skills["email-drafting"]["effect"] is None
        table = srv.mc.run("skills", "list").stdout
        weather_row = next(line for line in table.splitlines() if line.startswith("weather-briefing"))
        assert "-1.00 (3)" in weather_row and "+1.00 (3)" in weather_row and "-2.00" in weather_row, table
        assert "SCORE" in table and "BASELINE" in table and "EFFECT" in table
        shown = srv.mc.run("skills", "show", "weather-briefing").stdout
        assert "score: -1.00 over 3 scored turns" in shown and "effect: -2.00" in shown, shown

        run = train_now_and_wait(srv)
        assert (run["outcome"], run["summary"]) == ("finished", "merged 0, disabled 1")

        weather = skills_by_name(srv.mc)["weather-briefing"]
        assert weather["status"] == "disabled"
        assert weather["disabled_reason"].startswith("hurts: mean score -1.00 over 3 scored turns"), weather
        skill_file = Path(srv.mc.config_get("skills.dir")) / "weather-briefing" / "SKILL.md"
        fm = front_matter(skill_file)
        assert "status: disabled" in fm and "disabled_by: curator" in fm, fm
        assert "disabled_reason:" in fm and "hurts: mean score -1.00" in fm, fm
        assert skills_by_name(srv.mc)["sql-tuning"]["status"] == "active"
        assert generation(srv) == 1
        assert "weather-briefing" not in injected(srv, fake, QUERIES["weather-briefing"])

        history = srv.mc.json("skills", "history", "weather-briefing", "--json")
        assert history["status"] == "disabled" and history["provenance"]["origin"] == "user"
        [event] = history["events"]
        assert (event["event"], event["by"], event["skill_generation"]) == ("disabled", "curator", 1)
        assert event["detail"].startswith("hurts:")
        # The request after the disable did not carry it: still 3 uses, all in generation 0.
        assert history["usage"]["injected"] == 3
        assert history["usage_by_generation"] == [
            {"skill_generation": 0, "uses": 3, "scored": 3, "mean_score": -1.0}]
        assert sum(d["uses"] for d in history["usage_by_day"]) == 3
        text = srv.mc.run("skills", "history", "weather-briefing").stdout
        for expected in ("weather-briefing: disabled, user", "disabled: hurts:", "TIME", "curator",
                         "GENERATION", "effect: -2.00"):
            assert expected in text, f"{expected!r} missing:\n{text}"

        # The user turns it back on; the server's watcher picks the file up.
        out = srv.mc.run("skills", "enable", "weather-briefing").stdout
        assert "enabled weather-briefing" in out and "generation 2" in out, out
        assert "disabled" not in front_matter(skill_file)
        wait_until(lambda: "weather-briefing" in injected(srv, fake, QUERIES["weather-briefing"]), 10, 0.5,
                   "the enabled skill to be injected again")
        events = srv.mc.json("skills", "history", "weather-briefing", "--json")["events"]
        assert [(e["event"], e["by"]) for e in events] == [("disabled", "curator"), ("enabled", "user")]


BODY = ("- Write every zorblat meeting time with its UTC offset such as 10:00+08:00.\n"
        "- Name the time zone of each attendee too.")
EXTRA = "- Ask which zone is meant."


def evolved_skill(root: Path, name: str, body: str) -> None:
    raw = (f"---\nname: {name}\ndescription: Use when stating zorblat meeting times\n"
           f"origin: evolved\nevolved_from_session: s-{name}\nevolver_model: evolver-model\n---\n{body}\n")
    write_skill(root, name, "", "", raw=raw)


def test_near_duplicate_evolved_skills_are_merged_into_the_more_used(proxies, fake, tmp_path):
    library = make_test_skills(tmp_path / "library")
    evolved_skill(library, "zz-meeting-offsets", BODY)
    srv = proxies.start("openai", QUIET, name="curation-merge", skills=library, env_extra=NO_DISPLAY)
    for _ in range(2):
        assert "zz-meeting-offsets" in injected(srv, fake, "When is the zorblat meeting time?")
    # A later evolution wrote a near-copy with one more line: alphabetically
    # first, but used less (once the server has loaded it, both are injected).
    evolved_skill(library, "aa-meeting-offsets", f"{BODY}\n{EXTRA}")
    wait_until(lambda: "aa-meeting-offsets" in injected(srv, fake, "When is the zorblat meeting time?"),
               10, 0.2, "the server to load the new skill")

    run = train_now_and_wait(srv)
    assert (run["outcome"], run["summary"]) == ("finished", "merged 1, disabled 0")
    skills = skills_by_name(srv.mc)
    gone, kept = skills["aa-meeting-offsets"], skills["zz-meeting-offsets"]
    assert (gone["status"], gone["disabled_reason"]) == ("disabled", "merged into zz-meeting-offsets")
    assert kept["status"] == "active"
    kept_text = (library / "zz-meeting-offsets" / "SKILL.md").read_text("utf-8")
    assert EXTRA in kept_text and "## Also learned (" in kept_text, kept_text
    assert "merged_from:\n- aa-meeting-offsets" in kept_text, kept_text
    # The user's own skills are never touched.
    assert all(s["status"] == "active" for n, s in skills.items() if not n.endswith("meeting-offsets"))

    kept_history = srv.mc.json("skills", "history", "zz-meeting-offsets", "--json")
    assert kept_history["provenance"]["session_id"] == "s-zz-meeting-offsets"
    [merged] = kept_history["events"]
    assert (merged["event"], merged["by"], merged["other_skill"]) == ("merged_from", "curator", "aa-meeting-offsets")
    assert "1 new line added to zz-meeting-offsets" in merged["detail"]
    kept_uses = kept_history["usage"]["injected"]
    assert kept_uses >= gone["injected"] + 2 and gone["injected"] >= 1
    gone_events = srv.mc.json("skills", "history", "aa-meeting-offsets", "--json")["events"]
    assert [(e["event"], e.get("other_skill")) for e in gone_events] == [("merged_into", "zz-meeting-offsets")]

    names = injected(srv, fake, "When is the zorblat meeting time?")
    assert "zz-meeting-offsets" in names and "aa-meeting-offsets" not in names


def test_disable_and_enable_by_hand(mc, tmp_path):
    library = make_test_skills(tmp_path / "library")
    mc.config_set("skills.dir", str(library))
    write_skill(library, "waiting-review", "", "", raw=(
        "---\nname: waiting-review\ndescription: Use when reviewing zeppelins\nstatus: pending\n"
        "origin: evolved\n---\nZeppelin checks.\n"))

    out = mc.run("skills", "disable", "sql-tuning", "--reason", "our team writes no SQL").stdout
    assert "disabled sql-tuning" in out and "generation 1" in out, out
    fm = front_matter(library / "sql-tuning" / "SKILL.md")
    assert "status: disabled" in fm and "disabled_reason: our team writes no SQL" in fm and "disabled_by: user" in fm
    listed = skills_by_name(mc)["sql-tuning"]
    assert (listed["status"], listed["disabled_reason"]) == ("disabled", "our team writes no SQL")
    hits = mc.json("skills", "search", QUERIES["sql-tuning"], "--json")
    assert "sql-tuning" not in [h["name"] for h in hits]

    again = mc.run("skills", "disable", "sql-tuning", check=False)
    assert again.returncode != 0 and "already disabled" in again.stderr
    default_reason = mc.run("skills", "disable", "git-rebase-helper").stdout
    assert "generation 2" in default_reason
    assert skills_by_name(mc)["git-rebase-helper"]["disabled_reason"] == "disabled by the user"

    out = mc.run("skills", "enable", "sql-tuning").stdout
    assert "enabled sql-tuning" in out and "generation 3" in out, out
    assert "disabled" not in front_matter(library / "sql-tuning" / "SKILL.md")
    assert skills_by_name(mc)["sql-tuning"]["disabled_reason"] is None
    again = mc.run("skills", "enable", "sql-tuning", check=False)
    assert again.returncode != 0 and "already active" in again.stderr
    pending = mc.run("skills", "enable", "waiting-review", check=False)
    assert pending.returncode != 0 and "skills approve waiting-review" in pending.stderr
    missing = mc.run("skills", "disable", "no-such-skill", check=False)
    assert missing.returncode != 0 and "no-such-skill" in missing.stderr
    bad = mc.run("skills", "disable", "../escape", check=False)
    assert bad.returncode != 0

    # Approval is part of a skill's history too.
    mc.run("skills", "approve", "waiting-review")
    history = mc.json("skills", "history", "waiting-review", "--json")
    assert [(e["event"], e["by"]) for e in history["events"]] == [("approved", "user")]
    history = mc.json("skills", "history", "sql-tuning", "--json")
    assert [e["event"] for e in history["events"]] == ["disabled", "enabled"]
    assert history["events"][1]["detail"] == "enabled by the user (it was disabled: our team writes no SQL)"
    assert history["usage"]["injected"] == 0 and history["usage_by_day"] == []
    text = mc.run("skills", "history", "sql-tuning").stdout
    assert "sql-tuning: active, user" in text and "used: never injected" in text, text
    unknown = mc.run("skills", "history", "no-such-skill", check=False)
    assert unknown.returncode != 0 and "no-such-skill" in unknown.stderr
