//! Hand-written expectations for the Qwen3 parser, and the same inputs cut
//! at every character boundary (and every pair of them) to show the stream
//! gives what the whole response gives.

use serde_json::json;

use super::*;

fn call(name: &str, arguments: Value) -> ToolCall {
    ToolCall {
        name: name.into(),
        arguments,
    }
}

fn message(text: &str, reasoning: &str, tool_calls: Vec<ToolCall>) -> AssistantMessage {
    AssistantMessage {
        text: text.into(),
        reasoning: reasoning.into(),
        tool_calls,
        warnings: Vec::new(),
    }
}

/// Feeds `chunks` one by one; returns the message folded from the events.
fn streamed(chunks: &[&str], opens_reasoning: bool) -> AssistantMessage {
    let mut parser = ResponseParser::new(opens_reasoning);
    let mut out = AssistantMessage::default();
    for chunk in chunks {
        for event in parser.push(chunk) {
            out.apply(&event);
        }
    }
    for event in parser.finish() {
        out.apply(&event);
    }
    out.warnings = parser.warnings().to_vec();
    out
}

const TWO_CALLS: &str = "I'll check both cities.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\", \"unit\": \"c\"}}\n</tool_call>";

/// (response, opens_reasoning, expected)
fn cases() -> Vec<(&'static str, bool, AssistantMessage)> {
    vec![
        (
            "Hello  world\n",
            false,
            message("Hello  world\n", "", vec![]),
        ),
        (
            "<think>\nThe user adds.\n2+2=4.\n</think>\n\nThe answer is 4.",
            false,
            message("The answer is 4.", "The user adds.\n2+2=4.", vec![]),
        ),
        (
            "Okay, 2+2.\n</think>\n\n4",
            true,
            message("4", "Okay, 2+2.", vec![]),
        ),
        (
            TWO_CALLS,
            false,
            message(
                "I'll check both cities.",
                "",
                vec![
                    call("get_weather", json!({"city": "Paris"})),
                    call("get_weather", json!({"city": "Zürich", "unit": "c"})),
                ],
            ),
        ),
        (
            "<think>\nI could use <tool_call> syntax, a < b.\n</think>\n\n<tool_call>\n{\"name\": \"ls\", \"arguments\": \"{\\\"path\\\": \\\"/\\\"}\"}\n</tool_call>",
            false,
            message(
                "",
                "I could use <tool_call> syntax, a < b.",
                vec![call("ls", json!({"path": "/"}))],
            ),
        ),
        (
            "if a < b and c<d: <br> <thinking> </tool_call>",
            false,
            message("if a < b and c<d: <br> <thinking> </tool_call>", "", vec![]),
        ),
        (
            "<think>a</think>x\n<think>\nb </think> y",
            false,
            message("x\n\ny", "a\n\nb", vec![]),
        ),
        (
            "<think>Überlegung 🤔</think>\n\nGrüße 👋 ",
            false,
            message("Grüße 👋 ", "Überlegung 🤔", vec![]),
        ),
        (
            "Before\n<tool_call>{\"name\": \"f\", \"parameters\": {\"n\": 1}}</tool_call>\nAfter\n",
            false,
            message("Before\n\nAfter\n", "", vec![call("f", json!({"n": 1}))]),
        ),
        ("", false, message("", "", vec![])),
        ("a <tool", false, message("a <tool", "", vec![])),
    ]
}

#[test]
fn whole_responses_parse_as_expected() {
    for (text, opens, expected) in cases() {
        assert_eq!(parse_response(text, opens), expected, "{text:?}");
    }
}

#[test]
fn malformed_tool_calls_become_text_with_a_warning() {
    let bad = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>\nDone.";
    let parsed = parse_response(bad, false);
    assert_eq!(
        parsed.text,
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>\n\nDone."
    );
    assert!(parsed.tool_calls.is_empty());
    assert_eq!(parsed.warnings.len(), 1);
    assert!(
        parsed.warnings[0]
            .problem
            .starts_with("tool call is not valid JSON"),
        "{}",
        parsed.warnings[0]
    );
    assert_eq!(
        parsed.warnings[0].raw,
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>"
    );

    // A good call after a bad one still counts from index 0.
    let mixed = format!("{bad}<tool_call>{{\"name\": \"g\"}}</tool_call>");
    let mut parser = ResponseParser::new(false);
    let events = parser.push(&mixed);
    assert!(events.contains(&ResponseEvent::ToolCall {
        index: 0,
        call: call("g", json!({}))
    }));

    let cut = parse_response("Sure.<tool_call>\n{\"name\": \"f\"", false);
    assert_eq!(cut.text, "Sure.\n\n<tool_call>\n{\"name\": \"f\"");
    assert_eq!(
        cut.warnings,
        vec![ParseWarning {
            problem: "the response ended inside a tool call".into(),
            raw: "<tool_call>\n{\"name\": \"f\"".into(),
        }]
    );

    let unterminated = parse_response("still thinking", true);
    assert_eq!(unterminated.reasoning, "still thinking");
    assert_eq!(unterminated.warnings.len(), 1);
}

