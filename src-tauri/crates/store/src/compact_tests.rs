//! Tests for compact request storage: exactness at the edges, sharing, and damaged files.

// Tests may fail loudly; the no-panic policy is for the store itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use super::*;
use crate::schema;

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = schema::open_for_writing(&dir.path().join("store.sqlite3")).unwrap();
    (dir, conn)
}

/// Stores `text` and reads it back as the reader does.
fn round_trip(conn: &Connection, text: &str) -> (Encoding, Value) {
    let (encoding, stored) = encode_request(conn, text).unwrap();
    let value = match encoding {
        Encoding::Verbatim => {
            assert_eq!(stored, text, "verbatim means as sent");
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        }
        Encoding::Node => Decoder::new(conn).request(&stored).unwrap(),
    };
    (encoding, value)
}

/// What reading `text` stored as sent gives: the behaviour to preserve.
fn as_sent(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Round-trips `text` and checks the value is the one parsed from it,
/// including what `Value`'s equality ignores (key order, -0.0).
fn assert_exact(conn: &Connection, text: &str) -> Encoding {
    let (encoding, value) = round_trip(conn, text);
    let expected = as_sent(text);
    assert_eq!(value, expected);
    assert_eq!(
        serde_json::to_string(&value).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
    encoding
}

/// Blob rows and the bytes of their bodies.
fn blob_stats(conn: &Connection) -> (u64, u64) {
    conn.query_row(
        "SELECT count(*), coalesce(sum(octet_length(body)), 0) FROM blobs",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// Prompt-like text of about `bytes` bytes, in lines.
fn prompt(bytes: usize, tag: &str) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(&format!(
            "{tag} rule {i}: {}\n",
            "always check ".repeat(i % 9)
        ));
        i += 1;
    }
    text
}

fn padding() -> String {
    "p".repeat(INLINE_MAX)
}

#[test]
fn a_small_request_stays_as_sent() {
    let (_dir, conn) = db();
    let text = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(assert_exact(&conn, text), Encoding::Verbatim);
    assert_eq!(blob_stats(&conn).0, 0);
}

#[test]
fn what_is_not_an_object_stays_as_sent() {
    let (_dir, conn) = db();
    let big = padding();
    for text in [
        String::new(),
        "not json".to_owned(),
        "42".to_owned(),
        "null".to_owned(),
        format!(r#"["{big}", "{big}"]"#),
        format!(r#""{big}""#),
        format!(r#"{{"messages": ["{big}"]"#),
        format!(r#"{{"messages": ["{big}"]}} trailing"#),
    ] {
        assert_eq!(assert_exact(&conn, &text), Encoding::Verbatim, "{text}");
    }
    assert_eq!(blob_stats(&conn).0, 0);
}

#[test]
fn json_that_value_would_refuse_stays_as_sent() {
    // The raw-text parse accepts all of these; `Value` does not, so a
    // verbatim request read back as a string, and must still.
    let (_dir, conn) = db();
    let big = padding();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for text in [
        format!(r#"{{"messages": ["\ud800 lone", "{big}"]}}"#),
        format!(r#"{{"messages": [1e400, "{big}"]}}"#),
        format!(r#"{{"messages": [{deep}, "{big}"]}}"#),
    ] {
        let (encoding, value) = round_trip(&conn, &text);
        assert_eq!(encoding, Encoding::Verbatim);
        assert_eq!(value, Value::String(text.clone()));
    }
    assert_eq!(blob_stats(&conn).0, 0);
}

#[test]
fn nesting_at_the_limit_reads_back_as_sent() {
    // Whichever depth `Value` stops at, compaction must agree with it.
    let (_dir, conn) = db();
    let big = padding();
    let mut encodings = Vec::new();
    for depth in 120..132 {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!(r#"{{"messages": [{nested}, "{big}"], "deep": {nested}}}"#);
        encodings.push(assert_exact(&conn, &text));
    }
    assert!(encodings.contains(&Encoding::Node));
    assert!(encodings.contains(&Encoding::Verbatim));
}

#[test]
fn checked_accepts_exactly_what_value_accepts() {
    for text in [
        "{}",
        "[]",
        r#"{"a":1}"#,
        r#"{"a":1,"a":2}"#,
        r#""\ud83e\udd80""#,
        r#""\ud800""#,
        r#"{"\udc00":1}"#,
        "1e308",
        "1e309",
        "-0",
        "18446744073709551616",
        "[1,]",
        "{} {}",
        " {\"a\" : [ 1 , 2 ] } ",
        "tru",
        "",
    ] {
        let value = serde_json::from_str::<Value>(text);
        let checked = serde_json::from_str::<Checked>(text);
        assert_eq!(checked.is_ok(), value.is_ok(), "{text}");
        if let (Ok(value), Ok(checked)) = (value, checked) {
            assert_eq!(checked.object, value.is_object(), "{text}");
        }
    }
}

#[test]
fn numbers_keys_and_escapes_come_back_exactly() {
    let (_dir, conn) = db();
    // In a small member, in a message, and in a message large enough to be
    // split into its members.
    let tricky = r#"{"z": 1, "a": [0.1, 1e-7, 5e-324, 1.7976931348623157e308, -0.0, -0, 1.0,
        100000000000000000000, 18446744073709551615, -9223372036854775808,
        3.14159265358979323846264338327950288, 2.2250738585072011e-308],
        "dup": 1, "esc": "\u00e9\/\"\\\n\t\ud83e\udd80 é 🦀 中文", "dup": {"k": 2}, "": null}"#;
    let long = prompt(SPLIT_MIN, "x");
    let text = format!(
        r#"{{"b": {tricky}, "messages": [{tricky}, {{"role": "system", "content": {long:?}, "extra": {tricky}, "role": "developer"}}], "a": 1, "b": 2}}"#
    );
    assert_eq!(assert_exact(&conn, &text), Encoding::Node);

    // Pretty-printed, with the layout of a client that indents.
    let pretty = serde_json::to_string_pretty(&as_sent(&text)).unwrap();
    assert_eq!(assert_exact(&conn, &pretty), Encoding::Node);
}

#[test]
fn parts_already_stored_are_not_stored_again() {
    let (_dir, conn) = db();
    let system = prompt(48_000, "sys");
    let tools: Vec<Value> = (0..12)
        .map(|i| json!({"type": "function", "function": {"name": format!("tool_{i}"), "description": prompt(800, "t"), "parameters": {"type": "object"}}}))
        .collect();
    let mut messages = vec![json!({"role": "system", "content": system})];
    let request = |messages: &Vec<Value>| {
        json!({"model": "m", "messages": messages, "tools": tools, "stream": true}).to_string()
    };
    messages.push(json!({"role": "user", "content": "first"}));
    assert_eq!(assert_exact(&conn, &request(&messages)), Encoding::Node);
    let (rows, bytes) = blob_stats(&conn);

    // The same request again adds nothing.
    assert_exact(&conn, &request(&messages));
    assert_eq!(blob_stats(&conn), (rows, bytes));

    // One more message adds one small blob.
    messages.push(json!({"role": "assistant", "content": "second"}));
    let text = request(&messages);
    let (encoding, stored) = encode_request(&conn, &text).unwrap();
    assert_eq!(encoding, Encoding::Node);
    let (rows_after, bytes_after) = blob_stats(&conn);
    assert_eq!(rows_after, rows + 1);
    assert!(bytes_after - bytes < 100, "{}", bytes_after - bytes);
    assert!(stored.len() < 300, "{stored}");
}

#[test]
fn a_prompt_with_other_skills_appended_shares_its_pieces() {
    // The proxy appends the chosen skills to the system prompt, so the
    // system message differs from one user turn to the next.
    let (_dir, conn) = db();
    let system = prompt(48_000, "sys");
    let request = |skills: &str| {
        json!({"messages": [
            {"role": "system", "content": format!("{system}\n\n## Skills\n{skills}")},
            {"role": "user", "content": "hello"},
        ]})
        .to_string()
    };
    assert_exact(&conn, &request(&prompt(2_000, "weather")));
    let (_, before) = blob_stats(&conn);
    assert_exact(&conn, &request(&prompt(2_000, "email")));
    let (_, after) = blob_stats(&conn);
    assert!(
        after - before < 10_000,
        "another skill set cost {} bytes",
        after - before
    );
}

#[test]
fn a_long_string_without_lines_and_an_image_round_trip() {
    let (_dir, conn) = db();
    let image = "iVBORw0KGgo".repeat(20_000);
    let text = json!({"messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{image}")}},
        ]},
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}}]},
    ]})
    .to_string();
    assert_eq!(assert_exact(&conn, &text), Encoding::Node);
    let (rows, _) = blob_stats(&conn);
    assert!(rows > 5, "the image is stored in pieces");
    assert_exact(&conn, &text);
    assert_eq!(blob_stats(&conn).0, rows);
}

