//! Streams an upstream's server-sent events to the client as they arrive —
//! byte for byte in the same dialect, translated event by event otherwise —
//! while a copy is assembled for the turn recorder.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use metaclaw_dialect::{
    encode_sse, error_body, usage, AnthropicStreamAssembler, AnthropicToOpenAiStream, Dialect,
    OpenAiStreamAssembler, OpenAiToAnthropicStream, SseDecoder, SseEvent, TranslateError,
};
use metaclaw_store::TurnStatus;

use super::recorder::{TurnOutcome, TurnRecorder};

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

enum Translation {
    None,
    OpenAiToAnthropic(OpenAiToAnthropicStream),
    AnthropicToOpenAi(AnthropicToOpenAiStream),
}

// One per stream: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Assembler {
    OpenAi(OpenAiStreamAssembler),
    Anthropic(AnthropicStreamAssembler),
}

impl Assembler {
    fn push(&mut self, event: &SseEvent) -> Result<(), TranslateError> {
        match self {
            Assembler::OpenAi(a) => a.push(event),
            Assembler::Anthropic(a) => a.push(event),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Assembler::OpenAi(a) => a.is_done(),
            Assembler::Anthropic(a) => a.is_done(),
        }
    }

    fn error(&self) -> Option<String> {
        match self {
            Assembler::OpenAi(a) => a.error().map(str::to_string),
            Assembler::Anthropic(a) => a.error().map(str::to_string),
        }
    }

    fn finish(self) -> serde_json::Value {
        match self {
            Assembler::OpenAi(a) => a.finish(),
            Assembler::Anthropic(a) => a.finish(),
        }
    }
}

pub struct StreamRelay {
    upstream: Option<ByteStream>,
    upstream_api: Dialect,
    client: Dialect,
    decoder: SseDecoder,
    translation: Translation,
    assembler: Option<Assembler>,
    recorder: TurnRecorder,
    chunk_timeout: Duration,
    started: Instant,
    ttfb_ms: Option<f64>,
    http_status: u16,
    /// Pass-through bytes of an event not yet complete: only whole, checked
    /// events reach the client, so a broken one can still be replaced by an
    /// error event instead of leaving the client half an event.
    partial: BytesMut,
    /// A recorded turn waits for its commit before the final bytes go out.
    commit_pending: bool,
    out: VecDeque<Bytes>,
}

impl StreamRelay {
    pub fn new(
        response: reqwest::Response,
        upstream_api: Dialect,
        client: Dialect,
        include_usage: bool,
        model: &str,
        recorder: TurnRecorder,
        chunk_timeout: Duration,
    ) -> StreamRelay {
        let started = recorder.started();
        let translation = match (upstream_api, client) {
            (Dialect::OpenAi, Dialect::Anthropic) => {
                Translation::OpenAiToAnthropic(OpenAiToAnthropicStream::new(model))
            }
            (Dialect::Anthropic, Dialect::OpenAi) => {
                Translation::AnthropicToOpenAi(AnthropicToOpenAiStream::new(include_usage))
            }
            _ => Translation::None,
        };
        let assembler = match upstream_api {
            Dialect::OpenAi => Assembler::OpenAi(OpenAiStreamAssembler::new()),
            Dialect::Anthropic => Assembler::Anthropic(AnthropicStreamAssembler::new()),
        };
        StreamRelay {
            http_status: response.status().as_u16(),
            upstream: Some(Box::pin(response.bytes_stream())),
            upstream_api,
            client,
            decoder: SseDecoder::new(),
            translation,
            assembler: Some(assembler),
            recorder,
            chunk_timeout,
            started,
            ttfb_ms: None,
            partial: BytesMut::new(),
            commit_pending: false,
            out: VecDeque::new(),
        }
    }

