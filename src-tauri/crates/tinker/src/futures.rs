//! Request futures: every training or sampling call is acknowledged at once
//! with a `request_id`, and its result is fetched by long-polling
//! `retrieve_future` until it is ready, failed, or gone.

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::error::{FailureCategory, TinkerError};
use crate::http::{Payload, Request, Response, Transport, JSON, PROTOBUF};
use crate::retry::{jitter_sample, retry_after, RetryPolicy};

/// How many 400s in a row `retrieve_future` tolerates (a proxy may inject
/// them) before it believes them.
const MAX_BAD_REQUESTS: u32 = 3;

/// The immediate answer to a submission.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Submitted {
    pub request_id: String,
    #[serde(default)]
    pub sample_sequence_ids: Option<Vec<String>>,
}

/// Which operation a future belongs to; sent as `X-Tinker-Request-Type`
/// and decides whether the result is protobuf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    CreateModel,
    ForwardBackward,
    OptimStep,
    SaveWeights,
    SaveWeightsForSampler,
    LoadWeights,
    Sample,
}

impl RequestKind {
    pub fn header(self) -> &'static str {
        match self {
            RequestKind::CreateModel => "CreateModel",
            RequestKind::ForwardBackward => "ForwardBackward",
            RequestKind::OptimStep => "OptimStep",
            RequestKind::SaveWeights => "SaveWeights",
            RequestKind::SaveWeightsForSampler => "SaveWeightsForSampler",
            RequestKind::LoadWeights => "LoadWeights",
            RequestKind::Sample => "Sample",
        }
    }

    pub fn operation(self) -> &'static str {
        match self {
            RequestKind::CreateModel => "create_model",
            RequestKind::ForwardBackward => "forward_backward",
            RequestKind::OptimStep => "optim_step",
            RequestKind::SaveWeights => "save_weights",
            RequestKind::SaveWeightsForSampler => "save_weights_for_sampler",
            RequestKind::LoadWeights => "load_weights",
            RequestKind::Sample => "sample",
        }
    }

    fn wants_protobuf(self) -> bool {
        matches!(self, RequestKind::ForwardBackward | RequestKind::Sample)
    }
}

/// A finished future's payload, before it is decoded into a typed result.
#[derive(Debug)]
pub(crate) enum Outcome {
    Json(serde_json::Value),
    Protobuf(Vec<u8>),
}

/// What one poll answer means (pure, so the rules are unit-tested).
#[derive(Debug)]
enum PollAnswer {
    Done(Outcome),
    /// Not ready: poll again at once (the server held the request).
    TryAgain {
        queue_state: Option<String>,
    },
    /// Ready but large: poll again without `allow_metadata_only`.
    MetadataOnly,
    Failed {
        category: FailureCategory,
        message: String,
    },
}

