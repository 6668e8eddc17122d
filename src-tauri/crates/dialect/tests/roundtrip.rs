//! Round-trip property over randomly generated conversations:
//! OpenAI → Anthropic → OpenAI keeps the messages, tools and tool calls,
//! and Anthropic → OpenAI → Anthropic is stable once in Anthropic form.
//!
//! A small seeded generator instead of a property-testing crate: failures
//! print the seed and the request, and the build stays light.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use metaclaw_dialect::{
    request_anthropic_to_openai, request_openai_to_anthropic, validate_request, Dialect,
};
use serde_json::{json, Map, Value};

/// xorshift64*: deterministic, good enough to vary shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn text(&mut self) -> String {
        const WORDS: &[&str] = &[
            "list",
            "the",
            "files",
            "in",
            "src",
            "Zürich",
            "\"quoted\"",
            "line\nbreak",
            "🦀",
            "<tag>",
            "{json}",
            "tab\there",
            "[Wed 2026-11-25 03:11 UTC]",
            "naïve",
            "x",
            "100%",
            "back\\slash",
        ];
        let n = 1 + self.below(8);
        (0..n)
            .map(|_| *self.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn id(&mut self) -> String {
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let tail: String = (0..12).map(|_| *self.pick(ALNUM) as char).collect();
        format!("call_{tail}")
    }
    fn json_value(&mut self, depth: u32) -> Value {
        match self.below(if depth > 1 { 4 } else { 6 }) {
            0 => json!(self.text()),
            1 => json!(self.below(1000) as i64 - 500),
            2 => json!(self.chance(50)),
            3 => Value::Null,
            4 => Value::Array(
                (0..self.below(3))
                    .map(|_| self.json_value(depth + 1))
                    .collect(),
            ),
            _ => self.json_object(depth + 1),
        }
    }
    fn json_object(&mut self, depth: u32) -> Value {
        let mut m = Map::new();
        for i in 0..self.below(4) {
            m.insert(format!("k{i}_{}", self.below(100)), self.json_value(depth));
        }
        Value::Object(m)
    }
}

const TOOL_NAMES: &[&str] = &["read", "write", "exec", "web_fetch", "process"];

fn user_message(rng: &mut Rng) -> Value {
    if rng.chance(60) {
        return json!({"role": "user", "content": rng.text()});
    }
    let mut parts = vec![json!({"type": "text", "text": rng.text()})];
    if rng.chance(40) {
        let url = if rng.chance(50) {
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB".to_owned()
        } else {
            format!("https://example.com/{}.jpg", rng.below(100))
        };
        parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
    }
    if rng.chance(30) {
        parts.push(json!({"type": "text", "text": rng.text()}));
    }
    json!({"role": "user", "content": parts})
}

