//! Sessions: the handshake, `create_session`, the 10-second heartbeat the
//! service needs to keep a session alive, and `finish`.
//!
//! The heartbeat is a background task that lives as long as the session or
//! any model or sampler made from it, and stops on `finish`, on the last
//! drop, or when the service says the session is gone (410).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::{TinkerConfig, PROTOCOL_SDK_VERSION};
use crate::error::TinkerError;
use crate::http::{Payload, Request, ServerFeatures, Transport};
use crate::retry::RetryPolicy;

/// After this long without a successful heartbeat the service is likely to
/// end the session; warn loudly.
const HEARTBEAT_WARNING_AFTER: Duration = Duration::from_secs(120);

/// Entry point: a connection to one Tinker-compatible service.
#[derive(Clone)]
pub struct TinkerClient {
    transport: Arc<Transport>,
    features: ServerFeatures,
}

impl std::fmt::Debug for TinkerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TinkerClient")
            .field("base_url", &self.transport.config.base_url)
            .field("features", &self.features)
            .finish()
    }
}

impl TinkerClient {
    /// Checks the settings, reads the service's feature flags
    /// (`client/config`) and, if the service wants it, exchanges the key
    /// for a JWT. A wrong key fails here.
    pub async fn new(config: TinkerConfig) -> Result<TinkerClient, TinkerError> {
        let transport = Arc::new(Transport::new(config)?);
        let features = transport.handshake().await?;
        Ok(TinkerClient {
            transport,
            features,
        })
    }

    /// [`TinkerClient::new`] followed by [`TinkerClient::create_session`].
    pub async fn connect(config: TinkerConfig) -> Result<TinkerSession, TinkerError> {
        TinkerClient::new(config).await?.create_session().await
    }

    /// The flags the service announced.
    pub fn features(&self) -> &ServerFeatures {
        &self.features
    }

    /// Opens a session and starts its heartbeat. Must run inside a Tokio
    /// runtime (the heartbeat is a spawned task).
    pub async fn create_session(&self) -> Result<TinkerSession, TinkerError> {
        let config = &self.transport.config;
        let body = CreateSessionRequest {
            tags: &config.tags,
            user_metadata: serde_json::Map::new(),
            sdk_version: PROTOCOL_SDK_VERSION,
            kind: "create_session",
            project_id: config.project_id.as_deref(),
        };
        let reply: CreateSessionReply = self
            .transport
            .post_json("create_session", &body, "create_session")
            .await?;
        for (level, message) in [
            ("info", &reply.info_message),
            ("warning", &reply.warning_message),
            ("error", &reply.error_message),
        ] {
            if let Some(message) = message {
                tracing::warn!("Tinker session {level}: {message}");
            }
        }
        tracing::info!(session_id = %reply.session_id, "Tinker session started");

        let cancel = CancellationToken::new();
        let (status_tx, status_rx) = watch::channel(HeartbeatStatus::default());
        let transport = self.transport.clone();
        let session_id = reply.session_id.clone();
        tokio::spawn(heartbeat_loop(
            config.heartbeat_interval,
            cancel.clone(),
            status_tx,
            move || send_heartbeat(transport.clone(), session_id.clone()),
        ));
        Ok(TinkerSession {
            shared: Arc::new(SessionShared {
                transport: self.transport.clone(),
                features: self.features.clone(),
                session_id: reply.session_id,
                next_model_seq: AtomicU64::new(0),
                next_sampling_seq: AtomicU64::new(0),
                heartbeat_cancel: cancel,
                heartbeat: status_rx,
            }),
        })
    }
}

#[derive(Serialize)]
struct CreateSessionRequest<'a> {
    tags: &'a [String],
    user_metadata: serde_json::Map<String, serde_json::Value>,
    sdk_version: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<&'a str>,
}

