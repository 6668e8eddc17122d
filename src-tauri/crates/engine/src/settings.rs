//! Settings as the dashboard and the tray's settings window see and change
//! them: every value, the keys (masked, with where they are kept), provider
//! presets, the calendars' state, and which saved changes still wait for a
//! restart. A change is validated whole, saved through the same config
//! store as `metaclaw config set`, and applied at once where the running
//! engine can take it.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{secret_of, value_json, ChangeError, Config, ConfigStore, SECRET_KEYS};
use crate::events::EngineEvent;
use crate::proxy::ProxyState;

/// One save at a time: the config file is one per process.
static SAVING: Mutex<()> = Mutex::new(());

/// A provider the settings window can fill in with one click.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preset {
    pub id: &'static str,
    pub name: &'static str,
    /// The wire format: `openai` or `anthropic`.
    pub api: &'static str,
    pub base_url: &'static str,
    /// A suggested model; empty lets the agent choose.
    pub model: &'static str,
}

/// The providers MetaClaw users use most; `custom` is any OpenAI-compatible
/// endpoint.
pub fn presets() -> Vec<Preset> {
    let preset = |id, name, api, base_url, model| Preset {
        id,
        name,
        api,
        base_url,
        model,
    };
    vec![
        preset(
            "openai",
            "OpenAI",
            "openai",
            "https://api.openai.com/v1",
            "gpt-4o-mini",
        ),
        preset(
            "anthropic",
            "Anthropic",
            "anthropic",
            "https://api.anthropic.com",
            "claude-sonnet-4-5",
        ),
        preset(
            "openrouter",
            "OpenRouter",
            "openai",
            "https://openrouter.ai/api/v1",
            "openai/gpt-4o-mini",
        ),
        preset(
            "kimi",
            "Kimi (Moonshot)",
            "openai",
            "https://api.moonshot.ai/v1",
            "kimi-k2-0905-preview",
        ),
        preset(
            "qwen",
            "Qwen (DashScope)",
            "openai",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            "qwen-plus",
        ),
        preset(
            "ollama",
            "Ollama (this computer)",
            "openai",
            "http://127.0.0.1:11434/v1",
            "llama3.1",
        ),
        preset("custom", "Custom (OpenAI-compatible)", "openai", "", ""),
    ]
}

/// Whether a running engine takes a new value of `key` at once. The rest
/// (mode, ports, the upstream and the learning models, keys) are read when
/// the engine starts.
pub fn applies_live(key: &str) -> bool {
    key.starts_with("notifications.")
        || key.starts_with("scheduler.")
        || matches!(key, "skills.top_k" | "skills.enabled" | "skills.review")
}

/// A key as the settings show it.
#[derive(Debug, Clone, Serialize)]
pub struct SecretView {
    pub set: bool,
    pub masked: String,
    /// `keychain` or `file`: where it is kept (or would go).
    pub store: &'static str,
}

/// A calendar source and how it reads.
#[derive(Debug, Clone, Serialize)]
pub struct CalendarView {
    pub source: String,
    /// `ok`, `stale`, `broken`, or `unknown` before the first load.
    pub status: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub values: Map<String, Value>,
    pub secrets: Map<String, Value>,
    pub presets: Vec<Preset>,
    pub calendars: Vec<CalendarView>,
    /// Saved keys the running engine does not use until it restarts.
    pub restart_required: Vec<String>,
}

