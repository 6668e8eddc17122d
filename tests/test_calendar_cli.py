"""`metaclaw calendar busy | list | add | remove` against real-shaped .ics files
(Thunderbird, Outlook, Google/Apple, khal's vdir folders) and subscription URLs
served by a local HTTP server: recurrence across daylight saving, Windows zone
names, all-day and floating times read in --tz, cached copies when the feed is
gone, broken sources reported without stopping the others, bad arguments."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from harness import BIN, MetaClaw, closed_port


def ics(body: str, prodid: str = "-//Example//Hand written//EN") -> str:
    """A VCALENDAR around ``body`` with CRLF line endings, as exporters write."""
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:{prodid}\n{textwrap.dedent(body).strip()}\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n")


BERLIN_VTIMEZONE = """
    BEGIN:VTIMEZONE
    TZID:Europe/Berlin
    X-LIC-LOCATION:Europe/Berlin
    BEGIN:DAYLIGHT
    TZOFFSETFROM:+0100
    TZOFFSETTO:+0200
    TZNAME:CEST
    DTSTART:19700329T020000
    RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
    END:DAYLIGHT
    BEGIN:STANDARD
    TZOFFSETFROM:+0200
    TZOFFSETTO:+0100
    TZNAME:CET
    DTSTART:19701025T030000
    RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
    END:STANDARD
    END:VTIMEZONE
"""

# Thunderbird: a weekly series over the end of summer time (2026-10-25) with
# an EXDATE, one instance moved and one cancelled.
SERIES_UID = "arch-sync-2026@example.org"
SERIES = ics(BERLIN_VTIMEZONE + f"""
    BEGIN:VEVENT
    UID:{SERIES_UID}
    SUMMARY:Architecture sync
    DTSTAMP:20260901T120000Z
    DTSTART;TZID=Europe/Berlin:20261006T100000
    DTEND;TZID=Europe/Berlin:20261006T110000
    RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=6
    EXDATE;TZID=Europe/Berlin:20261013T100000
    END:VEVENT
    BEGIN:VEVENT
    UID:{SERIES_UID}
    SUMMARY:Architecture sync (moved)
    DTSTAMP:20260901T120000Z
    RECURRENCE-ID;TZID=Europe/Berlin:20261020T100000
    DTSTART;TZID=Europe/Berlin:20261020T150000
    DTEND;TZID=Europe/Berlin:20261020T160000
    SEQUENCE:1
    END:VEVENT
    BEGIN:VEVENT
    UID:{SERIES_UID}
    SUMMARY:Architecture sync
    DTSTAMP:20260901T120000Z
    RECURRENCE-ID;TZID=Europe/Berlin:20261103T100000
    DTSTART;TZID=Europe/Berlin:20261103T100000
    DTEND;TZID=Europe/Berlin:20261103T110000
    STATUS:CANCELLED
    SEQUENCE:2
    END:VEVENT
