//! Pure, IO-free translation between the OpenAI Chat Completions and Anthropic Messages dialects.
//!
//! The proxy speaks whichever dialect the client speaks and forwards to an
//! upstream that may speak the other one. Everything here works on
//! `serde_json::Value` (so fields this crate does not know survive
//! same-dialect pass-through) and on Server-Sent Events, and never touches
//! the network or the disk:
//!
//! * [`SseDecoder`] / [`encode_sse`]: the event-stream framing.
//! * [`validate_request`]: the shape checks done before anything is forwarded.
//! * [`request_anthropic_to_openai`] / [`request_openai_to_anthropic`] and the
//!   two `response_*` functions: whole bodies.
//! * [`OpenAiToAnthropicStream`] / [`AnthropicToOpenAiStream`]: live streams,
//!   event by event.
//! * [`OpenAiStreamAssembler`] / [`AnthropicStreamAssembler`]: a finished
//!   stream folded back into the equivalent non-streaming response, for the
//!   turn recorder.
//! * [`error_body`] / [`error_message`]: error bodies in each API's format.
//! * [`latest_instruction`], [`inject_system_text`], [`session_hint`]: what
//!   the learning side needs to know about a conversation.

// Tests may unwrap and panic; the library itself may not (workspace lints),
// which the non-test build of this crate still enforces.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod assemble_anthropic;
mod assemble_openai;
mod content;
mod conversation;
mod dialect;
mod error;
mod error_body;
mod ids;
mod openclaw;
mod request_to_anthropic;
mod request_to_openai;
mod response;
mod session;
mod sse;
mod stop_reason;
mod stream_anthropic_to_openai;
mod stream_openai_to_anthropic;
mod usage;
mod validate;

pub use assemble_anthropic::AnthropicStreamAssembler;
pub use assemble_openai::OpenAiStreamAssembler;
pub use conversation::{inject_system_text, latest_instruction};
pub use dialect::{Dialect, UnknownDialect};
pub use error::TranslateError;
pub use error_body::{error_body, error_message};
pub use request_to_anthropic::request_openai_to_anthropic;
pub use request_to_openai::request_anthropic_to_openai;
pub use response::{response_anthropic_to_openai, response_openai_to_anthropic};
pub use session::{session_hint, SessionHint};
pub use sse::{encode_sse, SseDecoder, SseEvent};
pub use stream_anthropic_to_openai::AnthropicToOpenAiStream;
pub use stream_openai_to_anthropic::OpenAiToAnthropicStream;
pub use usage::{usage, Usage};
pub use validate::validate_request;
