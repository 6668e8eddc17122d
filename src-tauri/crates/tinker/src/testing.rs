//! An in-process fake Tinker service (axum) for tests (the client's fault
//! tests, the engine's trainer and policy tests), behind the `testing`
//! feature: the wire format of the real service, switches for faults, and a record
//! of every request with its virtual arrival time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::proto;
use crate::{ApiKey, TinkerConfig};
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde_json::{json, Value};
use tokio::time::Instant;

pub const KEY: &str = "tml-test-key-0123456789";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub json: Value,
    pub proto: Option<proto::ForwardBackwardRequest>,
    pub at: Instant,
    pub status: u16,
    /// Time spent answering it, from the body's arrival (the "service's
    /// own time", which a benchmark of the client subtracts).
    pub handled_in: Duration,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone)]
struct Fault {
    path: String,
    status: u16,
    headers: Vec<(&'static str, String)>,
}

#[derive(Debug)]
struct Stored {
    kind: &'static str,
    polls: u32,
    metadata_sent: bool,
    json: Value,
    proto: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Recorded>,
    faults: Vec<Fault>,
    expire: Vec<String>,
    future_errors: Vec<(String, String)>,
    futures: HashMap<String, Stored>,
    next_id: u64,
    sessions: HashMap<String, bool>, // id -> dropped
    models: HashMap<String, i64>,    // id -> last seq_id
    samplers: HashMap<String, i64>,  // id -> last sample seq_id
    violations: Vec<String>,
    jwts: HashSet<String>,
    try_again_polls: u32,
    metadata_first: bool,
    jwt_auth: bool,
    max_chunk_len: Option<u64>,
    /// What every `asample` returns when set (else two fixed tokens).
    sample_tokens: Option<Vec<u32>>,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    fn future(&mut self, kind: &'static str, json: Value, proto: Option<Vec<u8>>) -> Value {
        let id = self.id("req");
        let json = match self.future_errors.iter().position(|(k, _)| k == kind) {
            Some(i) => {
                let (_, message) = self.future_errors.remove(i);
                json!({"error": message, "category": "user"})
            }
            None => json,
        };
        self.futures.insert(
            id.clone(),
            Stored {
                kind,
                polls: 0,
                metadata_sent: false,
                json,
                proto,
            },
        );
        json!({ "request_id": id })
    }

