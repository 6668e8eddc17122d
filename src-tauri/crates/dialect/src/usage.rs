//! Token usage: reading it from a response of either dialect, and converting usage objects.
//!
//! OpenAI's `prompt_tokens` counts every prompt token, cached or not, while
//! Anthropic splits them into `input_tokens` (uncached),
//! `cache_read_input_tokens` and `cache_creation_input_tokens`. Converting
//! keeps the totals equal in both directions.

use serde_json::{json, Map, Value};

use crate::Dialect;

/// Prompt and completion token counts, when the response reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// The token usage of a non-streaming response (or an assembled stream) in
/// `dialect`. For Anthropic the prompt count includes cache reads and writes,
/// so the number means the same thing for both dialects.
pub fn usage(dialect: Dialect, response: &Value) -> Usage {
    let Some(u) = response.get("usage") else {
        return Usage::default();
    };
    match dialect {
        Dialect::OpenAi => Usage {
            prompt_tokens: count(u, "prompt_tokens"),
            completion_tokens: count(u, "completion_tokens"),
        },
        Dialect::Anthropic => Usage {
            prompt_tokens: anthropic_prompt_tokens(u),
            completion_tokens: count(u, "output_tokens"),
        },
    }
}

fn count(u: &Value, key: &str) -> Option<u64> {
    u.get(key).and_then(Value::as_u64)
}

/// Uncached + cache-read + cache-write input tokens; `None` when none is known.
fn anthropic_prompt_tokens(u: &Value) -> Option<u64> {
    let parts = [
        count(u, "input_tokens"),
        count(u, "cache_read_input_tokens"),
        count(u, "cache_creation_input_tokens"),
    ];
    parts
        .iter()
        .any(Option::is_some)
        .then(|| parts.iter().flatten().sum())
}

/// An OpenAI `usage` object as Anthropic usage fields.
pub(crate) fn openai_to_anthropic(u: &Value) -> Map<String, Value> {
    let prompt = count(u, "prompt_tokens").unwrap_or(0);
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| count(d, "cached_tokens"));
    let mut out = Map::new();
    out.insert(
        "input_tokens".into(),
        json!(prompt.saturating_sub(cached.unwrap_or(0))),
    );
    if let Some(cached) = cached {
        out.insert("cache_read_input_tokens".into(), json!(cached));
    }
    out.insert(
        "output_tokens".into(),
        json!(count(u, "completion_tokens").unwrap_or(0)),
    );
    out
}

/// Anthropic usage fields as an OpenAI `usage` object.
pub(crate) fn anthropic_to_openai(u: &Value) -> Value {
    let prompt = anthropic_prompt_tokens(u).unwrap_or(0);
    let completion = count(u, "output_tokens").unwrap_or(0);
    let mut out = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    });
    if let (Some(cached), Some(obj)) = (count(u, "cache_read_input_tokens"), out.as_object_mut()) {
        obj.insert(
            "prompt_tokens_details".into(),
            json!({ "cached_tokens": cached }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_of_either_dialect() {
        let o = json!({"usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}});
        assert_eq!(
            usage(Dialect::OpenAi, &o),
            Usage {
                prompt_tokens: Some(10),
                completion_tokens: Some(3)
            }
        );
        let a =
            json!({"usage": {"input_tokens": 4, "cache_read_input_tokens": 6, "output_tokens": 3}});
        assert_eq!(
            usage(Dialect::Anthropic, &a),
            Usage {
                prompt_tokens: Some(10),
                completion_tokens: Some(3)
            }
        );
        assert_eq!(usage(Dialect::Anthropic, &json!({})), Usage::default());
    }

    #[test]
    fn conversion_keeps_totals_including_cache() {
        let o = json!({"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 60}});
        let a = Value::Object(openai_to_anthropic(&o));
        assert_eq!(
            a,
            json!({"input_tokens": 40, "cache_read_input_tokens": 60, "output_tokens": 7})
        );
        let back = anthropic_to_openai(&a);
        assert_eq!(
            back,
            json!({"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107, "prompt_tokens_details": {"cached_tokens": 60}})
        );
        let with_write =
            json!({"input_tokens": 5, "cache_creation_input_tokens": 20, "output_tokens": 1});
        assert_eq!(anthropic_to_openai(&with_write)["prompt_tokens"], 25);
    }
}
