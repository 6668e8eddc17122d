//! Configuration: the typed settings, their defaults, validation, and where
//! each effective value comes from (file, secret store, environment).
//!
//! Defaults live in code; `config.toml` holds only what the user changed.
//! Unknown keys are errors, never silently ignored.

mod curator;
mod keys;
mod opd;
mod rl;

pub use curator::CuratorConfig;
pub use keys::{
    secret_of, value_json, ChangeError, ConfigEntry, ConfigStore, ValueSource, SECRET_KEYS,
};
pub use opd::OpdConfig;
pub use rl::{RlConfig, LOSSES};

use std::net::IpAddr;
use std::path::PathBuf;

use chrono_tz::Tz;
use metaclaw_dialect::Dialect;
use metaclaw_schedule::zone::zone_by_name;
use metaclaw_schedule::{SleepHours, SourceSpec};
use serde::{Deserialize, Serialize};

use crate::paths::AppPaths;
use crate::secret::Secret;

/// Learning mode. `skills_only`: the fast loop only. `rl`: skills plus RL,
/// a step as soon as a batch is full. `auto` (the default): skills plus RL
/// with steps only in the scheduler's windows — and until the training
/// service is configured (`rl.base_url`, `rl.model`, `rl.tokenizer`), the
/// same as `skills_only`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    SkillsOnly,
    Rl,
    #[default]
    Auto,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::SkillsOnly => "skills_only",
            Mode::Rl => "rl",
            Mode::Auto => "auto",
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub mode: Mode,
    pub proxy: ProxyConfig,
    pub upstream: UpstreamConfig,
    pub skills: SkillsConfig,
    pub session: SessionConfig,
    pub prm: PrmConfig,
    pub evolver: EvolverConfig,
    pub scheduler: SchedulerConfig,
    pub curator: CuratorConfig,
    pub rl: RlConfig,
    pub opd: OpdConfig,
    pub notifications: NotificationsConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    pub host: String,
    pub port: u16,
    /// Largest request body accepted, in MiB (images make bodies large).
    pub max_body_mb: f64,
    /// Bearer token clients must send; kept in the secret store.
    #[serde(skip)]
    pub api_key: Secret,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            host: "127.0.0.1".into(),
            port: 30000,
            max_body_mb: 32.0,
            api_key: Secret::default(),
        }
    }
}

impl ProxyConfig {
    pub fn max_body_bytes(&self) -> usize {
        (self.max_body_mb * 1024.0 * 1024.0) as usize
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    pub api: Dialect,
    pub base_url: String,
    /// Empty: pass the client's model through.
    pub model: String,
    /// Longest wait for the upstream's response headers and between stream chunks.
    pub timeout_secs: f64,
    pub connect_timeout_secs: f64,
    #[serde(skip)]
    pub api_key: Secret,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            api: Dialect::OpenAi,
            base_url: String::new(),
            model: String::new(),
            timeout_secs: 300.0,
            connect_timeout_secs: 10.0,
            api_key: Secret::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SkillsConfig {
    /// Empty: the `skills` folder in MetaClaw's data directory.
    pub dir: String,
    pub top_k: usize,
    pub enabled: bool,
    /// Whether evolved skills are active at once or wait for approval.
    pub review: ReviewMode,
}

impl Default for SkillsConfig {
    fn default() -> Self {
        SkillsConfig {
            dir: String::new(),
            top_k: 6,
            enabled: true,
            review: ReviewMode::Auto,
        }
    }
}

/// What happens to a skill the evolver writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewMode {
    /// Active at once.
    #[default]
    Auto,
    /// Pending (never injected) until `metaclaw skills approve NAME`.
    Manual,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A conversation with no request for this long has ended.
    pub idle_timeout_minutes: f64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout_minutes: 30.0,
        }
    }
}

/// The process reward model: an OpenAI-compatible judge that scores main
/// turns +1 / 0 / -1 off the request path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrmConfig {
    pub enabled: bool,
    /// Empty: the upstream's, when the upstream is OpenAI-compatible.
    pub base_url: String,
    /// Required when enabled.
    pub model: String,
    /// Judge samples per turn; the score is their majority.
    pub votes: u32,
    pub temperature: f64,
    /// Longest wait for one vote's whole answer.
    pub timeout_secs: f64,
    /// Turns judged at once.
    pub concurrency: usize,
    /// Empty: the upstream's key, when the judge is the upstream's endpoint.
    #[serde(skip)]
    pub api_key: Secret,
}