#[derive(Deserialize)]
struct CreateSessionReply {
    session_id: String,
    #[serde(default)]
    info_message: Option<String>,
    #[serde(default)]
    warning_message: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// State shared by a session and every model and sampler made from it.
pub(crate) struct SessionShared {
    pub transport: Arc<Transport>,
    pub features: ServerFeatures,
    pub session_id: String,
    /// Per-session counter of training models (`model_seq_id`).
    next_model_seq: AtomicU64,
    /// Per-session counter shared by `create_sampling_session` and the
    /// ephemeral `save_weights_for_sampler` (`sampling_session_seq_id`).
    next_sampling_seq: AtomicU64,
    heartbeat_cancel: CancellationToken,
    heartbeat: watch::Receiver<HeartbeatStatus>,
}

impl SessionShared {
    pub fn take_model_seq(&self) -> u64 {
        self.next_model_seq.fetch_add(1, Ordering::SeqCst)
    }

    pub fn take_sampling_seq(&self) -> u64 {
        self.next_sampling_seq.fetch_add(1, Ordering::SeqCst)
    }
}

impl Drop for SessionShared {
    fn drop(&mut self) {
        self.heartbeat_cancel.cancel();
    }
}

/// An open session. Models and samplers come from here.
pub struct TinkerSession {
    pub(crate) shared: Arc<SessionShared>,
}

impl std::fmt::Debug for TinkerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TinkerSession")
            .field("session_id", &self.shared.session_id)
            .finish()
    }
}

/// How a session ended, reported to the service on `finish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Success,
    Errored,
    Interrupted,
}

impl FinishReason {
    fn as_str(self) -> &'static str {
        match self {
            FinishReason::Success => "success",
            FinishReason::Errored => "errored",
            FinishReason::Interrupted => "interrupted",
        }
    }
}

impl TinkerSession {
    /// The service's id for this session (a UUID on the hosted service).
    pub fn id(&self) -> &str {
        &self.shared.session_id
    }

    /// The flags the service announced at connect.
    pub fn features(&self) -> &ServerFeatures {
        &self.shared.features
    }

    /// A snapshot of the heartbeat's health.
    pub fn heartbeat(&self) -> HeartbeatStatus {
        self.shared.heartbeat.borrow().clone()
    }

    /// Stops the heartbeat and tells the service the session succeeded.
    pub async fn finish(self) -> Result<(), TinkerError> {
        self.finish_with(FinishReason::Success).await
    }

    /// Stops the heartbeat and tells the service how the session ended.
    /// Models and samplers still held stop working on the service side.
    pub async fn finish_with(self, reason: FinishReason) -> Result<(), TinkerError> {
        self.shared.heartbeat_cancel.cancel();
        let body = serde_json::json!({
            "reason": { "type": reason.as_str() },
            "detail": null,
        });
        let transport = &self.shared.transport;
        let path = format!("sessions/{}/finish", self.shared.session_id);
        let req = Request::post(transport, path, Payload::json(&body)?).operation("finish");
        transport.call(&req).await?;
        tracing::info!(session_id = %self.shared.session_id, "Tinker session finished");
        Ok(())
    }
}

/// How the heartbeat is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatStatus {
    /// Heartbeats sent so far.
    pub sent: u64,
    /// Heartbeats the service acknowledged.
    pub acknowledged: u64,
    /// Failures since the last acknowledged heartbeat.
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    /// The service said the session is over (410).
    pub session_gone: bool,
    /// The heartbeat task has ended (finish, drop or 410).
    pub stopped: bool,
}

/// Result of one heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Beat {
    Acknowledged,
    /// 410: the session is over; stop beating.
    SessionGone,
    Failed(String),
}

async fn send_heartbeat(transport: Arc<Transport>, session_id: String) -> Beat {
    let body = serde_json::json!({ "session_id": session_id, "type": "session_heartbeat" });
    let Ok(payload) = Payload::json(&body) else {
        return Beat::Failed("cannot encode the heartbeat".into());
    };
    let mut req =
        Request::post(&transport, "session_heartbeat", payload).operation("session_heartbeat");
    // The next beat is the retry; a slow beat must not delay it.
    req.retry = RetryPolicy::none();
    req.timeout = transport.config.heartbeat_interval;
    match transport.call(&req).await {
        Ok(_) => Beat::Acknowledged,
        Err(TinkerError::SessionGone { .. }) => Beat::SessionGone,
        Err(e) => Beat::Failed(e.to_string()),
    }
}

