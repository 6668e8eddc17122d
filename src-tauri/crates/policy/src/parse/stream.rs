//! The incremental Qwen3 response parser: decoded text in, typed events out.
//!
//! A small state machine over three modes: plain text, inside
//! `<think>…</think>`, inside `<tool_call>…</tool_call>`. Text that might be
//! the beginning of a tag (`…<tool_`) is held back until the next chunk
//! decides it, so the events do not depend on where the chunks were cut.
//!
//! Whitespace next to markup is the model's formatting, not content: a
//! reasoning block is trimmed at both ends, text loses the whitespace just
//! before an opening tag and just after a closing one, and two text (or
//! reasoning) segments separated by markup are joined with a blank line.
//! Trailing whitespace is held back until it is known not to precede a tag.

use serde_json::{json, Value};

use super::{ParseWarning, ResponseEvent, ToolCall};

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";
const CALL_OPEN: &str = "<tool_call>";
const CALL_CLOSE: &str = "</tool_call>";

/// Where the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Reasoning,
    ToolCall,
}

/// Feed decoded text with [`push`](ResponseParser::push), then call
/// [`finish`](ResponseParser::finish) once; both return the events the new
/// text completed.
#[derive(Debug, Clone)]
pub struct ResponseParser {
    mode: Mode,
    /// Input not yet turned into events: a possible partial tag, or the
    /// body of an unfinished tool call.
    held: String,
    /// In tool-call mode, where the search for `</tool_call>` resumes.
    scan_from: usize,
    text: Segments,
    reasoning: Segments,
    tool_calls: usize,
    warnings: Vec<ParseWarning>,
    finished: bool,
}

impl ResponseParser {
    /// `opens_reasoning`: the prompt already ends with `<think>` (a Qwen3
    /// thinking template's generation prompt), so the response starts
    /// inside a reasoning block and only closes it.
    pub fn new(opens_reasoning: bool) -> ResponseParser {
        ResponseParser {
            mode: if opens_reasoning {
                Mode::Reasoning
            } else {
                Mode::Text
            },
            held: String::new(),
            scan_from: 0,
            text: Segments::new(false),
            reasoning: Segments::new(true),
            tool_calls: 0,
            warnings: Vec::new(),
            finished: false,
        }
    }

    /// Parses the next piece of the response.
    pub fn push(&mut self, chunk: &str) -> Vec<ResponseEvent> {
        let mut out = Vec::new();
        if !self.finished {
            self.held.push_str(chunk);
            self.drain(&mut out, false);
        }
        out
    }

