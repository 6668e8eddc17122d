//! `rl.tokenizer` as a model id (`Qwen/Qwen3-4B-Instruct-2507`): the base
//! model's tokenizer and chat-template files, downloaded once from a
//! Hugging Face-compatible hub into the cache folder and read from there
//! ever after, so the policy loads offline.
//!
//! The hub serves a file at `{hub}/{model}/resolve/{revision}/{file}`,
//! often as a redirect to a CDN (large files live in LFS/Xet storage). Its
//! errors carry an `X-Error-Code` header (`RepoNotFound`, `GatedRepo`,
//! `EntryNotFound`, `RevisionNotFound`), which the messages here are built
//! from. The hub's token goes only to the hub: `reqwest` drops the
//! `Authorization` header when a redirect leaves the hub's host.
//!
//! A model's files land in a temporary folder first and become the cache
//! folder with one rename once all of them arrived and load, so a cut
//! download never leaves a half-filled cache behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use metaclaw_policy::{ChatCodec, PolicyError};
use reqwest::StatusCode;

use crate::config::RlConfig;
use crate::secret::Secret;

/// The hub when neither `rl.hub_url` nor `HF_ENDPOINT` says otherwise.
pub const DEFAULT_HUB: &str = "https://huggingface.co";
/// The environment variable `huggingface_hub` reads for a mirror.
pub const HUB_ENDPOINT_ENV: &str = "HF_ENDPOINT";
/// The environment variable `huggingface_hub` reads for a token.
pub const HUB_TOKEN_ENV: &str = "HF_TOKEN";

/// Files the policy cannot load without.
const REQUIRED: [&str; 2] = ["tokenizer.json", "tokenizer_config.json"];
/// Files some models have (a 404 is fine).
const OPTIONAL: [&str; 3] = [
    "chat_template.jinja",
    "special_tokens_map.json",
    "generation_config.json",
];

/// `tokenizer.json` of a large vocabulary is ~10 MB; a slow link needs time.
const FILE_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A model on the hub and the revision (branch, tag or commit) to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubModel {
    pub repo: String,
    pub revision: String,
}

impl HubModel {
    /// `org/name` or `org/name@revision`; `None` when `text` is not shaped
    /// like a model id (a path such as `/models/qwen`, `./qwen` or `a/b/c`).
    ///
    /// ```
    /// # use metaclaw_engine::proxy::HubModel;
    /// let m = HubModel::parse("Qwen/Qwen3-4B-Instruct-2507").unwrap();
    /// assert_eq!((m.repo.as_str(), m.revision.as_str()), ("Qwen/Qwen3-4B-Instruct-2507", "main"));
    /// assert_eq!(HubModel::parse("org/name@v1.0").unwrap().revision, "v1.0");
    /// assert!(HubModel::parse("/models/qwen").is_none());
    /// assert!(HubModel::parse("../qwen").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<HubModel> {
        let text = text.trim();
        let (repo, revision) = match text.split_once('@') {
            Some((repo, revision)) => (repo, revision),
            None => (text, "main"),
        };
        let name_ok = |part: &str| {
            !part.is_empty()
                && part.len() <= 96
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && !part.contains("..")
                && !part.contains("--")
        };
        let (org, name) = repo.split_once('/')?;
        let revision_ok = !revision.is_empty()
            && revision.len() <= 255
            && !revision.contains("..")
            && revision
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        (name_ok(org) && name_ok(name) && revision_ok).then(|| HubModel {
            repo: repo.to_owned(),
            revision: revision.to_owned(),
        })
    }

    /// The cache folder's name: `org--name`, plus `@revision` (slashes
    /// escaped) for anything but `main`. Model ids never hold `--`, so
    /// names never collide.
    pub fn folder_name(&self) -> String {
        let base = self.repo.replace('/', "--");
        if self.revision == "main" {
            base
        } else {
            format!("{base}@{}", self.revision.replace('/', "%2F"))
        }
    }

    fn url(&self, hub: &str, file: &str) -> String {
        format!(
            "{hub}/{}/resolve/{}/{file}",
            self.repo,
            self.revision.replace('/', "%2F")
        )
    }
}