/// Beats every `period`, the first one `period` after the start, until
/// cancelled or the session is gone. Generic over the beat so its timing
/// is tested without a network.
pub(crate) async fn heartbeat_loop<F, Fut>(
    period: Duration,
    cancel: CancellationToken,
    status: watch::Sender<HeartbeatStatus>,
    mut beat: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Beat>,
{
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_ok = Instant::now();
    let mut warned = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        status.send_modify(|s| s.sent += 1);
        let outcome = tokio::select! {
            _ = cancel.cancelled() => break,
            outcome = beat() => outcome,
        };
        match outcome {
            Beat::Acknowledged => {
                last_ok = Instant::now();
                warned = false;
                status.send_modify(|s| {
                    s.acknowledged += 1;
                    s.consecutive_failures = 0;
                    s.last_error = None;
                });
            }
            Beat::SessionGone => {
                tracing::warn!("the Tinker service ended the session; heartbeat stopped");
                status.send_modify(|s| s.session_gone = true);
                break;
            }
            Beat::Failed(error) => {
                let silent_for = last_ok.elapsed();
                if silent_for > HEARTBEAT_WARNING_AFTER && !warned {
                    warned = true;
                    tracing::warn!(
                        "Tinker heartbeats have failed for {} s ({error}); the service may end the session",
                        silent_for.as_secs()
                    );
                } else {
                    tracing::debug!("Tinker heartbeat failed: {error}");
                }
                status.send_modify(|s| {
                    s.consecutive_failures += 1;
                    s.last_error = Some(error);
                });
            }
        }
    }
    status.send_modify(|s| s.stopped = true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Times (since start) of every beat, the status, and the controls.
    type Scripted = (
        Arc<Mutex<Vec<Duration>>>,
        watch::Receiver<HeartbeatStatus>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    );

    /// Runs the loop with a scripted sequence of beat outcomes.
    fn scripted(script: Vec<Beat>) -> Scripted {
        let start = Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(HeartbeatStatus::default());
        let cancel = CancellationToken::new();
        let seen = times.clone();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let task = tokio::spawn(heartbeat_loop(
            Duration::from_secs(10),
            cancel.clone(),
            tx,
            move || {
                seen.lock().unwrap().push(start.elapsed());
                let next = script.lock().unwrap().next().unwrap_or(Beat::Acknowledged);
                async move { next }
            },
        ));
        (times, rx, cancel, task)
    }

    #[tokio::test(start_paused = true)]
    async fn beats_every_ten_seconds_until_cancelled() {
        let (times, status, cancel, task) = scripted(vec![]);
        tokio::time::sleep(Duration::from_secs(45)).await;
        assert_eq!(
            *times.lock().unwrap(),
            vec![10, 20, 30, 40]
                .into_iter()
                .map(Duration::from_secs)
                .collect::<Vec<_>>()
        );
        assert_eq!(status.borrow().acknowledged, 4);
        cancel.cancel();
        task.await.unwrap();
        assert!(status.borrow().stopped);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(times.lock().unwrap().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_and_cleared() {
        let (_times, status, cancel, _task) = scripted(vec![
            Beat::Failed("down".into()),
            Beat::Failed("down".into()),
            Beat::Acknowledged,
        ]);
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(status.borrow().consecutive_failures, 2);
        assert_eq!(status.borrow().last_error.as_deref(), Some("down"));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(status.borrow().consecutive_failures, 0);
        assert_eq!(status.borrow().acknowledged, 1);
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn stops_when_the_session_is_gone() {
        let (times, status, _cancel, task) = scripted(vec![Beat::Acknowledged, Beat::SessionGone]);
        task.await.unwrap();
        assert_eq!(times.lock().unwrap().len(), 2);
        let s = status.borrow().clone();
        assert!(s.session_gone && s.stopped);
    }
}