    /// The end of the response: releases held-back text and reports an
    /// unfinished tool call as text (with a warning). Later calls and
    /// pushes return nothing.
    pub fn finish(&mut self) -> Vec<ResponseEvent> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.drain(&mut out, true);
        match self.mode {
            Mode::Text => {
                if let Some(rest) = self.text.flush() {
                    out.push(ResponseEvent::Text(rest));
                }
            }
            Mode::Reasoning => {
                self.warn(
                    "the response ended inside a reasoning block (no </think>)",
                    String::new(),
                );
            }
            Mode::ToolCall => {}
        }
        self.finished = true;
        out
    }

    /// Problems met so far: malformed or unfinished tool calls.
    pub fn warnings(&self) -> &[ParseWarning] {
        &self.warnings
    }

    /// Turns as much of `held` into events as can be decided.
    fn drain(&mut self, out: &mut Vec<ResponseEvent>, at_end: bool) {
        loop {
            match self.mode {
                Mode::Text => match find_first(&self.held, &[THINK_OPEN, CALL_OPEN]) {
                    Some((pos, tag)) => {
                        self.emit_text(pos, out);
                        self.text.cut();
                        self.held.drain(..tag.len());
                        if tag == THINK_OPEN {
                            self.mode = Mode::Reasoning;
                        } else {
                            self.mode = Mode::ToolCall;
                            self.scan_from = 0;
                        }
                    }
                    None => {
                        let keep = if at_end {
                            0
                        } else {
                            partial_tag(&self.held, &[THINK_OPEN, CALL_OPEN])
                        };
                        self.emit_text(self.held.len() - keep, out);
                        return;
                    }
                },
                Mode::Reasoning => match self.held.find(THINK_CLOSE) {
                    Some(pos) => {
                        self.emit_reasoning(pos, out);
                        self.reasoning.cut();
                        self.held.drain(..THINK_CLOSE.len());
                        self.text.cut();
                        self.mode = Mode::Text;
                    }
                    None => {
                        let keep = if at_end {
                            0
                        } else {
                            partial_tag(&self.held, &[THINK_CLOSE])
                        };
                        self.emit_reasoning(self.held.len() - keep, out);
                        return;
                    }
                },
                Mode::ToolCall => match self.held[self.scan_from..].find(CALL_CLOSE) {
                    Some(offset) => {
                        let end = self.scan_from + offset;
                        let body: String = self.held.drain(..end + CALL_CLOSE.len()).collect();
                        let body = &body[..end];
                        self.complete_tool_call(body, out);
                        self.text.cut();
                        self.mode = Mode::Text;
                    }
                    None if at_end => {
                        let raw = format!("{CALL_OPEN}{}", self.held);
                        self.held.clear();
                        self.warn("the response ended inside a tool call", raw.clone());
                        if let Some(text) = self.text.push(&raw) {
                            out.push(ResponseEvent::Text(text));
                        }
                        self.mode = Mode::Text;
                        return;
                    }
                    None => {
                        let mut from = self.held.len().saturating_sub(CALL_CLOSE.len() - 1);
                        while !self.held.is_char_boundary(from) {
                            from -= 1;
                        }
                        self.scan_from = from;
                        return;
                    }
                },
            }
        }
    }

    /// Emits `held[..len]` as text and removes it.
    fn emit_text(&mut self, len: usize, out: &mut Vec<ResponseEvent>) {
        if let Some(text) = self.text.push(&self.held[..len]) {
            out.push(ResponseEvent::Text(text));
        }
        self.held.drain(..len);
    }

    /// Emits `held[..len]` as reasoning and removes it.
    fn emit_reasoning(&mut self, len: usize, out: &mut Vec<ResponseEvent>) {
        if let Some(text) = self.reasoning.push(&self.held[..len]) {
            out.push(ResponseEvent::Reasoning(text));
        }
        self.held.drain(..len);
    }

    fn complete_tool_call(&mut self, body: &str, out: &mut Vec<ResponseEvent>) {
        match parse_tool_call(body) {
            Ok(call) => {
                out.push(ResponseEvent::ToolCall {
                    index: self.tool_calls,
                    call,
                });
                self.tool_calls += 1;
            }
            Err(problem) => {
                // The model's words are kept: a client sees what it wrote
                // instead of a call that silently vanished.
                let raw = format!("{CALL_OPEN}{body}{CALL_CLOSE}");
                self.warn(&problem, raw.clone());
                if let Some(text) = self.text.push(&raw) {
                    out.push(ResponseEvent::Text(text));
                }
            }
        }
    }

    fn warn(&mut self, problem: &str, raw: String) {
        tracing::warn!(problem, raw = %raw, "policy response markup not understood");
        self.warnings.push(ParseWarning {
            problem: problem.to_owned(),
            raw,
        });
    }
}

/// Whitespace handling for one kind of content (text or reasoning).
#[derive(Debug, Clone)]
struct Segments {
    /// Drop leading whitespace: the segment follows a tag.
    strip_leading: bool,
    /// Trailing whitespace held back until something follows it.
    pending: String,
    /// Whether anything was emitted, so a later segment needs a separator.
    emitted: bool,
    /// The next content starts a new segment.
    new_segment: bool,
}

impl Segments {
    fn new(strip_leading: bool) -> Segments {
        Segments {
            strip_leading,
            pending: String::new(),
            emitted: false,
            new_segment: false,
        }
    }

    /// The part of `s` that can be emitted now, if any.
    fn push(&mut self, s: &str) -> Option<String> {
        let s = if self.strip_leading {
            let trimmed = s.trim_start();
            if trimmed.is_empty() {
                return None;
            }
            self.strip_leading = false;
            trimmed
        } else {
            s
        };
        let content_end = s.trim_end().len();
        if content_end == 0 {
            self.pending.push_str(s);
            return None;
        }
        let mut out = String::with_capacity(self.pending.len() + s.len() + 2);
        if self.new_segment {
            if self.emitted {
                out.push_str("\n\n");
            }
            self.new_segment = false;
        }
        out.push_str(&self.pending);
        self.pending.clear();
        out.push_str(&s[..content_end]);
        self.pending.push_str(&s[content_end..]);
        self.emitted = true;
        Some(out)
    }

