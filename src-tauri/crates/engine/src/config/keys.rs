//! `metaclaw config show | get | set`: dotted keys over the config file and
//! the secret store, with edits that keep the user's comments and layout.

use serde::Serialize;
use toml_edit::DocumentMut;

use super::{env_names, Config, ConfigError};
use crate::paths::AppPaths;
use crate::secret::{Secret, SecretFile};

/// Keys whose values are secrets: stored outside `config.toml`, shown masked.
const SECRET_KEYS: [&str; 5] = [
    "proxy.api_key",
    "upstream.api_key",
    "prm.api_key",
    "evolver.api_key",
    "rl.api_key",
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
    secrets: SecretFile,
    config: Config,
}

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
        let secrets = SecretFile::load(&paths.secrets_file())?;
        config.proxy.api_key = secrets.get("proxy.api_key");
        config.upstream.api_key = secrets.get("upstream.api_key");
        config.prm.api_key = secrets.get("prm.api_key");
        config.evolver.api_key = secrets.get("evolver.api_key");
        config.rl.api_key = secrets.get("rl.api_key");
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
            let secret = self.secrets.get(key);
            match key {
                "proxy.api_key" => self.config.proxy.api_key = secret,
                "prm.api_key" => self.config.prm.api_key = secret,
                "evolver.api_key" => self.config.evolver.api_key = secret,
                "rl.api_key" => self.config.rl.api_key = secret,
                _ => self.config.upstream.api_key = secret,
            }
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
        self.replace_document(key, document)
    }

    fn replace_document(&mut self, key: &str, document: DocumentMut) -> Result<(), ConfigError> {
        let mut config = parse_config(&document).map_err(|reason| invalid(key, &reason))?;
        config.validate()?;
        config.proxy.api_key = self.config.proxy.api_key.clone();
        config.upstream.api_key = self.config.upstream.api_key.clone();
        config.prm.api_key = self.config.prm.api_key.clone();
        config.evolver.api_key = self.config.evolver.api_key.clone();
        config.rl.api_key = self.config.rl.api_key.clone();
        let path = self.paths.config_file();
        crate::fsutil::write_private(&path, document.to_string().as_bytes())
            .map_err(|source| ConfigError::Io { path, source })?;
        self.document = document;
        self.config = config;
        Ok(())
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
            "rl.max_tokens",
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
        // Training modes need the training service first.
        let err = store2.set("mode", "auto").unwrap_err().to_string();
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
