//! Shared helpers for the integration tests: fixtures and SSE plumbing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(dead_code)]

use bytes::Bytes;
use metaclaw_dialect::{SseDecoder, SseEvent};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Decode `bytes` fed to the decoder in pieces cut at `cuts`.
pub fn decode_split(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    let mut prev = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        out.extend(d.push(&bytes[prev..cut]));
        prev = cut;
    }
    out.extend(d.finish());
    out
}

pub fn decode(bytes: &[u8]) -> Vec<SseEvent> {
    decode_split(bytes, &[])
}

pub fn concat(parts: &[Bytes]) -> Vec<u8> {
    parts.iter().flat_map(|b| b.iter().copied()).collect()
}
