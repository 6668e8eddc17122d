//! A model folder's chat format end to end: a client request becomes prompt
//! text and token ids for the sampler; sampled token ids become an
//! assistant message, whole or as a stream of events.

use std::path::Path;

use metaclaw_dialect::Dialect;
use serde_json::Value;

use crate::parse::{AssistantMessage, ResponseEvent, ResponseParser};
use crate::{
    ChatInput, ChatTemplate, PolicyError, PolicyTokenizer, TokenStreamDecoder, TokenizerConfig,
};

/// A prompt ready for the sampler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The rendered chat template, generation prompt included.
    pub text: String,
    pub token_ids: Vec<u32>,
    /// The template already opened a reasoning block (`…<think>\n`), so
    /// the response starts inside it.
    pub opens_reasoning: bool,
}

/// Whether a rendered prompt ends inside an open `<think>` block, as the
/// generation prompt of Qwen3 thinking models (and DeepSeek-R1) does.
pub fn prompt_opens_reasoning(prompt: &str) -> bool {
    prompt.trim_end().ends_with("<think>")
}

/// The tokenizer and chat template of one base model.
#[derive(Debug)]
pub struct ChatCodec {
    tokenizer: PolicyTokenizer,
    template: ChatTemplate,
    stop_token_ids: Vec<u32>,
}

impl ChatCodec {
    /// Loads `tokenizer.json`, `tokenizer_config.json` and the optional
    /// template and generation files from a model folder. The stop tokens
    /// are `generation_config.json`'s `eos_token_id`s and the `eos_token`.
    pub fn load(dir: &Path) -> Result<ChatCodec, PolicyError> {
        let config = TokenizerConfig::load(dir)?;
        let tokenizer = PolicyTokenizer::from_file(&dir.join("tokenizer.json"))?;
        let mut stop_token_ids = config.generation_eos_ids.clone();
        if let Some(id) = config
            .special_tokens
            .eos
            .as_deref()
            .and_then(|eos| tokenizer.token_id(eos))
        {
            if !stop_token_ids.contains(&id) {
                stop_token_ids.push(id);
            }
        }
        let template = ChatTemplate::with_templates(config.templates, config.special_tokens)?;
        Ok(ChatCodec::new(tokenizer, template, stop_token_ids))
    }

    pub fn new(
        tokenizer: PolicyTokenizer,
        template: ChatTemplate,
        stop_token_ids: Vec<u32>,
    ) -> ChatCodec {
        ChatCodec {
            tokenizer,
            template,
            stop_token_ids,
        }
    }

    pub fn tokenizer(&self) -> &PolicyTokenizer {
        &self.tokenizer
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The token ids that end a response (the sampler's stop tokens).
    pub fn stop_token_ids(&self) -> &[u32] {
        &self.stop_token_ids
    }

    /// The prompt for answering a client's request in `dialect`.
    pub fn prompt(&self, dialect: Dialect, request: &Value) -> Result<Prompt, PolicyError> {
        self.prompt_for(&ChatInput::from_request(dialect, request)?)
    }

    /// The prompt for a conversation: rendered with the generation prompt,
    /// then tokenized without adding special tokens again.
    pub fn prompt_for(&self, input: &ChatInput) -> Result<Prompt, PolicyError> {
        let text = self.template.render(input, true)?;
        let token_ids = self.tokenizer.encode(&text)?;
        Ok(Prompt {
            opens_reasoning: prompt_opens_reasoning(&text),
            text,
            token_ids,
        })
    }

    /// The sampled tokens up to (not including) the first stop token.
    pub fn strip_stop<'a>(&self, response_ids: &'a [u32]) -> &'a [u32] {
        let end = response_ids
            .iter()
            .position(|id| self.stop_token_ids.contains(id))
            .unwrap_or(response_ids.len());
        &response_ids[..end]
    }

    /// A whole sampled response as an assistant message.
    pub fn parse_response(
        &self,
        prompt: &Prompt,
        response_ids: &[u32],
    ) -> Result<AssistantMessage, PolicyError> {
        // Special tokens are kept: a model may mark its tool-call tags as
        // special, and those must reach the parser. The stop token is cut.
        let text = self
            .tokenizer
            .decode(self.strip_stop(response_ids), false)?;
        Ok(crate::parse_response(&text, prompt.opens_reasoning))
    }

    /// Parses a response token by token as the sampler streams it.
    pub fn response_stream(&self, prompt: &Prompt) -> ResponseStream<'_> {
        ResponseStream {
            decoder: self.tokenizer.decode_stream(false),
            parser: ResponseParser::new(prompt.opens_reasoning),
            message: AssistantMessage::default(),
            stop_token_ids: &self.stop_token_ids,
            stopped: false,
        }
    }
}

/// Token ids in, response events out, and the whole message at the end.
#[derive(Debug)]
pub struct ResponseStream<'a> {
    decoder: TokenStreamDecoder<'a>,
    parser: ResponseParser,
    message: AssistantMessage,
    stop_token_ids: &'a [u32],
    stopped: bool,
}

impl ResponseStream<'_> {
    /// The events the next sampled token completes. A stop token ends the
    /// response; anything after it is ignored.
    pub fn push_token(&mut self, id: u32) -> Result<Vec<ResponseEvent>, PolicyError> {
        if self.stopped || self.stop_token_ids.contains(&id) {
            self.stopped = true;
            return Ok(Vec::new());
        }
        let events = match self.decoder.step(id)? {
            Some(text) => self.parser.push(&text),
            None => Vec::new(),
        };
        for event in &events {
            self.message.apply(event);
        }
        Ok(events)
    }

    /// The last events and the complete message.
    pub fn finish(mut self) -> (Vec<ResponseEvent>, AssistantMessage) {
        let events = self.parser.finish();
        for event in &events {
            self.message.apply(event);
        }
        self.message.warnings = self.parser.warnings().to_vec();
        (events, self.message)
    }
}
