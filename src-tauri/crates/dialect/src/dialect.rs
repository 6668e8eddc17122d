//! The two wire dialects the proxy speaks: OpenAI Chat Completions and Anthropic Messages.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which API a body or stream is written in.
///
/// Serialised (config files, the store, the UI) as `"openai"` / `"anthropic"`,
/// the same strings [`fmt::Display`] and [`FromStr`] use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
}

impl Dialect {
    /// The lowercase name used on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a dialect name that is neither `openai` nor `anthropic`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dialect \"{0}\" (expected \"openai\" or \"anthropic\")")]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openai" => Ok(Dialect::OpenAi),
            "anthropic" => Ok(Dialect::Anthropic),
            other => Err(UnknownDialect(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_serde_and_parse_agree() {
        for (d, name) in [
            (Dialect::OpenAi, "openai"),
            (Dialect::Anthropic, "anthropic"),
        ] {
            assert_eq!(d.to_string(), name);
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<Dialect>(&format!("\"{name}\"")).unwrap(),
                d
            );
            assert_eq!(name.parse::<Dialect>().unwrap(), d);
        }
        assert!("OpenAI".parse::<Dialect>().is_err());
    }
}