impl Default for PrmConfig {
    fn default() -> Self {
        PrmConfig {
            enabled: false,
            base_url: String::new(),
            model: String::new(),
            votes: 3,
            temperature: 0.6,
            timeout_secs: 60.0,
            concurrency: 4,
            api_key: Secret::default(),
        }
    }
}

/// The skill evolver: an OpenAI-compatible model that turns a session's
/// failed or finished turns into new skills, off the request path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvolverConfig {
    pub enabled: bool,
    /// Empty: the upstream's, when the upstream is OpenAI-compatible.
    pub base_url: String,
    /// Empty: the upstream's model (`upstream.model`); required when that is empty too.
    pub model: String,
    /// Evolve after this many new main turns of a session.
    pub every_n_turns: u32,
    /// The most skills one evolution adds.
    pub max_new_skills: usize,
    /// Evolve when the share of a session's recent scored turns that
    /// succeeded drops below this.
    pub failure_threshold: f64,
    /// Longest wait for the evolver model's whole answer.
    pub timeout_secs: f64,
    /// Empty: the upstream's key, when the evolver is the upstream's endpoint.
    #[serde(skip)]
    pub api_key: Secret,
}

impl Default for EvolverConfig {
    fn default() -> Self {
        EvolverConfig {
            enabled: false,
            base_url: String::new(),
            model: String::new(),
            every_n_turns: 10,
            max_new_skills: 3,
            failure_threshold: 0.4,
            timeout_secs: 120.0,
            api_key: Secret::default(),
        }
    }
}

/// Which desktop notifications the tray app shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// A new skill was learned (or waits for review).
    pub skill_learned: bool,
    /// A training run ended.
    pub training_finished: bool,
    /// Something needs the user: the upstream refused the key, a calendar
    /// cannot be read.
    pub errors: bool,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            skill_learned: true,
            training_finished: true,
            errors: true,
        }
    }
}

/// The Opportunistic Meta-Learning Scheduler: when heavy background work
/// (RL steps) may run because the user is away.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub enabled: bool,
    /// Local wall-clock start of the nightly sleep hours ("23:00"); empty
    /// (here or in `sleep_end`) turns the sleep trigger off.
    pub sleep_start: String,
    /// Local wall-clock end ("07:00"); earlier than the start wraps midnight.
    pub sleep_end: String,
    /// Keyboard and mouse still this long means away; a proxy request this
    /// recent keeps every window closed.
    pub idle_threshold_minutes: f64,
    /// A window expected to be shorter than this is not opened.
    pub min_window_minutes: f64,
    /// Calendar sources: `.ics` files, vdir folders, http(s)/webcal URLs.
    pub calendars: Vec<String>,
    /// How often subscription URLs are fetched again.
    pub calendar_refresh_minutes: f64,
    /// IANA zone for sleep hours, floating and all-day events; empty: the
    /// system's zone.
    pub timezone: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: true,
            sleep_start: "23:00".into(),
            sleep_end: "07:00".into(),
            idle_threshold_minutes: 10.0,
            min_window_minutes: 5.0,
            calendars: Vec::new(),
            calendar_refresh_minutes: 15.0,
            timezone: String::new(),
        }
    }
}

impl SchedulerConfig {
    /// The sleep hours, or `None` when turned off. Validation has already
    /// refused text that does not parse.
    pub fn sleep_hours(&self) -> Option<SleepHours> {
        if self.sleep_start.trim().is_empty() || self.sleep_end.trim().is_empty() {
            return None;
        }
        SleepHours::parse(&self.sleep_start, &self.sleep_end).ok()
    }

    /// The configured zone, else the system's (`TZ`, then the OS setting),
    /// else UTC.
    pub fn zone(&self) -> Tz {
        zone_by_name(&self.timezone).unwrap_or_else(metaclaw_schedule::zone::local_zone)
    }

    pub fn calendar_sources(&self) -> Vec<SourceSpec> {
        self.calendars
            .iter()
            .map(|c| SourceSpec::parse(c))
            .collect()
    }
}

/// Where the judge's requests go, after applying the upstream fallbacks.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedPrm {
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
}