    /// Checks and advances a model's training seq_id.
    fn sequenced(&mut self, model_id: &str, seq_id: i64) {
        let last = self.models.entry(model_id.to_string()).or_insert(0);
        if seq_id != *last + 1 {
            self.violations
                .push(format!("{model_id}: seq_id {seq_id} after {last}"));
        }
        *last = seq_id;
    }
}

/// The running fake.
#[derive(Clone)]
pub struct Fake {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    /// Starts the fake on a free loopback port inside the current runtime.
    pub async fn start() -> Fake {
        let state = Arc::new(Mutex::new(State {
            try_again_polls: 1,
            ..State::default()
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake { url, state }
    }

    pub fn config(&self) -> TinkerConfig {
        TinkerConfig::new(&self.url, ApiKey::new(KEY))
    }

    /// Answers the next POST to `path` with `status` (and headers).
    pub fn fail(&self, path: &str, status: u16, headers: &[(&'static str, &str)]) {
        self.state.lock().unwrap().faults.push(Fault {
            path: path.into(),
            status,
            headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        });
    }

    /// The next poll of a future of `kind` answers 410.
    pub fn expire(&self, kind: &str) {
        self.state.lock().unwrap().expire.push(kind.into());
    }

    /// The next future of `kind` fails with a user error.
    pub fn future_error(&self, kind: &str, message: &str) {
        self.state
            .lock()
            .unwrap()
            .future_errors
            .push((kind.into(), message.into()));
    }

    pub fn drop_sessions(&self) {
        for dropped in self.state.lock().unwrap().sessions.values_mut() {
            *dropped = true;
        }
    }

    pub fn set_try_again_polls(&self, n: u32) {
        self.state.lock().unwrap().try_again_polls = n;
    }

    pub fn set_metadata_first(&self, on: bool) {
        self.state.lock().unwrap().metadata_first = on;
    }

    pub fn set_jwt_auth(&self, on: bool) {
        self.state.lock().unwrap().jwt_auth = on;
    }

    /// Announces a forward_backward chunk limit in `client/config`.
    pub fn set_max_chunk_len(&self, n: u64) {
        self.state.lock().unwrap().max_chunk_len = Some(n);
    }

    /// Forgets every JWT issued so far (the next request with one gets a
    /// 401 `invalid_token`).
    pub fn revoke_jwts(&self) {
        self.state.lock().unwrap().jwts.clear();
    }

    /// Every sequence sampled from now on is `tokens`, with log-probs
    /// -0.125, -0.25, -0.375, ….
    pub fn script_samples(&self, tokens: &[u32]) {
        self.state.lock().unwrap().sample_tokens = Some(tokens.to_vec());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn jwt(n: u64) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.sig",
        b64(json!({"alg": "none"})),
        b64(json!({"iat": now, "exp": now + 3600, "n": n}))
    )
}

async fn handle(
    AxumState(state): AxumState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let path = uri
        .path()
        .strip_prefix("/api/v1/")
        .unwrap_or(uri.path())
        .to_string();
    let is_proto = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-protobuf"));
    let proto_body = is_proto
        .then(|| proto::ForwardBackwardRequest::decode(&body[..]).ok())
        .flatten();
    let json_body: Value = if is_proto || body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let mut st = state.lock().unwrap();
    let index = st.requests.len();
    st.requests.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        json: json_body.clone(),
        proto: proto_body.clone(),
        at: Instant::now(),
        status: 0,
        handled_in: Duration::ZERO,
    });
    let response = route(&mut st, &method, &path, &headers, &json_body, proto_body);
    let record = &mut st.requests[index];
    record.status = response.status().as_u16();
    record.handled_in = started.elapsed();
    response
}

fn route(
    st: &mut State,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
    fwd: Option<proto::ForwardBackwardRequest>,
) -> Response {
    if let Some(i) = st.faults.iter().position(|f| f.path == path) {
        let fault = st.faults.remove(i);
        let mut resp = json_response(
            fault.status,
            json!({"detail": format!("injected {}", fault.status)}),
        );
        for (k, v) in fault.headers {
            resp.headers_mut()
                .insert(k, HeaderValue::from_str(&v).unwrap());
        }
        return resp;
    }
    let credential = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let open = path == "client/config" || path == "auth/token" || !st.jwt_auth;
    if open && credential != KEY && !st.jwts.contains(credential) {
        return json_response(401, json!({"detail": "Invalid API key"}));
    }
    if !open && !st.jwts.contains(credential) {
        let mut resp = json_response(401, json!({"detail": "token expired"}));
        resp.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
        return resp;
    }
    let session_gone = |st: &State, id: &str| {
        let session = id.split(':').next().unwrap_or(id);
        st.sessions.get(session).copied().unwrap_or(false)
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let i = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(-1);

    if *method == Method::GET {
        if let Some(id) = path.strip_prefix("samplers/") {
            return json_response(
                200,
                json!({"sampler_id": id, "base_model": "base", "model_path": null}),
            );
        }
        return json_response(404, json!({"detail": "Not Found"}));
    }
    if let Some(rest) = path.strip_prefix("sessions/") {
        let id = rest.trim_end_matches("/finish");
        st.sessions.insert(id.to_string(), true);
        return json_response(200, json!({}));
    }
    match path {
        "client/config" => {
            let mut flags = json!({"pjwt_auth_enabled": st.jwt_auth});
            if let Some(n) = st.max_chunk_len {
                flags["fwdbwd_max_chunk_len"] = n.into();
            }
            json_response(200, flags)
        }
        "auth/token" => {
            let token = jwt(st.next_id);
            st.next_id += 1;
            st.jwts.insert(token.clone());
            json_response(200, json!({ "jwt": token }))
        }
        "create_session" => {
            let id = format!("00000000-0000-4000-8000-{:012}", st.next_id);
            st.next_id += 1;
            st.sessions.insert(id.clone(), false);
            json_response(200, json!({ "session_id": id }))
        }
        "session_heartbeat" => {
            if session_gone(st, &s(body, "session_id")) {
                return json_response(410, json!({"detail": "session ended"}));
            }
            json_response(200, json!({"type": "session_heartbeat"}))
        }
        "create_model" => {
            let model_id = format!(
                "{}:train:{}",
                s(body, "session_id"),
                i(body, "model_seq_id")
            );
            if session_gone(st, &model_id) {
                return json_response(410, json!({"detail": "session ended"}));
            }
            st.models.insert(model_id.clone(), 0);
            let fut = st.future("CreateModel", json!({ "model_id": model_id }), None);
            json_response(200, fut)
        }
        "get_info" => json_response(
            200,
            json!({"model_id": s(body, "model_id"), "model_data": {"model_name": "base", "tokenizer_id": "base:rev"},
                   "is_lora": true, "lora_rank": 8}),
        ),
        "forward_backward" => {
            let Some(req) = fwd else {
                return json_response(400, json!({"detail": "needs a protobuf body"}));
            };
            if session_gone(st, &req.model_id) {
                return json_response(410, json!({"detail": "session ended"}));
            }
            st.sequenced(&req.model_id, i64::from(req.seq_id));
            let mut data = Vec::new();
            let mut offsets = vec![0i64];
            for d in &req.data {
                let t = &d.loss_fn_inputs["target_tokens"];
                let n = t.dense.len() / 8;
                for k in 0..n {
                    data.extend((-(k as f32) - 1.0).to_le_bytes());
                }
                offsets.push(data.len() as i64);
            }
            let mut fields = std::collections::BTreeMap::new();
            fields.insert(
                "logprobs".to_string(),
                proto::BatchedTensor {
                    data,
                    offsets: proto::le_i64(offsets),
                    dtype: proto::DType::Float32 as i32,
                    trailing_shape: vec![],
                },
            );
            let out = proto::ForwardBackwardOutput {
                loss_fn_output_type: "ArrayRecord".into(),
                loss_fn_outputs: vec![proto::ArrayRecord {
                    type_tag: String::new(),
                    fields,
                    num_datums: req.data.len() as i64,
                }],
                metrics: [("loss:sum".to_string(), req.data.len() as f64)]
                    .into_iter()
                    .collect(),
            };
            let fut = st.future("ForwardBackward", json!({}), Some(out.encode_to_vec()));
            json_response(200, fut)
        }
        "optim_step" | "save_weights" | "save_weights_for_sampler" | "load_weights" => {
            let model_id = s(body, "model_id");
            if session_gone(st, &model_id) {
                return json_response(410, json!({"detail": "session ended"}));
            }
            st.sequenced(&model_id, i(body, "seq_id"));
            let (kind, result) = match path {
                "optim_step" => ("OptimStep", json!({"metrics": {"grad_norm:mean": 0.5}})),
                "save_weights" => (
                    "SaveWeights",
                    json!({"path": format!("tinker://{model_id}/weights/{}", s(body, "path"))}),
                ),
                "save_weights_for_sampler" if body.get("path").is_some() => (
                    "SaveWeightsForSampler",
                    json!({"path": format!("tinker://{model_id}/sampler_weights/{}", s(body, "path"))}),
                ),
                "save_weights_for_sampler" => {
                    let id = st.id("sampler");
                    st.samplers.insert(id.clone(), -1);
                    (
                        "SaveWeightsForSampler",
                        json!({ "sampling_session_id": id }),
                    )
                }
                _ => ("LoadWeights", json!({"path": s(body, "path")})),
            };
            let fut = st.future(kind, result, None);
            json_response(200, fut)
        }
        "create_sampling_session" => {
            let id = st.id("sampler");
            st.samplers.insert(id.clone(), -1);
            json_response(200, json!({ "sampling_session_id": id }))
        }
        "asample" => {
            let sampler = s(body, "sampling_session_id");
            let seq = i(body, "seq_id");
            let last = st.samplers.entry(sampler.clone()).or_insert(-1);
            if seq <= *last {
                let msg = format!("{sampler}: sample seq_id {seq} after {last}");
                st.violations.push(msg);
            } else {
                *last = seq;
            }
            let n = i(body, "num_samples").max(1) as usize;
            let scripted = st.sample_tokens.clone();
            let seqs = (0..n)
                .map(|j| match &scripted {
                    Some(tokens) => proto::SampledSequence {
                        stop_reason: proto::StopReasonProto::Stop as i32,
                        tokens: proto::le_i32(tokens.iter().map(|&t| t as i32)),
                        logprobs: Some(proto::le_f32(
                            (1..=tokens.len()).map(|k| -0.125 * k as f32),
                        )),
                    },
                    None => proto::SampledSequence {
                        stop_reason: proto::StopReasonProto::Length as i32,
                        tokens: proto::le_i32([10 + j as i32, 11]),
                        logprobs: Some(proto::le_f32([-0.5, -0.25])),
                    },
                })
                .collect();
            let out = proto::SampleResponse {
                sequences: seqs,
                ..Default::default()
            };
            let mut fut = st.future("Sample", json!({}), Some(out.encode_to_vec()));
            fut["sample_sequence_ids"] = (0..n).map(|j| format!("s{j}")).collect();
            json_response(200, fut)
        }
        "retrieve_future" => {
            let id = s(body, "request_id");
            let allow_metadata =
                body.get("allow_metadata_only").and_then(Value::as_bool) == Some(true);
            let try_again_polls = st.try_again_polls;
            let metadata_first = st.metadata_first;
            let Some(kind) = st.futures.get(&id).map(|f| f.kind) else {
                return json_response(404, json!({"detail": "unknown request"}));
            };
            if let Some(pos) = st.expire.iter().position(|k| k == kind) {
                st.expire.remove(pos);
                st.futures.remove(&id);
                return json_response(410, json!({"detail": "expired"}));
            }
            let stored = st.futures.get_mut(&id).unwrap();
            stored.polls += 1;
            if stored.polls <= try_again_polls {
                return json_response(
                    200,
                    json!({"type": "try_again", "request_id": id, "queue_state": "active"}),
                );
            }
            if metadata_first && allow_metadata && !stored.metadata_sent {
                stored.metadata_sent = true;
                return json_response(
                    200,
                    json!({"status": "complete_metadata", "response_payload_size": 10}),
                );
            }
            let wants_proto = headers
                .get("accept")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/x-protobuf"));
            match (
                &stored.proto,
                wants_proto,
                stored.json.get("error").is_some(),
            ) {
                (Some(bytes), true, false) => (
                    StatusCode::OK,
                    [("content-type", "application/x-protobuf")],
                    bytes.clone(),
                )
                    .into_response(),
                _ => json_response(200, stored.json.clone()),
            }
        }
        _ => json_response(404, json!({"detail": "Not Found"})),
    }
}

/// Lets spawned tasks and the server run until nothing is ready, without
/// moving the paused clock.
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// The virtual time between two recorded requests.
pub fn gap(a: &Recorded, b: &Recorded) -> Duration {
    b.at.duration_since(a.at)
}
