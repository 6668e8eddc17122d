//! Tests for the Anthropic → OpenAI stream translation.

use super::*;
use crate::SseDecoder;

fn ev(v: Value) -> SseEvent {
    let name = v["type"].as_str().unwrap().to_owned();
    SseEvent::new(Some(&name), v.to_string())
}

/// Run events through a translator; return the decoded `data` payloads
/// (`[DONE]` as the string "[DONE]").
fn run(include_usage: bool, events: &[SseEvent], finish: bool) -> Vec<Value> {
    let mut t = AnthropicToOpenAiStream::new(include_usage);
    let mut bytes: Vec<Bytes> = events.iter().flat_map(|e| t.push(e).unwrap()).collect();
    if finish {
        bytes.extend(t.finish());
    }
    let mut d = SseDecoder::new();
    bytes
        .iter()
        .flat_map(|b| d.push(b))
        .map(|e| {
            assert_eq!(e.event, None);
            if e.data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(&e.data).unwrap()
            }
        })
        .collect()
}

fn start() -> SseEvent {
    ev(
        json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1}}}),
    )
}

#[test]
fn tool_use_stream_to_chunks() {
    let events = [
        start(),
        ev(json!({"type": "ping"})),
        ev(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay"}}),
        ),
        ev(json!({"type": "content_block_stop", "index": 0})),
        ev(
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "ris\"}"}}),
        ),
        ev(json!({"type": "content_block_stop", "index": 1})),
        ev(
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 40}}),
        ),
        ev(json!({"type": "message_stop"})),
    ];
    let out = run(true, &events, true);
    assert_eq!(out.len(), 8);
    for c in &out[..7] {
        assert_eq!(c["id"], "chatcmpl-msg_01");
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "claude-sonnet-4-5");
    }
    assert_eq!(
        out[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(out[1]["choices"][0]["delta"], json!({"content": "Okay"}));
    assert_eq!(
        out[2]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
    );
    assert_eq!(
        out[3]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Pa"}}]})
    );
    assert_eq!(
        out[4]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "ris\"}"
    );
    assert_eq!(out[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out[6]["choices"], json!([]));
    assert_eq!(
        out[6]["usage"],
        json!({"prompt_tokens": 30, "completion_tokens": 40, "total_tokens": 70, "prompt_tokens_details": {"cached_tokens": 5}})
    );
    assert_eq!(out[7], "[DONE]");
}

#[test]
fn without_include_usage_there_is_no_usage_chunk() {
    let events = [
        start(),
        ev(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ),
        ev(
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 1}}),
        ),
        ev(json!({"type": "message_stop"})),
    ];
    let out = run(false, &events, true);
    assert_eq!(out.len(), 4);
    assert_eq!(out[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(out[3], "[DONE]");
}

#[test]
fn second_tool_gets_the_next_openai_index() {
    let events = [
        start(),
        ev(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "a", "name": "f", "input": {}}}),
        ),
        ev(
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "b", "name": "g", "input": {}}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        ),
    ];
    let out = run(false, &events, true);
    assert_eq!(out[2]["choices"][0]["delta"]["tool_calls"][0]["index"], 1);
    assert_eq!(
        out[3]["choices"][0]["delta"]["tool_calls"][0],
        json!({"index": 1, "function": {"arguments": "{}"}})
    );
    assert_eq!(out.last().unwrap(), "[DONE]");
}

#[test]
fn error_event_then_done() {
    let events = [
        start(),
        ev(
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
        ev(json!({"type": "message_stop"})),
    ];
    let out = run(true, &events, true);
    assert_eq!(
        out[1],
        json!({"error": {"message": "Overloaded", "type": "overloaded_error"}})
    );
    assert_eq!(out[2], "[DONE]");
    assert_eq!(out.len(), 3);
}

#[test]
fn thinking_becomes_reasoning_content_and_bad_json_errors() {
    let events = [
        start(),
        ev(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "xx"}}),
        ),
    ];
    let out = run(false, &events, false);
    assert_eq!(
        out[1]["choices"][0]["delta"],
        json!({"reasoning_content": "hmm"})
    );
    assert_eq!(out.len(), 2);
    let mut t = AnthropicToOpenAiStream::new(false);
    let err = t
        .push(&SseEvent::new(Some("message_start"), "{"))
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("stream event \"message_start\": invalid JSON"));
}

#[test]
fn whole_input_in_the_start_block_is_kept() {
    let events = [
        start(),
        ev(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "a", "name": "f", "input": {"x": 1}}}),
        ),
    ];
    let out = run(false, &events, true);
    assert_eq!(
        out[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"x\":1}"
    );
}
