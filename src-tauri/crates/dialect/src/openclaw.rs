//! The envelope OpenClaw wraps around user text: timestamps, the `Runtime:` line, internal-context blocks.
//!
//! OpenClaw (the most common agent in front of the proxy) prefixes every
//! user message with `[Wed 2026-11-25 03:11 UTC] `, appends a
//! `Runtime: agent=… | sessionId=… | …` line to the first one, and ends
//! every request with a user message holding only an
//! `<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>> … <<<END_OPENCLAW_INTERNAL_CONTEXT>>>`
//! block. None of that is the user's instruction.

use std::borrow::Cow;

const INTERNAL_BEGIN: &str = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>";
const INTERNAL_END: &str = "<<<END_OPENCLAW_INTERNAL_CONTEXT>>>";
const RUNTIME: &str = "Runtime: ";
const SESSION_ID: &str = "sessionId=";

/// `text` without OpenClaw's envelope: internal-context blocks, the leading
/// timestamp and the `Runtime:` line removed, whitespace trimmed.
pub(crate) fn user_instruction(text: &str) -> String {
    let text = strip_internal_context(text);
    let text = strip_runtime_line(text.trim());
    strip_timestamp(text.trim()).trim().to_owned()
}

/// Remove every internal-context block (an unterminated one runs to the end).
pub(crate) fn strip_internal_context(text: &str) -> Cow<'_, str> {
    if !text.contains(INTERNAL_BEGIN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(INTERNAL_BEGIN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + INTERNAL_BEGIN.len()..];
        rest = match after.find(INTERNAL_END) {
            Some(end) => &after[end + INTERNAL_END.len()..],
            None => "",
        };
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Drop a leading `[<weekday> <YYYY-MM-DD> <HH:MM> <zone>] ` stamp. Only a
/// bracket holding a date is taken for one, so `[x] todo` text survives.
fn strip_timestamp(text: &str) -> &str {
    let Some(inner_and_rest) = text.strip_prefix('[') else {
        return text;
    };
    let Some(close) = inner_and_rest.find(']').filter(|&i| i <= 64) else {
        return text;
    };
    if !has_date(&inner_and_rest[..close]) {
        return text;
    }
    &inner_and_rest[close + 1..]
}

/// Whether `s` contains `dddd-dd-dd`.
fn has_date(s: &str) -> bool {
    let b = s.as_bytes();
    let pattern = b"dddd-dd-dd";
    b.windows(pattern.len()).any(|w| {
        w.iter().zip(pattern).all(|(c, p)| {
            if *p == b'd' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        })
    })
}

/// Remove the line starting with `Runtime: ` (the last one, which is
/// OpenClaw's; the user's own text comes before it).
fn strip_runtime_line(text: &str) -> Cow<'_, str> {
    let start = if text.starts_with(RUNTIME) {
        Some(0)
    } else {
        text.rfind(&format!("\n{RUNTIME}")).map(|i| i + 1)
    };
    let Some(start) = start else {
        return Cow::Borrowed(text);
    };
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let (before, after) = (&text[..start], &text[end..]);
    if after.trim().is_empty() {
        Cow::Borrowed(before)
    } else {
        Cow::Owned(format!("{}{}", before, after.trim_start_matches('\n')))
    }
}

/// The `<sid>` of a `sessionId=<sid>` field (as in the `Runtime:` line),
/// where the field starts a line or follows a space or `|`.
pub(crate) fn session_id(text: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(i) = text[from..].find(SESSION_ID).map(|i| from + i) {
        let boundary = text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == '|');
        let value = &text[i + SESSION_ID.len()..];
        let end = value
            .find(|c: char| c.is_whitespace() || c == '|')
            .unwrap_or(value.len());
        if boundary && end > 0 {
            return Some(&value[..end]);
        }
        from = i + SESSION_ID.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = "[Wed 2026-11-25 03:11 UTC] Summarise the repo README\n\nRuntime: agent=main | session=agent:main:explicit:s-42 | sessionId=s-42 | host=box | repo=/w | os=linux | node=24.16 | model=local/qwen";

    #[test]
    fn cleans_the_first_message() {
        assert_eq!(user_instruction(FIRST), "Summarise the repo README");
        assert_eq!(
            user_instruction("[Thu 2026-11-26 09:00 CET] and now tests?"),
            "and now tests?"
        );
        assert_eq!(
            user_instruction("[x] keep my checkbox"),
            "[x] keep my checkbox"
        );
        assert_eq!(user_instruction("Runtime: only"), "");
    }

    #[test]
    fn internal_context_is_removed_everywhere() {
        let t = "before <<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nprocs: none\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>> after";
        assert_eq!(strip_internal_context(t), "before  after");
        assert_eq!(
            strip_internal_context("a<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>open"),
            "a"
        );
        assert_eq!(
            user_instruction(
                "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>x<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"
            ),
            ""
        );
    }

    #[test]
    fn runtime_line_in_the_middle_keeps_the_rest() {
        assert_eq!(strip_runtime_line("ask\nRuntime: a=b\nmore"), "ask\nmore");
    }

    #[test]
    fn finds_the_session_id() {
        assert_eq!(session_id(FIRST), Some("s-42"));
        assert_eq!(session_id("mysessionId=x"), None);
        assert_eq!(session_id("sessionId= | sessionId=ok"), Some("ok"));
        assert_eq!(session_id("nothing here"), None);
    }
}
