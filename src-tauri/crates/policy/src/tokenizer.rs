//! The base model's tokenizer (`tokenizer.json`, loaded with the Hugging
//! Face `tokenizers` crate), used the way `apply_chat_template` uses it.
//!
//! A rendered chat prompt already holds every special token it needs (the
//! template prints `bos_token`, `<|im_start|>`, …), so prompts are encoded
//! without the tokenizer's post-processor adding them a second time, and
//! any truncation or padding saved in `tokenizer.json` is switched off: a
//! prompt must never be cut silently.

use std::path::Path;

use tokenizers::{
    DecodeStream, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper,
    PreTokenizerWrapper, Tokenizer,
};

use crate::PolicyError;

/// A loaded `tokenizer.json`.
#[derive(Debug, Clone)]
pub struct PolicyTokenizer {
    inner: Tokenizer,
}

impl PolicyTokenizer {
    /// Loads `tokenizer.json` from `path`.
    pub fn from_file(path: &Path) -> Result<PolicyTokenizer, PolicyError> {
        let bytes = std::fs::read(path).map_err(|e| PolicyError::io(path, e))?;
        let inner = Tokenizer::from_bytes(bytes)
            .map_err(|e| PolicyError::config(path, format!("not a usable tokenizer: {e}")))?;
        PolicyTokenizer::from_tokenizer(inner)
    }

    /// Wraps a tokenizer built in code.
    pub fn from_tokenizer(mut inner: Tokenizer) -> Result<PolicyTokenizer, PolicyError> {
        inner
            .with_truncation(None)
            .map_err(PolicyError::tokenizer)?;
        inner.with_padding(None);
        Ok(PolicyTokenizer { inner })
    }

    /// The token ids of a rendered prompt (or any text), special tokens
    /// matched where they appear in the text and none added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, PolicyError> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(PolicyError::tokenizer)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`. With `skip_special_tokens`, tokens marked special
    /// (`<|im_end|>`) are left out; added tokens that are not special
    /// (Qwen's `<tool_call>`, `<think>`) are always kept.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, PolicyError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(PolicyError::tokenizer)
    }

    /// A decoder for tokens arriving one at a time, which holds back the
    /// bytes of a character split across tokens.
    pub fn decode_stream(&self, skip_special_tokens: bool) -> TokenStreamDecoder<'_> {
        TokenStreamDecoder {
            inner: self.inner.decode_stream(skip_special_tokens),
        }
    }

    /// The id of a token string (added tokens included).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

type InnerDecodeStream<'a> = DecodeStream<
    'a,
    ModelWrapper,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// Incremental detokenization of a sampled response.
pub struct TokenStreamDecoder<'a> {
    inner: InnerDecodeStream<'a>,
}

impl std::fmt::Debug for TokenStreamDecoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStreamDecoder").finish_non_exhaustive()
    }
}

impl TokenStreamDecoder<'_> {
    /// The new text `id` completes, if any (`None` while a character is
    /// still incomplete).
    pub fn step(&mut self, id: u32) -> Result<Option<String>, PolicyError> {
        self.inner.step(id).map_err(PolicyError::tokenizer)
    }
}
