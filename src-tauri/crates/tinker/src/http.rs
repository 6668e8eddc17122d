//! One HTTP call to the service, done right: the `X-API-Key` credential (API
//! key or JWT), content types, an idempotency key shared by the retries of
//! one call, retries with back-off honouring `retry-after`, and final
//! statuses turned into [`TinkerError`]s. The key never reaches a log line.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::auth::{is_invalid_token, Jwt};
use crate::config::{ApiKey, TinkerConfig, PROTOCOL_SDK_VERSION};
use crate::error::TinkerError;
use crate::retry::{jitter_sample, retry_after, status_is_retryable, RetryPolicy};

pub(crate) const JSON: &str = "application/json";
pub(crate) const PROTOBUF: &str = "application/x-protobuf";

/// What a request carries.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// A GET: no body, no idempotency key.
    None,
    Json(Vec<u8>),
    Protobuf(Vec<u8>),
}

impl Payload {
    pub fn json(body: &impl Serialize) -> Result<Payload, TinkerError> {
        serde_json::to_vec(body)
            .map(Payload::Json)
            .map_err(|e| TinkerError::InvalidInput(format!("cannot encode request: {e}")))
    }
}

/// One logical call; `Transport::call` may send it several times.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    /// Below `/api/v1/`, e.g. `create_session`.
    pub path: String,
    pub payload: Payload,
    /// The `Accept` header: JSON, or protobuf for binary results.
    pub accept: &'static str,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub headers: Vec<(&'static str, String)>,
    /// For log lines, e.g. `forward_backward`.
    pub operation: &'static str,
}

impl Request {
    /// A JSON POST with the transport's default timeout and retries.
    pub fn post(transport: &Transport, path: impl Into<String>, payload: Payload) -> Request {
        Request {
            method: Method::POST,
            path: path.into(),
            payload,
            accept: JSON,
            timeout: transport.config.request_timeout,
            retry: transport.config.retry.clone(),
            headers: Vec::new(),
            operation: "request",
        }
    }

    pub fn get(transport: &Transport, path: impl Into<String>) -> Request {
        Request {
            method: Method::GET,
            ..Request::post(transport, path, Payload::None)
        }
    }

    pub fn operation(mut self, operation: &'static str) -> Request {
        self.operation = operation;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }
}

/// A response whose body has been read.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_protobuf(&self) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(PROTOBUF))
    }

    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, TinkerError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            TinkerError::Protocol(format!(
                "{what}: {e} (body: {})",
                crate::error::error_detail(&self.body)
            ))
        })
    }
}

/// Feature flags from `POST client/config`; absent fields take the SDK's
/// defaults and unknown ones are ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerFeatures {
    /// Trade the API key for a JWT before other calls.
    pub pjwt_auth_enabled: bool,
    /// The service would like zstd-compressed forward_backward bodies.
    pub proto_compress_fwdbwd: bool,
    /// Most datums per forward_backward request.
    pub fwdbwd_max_chunk_len: usize,
    /// Approximate byte budget per forward_backward request.
    pub fwdbwd_max_chunk_bytes_count: usize,
}

impl Default for ServerFeatures {
    fn default() -> ServerFeatures {
        ServerFeatures {
            pjwt_auth_enabled: false,
            proto_compress_fwdbwd: false,
            fwdbwd_max_chunk_len: 1024,
            fwdbwd_max_chunk_bytes_count: 5_000_000,
        }
    }
}

/// The shared HTTP side of a client: connection pool, credential, settings.
pub(crate) struct Transport {
    client: reqwest::Client,
    root: String,
    api_key: ApiKey,
    jwt_enabled: AtomicBool,
    jwt: Mutex<Option<Jwt>>,
    deprecation_logged: AtomicBool,
    pub config: TinkerConfig,
}

