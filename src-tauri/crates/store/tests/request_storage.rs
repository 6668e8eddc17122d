//! Requests go in as the text sent upstream and come back as the same JSON value, while a session's storage grows linearly.
//!
//! Everything here goes through the public API (`Store`, `StoreReader`); only
//! the sizes and the v1 database are read and made with SQL directly.

// Tests may fail loudly; the no-panic policy is for the store itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use metaclaw_store::{Store, StoreReader, TurnRecord, TurnStatus, TurnType};
use serde_json::{json, Value};

const SESSION: &str = "sess";

fn turn(index: u32, request_json: String) -> TurnRecord {
    TurnRecord {
        request_id: format!("req-{index}"),
        session_id: SESSION.to_owned(),
        session_key: "key".to_owned(),
        key_source: "header".to_owned(),
        turn_index: index,
        turn_type: TurnType::Main,
        client_dialect: "openai".to_owned(),
        upstream_api: "openai".to_owned(),
        model: Some("gpt-test".to_owned()),
        stream: true,
        started_at_ms: 1_000 + i64::from(index),
        latency_ms: 10.0,
        ttfb_ms: Some(1.0),
        status: TurnStatus::Complete,
        http_status: Some(200),
        prompt_tokens: Some(100),
        completion_tokens: Some(10),
        skill_generation: 1,
        injected_skills: vec!["a-skill".to_owned()],
        request_json,
        response_json: Some(format!(r#"{{"content":"answer {index}"}}"#)),
        error: None,
    }
}

/// Records `requests` as consecutive turns of one session and returns them read back.
async fn record(path: &Path, requests: &[String]) -> Vec<Value> {
    let store = Store::open(path).unwrap();
    for (i, request) in requests.iter().enumerate() {
        store.record_turn(turn(i as u32, request.clone()));
    }
    store.flush().await.unwrap();
    store.close();
    read_requests(path)
}

fn read_requests(path: &Path) -> Vec<Value> {
    let detail = StoreReader::open(path)
        .unwrap()
        .session(SESSION)
        .unwrap()
        .unwrap();
    detail.turns.into_iter().map(|t| t.request).collect()
}

/// What a request read back must be: what parsing the text sent gives
/// (a string when it is not JSON, as the store always did).
fn as_sent(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Equal as values and as text: `Value`'s equality ignores key order.
fn assert_same(read: &Value, sent: &str) {
    let expected = as_sent(sent);
    assert_eq!(read, &expected);
    assert_eq!(
        serde_json::to_string(read).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
}

/// Bytes of request text stored: turns plus the blobs they share.
fn stored_request_bytes(path: &Path) -> u64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT (SELECT coalesce(sum(octet_length(request_json)), 0) FROM turns)
                  + (SELECT coalesce(sum(octet_length(body)), 0) FROM blobs)",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

// --- Fixtures shaped like what OpenClaw and the SDKs send -----------------

/// About 48 KB of system prompt in OpenClaw's layout.
fn openclaw_system() -> String {
    let mut text = String::from("You are a personal assistant running inside OpenClaw.\n\n<!-- openclaw:attempt:STABLE -->\n");
    let mut i = 0;
    while text.len() < 47_000 {
        text.push_str(&format!(
            "## Workspace file {i}\n- Rule {i}: prefer the tool `exec` for shell work; never print secrets. «{}»\n",
            "Keep answers short and exact. ".repeat(i % 11)
        ));
        i += 1;
    }
    text.push_str("<!-- /openclaw:attempt:STABLE -->\n<!-- openclaw:attempt:DYNAMIC -->\nCurrent date: Wed 2026-11-25, time zone UTC, model fake/tool-fake-gpt\n");
    text
}

/// Twelve tools, about 10 KB, in the OpenAI function format.
fn openai_tools() -> Vec<Value> {
    (0..12)
        .map(|i| {
            json!({"type": "function", "function": {
                "name": format!("tool_{i}"),
                "description": format!("Tool {i}. {}", "Does one precise thing with the workspace. ".repeat(16)),
                "parameters": {"type": "object", "properties": {
                    "path": {"type": "string", "description": "A path in the workspace"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
                }, "required": ["path"], "additionalProperties": false},
            }})
        })
        .collect()
}

fn internal_context() -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nActive processes: none\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"}]})
}

/// The `step`th message of a simulated tool loop, a few hundred bytes to 2 KB.
fn history_message(step: usize) -> Value {
    match step % 4 {
        0 => {
            json!({"role": "user", "content": format!("[Wed 2026-11-25 03:{:02} UTC] step {step}: check the logs ✓", step % 60)})
        }
        1 => json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": format!("call{step}"), "type": "function",
             "function": {"name": "tool_3", "arguments": format!(r#"{{"path":"logs/{step}.txt","limit":50}}"#)}}]}),
        2 => json!({"role": "tool", "tool_call_id": format!("call{}", step - 1),
                    "content": format!("line {step}: ok\n").repeat(40 + step % 30)}),
        _ => {
            json!({"role": "assistant", "content": format!("Step {step} looks fine: {}", "all checks passed. ".repeat(step % 7))})
        }
    }
}

fn openai_request(system: &str, history: &[Value], tools: &[Value]) -> String {
    let mut messages = vec![json!({"role": "system", "content": system})];
    messages.extend(history.iter().cloned());
    messages.push(internal_context());
    json!({
        "model": "tool-fake-gpt",
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
        "tools": tools,
        "tool_choice": "auto",
        "max_completion_tokens": 8192,
    })
    .to_string()
}

// --- Tests ------------------------------------------------------------------

#[tokio::test]
async fn openai_shaped_requests_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3");
    let system = openclaw_system();
    let tools = openai_tools();
    let history: Vec<Value> = (0..6).map(history_message).collect();
    let image = "iVBORw0KGgoAAAANSUhEUgAA".repeat(2_000);
    let with_image = vec![json!({"role": "user", "content": [
        {"type": "text", "text": "Qu'est-ce que c'est ? 这是什么？ 🦀"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{image}"), "detail": "high"}},
    ]})];
    let requests = vec![
        openai_request(&system, &history[..1], &tools),
        openai_request(&system, &history[..3], &tools),
        openai_request(&system, &history, &tools),
        openai_request(&system, &with_image, &[]),
        // Key order the client chose (not alphabetical), escapes as the
        // client wrote them, numbers that must keep their type and bits.
        format!(
            r#"{{"temperature": 0.7, "top_p": 1.0, "seed": 18446744073709551615, "logit_bias": {{"50256": -100}},
               "model": "m", "messages": [{{"role": "user", "content": "caf\u00e9 \ud83e\udd80 \/ \"quoted\"", "name": "x"}},
               {{"role": "system", "content": {system:?}}}], "n": 1, "model": "last-wins"}}"#
        ),
    ];
    let read = record(&path, &requests).await;
    assert_eq!(read.len(), requests.len());
    for (read, sent) in read.iter().zip(&requests) {
        assert_same(read, sent);
    }
}

#[tokio::test]
async fn anthropic_shaped_requests_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3");
    let system = openclaw_system();
    let tools: Vec<Value> = (0..12)
        .map(|i| json!({"name": format!("tool_{i}"), "description": "Reads a file. ".repeat(40),
                        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}))
        .collect();
    let messages = json!([
        {"role": "user", "content": [{"type": "text", "text": "Fix the bug — «vite» 🚀"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me look.", "signature": "c2lnbmF0dXJl"},
            {"type": "tool_use", "id": "toolu_01", "name": "tool_1", "input": {"path": "src/main.rs", "limit": 20}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "fn main() {}\n".repeat(900)},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD".repeat(5_000)}}]},
    ]);
    let requests = vec![
        // system as a string
        json!({"model": "claude-sonnet-4-5", "max_tokens": 4096, "system": system,
               "messages": messages, "tools": tools, "stream": true})
        .to_string(),
        // system as blocks, with the skills block the proxy appends
        json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
               "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}},
                          {"type": "text", "text": "## Skills\nweather-briefing: …"}],
               "messages": messages, "tools": tools, "tool_choice": {"type": "auto"},
               "metadata": {"user_id": "u-1"}, "stream": false})
        .to_string(),
    ];
    let read = record(&path, &requests).await;
    for (read, sent) in read.iter().zip(&requests) {
        assert_same(read, sent);
    }
}

#[tokio::test]
async fn text_that_is_not_a_json_object_is_stored_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3");
    let long = "x".repeat(20_000);
    let requests = vec![
        format!(r#"[{{"role": "user", "content": "{long}"}}]"#),
        format!(r#""{long}""#),
        "12.5".to_owned(),
        format!("<html>{long}</html>"),
        format!(r#"{{"messages": [{{"content": "{long}"}}]"#),
        String::new(),
    ];
    let read = record(&path, &requests).await;
    for (read, sent) in read.iter().zip(&requests) {
        assert_same(read, sent);
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare("SELECT request_encoding, request_json FROM turns ORDER BY turn_index")
        .unwrap();
    let stored: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<(i64, String)> = requests.iter().map(|r| (0, r.clone())).collect();
    assert_eq!(stored, expected, "byte for byte, marked verbatim");
    let blobs: i64 = conn
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs, 0);
}

/// A session of 50 requests, each one message longer than the last.
/// `skills(i)` is appended to the system prompt of request `i`.
async fn measure_session(skills: impl Fn(usize) -> String) -> (u64, u64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3");
    let system = openclaw_system();
    let tools = openai_tools();
    let mut history = vec![history_message(0)];
    let mut requests = Vec::new();
    for i in 0..50 {
        let system = format!("{system}\n\n{}", skills(i));
        requests.push(openai_request(&system, &history, &tools));
        history.push(history_message(i + 1));
    }
    let read = record(&path, &requests).await;
    for (read, sent) in read.iter().zip(&requests) {
        assert_same(read, sent);
    }
    let naive: u64 = requests.iter().map(|r| r.len() as u64).sum();
    let last = requests.last().unwrap().len() as u64;
    let stored = stored_request_bytes(&path);
    let file = StoreReader::open(&path).unwrap().database_bytes().unwrap();
    // The schema's empty tables take a few pages of their own whatever is
    // recorded; growth is what must stay linear.
    let empty_path = dir.path().join("empty.sqlite3");
    Store::open(&empty_path).unwrap().close();
    let empty = StoreReader::open(&empty_path)
        .unwrap()
        .database_bytes()
        .unwrap();
    (naive, stored, last, file - empty)
}

#[tokio::test]
async fn a_session_is_stored_in_linear_space() {
    let (naive, stored, last, file) = measure_session(|_| String::new()).await;
    eprintln!(
        "50 requests: {naive} bytes as sent ({:.1}x the last request of {last}); \
         {stored} bytes stored ({:.2}x); database file {file} bytes",
        naive as f64 / last as f64,
        stored as f64 / last as f64
    );
    assert!(naive > 20 * last, "the fixture should be quadratic as sent");
    assert!(
        stored < 3 * last,
        "{stored} bytes stored for a last request of {last}"
    );
    assert!(file < 4 * last, "database file of {file} bytes");
}

#[tokio::test]
async fn a_session_whose_skills_change_each_user_turn_stays_linear() {
    // The proxy appends the skills matching each user turn to the system
    // prompt, so the 48 KB system message is different every few requests.
    let skills = |i: usize| {
        let set = i / 4;
        (0..4)
            .map(|k| {
                format!(
                    "## skill-{}\n{}\n",
                    (set + k) % 9,
                    "Follow these steps carefully.\n".repeat(20)
                )
            })
            .collect::<String>()
    };
    let (naive, stored, last, _) = measure_session(skills).await;
    eprintln!(
        "50 requests, 13 skill sets: {naive} bytes as sent; {stored} bytes stored ({:.2}x the last request of {last})",
        stored as f64 / last as f64
    );
    assert!(
        stored < 3 * last,
        "{stored} bytes stored for a last request of {last}"
    );
}

#[tokio::test]
async fn a_version_1_database_is_upgraded_and_its_turns_still_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3");
    let old_requests = [
        openai_request(&openclaw_system(), &[history_message(0)], &openai_tools()),
        r#"{"messages":[{"role":"user","content":"caf\u00e9"}],"model":"m"}"#.to_owned(),
        "<html>not json</html>".to_owned(),
    ];
    {
        // A store as version 1 wrote it, with turns in it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_init.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.pragma_update(None, "application_id", 0x4D43_4C57)
            .unwrap();
        conn.execute(
            "INSERT INTO sessions (id, session_key, key_source, started_at_ms, last_seen_at_ms, turn_count)
             VALUES (?1, 'key', 'header', 1000, 1000, 3)",
            [SESSION],
        )
        .unwrap();
        for (i, request) in old_requests.iter().enumerate() {
            conn.execute(
                "INSERT INTO turns (request_id, session_id, turn_index, turn_type, client_dialect,
                     upstream_api, stream, started_at_ms, latency_ms, status, skill_generation,
                     request_json)
                 VALUES (?1, ?2, ?3, 'main', 'openai', 'openai', 1, 1000, 5.0, 'complete', 0, ?4)",
                rusqlite::params![format!("old-{i}"), SESSION, i, request],
            )
            .unwrap();
        }
    }
    // Readers cannot migrate; the next start of the proxy does.
    assert!(StoreReader::open(&path).is_err());

    let store = Store::open(&path).unwrap();
    let new_request = openai_request(
        &openclaw_system(),
        &[history_message(0), history_message(1)],
        &openai_tools(),
    );
    store.record_turn(turn(3, new_request.clone()));
    store.flush().await.unwrap();
    store.close();

    let read = read_requests(&path);
    assert_eq!(read.len(), 4);
    for (read, sent) in read.iter().zip(old_requests.iter().chain([&new_request])) {
        assert_same(read, sent);
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 7);
    let encodings: Vec<i64> = conn
        .prepare("SELECT request_encoding FROM turns ORDER BY turn_index")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        encodings,
        [0, 0, 0, 1],
        "old turns stay as they were written"
    );
}