/// Where model ids are downloaded from, and the token sent there.
#[derive(Debug, Clone)]
pub struct Hub {
    pub base_url: String,
    pub token: Secret,
}

impl Hub {
    /// `rl.hub_url`, else `HF_ENDPOINT`, else [`DEFAULT_HUB`]; the token
    /// is `rl.hub_token`, else `HF_TOKEN`.
    pub fn from_config(rl: &RlConfig, env: &dyn Fn(&str) -> Option<String>) -> Hub {
        let base_url = [Some(rl.hub_url.clone()), env(HUB_ENDPOINT_ENV)]
            .into_iter()
            .flatten()
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .find(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_HUB.to_owned());
        let token = if rl.hub_token.is_empty() {
            Secret::new(env(HUB_TOKEN_ENV).unwrap_or_default().trim())
        } else {
            rl.hub_token.clone()
        };
        Hub { base_url, token }
    }
}

/// Why the tokenizer of a model id is not available.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "cannot reach {hub} to download the tokenizer of {repo} ({reason}), and it is not \
         cached in {cache}: connect once, or point rl.tokenizer at a local folder"
    )]
    Unreachable {
        hub: String,
        repo: String,
        cache: PathBuf,
        reason: String,
    },
    #[error(
        "{repo} is a gated model on {hub}: accept its terms on {hub}/{repo} with your account, \
         then set rl.hub_token (or HF_TOKEN) to an access token of that account{}",
        if *token_sent { " (the token sent has no access yet)" } else { "" }
    )]
    Gated {
        hub: String,
        repo: String,
        token_sent: bool,
    },
    #[error(
        "no model {repo} on {hub}{}; check rl.tokenizer (a model id such as \
         Qwen/Qwen3-4B-Instruct-2507, or a local folder)",
        if *token_sent { "" } else { " (or it is private: set rl.hub_token or HF_TOKEN)" }
    )]
    RepoNotFound {
        hub: String,
        repo: String,
        token_sent: bool,
    },
    #[error("{repo} has no revision {revision} on {hub}")]
    RevisionNotFound {
        hub: String,
        repo: String,
        revision: String,
    },
    #[error("{hub} refused the access token (rl.hub_token or HF_TOKEN) for {repo}: {message}")]
    Unauthorized {
        hub: String,
        repo: String,
        message: String,
    },
    #[error(
        "{repo} on {hub} has no {file}, which the policy needs (is it a model with a tokenizer?)"
    )]
    FileMissing {
        hub: String,
        repo: String,
        file: String,
    },
    #[error("downloading {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the files downloaded for {repo} do not load: {source}")]
    Unusable {
        repo: String,
        #[source]
        source: PolicyError,
    },
    #[error("cannot write the tokenizer cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The folder the tokenizer loads from: `setting` itself when it is a
/// folder (or not shaped like a model id), else the model's cache folder
/// under `cache_root`, downloaded first when it is not there. Blocking: a
/// download runs on a thread of its own, so this may be called from
/// anywhere, inside an async runtime too.
pub fn tokenizer_folder(setting: &str, hub: &Hub, cache_root: &Path) -> Result<PathBuf, HubError> {
    let path = PathBuf::from(setting.trim());
    let model = match HubModel::parse(setting) {
        Some(model) if !path.is_dir() => model,
        _ => return Ok(path),
    };
    if let Some(cached) = cached(&model, cache_root) {
        return Ok(cached);
    }
    let (hub, cache_root) = (hub.clone(), cache_root.to_path_buf());
    let download = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| HubError::Io {
                path: cache_root.clone(),
                source,
            })?;
        runtime.block_on(fetch_model(&hub, &model, &cache_root))
    });
    download.join().unwrap_or_else(|_| {
        Err(HubError::Io {
            path: PathBuf::from(setting),
            source: std::io::Error::other("the download thread panicked"),
        })
    })
}

