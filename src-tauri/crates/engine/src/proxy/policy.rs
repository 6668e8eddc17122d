//! The policy the proxy answers main turns with in `rl`/`auto`: the base
//! model's chat codec (loaded once, at engine start) and the samplers of
//! the policy versions in use. A session keeps the sampler it started
//! with, so its behaviour never changes mid-conversation; new sessions get
//! the newest one, which the trainer publishes after each step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use metaclaw_policy::{ChatCodec, PolicyError};
use metaclaw_tinker::{SamplerPath, SamplerSource, TinkerClient, TinkerConfig, TinkerError};

use super::policy_hub::{tokenizer_folder, Hub, HubError};
use crate::config::RlConfig;
use crate::train::{PolicyPublisher, PolicySampler, TrainSettings};

/// Why the policy cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error(
        "rl.tokenizer: cannot load the base model's tokenizer from {dir}: {source} \
         (point rl.tokenizer at a local folder with tokenizer.json and tokenizer_config.json, \
         or at a model id such as Qwen/Qwen3-4B-Instruct-2507 to download them once)"
    )]
    Tokenizer {
        dir: PathBuf,
        #[source]
        source: PolicyError,
    },
    /// `rl.tokenizer` names a model id whose files are not cached and
    /// could not be downloaded.
    #[error("rl.tokenizer: {0}")]
    Hub(#[from] HubError),
    #[error("{0}")]
    Settings(String),
}

/// The codec and the samplers of the policy being trained.
pub struct PolicyRegistry {
    codec: ChatCodec,
    service: TinkerConfig,
    base_model: String,
    /// `rl.max_tokens`: the answer length when the client sets none.
    pub max_tokens: u32,
    /// The newest policy; `None` until the base sampler is opened or the
    /// trainer publishes one.
    newest: PolicyPublisher,
    /// The sampler each live session started with.
    sessions: Mutex<HashMap<String, Arc<PolicySampler>>>,
    /// Held while the first sampler is opened, so concurrent first
    /// requests open one sampler, not several.
    opening: tokio::sync::Mutex<()>,
    /// The newest saved sampler weights and their policy version, so a
    /// restart goes on answering with the trained policy, not the base model.
    resume: Option<(i64, String)>,
}

impl PolicyRegistry {
    /// Loads the chat codec from `rl.tokenizer`: a folder, or a model id
    /// whose files are downloaded into `tokenizer_cache` the first time
    /// (with `env` for `HF_ENDPOINT` / `HF_TOKEN`). The training service is
    /// not contacted yet (it is reached at the first request that needs it).
    pub fn open(
        rl: &RlConfig,
        tokenizer_cache: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PolicyRegistry, PolicyLoadError> {
        let settings =
            TrainSettings::from_config(rl).map_err(|e| PolicyLoadError::Settings(e.to_string()))?;
        let hub = Hub::from_config(rl, env);
        let dir = tokenizer_folder(&rl.tokenizer, &hub, tokenizer_cache)?;
        let codec =
            ChatCodec::load(&dir).map_err(|source| PolicyLoadError::Tokenizer { dir, source })?;
        Ok(PolicyRegistry::new(
            codec,
            settings.service,
            settings.base_model,
            rl.max_tokens,
        ))
    }

    pub fn new(
        codec: ChatCodec,
        service: TinkerConfig,
        base_model: String,
        max_tokens: u32,
    ) -> PolicyRegistry {
        PolicyRegistry {
            codec,
            service,
            base_model,
            max_tokens,
            newest: tokio::sync::watch::Sender::new(None),
            sessions: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
            resume: None,
        }
    }

    /// Starts from saved sampler weights (`tinker://…`) of policy `version`
    /// instead of the base model.
    pub fn resuming(mut self, version: i64, path: String) -> Self {
        self.resume = Some((version, path));
        self
    }

    pub fn codec(&self) -> &ChatCodec {
        &self.codec
    }

    /// The channel the trainer announces new policies on.
    pub fn publisher(&self) -> PolicyPublisher {
        self.newest.clone()
    }

    /// The policy version `session_id` samples from, if it has one yet.
    pub fn session_version(&self, session_id: &str) -> Option<i64> {
        self.lock().get(session_id).map(|p| p.version)
    }

    /// The sampler of `session_id`: the one it started with, or (a new
    /// session) the newest.
    pub async fn sampler_for(&self, session_id: &str) -> Result<Arc<PolicySampler>, TinkerError> {
        if let Some(known) = self.lock().get(session_id) {
            return Ok(known.clone());
        }
        let newest = self.newest().await?;
        // Another request of the same session may have got here first.
        Ok(self
            .lock()
            .entry(session_id.to_string())
            .or_insert(newest)
            .clone())
    }

    /// A session ended: its sampler may go once no one else uses it.
    pub fn forget(&self, session_id: &str) {
        self.lock().remove(session_id);
    }

    /// The newest published sampler, or else the saved one to resume from or
    /// the base model's, opened once.
    async fn newest(&self) -> Result<Arc<PolicySampler>, TinkerError> {
        if let Some(newest) = self.newest.borrow().clone() {
            return Ok(newest);
        }
        let _opening = self.opening.lock().await;
        if let Some(newest) = self.newest.borrow().clone() {
            return Ok(newest);
        }
        // The sampler keeps the service session (and its heartbeat) alive.
        let session = TinkerClient::connect(self.service.clone()).await?;
        let (version, source) = match &self.resume {
            Some((version, path)) => (
                *version,
                SamplerSource::Path(SamplerPath::new(path.clone())?),
            ),
            None => (0, SamplerSource::BaseModel(self.base_model.clone())),
        };
        let sampler = session.sampler(source).await?;
        let base = Arc::new(PolicySampler { version, sampler });
        // The trainer may have published meanwhile: the newer one wins.
        self.newest.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(base.clone());
                true
            } else {
                false
            }
        });
        Ok(self.newest.borrow().clone().unwrap_or(base))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<PolicySampler>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