fn generate(rng: &mut Rng) -> Value {
    let mut messages = Vec::new();
    if rng.chance(80) {
        messages.push(json!({"role": "system", "content": rng.text()}));
    }
    for _ in 0..1 + rng.below(4) {
        messages.push(user_message(rng));
        // Zero or more tool rounds, then usually a text answer.
        for _ in 0..rng.below(3) {
            let calls: Vec<Value> = (0..1 + rng.below(3))
                .map(|_| {
                    let args = rng.json_object(1).to_string();
                    json!({"id": rng.id(), "type": "function",
                        "function": {"name": *rng.pick(TOOL_NAMES), "arguments": args}})
                })
                .collect();
            let content = if rng.chance(50) {
                Value::Null
            } else {
                json!(rng.text())
            };
            messages.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
            for call in &calls {
                messages.push(
                    json!({"role": "tool", "tool_call_id": call["id"], "content": rng.text()}),
                );
            }
            if rng.chance(30) {
                // OpenClaw's trailing internal-context message.
                messages.push(json!({"role": "user", "content": [{"type": "text",
                    "text": "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nnone\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"}]}));
                break;
            }
        }
        if messages.last().is_some_and(|m| m["role"] != "user") && rng.chance(80) {
            messages.push(json!({"role": "assistant", "content": rng.text()}));
        }
        if messages.last().is_some_and(|m| m["role"] == "user") {
            // The next turn starts with a user message; keep roles alternating
            // the way real agents do.
            messages.push(json!({"role": "assistant", "content": rng.text()}));
        }
    }
    let tools: Vec<Value> = TOOL_NAMES[..1 + rng.below(TOOL_NAMES.len() as u64) as usize]
        .iter()
        .map(|name| {
            let mut function = Map::new();
            function.insert("name".into(), json!(name));
            if rng.chance(70) {
                function.insert("description".into(), json!(rng.text()));
            }
            function.insert("parameters".into(), json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}));
            json!({"type": "function", "function": function})
        })
        .collect();
    let tool_choice = match rng.below(4) {
        0 => json!("auto"),
        1 => json!("required"),
        2 => json!("none"),
        _ => json!({"type": "function", "function": {"name": tools[0]["function"]["name"]}}),
    };
    json!({"model": "m", "messages": messages, "tools": tools, "tool_choice": tool_choice,
        "max_tokens": 1 + rng.below(8192), "stream": rng.chance(50)})
}

/// The forms the round trip may legitimately change: a user string becomes
/// a one-part array when it shares an Anthropic turn with tool results, and
/// arguments are re-serialised.
fn normalised(messages: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for m in messages.as_array().unwrap() {
        let mut m = m.clone();
        if m["role"] == "user" {
            if let Some(s) = m["content"].as_str() {
                m["content"] = json!([{"type": "text", "text": s}]);
            }
        }
        if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
            for call in calls {
                let args = call["function"]["arguments"].as_str().unwrap().to_owned();
                call["function"]["arguments"] = serde_json::from_str(&args).unwrap();
            }
        }
        out.push(m);
    }
    out
}

#[test]
fn openai_to_anthropic_to_openai_keeps_messages_tools_and_calls() {
    // How often each shape came up, so the property is known to cover them.
    let mut seen = [0usize; 4];
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let original = generate(&mut rng);
        let context = || format!("seed {seed}: {original:#}");
        validate_request(Dialect::OpenAi, &original)
            .unwrap_or_else(|e| panic!("{e} in {}", context()));

        let anthropic = request_openai_to_anthropic(&original)
            .unwrap_or_else(|e| panic!("{e} in {}", context()));
        validate_request(Dialect::Anthropic, &anthropic)
            .unwrap_or_else(|e| panic!("{e} in {}", context()));
        let roles: Vec<&str> = anthropic["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert!(
            roles.windows(2).all(|w| w[0] != w[1]),
            "roles alternate: {roles:?} in {}",
            context()
        );

        let back = request_anthropic_to_openai(&anthropic)
            .unwrap_or_else(|e| panic!("{e} in {}", context()));
        assert_eq!(
            normalised(&back["messages"]),
            normalised(&original["messages"]),
            "{}",
            context()
        );
        assert_eq!(back["tools"], original["tools"], "{}", context());
        assert_eq!(
            back["tool_choice"],
            original["tool_choice"],
            "{}",
            context()
        );
        assert_eq!(back["max_tokens"], original["max_tokens"], "{}", context());

        for m in original["messages"].as_array().unwrap() {
            seen[0] += usize::from(m["role"] == "tool");
            seen[1] += usize::from(m["content"].is_null());
            seen[2] += usize::from(m["content"].to_string().contains("image_url"));
            seen[3] += usize::from(m["content"].to_string().contains("INTERNAL_CONTEXT"));
        }

        // Once in Anthropic form, another trip through OpenAI changes nothing.
        let again = request_openai_to_anthropic(&back).unwrap();
        assert_eq!(again, anthropic, "{}", context());
    }
    assert!(seen.iter().all(|&n| n > 20), "shape coverage {seen:?}");
}
