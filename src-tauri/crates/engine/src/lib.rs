//! MetaClaw's engine: configuration, the learning proxy, the skill library,
//! the store and the session tracker, wired together. The CLI and the tray
//! app are thin shells over this crate; it never depends on a GUI.

pub mod api;
pub mod config;
pub mod curate;
pub mod events;
pub mod evolve;
mod fsutil;
mod learning;
pub mod logging;
mod model_client;
pub mod paths;
pub mod prm;
pub mod proxy;
pub mod schedule;
pub mod secret;
pub mod session;
pub mod settings;
pub mod skill_actions;
pub mod status;
pub mod train;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metaclaw_skills::{install_bundled, LibraryWatcher, SkillLibrary};
use metaclaw_store::Store;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::events::EventBus;
use crate::evolve::Evolver;
use crate::paths::AppPaths;
use crate::prm::Judge;
use crate::proxy::ProxyState;
use crate::session::SessionTracker;
use crate::upstream::UpstreamClient;

/// How long in-flight requests (an endless stream, say) may delay shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Paths(#[from] paths::PathsError),
    #[error("skill library: {0}")]
    Skills(#[from] metaclaw_skills::SkillError),
    #[error("database: {0}")]
    Store(#[from] metaclaw_store::StoreError),
    #[error(transparent)]
    Upstream(#[from] upstream::UpstreamError),
    #[error(transparent)]
    Policy(#[from] proxy::PolicyLoadError),
    #[error(transparent)]
    LearningModel(#[from] model_client::ModelClientError),
    #[error("cannot listen on {addr}: {source} (is another metaclaw running? choose another port with --port)")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the proxy stopped unexpectedly: {0}")]
    Serve(std::io::Error),
    #[error("cannot start the learning thread: {0}")]
    Learning(std::io::Error),
}

/// A running engine: everything `metaclaw serve` (and later the tray) needs.
pub struct Engine {
    state: Arc<ProxyState>,
    /// The PRM judge, when enabled; runs as a background task while serving.
    judge: Option<Judge>,
    /// The skill evolver, when enabled; runs as a background task while serving.
    evolver: Option<Evolver>,
    paths: AppPaths,
    _watcher: Option<LibraryWatcher>,
}

impl Engine {
    /// Opens the skill library (seeding the starter bank into the default
    /// library on first run), the store and the upstream client.
    pub fn open(paths: &AppPaths, config: Config) -> Result<Engine, EngineError> {
        let library = open_library(paths, &config)?;
        let snapshot = library.snapshot();
        tracing::info!(dir = %library.dir().display(), skills = snapshot.len(), problems = snapshot.problems().len(), "skill library loaded");
        for problem in snapshot.problems() {
            tracing::warn!(path = %problem.path.display(), reason = %problem.reason, "skipped a broken skill");
        }
        let watcher = match library.watch() {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "cannot watch the skill library; edits apply after a restart");
                None
            }
        };

        let store = Store::open(&paths.database())?;
        let skill_generation = store.reader()?.skill_generation()?;
        let resolved = config.resolve_upstream(&env_var);
        let judge = Judge::from_config(&config, resolved.as_ref())?;
        let evolver = Evolver::from_config(&config, resolved.as_ref())?;
        let upstream = match resolved {
            Some(target) => Some(UpstreamClient::new(
                target,
                Duration::from_secs_f64(config.upstream.timeout_secs),
                Duration::from_secs_f64(config.upstream.connect_timeout_secs),
            )?),
            None => {
                tracing::warn!(
                    "no upstream configured: requests get 503 until upstream.base_url is set"
                );
                None
            }
        };
        // In rl/auto the policy answers main turns: its tokenizer must load
        // now, not at the first request.
        let policy = if config.trains() {
            let mut policy =
                proxy::PolicyRegistry::open(&config.rl, &paths.tokenizer_cache_dir(), &env_var)?;
            if let Some((version, path)) = train::newest_saved_sampler(&store.reader()?)? {
                tracing::info!(version, "answering with the saved policy");
                policy = policy.resuming(version, path);
            }
            tracing::info!(tokenizer = %config.rl.tokenizer, model = %config.rl.model, "main turns are answered by the policy being trained");
            Some(Arc::new(policy))
        } else {
            None
        };
        let sessions = Arc::new(SessionTracker::new(Duration::from_secs_f64(
            config.session.idle_timeout_minutes * 60.0,
        )));
        let admin_token = match api::AdminToken::load_or_create(paths) {
            Ok(token) => Some(token),
            Err(error) => {
                tracing::warn!(%error, path = %paths.admin_token_file().display(), "cannot create the admin token; the /api endpoints are unavailable");
                None
            }
        };
        let state = Arc::new(
            ProxyState::new(
                config,
                upstream,
                library,
                store,
                sessions,
                EventBus::new(),
                skill_generation,
            )
            .with_admin_token(admin_token)
            .with_paths(paths.clone())
            .with_policy(policy),
        );
        Ok(Engine {
            state,
            judge,
            evolver,
            paths: paths.clone(),
            _watcher: watcher,
        })
    }

    pub fn state(&self) -> &Arc<ProxyState> {
        &self.state
    }

    pub fn skills_dir(&self) -> PathBuf {
        self.state.library.dir().to_path_buf()
    }

    pub async fn bind(addr: SocketAddr) -> Result<TcpListener, EngineError> {
        TcpListener::bind(addr)
            .await
            .map_err(|source| EngineError::Bind {
                addr: addr.to_string(),
                source,
            })
    }

    /// Serves the proxy until `shutdown` resolves, then ends open sessions and
    /// flushes the store so nothing recorded is lost.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), EngineError> {
        let sweeper = tokio::spawn(sweep_idle_sessions(self.state.clone()));
        // Learning runs off the request path, on a low-priority thread.
        let learning = learning::LearningRuntime::start().map_err(EngineError::Learning)?;
        // Judging only reads the store and the bus.
        let judging = self
            .judge
            .clone()
            .map(|judge| learning.spawn(prm::run(self.state.clone(), judge)));
        // The evolver reads the store and writes skill files.
        let evolving = self
            .evolver
            .clone()
            .map(|evolver| learning.spawn(evolve::run(self.state.clone(), evolver)));
        let (scheduler, scheduling) = schedule::start(
            &self.state.config,
            self.state.live_handle(),
            &self.paths,
            &self.state.store,
            &self.state.events,
            self.state.activity(),
        )
        .await?;
        self.state.set_scheduler(scheduler.clone());
        // A worker of the scheduler: it curates only while the user is away.
        let curating = self.state.config.curator.enabled.then(|| {
            learning.spawn(curate::run(
                self.state.clone(),
                curate::Curator::from_config(&self.state.config.curator),
                scheduler.worker(curate::WORKER),
                scheduler.clone(),
            ))
        });
        // The slow loop, in rl/auto: in auto a worker of the scheduler.
        let training = self.trainer().map(|trainer| {
            let worker = (self.state.config.mode == config::Mode::Auto)
                .then(|| scheduler.worker(train::WORKER));
            learning.spawn(train::run(self.state.clone(), trainer, worker))
        });
        let app = proxy::router(self.state.clone());
        let stopping = Arc::new(tokio::sync::Notify::new());
        let signal = {
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down");
                stopping.notify_one();
            }
        };
        let server = axum::serve(listener, app).with_graceful_shutdown(signal);
        let result = tokio::select! {
            result = server => result.map_err(EngineError::Serve),
            () = async { stopping.notified().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                tracing::warn!("in-flight requests did not finish within {} s; closing them", SHUTDOWN_GRACE.as_secs());
                Ok(())
            }
        };
        sweeper.abort();
        if let Some(curating) = curating {
            // Dropping its lease ends its work in the schedule's history; a
            // run cut short is redone in the next window.
            curating.abort();
            let _ = curating.await;
        }
        if let Some(training) = training {
            // A step cut short keeps its batch (pending in the store) and
            // starts over after the next start.
            training.abort();
            let _ = training.await;
        }
        scheduler.shutdown().await;
        for task in scheduling {
            task.abort();
        }
        if let Some(judging) = judging {
            // Unrecorded judgements are redone after the next start.
            judging.abort();
        }
        if let Some(evolving) = evolving {
            // Unconsumed turns are evolved at a later trigger.
            evolving.abort();
        }
        for ended in self.state.sessions.drain() {
            self.state.announce_end(ended, "shutdown");
        }
        self.state.store.flush().await?;
        result
    }
}

