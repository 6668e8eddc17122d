//! Server-Sent Events framing: an incremental decoder for upstream bytes and an encoder for client bytes.
//!
//! Upstream bodies arrive in arbitrary network chunks, so the decoder keeps
//! the unfinished line as raw bytes and only turns complete lines into text:
//! a chunk boundary inside a multi-byte UTF-8 character or between the `\r`
//! and `\n` of a line ending is therefore harmless. Field parsing follows the
//! WHATWG event-stream rules (comments, `field:value` with an optional single
//! space, multi-line `data`, events only dispatched when they carry data).

use bytes::Bytes;

/// One dispatched event: its `event:` name, if any, and its `data:` lines
/// joined with `\n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// An event with the given name and data (handy in tests and fakes).
    pub fn new(event: Option<&str>, data: impl Into<String>) -> Self {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.into(),
        }
    }
}

/// Incremental SSE parser: feed it chunks as they arrive.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the current line seen so far (no terminator yet).
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a `\n` starting the next chunk
    /// belongs to that same line ending.
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consume one chunk and return the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.skip_lf && !rest.is_empty() {
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
            self.skip_lf = false;
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let terminator = rest[pos];
            if self.line.is_empty() {
                self.process_line(&rest[..pos], &mut out);
            } else {
                self.line.extend_from_slice(&rest[..pos]);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, &mut out);
                // Reuse the allocation for the next split line.
                self.line = line;
                self.line.clear();
            }
            rest = &rest[pos + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
        }
        self.line.extend_from_slice(rest);
        out
    }

    /// The stream has ended: dispatch what is left. Servers often close the
    /// connection without the final blank line, and dropping that last event
    /// (as a browser would) would lose e.g. a trailing `[DONE]`.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut out);
        }
        self.skip_lf = false;
        self.dispatch(&mut out);
        out.pop()
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment, e.g. ": ping" keep-alives
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => {
                self.event =
                    (!value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned());
            }
            // `id` and `retry` only matter to reconnecting browsers.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

/// Encode one event: `event: <name>\n` (when given), one `data: ` line per
/// line of `data`, then the blank line that dispatches it.
pub fn encode_sse(event: Option<&str>, data: &str) -> Bytes {
    let mut buf = String::with_capacity(data.len() + event.map_or(0, str::len) + 16);
    if let Some(name) = event {
        buf.push_str("event: ");
        buf.push_str(name);
        buf.push('\n');
    }
    // Any raw line break inside the data would end the field early, so each
    // line becomes its own `data:` field (the decoder rejoins them with \n).
    for line in data.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        for piece in line.split('\r') {
            buf.push_str("data: ");
            buf.push_str(piece);
            buf.push('\n');
        }
    }
    buf.push('\n');
    Bytes::from(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out: Vec<SseEvent> = chunks.iter().flat_map(|c| d.push(c)).collect();
        out.extend(d.finish());
        out
    }

    #[test]
    fn parses_named_events_comments_and_multiline_data() {
        let raw = b": ping\n\nevent: message_start\ndata: {\"a\":1}\n\ndata:x\ndata: y\n\nevent:e\ndata\n\n";
        let got = decode_all(&[raw]);
        assert_eq!(
            got,
            vec![
                SseEvent::new(Some("message_start"), "{\"a\":1}"),
                SseEvent::new(None, "x\ny"),
                SseEvent::new(Some("e"), ""),
            ]
        );
    }

    #[test]
    fn all_line_endings() {
        for sep in ["\n", "\r\n", "\r"] {
            let raw = format!("event: a{sep}data: 1{sep}{sep}data: 2{sep}{sep}");
            let got = decode_all(&[raw.as_bytes()]);
            assert_eq!(
                got,
                vec![SseEvent::new(Some("a"), "1"), SseEvent::new(None, "2")],
                "separator {sep:?}"
            );
        }
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        // A CRLF stream with multi-byte characters (é is 2 bytes, 🦀 is 4).
        let raw = "event: content_block_delta\r\ndata: {\"text\":\"héllo 🦀\"}\r\n\r\n: keepalive\r\ndata: [DONE]\r\n\r\n";
        let whole = decode_all(&[raw.as_bytes()]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].data, "{\"text\":\"héllo 🦀\"}");
        let bytes = raw.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let got = decode_all(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
        // And one byte at a time.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_all(&singles), whole);
    }

    #[test]
    fn cr_at_chunk_end_then_lf_is_one_line_ending() {
        let got = decode_all(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![SseEvent::new(None, "a\nb")]);
    }

    #[test]
    fn finish_flushes_an_unterminated_event() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: [DONE]").is_empty());
        assert_eq!(d.finish(), Some(SseEvent::new(None, "[DONE]")));
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert!(decode_all(&[b"event: ping\n\n"]).is_empty());
    }

    #[test]
    fn encode_round_trips_through_the_decoder() {
        let b = encode_sse(Some("message_stop"), "{\"type\":\"message_stop\"}");
        assert_eq!(
            &b[..],
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        assert_eq!(&encode_sse(None, "[DONE]")[..], b"data: [DONE]\n\n");
        let multi = encode_sse(None, "a\nb\r\nc\rd");
        assert_eq!(
            decode_all(&[&multi]),
            vec![SseEvent::new(None, "a\nb\nc\nd")]
        );
    }
}
