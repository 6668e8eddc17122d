//! Recorded upstream streams, cut at every byte boundary, translated to the
//! other dialect and compared with the non-streaming translation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::{concat, decode, decode_split, fixture};
use metaclaw_dialect::{
    response_anthropic_to_openai, response_openai_to_anthropic, AnthropicStreamAssembler,
    AnthropicToOpenAiStream, OpenAiStreamAssembler, OpenAiToAnthropicStream, SseEvent,
};
use serde_json::{json, Value};

const OPENAI_FIXTURES: &[&str] = &["openai_tool_stream.sse", "openai_reasoning_stream.sse"];
const ANTHROPIC_FIXTURES: &[&str] = &["anthropic_tool_stream.sse", "anthropic_thinking_stream.sse"];

#[test]
fn every_cut_decodes_to_the_same_events() {
    for name in OPENAI_FIXTURES.iter().chain(ANTHROPIC_FIXTURES) {
        let bytes = fixture(name);
        let whole = decode(&bytes);
        assert!(whole.len() > 4, "{name}");
        for cut in 0..=bytes.len() {
            assert_eq!(decode_split(&bytes, &[cut]), whole, "{name} cut at {cut}");
        }
        // Three pieces, with the second cut sweeping past the first.
        for a in (0..bytes.len()).step_by(7) {
            for b in (a..bytes.len()).step_by(13) {
                assert_eq!(
                    decode_split(&bytes, &[a, b]),
                    whole,
                    "{name} cut at {a},{b}"
                );
            }
        }
    }
}

fn openai_upstream_through_translator(events: &[SseEvent], model: &str) -> Vec<SseEvent> {
    let mut t = OpenAiToAnthropicStream::new(model);
    let mut out = Vec::new();
    for ev in events {
        out.extend(t.push(ev).unwrap());
    }
    out.extend(t.finish());
    decode(&concat(&out))
}

/// The client-side grammar the Anthropic SDKs rely on.
fn assert_anthropic_grammar(events: &[SseEvent]) {
    let types: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    for (e, v) in events.iter().zip(&types) {
        assert_eq!(e.event.as_deref(), v["type"].as_str());
    }
    assert_eq!(types[0]["type"], "message_start");
    assert_eq!(types[types.len() - 1]["type"], "message_stop");
    assert_eq!(types[types.len() - 2]["type"], "message_delta");
    let mut open: Option<u64> = None;
    let mut next = 0;
    for v in &types[1..types.len() - 2] {
        let index = v["index"].as_u64().unwrap();
        match v["type"].as_str().unwrap() {
            "content_block_start" => {
                assert_eq!(open, None, "block started while another is open");
                assert_eq!(index, next, "block indices are consecutive");
                open = Some(index);
                next += 1;
            }
            "content_block_delta" => assert_eq!(open, Some(index)),
            "content_block_stop" => {
                assert_eq!(open, Some(index));
                open = None;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(open, None);
}

#[test]
fn openai_streams_become_anthropic_streams_equal_to_the_non_streaming_translation() {
    for name in OPENAI_FIXTURES {
        let upstream = decode(&fixture(name));
        let mut direct = OpenAiStreamAssembler::new();
        upstream.iter().for_each(|e| direct.push(e).unwrap());
        assert!(direct.is_done(), "{name}");
        let completion = direct.finish();
        let model = completion["model"].as_str().unwrap().to_owned();
        let expected = response_openai_to_anthropic(&completion).unwrap();

        let client = openai_upstream_through_translator(&upstream, &model);
        assert_anthropic_grammar(&client);
        let mut assembled = AnthropicStreamAssembler::new();
        client.iter().for_each(|e| assembled.push(e).unwrap());
        assert!(assembled.is_done(), "{name}");
        assert_eq!(assembled.error(), None);
        assert_eq!(assembled.finish(), expected, "{name}");
    }
}

#[test]
fn openai_tool_stream_in_detail() {
    let upstream = decode(&fixture("openai_tool_stream.sse"));
    let client = openai_upstream_through_translator(&upstream, "claude-proxy");
    let v: Vec<Value> = client
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(v[0]["message"]["id"], "msg_CXq9bT2mZk41");
    assert_eq!(v[0]["message"]["model"], "claude-proxy");
    let starts: Vec<&Value> = v
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .collect();
    assert_eq!(
        starts[0]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        starts[1]["content_block"],
        json!({"type": "tool_use", "id": "call_QwE7mZ1kP0sN", "name": "get_weather", "input": {}})
    );
    assert_eq!(starts[2]["content_block"]["id"], "call_Rt8nA2lQ9vXb");
    let delta = &v[v.len() - 2];
    assert_eq!(
        delta,
        &json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
        "usage": {"input_tokens": 240, "cache_read_input_tokens": 1280, "output_tokens": 61}})
    );
}

#[test]
fn translation_is_the_same_whatever_the_upstream_chunking() {
    let bytes = fixture("openai_tool_stream.sse");
    let reference = concat(&{
        let mut t = OpenAiToAnthropicStream::new("m");
        let mut out: Vec<_> = decode(&bytes)
            .iter()
            .flat_map(|e| t.push(e).unwrap())
            .collect();
        out.extend(t.finish());
        out
    });
    for cut in (0..bytes.len()).step_by(3) {
        let mut t = OpenAiToAnthropicStream::new("m");
        let mut out: Vec<_> = decode_split(&bytes, &[cut])
            .iter()
            .flat_map(|e| t.push(e).unwrap())
            .collect();
        out.extend(t.finish());
        assert_eq!(concat(&out), reference, "cut at {cut}");
    }
}

/// Drop `created` (a clock reading) and parse tool-call arguments: the
/// stream forwards the upstream's JSON text verbatim, the non-streaming
/// translation re-serialises it compactly.
fn normalised(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("created");
    }
    if let Some(calls) = v["choices"][0]["message"]["tool_calls"].as_array_mut() {
        for call in calls {
            let args = call["function"]["arguments"].as_str().unwrap().to_owned();
            call["function"]["arguments"] = serde_json::from_str(&args).unwrap();
        }
    }
    v
}

