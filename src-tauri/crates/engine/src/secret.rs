//! API keys: a type that never prints itself, and where keys are kept.
//!
//! Keys never go into `config.toml`. They go to the OS keychain (Secret
//! Service on Linux, the macOS Keychain, the Windows Credential Manager)
//! when one answers, and otherwise to `secrets.toml`, readable only by the
//! user (0600), so a headless server still works. Reads try the keychain
//! first, then the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// `off` keeps keys in the secrets file even where a keychain answers
/// (`on` in tests, which otherwise never touch the developer's keychain).
pub const KEYCHAIN_ENV: &str = "METACLAW_KEYCHAIN";

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

/// Where a secret is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretLocation {
    Keychain,
    File,
}

impl SecretLocation {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretLocation::Keychain => "keychain",
            SecretLocation::File => "file",
        }
    }
}

/// The OS keychain, as one service name holding one entry per config key.
#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
}

impl Keychain {
    /// The keychain for the installation whose config lives in
    /// `config_dir`, if one answers here. The folder is part of the service
    /// name, so two homes (`METACLAW_HOME`) never share keys.
    pub fn probe(config_dir: &Path) -> Option<Keychain> {
        let wanted = match std::env::var(KEYCHAIN_ENV) {
            Ok(value) => !matches!(value.trim(), "off" | "0" | "false" | "no"),
            // Unit tests keep away from the developer's real keychain.
            Err(_) => !cfg!(test),
        };
        if !wanted {
            return None;
        }
        let keychain = Keychain {
            service: format!("metaclaw:{}", config_dir.display()),
        };
        match keychain.read("keychain-probe") {
            Ok(_) => Some(keychain),
            Err(error) => {
                tracing::debug!(%error, "no OS keychain answers; API keys stay in the secrets file");
                None
            }
        }
    }

    /// The stored value; `None` when there is no entry.
    pub fn read(&self, key: &str) -> Result<Option<String>, SecretError> {
        os::read(&self.service, key).map_err(|reason| keychain_error(key, reason))
    }

    pub fn write(&self, key: &str, value: &str) -> Result<(), SecretError> {
        os::write(&self.service, key, value).map_err(|reason| keychain_error(key, reason))
    }

    pub fn remove(&self, key: &str) -> Result<(), SecretError> {
        os::remove(&self.service, key).map_err(|reason| keychain_error(key, reason))
    }
}

fn keychain_error(key: &str, reason: String) -> SecretError {
    SecretError::Keychain {
        key: key.to_owned(),
        reason,
    }
}

/// The platform keychains the `keyring` crate is built with here.
#[cfg(any(target_os = "linux", target_os = "macos", windows))]
mod os {
    fn entry(service: &str, key: &str) -> Result<keyring::Entry, String> {
        keyring::Entry::new(service, key).map_err(|e| e.to_string())
    }