#[test]
fn every_single_cut_gives_the_same_message() {
    let mut inputs: Vec<(String, bool)> = cases()
        .into_iter()
        .map(|(t, o, _)| (t.to_owned(), o))
        .collect();
    inputs.push((
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>\nDone.".into(),
        false,
    ));
    inputs.push(("Sure.<tool_call>\n{\"name\": \"f\"".into(), false));
    for (text, opens) in &inputs {
        let whole = parse_response(text, *opens);
        for (k, _) in text.char_indices().skip(1) {
            let (a, b) = text.split_at(k);
            assert_eq!(streamed(&[a, b], *opens), whole, "{text:?} cut at {k}");
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(streamed(&chars, *opens), whole, "{text:?} char by char");
    }
}

#[test]
fn every_pair_of_cuts_gives_the_same_message() {
    for (text, opens, _) in cases() {
        let whole = parse_response(text, opens);
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
        for (n, &i) in bounds.iter().enumerate() {
            for &j in &bounds[n + 1..] {
                let chunks = [&text[..i], &text[i..j], &text[j..]];
                assert_eq!(streamed(&chunks, opens), whole, "{text:?} cut at {i},{j}");
            }
        }
    }
}

#[test]
fn stream_events_arrive_as_soon_as_they_are_decided() {
    let mut parser = ResponseParser::new(false);
    assert_eq!(
        parser.push("<think>\nhm"),
        vec![ResponseEvent::Reasoning("hm".into())]
    );
    // Trailing whitespace waits: it may turn out to precede </think>.
    assert_eq!(
        parser.push("m \n"),
        vec![ResponseEvent::Reasoning("m".into())]
    );
    assert_eq!(
        parser.push("ok"),
        vec![ResponseEvent::Reasoning(" \nok".into())]
    );
    assert_eq!(parser.push("</thi"), vec![]);
    assert_eq!(
        parser.push("nk>\n\nHi"),
        vec![ResponseEvent::Text("Hi".into())]
    );
    assert_eq!(parser.push("<tool_call>{\"name\": "), vec![]);
    assert_eq!(
        parser.push("\"f\"}</tool_call>"),
        vec![ResponseEvent::ToolCall {
            index: 0,
            call: call("f", json!({}))
        }]
    );
    assert_eq!(parser.finish(), vec![]);
    assert_eq!(parser.push("late"), vec![]);
    assert_eq!(parser.finish(), vec![]);
}

#[test]
fn openai_and_anthropic_shapes() {
    let parsed = parse_response(
        "<think>why</think>Checking.<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>",
        false,
    );
    let id = |i: usize| format!("call_{i}");
    assert_eq!(
        parsed.to_openai_message(id),
        json!({
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "why",
            "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
        })
    );
    assert_eq!(parsed.finish_reason(false), "tool_calls");
    assert_eq!(parsed.finish_reason(true), "length");
    assert_eq!(parse_response("hi", false).finish_reason(false), "stop");
    assert_eq!(
        parsed.to_anthropic_content(|i| format!("toolu_{i}")),
        vec![
            json!({"type": "thinking", "thinking": "why", "signature": ""}),
            json!({"type": "text", "text": "Checking."}),
            json!({"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {"city": "Paris"}}),
        ]
    );
    let only_calls = parse_response("<tool_call>{\"name\": \"f\"}</tool_call>", false);
    assert_eq!(only_calls.to_openai_message(id)["content"], Value::Null);

    // The OpenAI shape goes through the dialect crate's translation for
    // Anthropic clients unchanged in meaning.
    let completion = json!({
        "id": "chatcmpl-1", "model": "policy", "object": "chat.completion",
        "choices": [{"index": 0, "message": parsed.to_openai_message(id), "finish_reason": parsed.finish_reason(false)}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    });
    let anthropic = metaclaw_dialect::response_openai_to_anthropic(&completion).unwrap();
    assert_eq!(anthropic["stop_reason"], "tool_use");
    assert_eq!(anthropic["content"][0]["thinking"], "why");
    assert_eq!(anthropic["content"][2]["input"], json!({"city": "Paris"}));

    assert_eq!(
        ResponseEvent::ToolCall {
            index: 1,
            call: call("f", json!({"a": [1]}))
        }
        .to_openai_delta(id),
        json!({"tool_calls": [{"index": 1, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1]}"}}]})
    );
    assert_eq!(
        ResponseEvent::Text("x".into()).to_openai_delta(id),
        json!({"content": "x"})
    );
    assert_eq!(
        ResponseEvent::Reasoning("y".into()).to_openai_delta(id),
        json!({"reasoning_content": "y"})
    );
}