#[test]
fn anthropic_streams_become_openai_streams_equal_to_the_non_streaming_translation() {
    for name in ANTHROPIC_FIXTURES {
        let upstream = decode(&fixture(name));
        let mut direct = AnthropicStreamAssembler::new();
        upstream.iter().for_each(|e| direct.push(e).unwrap());
        assert!(direct.is_done(), "{name}");
        let expected = response_anthropic_to_openai(&direct.finish()).unwrap();

        let mut t = AnthropicToOpenAiStream::new(true);
        let mut out: Vec<_> = upstream.iter().flat_map(|e| t.push(e).unwrap()).collect();
        out.extend(t.finish());
        let client = decode(&concat(&out));
        assert_eq!(client.last().unwrap().data, "[DONE]");
        assert_eq!(client.iter().filter(|e| e.data == "[DONE]").count(), 1);
        let mut assembled = OpenAiStreamAssembler::new();
        client.iter().for_each(|e| assembled.push(e).unwrap());
        assert!(assembled.is_done());
        assert_eq!(
            normalised(assembled.finish()),
            normalised(expected),
            "{name}"
        );
    }
}

#[test]
fn anthropic_tool_stream_in_detail() {
    let upstream = decode(&fixture("anthropic_tool_stream.sse"));
    let mut t = AnthropicToOpenAiStream::new(true);
    let out: Vec<_> = upstream.iter().flat_map(|e| t.push(e).unwrap()).collect();
    assert!(t.finish().is_empty(), "[DONE] already sent at message_stop");
    let chunks: Vec<Value> = decode(&concat(&out))
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["id"] == "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U"));
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"].get("tool_calls"))
        .collect();
    assert_eq!(
        calls[0],
        &json!([{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
        "function": {"name": "get_weather", "arguments": ""}}])
    );
    // The empty first partial_json is not forwarded.
    assert_eq!(
        calls[1],
        &json!([{"index": 0, "function": {"arguments": "{\"city\": \"Z"}}])
    );
    assert_eq!(calls.last().unwrap()[0]["index"], 1);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 1496, "completion_tokens": 89, "total_tokens": 1585,
        "prompt_tokens_details": {"cached_tokens": 1024}})
    );
}