/// The upstream the proxy forwards to, after applying environment fallbacks.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedUpstream {
    pub api: Dialect,
    pub base_url: String,
    pub api_key: Secret,
    pub model: Option<String>,
}

impl Config {
    pub fn skills_dir(&self, paths: &AppPaths) -> PathBuf {
        if self.skills.dir.is_empty() {
            paths.default_skills_dir()
        } else {
            PathBuf::from(&self.skills.dir)
        }
    }

    /// The upstream to use, or `None` when nothing says where to send requests.
    /// Config values win; `OPENAI_*` / `ANTHROPIC_*` environment variables fill
    /// gaps; a key without a URL means the provider's official endpoint.
    pub fn resolve_upstream(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<ResolvedUpstream> {
        let upstream = &self.upstream;
        let (key_var, url_var, official) = env_names(upstream.api);
        let api_key = if upstream.api_key.is_empty() {
            Secret::new(env(key_var).unwrap_or_default())
        } else {
            upstream.api_key.clone()
        };
        let base_url = if !upstream.base_url.is_empty() {
            upstream.base_url.clone()
        } else if let Some(url) = env(url_var).filter(|u| !u.is_empty()) {
            url
        } else if !api_key.is_empty() {
            official.to_string()
        } else {
            return None;
        };
        Some(ResolvedUpstream {
            api: upstream.api,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            model: (!upstream.model.is_empty()).then(|| upstream.model.clone()),
        })
    }

    /// The judge's endpoint, or `None` when PRM is off or nothing says where
    /// to send it (the upstream speaks Anthropic and `prm.base_url` is empty).
    /// The upstream's key is reused only for the upstream's own URL: a key
    /// is never sent to a host it was not given for.
    pub fn resolve_prm(&self, upstream: Option<&ResolvedUpstream>) -> Option<ResolvedPrm> {
        let prm = &self.prm;
        if !prm.enabled {
            return None;
        }
        let openai_upstream = upstream.filter(|u| u.api == Dialect::OpenAi);
        let base_url = if prm.base_url.is_empty() {
            openai_upstream?.base_url.clone()
        } else {
            prm.base_url.trim_end_matches('/').to_string()
        };
        let api_key = match openai_upstream {
            Some(u) if prm.api_key.is_empty() && u.base_url == base_url => u.api_key.clone(),
            _ => prm.api_key.clone(),
        };
        Some(ResolvedPrm {
            base_url,
            api_key,
            model: prm.model.clone(),
        })
    }

    /// The evolver's endpoint, or `None` when it is off or nothing says where
    /// to send it. Like the judge, it reuses the upstream's key only for the
    /// upstream's own URL; its model defaults to the upstream's.
    pub fn resolve_evolver(&self, upstream: Option<&ResolvedUpstream>) -> Option<ResolvedPrm> {
        let evolver = &self.evolver;
        if !evolver.enabled {
            return None;
        }
        let openai_upstream = upstream.filter(|u| u.api == Dialect::OpenAi);
        let base_url = if evolver.base_url.is_empty() {
            openai_upstream?.base_url.clone()
        } else {
            evolver.base_url.trim_end_matches('/').to_string()
        };
        let api_key = match openai_upstream {
            Some(u) if evolver.api_key.is_empty() && u.base_url == base_url => u.api_key.clone(),
            _ => evolver.api_key.clone(),
        };
        let model = if evolver.model.trim().is_empty() {
            self.upstream.model.clone()
        } else {
            evolver.model.clone()
        };
        (!model.trim().is_empty()).then_some(ResolvedPrm {
            base_url,
            api_key,
            model,
        })
    }

    /// Checks what types alone cannot; each error names the key and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, allowed: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                allowed: allowed.to_string(),
            })
        };
        if self.proxy.host != "localhost" && self.proxy.host.parse::<IpAddr>().is_err() {
            return invalid(
                "proxy.host",
                "an IP address such as 127.0.0.1 (0.0.0.0 exposes the proxy to your network)",
            );
        }
        if self.proxy.port == 0 {
            return invalid("proxy.port", "a port number from 1 to 65535");
        }
        if !(self.proxy.max_body_mb > 0.0 && self.proxy.max_body_mb <= 1024.0) {
            return invalid(
                "proxy.max_body_mb",
                "a size in MiB greater than 0 and at most 1024",
            );
        }
        if !self.upstream.base_url.is_empty() {
            match reqwest::Url::parse(&self.upstream.base_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => {
                    return invalid(
                        "upstream.base_url",
                        "an http:// or https:// URL such as https://api.openai.com/v1",
                    )
                }
            }
        }
        for (key, value) in [
            ("upstream.timeout_secs", self.upstream.timeout_secs),
            (
                "upstream.connect_timeout_secs",
                self.upstream.connect_timeout_secs,
            ),
        ] {
            if !(value > 0.0 && value <= 86_400.0) {
                return invalid(key, "a number of seconds greater than 0");
            }
        }
        if !(1..=50).contains(&self.skills.top_k) {
            return invalid(
                "skills.top_k",
                "a whole number from 1 to 50 (use skills.enabled = false to inject none)",
            );
        }
        self.validate_prm()?;
        self.validate_evolver()?;
        self.validate_scheduler()?;
        self.validate_curator()?;
        self.validate_rl()?;
        self.validate_opd()?;
        let idle = self.session.idle_timeout_minutes;
        if !(idle > 0.0 && idle <= 10_080.0) {
            return invalid(
                "session.idle_timeout_minutes",
                "a number of minutes greater than 0 and at most 10080 (a week)",
            );
        }
        Ok(())
    }
}