    /// A tag boundary: held-back whitespace is dropped, and what follows
    /// starts a new segment without leading whitespace.
    fn cut(&mut self) {
        self.pending.clear();
        self.strip_leading = true;
        self.new_segment = true;
    }

    /// The end of the response: held-back whitespace is released.
    fn flush(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.pending))
        }
    }
}

/// The earliest of `tags` in `s`, with its position.
fn find_first<'t>(s: &str, tags: &[&'t str]) -> Option<(usize, &'t str)> {
    tags.iter()
        .filter_map(|tag| s.find(tag).map(|pos| (pos, *tag)))
        .min_by_key(|(pos, _)| *pos)
}

/// How many bytes at the end of `s` could be the start of one of `tags`.
/// Tags start with `<` and hold no other `<`, so only the last `<` matters.
fn partial_tag(s: &str, tags: &[&str]) -> usize {
    match s.rfind('<') {
        Some(pos) => {
            let tail = &s[pos..];
            if tags
                .iter()
                .any(|tag| tag.len() > tail.len() && tag.starts_with(tail))
            {
                tail.len()
            } else {
                0
            }
        }
        None => 0,
    }
}

/// `{"name": …, "arguments": {…}}`; `arguments` may also be a JSON string
/// holding the object, or be called `parameters`, as Qwen2.5 sometimes
/// writes. The error says what is wrong.
fn parse_tool_call(body: &str) -> Result<ToolCall, String> {
    let value: Value = serde_json::from_str(body.trim())
        .map_err(|e| format!("tool call is not valid JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "tool call is not a JSON object".to_owned())?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "tool call has no \"name\" string".to_owned())?;
    let arguments = match obj.get("arguments").or_else(|| obj.get("parameters")) {
        None | Some(Value::Null) => json!({}),
        Some(args @ Value::Object(_)) => args.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(args @ Value::Object(_)) => args,
            _ => return Err("tool call \"arguments\" is a string without a JSON object".to_owned()),
        },
        Some(_) => return Err("tool call \"arguments\" is not a JSON object".to_owned()),
    };
    Ok(ToolCall {
        name: name.to_owned(),
        arguments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_tags_are_recognised() {
        let tags = [THINK_OPEN, CALL_OPEN];
        assert_eq!(partial_tag("abc<", &tags), 1);
        assert_eq!(partial_tag("abc<tool_ca", &tags), 8);
        assert_eq!(partial_tag("abc<thin", &tags), 5);
        assert_eq!(partial_tag("abc<thing", &tags), 0);
        assert_eq!(partial_tag("a<think>", &tags), 0);
        assert_eq!(partial_tag("abc", &tags), 0);
        assert_eq!(partial_tag("x</thi", &[THINK_CLOSE]), 5);
        assert_eq!(
            find_first("a<tool_call>b<think>", &tags),
            Some((1, CALL_OPEN))
        );
    }

    #[test]
    fn tool_call_bodies() {
        assert_eq!(
            parse_tool_call("\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n"),
            Ok(ToolCall {
                name: "f".into(),
                arguments: json!({"a": 1})
            })
        );
        assert_eq!(
            parse_tool_call(r#"{"name": "f", "arguments": "{\"a\": 1}"}"#).map(|c| c.arguments),
            Ok(json!({"a": 1}))
        );
        assert_eq!(
            parse_tool_call(r#"{"name": "f", "parameters": {"b": 2}}"#).map(|c| c.arguments),
            Ok(json!({"b": 2}))
        );
        assert_eq!(
            parse_tool_call(r#"{"name": "f"}"#).map(|c| c.arguments),
            Ok(json!({}))
        );
        for bad in [
            "{\"name\": \"f\", ",
            "[1]",
            "{\"arguments\": {}}",
            "{\"name\": \"\"}",
            "{\"name\": \"f\", \"arguments\": [1]}",
            "{\"name\": \"f\", \"arguments\": \"nope\"}",
        ] {
            assert!(parse_tool_call(bad).is_err(), "{bad}");
        }
    }
}
