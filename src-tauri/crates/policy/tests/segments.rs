//! The segment cache gives exactly the ids of the plain encoder, on the
//! test model's tokenizer (Qwen's layout), for growing conversations with
//! tool markup, non-ASCII text and odd whitespace, and tokenizes only the
//! stretches it has not seen.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use metaclaw_policy::{ChatCodec, ChatInput, PolicyTokenizer, SegmentCache};
use serde_json::{json, Value};

fn codec() -> (tempfile::TempDir, ChatCodec) {
    let dir = qwen_like_model(QWEN3_STYLE_TEMPLATE);
    let codec = ChatCodec::load(dir.path()).unwrap();
    (dir, codec)
}

/// Round `i` of a conversation: an ask, a tool call, its output, an answer.
fn round(i: usize) -> Vec<Value> {
    vec![
        json!({"role": "user", "content": format!("Question {i}: what about Zürich   and\n\n  Paris? <not a token> \t ok")}),
        json!({"role": "assistant", "content": "", "tool_calls": [{"id": format!("c{i}"), "type": "function",
            "function": {"name": "get_weather", "arguments": format!("{{\"city\": \"Zürich {i}\"}}")}}]}),
        json!({"role": "tool", "tool_call_id": format!("c{i}"), "content": format!("{i}°C, wind from the <think>north</think>\n</tool_call> done")}),
        json!({"role": "assistant", "content": format!("It is {i} degrees. <tool_call>not really</tool_call>\n\n")}),
    ]
}

fn request(rounds: usize, system: &str) -> Value {
    let mut messages = vec![json!({"role": "system", "content": system})];
    for i in 0..rounds {
        messages.extend(round(i));
    }
    messages.push(json!({"role": "user", "content": format!("And now, round {rounds}?")}));
    json!({"messages": messages, "tools": [{"type": "function", "function": {"name": "get_weather",
        "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]})
}

#[test]
fn a_growing_conversation_encodes_exactly_and_reuses_what_it_saw() {
    let (_dir, codec) = codec();
    let cache = codec.segment_cache().expect("Qwen's layout can be cached");
    let mut last_misses = 0;
    for rounds in 0..8 {
        // The system message changes every other request, as injected
        // skills do: only that stretch is tokenized again.
        let system = format!("You are terse. Skills: {}", ["alpha", "beta"][rounds % 2]);
        let input = ChatInput::from_openai(&request(rounds, &system)).unwrap();
        let prompt = codec.prompt_for(&input).unwrap();
        let plain = codec.tokenizer().encode(&prompt.text).unwrap();
        assert_eq!(prompt.token_ids, plain, "round {rounds}");
        let (_, misses) = cache.stats();
        if rounds >= 2 {
            // The new round's stretches, the new last question and the
            // system message at most; never the whole history again.
            assert!(
                misses - last_misses <= 8,
                "round {rounds}: {} misses",
                misses - last_misses
            );
        }
        last_misses = misses;
    }
    let (hits, _) = cache.stats();
    assert!(hits > 50, "{:?}", cache.stats());
}

#[test]
fn a_small_cache_evicts_and_stays_exact() {
    let (_dir, codec) = codec();
    let tiny = SegmentCache::new(codec.tokenizer(), 512).unwrap();
    for rounds in [5, 1, 6, 2, 6, 5] {
        let text = codec
            .template()
            .render(
                &ChatInput::from_openai(&request(rounds, "sys")).unwrap(),
                true,
            )
            .unwrap();
        assert_eq!(
            tiny.encode(codec.tokenizer(), &text).unwrap(),
            codec.tokenizer().encode(&text).unwrap()
        );
    }
    // Texts without any added token, and at the edges.
    for text in [
        "",
        "<|im_end|>",
        "plain text, long enough to be cached for sure",
        "<|im_start|><|im_end|>x",
    ] {
        assert_eq!(
            tiny.encode(codec.tokenizer(), text).unwrap(),
            codec.tokenizer().encode(text).unwrap(),
            "{text:?}"
        );
    }
}

#[test]
fn tokens_that_strip_whitespace_turn_the_cache_off() {
    let mut tokenizer = tokenizer_json(None);
    tokenizer["added_tokens"][2]["lstrip"] = json!(true);
    let tokenizer: PolicyTokenizer = PolicyTokenizer::from_tokenizer(
        metaclaw_policy::tokenizers::Tokenizer::from_bytes(tokenizer.to_string()).unwrap(),
    )
    .unwrap();
    assert!(SegmentCache::new(&tokenizer, 1 << 20).is_none());
}