impl Config {
    fn validate_prm(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, allowed: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                allowed: allowed.to_string(),
            })
        };
        let prm = &self.prm;
        if prm.enabled && prm.model.trim().is_empty() {
            return invalid(
                "prm.model",
                "the judge model's name when prm.enabled is true (set prm.model first)",
            );
        }
        if !prm.base_url.is_empty() {
            match reqwest::Url::parse(&prm.base_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => {
                    return invalid(
                        "prm.base_url",
                        "an http:// or https:// URL of an OpenAI-compatible API such as https://api.openai.com/v1",
                    )
                }
            }
        }
        if !(1..=9).contains(&prm.votes) {
            return invalid("prm.votes", "a whole number from 1 to 9");
        }
        if !(0.0..=2.0).contains(&prm.temperature) {
            return invalid("prm.temperature", "a number from 0 to 2");
        }
        if !(prm.timeout_secs > 0.0 && prm.timeout_secs <= 3_600.0) {
            return invalid(
                "prm.timeout_secs",
                "a number of seconds greater than 0 and at most 3600",
            );
        }
        if !(1..=64).contains(&prm.concurrency) {
            return invalid("prm.concurrency", "a whole number from 1 to 64");
        }
        Ok(())
    }
}

impl Config {
    fn validate_evolver(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, allowed: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                allowed: allowed.to_string(),
            })
        };
        let evolver = &self.evolver;
        if evolver.enabled
            && evolver.model.trim().is_empty()
            && self.upstream.model.trim().is_empty()
        {
            return invalid(
                "evolver.model",
                "the evolver model's name when evolver.enabled is true and upstream.model is empty (set evolver.model first)",
            );
        }
        if !evolver.base_url.is_empty() {
            match reqwest::Url::parse(&evolver.base_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => {
                    return invalid(
                        "evolver.base_url",
                        "an http:// or https:// URL of an OpenAI-compatible API such as https://api.openai.com/v1",
                    )
                }
            }
        }
        if !(1..=1000).contains(&evolver.every_n_turns) {
            return invalid("evolver.every_n_turns", "a whole number from 1 to 1000");
        }
        if !(1..=10).contains(&evolver.max_new_skills) {
            return invalid("evolver.max_new_skills", "a whole number from 1 to 10");
        }
        if !(0.0..=1.0).contains(&evolver.failure_threshold) {
            return invalid(
                "evolver.failure_threshold",
                "a number from 0 to 1 (0 turns the low-success trigger off)",
            );
        }
        if !(evolver.timeout_secs > 0.0 && evolver.timeout_secs <= 3_600.0) {
            return invalid(
                "evolver.timeout_secs",
                "a number of seconds greater than 0 and at most 3600",
            );
        }
        Ok(())
    }
}

