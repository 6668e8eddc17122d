//! `tinker://` paths of saved weights: checkpoints to resume training from
//! and sampler weights to sample with.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::TinkerError;

const SCHEME: &str = "tinker://";

fn check(kind: &str, value: &str) -> Result<(), TinkerError> {
    let rest = value.strip_prefix(SCHEME).ok_or_else(|| {
        TinkerError::InvalidInput(format!(
            "a {kind} path must start with {SCHEME} (got {value:?})"
        ))
    })?;
    if rest.is_empty() || rest.chars().any(char::is_whitespace) {
        return Err(TinkerError::InvalidInput(format!(
            "{value:?} is not a valid {kind} path"
        )));
    }
    Ok(())
}

/// A name for saved weights (`step_0005`, `final`): letters, digits, `_`,
/// `-` and `.`, as it becomes the last part of a `tinker://` path.
pub(crate) fn check_name(name: &str) -> Result<(), TinkerError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(TinkerError::InvalidInput(format!(
            "{name:?} is not a valid weights name (use letters, digits, '_', '-' and '.')"
        )))
    }
}

macro_rules! tinker_path {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks that `value` is a `tinker://` path.
            pub fn new(value: impl Into<String>) -> Result<$name, TinkerError> {
                let value = value.into();
                check($kind, &value)?;
                Ok($name(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = TinkerError;
            fn try_from(value: String) -> Result<$name, TinkerError> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(path: $name) -> String {
                path.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = TinkerError;
            fn from_str(s: &str) -> Result<$name, TinkerError> {
                $name::new(s)
            }
        }
    };
}

tinker_path!(
    /// Weights plus optimizer state saved with `save_weights`, e.g.
    /// `tinker://<model_id>/weights/step_0005`; resume with `load_weights`.
    CheckpointPath,
    "checkpoint"
);

tinker_path!(
    /// Weights saved for sampling with `save_weights_for_sampler`, e.g.
    /// `tinker://<model_id>/sampler_weights/final`.
    SamplerPath,
    "sampler weights"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_need_the_scheme() {
        let p = CheckpointPath::new("tinker://s:train:0/weights/step_0005").unwrap();
        assert_eq!(p.as_str(), "tinker://s:train:0/weights/step_0005");
        assert!(CheckpointPath::new("/tmp/x").is_err());
        assert!(SamplerPath::new("tinker://").is_err());
        assert!(SamplerPath::new("tinker://a b").is_err());
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<CheckpointPath>(&json).unwrap(), p);
        assert!(serde_json::from_str::<CheckpointPath>("\"nope\"").is_err());
    }

    #[test]
    fn names_are_path_safe() {
        assert!(check_name("step_0005").is_ok());
        assert!(check_name("final.v2-b").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
    }
}
