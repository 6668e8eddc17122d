//! Tests for the OpenAI → Anthropic stream translation.

use super::*;
use crate::SseDecoder;

fn chunk(v: Value) -> SseEvent {
    SseEvent::new(None, v.to_string())
}

fn done() -> SseEvent {
    SseEvent::new(None, "[DONE]")
}

/// Run events through a translator and decode what it emitted.
fn run(events: &[SseEvent], finish: bool) -> Vec<(String, Value)> {
    let mut t = OpenAiToAnthropicStream::new("claude-via-gpt");
    let mut bytes: Vec<Bytes> = events.iter().flat_map(|e| t.push(e).unwrap()).collect();
    if finish {
        bytes.extend(t.finish());
    }
    let mut d = SseDecoder::new();
    bytes
        .iter()
        .flat_map(|b| d.push(b))
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(Some(v["type"].as_str().unwrap()), e.event.as_deref());
            (e.event.unwrap(), v)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

fn delta(id: &str, d: Value, finish: Value) -> SseEvent {
    chunk(
        json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "delta": d, "logprobs": null, "finish_reason": finish}]}),
    )
}

#[test]
fn text_stream_with_usage_chunk() {
    let evs = [
        delta(
            "chatcmpl-1",
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ),
        delta("chatcmpl-1", json!({"content": "Hel"}), Value::Null),
        delta("chatcmpl-1", json!({"content": "lo"}), Value::Null),
        delta("chatcmpl-1", json!({}), json!("stop")),
        chunk(
            json!({"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}}),
        ),
        done(),
    ];
    let out = run(&evs, true);
    assert_eq!(
        names(&out),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        out[0].1,
        json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-via-gpt",
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 0, "output_tokens": 0}}})
    );
    assert_eq!(
        out[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        out[2].1["delta"],
        json!({"type": "text_delta", "text": "Hel"})
    );
    assert_eq!(
        out[5].1,
        json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"input_tokens": 12, "output_tokens": 2}})
    );
}

#[test]
fn parallel_tool_calls_become_tool_use_blocks() {
    let evs = [
        delta(
            "c",
            json!({"role": "assistant", "content": "Let me check."}),
            Value::Null,
        ),
        delta(
            "c",
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        delta(
            "c",
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        ),
        delta(
            "c",
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            Value::Null,
        ),
        delta(
            "c",
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}),
            Value::Null,
        ),
        delta("c", json!({}), json!("tool_calls")),
        done(),
    ];
    let out = run(&evs, false);
    assert_eq!(
        names(&out),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        out[4].1,
        json!({"type": "content_block_start", "index": 1,
        "content_block": {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}}})
    );
    assert_eq!(
        out[6].1["delta"],
        json!({"type": "input_json_delta", "partial_json": "\"Paris\"}"})
    );
    assert_eq!(out[8].1["content_block"]["id"], "call_b");
    assert_eq!(out[9].1["index"], 2);
    assert_eq!(out[11].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(out[11].1["usage"], json!({"output_tokens": 0}));
}

#[test]
fn same_index_different_id_is_a_new_call() {
    let evs = [
        delta(
            "c",
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
            Value::Null,
        ),
        delta(
            "c",
            json!({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            json!("stop"),
        ),
    ];
    let out = run(&evs, true);
    let starts: Vec<&Value> = out
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["content_block"]["name"], "g");
    // Ollama says "stop" with tool calls; the client must still run them.
    assert_eq!(
        out.iter().find(|(n, _)| n == "message_delta").unwrap().1["delta"]["stop_reason"],
        "tool_use"
    );
}

#[test]
fn reasoning_then_text_and_finish_without_done() {
    let evs = [
        delta(
            "r",
            json!({"role": "assistant", "reasoning_content": "think"}),
            Value::Null,
        ),
        delta("r", json!({"reasoning_content": "ing"}), Value::Null),
        delta("r", json!({"content": "answer"}), Value::Null),
    ];
    let out = run(&evs, true);
    assert_eq!(
        names(&out),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(out[1].1["content_block"]["type"], "thinking");
    assert_eq!(
        out[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": "ing"})
    );
    assert_eq!(out[8].1["delta"]["stop_reason"], "end_turn");
}

#[test]
fn message_end_is_sent_exactly_once() {
    let mut t = OpenAiToAnthropicStream::new("m");
    t.push(&delta("x", json!({"content": "a"}), json!("length")))
        .unwrap();
    let end = t
        .push(&chunk(
            json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
        ))
        .unwrap();
    assert_eq!(end.len(), 2);
    assert!(String::from_utf8_lossy(&end[0]).contains("\"stop_reason\":\"max_tokens\""));
    assert!(t.push(&done()).unwrap().is_empty());
    assert!(t.finish().is_empty());
}

#[test]
fn azure_prompt_filter_chunk_is_not_the_end() {
    let evs = [
        chunk(json!({"id": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]})),
        delta("chatcmpl-z", json!({"content": "hi"}), json!("stop")),
        done(),
    ];
    let out = run(&evs, false);
    assert_eq!(
        names(&out).iter().filter(|n| **n == "message_stop").count(),
        1
    );
    assert_eq!(
        out.iter()
            .filter(|(n, _)| n == "content_block_delta")
            .count(),
        1
    );
}

#[test]
fn error_chunk_becomes_error_event() {
    let evs = [
        delta("c", json!({"content": "partial"}), Value::Null),
        chunk(
            json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}),
        ),
        done(),
    ];
    let out = run(&evs, true);
    let last = out.last().unwrap();
    assert_eq!(last.0, "error");
    assert_eq!(
        last.1,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}})
    );
    assert!(!names(&out).contains(&"message_stop"));
}

#[test]
fn invalid_json_is_an_error_and_keepalives_are_ignored() {
    let mut t = OpenAiToAnthropicStream::new("m");
    assert!(t.push(&SseEvent::new(None, "")).unwrap().is_empty());
    let err = t.push(&SseEvent::new(None, "{not json")).unwrap_err();
    assert!(err.to_string().starts_with("stream chunk: invalid JSON"));
    assert!(t.finish().is_empty());
}
