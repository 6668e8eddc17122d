//! The real code paths on a model folder written by the test: request →
//! chat template → token ids, and sampled ids → assistant message, whole
//! and streamed. Expected prompts and ids are written out by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use metaclaw_dialect::Dialect;
use metaclaw_policy::{
    AssistantMessage, ChatCodec, ChatInput, PolicyError, ResponseEvent, ToolCall,
};
use serde_json::{json, Value};

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }})
}

fn openai_tool_conversation() -> Value {
    json!({
        "model": "Qwen/Qwen3-4B-Instruct-2507",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris and Zürich?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
            {"role": "tool", "tool_call_id": "c2", "content": "12C"}
        ],
        "tools": [weather_tool()]
    })
}

const TOOL_PROMPT: &str = "<|im_start|>system
You are terse.

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{\"name\": <function-name>, \"arguments\": <args-json-object>}
</tool_call><|im_end|>
<|im_start|>user
Weather in Paris and Zürich?<|im_end|>
<|im_start|>assistant
Checking.
<tool_call>
{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}
</tool_call>
<tool_call>
{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
18C
</tool_response>
<tool_response>
12C
</tool_response><|im_end|>
<|im_start|>assistant
";

#[test]
fn renders_a_tool_conversation_from_either_dialect() {
    let dir = qwen_like_model(QWEN3_STYLE_TEMPLATE);
    let codec = ChatCodec::load(dir.path()).unwrap();
    let prompt = codec
        .prompt(Dialect::OpenAi, &openai_tool_conversation())
        .unwrap();
    assert_eq!(prompt.text, TOOL_PROMPT);
    assert!(!prompt.opens_reasoning);

    let anthropic = json!({
        "model": "policy", "max_tokens": 512,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Zürich?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {"city": "Zürich"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "12C"}]}
            ]}
        ],
        "tools": [{"name": "get_weather", "description": "Current weather",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    });
    let from_anthropic = codec.prompt(Dialect::Anthropic, &anthropic).unwrap();
    assert_eq!(from_anthropic.text, TOOL_PROMPT);
    assert_eq!(from_anthropic.token_ids, prompt.token_ids);
}

#[test]
fn earlier_reasoning_is_dropped_and_thinking_can_be_switched_off() {
    let dir = qwen_like_model(QWEN3_STYLE_TEMPLATE);
    let codec = ChatCodec::load(dir.path()).unwrap();
    let mut req = json!({"messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Add."},
        {"role": "user", "content": "Thanks"}
    ]});
    assert_eq!(
        codec.prompt(Dialect::OpenAi, &req).unwrap().text,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n"
    );
    req["chat_template_kwargs"] = json!({"enable_thinking": false});
    assert!(codec
        .prompt(Dialect::OpenAi, &req)
        .unwrap()
        .text
        .ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"));

    // Within the current agentic turn the reasoning stays, here read out of
    // inline <think> markup in the content.
    let agentic = json!({"messages": [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "<think>\nR\n</think>\n\n", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "a", "content": "ok"}
    ]});
    assert_eq!(
        codec.prompt(Dialect::OpenAi, &agentic).unwrap().text,
        "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn token_ids_by_hand() {
    let dir = qwen_like_model(QWEN3_STYLE_TEMPLATE);
    let codec = ChatCodec::load(dir.path()).unwrap();
    let prompt = codec
        .prompt(
            Dialect::OpenAi,
            &json!({"messages": [{"role": "user", "content": "hello shell é"}]}),
        )
        .unwrap();
    assert_eq!(
        prompt.text,
        "<|im_start|>user\nhello shell é<|im_end|>\n<|im_start|>assistant\n"
    );
    // "user" "\n" "hello" " shell" " é" …: letters-runs keep a leading
    // space ("Ġshell"); "hello" merges h e → he, l l → ll, he ll → hell;
    // "é" is two bytes, C3 A9.
    let mut expected = vec![IM_START];
    expected.extend(bytes("user\n"));
    expected.extend([HELL, u32::from(b'o')]);
    expected.extend([u32::from(b' '), u32::from(b's'), HELL]);
    expected.extend([u32::from(b' '), 0xC3, 0xA9]);
    expected.extend([IM_END, u32::from(b'\n'), IM_START]);
    expected.extend(bytes("assistant\n"));
    assert_eq!(prompt.token_ids, expected);

    let tokenizer = codec.tokenizer();
    assert_eq!(tokenizer.vocab_size(), 268);
    assert_eq!(tokenizer.token_id("<tool_call>"), Some(TOOL_CALL));
    assert_eq!(
        tokenizer.decode(&prompt.token_ids, false).unwrap(),
        prompt.text
    );
    assert_eq!(
        tokenizer.decode(&prompt.token_ids, true).unwrap(),
        "user\nhello shell é\nassistant\n"
    );
    assert_eq!(codec.stop_token_ids(), &[IM_END, ENDOFTEXT]);
}

