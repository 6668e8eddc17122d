//! `metaclaw config show | get | set`: dotted keys over the config file and
//! the secret store, with edits that keep the user's comments and layout.

use std::collections::BTreeMap;

use serde::Serialize;
use toml_edit::DocumentMut;

use super::{env_names, Config, ConfigError};
use crate::paths::AppPaths;
use crate::secret::{Secret, SecretLocation, SecretStore};

/// Keys whose values are secrets: stored outside `config.toml` (in the OS
/// keychain, else the secrets file), shown masked.
pub const SECRET_KEYS: [&str; 7] = [
    "proxy.api_key",
    "upstream.api_key",
    "prm.api_key",
    "evolver.api_key",
    "rl.api_key",
    "rl.hub_token",
    "opd.api_key",
];

/// Allowed values for keys whose type alone gives a poor error message.
fn allowed_values(key: &str) -> Option<&'static str> {
    match key {
        "mode" => Some("one of skills_only, rl, auto"),
        "upstream.api" => Some("one of openai, anthropic"),
        "proxy.port" => Some("a port number from 1 to 65535"),
        "skills.review" => Some("one of auto, manual"),
        "rl.loss" => Some("one of importance_sampling, ppo, cispo"),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    Default,
    File,
    SecretStore,
    Env,
}

/// One key's effective value as shown to the user (secrets masked).
#[derive(Clone, Debug, Serialize)]
pub struct ConfigEntry {
    pub key: String,
    pub value: String,
    pub source: ValueSource,
    /// The environment variable the value came from, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
}

/// The config file, the secret store and the typed config they produce.
pub struct ConfigStore {
    paths: AppPaths,
    document: DocumentMut,
    secrets: SecretStore,
    config: Config,
}