#[test]
fn a_damaged_file_is_an_error_not_a_panic() {
    let (_dir, conn) = db();
    let invalid = |text: &str| match Decoder::new(&conn).request(text) {
        Err(DecodeError::Invalid(reason)) => reason,
        other => panic!("expected an invalid node, got {other:?}"),
    };
    assert!(invalid(r#"{"b": 999}"#).contains("missing"));
    assert!(invalid(r#"{"x": 1}"#).contains("not a compact node"));

    let insert = |body: &str, hash: u8| {
        conn.execute(
            "INSERT INTO blobs (hash, encoding, body) VALUES (?1, 1, ?2)",
            params![vec![hash; 32], body],
        )
        .unwrap();
        conn.last_insert_rowid()
    };
    let looping = insert("{}", 1);
    conn.execute(
        "UPDATE blobs SET body = ?1 WHERE id = ?2",
        params![format!(r#"{{"b": {looping}}}"#), looping],
    )
    .unwrap();
    assert!(invalid(&format!(r#"{{"b": {looping}}}"#)).contains("too deeply"));

    let number = insert(r#"{"v": 5}"#, 2);
    assert!(invalid(&format!(r#"{{"s": [{number}]}}"#)).contains("not a string"));
    conn.execute("UPDATE blobs SET encoding = 7 WHERE id = ?1", [number])
        .unwrap();
    assert!(invalid(&format!(r#"{{"b": {number}}}"#)).contains("unknown encoding"));
}

#[test]
fn the_deepest_request_fits_on_a_small_stack() {
    // Every level is large enough to be split, so each nests a blob
    // reference: the longest chain a request can make, encoded and decoded
    // on a thread with the stack of the writer thread (2 MiB, Rust's default).
    let mut deepest = None;
    for depth in (100..130).rev() {
        let mut value = json!({"pad": prompt(SPLIT_MIN, "inner")}).to_string();
        for _ in 0..depth {
            value = format!(r#"{{"child": {value}, "n": 1}}"#);
        }
        let text = format!(r#"{{"deep": {value}}}"#);
        if serde_json::from_str::<Value>(&text).is_ok() {
            deepest = Some(text);
            break;
        }
    }
    let text = deepest.unwrap();
    let on_small_stack = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let (_dir, conn) = db();
            assert_eq!(assert_exact(&conn, &text), Encoding::Node);
            assert!(blob_stats(&conn).0 > 100, "{:?}", blob_stats(&conn));
        })
        .unwrap();
    on_small_stack.join().unwrap();
}

#[test]
fn a_large_object_of_small_members_is_stored_whole() {
    let (_dir, conn) = db();
    let fields: Map<String, Value> = (0..1_000).map(|i| (format!("k{i}"), json!(i))).collect();
    let text = json!({"messages": [fields]}).to_string();
    assert_eq!(assert_exact(&conn, &text), Encoding::Node);
    let encoding: i64 = conn
        .query_row("SELECT encoding FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(encoding, Encoding::Verbatim.column_value());
}
