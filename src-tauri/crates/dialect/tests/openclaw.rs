//! An OpenClaw-shaped request (recorded shape: big system prompt with its
//! markers, Runtime line, tool loop with `content: null`, trailing
//! internal-context message) through every request-side function.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::fixture;
use metaclaw_dialect::{
    inject_system_text, latest_instruction, request_anthropic_to_openai,
    request_openai_to_anthropic, session_hint, validate_request, Dialect, SessionHint,
};
use serde_json::{json, Value};

const SESSION: &str = "4c7e2a10-5b1d-4f7e-9a0c-2d6b8e1f3a55";

fn request() -> Value {
    serde_json::from_slice(&fixture("openclaw_request.json")).unwrap()
}

/// The fixture with its system prompt padded to OpenClaw's real ~48,000
/// characters, making a ~60 KB body.
fn full_size_request() -> Value {
    let mut req = request();
    let system = req["messages"][0]["content"].as_str().unwrap().to_owned();
    let filler =
        "- Prefer small, reversible steps; explain what you changed and why.\n".repeat(780);
    let padded = system.replace(
        "<!-- /openclaw:attempt:STABLE -->",
        &format!("{filler}<!-- /openclaw:attempt:STABLE -->"),
    );
    req["messages"][0]["content"] = json!(padded);
    req
}

#[test]
fn validates_and_finds_the_instruction_and_session() {
    let req = request();
    validate_request(Dialect::OpenAi, &req).unwrap();
    assert_eq!(
        latest_instruction(Dialect::OpenAi, &req).as_deref(),
        Some("Read notes/ideas.md and tell me the first heading")
    );
    assert_eq!(
        session_hint(Dialect::OpenAi, &req),
        Some(SessionHint::Explicit(SESSION.into()))
    );
}

#[test]
fn retried_request_keeps_the_explicit_session() {
    let mut req = request();
    let first = req["messages"][1]["content"].as_str().unwrap();
    let rewritten = first.replace(
        "How big is the workspace?",
        "(queued from a previous turn that failed) How big is the workspace?",
    );
    req["messages"][1]["content"] = json!(rewritten);
    assert_eq!(
        session_hint(Dialect::OpenAi, &req),
        Some(SessionHint::Explicit(SESSION.into()))
    );
}

#[test]
fn without_a_session_id_the_conversation_key_is_stable_across_turns() {
    let mut req = request();
    let first = req["messages"][1]["content"].as_str().unwrap();
    let without_runtime = first.split("\n\nRuntime:").next().unwrap().to_owned();
    req["messages"][1]["content"] = json!(without_runtime);
    let messages = req["messages"].as_array().unwrap().clone();
    let mut first_turn = req.clone();
    first_turn["messages"] = json!([messages[0], messages[1], messages[8]]);
    let key = |r: &Value| match session_hint(Dialect::OpenAi, r) {
        Some(SessionHint::Conversation(k)) => k,
        other => panic!("{other:?}"),
    };
    assert_eq!(key(&first_turn), key(&req));
    let mut other = first_turn.clone();
    other["messages"][1]["content"] = json!("[Wed 2026-11-25 04:00 UTC] something else");
    assert_ne!(key(&first_turn), key(&other));
}

#[test]
fn skills_are_appended_to_the_system_prompt() {
    let mut req = request();
    let before = req["messages"][0]["content"].as_str().unwrap().to_owned();
    inject_system_text(Dialect::OpenAi, &mut req, "## Skills\n- verify-timezones");
    let after = req["messages"][0]["content"].as_str().unwrap();
    assert!(
        after.starts_with(&before),
        "the client's prompt stays a cacheable prefix"
    );
    assert!(after.ends_with("<!-- /openclaw:attempt:DYNAMIC -->\n\n## Skills\n- verify-timezones"));
    assert_eq!(req["messages"].as_array().unwrap().len(), 9);
}

#[test]
fn translates_to_a_valid_anthropic_request_and_back() {
    let req = full_size_request();
    assert!(serde_json::to_vec(&req).unwrap().len() > 55_000);
    let anthropic = request_openai_to_anthropic(&req).unwrap();
    validate_request(Dialect::Anthropic, &anthropic).unwrap();

    assert_eq!(anthropic["system"], req["messages"][0]["content"]);
    assert_eq!(anthropic["max_tokens"], 8192);
    assert_eq!(anthropic["stream"], true);
    assert!(anthropic.get("stream_options").is_none());
    assert_eq!(anthropic["tool_choice"], json!({"type": "auto"}));
    assert_eq!(anthropic["tools"].as_array().unwrap().len(), 6);
    assert_eq!(anthropic["tools"][3]["name"], "exec");
    assert!(anthropic["tools"][3]["input_schema"]["properties"]["command"].is_object());

    let messages = anthropic["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant",
            "user"
        ]
    );
    assert_eq!(messages[1]["content"][0]["type"], "tool_use");
    assert_eq!(messages[1]["content"][0]["id"], "call960ac1f2b7e44d0c8a1e");
    assert_eq!(
        messages[1]["content"][0]["input"]["command"]
            .as_str()
            .unwrap()
            .split(" && ")
            .count(),
        2
    );
    // Tool result and the merged follow-up user message: results first.
    let last = messages[6]["content"].as_array().unwrap();
    assert_eq!(last[0]["type"], "tool_result");
    assert_eq!(last[0]["tool_use_id"], "callb81d0e3347a94c3f");
    assert!(last[1]["text"]
        .as_str()
        .unwrap()
        .starts_with("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>"));

    let back = request_anthropic_to_openai(&anthropic).unwrap();
    validate_request(Dialect::OpenAi, &back).unwrap();
    let original = req["messages"].as_array().unwrap();
    let returned = back["messages"].as_array().unwrap();
    assert_eq!(returned.len(), original.len());
    for (i, (o, r)) in original.iter().zip(returned).enumerate() {
        assert_eq!(o["role"], r["role"], "messages[{i}]");
        match o["role"].as_str().unwrap() {
            "assistant" if o["tool_calls"].is_array() => {
                assert_eq!(r["content"], Value::Null);
                let (oc, rc) = (&o["tool_calls"][0], &r["tool_calls"][0]);
                assert_eq!(oc["id"], rc["id"]);
                assert_eq!(oc["function"]["name"], rc["function"]["name"]);
                let parse = |v: &Value| serde_json::from_str::<Value>(v.as_str().unwrap()).unwrap();
                assert_eq!(
                    parse(&oc["function"]["arguments"]),
                    parse(&rc["function"]["arguments"])
                );
            }
            _ => assert_eq!(o, r, "messages[{i}]"),
        }
    }
    assert_eq!(back["tools"], req["tools"]);
    assert_eq!(back["max_tokens"], 8192);
    assert_eq!(back["stream_options"], json!({"include_usage": true}));
    // The instruction reads the same in either dialect.
    assert_eq!(
        latest_instruction(Dialect::Anthropic, &anthropic),
        latest_instruction(Dialect::OpenAi, &req)
    );
}