/// A batch of changes: values by dotted key (`null` restores the default)
/// and keys (`null` or empty removes one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[serde(default)]
    pub values: Map<String, Value>,
    #[serde(default)]
    pub secrets: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsApplied {
    /// Changed keys the running engine uses from now on.
    pub applied: Vec<String>,
    /// Saved keys (from this change or earlier ones) that wait for a restart.
    pub restart_required: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings are not available in this engine (it was built without its folders)")]
    Unavailable,
    #[error(transparent)]
    Change(#[from] ChangeError),
}

fn open(state: &ProxyState) -> Result<ConfigStore, SettingsError> {
    let paths = state.paths().ok_or(SettingsError::Unavailable)?;
    Ok(ConfigStore::open(paths).map_err(ChangeError::from)?)
}

/// Every setting, as saved.
pub fn view(state: &ProxyState) -> Result<SettingsView, SettingsError> {
    let store = open(state)?;
    let mut values = Map::new();
    for key in ConfigStore::keys() {
        if let Some(value) = store.value_json(&key) {
            values.insert(key, value);
        }
    }
    let mut secrets = Map::new();
    for key in SECRET_KEYS {
        let secret = store.secret(key);
        let view = SecretView {
            set: !secret.is_empty(),
            masked: secret.masked(),
            store: store.secret_location(key).as_str(),
        };
        secrets.insert(
            key.to_owned(),
            serde_json::to_value(view).unwrap_or_default(),
        );
    }
    Ok(SettingsView {
        values,
        secrets,
        presets: presets(),
        calendars: calendars(state, store.config()),
        restart_required: restart_required(&state.config, store.config()),
    })
}

/// Validates and saves `change` (nothing is written unless all of it is
/// valid), applies what can be applied live, and announces the changed keys.
pub fn change(
    state: &ProxyState,
    change: SettingsChange,
) -> Result<SettingsApplied, SettingsError> {
    let mut fields = std::collections::BTreeMap::new();
    let values: Vec<(String, Value)> = change.values.into_iter().collect();
    let mut secrets = Vec::new();
    for (key, value) in change.secrets {
        match value {
            Value::Null => secrets.push((key, None)),
            Value::String(text) => secrets.push((key, Some(text))),
            _ => {
                fields.insert(
                    key,
                    "must be a string, or null to remove the key".to_owned(),
                );
            }
        }
    }
    if !fields.is_empty() {
        return Err(ChangeError::Invalid(fields).into());
    }
    let _saving = SAVING.lock().unwrap_or_else(|p| p.into_inner());
    let mut store = open(state)?;
    let before = store.config().clone();
    store.change_many(&values, &secrets)?;
    let after = store.config().clone();
    let changed: Vec<String> = values
        .iter()
        .map(|(key, _)| key)
        .chain(secrets.iter().map(|(key, _)| key))
        .filter(|key| differs(&before, &after, key))
        .cloned()
        .collect();
    apply_live(state, &before, &after, &changed);
    Ok(SettingsApplied {
        applied: changed
            .iter()
            .filter(|k| applies_live(k))
            .cloned()
            .collect(),
        restart_required: restart_required(&state.config, &after),
    })
}

/// Hands the new values to the parts that follow them while running.
fn apply_live(state: &ProxyState, before: &Config, after: &Config, changed: &[String]) {
    state.set_live_config(after.clone());
    if before.scheduler != after.scheduler {
        if let Some(scheduler) = state.scheduler() {
            scheduler.set_settings(crate::schedule::settings(&after.scheduler));
        }
    }
    if !changed.is_empty() {
        // The calendar refresher reloads on this when its keys changed.
        state.events.publish(EngineEvent::SettingsChanged {
            keys: changed.to_vec(),
        });
    }
}

fn differs(a: &Config, b: &Config, key: &str) -> bool {
    match (secret_of(a, key), secret_of(b, key)) {
        (Some(x), Some(y)) => x != y,
        _ => value_json(a, key) != value_json(b, key),
    }
}

/// Keys whose saved value differs from what the engine started with and
/// that it reads only at start.
fn restart_required(running: &Config, saved: &Config) -> Vec<String> {
    ConfigStore::keys()
        .into_iter()
        .filter(|key| !applies_live(key) && differs(running, saved, key))
        .collect()
}

fn calendars(state: &ProxyState, saved: &Config) -> Vec<CalendarView> {
    use metaclaw_schedule::SourceStatus;
    let reports = state
        .scheduler()
        .map(|s| s.status().calendars)
        .unwrap_or_default();
    saved
        .scheduler
        .calendar_sources()
        .into_iter()
        .map(|spec| {
            let source = spec.to_string();
            let report = reports.iter().find(|r| r.name == source);
            let (status, detail) = match report.map(|r| &r.status) {
                Some(SourceStatus::Ok { events, .. }) => ("ok", format!("{events} events")),
                Some(SourceStatus::Stale {
                    events, last_error, ..
                }) => (
                    "stale",
                    format!("{events} events from the last good copy; {last_error}"),
                ),
                Some(SourceStatus::Broken { reason }) => ("broken", reason.clone()),
                None => ("unknown", "not loaded yet".to_owned()),
            };
            CalendarView {
                source,
                status: status.to_owned(),
                detail,
            }
        })
        .collect()
}

/// Shared with the calendar refresher: whether a change touched calendars.
pub(crate) fn touches_calendars(keys: &[String]) -> bool {
    keys.iter().any(|k| {
        matches!(
            k.as_str(),
            "scheduler.calendars" | "scheduler.calendar_refresh_minutes" | "scheduler.timezone"
        )
    })
}