fn interpret(resp: &Response) -> Result<PollAnswer, TinkerError> {
    if resp.is_protobuf() {
        return Ok(PollAnswer::Done(Outcome::Protobuf(resp.body.clone())));
    }
    let value: serde_json::Value = resp.json("retrieve_future")?;
    if value.get("type").and_then(|t| t.as_str()) == Some("try_again") {
        let queue_state = value
            .get("queue_state")
            .and_then(|q| q.as_str())
            .map(String::from);
        return Ok(PollAnswer::TryAgain { queue_state });
    }
    if value.get("status").and_then(|t| t.as_str()) == Some("complete_metadata") {
        return Ok(PollAnswer::MetadataOnly);
    }
    if let Some(error) = value.get("error") {
        let message = match error {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let category = value
            .get("category")
            .and_then(|c| c.as_str())
            .map(FailureCategory::from_wire)
            .unwrap_or(FailureCategory::Unknown);
        return Ok(PollAnswer::Failed { category, message });
    }
    Ok(PollAnswer::Done(Outcome::Json(value)))
}

/// Long-polls one future to its end.
pub(crate) async fn retrieve(
    transport: &Transport,
    request_id: &str,
    kind: RequestKind,
    submit_roundtrip: Duration,
) -> Result<Outcome, TinkerError> {
    let config = &transport.config;
    let started = Instant::now();
    let deadline = config.future_timeout.map(|t| started + t);
    let policy: &RetryPolicy = &config.retry;
    let mut allow_metadata_only = true;
    let mut iteration: u64 = 0;
    let mut transient_failures: u32 = 0;
    let mut bad_requests: u32 = 0;
    let mut last_queue_state: Option<String> = None;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(TinkerError::FutureTimeout {
                operation: kind.operation(),
                request_id: request_id.to_string(),
                waited: started.elapsed(),
            });
        }
        let body = serde_json::json!({
            "request_id": request_id,
            "allow_metadata_only": allow_metadata_only,
        });
        let mut req = Request::post(transport, "retrieve_future", Payload::json(&body)?)
            .operation("retrieve_future")
            .header("X-Tinker-Request-Iteration", iteration.to_string())
            .header("X-Tinker-Request-Type", kind.header());
        if iteration == 0 {
            req = req.header(
                "X-Tinker-Create-Promise-Roundtrip-Time",
                format!("{:.6}", submit_roundtrip.as_secs_f64()),
            );
        }
        req.accept = if kind.wants_protobuf() {
            PROTOBUF
        } else {
            JSON
        };
        req.timeout = config.poll_timeout;
        req.retry = RetryPolicy::none();
        iteration += 1;

        let idempotency = format!("metaclaw-retry-{}", uuid::Uuid::new_v4());
        let wait = match transport.send(&req, &idempotency, 0).await {
            Err(crate::http::SendError::Fatal(e)) => return Err(e),
            Err(crate::http::SendError::Network(detail)) => {
                transient_failures += 1;
                if transient_failures > policy.max_retries {
                    return Err(TinkerError::ServiceUnavailable {
                        attempts: transient_failures,
                        detail,
                    });
                }
                let delay = poll_backoff(transient_failures - 1);
                tracing::warn!(
                    "polling Tinker {} ({request_id}) failed: {detail}; retrying in {:.1} s",
                    kind.operation(),
                    delay.as_secs_f64()
                );
                Some(delay)
            }
            Ok(resp) if resp.status.is_success() => {
                transient_failures = 0;
                bad_requests = 0;
                match interpret(&resp)? {
                    PollAnswer::Done(outcome) => return Ok(outcome),
                    PollAnswer::Failed { category, message } => {
                        return Err(TinkerError::RequestFailed {
                            operation: kind.operation(),
                            category,
                            message,
                        })
                    }
                    PollAnswer::MetadataOnly => {
                        if !allow_metadata_only {
                            return Err(TinkerError::Protocol(
                                "retrieve_future answered metadata-only although it was not allowed".into(),
                            ));
                        }
                        allow_metadata_only = false;
                        None
                    }
                    PollAnswer::TryAgain { queue_state } => {
                        if queue_state.is_some() && queue_state != last_queue_state {
                            tracing::info!(
                                "Tinker {} ({request_id}) is queued: {}",
                                kind.operation(),
                                queue_state.as_deref().unwrap_or("active")
                            );
                            last_queue_state = queue_state;
                        }
                        None
                    }
                }
            }
            Ok(resp) => {
                let status = resp.status.as_u16();
                match status {
                    // The server's own long-poll deadline: ask again at once.
                    408 => None,
                    410 => {
                        return Err(TinkerError::FutureExpired {
                            request_id: request_id.to_string(),
                        })
                    }
                    400 if bad_requests < MAX_BAD_REQUESTS => {
                        bad_requests += 1;
                        Some(policy.backoff(bad_requests - 1, jitter_sample()))
                    }
                    429 | 500..=599 => {
                        transient_failures += 1;
                        if transient_failures > policy.max_retries {
                            return Err(TinkerError::from_status(
                                status,
                                &resp.body,
                                transient_failures,
                            ));
                        }
                        let hint = retry_after(&resp.headers, std::time::SystemTime::now());
                        let delay = match hint {
                            Some(h) if !h.is_zero() && h <= policy.max_retry_after => h,
                            _ if status == 429 => poll_backoff(transient_failures - 1),
                            _ => policy.backoff(transient_failures - 1, jitter_sample()),
                        };
                        tracing::warn!(
                            "polling Tinker {} ({request_id}) got HTTP {status}; retrying in {:.1} s",
                            kind.operation(),
                            delay.as_secs_f64()
                        );
                        Some(delay)
                    }
                    _ => {
                        return Err(TinkerError::from_status(status, &resp.body, 1));
                    }
                }
            }
        };
        if let Some(delay) = wait {
            tokio::time::sleep(delay).await;
        }
    }
}

