//! A model folder's chat format end to end: a client request becomes prompt
//! text and token ids for the sampler; sampled token ids become an
//! assistant message, whole or as a stream of events.

use std::path::Path;

use metaclaw_dialect::Dialect;
use serde_json::Value;

use crate::parse::{AssistantMessage, ResponseEvent, ResponseParser};
use crate::{
    ChatInput, ChatTemplate, PolicyError, PolicyTokenizer, SegmentCache, TokenStreamDecoder,
    TokenizerConfig,
};

/// Bytes of prompt stretches (text and ids) one generation of the segment
/// cache holds: a few long agent sessions' worth.
const SEGMENT_CACHE_BYTES: usize = 16 << 20;

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
    /// Ids of prompt stretches seen before; `None` for a tokenizer that
    /// cannot be encoded stretch by stretch.
    segments: Option<SegmentCache>,
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
        let segments = SegmentCache::new(&tokenizer, SEGMENT_CACHE_BYTES);
        ChatCodec {
            tokenizer,
            template,
            stop_token_ids,
            segments,
        }
    }

    pub fn tokenizer(&self) -> &PolicyTokenizer {
        &self.tokenizer
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The cache of prompt stretches, when this tokenizer allows one.
    pub fn segment_cache(&self) -> Option<&SegmentCache> {
        self.segments.as_ref()
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
    /// then tokenized without adding special tokens again (only the
    /// stretches the segment cache has not seen).
    pub fn prompt_for(&self, input: &ChatInput) -> Result<Prompt, PolicyError> {
        let text = self.template.render(input, true)?;
        let token_ids = match &self.segments {
            Some(cache) => cache.encode(&self.tokenizer, &text)?,
            None => self.tokenizer.encode(&text)?,
        };
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
            stop_strings: Vec::new(),
            held: String::new(),
            consumed: 0,
            stopped_after: None,
        }
    }

    /// The texts of the stop tokens (`<|im_end|>`), for a sampler told to
    /// stop at strings rather than token ids.
    pub fn stop_token_texts(&self) -> Vec<String> {
        self.stop_token_ids
            .iter()
            .filter_map(|&id| self.tokenizer.decode(&[id], false).ok())
            .filter(|text| !text.is_empty())
            .collect()
    }
}

/// Token ids in, response events out, and the whole message at the end.
///
/// The response ends at the first stop token, or at the first of the
/// client's stop strings (OpenAI `stop`, Anthropic `stop_sequences`), which
/// is not shown, as OpenAI and vLLM do it. Text that might be the start of
/// a stop string is held back until the next token settles it.
#[derive(Debug)]
pub struct ResponseStream<'a> {
    decoder: TokenStreamDecoder<'a>,
    parser: ResponseParser,
    message: AssistantMessage,
    stop_token_ids: &'a [u32],
    stop_strings: Vec<String>,
    /// Decoded text not yet given to the parser (a possible stop prefix).
    held: String,
    /// Tokens pushed so far.
    consumed: usize,
    /// Tokens up to and including the one that ended the response.
    stopped_after: Option<usize>,
}

impl ResponseStream<'_> {
    /// Also ends the response at the first of `stops` (empty strings are
    /// ignored).
    pub fn with_stop_strings(mut self, stops: &[String]) -> Self {
        self.stop_strings = stops.iter().filter(|s| !s.is_empty()).cloned().collect();
        self
    }

    /// The number of tokens up to and including the stop token or the
    /// token that completed a stop string; `None` while the response goes on.
    pub fn stopped_after(&self) -> Option<usize> {
        self.stopped_after
    }

    /// The events the next sampled token completes. A stop token or stop
    /// string ends the response; anything after it is ignored.
    pub fn push_token(&mut self, id: u32) -> Result<Vec<ResponseEvent>, PolicyError> {
        if self.stopped_after.is_some() {
            return Ok(Vec::new());
        }
        self.consumed += 1;
        if self.stop_token_ids.contains(&id) {
            self.stopped_after = Some(self.consumed);
            let held = std::mem::take(&mut self.held);
            return Ok(self.parse(&held));
        }
        if let Some(text) = self.decoder.step(id)? {
            self.held.push_str(&text);
        }
        let ready = match self.earliest_stop() {
            Some(at) => {
                self.stopped_after = Some(self.consumed);
                let mut held = std::mem::take(&mut self.held);
                held.truncate(at);
                held
            }
            None => {
                let keep = self.possible_stop_prefix();
                let rest = self.held.split_off(self.held.len() - keep);
                std::mem::replace(&mut self.held, rest)
            }
        };
        Ok(self.parse(&ready))
    }

    /// The last events and the complete message.
    pub fn finish(mut self) -> (Vec<ResponseEvent>, AssistantMessage) {
        let held = std::mem::take(&mut self.held);
        let mut events = self.parse(&held);
        let last = self.parser.finish();
        for event in &last {
            self.message.apply(event);
        }
        events.extend(last);
        self.message.warnings = self.parser.warnings().to_vec();
        (events, self.message)
    }

    fn parse(&mut self, text: &str) -> Vec<ResponseEvent> {
        if text.is_empty() {
            return Vec::new();
        }
        let events = self.parser.push(text);
        for event in &events {
            self.message.apply(event);
        }
        events
    }

    /// Where the first stop string starts in the held text.
    fn earliest_stop(&self) -> Option<usize> {
        self.stop_strings
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min()
    }

    /// The length of the longest end of the held text that begins a stop
    /// string (and so may become one with the next token).
    fn possible_stop_prefix(&self) -> usize {
        let held = self.held.as_str();
        let mut longest = 0;
        for stop in &self.stop_strings {
            for (at, _) in held.char_indices() {
                let tail = &held[at..];
                if tail.len() > longest && stop.starts_with(tail) {
                    longest = tail.len();
                    break;
                }
            }
        }
        longest
    }
}