impl Engine {
    /// The trainer, in rl/auto mode with usable settings.
    fn trainer(&self) -> Option<train::Trainer> {
        if !self.state.config.trains() {
            return None;
        }
        match train::TrainSettings::from_config(&self.state.config.rl) {
            Ok(settings) => {
                let source = train::StoreExamples {
                    database: self.state.store.path().to_path_buf(),
                };
                let mut trainer =
                    train::Trainer::new(settings, self.state.store.clone(), Arc::new(source));
                if let Some(policy) = &self.state.policy {
                    trainer = trainer.with_publisher(policy.publisher());
                }
                match train::Teacher::from_config(&self.state.config.opd) {
                    Ok(Some(teacher)) => {
                        tracing::info!(teacher = %self.state.config.opd.teacher_model, "training distils from a teacher model (opd)");
                        trainer = trainer.with_teacher(teacher);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, "the trainer does not run");
                        return None;
                    }
                }
                Some(trainer)
            }
            Err(error) => {
                tracing::warn!(%error, "the trainer does not run");
                None
            }
        }
    }
}

/// Opens the configured skill library. The default library is seeded with
/// the starter bank on first run; a folder the user pointed us at is theirs
/// and holds exactly the skills they put there.
pub fn open_library(paths: &AppPaths, config: &Config) -> Result<SkillLibrary, EngineError> {
    let dir = config.skills_dir(paths);
    if config.skills.dir.is_empty() {
        let report = install_bundled(&dir)?;
        if !report.installed.is_empty() || !report.updated.is_empty() {
            tracing::info!(
                installed = report.installed.len(),
                updated = report.updated.len(),
                "starter skills installed"
            );
        }
    }
    Ok(SkillLibrary::open(&dir)?)
}

/// Ends sessions that went quiet. Ticks at a quarter of the timeout so an
/// idle session ends at most 25 % late, without polling faster than needed.
async fn sweep_idle_sessions(state: Arc<ProxyState>) {
    let period = (state.sessions.idle_timeout() / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(15));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for ended in state.sessions.sweep(Instant::now()) {
            state.announce_end(ended, "idle");
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Reads an environment variable; the one place the engine looks at them.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
