//! API keys: a type that never prints itself, and the on-disk fallback store.
//!
//! Keys never go into `config.toml`. Until the desktop shell brings the OS
//! keychain, they live in `secrets.toml`, readable only by the user (0600).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret string. `Debug` and `Display` show only a masked form.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The real value, for the one place that must send it (an HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Enough to recognise which key is set, never enough to use it:
    /// `sk-p…9f3a` for long keys, `set (N chars)` for short ones.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        match chars.len() {
            0 => "(not set)".to_string(),
            n if n < 16 => format!("set ({n} chars)"),
            n => {
                let head: String = chars[..4].iter().collect();
                let tail: String = chars[n - 4..].iter().collect();
                format!("{head}…{tail}")
            }
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Secrets by config key (`upstream.api_key`), in a file only the user can read.
#[derive(Debug)]
pub struct SecretFile {
    path: PathBuf,
    values: BTreeMap<String, String>,
}

impl SecretFile {
    pub fn load(path: &Path) -> Result<SecretFile, SecretError> {
        let values = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| SecretError::Parse {
                path: path.to_path_buf(),
                reason: e.message().to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(SecretError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(SecretFile {
            path: path.to_path_buf(),
            values,
        })
    }

    pub fn get(&self, key: &str) -> Secret {
        Secret::new(self.values.get(key).cloned().unwrap_or_default())
    }

    /// Sets (or with an empty value, removes) a secret and saves the file.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SecretError> {
        if value.is_empty() {
            self.values.remove(key);
        } else {
            self.values.insert(key.to_string(), value.to_string());
        }
        let text = toml::to_string(&self.values).map_err(|e| SecretError::Parse {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        crate::fsutil::write_private(&self.path, text.as_bytes()).map_err(|source| {
            SecretError::Io {
                path: self.path.clone(),
                source,
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or write the secrets file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secrets file {path} is not valid TOML: {reason}")]
    Parse { path: PathBuf, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_never_reveal_the_middle() {
        let key = Secret::new("sk-test-0123456789abcdef");
        assert_eq!(key.masked(), "sk-t…cdef");
        assert!(!format!("{key:?} {key}").contains("0123456789"));
        assert_eq!(Secret::new("short").masked(), "set (5 chars)");
        assert_eq!(Secret::default().masked(), "(not set)");
    }

    #[test]
    fn secrets_round_trip_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        let mut file = SecretFile::load(&path).unwrap();
        file.set("upstream.api_key", "sk-abc").unwrap();
        assert_eq!(
            SecretFile::load(&path)
                .unwrap()
                .get("upstream.api_key")
                .expose(),
            "sk-abc"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        file.set("upstream.api_key", "").unwrap();
        assert!(SecretFile::load(&path)
            .unwrap()
            .get("upstream.api_key")
            .is_empty());
    }
}