impl Config {
    fn validate_scheduler(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, allowed: String| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                allowed,
            })
        };
        let scheduler = &self.scheduler;
        let (start, end) = (scheduler.sleep_start.trim(), scheduler.sleep_end.trim());
        if !start.is_empty() && !end.is_empty() {
            if let Err(e) = SleepHours::parse(start, end) {
                let key = if start.parse::<metaclaw_schedule::WallTime>().is_err() {
                    "scheduler.sleep_start"
                } else {
                    "scheduler.sleep_end"
                };
                return invalid(
                    key,
                    format!("a local time such as 23:00 or 07:30, or empty to turn sleep hours off ({e})"),
                );
            }
        }
        let idle = scheduler.idle_threshold_minutes;
        if !(1.0 / 60.0..=1_440.0).contains(&idle) {
            return invalid(
                "scheduler.idle_threshold_minutes",
                "a number of minutes from 1/60 (one second) to 1440".into(),
            );
        }
        let min_window = scheduler.min_window_minutes;
        if !(0.0..=1_440.0).contains(&min_window) {
            return invalid(
                "scheduler.min_window_minutes",
                "a number of minutes from 0 to 1440".into(),
            );
        }
        let refresh = scheduler.calendar_refresh_minutes;
        if !(1.0..=10_080.0).contains(&refresh) {
            return invalid(
                "scheduler.calendar_refresh_minutes",
                "a number of minutes from 1 to 10080 (a week)".into(),
            );
        }
        for source in &scheduler.calendars {
            if source.trim().is_empty() {
                return invalid(
                    "scheduler.calendars",
                    "a list of .ics files, folders or http(s)/webcal URLs, without empty entries"
                        .into(),
                );
            }
            if let SourceSpec::Url(url) = SourceSpec::parse(source) {
                if reqwest::Url::parse(&url).map_or(true, |u| u.host().is_none()) {
                    return invalid(
                        "scheduler.calendars",
                        format!("valid URLs; `{}` is not one", SourceSpec::parse(source)),
                    );
                }
            }
        }
        if !scheduler.timezone.trim().is_empty() && zone_by_name(&scheduler.timezone).is_none() {
            return invalid(
                "scheduler.timezone",
                "an IANA time zone such as Europe/Berlin, or empty for the system's".into(),
            );
        }
        Ok(())
    }
}