#[test]
fn long_prompts_round_trip_with_every_special_token_whole() {
    let dir = qwen_like_model(QWEN3_STYLE_TEMPLATE);
    let codec = ChatCodec::load(dir.path()).unwrap();
    let prompt = codec
        .prompt(Dialect::OpenAi, &openai_tool_conversation())
        .unwrap();
    let count = |id: u32| prompt.token_ids.iter().filter(|&&t| t == id).count();
    // system, user, assistant, the tool results, the generation prompt.
    assert_eq!(count(IM_START), 5);
    assert_eq!(count(IM_END), 4);
    // Two in the tool instructions, two calls.
    assert_eq!(count(TOOL_CALL), 4);
    assert_eq!(count(TOOL_CALL_END), 4);
    assert_eq!(count(TOOL_RESPONSE), 2);
    assert_eq!(
        codec.tokenizer().decode(&prompt.token_ids, false).unwrap(),
        TOOL_PROMPT
    );
}

#[test]
fn special_tokens_are_not_added_twice() {
    // A tokenizer whose post-processor prepends <|endoftext|> as BOS, and a
    // template that prints bos_token itself, like Llama's.
    let dir = tempfile::tempdir().unwrap();
    let post = json!({"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [ENDOFTEXT], "tokens": ["<|endoftext|>"]}}});
    let mut config = tokenizer_config(json!(
        "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"
    ));
    config["bos_token"] = json!("<|endoftext|>");
    write_model(dir.path(), &tokenizer_json(Some(post)), &config);
    let codec = ChatCodec::load(dir.path()).unwrap();
    let prompt = codec
        .prompt(
            Dialect::OpenAi,
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
    assert_eq!(prompt.text, "<|endoftext|>x");
    assert_eq!(prompt.token_ids, vec![ENDOFTEXT, u32::from(b'x')]);
    // What encoding with special tokens would have given.
    let doubled = codec
        .tokenizer()
        .inner()
        .encode(prompt.text.as_str(), true)
        .unwrap();
    assert_eq!(doubled.get_ids(), &[ENDOFTEXT, ENDOFTEXT, u32::from(b'x')]);
}

fn expected_response() -> AssistantMessage {
    AssistantMessage {
        text: "Calling.".into(),
        reasoning: "hm, Zürich".into(),
        tool_calls: vec![ToolCall {
            name: "get_weather".into(),
            arguments: json!({"city": "Zürich"}),
        }],
        warnings: vec![],
    }
}

#[test]
fn sampled_tokens_parse_the_same_whole_and_streamed() {
    let dir = qwen_like_model(QWEN3_STYLE_TEMPLATE);
    let codec = ChatCodec::load(dir.path()).unwrap();
    let prompt = codec
        .prompt(
            Dialect::OpenAi,
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
    let text = "<think>\nhm, Zürich\n</think>\n\nCalling.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call>";
    let mut ids = codec.tokenizer().encode(text).unwrap();
    assert_eq!(ids[0], THINK);
    assert!(ids.contains(&TOOL_CALL) && ids.contains(&TOOL_CALL_END));
    // The sampler's stop token, and junk after it that must be ignored.
    ids.extend([IM_END, u32::from(b'x')]);

    let whole = codec.parse_response(&prompt, &ids).unwrap();
    assert_eq!(whole, expected_response());

    let mut stream = codec.response_stream(&prompt);
    let mut events = Vec::new();
    for &id in &ids {
        events.extend(stream.push_token(id).unwrap());
    }
    let (last, streamed) = stream.finish();
    events.extend(last);
    assert_eq!(streamed, whole);
    let mut folded = AssistantMessage::default();
    for event in &events {
        folded.apply(event);
    }
    assert_eq!(folded, whole);
    // "ü" is two byte tokens: no event may hold half a character, and the
    // call arrives in one piece.
    assert!(events.iter().all(|e| match e {
        ResponseEvent::Text(t) | ResponseEvent::Reasoning(t) => !t.contains('\u{FFFD}'),
        ResponseEvent::ToolCall { .. } => true,
    }));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ResponseEvent::ToolCall { .. }))
            .count(),
        1
    );
}

#[test]
fn client_stop_strings_end_the_answer_without_showing_it() {
    let dir = qwen_like_model(QWEN3_STYLE_TEMPLATE);
    let codec = ChatCodec::load(dir.path()).unwrap();
    let prompt = codec
        .prompt(
            Dialect::OpenAi,
            &json!({"messages": [{"role": "user", "content": "count"}]}),
        )
        .unwrap();
    // One token per byte here, so "END" spans three tokens and "EN" is
    // held back until "D" settles it; "E" alone (in "Eleven") is released.
    let ids = codec
        .tokenizer()
        .encode("One, Eleven, two END three")
        .unwrap();
    let run = |stops: &[&str]| {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut stream = codec.response_stream(&prompt).with_stop_strings(&stops);
        let mut text = String::new();
        for &id in &ids {
            for event in stream.push_token(id).unwrap() {
                if let ResponseEvent::Text(t) = event {
                    text.push_str(&t);
                }
            }
        }
        let stopped = stream.stopped_after();
        let (last, message) = stream.finish();
        for event in last {
            if let ResponseEvent::Text(t) = event {
                text.push_str(&t);
            }
        }
        assert_eq!(text, message.text);
        (message.text, stopped)
    };
    let end = "One, Eleven, two END".len();
    assert_eq!(run(&["END"]), ("One, Eleven, two ".to_owned(), Some(end)));
    // The earliest of several wins; a stop never seen changes nothing.
    assert_eq!(
        run(&["three", "two"]),
        ("One, Eleven, ".to_owned(), Some(16))
    );
    assert_eq!(
        run(&["NOPE"]),
        ("One, Eleven, two END three".to_owned(), None)
    );
    // A stop string cut off by the end of the response is shown as text.
    assert_eq!(
        run(&["three!"]),
        ("One, Eleven, two END three".to_owned(), None)
    );
    // The stop token still ends it, and is counted.
    let mut with_stop = ids[..3].to_vec();
    with_stop.extend([IM_END, u32::from(b'x')]);
    let mut stream = codec
        .response_stream(&prompt)
        .with_stop_strings(&["zz".into()]);
    for &id in &with_stop {
        stream.push_token(id).unwrap();
    }
    assert_eq!(stream.stopped_after(), Some(4));
    assert_eq!(stream.finish().1.text, "One");
    assert_eq!(codec.stop_token_texts(), ["<|im_end|>", "<|endoftext|>"]);
}

#[test]
fn a_thinking_template_opens_the_reasoning_block() {
    let dir = qwen_like_model(&thinking_template());
    let codec = ChatCodec::load(dir.path()).unwrap();
    let prompt = codec
        .prompt(
            Dialect::OpenAi,
            &json!({"messages": [{"role": "user", "content": "2+2?"}]}),
        )
        .unwrap();
    assert!(prompt.text.ends_with("<|im_start|>assistant\n<think>\n"));
    assert!(prompt.opens_reasoning);
    assert_eq!(*prompt.token_ids.last().unwrap(), u32::from(b'\n'));
    let mut ids = codec
        .tokenizer()
        .encode("Add them.\n</think>\n\n4")
        .unwrap();
    ids.push(IM_END);
    let parsed = codec.parse_response(&prompt, &ids).unwrap();
    assert_eq!(parsed.reasoning, "Add them.");
    assert_eq!(parsed.text, "4");
}

#[test]
fn template_rules_and_bad_requests_are_clear_errors() {
    let dir = qwen_like_model(QWEN3_STYLE_TEMPLATE);
    let codec = ChatCodec::load(dir.path()).unwrap();
    let err = codec
        .prompt(Dialect::OpenAi, &json!({"messages": []}))
        .unwrap_err();
    assert!(matches!(&err, PolicyError::Rejected(m) if m == "No messages provided."));
    assert_eq!(
        err.to_string(),
        "the model's chat template rejected the conversation: No messages provided."
    );
    let err = codec
        .prompt(
            Dialect::Anthropic,
            &json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}),
        )
        .unwrap_err();
    assert!(matches!(err, PolicyError::Conversation(_)), "{err}");

    let missing = tempfile::tempdir().unwrap();
    let err = ChatCodec::load(missing.path()).unwrap_err();
    assert!(err.to_string().contains("tokenizer_config.json"), "{err}");
    std::fs::write(
        missing.path().join("tokenizer_config.json"),
        tokenizer_config(json!("x")).to_string(),
    )
    .unwrap();
    std::fs::write(missing.path().join("tokenizer.json"), "{}").unwrap();
    let err = ChatCodec::load(missing.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("tokenizer.json: not a usable tokenizer"),
        "{err}"
    );
}

#[test]
fn a_named_tool_use_template_is_picked_when_tools_are_given() {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        dir.path(),
        &tokenizer_json(None),
        &tokenizer_config(json!([
            {"name": "default", "template": "plain:{{ messages[0].content }}"},
            {"name": "tool_use", "template": "tools:{{ tools | map(attribute='function') | map(attribute='name') | join(',') }}"}
        ])),
    );
    let codec = ChatCodec::load(dir.path()).unwrap();
    let mut input =
        ChatInput::from_openai(&json!({"messages": [{"role": "user", "content": "q"}]})).unwrap();
    assert_eq!(codec.prompt_for(&input).unwrap().text, "plain:q");
    input.tools = Some(vec![weather_tool()]);
    assert_eq!(codec.prompt_for(&input).unwrap().text, "tools:get_weather");
    assert_eq!(codec.template().names(), ["default", "tool_use"]);
}

#[test]
fn the_codec_can_be_shared_across_request_tasks() {
    fn shared<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shared::<ChatCodec>();
    movable::<metaclaw_policy::ResponseStream<'static>>();
    movable::<metaclaw_policy::ResponseParser>();
}