impl Transport {
    pub fn new(config: TinkerConfig) -> Result<Transport, TinkerError> {
        let root = config.validate()?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("metaclaw-tinker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TinkerError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport {
            client,
            root,
            api_key: config.api_key.clone(),
            jwt_enabled: AtomicBool::new(false),
            jwt: Mutex::new(None),
            deprecation_logged: AtomicBool::new(false),
            config,
        })
    }

    /// Reads the service's feature flags and, when it asks for JWT auth,
    /// obtains the first token (so a bad key fails here, at connect).
    pub async fn handshake(&self) -> Result<ServerFeatures, TinkerError> {
        let body = serde_json::json!({ "sdk_version": PROTOCOL_SDK_VERSION });
        let req =
            Request::post(self, "client/config", Payload::json(&body)?).operation("client/config");
        let features: ServerFeatures = self.call(&req).await?.json("client/config")?;
        if features.pjwt_auth_enabled {
            self.jwt_enabled.store(true, Ordering::SeqCst);
            self.credential(true).await?;
        }
        Ok(features)
    }

    /// POSTs JSON and parses a JSON answer.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        operation: &'static str,
    ) -> Result<T, TinkerError> {
        let req = Request::post(self, path, Payload::json(body)?).operation(operation);
        self.call(&req).await?.json(operation)
    }

    /// Sends `req`, retrying transient failures; returns a 2xx response or
    /// the error for the final answer.
    pub async fn call(&self, req: &Request) -> Result<Response, TinkerError> {
        self.call_as(req, Credential::Current).await
    }

    async fn call_as(
        &self,
        req: &Request,
        credential: Credential,
    ) -> Result<Response, TinkerError> {
        let idempotency = format!("metaclaw-retry-{}", uuid::Uuid::new_v4());
        let policy = &req.retry;
        let mut attempt: u32 = 0;
        loop {
            let outcome = match credential {
                Credential::Current => self.send(req, &idempotency, attempt).await,
                Credential::RawKey => {
                    self.send_with(req, &idempotency, attempt, &self.api_key)
                        .await
                }
            };
            let (delay, reason) = match outcome {
                Ok(resp) if resp.status.is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status.as_u16();
                    let retryable =
                        status_is_retryable(status, &resp.headers, resp.body.is_empty());
                    if !retryable || attempt >= policy.max_retries {
                        return Err(TinkerError::from_status(status, &resp.body, attempt + 1));
                    }
                    let hint = retry_after(&resp.headers, SystemTime::now());
                    (
                        policy.delay(attempt, hint, jitter_sample()),
                        format!("HTTP {status}"),
                    )
                }
                Err(SendError::Fatal(e)) => return Err(e),
                Err(SendError::Network(detail)) => {
                    if attempt >= policy.max_retries {
                        return Err(TinkerError::ServiceUnavailable {
                            attempts: attempt + 1,
                            detail,
                        });
                    }
                    (policy.delay(attempt, None, jitter_sample()), detail)
                }
            };
            tracing::warn!(
                operation = req.operation,
                "Tinker {} got {reason}; retrying in {:.1} s (retry {} of {})",
                req.operation,
                delay.as_secs_f64(),
                attempt + 1,
                policy.max_retries
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One attempt: no retries, except one replay with a fresh JWT when the
    /// service says the token is stale.
    pub async fn send(
        &self,
        req: &Request,
        idempotency: &str,
        attempt: u32,
    ) -> Result<Response, SendError> {
        let credential = self.credential(false).await.map_err(SendError::Fatal)?;
        let resp = self
            .send_with(req, idempotency, attempt, &credential)
            .await?;
        let stale_jwt = resp.status == StatusCode::UNAUTHORIZED
            && self.jwt_enabled.load(Ordering::SeqCst)
            && is_invalid_token(
                resp.headers
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok()),
            );
        if !stale_jwt {
            return Ok(resp);
        }
        tracing::info!("Tinker rejected the session token; fetching a new one");
        let credential = self.credential(true).await.map_err(SendError::Fatal)?;
        self.send_with(req, idempotency, attempt, &credential).await
    }

    async fn send_with(
        &self,
        req: &Request,
        idempotency: &str,
        attempt: u32,
        credential: &ApiKey,
    ) -> Result<Response, SendError> {
        let url = format!("{}/{}", self.root, req.path.trim_start_matches('/'));
        let mut builder = self
            .client
            .request(req.method.clone(), &url)
            .timeout(req.timeout)
            .header(ACCEPT, req.accept);
        builder = match &req.payload {
            Payload::None => builder,
            Payload::Json(body) => builder.header(CONTENT_TYPE, JSON).body(body.clone()),
            Payload::Protobuf(body) => builder.header(CONTENT_TYPE, PROTOBUF).body(body.clone()),
        };
        if !matches!(req.payload, Payload::None) {
            builder = builder.header("X-Idempotency-Key", idempotency);
        }
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        let mut key = HeaderValue::from_str(credential.expose()).map_err(|_| {
            SendError::Fatal(TinkerError::Config(
                "the API key contains characters not allowed in an HTTP header".into(),
            ))
        })?;
        key.set_sensitive(true);
        builder = builder.header("X-API-Key", key);
        tracing::debug!(operation = req.operation, attempt, "{} {url}", req.method);

        let resp = builder.send().await.map_err(network_error)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(network_error)?.to_vec();
        self.log_deprecation(&headers);
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The value for `X-API-Key`: the key, or a current JWT (exchanged
    /// anew when `force` is set or the old one is due).
    async fn credential(&self, force: bool) -> Result<ApiKey, TinkerError> {
        if !self.jwt_enabled.load(Ordering::SeqCst) {
            return Ok(self.api_key.clone());
        }
        let mut slot = self.jwt.lock().await;
        if let Some(jwt) = slot.as_ref() {
            if !force && !jwt.needs_refresh(Instant::now()) {
                return Ok(jwt.token.clone());
            }
        }
        let jwt = self.exchange().await?;
        let token = jwt.token.clone();
        *slot = Some(jwt);
        Ok(token)
    }

    /// `POST auth/token` with the API key: the JWT to use instead. Boxed
    /// because it goes through `call_as`, which can itself need a token.
    fn exchange(&self) -> Pin<Box<dyn Future<Output = Result<Jwt, TinkerError>> + Send + '_>> {
        Box::pin(async move {
            #[derive(Deserialize)]
            struct TokenReply {
                jwt: String,
            }
            let req = Request::post(self, "auth/token", Payload::Json(b"{}".to_vec()))
                .operation("auth/token");
            let reply: TokenReply = self
                .call_as(&req, Credential::RawKey)
                .await?
                .json("auth/token")?;
            let now_unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            Ok(Jwt::new(
                reply.jwt,
                Instant::now(),
                now_unix,
                jitter_sample(),
            ))
        })
    }

    fn log_deprecation(&self, headers: &HeaderMap) {
        let Some(note) = headers
            .get("x-deprecation-note")
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        if !self.deprecation_logged.swap(true, Ordering::SeqCst) {
            let level = headers
                .get("x-deprecation-level")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("warning");
            tracing::warn!("the Tinker service reports a deprecation ({level}): {note}");
        }
    }
}

/// Why one attempt produced no HTTP answer.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Connection refused, reset, timed out…: worth retrying.
    Network(String),
    /// Retrying cannot help (bad credential encoding, failed exchange).
    Fatal(TinkerError),
}

fn network_error(e: reqwest::Error) -> SendError {
    if e.is_builder() {
        return SendError::Fatal(TinkerError::Config(format!("bad request URL: {e}")));
    }
    let mut detail = if e.is_timeout() {
        "the request timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    SendError::Network(detail)
}

/// Which credential an attempt sends.
#[derive(Debug, Clone, Copy)]
enum Credential {
    /// The key, or the current JWT when the service uses JWTs.
    Current,
    /// The API key itself (for the JWT exchange).
    RawKey,
}