""", "-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN")


def ev(start: str, end: str, summary: str, uid: str) -> dict[str, Any]:
    return {"start": start, "end": end, "summary": summary, "uid": uid}


SERIES_BUSY = [
    # 10:00 CEST is 08:00 UTC; 10-13 is an EXDATE.
    ev("2026-10-06T08:00:00Z", "2026-10-06T09:00:00Z", "Architecture sync", SERIES_UID),
    # Moved to 15:00 CEST.
    ev("2026-10-20T13:00:00Z", "2026-10-20T14:00:00Z", "Architecture sync (moved)", SERIES_UID),
    # After 10-25 Berlin is on CET: 10:00 is 09:00 UTC. 11-03 is cancelled.
    ev("2026-10-27T09:00:00Z", "2026-10-27T10:00:00Z", "Architecture sync", SERIES_UID),
    # COUNT=6 counts the EXDATE and the cancelled instance: 11-10 is the last.
    ev("2026-11-10T09:00:00Z", "2026-11-10T10:00:00Z", "Architecture sync", SERIES_UID),
]

# Outlook: Windows zone names, quoted TZIDs, a lunch marked free.
OUTLOOK_UID = "040000008200E00074C5B7101A82E00800000000D0C6A2B1C0B0DC01000000000000000010000000"
OUTLOOK = ics("""
    BEGIN:VTIMEZONE
    TZID:Pacific Standard Time
    BEGIN:STANDARD
    DTSTART:16011104T020000
    RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11
    TZOFFSETFROM:-0700
    TZOFFSETTO:-0800
    END:STANDARD
    BEGIN:DAYLIGHT
    DTSTART:16010311T020000
    RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3
    TZOFFSETFROM:-0800
    TZOFFSETTO:-0700
    END:DAYLIGHT
    END:VTIMEZONE
    BEGIN:VTIMEZONE
    TZID:W. Europe Standard Time
    BEGIN:STANDARD
    DTSTART:16011028T030000
    RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
    TZOFFSETFROM:+0200
    TZOFFSETTO:+0100
    END:STANDARD
    BEGIN:DAYLIGHT
    DTSTART:16010325T020000
    RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
    TZOFFSETFROM:+0100
    TZOFFSETTO:+0200
    END:DAYLIGHT
    END:VTIMEZONE
    BEGIN:VEVENT
    CLASS:PUBLIC
    DTSTART;TZID="Pacific Standard Time":20260310T090000
    DTEND;TZID="Pacific Standard Time":20260310T100000
    DTSTAMP:20260210T081500Z
    SUMMARY;LANGUAGE=en-us:Sync with Seattle
    TRANSP:OPAQUE
    UID:seattle-sync@outlook.example
    END:VEVENT
    BEGIN:VEVENT
    CLASS:PUBLIC
    DESCRIPTION:Agenda: numbers for Q1\\, hiring plan\\, and the roadmap for th
     e second half of the year.\\n
    DTSTART;TZID="W. Europe Standard Time":20260317T110000
    DTEND;TZID="W. Europe Standard Time":20260317T120000
    DTSTAMP:20260210T081500Z
    LOCATION:Room 4.12
    SUMMARY;LANGUAGE=en-us:Quarterly review
    TRANSP:OPAQUE
    UID:""" + OUTLOOK_UID + """
    END:VEVENT
    BEGIN:VEVENT
    DTSTART;TZID="W. Europe Standard Time":20260317T123000
    DTEND;TZID="W. Europe Standard Time":20260317T133000
    DTSTAMP:20260210T081500Z
    SUMMARY:Lunch and learn
    TRANSP:TRANSPARENT
    UID:lunch-and-learn@outlook.example
    END:VEVENT
""", "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN")

OUTLOOK_BUSY = [
    # Pacific is on PDT (UTC-7) from 03-08.
    ev("2026-03-10T16:00:00Z", "2026-03-10T17:00:00Z", "Sync with Seattle", "seattle-sync@outlook.example"),
    # W. Europe before its switch: UTC+1.
    ev("2026-03-17T10:00:00Z", "2026-03-17T11:00:00Z", "Quarterly review", OUTLOOK_UID),
]

# Google / Apple: an all-day trip, a DURATION event, a floating lunch and a
# cancelled call.
MIXED = ics("""
    BEGIN:VEVENT
    UID:lisbon-2026@example.org
    SUMMARY:Conference in Lisbon
    DTSTAMP:20260101T000000Z
    DTSTART;VALUE=DATE:20260328
    DTEND;VALUE=DATE:20260331
    END:VEVENT
    BEGIN:VEVENT
    UID:workshop@google.com
    SUMMARY:Vendor workshop
    DTSTAMP:20260101T000000Z
    DTSTART:20260316T090000Z
    DURATION:PT1H30M
    STATUS:CONFIRMED
    END:VEVENT
    BEGIN:VEVENT
    UID:lunch-sam@example.org
    SUMMARY:Lunch with Sam
    DTSTAMP:20260101T000000Z
    DTSTART:20260318T130000
    DTEND:20260318T140000
    END:VEVENT
    BEGIN:VEVENT
    UID:vendor-call@google.com
    SUMMARY:Vendor call (cancelled)
    DTSTAMP:20260101T000000Z
    DTSTART:20260319T170000Z
    DTEND:20260319T180000Z
    STATUS:CANCELLED
    END:VEVENT
