//! Resolves every directory and file the engine uses, in one place.
//!
//! `METACLAW_HOME=DIR` redirects all of them under `DIR`, so tests and power
//! users can run fully isolated instances.

use std::path::{Path, PathBuf};

/// Environment variable that puts config, secrets, database and skills under one folder.
pub const HOME_ENV: &str = "METACLAW_HOME";

#[derive(Clone, Debug)]
pub struct AppPaths {
    config_dir: PathBuf,
    data_dir: PathBuf,
    cache_dir: PathBuf,
}

impl AppPaths {
    /// `METACLAW_HOME` if set, else the platform's config and data directories.
    pub fn resolve() -> Result<AppPaths, PathsError> {
        if let Some(home) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(AppPaths::under(Path::new(&home)));
        }
        let dirs = directories::ProjectDirs::from("ai", "MetaClaw", "metaclaw")
            .ok_or(PathsError::NoHomeDirectory)?;
        Ok(AppPaths {
            config_dir: dirs.config_dir().to_path_buf(),
            data_dir: dirs.data_dir().to_path_buf(),
            cache_dir: dirs.cache_dir().to_path_buf(),
        })
    }

    /// Every path under one folder (what `METACLAW_HOME` selects).
    pub fn under(home: &Path) -> AppPaths {
        AppPaths {
            config_dir: home.to_path_buf(),
            data_dir: home.to_path_buf(),
            cache_dir: home.join("cache"),
        }
    }

    /// The folder of the config file, the secrets file and the admin token.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// Deleted skills are moved here, so nothing the user deletes is lost.
    pub fn skill_trash_dir(&self) -> PathBuf {
        self.data_dir.join("trash").join("skills")
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// The token that guards the `/api` endpoints (mode 0600).
    pub fn admin_token_file(&self) -> PathBuf {
        self.config_dir.join("admin-token")
    }

    /// Fallback secret storage (mode 0600) for API keys.
    pub fn secrets_file(&self) -> PathBuf {
        self.config_dir.join("secrets.toml")
    }

    pub fn database(&self) -> PathBuf {
        self.data_dir.join("metaclaw.db")
    }

    pub fn default_skills_dir(&self) -> PathBuf {
        self.data_dir.join("skills")
    }

    /// Last good copies of calendar subscriptions, so a start while offline
    /// still knows the user's meetings.
    pub fn calendar_cache_dir(&self) -> PathBuf {
        self.data_dir.join("calendar-cache")
    }

    /// Files fetched from the network that can be fetched again: the base
    /// model's tokenizer when `rl.tokenizer` names a model on the hub, one
    /// folder per model (`Qwen--Qwen3-4B-Instruct-2507`).
    pub fn tokenizer_cache_dir(&self) -> PathBuf {
        self.cache_dir.join("tokenizers")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("cannot find the home directory; set METACLAW_HOME to a folder for MetaClaw's files")]
    NoHomeDirectory,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_puts_everything_under_one_folder() {
        let paths = AppPaths::under(Path::new("/tmp/mc"));
        assert_eq!(paths.config_file(), Path::new("/tmp/mc/config.toml"));
        assert_eq!(paths.secrets_file(), Path::new("/tmp/mc/secrets.toml"));
        assert_eq!(paths.database(), Path::new("/tmp/mc/metaclaw.db"));
        assert_eq!(paths.default_skills_dir(), Path::new("/tmp/mc/skills"));
        assert_eq!(
            paths.calendar_cache_dir(),
            Path::new("/tmp/mc/calendar-cache")
        );
        assert_eq!(
            paths.tokenizer_cache_dir(),
            Path::new("/tmp/mc/cache/tokenizers")
        );
    }
}