/// Why a batch of changes was refused or not saved.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Per key, what is wrong with its new value; nothing was written.
    #[error("invalid settings: {}", describe_fields(.0))]
    Invalid(BTreeMap<String, String>),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn describe_fields(fields: &BTreeMap<String, String>) -> String {
    fields
        .iter()
        .map(|(key, message)| format!("{key}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The longest API key accepted (real ones are a few hundred characters).
const MAX_SECRET_CHARS: usize = 4096;

impl ConfigStore {
    pub fn open(paths: &AppPaths) -> Result<ConfigStore, ConfigError> {
        let path = paths.config_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ConfigError::Io { path, source }),
        };
        let document: DocumentMut =
            text.parse()
                .map_err(|e: toml_edit::TomlError| ConfigError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
        let mut config = parse_config(&document).map_err(|reason| ConfigError::File {
            path: path.clone(),
            reason,
        })?;
        config.validate().map_err(|e| ConfigError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let secrets = SecretStore::open(paths.config_dir(), &paths.secrets_file(), &SECRET_KEYS)?;
        fill_secrets(&mut config, &secrets);
        Ok(ConfigStore {
            paths: paths.clone(),
            document,
            secrets,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn paths(&self) -> &AppPaths {
        &self.paths
    }

    /// Where a secret key is kept (or would go when set now).
    pub fn secret_location(&self, key: &str) -> SecretLocation {
        self.secrets.location(key)
    }

    /// A secret key's stored value (empty when not set).
    pub fn secret(&self, key: &str) -> Secret {
        self.secrets.get(key)
    }

    /// A setting's value as typed JSON (a number stays a number, a list a
    /// list); `None` for secret and unknown keys.
    pub fn value_json(&self, key: &str) -> Option<serde_json::Value> {
        value_json(&self.config, key)
    }

    /// Validates every change, then saves them all at once: `values` by
    /// dotted key (`null` restores the default) into `config.toml`, keeping
    /// its comments, and `secrets` (`None` or empty removes one) into the
    /// keychain or the secrets file. When any change is invalid nothing is
    /// written, and every invalid key gets its own message.
    pub fn change_many(
        &mut self,
        values: &[(String, serde_json::Value)],
        secrets: &[(String, Option<String>)],
    ) -> Result<(), ChangeError> {
        let mut fields = BTreeMap::new();
        let mut parsed = Vec::new();
        for (key, value) in values {
            if SECRET_KEYS.contains(&key.as_str()) {
                fields.insert(
                    key.clone(),
                    "is an API key: send it under `secrets`, never with the other settings".into(),
                );
            } else if check_known(key).is_err() {
                fields.insert(key.clone(), "is not a known setting".into());
            } else {
                // Each value alone must read as its key's type (an enum's
                // variant, say); whether it fits with the rest comes below.
                let alone = json_value(key, value).and_then(|value| {
                    let mut document = self.document.clone();
                    set_or_remove(&mut document, key, value.clone());
                    parse_config(&document).map_err(|reason| invalid(key, &reason))?;
                    Ok(value)
                });
                match alone {
                    Ok(value) => parsed.push((key.clone(), value)),
                    Err(e) => {
                        fields.insert(key.clone(), field_message(&e));
                    }
                }
            }
        }
        let mut new_secrets = Vec::new();
        for (key, value) in secrets {
            let value = value.as_deref().map(str::trim).unwrap_or_default();
            if !SECRET_KEYS.contains(&key.as_str()) {
                fields.insert(
                    key.clone(),
                    format!(
                        "is not an API key setting; those are {}",
                        SECRET_KEYS.join(", ")
                    ),
                );
            } else if value.chars().any(char::is_control) {
                fields.insert(
                    key.clone(),
                    "must be one line without control characters".into(),
                );
            } else if value.chars().count() > MAX_SECRET_CHARS {
                fields.insert(
                    key.clone(),
                    format!("must be at most {MAX_SECRET_CHARS} characters"),
                );
            } else {
                new_secrets.push((key.clone(), value.to_owned()));
            }
        }
        // The changes together, as the file would hold them. A value that
        // is only wrong with the others (`mode = auto` without `rl.model`)
        // is found here; it is taken back out to look for more problems.
        let mut document = self.document.clone();
        for (key, value) in &parsed {
            set_or_remove(&mut document, key, value.clone());
        }
        let mut config = loop {
            let error = match parse_config(&document) {
                Ok(config) => match config.validate() {
                    Ok(()) => break config,
                    Err(error) => error,
                },
                Err(reason) => ConfigError::Invalid {
                    key: String::new(),
                    allowed: format!("valid ({reason})"),
                },
            };
            let (key, message) = match &error {
                ConfigError::Invalid { key, allowed } if !key.is_empty() => {
                    (key.clone(), format!("must be {allowed}"))
                }
                other => (
                    parsed.first().map(|(k, _)| k.clone()).unwrap_or_default(),
                    other.to_string(),
                ),
            };
            fields.entry(key.clone()).or_insert(message);
            match parsed.iter().position(|(k, _)| *k == key) {
                Some(at) => {
                    parsed.remove(at);
                    document = self.document.clone();
                    for (key, value) in &parsed {
                        set_or_remove(&mut document, key, value.clone());
                    }
                }
                // The problem is with a key left as it is: nothing more to learn.
                None => return Err(ChangeError::Invalid(fields)),
            }
        };
        if !fields.is_empty() {
            return Err(ChangeError::Invalid(fields));
        }
        for (key, value) in &new_secrets {
            self.secrets.set(key, value).map_err(ConfigError::from)?;
        }
        if !parsed.is_empty() {
            let path = self.paths.config_file();
            crate::fsutil::write_private(&path, document.to_string().as_bytes())
                .map_err(|source| ConfigError::Io { path, source })?;
            self.document = document;
        } else {
            config = self.config.clone();
        }
        fill_secrets(&mut config, &self.secrets);
        self.config = config;
        Ok(())
    }

    /// Every key, in a stable order.
    pub fn keys() -> Vec<String> {
        let mut keys = Vec::new();
        if let Ok(toml::Value::Table(table)) = toml::Value::try_from(Config::default()) {
            collect_leaves("", &table, &mut keys);
        }
        for secret in SECRET_KEYS {
            let section = secret.split('.').next().unwrap_or_default();
            let at = keys
                .iter()
                .rposition(|k| k.starts_with(&format!("{section}.")))
                .map_or(keys.len(), |i| i + 1);
            keys.insert(at, secret.to_string());
        }
        keys
    }

    pub fn entries(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigEntry> {
        Self::keys()
            .iter()
            .filter_map(|key| self.get(key, env).ok())
            .collect()
    }

    pub fn get(
        &self,
        key: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConfigEntry, ConfigError> {
        check_known(key)?;
        let (key_var, url_var, _) = env_names(self.config.upstream.api);
        if SECRET_KEYS.contains(&key) {
            let stored = self.secrets.get(key);
            let env_value = (key == "upstream.api_key")
                .then(|| env(key_var))
                .flatten()
                .filter(|v| !v.is_empty());
            let (secret, source, env_var) = match env_value {
                Some(value) if stored.is_empty() => {
                    (Secret::new(value), ValueSource::Env, Some(key_var))
                }
                _ if stored.is_empty() => (stored, ValueSource::Default, None),
                _ => (stored, ValueSource::SecretStore, None),
            };
            return Ok(entry(key, secret.masked(), source, env_var));
        }
        let mut value = leaf(&self.config, key)
            .map(display_value)
            .unwrap_or_default();
        if key == "skills.dir" && value.is_empty() {
            value = self.config.skills_dir(&self.paths).display().to_string();
        }
        let in_file = document_leaf(&self.document, key).is_some();
        if key == "upstream.base_url" && !in_file {
            if let Some(url) = env(url_var).filter(|v| !v.is_empty()) {
                return Ok(entry(key, url, ValueSource::Env, Some(url_var)));
            }
        }
        let source = if in_file {
            ValueSource::File
        } else {
            ValueSource::Default
        };
        Ok(entry(key, value, source, None))
    }

    /// Validates and saves one value; nothing is written when it is refused.
    pub fn set(&mut self, key: &str, raw: &str) -> Result<(), ConfigError> {
        check_known(key)?;
        if SECRET_KEYS.contains(&key) {
            self.secrets.set(key, raw.trim())?;
            fill_secrets(&mut self.config, &self.secrets);
            return Ok(());
        }
        let default = leaf(&Config::default(), key).unwrap_or(toml::Value::String(String::new()));
        let value = parse_as(key, raw, &default)?;
        let mut document = self.document.clone();
        set_document_leaf(&mut document, key, value);
        self.replace_document(key, document)
    }

    /// Removes a key from the file (or the secret store) so its default applies.
    pub fn unset(&mut self, key: &str) -> Result<(), ConfigError> {
        check_known(key)?;
        if SECRET_KEYS.contains(&key) {
            return self.set(key, "");
        }
        let mut document = self.document.clone();
        remove_document_leaf(&mut document, key);
        self.replace_document(key, document)
    }

    fn replace_document(&mut self, key: &str, document: DocumentMut) -> Result<(), ConfigError> {
        let mut config = parse_config(&document).map_err(|reason| invalid(key, &reason))?;
        config.validate()?;
        fill_secrets(&mut config, &self.secrets);
        let path = self.paths.config_file();
        crate::fsutil::write_private(&path, document.to_string().as_bytes())
            .map_err(|source| ConfigError::Io { path, source })?;
        self.document = document;
        self.config = config;
        Ok(())
    }
}

/// A setting's value in `config` as typed JSON; `None` for secret and
/// unknown keys.
pub fn value_json(config: &Config, key: &str) -> Option<serde_json::Value> {
    if SECRET_KEYS.contains(&key) {
        return None;
    }
    serde_json::to_value(leaf(config, key)?).ok()
}

/// A secret key's value in `config` (empty for other keys).
pub fn secret_of<'a>(config: &'a Config, key: &str) -> Option<&'a Secret> {
    match key {
        "proxy.api_key" => Some(&config.proxy.api_key),
        "upstream.api_key" => Some(&config.upstream.api_key),
        "prm.api_key" => Some(&config.prm.api_key),
        "evolver.api_key" => Some(&config.evolver.api_key),
        "rl.api_key" => Some(&config.rl.api_key),
        "rl.hub_token" => Some(&config.rl.hub_token),
        "opd.api_key" => Some(&config.opd.api_key),
        _ => None,
    }
}

/// Puts the stored keys into the typed config.
fn fill_secrets(config: &mut Config, secrets: &SecretStore) {
    config.proxy.api_key = secrets.get("proxy.api_key");
    config.upstream.api_key = secrets.get("upstream.api_key");
    config.prm.api_key = secrets.get("prm.api_key");
    config.evolver.api_key = secrets.get("evolver.api_key");
    config.rl.api_key = secrets.get("rl.api_key");
    config.rl.hub_token = secrets.get("rl.hub_token");
    config.opd.api_key = secrets.get("opd.api_key");
}

/// `must be …` for a value's own problem, without the key (the caller files
/// it under the key).
fn field_message(error: &ConfigError) -> String {
    match error {
        ConfigError::Invalid { allowed, .. } => format!("must be {allowed}"),
        other => other.to_string(),
    }
}

/// A JSON value (from the API) as the key's TOML value; `None` for `null`,
/// which restores the default.
fn json_value(
    key: &str,
    value: &serde_json::Value,
) -> Result<Option<toml_edit::Value>, ConfigError> {
    let default = leaf(&Config::default(), key).unwrap_or(toml::Value::String(String::new()));
    match (value, &default) {
        (serde_json::Value::Null, _) => Ok(None),
        (serde_json::Value::Array(items), toml::Value::Array(_)) => {
            let strings: Option<Vec<&str>> = items.iter().map(|v| v.as_str()).collect();
            match strings {
                Some(strings) => Ok(Some(toml_edit::Value::Array(
                    strings.into_iter().map(str::trim).collect(),
                ))),
                None => Err(ConfigError::Invalid {
                    key: key.to_string(),
                    allowed: "a list of strings".into(),
                }),
            }
        }
        (serde_json::Value::String(text), _) => parse_as(key, text, &default).map(Some),
        (serde_json::Value::Number(_) | serde_json::Value::Bool(_), _) => {
            parse_as(key, &value.to_string(), &default).map(Some)
        }
        _ => Err(ConfigError::Invalid {
            key: key.to_string(),
            allowed: allowed_values(key)
                .unwrap_or("a single value (a string, number or true/false)")
                .to_string(),
        }),
    }
}

fn set_or_remove(document: &mut DocumentMut, key: &str, value: Option<toml_edit::Value>) {
    match value {
        Some(value) => set_document_leaf(document, key, value),
        None => remove_document_leaf(document, key),
    }
}

fn remove_document_leaf(document: &mut DocumentMut, key: &str) {
    let mut parts = key.split('.');
    match (parts.next(), parts.next()) {
        (Some(section), Some(name)) => {
            if let Some(table) = document
                .get_mut(section)
                .and_then(|t| t.as_table_like_mut())
            {
                table.remove(name);
            }
        }
        (Some(name), None) => {
            document.remove(name);
        }
        _ => {}
    }
}

fn entry(key: &str, value: String, source: ValueSource, env_var: Option<&str>) -> ConfigEntry {
    ConfigEntry {
        key: key.to_string(),
        value,
        source,
        env_var: env_var.map(str::to_string),
    }
}

fn invalid(key: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        allowed: allowed_values(key).map_or_else(|| format!("valid ({reason})"), str::to_string),
    }
}

fn check_known(key: &str) -> Result<(), ConfigError> {
    let keys = ConfigStore::keys();
    if keys.iter().any(|k| k == key) {
        Ok(())
    } else {
        Err(ConfigError::UnknownKey {
            key: key.to_string(),
            known: keys.join(", "),
        })
    }
}

fn parse_config(document: &DocumentMut) -> Result<Config, String> {
    // The secret keys are read from the secret store only; a key pasted into
    // config.toml would sit there in plain text, so it is refused by name.
    for secret in SECRET_KEYS {
        if document_leaf(document, secret).is_some() {
            return Err(format!(
                "`{secret}` must not be stored in config.toml; remove it and run `metaclaw config set {secret} KEY`"
            ));
        }
    }
    toml::from_str(&document.to_string()).map_err(|e| e.message().to_string())
}

fn collect_leaves(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => collect_leaves(&key, inner, out),
            _ => out.push(key),
        }
    }
}

fn leaf(config: &Config, key: &str) -> Option<toml::Value> {
    let mut value = toml::Value::try_from(config).ok()?;
    for part in key.split('.') {
        value = value.as_table()?.get(part)?.clone();
    }
    Some(value)
}

fn document_leaf<'a>(document: &'a DocumentMut, key: &str) -> Option<&'a toml_edit::Item> {
    let mut item = document.as_item();
    for part in key.split('.') {
        item = item.get(part)?;
    }
    Some(item)
}

fn set_document_leaf(document: &mut DocumentMut, key: &str, value: toml_edit::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(name) = parts.pop() else { return };
    // A new section becomes a `[section]` table at the end of the file,
    // where a person would add it, not an inline table at the top.
    if let [section] = parts.as_slice() {
        if !document
            .get(section)
            .is_some_and(toml_edit::Item::is_table_like)
        {
            document.insert(section, toml_edit::table());
        }
        if let Some(table) = document
            .get_mut(section)
            .and_then(toml_edit::Item::as_table_like_mut)
        {
            table.insert(name, toml_edit::Item::Value(value));
        }
        return;
    }
    let mut item = document.as_item_mut();
    for part in parts {
        item = &mut item[part];
    }
    item[name] = toml_edit::Item::Value(value);
}

fn display_value(value: toml::Value) -> String {
    match value {
        toml::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Parses a command-line string as the type the key's default has.
fn parse_as(key: &str, raw: &str, default: &toml::Value) -> Result<toml_edit::Value, ConfigError> {
    let raw = raw.trim();
    let wrong = |what: &str| ConfigError::Invalid {
        key: key.to_string(),
        allowed: allowed_values(key).unwrap_or(what).to_string(),
    };
    Ok(match default {
        toml::Value::Integer(_) => {
            let number: i64 = raw.parse().map_err(|_| wrong("a whole number"))?;
            if key == "proxy.port" && !(1..=65535).contains(&number) {
                return Err(wrong("a port number from 1 to 65535"));
            }
            number.into()
        }
        toml::Value::Float(_) => {
            let number: f64 = raw.parse().map_err(|_| wrong("a number"))?;
            if !number.is_finite() {
                return Err(wrong("a finite number"));
            }
            number.into()
        }
        toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => true.into(),
            "false" | "no" | "off" | "0" => false.into(),
            _ => return Err(wrong("true or false")),
        },
        toml::Value::Array(_) => parse_list(raw).ok_or_else(|| {
            wrong("a TOML list of strings such as [\"~/cal/work.ics\", \"https://example.com/cal.ics\"], or a single entry")
        })?,
        _ => raw.into(),
    })
}

/// A list value from the command line: a TOML array of strings, or one
/// bare entry (a path or URL is rarely a valid TOML list).
fn parse_list(raw: &str) -> Option<toml_edit::Value> {
    if !raw.starts_with('[') {
        let items: Vec<&str> = if raw.is_empty() { vec![] } else { vec![raw] };
        return Some(toml_edit::Value::Array(items.into_iter().collect()));
    }
    let value: toml_edit::Value = raw.parse().ok()?;
    let all_strings = value.as_array()?.iter().all(|v| v.is_str());
    all_strings.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn store() -> (tempfile::TempDir, ConfigStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::open(&AppPaths::under(dir.path())).unwrap();
        (dir, store)
    }

    #[test]
    fn lists_every_documented_key() {
        let keys = ConfigStore::keys();
        for key in [
            "mode",
            "proxy.host",
            "proxy.port",
            "proxy.api_key",
            "upstream.api",
            "upstream.base_url",
            "upstream.api_key",
            "upstream.model",
            "skills.dir",
            "skills.top_k",
            "skills.enabled",
            "session.idle_timeout_minutes",
            "prm.enabled",
            "prm.base_url",
            "prm.api_key",
            "prm.model",
            "prm.votes",
            "prm.temperature",
            "prm.timeout_secs",
            "prm.concurrency",
            "evolver.enabled",
            "evolver.base_url",
            "evolver.api_key",
            "evolver.model",
            "evolver.every_n_turns",
            "evolver.max_new_skills",
            "evolver.failure_threshold",
            "evolver.timeout_secs",
            "skills.review",
            "curator.enabled",
            "curator.min_uses",
            "curator.harm_margin",
            "curator.merge_similarity",
            "curator.interval_hours",
            "rl.base_url",
            "rl.api_key",
            "rl.model",
            "rl.lora_rank",
            "rl.batch_size",
            "rl.learning_rate",
            "rl.loss",
            "rl.save_every",
            "rl.resume_from",
            "rl.tokenizer",
            "rl.hub_url",
            "rl.hub_token",
            "rl.max_tokens",
            "opd.teacher_url",
            "opd.teacher_model",
            "opd.kl_coef",
            "opd.timeout_secs",
            "opd.api_key",
        ] {
            assert!(keys.iter().any(|k| k == key), "missing {key}");
        }
    }

    #[test]
    fn set_persists_and_keeps_comments() {
        let (dir, mut store) = store();
        std::fs::write(
            dir.path().join("config.toml"),
            "# my notes\n[proxy]\nport = 31000 # mine\n",
        )
        .unwrap();
        let mut store2 = ConfigStore::open(&AppPaths::under(dir.path())).unwrap();
        store2.set("skills.top_k", "3").unwrap();
        // rl needs the training service first.
        let err = store2.set("mode", "rl").unwrap_err().to_string();
        assert!(err.starts_with("rl.base_url"), "{err}");
        store2.set("rl.base_url", "http://127.0.0.1:8000").unwrap();
        store2
            .set("rl.model", "Qwen/Qwen3-4B-Instruct-2507")
            .unwrap();
        store2.set("rl.tokenizer", "/models/qwen3").unwrap();
        store2.set("mode", "auto").unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(
            text.contains("# my notes") && text.contains("# mine"),
            "{text}"
        );
        let reopened = ConfigStore::open(&AppPaths::under(dir.path())).unwrap();
        assert_eq!(reopened.config().skills.top_k, 3);
        assert_eq!(reopened.config().proxy.port, 31000);
        assert_eq!(reopened.config().mode, super::super::Mode::Auto);
        store.set("proxy.port", "30001").unwrap();
    }

    #[test]
    fn refuses_bad_values_and_unknown_keys_without_writing() {
        let (dir, mut store) = store();
        let err = store.set("mode", "fast").unwrap_err().to_string();
        assert_eq!(err, "mode: must be one of skills_only, rl, auto");
        let err = store.set("proxy.port", "70000").unwrap_err().to_string();
        assert!(err.contains("proxy.port") && err.contains("65535"), "{err}");
        let err = store
            .set("skills.enabled", "maybe")
            .unwrap_err()
            .to_string();
        assert!(err.contains("true or false"), "{err}");
        let err = store.set("skills.topk", "3").unwrap_err().to_string();
        assert!(err.contains("unknown config key `skills.topk`"), "{err}");
        assert!(!dir.path().join("config.toml").exists());
    }

    #[test]
    fn secrets_never_reach_the_config_file_and_show_masked() {
        let (dir, mut store) = store();
        store
            .set("upstream.api_key", "sk-live-abcdefghijklmnop")
            .unwrap();
        let shown = store.get("upstream.api_key", &no_env).unwrap();
        assert_eq!(shown.value, "sk-l…mnop");
        assert_eq!(shown.source, ValueSource::SecretStore);
        assert!(!dir.path().join("config.toml").exists());
        let reopened = ConfigStore::open(&AppPaths::under(dir.path())).unwrap();
        assert_eq!(
            reopened.config().upstream.api_key.expose(),
            "sk-live-abcdefghijklmnop"
        );
    }

    #[test]
    fn the_judge_key_is_a_secret_too() {
        let (dir, mut store) = store();
        store
            .set("prm.api_key", "sk-judge-abcdefghijklmnop")
            .unwrap();
        assert_eq!(
            store.get("prm.api_key", &no_env).unwrap().value,
            "sk-j…mnop"
        );
        assert!(!dir.path().join("config.toml").exists());
        // Other edits keep it.
        store.set("prm.votes", "5").unwrap();
        assert_eq!(
            store.config().prm.api_key.expose(),
            "sk-judge-abcdefghijklmnop"
        );
        let reopened = ConfigStore::open(&AppPaths::under(dir.path())).unwrap();
        assert_eq!(
            reopened.config().prm.api_key.expose(),
            "sk-judge-abcdefghijklmnop"
        );
        assert_eq!(reopened.config().prm.votes, 5);
    }

    #[test]
    fn review_mode_and_the_evolver_key() {
        let (dir, mut store) = store();
        let err = store.set("skills.review", "later").unwrap_err().to_string();
        assert_eq!(err, "skills.review: must be one of auto, manual");
        store.set("skills.review", "manual").unwrap();
        assert_eq!(
            store.config().skills.review,
            super::super::ReviewMode::Manual
        );
        store
            .set("evolver.api_key", "sk-evolver-abcdefghijklmnop")
            .unwrap();
        assert_eq!(
            store.get("evolver.api_key", &no_env).unwrap().value,
            "sk-e…mnop"
        );
        store.set("evolver.every_n_turns", "4").unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(!text.contains("sk-evolver"), "{text}");
        let reopened = ConfigStore::open(&AppPaths::under(dir.path())).unwrap();
        assert_eq!(
            reopened.config().evolver.api_key.expose(),
            "sk-evolver-abcdefghijklmnop"
        );
    }

    #[test]
    fn a_key_pasted_into_the_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[upstream]\napi_key = \"sk-x\"\n",
        )
        .unwrap();
        let err = ConfigStore::open(&AppPaths::under(dir.path()))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("upstream.api_key") && err.contains("must not be stored"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "[proxy]\nprot = 1\n").unwrap();
        let err = ConfigStore::open(&AppPaths::under(dir.path()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn shows_environment_sources() {
        let (_dir, store) = store();
        let env =
            |name: &str| (name == "OPENAI_API_KEY").then(|| "sk-from-environment-123".to_string());
        let shown = store.get("upstream.api_key", &env).unwrap();
        assert_eq!(shown.source, ValueSource::Env);
        assert_eq!(shown.env_var.as_deref(), Some("OPENAI_API_KEY"));
        assert!(!shown.value.contains("environment"));
    }

    #[test]
    fn change_many_saves_all_or_nothing_with_a_message_per_key() {
        let (dir, mut store) = store();
        std::fs::write(
            dir.path().join("config.toml"),
            "# kept\n[skills]\ntop_k = 4\n",
        )
        .unwrap();
        let mut store2 = ConfigStore::open(&AppPaths::under(dir.path())).unwrap();
        let values = vec![
            ("skills.top_k".to_string(), serde_json::json!(0)),
            ("proxy.port".to_string(), serde_json::json!("seventy")),
            ("notifications.errors".to_string(), serde_json::json!(false)),
            ("upstream.api_key".to_string(), serde_json::json!("sk-x")),
        ];
        let secrets = vec![("upstream.model".to_string(), Some("x".to_string()))];
        let ChangeError::Invalid(fields) = store2.change_many(&values, &secrets).unwrap_err()
        else {
            panic!("expected per-key messages")
        };
        let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "proxy.port",
                "skills.top_k",
                "upstream.api_key",
                "upstream.model"
            ],
            "{fields:?}"
        );
        assert!(fields["skills.top_k"].starts_with("must be"), "{fields:?}");
        let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert_eq!(text, "# kept\n[skills]\ntop_k = 4\n");

        // Values that are only valid together are accepted together.
        let values = vec![
            ("prm.enabled".to_string(), serde_json::json!(true)),
            ("prm.model".to_string(), serde_json::json!("judge")),
            (
                "scheduler.calendars".to_string(),
                serde_json::json!(["/tmp/a.ics"]),
            ),
            ("skills.top_k".to_string(), serde_json::Value::Null),
        ];
        let secrets = vec![(
            "upstream.api_key".to_string(),
            Some("sk-together-0123456789".to_string()),
        )];
        store2.change_many(&values, &secrets).unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(text.starts_with("# kept"), "{text}");
        assert!(!text.contains("sk-together"), "{text}");
        let reopened = ConfigStore::open(&AppPaths::under(dir.path())).unwrap();
        assert!(reopened.config().prm.enabled);
        assert_eq!(reopened.config().skills.top_k, 6);
        assert_eq!(reopened.config().scheduler.calendars, ["/tmp/a.ics"]);
        assert_eq!(
            reopened.config().upstream.api_key.expose(),
            "sk-together-0123456789"
        );
        assert_eq!(
            reopened.value_json("scheduler.calendars"),
            Some(serde_json::json!(["/tmp/a.ics"]))
        );
        assert_eq!(
            reopened.secret_location("upstream.api_key"),
            SecretLocation::File
        );
        store.set("skills.top_k", "2").unwrap();
    }

    #[test]
    fn unset_restores_the_default() {
        let (_dir, mut store) = store();
        store.set("skills.top_k", "2").unwrap();
        store.unset("skills.top_k").unwrap();
        assert_eq!(store.config().skills.top_k, 6);
        assert_eq!(
            store.get("skills.top_k", &no_env).unwrap().source,
            ValueSource::Default
        );
    }
}
