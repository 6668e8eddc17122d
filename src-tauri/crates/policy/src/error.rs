//! `PolicyError`: why a model folder could not be loaded, a conversation
//! rendered, or text tokenized.

use std::path::PathBuf;

use metaclaw_dialect::TranslateError;

/// Loading, rendering and tokenizing failures. Each names what failed in
/// words a user can act on (the file, the template's own message, the
/// request field).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file of the model folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configuration file of the model folder is not what Hugging Face
    /// writes (bad JSON, a field of the wrong type).
    #[error("{path}: {detail}")]
    Config { path: PathBuf, detail: String },
    /// The folder has no chat template in any of the places one is kept.
    #[error("no chat template in {0} (looked at chat_template.jinja, tokenizer_config.json and chat_template.json)")]
    NoChatTemplate(PathBuf),
    /// A template named by the caller does not exist.
    #[error("no chat template named {name:?} (have: {available})")]
    UnknownTemplate { name: String, available: String },
    /// The chat template does not compile, or failed while rendering.
    #[error("chat template: {0}")]
    Template(String),
    /// The chat template called `raise_exception(message)`: the conversation
    /// breaks a rule of the model's format (roles not alternating, say).
    #[error("the model's chat template rejected the conversation: {0}")]
    Rejected(String),
    /// The request cannot be turned into a conversation for the template.
    #[error("{0}")]
    Conversation(#[from] TranslateError),
    /// `tokenizer.json` does not load, or encoding/decoding failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

impl PolicyError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> PolicyError {
        PolicyError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, detail: impl Into<String>) -> PolicyError {
        PolicyError::Config {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn tokenizer(err: impl std::fmt::Display) -> PolicyError {
        PolicyError::Tokenizer(err.to_string())
    }
}
