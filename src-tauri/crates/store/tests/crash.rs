//! Kills a process while it records turns (SIGKILL) and checks the database afterwards.
//!
//! The child is this test binary run again with [`DB_ENV`] set, so that only
//! [`crash_child`] runs and plays the proxy: it opens a store and records
//! turns until the parent kills it.

// Tests may fail loudly; the no-panic policy is for the store itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use metaclaw_store::{SessionStart, Store, StoreReader, TurnRecord, TurnStatus, TurnType};

/// The database the child writes; unset in a normal test run.
const DB_ENV: &str = "METACLAW_STORE_CRASH_DB";
/// `flush`: flush after every batch and report what is committed;
/// `queue`: queue turns without flushing, report that they were sent.
const MODE_ENV: &str = "METACLAW_STORE_CRASH_MODE";
const SESSION: &str = "crash-session";
/// Starts each progress line of the child. The test harness prints its own
/// "test crash_child ... " in front of the first one, so the parent looks for
/// the marker anywhere in a line.
const MARKER: &str = "@crash-child@ ";
const SKILLS_PER_TURN: u64 = 2;
const BATCH: u32 = 10;
/// Caps the child's work in case the parent never kills it.
const MAX_TURNS: u32 = 200_000;

fn turn(index: u32) -> TurnRecord {
    TurnRecord {
        request_id: format!("req-{index}"),
        session_id: SESSION.to_owned(),
        session_key: "crash-key".to_owned(),
        key_source: "header".to_owned(),
        turn_index: index,
        turn_type: TurnType::Main,
        client_dialect: "openai".to_owned(),
        upstream_api: "openai".to_owned(),
        model: Some("gpt-test".to_owned()),
        stream: true,
        started_at_ms: i64::from(index),
        latency_ms: 1.0,
        ttfb_ms: Some(0.5),
        status: TurnStatus::Complete,
        http_status: Some(200),
        prompt_tokens: Some(100),
        completion_tokens: Some(20),
        skill_generation: 0,
        injected_skills: vec!["first".to_owned(), format!("skill-{}", index % 7)],
        request_json: request(index),
        response_json: Some(format!(r#"{{"content":"answer {index}"}}"#)),
        error: None,
    }
}

/// Big enough, and different in every turn (the store keeps repeated parts
/// once), that commits span several WAL pages: the request and a new blob.
fn request(index: u32) -> String {
    format!(
        r#"{{"model":"gpt-test","messages":[{{"role":"user","content":"{index} {}"}}]}}"#,
        "x".repeat(2_000)
    )
}

/// Not a test by itself: the body of the child process the crash tests
/// start. Without [`DB_ENV`] it returns at once.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(DB_ENV) else {
        return;
    };
    let flush_each_batch = std::env::var(MODE_ENV).as_deref() == Ok("flush");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Store::open(Path::new(&path)).unwrap();
    store.session_started(SessionStart {
        id: SESSION.to_owned(),
        session_key: "crash-key".to_owned(),
        key_source: "header".to_owned(),
        started_at_ms: 0,
    });
    let mut out = std::io::stdout().lock();
    let mut sent = 0;
    let record_batch = |sent: &mut u32| {
        for _ in 0..BATCH {
            store.record_turn(turn(*sent));
            *sent += 1;
        }
    };
    record_batch(&mut sent);
    if flush_each_batch {
        while sent < MAX_TURNS {
            runtime.block_on(store.flush()).unwrap();
            let committed = sent;
            // Queue the next batch before reporting, so the writer is busy
            // committing it when the parent's kill arrives.
            record_batch(&mut sent);
            // A write error means the parent is gone: stop.
            if writeln!(out, "{MARKER}committed {committed}")
                .and_then(|()| out.flush())
                .is_err()
            {
                return;
            }
        }
    } else {
        while sent < 5_000 {
            record_batch(&mut sent);
        }
        let _ = writeln!(out, "{MARKER}sent {sent}").and_then(|()| out.flush());
    }
    // Wait to be killed; if the parent dies first its end of stdin closes.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Runs the child in `mode`, kills it once it reports at least `kill_after`
/// turns, and returns the last count it reported.
fn record_then_kill(path: &Path, mode: &str, kill_after: u32) -> u32 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DB_ENV, path)
        .env(MODE_ENV, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut reported = 0;
    for line in stdout.lines() {
        let line = line.unwrap();
        let Some((_, progress)) = line.split_once(MARKER) else {
            continue;
        };
        let count = progress
            .strip_prefix("committed ")
            .or_else(|| progress.strip_prefix("sent "));
        if let Some(count) = count {
            reported = count.parse().unwrap();
            if reported >= kill_after {
                break;
            }
        }
    }
    // SIGKILL on Unix: no destructor, no drain, no checkpoint runs.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child must die by the kill: {status}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }
    assert!(
        reported >= kill_after,
        "the child stopped early after reporting {reported} turns"
    );
    reported
}

