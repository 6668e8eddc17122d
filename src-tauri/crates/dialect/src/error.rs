//! `TranslateError`: why a body or stream event could not be validated or translated.
//!
//! Every variant carries the JSON path of the offending value
//! (`messages[2].content[0]`, `tools[1].function`, `body` for the root), so
//! the proxy can hand the message to the client verbatim and the client's
//! developer can find the problem without guessing.

/// A body or event that does not have the shape its dialect requires, or
/// uses a feature the other dialect cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// A required field is absent (or `null`).
    #[error("{path}: missing required field")]
    Missing { path: String },
    /// A value has the wrong JSON type; `expected` reads like "a string".
    #[error("{path}: expected {expected}")]
    WrongType {
        path: String,
        expected: &'static str,
    },
    /// A value has the right type but is not allowed, e.g. an unknown role.
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
    /// A content block, content part or tool kind the other dialect has no
    /// equivalent for; `what` reads like "content block".
    #[error("{path}: unsupported {what} type \"{kind}\"")]
    Unsupported {
        path: String,
        what: &'static str,
        kind: String,
    },
    /// A string that must hold JSON (tool-call arguments, a stream event's
    /// data) does not parse.
    #[error("{path}: invalid JSON: {detail}")]
    InvalidJson { path: String, detail: String },
}

impl TranslateError {
    /// The JSON path the error is about (`body` for the whole body).
    pub fn path(&self) -> &str {
        match self {
            TranslateError::Missing { path }
            | TranslateError::WrongType { path, .. }
            | TranslateError::Invalid { path, .. }
            | TranslateError::Unsupported { path, .. }
            | TranslateError::InvalidJson { path, .. } => path,
        }
    }

    pub(crate) fn missing(path: impl Into<String>) -> Self {
        TranslateError::Missing { path: path.into() }
    }

    pub(crate) fn wrong_type(path: impl Into<String>, expected: &'static str) -> Self {
        TranslateError::WrongType {
            path: path.into(),
            expected,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, problem: impl Into<String>) -> Self {
        TranslateError::Invalid {
            path: path.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn unsupported(
        path: impl Into<String>,
        what: &'static str,
        kind: impl Into<String>,
    ) -> Self {
        TranslateError::Unsupported {
            path: path.into(),
            what,
            kind: kind.into(),
        }
    }

    pub(crate) fn invalid_json(path: impl Into<String>, err: &serde_json::Error) -> Self {
        TranslateError::InvalidJson {
            path: path.into(),
            detail: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_and_the_problem() {
        let e = TranslateError::unsupported("messages[2].content[0]", "content block", "document");
        assert_eq!(
            e.to_string(),
            "messages[2].content[0]: unsupported content block type \"document\""
        );
        assert_eq!(e.path(), "messages[2].content[0]");
        assert_eq!(
            TranslateError::missing("max_tokens").to_string(),
            "max_tokens: missing required field"
        );
        assert_eq!(
            TranslateError::wrong_type("stream", "a boolean").to_string(),
            "stream: expected a boolean"
        );
    }
}