    /// The body stream handed to the HTTP server. Dropping it (the client
    /// went away) drops the upstream response, which cancels that request.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
        futures_util::stream::unfold(self, |mut relay| async move {
            relay.next_chunk().await.map(|chunk| (Ok(chunk), relay))
        })
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.commit_pending {
                self.commit_pending = false;
                self.recorder.state().wait_for_commit().await;
            }
            if let Some(chunk) = self.out.pop_front() {
                return Some(chunk);
            }
            let upstream = self.upstream.as_mut()?;
            match tokio::time::timeout(self.chunk_timeout, upstream.next()).await {
                Err(_) => {
                    let secs = self.chunk_timeout.as_secs_f64();
                    self.fail(format!("the upstream stream stalled: no data for {secs} s"));
                }
                Ok(None) => self.end_of_stream(),
                Ok(Some(Err(e))) => {
                    let reason = crate::upstream::error_chain(&e);
                    self.fail(format!(
                        "the upstream connection failed mid-stream: {reason}"
                    ));
                }
                Ok(Some(Ok(bytes))) => self.process(bytes),
            }
        }
    }

    fn process(&mut self, bytes: Bytes) {
        if self.ttfb_ms.is_none() {
            self.ttfb_ms = Some(self.started.elapsed().as_secs_f64() * 1000.0);
        }
        let events = self.decoder.push(&bytes);
        if matches!(self.translation, Translation::None) {
            self.partial.extend_from_slice(&bytes);
        }
        self.handle_events(&events);
    }

    fn handle_events(&mut self, events: &[SseEvent]) {
        for event in events {
            if let Some(Err(e)) = self.assembler.as_mut().map(|a| a.push(event)) {
                self.fail(format!("the upstream sent a malformed event: {e}"));
                return;
            }
            let translated = match &mut self.translation {
                Translation::None => Ok(Vec::new()),
                Translation::OpenAiToAnthropic(t) => t.push(event),
                Translation::AnthropicToOpenAi(t) => t.push(event),
            };
            match translated {
                Ok(chunks) => self.out.extend(chunks),
                Err(e) => {
                    self.fail(format!(
                        "the upstream sent an event that cannot be translated: {e}"
                    ));
                    return;
                }
            }
        }
        if matches!(self.translation, Translation::None) {
            if let Some(end) = last_event_end(&self.partial) {
                self.out.push_back(self.partial.split_to(end).freeze());
            }
        }
        // Record as soon as the upstream says the message is complete, and
        // let the final event wait for the commit: once the client has the
        // whole answer, the turn survives even a kill -9.
        if self.assembler.as_ref().is_some_and(Assembler::is_done) {
            self.record(None);
            self.commit_pending = true;
        }
    }

    fn end_of_stream(&mut self) {
        let tail: Vec<SseEvent> = self.decoder.finish().into_iter().collect();
        self.handle_events(&tail);
        let closing = match &mut self.translation {
            Translation::None => Vec::new(),
            Translation::OpenAiToAnthropic(t) => t.finish(),
            Translation::AnthropicToOpenAi(t) => t.finish(),
        };
        self.out.extend(closing);
        if !self.partial.is_empty() {
            // Whatever trailed the last complete event (a comment, spaces).
            self.out.push_back(self.partial.split().freeze());
        }
        self.upstream = None;
        self.record(Some(
            "the upstream stream ended before the message was complete".to_string(),
        ));
    }

    /// Ends the stream with an error event the client's SDK will raise.
    fn fail(&mut self, message: String) {
        tracing::warn!(error = %message, "stream failed");
        self.partial.clear();
        let body = error_body(self.client, 502, &message).to_string();
        let event = match self.client {
            Dialect::OpenAi => encode_sse(None, &body),
            Dialect::Anthropic => encode_sse(Some("error"), &body),
        };
        self.out.push_back(event);
        if self.client == Dialect::OpenAi && !matches!(self.translation, Translation::None) {
            self.out.push_back(encode_sse(None, "[DONE]"));
        }
        self.upstream = None;
        self.record(Some(message));
    }

    /// Stores the turn once: complete if the upstream finished the message
    /// cleanly, otherwise an upstream error carrying `incomplete_reason`.
    fn record(&mut self, incomplete_reason: Option<String>) {
        let Some(assembler) = self.assembler.take() else {
            return;
        };
        let done = assembler.is_done();
        let upstream_error = assembler.error();
        let response = assembler.finish();
        let (status, error) = match (upstream_error, done, incomplete_reason) {
            (Some(e), _, _) => (TurnStatus::UpstreamError, Some(e)),
            (None, true, _) => (TurnStatus::Complete, None),
            (None, false, reason) => (TurnStatus::UpstreamError, reason),
        };
        self.recorder.finish(TurnOutcome {
            status,
            http_status: Some(self.http_status),
            usage: usage(self.upstream_api, &response),
            response_json: Some(response.to_string()),
            ttfb_ms: self.ttfb_ms,
            error,
        });
    }
}

impl Drop for StreamRelay {
    /// The client went away mid-stream: keep what arrived, marked aborted.
    fn drop(&mut self) {
        if let Some(assembler) = self.assembler.take() {
            let response = assembler.finish();
            self.recorder.finish(TurnOutcome {
                status: TurnStatus::Aborted,
                http_status: Some(self.http_status),
                usage: usage(self.upstream_api, &response),
                response_json: Some(response.to_string()),
                ttfb_ms: self.ttfb_ms,
                error: Some("the client disconnected mid-stream".to_string()),
            });
        }
    }
}

/// The end of the last complete event in `buffer` (just after its blank
/// line), accepting the `\n`, `\r\n` and `\r` line endings SSE allows.
fn last_event_end(buffer: &[u8]) -> Option<usize> {
    let mut end = None;
    let mut i = 0;
    while i < buffer.len() {
        let line_end = match buffer[i] {
            b'\n' => Some(i + 1),
            b'\r' if buffer.get(i + 1) == Some(&b'\n') => Some(i + 2),
            b'\r' if i + 1 < buffer.len() => Some(i + 1),
            _ => None,
        };
        if let Some(next) = line_end {
            // A line terminator right at the start of a line is a blank line.
            let at_line_start = i == 0 || matches!(buffer[i - 1], b'\n' | b'\r');
            if at_line_start {
                end = Some(next);
            }
            i = next;
        } else {
            i += 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::last_event_end;

    #[test]
    fn finds_the_end_of_the_last_whole_event() {
        assert_eq!(last_event_end(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(last_event_end(b"data: a\r\n\r\ndata: b\r\n"), Some(11));
        assert_eq!(last_event_end(b"data: a\n"), None);
        assert_eq!(last_event_end(b"event: x\ndata: a\n\n: ping\n\n"), Some(26));
        assert_eq!(last_event_end(b""), None);
    }
}
