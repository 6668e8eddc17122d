//! Message ids and timestamps for translated responses and streams.
//!
//! Each dialect has its own id prefix (`chatcmpl-…`, `msg_…`); the
//! translated id keeps the upstream's id inside it so a recorded turn can be
//! matched with the upstream's logs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `chatcmpl-abc` → `msg_abc`; an id that already came from Anthropic
/// (`chatcmpl-msg_abc`) gets its original back.
pub(crate) fn anthropic_message_id(openai_id: &str) -> String {
    let rest = openai_id.strip_prefix("chatcmpl-").unwrap_or(openai_id);
    if rest.is_empty() {
        generated("msg_")
    } else if rest.starts_with("msg_") {
        rest.to_owned()
    } else {
        format!("msg_{rest}")
    }
}

/// `msg_abc` → `chatcmpl-msg_abc`.
pub(crate) fn openai_completion_id(anthropic_id: &str) -> String {
    if anthropic_id.is_empty() {
        generated("chatcmpl-")
    } else {
        format!("chatcmpl-{anthropic_id}")
    }
}

/// A process-unique id for upstreams that send none (some OpenAI-compatible
/// servers leave `id` empty, Azure's first chunk among them).
pub(crate) fn generated(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{prefix}{nanos:x}{n:04x}")
}

/// Seconds since the Unix epoch, for OpenAI's `created`.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_both_ways() {
        assert_eq!(anthropic_message_id("chatcmpl-abc"), "msg_abc");
        assert_eq!(anthropic_message_id("gen-123"), "msg_gen-123");
        assert_eq!(openai_completion_id("msg_01X"), "chatcmpl-msg_01X");
        assert_eq!(
            anthropic_message_id(&openai_completion_id("msg_01X")),
            "msg_01X"
        );
        assert!(anthropic_message_id("").starts_with("msg_"));
        assert_ne!(generated("x"), generated("x"));
    }
}