/// Checks the file a killed writer left behind and returns how many turns it holds.
fn check_after_crash(path: &Path) -> u64 {
    // First, as the CLI would after a crashed server: a read-only reader
    // must be able to read the recovered state.
    let reader = StoreReader::open(path).unwrap();
    let counts = reader.counts().unwrap();
    let turns = counts.turns;
    if turns > 0 {
        let detail = reader.session(SESSION).unwrap().unwrap();
        // Group commit is all or nothing per transaction, and batches commit
        // in order: what survived is exactly the first `turns` turns, each
        // with its skills, and the session counter agrees.
        assert_eq!(u64::from(detail.session.turn_count), turns);
        let indexes: Vec<u64> = detail
            .turns
            .iter()
            .map(|t| u64::from(t.turn_index))
            .collect();
        assert_eq!(indexes, (0..turns).collect::<Vec<_>>());
        // Each request is rebuilt from its parts: none was lost or torn.
        for t in &detail.turns {
            let sent: serde_json::Value = serde_json::from_str(&request(t.turn_index)).unwrap();
            assert_eq!(t.request, sent);
        }
        assert!(detail
            .turns
            .iter()
            .all(|t| t.injected_skills.len() as u64 == SKILLS_PER_TURN));
        assert_eq!(
            reader.skill_usage().unwrap()["first"].injected,
            turns,
            "every surviving turn keeps its skills"
        );
    }
    drop(reader);

    let conn = rusqlite::Connection::open(path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let orphans: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(orphans, 0);
    turns
}

/// After the crash the store opens again and keeps recording after what survived.
fn store_resumes(path: &Path, turns: u64) {
    let store = Store::open(path).unwrap();
    store.record_turn(TurnRecord {
        request_id: "after-crash".to_owned(),
        turn_index: u32::try_from(turns).unwrap(),
        ..turn(0)
    });
    store.close();
    let reader = StoreReader::open(path).unwrap();
    assert_eq!(reader.counts().unwrap().turns, turns + 1);
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("store.sqlite3")
}

#[test]
fn turns_flushed_before_a_kill_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    // The child keeps recording while it is killed, so the kill lands in the
    // middle of later batches, not after a quiet moment.
    let confirmed = record_then_kill(&path, "flush", 500);
    let turns = check_after_crash(&path);
    eprintln!("{turns} turns survived the kill; {confirmed} were confirmed committed");
    assert!(
        turns >= u64::from(confirmed),
        "{confirmed} turns were confirmed committed but only {turns} survived"
    );
    store_resumes(&path, turns);
}

#[test]
fn a_kill_with_turns_still_queued_leaves_a_consistent_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    // Nothing is confirmed here: the writer is still working through the
    // queue when the kill comes. Whatever it committed must be whole.
    let sent = record_then_kill(&path, "queue", 1);
    let turns = check_after_crash(&path);
    eprintln!("{turns} of {sent} queued turns were committed before the kill");
    store_resumes(&path, turns);
}