    pub fn read(service: &str, key: &str) -> Result<Option<String>, String> {
        match entry(service, key)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(error.to_string()),
        }
    }

    pub fn write(service: &str, key: &str, value: &str) -> Result<(), String> {
        entry(service, key)?
            .set_password(value)
            .map_err(|e| e.to_string())
    }

    pub fn remove(service: &str, key: &str) -> Result<(), String> {
        match entry(service, key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// Elsewhere there is no keychain: keys stay in the secrets file.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod os {
    const NONE: &str = "no OS keychain is supported on this platform";

    pub fn read(_: &str, _: &str) -> Result<Option<String>, String> {
        Err(NONE.to_owned())
    }

    pub fn write(_: &str, _: &str, _: &str) -> Result<(), String> {
        Err(NONE.to_owned())
    }

    pub fn remove(_: &str, _: &str) -> Result<(), String> {
        Err(NONE.to_owned())
    }
}

/// Secrets by config key: the keychain when one answers, else the file.
#[derive(Debug)]
pub struct SecretStore {
    file: SecretFile,
    keychain: Option<Keychain>,
    /// What the keychain holds for the keys read so far.
    from_keychain: BTreeMap<String, String>,
}

impl SecretStore {
    /// Opens the store with the keychain when one answers and reads `keys`.
    pub fn open(config_dir: &Path, file: &Path, keys: &[&str]) -> Result<SecretStore, SecretError> {
        Self::with_keychain(Keychain::probe(config_dir), file, keys)
    }

    /// Opens the store on an explicit keychain (or none).
    pub fn with_keychain(
        keychain: Option<Keychain>,
        file: &Path,
        keys: &[&str],
    ) -> Result<SecretStore, SecretError> {
        let file = SecretFile::load(file)?;
        let mut from_keychain = BTreeMap::new();
        if let Some(keychain) = &keychain {
            for key in keys {
                match keychain.read(key) {
                    Ok(Some(value)) if !value.is_empty() => {
                        from_keychain.insert((*key).to_owned(), value);
                    }
                    Ok(_) => {}
                    // The file may still hold it; say why the keychain did not.
                    Err(error) => tracing::warn!(%error, "reading a key from the keychain failed"),
                }
            }
        }
        Ok(SecretStore {
            file,
            keychain,
            from_keychain,
        })
    }

    /// The keychain's value, else the file's, else empty.
    pub fn get(&self, key: &str) -> Secret {
        match self.from_keychain.get(key) {
            Some(value) => Secret::new(value.clone()),
            None => self.file.get(key),
        }
    }

    /// Where the key is kept, or where it would go when set now.
    pub fn location(&self, key: &str) -> SecretLocation {
        if self.from_keychain.contains_key(key) {
            SecretLocation::Keychain
        } else if !self.file.get(key).is_empty() || self.keychain.is_none() {
            SecretLocation::File
        } else {
            SecretLocation::Keychain
        }
    }

    /// Whether a keychain answers.
    pub fn has_keychain(&self) -> bool {
        self.keychain.is_some()
    }

    /// Sets (or with an empty value, removes) a secret: in the keychain
    /// when it takes it (and then no stale copy stays in the file), else in
    /// the file. Returns where it went.
    pub fn set(&mut self, key: &str, value: &str) -> Result<SecretLocation, SecretError> {
        if value.is_empty() {
            if let Some(keychain) = &self.keychain {
                keychain.remove(key)?;
            }
            self.from_keychain.remove(key);
            if !self.file.get(key).is_empty() {
                self.file.set(key, "")?;
            }
            return Ok(self.location(key));
        }
        if let Some(keychain) = &self.keychain {
            match keychain.write(key, value) {
                Ok(()) => {
                    self.from_keychain.insert(key.to_owned(), value.to_owned());
                    if !self.file.get(key).is_empty() {
                        self.file.set(key, "")?;
                    }
                    return Ok(SecretLocation::Keychain);
                }
                Err(error) => {
                    tracing::warn!(%error, "the keychain refused the key; keeping it in the secrets file")
                }
            }
        }
        self.file.set(key, value)?;
        Ok(SecretLocation::File)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the OS keychain failed for {key}: {reason}")]
    Keychain { key: String, reason: String },
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

    #[test]
    fn without_a_keychain_keys_fall_back_to_the_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        let keys = ["upstream.api_key", "prm.api_key"];
        let mut store = SecretStore::with_keychain(None, &path, &keys).unwrap();
        assert!(!store.has_keychain());
        assert_eq!(store.location("upstream.api_key"), SecretLocation::File);
        assert_eq!(
            store.set("upstream.api_key", "sk-fallback").unwrap(),
            SecretLocation::File
        );
        let reopened = SecretStore::with_keychain(None, &path, &keys).unwrap();
        assert_eq!(reopened.get("upstream.api_key").expose(), "sk-fallback");
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("sk-fallback"));
        store.set("upstream.api_key", "").unwrap();
        assert!(SecretStore::with_keychain(None, &path, &keys)
            .unwrap()
            .get("upstream.api_key")
            .is_empty());
    }

    #[test]
    fn tests_never_probe_the_developers_keychain_unless_asked() {
        if std::env::var(KEYCHAIN_ENV).is_err() {
            assert!(Keychain::probe(Path::new("/nonexistent/metaclaw-test")).is_none());
        }
    }
}