/// Environment variables for an upstream kind: key, base URL, official endpoint.
fn env_names(api: Dialect) -> (&'static str, &'static str, &'static str) {
    match api {
        Dialect::OpenAi => (
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "https://api.openai.com/v1",
        ),
        Dialect::Anthropic => (
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "https://api.anthropic.com",
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: must be {allowed}")]
    Invalid { key: String, allowed: String },
    #[error("unknown config key `{key}`; known keys: {known}")]
    UnknownKey { key: String, known: String },
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.proxy.host, "127.0.0.1");
        assert_eq!(config.proxy.port, 30000);
        assert_eq!(config.skills.top_k, 6);
    }

    #[test]
    fn upstream_is_unconfigured_without_url_or_key() {
        assert_eq!(Config::default().resolve_upstream(&no_env), None);
    }

    #[test]
    fn environment_fills_gaps_but_config_wins() {
        let env = |name: &str| match name {
            "OPENAI_API_KEY" => Some("sk-env".to_string()),
            _ => None,
        };
        let mut config = Config::default();
        let resolved = config.resolve_upstream(&env).unwrap();
        assert_eq!(resolved.base_url, "https://api.openai.com/v1");
        assert_eq!(resolved.api_key.expose(), "sk-env");

        config.upstream.base_url = "http://127.0.0.1:9/v1/".into();
        config.upstream.api_key = Secret::new("sk-config");
        let resolved = config.resolve_upstream(&env).unwrap();
        assert_eq!(resolved.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(resolved.api_key.expose(), "sk-config");
    }

    #[test]
    fn anthropic_reads_its_own_variables() {
        let env = |name: &str| (name == "ANTHROPIC_API_KEY").then(|| "ak".to_string());
        let mut config = Config::default();
        config.upstream.api = Dialect::Anthropic;
        let resolved = config.resolve_upstream(&env).unwrap();
        assert_eq!(resolved.base_url, "https://api.anthropic.com");
    }

    #[test]
    fn prm_needs_a_model_and_sane_numbers() {
        let mut config = Config::default();
        assert_eq!((config.prm.votes, config.prm.concurrency), (3, 4));
        config.prm.enabled = true;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.starts_with("prm.model: must be"), "{message}");
        config.prm.model = "judge".into();
        config.validate().unwrap();
        for (key, edit) in [
            (
                "prm.votes",
                (|c: &mut Config| c.prm.votes = 10) as fn(&mut Config),
            ),
            ("prm.temperature", |c| c.prm.temperature = 2.5),
            ("prm.timeout_secs", |c| c.prm.timeout_secs = 0.0),
            ("prm.concurrency", |c| c.prm.concurrency = 0),
            ("prm.base_url", |c| c.prm.base_url = "judge.local".into()),
        ] {
            let mut bad = config.clone();
            edit(&mut bad);
            let message = bad.validate().unwrap_err().to_string();
            assert!(message.starts_with(key), "{message}");
        }
    }

    #[test]
    fn prm_reuses_the_upstream_but_never_sends_its_key_elsewhere() {
        let mut config = Config::default();
        config.upstream.base_url = "http://up.local/v1".into();
        config.upstream.api_key = Secret::new("sk-up");
        let upstream = config.resolve_upstream(&no_env);
        assert_eq!(config.resolve_prm(upstream.as_ref()), None, "disabled");
        config.prm.enabled = true;
        config.prm.model = "judge".into();
        let prm = config.resolve_prm(upstream.as_ref()).unwrap();
        assert_eq!(prm.base_url, "http://up.local/v1");
        assert_eq!(prm.api_key.expose(), "sk-up");

        config.prm.base_url = "http://judge.local/v1/".into();
        let prm = config.resolve_prm(upstream.as_ref()).unwrap();
        assert_eq!(prm.base_url, "http://judge.local/v1");
        assert!(prm.api_key.is_empty());
        config.prm.api_key = Secret::new("sk-judge");
        let prm = config.resolve_prm(upstream.as_ref()).unwrap();
        assert_eq!(prm.api_key.expose(), "sk-judge");

        // An Anthropic upstream cannot judge in the OpenAI wire format.
        config.prm.base_url.clear();
        config.upstream.api = Dialect::Anthropic;
        let upstream = config.resolve_upstream(&no_env);
        assert_eq!(config.resolve_prm(upstream.as_ref()), None);
    }

    #[test]
    fn evolver_defaults_to_the_upstream_model_and_checks_its_numbers() {
        let mut config = Config::default();
        assert_eq!(config.skills.review, ReviewMode::Auto);
        assert_eq!(
            (
                config.evolver.every_n_turns,
                config.evolver.max_new_skills,
                config.evolver.failure_threshold
            ),
            (10, 3, 0.4)
        );
        config.upstream.base_url = "http://up.local/v1".into();
        config.upstream.api_key = Secret::new("sk-up");
        config.evolver.enabled = true;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.starts_with("evolver.model: must be"), "{message}");
        config.upstream.model = "gpt-up".into();
        config.validate().unwrap();
        let upstream = config.resolve_upstream(&no_env);
        let evolver = config.resolve_evolver(upstream.as_ref()).unwrap();
        assert_eq!(
            (evolver.base_url.as_str(), evolver.model.as_str()),
            ("http://up.local/v1", "gpt-up")
        );
        assert_eq!(evolver.api_key.expose(), "sk-up");
        // Another host never gets the upstream's key.
        config.evolver.base_url = "http://evolver.local/v1".into();
        config.evolver.model = "writer".into();
        let evolver = config.resolve_evolver(upstream.as_ref()).unwrap();
        assert!(evolver.api_key.is_empty());
        assert_eq!(evolver.model, "writer");
        for (key, edit) in [
            (
                "evolver.every_n_turns",
                (|c: &mut Config| c.evolver.every_n_turns = 0) as fn(&mut Config),
            ),
            ("evolver.max_new_skills", |c| c.evolver.max_new_skills = 11),
            ("evolver.failure_threshold", |c| {
                c.evolver.failure_threshold = 1.5
            }),
            ("evolver.timeout_secs", |c| c.evolver.timeout_secs = 0.0),
            ("evolver.base_url", |c| c.evolver.base_url = "x".into()),
        ] {
            let mut bad = config.clone();
            edit(&mut bad);
            let message = bad.validate().unwrap_err().to_string();
            assert!(message.starts_with(key), "{message}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = Config::default();
        config.skills.top_k = 0;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.starts_with("skills.top_k: must be"), "{message}");

        let mut config = Config::default();
        config.upstream.base_url = "ftp://example.com".into();
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("upstream.base_url"));

        let mut config = Config::default();
        config.proxy.host = "not a host".into();
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("proxy.host"));
    }
}