/// The model's cache folder when it holds the required files.
pub fn cached(model: &HubModel, cache_root: &Path) -> Option<PathBuf> {
    let folder = cache_root.join(model.folder_name());
    REQUIRED
        .iter()
        .all(|file| folder.join(file).is_file())
        .then_some(folder)
}

/// The model's cache folder, downloaded when missing.
pub async fn fetch_model(
    hub: &Hub,
    model: &HubModel,
    cache_root: &Path,
) -> Result<PathBuf, HubError> {
    if let Some(cached) = cached(model, cache_root) {
        return Ok(cached);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HubError::Io { path, source }
    };
    std::fs::create_dir_all(cache_root).map_err(io(cache_root))?;
    let folder = cache_root.join(model.folder_name());
    let partial = cache_root.join(format!(
        ".partial-{}-{}",
        model.folder_name(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&partial).map_err(io(&partial))?;
    let result = download_into(hub, model, cache_root, &partial).await;
    let outcome = match result {
        Ok(()) => match std::fs::rename(&partial, &folder) {
            Ok(()) => Ok(folder),
            // Another process finished the same download first.
            Err(_) if cached(model, cache_root).is_some() => Ok(folder),
            Err(source) => Err(HubError::Io {
                path: folder,
                source,
            }),
        },
        Err(error) => Err(error),
    };
    if partial.exists() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    if let Ok(folder) = &outcome {
        tracing::info!(model = %model.repo, folder = %folder.display(), "the base model's tokenizer is cached");
    }
    outcome
}

async fn download_into(
    hub: &Hub,
    model: &HubModel,
    cache_root: &Path,
    partial: &Path,
) -> Result<(), HubError> {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(FILE_TIMEOUT)
        .user_agent(concat!("metaclaw/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| unreachable_hub(hub, model, cache_root, &e))?;
    for (file, required) in REQUIRED
        .iter()
        .map(|f| (*f, true))
        .chain(OPTIONAL.iter().map(|f| (*f, false)))
    {
        let url = model.url(&hub.base_url, file);
        let mut request = client.get(&url);
        if !hub.token.is_empty() {
            request = request.bearer_auth(hub.token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable_hub(hub, model, cache_root, &e))?;
        let status = response.status();
        if !status.is_success() {
            let code = header(&response, "x-error-code");
            let message = header(&response, "x-error-message");
            match refusal(hub, model, file, status, &code, message) {
                Refusal::Missing if !required => continue,
                Refusal::Missing => {
                    return Err(HubError::FileMissing {
                        hub: hub.base_url.clone(),
                        repo: model.repo.clone(),
                        file: file.to_owned(),
                    })
                }
                Refusal::Error(error) => return Err(error),
            }
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable_hub(hub, model, cache_root, &e))?;
        let path = partial.join(file);
        std::fs::write(&path, &body).map_err(|source| HubError::Io { path, source })?;
    }
    // A hub that answered 200 with something else (an HTML login page, a
    // truncated file) must not become the cache that is read forever.
    ChatCodec::load(partial).map_err(|source| HubError::Unusable {
        repo: model.repo.clone(),
        source,
    })?;
    Ok(())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn unreachable_hub(
    hub: &Hub,
    model: &HubModel,
    cache_root: &Path,
    error: &reqwest::Error,
) -> HubError {
    // The chain of sources says what failed (DNS, refused, timed out).
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        reason = format!("{reason}: {inner}");
        source = inner.source();
    }
    HubError::Unreachable {
        hub: hub.base_url.clone(),
        repo: model.repo.clone(),
        cache: cache_root.join(model.folder_name()),
        reason,
    }
}

/// A non-success answer for one file.
enum Refusal {
    /// The file does not exist in an existing model (fine when optional).
    Missing,
    Error(HubError),
}

/// What an error answer means, from its status and `X-Error-Code`, the way
/// `huggingface_hub` reads them.
fn refusal(
    hub: &Hub,
    model: &HubModel,
    file: &str,
    status: StatusCode,
    code: &str,
    message: String,
) -> Refusal {
    let (hub_url, repo) = (hub.base_url.clone(), model.repo.clone());
    let token_sent = !hub.token.is_empty();
    Refusal::Error(match (code, status.as_u16()) {
        ("EntryNotFound", _) | ("", 404) => return Refusal::Missing,
        ("GatedRepo", _) => HubError::Gated {
            hub: hub_url,
            repo,
            token_sent,
        },
        ("RepoNotFound", _) => HubError::RepoNotFound {
            hub: hub_url,
            repo,
            token_sent,
        },
        ("RevisionNotFound", _) => HubError::RevisionNotFound {
            hub: hub_url,
            repo,
            revision: model.revision.clone(),
        },
        (_, 401 | 403) if token_sent => HubError::Unauthorized {
            hub: hub_url,
            repo,
            message: if message.is_empty() {
                format!("HTTP {}", status.as_u16())
            } else {
                message
            },
        },
        // Anonymous and refused: private, or a model that does not exist.
        (_, 401 | 403) => HubError::RepoNotFound {
            hub: hub_url,
            repo,
            token_sent,
        },
        (_, status) => HubError::Status {
            url: model.url(&hub.base_url, file),
            status,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_and_paths_are_told_apart() {
        for id in [
            "Qwen/Qwen3-4B-Instruct-2507",
            "meta-llama/Llama-3.1-8B",
            "a/b.c_d",
        ] {
            assert_eq!(HubModel::parse(id).unwrap().repo, id);
        }
        for not_id in [
            "/models/qwen",
            "./qwen/x",
            "qwen",
            "a/b/c",
            "a//b",
            "-a/b",
            "a/b c",
            "org/name@",
            "org/na--me",
            "C:\\models\\qwen",
        ] {
            assert_eq!(HubModel::parse(not_id), None, "{not_id}");
        }
        let pinned = HubModel::parse("org/name@refs/pr/1").unwrap();
        assert_eq!(pinned.folder_name(), "org--name@refs%2Fpr%2F1");
        assert_eq!(
            pinned.url("http://hub", "tokenizer.json"),
            "http://hub/org/name/resolve/refs%2Fpr%2F1/tokenizer.json"
        );
        assert_eq!(
            HubModel::parse("org/name").unwrap().folder_name(),
            "org--name"
        );
    }

    #[test]
    fn config_wins_over_the_environment() {
        let mut rl = RlConfig::default();
        let env = |name: &str| match name {
            HUB_ENDPOINT_ENV => Some("http://mirror.local/".to_owned()),
            HUB_TOKEN_ENV => Some("hf_env_token_0123456789".to_owned()),
            _ => None,
        };
        let hub = Hub::from_config(&rl, &env);
        assert_eq!(hub.base_url, "http://mirror.local");
        assert_eq!(hub.token.expose(), "hf_env_token_0123456789");
        let none = Hub::from_config(&rl, &|_| None);
        assert_eq!(none.base_url, DEFAULT_HUB);
        assert!(none.token.is_empty());
        rl.hub_url = "https://hub.example/".into();
        rl.hub_token = Secret::new("hf_config_token_0123456789");
        let hub = Hub::from_config(&rl, &env);
        assert_eq!(hub.base_url, "https://hub.example");
        assert_eq!(hub.token.expose(), "hf_config_token_0123456789");
    }

    #[test]
    fn a_path_is_used_as_it_is_without_the_network() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on port 9: a download attempt would fail.
        let hub = Hub {
            base_url: "http://127.0.0.1:9".into(),
            token: Secret::default(),
        };
        let folder = dir.path().join("model");
        std::fs::create_dir(&folder).unwrap();
        let setting = folder.display().to_string();
        assert_eq!(
            tokenizer_folder(&setting, &hub, dir.path()).unwrap(),
            folder
        );
        assert_eq!(
            tokenizer_folder("/no/such/folder", &hub, dir.path()).unwrap(),
            PathBuf::from("/no/such/folder")
        );
    }
}
