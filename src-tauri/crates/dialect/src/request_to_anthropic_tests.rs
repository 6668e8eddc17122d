//! Tests for the OpenAI → Anthropic request translation.

use super::*;

#[test]
fn translates_an_openclaw_style_tool_loop() {
    let req = json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "You are OpenClaw."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "[Wed 2026-11-25 03:11 UTC] list files"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "exec", "arguments": "{\"cmd\":\"ls\"}"}},
                {"id": "functions.read:1", "type": "function", "function": {"name": "read", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
            {"role": "tool", "tool_call_id": "functions.read:1", "content": [{"type": "text", "text": "x"}]},
            {"role": "user", "content": [{"type": "text", "text": "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>none<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"}]}
        ],
        "tools": [{"type": "function", "function": {"name": "exec", "description": "Run", "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}, "strict": false}}],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "max_completion_tokens": 8192,
        "stream": true,
        "stream_options": {"include_usage": true},
        "temperature": 1.5,
        "stop": "###",
        "user": "alice",
        "n": 1
    });
    let out = request_openai_to_anthropic(&req).unwrap();
    assert_eq!(
        out,
        json!({
            "model": "claude-sonnet-4-5",
            "system": "You are OpenClaw.\n\nBe brief.",
            "messages": [
                {"role": "user", "content": "[Wed 2026-11-25 03:11 UTC] list files"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "exec", "input": {"cmd": "ls"}},
                    {"type": "tool_use", "id": "functions_read_1", "name": "read", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"},
                    {"type": "tool_result", "tool_use_id": "functions_read_1", "content": "x"},
                    {"type": "text", "text": "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>none<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"}
                ]}
            ],
            "max_tokens": 8192,
            "stop_sequences": ["###"],
            "temperature": 1.0,
            "metadata": {"user_id": "alice"},
            "stream": true,
            "tools": [{"name": "exec", "description": "Run", "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}
        })
    );
}

#[test]
fn images_and_assistant_text_with_tools() {
    let req = json!({"messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "zoom", "arguments": "{\"x\":1}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": null},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "refusal", "refusal": "no"}]}
    ]});
    let out = request_openai_to_anthropic(&req).unwrap();
    assert_eq!(out["max_tokens"], 4096);
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "c", "name": "zoom", "input": {"x": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c", "content": ""},
                {"type": "text", "text": "thanks"}
            ]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "text", "text": "no"}]}
        ])
    );
}

#[test]
fn tool_choice_forms() {
    for (o, a) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("required"), json!({"type": "any"})),
        (json!("none"), json!({"type": "none"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
        ),
    ] {
        let req = json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": o});
        assert_eq!(request_openai_to_anthropic(&req).unwrap()["tool_choice"], a);
    }
}

#[test]
fn legacy_functions_api() {
    let req = json!({"messages": [
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": null, "function_call": {"name": "now", "arguments": "{}"}},
        {"role": "function", "name": "now", "content": "12:00"}
    ], "functions": [{"name": "now", "parameters": {"type": "object", "properties": {}}}], "function_call": "auto"});
    let out = request_openai_to_anthropic(&req).unwrap();
    assert_eq!(out["messages"][1]["content"][0]["id"], "call_legacy_1");
    assert_eq!(
        out["messages"][2]["content"][0]["tool_use_id"],
        "call_legacy_1"
    );
    assert_eq!(out["tools"][0]["name"], "now");
    assert_eq!(out["tool_choice"], json!({"type": "auto"}));
}

#[test]
fn errors_name_the_path() {
    let err = |v: Value| request_openai_to_anthropic(&v).unwrap_err().to_string();
    let bad_args = json!({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": null,
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\":"}}]}]});
    assert!(
        err(bad_args).starts_with("messages[1].tool_calls[0].function.arguments: invalid JSON: "),
    );
    let audio = json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]});
    assert_eq!(
        err(audio),
        "messages[0].content[0]: unsupported content part type \"input_audio\""
    );
    let bad_url = json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]});
    assert_eq!(
        err(bad_url),
        "messages[0].content[0].image_url.url: data URL is not base64-encoded"
    );
    let no_fn = json!({"messages": [], "tools": [{"type": "function"}]});
    assert_eq!(err(no_fn), "tools[0].function: missing required field");
    let custom = json!({"messages": [], "tools": [{"type": "custom", "custom": {"name": "x"}}]});
    assert_eq!(err(custom), "tools[0]: unsupported tool type \"custom\"");
    assert_eq!(
        err(json!({"messages": [], "max_tokens": -1})),
        "max_tokens: expected a positive integer"
    );
    assert_eq!(
        err(json!({"messages": [{"role": "critic", "content": "x"}]})),
        "messages[0].role: invalid role \"critic\""
    );
}
