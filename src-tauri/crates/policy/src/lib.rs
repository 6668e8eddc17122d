//! Inference through the policy being trained, and the RL datums that train it.
//!
//! In `rl` and `auto` modes the proxy answers with the LoRA policy on a
//! Tinker-compatible service. That service speaks tokens, so everything
//! between the client's JSON and the sampler's token ids lives here, with
//! no IO beyond reading the model folder:
//!
//! * [`ChatInput`]: an OpenAI or Anthropic request as the `messages` and
//!   `tools` a Hugging Face chat template reads.
//! * [`ChatTemplate`]: the template rendered with MiniJinja the way
//!   `transformers` renders it with Jinja2.
//! * [`PolicyTokenizer`]: `tokenizer.json` through the `tokenizers` crate,
//!   and [`SegmentCache`]: a long prompt's stretches tokenized once.
//! * [`ChatCodec`]: a model folder end to end (request → [`Prompt`],
//!   sampled ids → [`AssistantMessage`] or a [`ResponseStream`]).
//! * [`ResponseParser`] / [`parse_response`]: Qwen3 `<think>` and
//!   `<tool_call>` markup, incrementally.
//! * [`build_datums`]: scored turns → `metaclaw_tinker::Datum`s with
//!   group-normalised advantages, and with on-policy distillation a
//!   per-token reverse-KL penalty from a teacher's log-probs
//!   ([`reverse_kl_advantages`]).

// Tests may unwrap and panic; the library itself may not (workspace lints),
// which the non-test build of this crate still enforces.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod codec;
mod config;
mod conversation;
mod datum;
mod distill;
mod error;
mod parse;
mod pyjson;
mod segments;
mod template;
mod tokenizer;

pub use codec::{prompt_opens_reasoning, ChatCodec, Prompt, ResponseStream};
pub use config::{
    NamedTemplate, SpecialTokens, TokenizerConfig, DEFAULT_TEMPLATE, TOOL_USE_TEMPLATE,
};
pub use conversation::ChatInput;
pub use datum::{
    build_datums, group_advantages, AdvantageConfig, BatchError, DatumBatch, ScoredTurn,
};
pub use distill::{reverse_kl_advantages, Penalised};
pub use error::PolicyError;
pub use parse::{
    parse_response, AssistantMessage, ParseWarning, ResponseEvent, ResponseParser, ToolCall,
};
pub use segments::SegmentCache;
pub use template::ChatTemplate;
pub use tokenizer::{PolicyTokenizer, TokenStreamDecoder};

/// The `tokenizers` crate this one is built with, for building a
/// [`PolicyTokenizer`] in code ([`PolicyTokenizer::from_tokenizer`]) with the
/// same version.
pub use tokenizers;
