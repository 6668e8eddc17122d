//! Mapping between OpenAI `finish_reason` and Anthropic `stop_reason`.

/// OpenAI `finish_reason` → Anthropic `stop_reason`. Unknown reasons become
/// `end_turn`: the client still needs a value it understands.
pub(crate) fn to_anthropic(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`. `pause_turn` (a server
/// tool paused a long turn) has no OpenAI equivalent; `stop` is the closest.
pub(crate) fn to_openai(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Agents decide whether to run tools from the stop reason, and some
/// OpenAI-compatible servers (Ollama among them) say `stop` even when the
/// message carries tool calls; a message with tool calls always reports
/// `tool_use`.
pub(crate) fn to_anthropic_with_tools(
    finish_reason: Option<&str>,
    has_tool_calls: bool,
) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("content_filter") => "refusal",
        _ if has_tool_calls => "tool_use",
        Some(r) => to_anthropic(r),
        None => "end_turn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_both_ways() {
        for (o, a) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("content_filter", "refusal"),
        ] {
            assert_eq!(to_anthropic(o), a);
            assert_eq!(to_openai(a), o);
        }
        assert_eq!(to_openai("stop_sequence"), "stop");
        assert_eq!(to_openai("pause_turn"), "stop");
        assert_eq!(to_anthropic_with_tools(Some("stop"), true), "tool_use");
        assert_eq!(to_anthropic_with_tools(Some("length"), true), "max_tokens");
        assert_eq!(to_anthropic_with_tools(None, false), "end_turn");
    }
}