""", "-//Google Inc//Google Calendar 70.9054//EN")

WORKSHOP = ev("2026-03-16T09:00:00Z", "2026-03-16T10:30:00Z", "Vendor workshop", "workshop@google.com")


def mixed_busy(lunch: tuple[str, str], trip: tuple[str, str]) -> list[dict[str, Any]]:
    return [WORKSHOP,
            ev(*lunch, "Lunch with Sam", "lunch-sam@example.org"),
            ev(*trip, "Conference in Lisbon", "lisbon-2026@example.org")]


HTML = "<!DOCTYPE html>\n<html><body>Sign in to view this calendar</body></html>\n"


# --------------------------------------------------------------------------- helpers

@pytest.fixture()
def cal(tmp_path: Path) -> Path:
    """A folder of calendar files for one test."""
    d = tmp_path / "cal"
    d.mkdir()
    (d / "series.ics").write_text(SERIES, "utf-8", newline="")
    (d / "outlook.ics").write_text(OUTLOOK, "utf-8", newline="")
    (d / "mixed.ics").write_text(MIXED, "utf-8", newline="")
    (d / "login.ics").write_text(HTML, "utf-8")
    return d


def busy_json(mc: MetaClaw, *args: Any) -> Any:
    return mc.json("calendar", "busy", *args, "--json")


def fails(mc: MetaClaw, *args: Any, cwd: Path | None = None) -> str:
    """Runs a command that must fail; returns its stderr."""
    p = run(mc, *args, cwd=cwd)
    assert p.returncode != 0, f"`metaclaw {' '.join(map(str, args))}` succeeded:\n{p.stdout}\n{p.stderr}"
    assert p.stdout == "", f"a failed command printed a result: {p.stdout!r}"
    return p.stderr


def run(mc: MetaClaw, *args: Any, cwd: Path | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run([str(BIN), *map(str, args)], env=mc.env, cwd=cwd, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    mc.outputs.append(p.stdout + p.stderr)
    return p


def calendars(mc: MetaClaw) -> list[str]:
    value = mc.json("config", "get", "scheduler.calendars", "--json")["value"]
    return json.loads(value)


class Feed:
    """A calendar subscription on loopback: 200 with an ETag, 304 when the
    client sends it back, 404 for anything else."""

    ETAG = '"v1-arch-sync"'

    def __init__(self, body: str):
        self.body = body.encode()
        self.full = 0
        self.not_modified = 0
        self.paths: list[str] = []
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                feed.paths.append(self.path)
                if not self.path.startswith("/private/"):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == Feed.ETAG:
                    feed.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", Feed.ETAG)
                    self.end_headers()
                    return
                feed.full += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar; charset=utf-8")
                self.send_header("ETag", Feed.ETAG)
                self.send_header("Content-Length", str(len(feed.body)))
                self.end_headers()
                self.wfile.write(feed.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    def url(self, path: str = "/private/9f8e7d6c-secret-token/basic.ics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.running = False


@pytest.fixture()
def feed():
    f = Feed(SERIES)
    yield f
    f.stop()


def shown(url: str) -> str:
    """A URL as the CLI shows it: host and a short hash, never the secret path."""
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/…#{hashlib.sha256(url.encode()).hexdigest()[:8]}"


AUTUMN = ("--from", "2026-10-01T00:00:00Z", "--to", "2026-12-01T00:00:00Z")
MARCH = ("--from", "2026-03-01T00:00:00Z", "--to", "2026-04-01T00:00:00Z")


# --------------------------------------------------------------------------- busy: expansion

def test_weekly_series_with_exdate_override_and_cancelled_instance_across_dst(mc, cal):
    assert busy_json(mc, cal / "series.ics", *AUTUMN, "--tz", "UTC") == SERIES_BUSY
    # The zone only matters for floating and all-day times: same answer.
    assert busy_json(mc, cal / "series.ics", *AUTUMN, "--tz", "Asia/Tokyo") == SERIES_BUSY
    # A range given as local dates, read in --tz: Berlin midnight to midnight.
    got = busy_json(mc, cal / "series.ics", "--from", "2026-10-27", "--to", "2026-10-28", "--tz", "Europe/Berlin")
    assert got == [SERIES_BUSY[2]]
    # Occurrences that overlap the range start are included, unclipped.
    got = busy_json(mc, cal / "series.ics", "--from", "2026-10-20T13:30:00Z", "--to", "2026-10-20T13:31:00Z")
    assert got == [SERIES_BUSY[1]]


def test_outlook_windows_zone_names_and_a_free_lunch(mc, cal):
    assert busy_json(mc, cal / "outlook.ics", *MARCH, "--tz", "UTC") == OUTLOOK_BUSY


def test_all_day_duration_floating_and_cancelled_events_follow_tz(mc, cal):
    berlin = mixed_busy(("2026-03-18T12:00:00Z", "2026-03-18T13:00:00Z"),
                        ("2026-03-27T23:00:00Z", "2026-03-30T22:00:00Z"))  # CET to CEST: one 23-hour day
    assert busy_json(mc, cal / "mixed.ics", *MARCH, "--tz", "Europe/Berlin") == berlin
    # A Windows zone name works for --tz too.
    assert busy_json(mc, cal / "mixed.ics", *MARCH, "--tz", "W. Europe Standard Time") == berlin
    new_york = mixed_busy(("2026-03-18T17:00:00Z", "2026-03-18T18:00:00Z"),  # EDT since 03-08
                          ("2026-03-28T04:00:00Z", "2026-03-31T04:00:00Z"))
    assert busy_json(mc, cal / "mixed.ics", *MARCH, "--tz", "America/New_York") == new_york
    tokyo = mixed_busy(("2026-03-18T04:00:00Z", "2026-03-18T05:00:00Z"),
                       ("2026-03-27T15:00:00Z", "2026-03-30T15:00:00Z"))
    assert busy_json(mc, cal / "mixed.ics", *MARCH, "--tz", "Asia/Tokyo") == tokyo
    # Without --tz: scheduler.timezone.
    mc.config_set("scheduler.timezone", "America/New_York")
    assert busy_json(mc, cal / "mixed.ics", *MARCH) == new_york


def test_several_sources_merge_sorted_by_start(mc, cal):
    got = busy_json(mc, cal / "outlook.ics", cal / "mixed.ics", cal / "series.ics",
                    "--from", "2026-01-01T00:00:00Z", "--to", "2027-01-01T00:00:00Z", "--tz", "Europe/Berlin")
    berlin = mixed_busy(("2026-03-18T12:00:00Z", "2026-03-18T13:00:00Z"),
                        ("2026-03-27T23:00:00Z", "2026-03-30T22:00:00Z"))
    assert got == [OUTLOOK_BUSY[0], berlin[0], OUTLOOK_BUSY[1], berlin[1], berlin[2], *SERIES_BUSY]


def test_at_inside_and_outside_a_meeting(mc, cal):
    series = cal / "series.ics"
    assert busy_json(mc, series, "--at", "2026-10-20T13:30:00Z") == {"busy": True, "events": [SERIES_BUSY[1]]}
    # The moved instance's original slot, the EXDATE, the cancelled instance, the end (exclusive).
    for t in ("2026-10-20T08:30:00Z", "2026-10-13T08:30:00Z", "2026-11-03T09:30:00Z", "2026-10-20T14:00:00Z"):
        assert busy_json(mc, series, "--at", t) == {"busy": False, "events": []}, t
    # Local times without an offset are read in --tz (10:15 CET).
    assert busy_json(mc, series, "--at", "2026-10-27 10:15", "--tz", "Europe/Berlin") == \
        {"busy": True, "events": [SERIES_BUSY[2]]}
    assert busy_json(mc, series, "--at", "2026-10-27T10:15", "--tz", "Europe/Berlin")["busy"] is True
    assert busy_json(mc, series, "--at", "2026-10-27T11:15:00+02:00")["busy"] is True

    text = mc.run("calendar", "busy", series, "--at", "2026-10-20T13:30:00Z", "--tz", "Europe/Berlin").stdout
    assert "busy at Tue 2026-10-20 15:30 (Europe/Berlin) until 16:00" in text, text
    assert "Tue 2026-10-20 15:00–16:00  Architecture sync (moved)" in text, text
    text = mc.run("calendar", "busy", series, "--at", "2026-10-20T08:30:00Z", "--tz", "Europe/Berlin").stdout
    assert text.strip() == "free at Tue 2026-10-20 10:30 (Europe/Berlin)", text


def test_human_range_output_is_local_time_with_summaries(mc, cal):
    p = mc.run("calendar", "busy", cal / "series.ics", *AUTUMN, "--tz", "Europe/Berlin")
    lines = p.stdout.splitlines()
    assert lines[0] == "busy times from Thu 2026-10-01 02:00 to Tue 2026-12-01 01:00 (Europe/Berlin):", lines
    assert [line.strip() for line in lines[1:]] == [
        "Tue 2026-10-06 10:00–11:00  Architecture sync",
        "Tue 2026-10-20 15:00–16:00  Architecture sync (moved)",
        "Tue 2026-10-27 10:00–11:00  Architecture sync",
        "Tue 2026-11-10 10:00–11:00  Architecture sync",
    ]
    assert p.stderr == ""
    p = mc.run("calendar", "busy", cal / "mixed.ics", *MARCH, "--tz", "Europe/Berlin")
    assert "Sat 2026-03-28 00:00 – Tue 2026-03-31 00:00  Conference in Lisbon" in p.stdout, p.stdout
    p = mc.run("calendar", "busy", cal / "series.ics", "--from", "2026-01-01", "--to", "2026-02-01", "--tz", "UTC")
    assert p.stdout.startswith("no busy times from"), p.stdout


def test_vdir_folder(mc, tmp_path):
    vdir = tmp_path / "vdir" / "work"
    vdir.mkdir(parents=True)
    (vdir / "displayname").write_text("Work\n")
    (vdir / "color").write_text("#56b4e9\n")
    (vdir / "2f0d1c9e-standup.ics").write_text(ics("""
        BEGIN:VEVENT
        UID:2f0d1c9e-standup
        SUMMARY:Daily standup
        DTSTART;TZID=America/New_York:20260309T091500
        DTEND;TZID=America/New_York:20260309T093000
        RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=3
        DTSTAMP:20260301T000000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:2f0d1c9e-standup
        SUMMARY:Daily standup (late)
        RECURRENCE-ID;TZID=America/New_York:20260310T091500
        DTSTART;TZID=America/New_York:20260310T110000
        DTEND;TZID=America/New_York:20260310T111500
        DTSTAMP:20260301T000000Z
        END:VEVENT
    """, "-//pimutils.org//khal//EN"), "utf-8", newline="")
    (vdir / "7c41e0aa-dentist.ics").write_text(ics("""
        BEGIN:VEVENT
        UID:7c41e0aa-dentist
        SUMMARY:Dentist
        DTSTART:20260312T190000Z
        DURATION:PT45M
        DTSTAMP:20260301T000000Z
        END:VEVENT
    """, "-//pimutils.org//khal//EN"), "utf-8", newline="")
    (vdir / "9e9e9e9e-corrupt.ics").write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:trunc")

    p = run(mc, "calendar", "busy", vdir, *MARCH, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [
        ev("2026-03-09T13:15:00Z", "2026-03-09T13:30:00Z", "Daily standup", "2f0d1c9e-standup"),
        ev("2026-03-10T15:00:00Z", "2026-03-10T15:15:00Z", "Daily standup (late)", "2f0d1c9e-standup"),
        ev("2026-03-11T13:15:00Z", "2026-03-11T13:30:00Z", "Daily standup", "2f0d1c9e-standup"),
        ev("2026-03-12T19:00:00Z", "2026-03-12T19:45:00Z", "Dentist", "7c41e0aa-dentist"),
    ]
    # The corrupt file is named; the folder still counts.
    assert "9e9e9e9e-corrupt.ics" in p.stderr, p.stderr
    assert "skipped" in p.stderr


# --------------------------------------------------------------------------- busy: broken sources

def test_a_broken_file_next_to_a_good_one(mc, cal):
    missing = cal / "work.ics"
    p = run(mc, "calendar", "busy", missing, cal / "outlook.ics", cal / "login.ics", *MARCH, "--tz", "UTC", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == OUTLOOK_BUSY
    lines = p.stderr.splitlines()
    missing_line = next(line for line in lines if line.startswith(f"{missing}:"))
    assert "broken" in missing_line and "cannot read" in missing_line and "No such file" in missing_line, lines
    login_line = next(line for line in lines if line.startswith(f"{cal / 'login.ics'}:"))
    assert "VCALENDAR" in login_line, lines
    assert not any(str(cal / "outlook.ics") in line for line in lines), "a good source was reported"


def test_every_source_broken_is_an_error(mc, cal):
    err = fails(mc, "calendar", "busy", cal / "nope.ics", cal / "login.ics", "--at", "now")
    assert "every calendar source is broken (2 of 2)" in err, err
    assert f"{cal / 'nope.ics'}:" in err and f"{cal / 'login.ics'}:" in err
    err = fails(mc, "calendar", "busy", cal / "nope.ics", "--at", "now", "--json")
    assert "the only calendar source is broken" in err, err


def test_partly_broken_file_keeps_its_good_events(mc, tmp_path):
    path = tmp_path / "partly.ics"
    path.write_text(ics("""
        BEGIN:VEVENT
        UID:bad-date@example.org
        SUMMARY:Meeting with a typo
        DTSTART:2026-03-16 10:00
        DTEND:20260316T110000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:bad-zone@example.org
        SUMMARY:Meeting in a made-up zone
        DTSTART;TZID=Atlantis/Capital:20260316T100000
        END:VEVENT
        BEGIN:VEVENT
        UID:good@example.org
        SUMMARY:Planning
        DTSTART:20260316T120000Z
        DTEND:20260316T130000Z
        END:VEVENT
    """), "utf-8", newline="")
    p = run(mc, "calendar", "busy", path, *MARCH, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [ev("2026-03-16T12:00:00Z", "2026-03-16T13:00:00Z", "Planning", "good@example.org")]
    assert 'skipped event "Meeting with a typo" (bad-date@example.org): DTSTART' in p.stderr, p.stderr
    assert "Atlantis/Capital" in p.stderr


# --------------------------------------------------------------------------- busy: subscription URLs

def test_url_is_fetched_then_revalidated_with_its_etag(mc, feed):
    url = feed.url()
    assert busy_json(mc, url, *AUTUMN) == SERIES_BUSY
    assert (feed.full, feed.not_modified) == (1, 0)
    p = run(mc, "calendar", "busy", url, *AUTUMN, "--json")
    assert p.returncode == 0 and json.loads(p.stdout) == SERIES_BUSY
    assert (feed.full, feed.not_modified) == (1, 1), "the second fetch did not send If-None-Match"
    assert p.stderr == ""
    # The copy sits in the cache folder under METACLAW_HOME, named by a hash.
    cached = list((mc.home / "calendar-cache").glob("*.ics"))
    assert len(cached) == 1 and "secret" not in cached[0].name
    assert "secret-token" not in "".join(mc.outputs)


def test_url_404_without_cache_is_broken(mc, feed):
    url = feed.url("/gone/basic.ics")
    err = fails(mc, "calendar", "busy", url, "--at", "2026-10-06T08:30:00Z", "--json")
    assert f"{shown(url)}: broken: server answered 404 Not Found" in err, err
    assert "the only calendar source is broken" in err
    # Next to a good source it is only a warning.
    p = run(mc, "calendar", "busy", url, feed.url(), "--at", "2026-10-06T08:30:00Z", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"busy": True, "events": [SERIES_BUSY[0]]}
    assert "404" in p.stderr


def test_cached_copy_is_used_when_the_feed_is_gone(mc, feed):
    url = feed.url()
    assert busy_json(mc, url, *AUTUMN) == SERIES_BUSY
    feed.stop()
    p = run(mc, "calendar", "busy", url, *AUTUMN, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == SERIES_BUSY
    assert f"{shown(url)}: stale: using the copy fetched" in p.stderr, p.stderr
    assert "request failed" in p.stderr
    assert "secret-token" not in p.stdout + p.stderr
    # Human output too: the answer on stdout, the note on stderr.
    p = run(mc, "calendar", "busy", url, "--at", "2026-10-20T13:30:00Z", "--tz", "Europe/Berlin")
    assert p.returncode == 0 and "Architecture sync (moved)" in p.stdout
    assert "stale" in p.stderr


# --------------------------------------------------------------------------- busy: bad arguments

@pytest.mark.parametrize("args,needle", [
    (("--from", "2026-10-02", "--to", "2026-10-01"), "--from (Fri 2026-10-02 00:00) must be before --to"),
    (("--from", "2026-10-01T10:00:00Z", "--to", "2026-10-01T10:00:00Z"), "must be before --to"),
    (("--at", "2026-10-01", "--from", "2026-10-01"), "cannot be used with"),
    (("--from", "2026-10-01"), "--to"),
    ((), "--at"),
    (("--at", "next tuesday"), '--at: cannot read "next tuesday" as a time'),
    (("--from", "2026-10-01", "--to", "2026-13-01"), '--to: cannot read "2026-13-01"'),
    (("--at", "now", "--tz", "Mars/Olympus_Mons"), '--tz: unknown time zone "Mars/Olympus_Mons"'),
])
def test_bad_arguments_are_refused_before_anything_is_fetched(mc, feed, args, needle):
    zone = () if "--tz" in args else ("--tz", "UTC")
    err = fails(mc, "calendar", "busy", feed.url(), *args, *zone)
    assert needle in err, err
    assert feed.paths == [], "a source was fetched although the arguments were bad"


def test_no_source_and_none_configured(mc):
    err = fails(mc, "calendar", "busy", "--at", "now")
    assert "no calendar given and none configured" in err and "metaclaw calendar add" in err, err


# --------------------------------------------------------------------------- add / remove / list

def test_add_list_busy_remove(mc, cal, feed):
    # A relative path is stored absolute, so the proxy finds it from anywhere.
    p = run(mc, "calendar", "add", "series.ics", cwd=cal)
    assert p.returncode == 0, p.stderr
    # Two busy series: the weekly one and its moved instance (the cancelled one is not busy).
    assert p.stdout.strip() == f"added {cal / 'series.ics'} (2 events); 1 calendar configured"
    assert calendars(mc) == [str(cal / "series.ics")]

    # Duplicates, written either way, are refused.
    for again in ("series.ics", str(cal / "series.ics"), f"{cal}/./series.ics", "../cal/series.ics"):
        err = fails(mc, "calendar", "add", again, cwd=cal)
        assert "already configured" in err, err
    # A missing file and a file that is not a calendar are refused with the reason.
    err = fails(mc, "calendar", "add", cal / "work.ics")
    assert "not added" in err and "cannot read" in err and "No such file" in err, err
    err = fails(mc, "calendar", "add", cal / "login.ics")
    assert "not added" in err and "VCALENDAR" in err, err
    # A malformed URL is refused; an unreachable one is kept with a warning.
    err = fails(mc, "calendar", "add", "https://")
    assert "not a valid URL" in err, err
    assert calendars(mc) == [str(cal / "series.ics")]
    offline = f"http://127.0.0.1:{closed_port()}/private/offline.ics"
    p = run(mc, "calendar", "add", offline)
    assert p.returncode == 0, p.stderr
    assert "warning:" in p.stderr and "added anyway" in p.stderr, p.stderr
    # The feed: fetched now, so a later outage has a copy.
    p = run(mc, "calendar", "add", feed.url())
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"added {shown(feed.url())} (2 events); 3 calendars configured"
    assert feed.full == 1
    (cal / "vdir").mkdir()
    (cal / "vdir" / "a.ics").write_text(MIXED, "utf-8", newline="")
    mc.run("calendar", "add", cal / "vdir")
    assert calendars(mc) == [str(cal / "series.ics"), offline, feed.url(), str(cal / "vdir")]

    # list: each source read now.
    feed.stop()
    listed = mc.json("calendar", "list", "--json")
    assert [s["source"] for s in listed] == [str(cal / "series.ics"), shown(offline), shown(feed.url()),
                                             str(cal / "vdir")]
    assert [s["state"] for s in listed] == ["ok", "broken", "stale", "ok"]
    assert listed[0]["events"] == 2 and listed[0]["skipped"] == []  # the series and its moved instance
    assert "request failed" in listed[1]["reason"]
    assert listed[2]["events"] == 2 and listed[2]["age_seconds"] >= 0 and "request failed" in listed[2]["last_error"]
    assert listed[3]["events"] == 3
    text = mc.run("calendar", "list").stdout
    assert "SOURCE" in text and "stale" in text and "broken" in text, text
    assert "secret-token" not in text + json.dumps(listed)

    # busy without SOURCE reads the configured calendars (the broken one is a warning).
    p = run(mc, "calendar", "busy", "--from", "2026-03-01T00:00:00Z", "--to", "2026-12-01T00:00:00Z",
            "--tz", "Europe/Berlin", "--json")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    berlin = mixed_busy(("2026-03-18T12:00:00Z", "2026-03-18T13:00:00Z"),
                        ("2026-03-27T23:00:00Z", "2026-03-30T22:00:00Z"))
    # The series is both a file and the (cached) feed: each occurrence twice.
    assert got == [*berlin, *[e for e in SERIES_BUSY for _ in (0, 1)]], got
    assert shown(offline) in p.stderr and "stale" in p.stderr

    # remove: unknown entries are refused, naming the configured ones.
    err = fails(mc, "calendar", "remove", cal / "other.ics")
    assert f"{cal / 'other.ics'} is not among the configured calendars: {cal / 'series.ics'}, {shown(offline)}, " \
        f"{shown(feed.url())}, {cal / 'vdir'}" in err, err
    err = fails(mc, "calendar", "remove", feed.url("/private/other-secret-token/x.ics"))
    assert "not among the configured calendars" in err
    assert "secret-token" not in err, err
    err = fails(mc, "calendar", "add", feed.url())
    assert f"{shown(feed.url())} is already configured (as {shown(feed.url())})" in err, err
    # By the form `list` shows, by a relative path, by the URL.
    mc.run("calendar", "remove", shown(feed.url()))
    assert run(mc, "calendar", "remove", "series.ics", cwd=cal).returncode == 0
    p = mc.run("calendar", "remove", offline)
    assert p.stdout.splitlines() == [f"removed {shown(offline)}", "1 calendar configured"]
    assert calendars(mc) == [str(cal / "vdir")]
    mc.run("calendar", "remove", cal / "vdir")
    assert calendars(mc) == []
    assert "no calendars configured" in mc.run("calendar", "list").stdout
    assert mc.json("calendar", "list", "--json") == []
    err = fails(mc, "calendar", "remove", cal / "vdir")
    assert "no calendars are" in err


def test_list_shows_skipped_events_with_reasons(mc, cal, tmp_path):
    vdir = tmp_path / "khal"
    vdir.mkdir()
    (vdir / "good.ics").write_text(MIXED, "utf-8", newline="")
    (vdir / "bad.ics").write_text(ics("""
        BEGIN:VEVENT
        UID:no-start@example.org
        SUMMARY:Floating idea
        END:VEVENT
    """), "utf-8", newline="")
    mc.run("calendar", "add", vdir)
    listed = mc.json("calendar", "list", "--json")
    assert listed == [{
        "source": str(vdir), "state": "ok", "events": 3, "fetched_at": listed[0]["fetched_at"],
        "skipped": [{"uid": "no-start@example.org", "summary": "Floating idea", "reason": "no DTSTART"}],
    }]
    assert listed[0]["fetched_at"].endswith("Z")
    text = mc.run("calendar", "list").stdout
    assert f'{vdir}: skipped event "Floating idea" (no-start@example.org): no DTSTART' in text, text


def test_config_set_accepts_calendars_and_busy_uses_them(mc, cal):
    mc.config_set("scheduler.calendars", json.dumps([str(cal / "outlook.ics"), str(cal / "mixed.ics")]))
    got = busy_json(mc, *MARCH, "--tz", "Europe/Berlin")
    assert [e["summary"] for e in got] == ["Sync with Seattle", "Vendor workshop", "Quarterly review",
                                           "Lunch with Sam", "Conference in Lisbon"]