/// The SDK's poll back-off for rate limits and lost connections:
/// `min(2^k, 30)` seconds.
fn poll_backoff(k: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(k.min(6)).min(30))
}

/// Turns a finished future's payload into a typed result.
pub(crate) type Decoder<T> = fn(Outcome) -> Result<T, TinkerError>;

/// A submitted request whose result has not been read yet. Await it (or
/// call [`Pending::wait`]) for the result; keep [`Pending::request_id`] to
/// know what is in flight.
#[must_use = "a submitted request does nothing until its result is awaited"]
pub struct Pending<T> {
    transport: Arc<Transport>,
    request_id: String,
    kind: RequestKind,
    roundtrip: Duration,
    decode: Decoder<T>,
    _result: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("request_id", &self.request_id)
            .field("operation", &self.kind.operation())
            .finish()
    }
}

impl<T: Send + 'static> Pending<T> {
    pub(crate) fn new(
        transport: Arc<Transport>,
        request_id: String,
        kind: RequestKind,
        roundtrip: Duration,
        decode: Decoder<T>,
    ) -> Pending<T> {
        Pending {
            transport,
            request_id,
            kind,
            roundtrip,
            decode,
            _result: PhantomData,
        }
    }

    /// The service's id for this request.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Polls until the result is ready and decodes it.
    pub async fn wait(self) -> Result<T, TinkerError> {
        let outcome =
            retrieve(&self.transport, &self.request_id, self.kind, self.roundtrip).await?;
        (self.decode)(outcome)
    }
}

impl<T: Send + 'static> IntoFuture for Pending<T> {
    type Output = Result<T, TinkerError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

/// Parses a JSON result into `T`, naming the operation on failure.
pub(crate) fn json_result<T: serde::de::DeserializeOwned>(
    outcome: Outcome,
    operation: &str,
) -> Result<T, TinkerError> {
    match outcome {
        Outcome::Json(value) => serde_json::from_value(value)
            .map_err(|e| TinkerError::Protocol(format!("{operation} result: {e}"))),
        Outcome::Protobuf(_) => Err(TinkerError::Protocol(format!(
            "{operation} result came as protobuf, expected JSON"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
    use reqwest::StatusCode;

    fn json(body: &str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Response {
            status: StatusCode::OK,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn poll_answers_are_read_in_the_documented_order() {
        assert!(matches!(
            interpret(&json(r#"{"type":"try_again","request_id":"r","queue_state":"paused_capacity"}"#)).unwrap(),
            PollAnswer::TryAgain { queue_state: Some(q) } if q == "paused_capacity"
        ));
        assert!(matches!(
            interpret(&json(
                r#"{"status":"complete_metadata","response_payload_size":10}"#
            ))
            .unwrap(),
            PollAnswer::MetadataOnly
        ));
        assert!(matches!(
            interpret(&json(r#"{"error":"bad shapes","category":"user"}"#)).unwrap(),
            PollAnswer::Failed { category: FailureCategory::User, message } if message == "bad shapes"
        ));
        assert!(matches!(
            interpret(&json(r#"{"error":"boom"}"#)).unwrap(),
            PollAnswer::Failed {
                category: FailureCategory::Unknown,
                ..
            }
        ));
        assert!(matches!(
            interpret(&json(r#"{"model_id":"m"}"#)).unwrap(),
            PollAnswer::Done(Outcome::Json(v)) if v["model_id"] == "m"
        ));
        let mut proto = json("");
        proto.body = vec![0x0a, 0x00];
        proto.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        assert!(matches!(
            interpret(&proto).unwrap(),
            PollAnswer::Done(Outcome::Protobuf(b)) if b == vec![0x0a, 0x00]
        ));
        assert!(matches!(
            interpret(&json("not json")),
            Err(TinkerError::Protocol(_))
        ));
    }

    #[test]
    fn poll_backoff_is_capped() {
        let secs: Vec<u64> = (0..8).map(|k| poll_backoff(k).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
