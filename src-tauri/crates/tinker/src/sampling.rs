//! Sampling from a base model or saved weights: token ids in, sampled token
//! ids and their log-probs out (`asample`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::TinkerError;
use crate::futures::{Outcome, Pending, RequestKind, Submitted};
use crate::http::{Payload, Request};
use crate::paths::SamplerPath;
use crate::proto;
use crate::retry::jitter_sample;
use crate::session::{SessionShared, TinkerSession};

/// How often a sample whose result expired on the server (410) is
/// submitted again before giving up.
const MAX_RESUBMITS: u32 = 3;

/// What a sampler samples from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SamplerSource {
    /// Weights saved with `save_weights_for_sampler`.
    Path(SamplerPath),
    /// The untrained base model, e.g. `Qwen/Qwen3-4B-Instruct-2507`.
    BaseModel(String),
}

impl From<SamplerPath> for SamplerSource {
    fn from(path: SamplerPath) -> SamplerSource {
        SamplerSource::Path(path)
    }
}

/// Where sampling stops besides `max_tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Stop {
    Strings(Vec<String>),
    Tokens(Vec<u32>),
}

/// Sampling settings. Defaults: temperature 1, no top-k/top-p cut, stop at
/// end-of-sequence only, the service's default length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplingParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// `None` stops at end-of-sequence; `Some(Stop::Strings(vec![]))`
    /// disables even that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    pub temperature: f64,
    /// -1 disables top-k.
    pub top_k: i32,
    pub top_p: f64,
}

impl Default for SamplingParams {
    fn default() -> SamplingParams {
        SamplingParams {
            max_tokens: None,
            seed: None,
            stop: None,
            temperature: 1.0,
            top_k: -1,
            top_p: 1.0,
        }
    }
}

impl SamplingParams {
    fn validate(&self) -> Result<(), TinkerError> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(TinkerError::InvalidInput(format!(
                "temperature must be a non-negative number (got {})",
                self.temperature
            )));
        }
        if !self.top_p.is_finite() || self.top_p <= 0.0 || self.top_p > 1.0 {
            return Err(TinkerError::InvalidInput(format!(
                "top_p must be in (0, 1] (got {})",
                self.top_p
            )));
        }
        if self.top_k == 0 || self.top_k < -1 {
            return Err(TinkerError::InvalidInput(format!(
                "top_k must be positive or -1 (got {})",
                self.top_k
            )));
        }
        if self.max_tokens == Some(0) {
            return Err(TinkerError::InvalidInput(
                "max_tokens must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// End-of-sequence or a stop sequence.
    Stop,
    /// `max_tokens` reached.
    Length,
}

/// One sampled continuation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sequence {
    pub tokens: Vec<u32>,
    /// The sampler's log-probability of each token.
    pub logprobs: Vec<f32>,
    pub stop_reason: StopReason,
    /// The service's id for this sequence, when it sent one.
    pub sequence_id: Option<String>,
}

struct SamplerInner {
    session: Arc<SessionShared>,
    sampling_session_id: String,
    base_model: Option<String>,
    model_path: Option<SamplerPath>,
    /// Per-sampler `seq_id` of `asample`, from 0.
    next_seq: AtomicU64,
}

/// A sampling session on fixed weights. Cheap to clone; clones share the
/// `seq_id` counter.
#[derive(Clone)]
pub struct Sampler {
    inner: Arc<SamplerInner>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("sampling_session_id", &self.inner.sampling_session_id)
            .field("base_model", &self.inner.base_model)
            .field("model_path", &self.inner.model_path)
            .finish()
    }
}

impl TinkerSession {
    /// Opens a sampling session on saved weights or a base model.
    pub async fn sampler(&self, source: impl Into<SamplerSource>) -> Result<Sampler, TinkerError> {
        let shared = &self.shared;
        let source = source.into();
        let mut body = serde_json::json!({
            "session_id": shared.session_id,
            "sampling_session_seq_id": shared.take_sampling_seq(),
            "type": "create_sampling_session",
        });
        match &source {
            SamplerSource::Path(path) => body["model_path"] = path.as_str().into(),
            SamplerSource::BaseModel(model) => {
                if model.trim().is_empty() {
                    return Err(TinkerError::InvalidInput("the base model is empty".into()));
                }
                body["base_model"] = model.as_str().into();
            }
        }
        #[derive(Deserialize)]
        struct Created {
            sampling_session_id: String,
        }
        let created: Created = shared
            .transport
            .post_json("create_sampling_session", &body, "create_sampling_session")
            .await?;
        let id = created.sampling_session_id;
        let (base_model, model_path) = match source {
            SamplerSource::BaseModel(model) => (Some(model), None),
            SamplerSource::Path(path) => {
                #[derive(Deserialize)]
                struct Info {
                    base_model: String,
                }
                let req = Request::get(&shared.transport, format!("samplers/{id}"))
                    .operation("get_sampler");
                let info: Info = shared.transport.call(&req).await?.json("samplers")?;
                (Some(info.base_model), Some(path))
            }
        };
        Ok(Sampler::new(shared.clone(), id, base_model, model_path))
    }
}

impl Sampler {
    pub(crate) fn new(
        session: Arc<SessionShared>,
        sampling_session_id: String,
        base_model: Option<String>,
        model_path: Option<SamplerPath>,
    ) -> Sampler {
        Sampler {
            inner: Arc::new(SamplerInner {
                session,
                sampling_session_id,
                base_model,
                model_path,
                next_seq: AtomicU64::new(0),
            }),
        }
    }

    /// The service's id for this sampling session.
    pub fn sampling_session_id(&self) -> &str {
        &self.inner.sampling_session_id
    }

    /// The base model (whose tokenizer the token ids belong to).
    pub fn base_model(&self) -> Option<&str> {
        self.inner.base_model.as_deref()
    }

    /// The saved weights sampled from, if not a base model or a snapshot.
    pub fn model_path(&self) -> Option<&SamplerPath> {
        self.inner.model_path.as_ref()
    }

    /// Samples `num_samples` continuations of `prompt`. A result that
    /// expired on the service is sampled again (with a new `seq_id`).
    pub async fn sample(
        &self,
        prompt: &[u32],
        num_samples: u32,
        params: &SamplingParams,
    ) -> Result<Vec<Sequence>, TinkerError> {
        if prompt.is_empty() {
            return Err(TinkerError::InvalidInput("the prompt is empty".into()));
        }
        if num_samples == 0 {
            return Err(TinkerError::InvalidInput(
                "num_samples must be at least 1".into(),
            ));
        }
        if let Some(i) = prompt.iter().position(|&t| t > i32::MAX as u32) {
            return Err(TinkerError::InvalidInput(format!(
                "prompt token {i} ({}) is out of range",
                prompt[i]
            )));
        }
        params.validate()?;
        let mut resubmits = 0;
        loop {
            let pending = self.submit(prompt, num_samples, params).await?;
            match pending.wait().await {
                Err(TinkerError::FutureExpired { request_id }) if resubmits < MAX_RESUBMITS => {
                    let delay = self
                        .inner
                        .session
                        .transport
                        .config
                        .retry
                        .backoff(resubmits, jitter_sample());
                    tracing::warn!(
                        "Tinker sample {request_id} expired before it was read; sampling again in {:.1} s",
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                    resubmits += 1;
                }
                Err(e) => return Err(e),
                Ok(sampled) => return check_count(sampled, num_samples),
            }
        }
    }

    async fn submit(
        &self,
        prompt: &[u32],
        num_samples: u32,
        params: &SamplingParams,
    ) -> Result<SamplePending, TinkerError> {
        let inner = &self.inner;
        let seq_id = inner.next_seq.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::json!({
            "num_samples": num_samples,
            "prompt": {"chunks": [{"tokens": prompt, "type": "encoded_text"}]},
            "sampling_params": params,
            "sampling_session_id": inner.sampling_session_id,
            "seq_id": seq_id,
            "prompt_logprobs": false,
            "topk_prompt_logprobs": 0,
            "topk_sample_logprobs": 0,
            "prompt_alt_tokens_k": 0,
            "record_stability_info": false,
            "type": "sample",
        });
        let transport = &inner.session.transport;
        let req = Request::post(transport, "asample", Payload::json(&body)?)
            .operation("asample")
            .header("X-Tinker-Sampling-Backpressure", "1");
        let started = Instant::now();
        let submitted: Submitted = transport.call(&req).await?.json("asample")?;
        let ids = submitted.sample_sequence_ids.clone();
        if let Some(ids) = &ids {
            if ids.len() != num_samples as usize {
                return Err(TinkerError::Protocol(format!(
                    "asample promised {} sequence ids for {num_samples} samples",
                    ids.len()
                )));
            }
        }
        Ok(SamplePending {
            pending: Pending::new(
                transport.clone(),
                submitted.request_id,
                RequestKind::Sample,
                started.elapsed(),
                decode_sample,
            ),
            sequence_ids: ids,
        })
    }
}

struct SamplePending {
    pending: Pending<Vec<Sequence>>,
    sequence_ids: Option<Vec<String>>,
}

impl SamplePending {
    async fn wait(self) -> Result<Vec<Sequence>, TinkerError> {
        let mut sequences = self.pending.wait().await?;
        if let Some(ids) = self.sequence_ids {
            for (seq, id) in sequences.iter_mut().zip(ids) {
                seq.sequence_id = Some(id);
            }
        }
        Ok(sequences)
    }
}

fn check_count(sequences: Vec<Sequence>, num_samples: u32) -> Result<Vec<Sequence>, TinkerError> {
    if sequences.len() != num_samples as usize {
        return Err(TinkerError::Protocol(format!(
            "asked for {num_samples} samples, got {}",
            sequences.len()
        )));
    }
    Ok(sequences)
}

fn token_ids(values: impl IntoIterator<Item = i64>) -> Result<Vec<u32>, TinkerError> {
    values
        .into_iter()
        .map(|t| {
            u32::try_from(t)
                .map_err(|_| TinkerError::Protocol(format!("sampled token id {t} is negative")))
        })
        .collect()
}

/// Decodes a finished asample future: protobuf `SampleResponse`, or the
/// legacy JSON result.
pub(crate) fn decode_sample(outcome: Outcome) -> Result<Vec<Sequence>, TinkerError> {
    match outcome {
        Outcome::Protobuf(bytes) => {
            let resp = proto::SampleResponse::decode(&bytes[..]).map_err(|e| {
                TinkerError::Protocol(format!("sample result is not valid protobuf: {e}"))
            })?;
            resp.sequences
                .into_iter()
                .map(|s| {
                    let tokens = proto::read_i32(&s.tokens).ok_or_else(|| {
                        TinkerError::Protocol("sampled tokens are not int32".into())
                    })?;
                    let logprobs = s
                        .logprobs
                        .as_deref()
                        .map(|b| {
                            proto::read_f32(b).ok_or_else(|| {
                                TinkerError::Protocol("sampled log-probs are not float32".into())
                            })
                        })
                        .transpose()?;
                    let stop_reason = match proto::StopReasonProto::try_from(s.stop_reason) {
                        Ok(proto::StopReasonProto::Length) => StopReason::Length,
                        _ => StopReason::Stop,
                    };
                    build_sequence(
                        token_ids(tokens.into_iter().map(i64::from))?,
                        logprobs,
                        stop_reason,
                    )
                })
                .collect()
        }
        Outcome::Json(value) => {
            #[derive(Deserialize)]
            struct Json {
                sequences: Vec<JsonSeq>,
            }
            #[derive(Deserialize)]
            struct JsonSeq {
                tokens: Vec<i64>,
                #[serde(default)]
                logprobs: Option<Vec<f32>>,
                #[serde(default)]
                stop_reason: Option<String>,
            }
            let json: Json = serde_json::from_value(value)
                .map_err(|e| TinkerError::Protocol(format!("sample JSON result: {e}")))?;
            json.sequences
                .into_iter()
                .map(|s| {
                    let stop = match s.stop_reason.as_deref() {
                        Some("length") => StopReason::Length,
                        _ => StopReason::Stop,
                    };
                    build_sequence(token_ids(s.tokens)?, s.logprobs, stop)
                })
                .collect()
        }
    }
}

fn build_sequence(
    tokens: Vec<u32>,
    logprobs: Option<Vec<f32>>,
    stop_reason: StopReason,
) -> Result<Sequence, TinkerError> {
    // RL needs the sampler's log-probs; a service that leaves them out
    // cannot drive training.
    let logprobs = logprobs
        .ok_or_else(|| TinkerError::Protocol("the sampler returned no log-probs".into()))?;
    if logprobs.len() != tokens.len() {
        return Err(TinkerError::Protocol(format!(
            "the sampler returned {} log-probs for {} tokens",
            logprobs.len(),
            tokens.len()
        )));
    }
    Ok(Sequence {
        tokens,
        logprobs,
        stop_reason,
        sequence_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_serialise_like_the_sdk() {
        let p = SamplingParams {
            max_tokens: Some(16),
            stop: Some(Stop::Strings(vec!["</s>".into()])),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"max_tokens": 16, "stop": ["</s>"], "temperature": 1.0, "top_k": -1, "top_p": 1.0})
        );
        let tokens = SamplingParams {
            stop: Some(Stop::Tokens(vec![2])),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&tokens).unwrap()["stop"],
            serde_json::json!([2])
        );
    }

    #[test]
    fn params_are_checked() {
        assert!(SamplingParams::default().validate().is_ok());
        assert!(SamplingParams {
            top_p: 0.0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(SamplingParams {
            top_k: 0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(SamplingParams {
            temperature: f64::NAN,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(SamplingParams {
            max_tokens: Some(0),
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn decodes_protobuf_and_json_results() {
        let resp = proto::SampleResponse {
            sequences: vec![proto::SampledSequence {
                stop_reason: proto::StopReasonProto::Length as i32,
                tokens: proto::le_i32([5, 6]),
                logprobs: Some(proto::le_f32([-0.5, -0.25])),
            }],
            ..Default::default()
        };
        let seqs = decode_sample(Outcome::Protobuf(resp.encode_to_vec())).unwrap();
        assert_eq!(seqs[0].tokens, vec![5, 6]);
        assert_eq!(seqs[0].logprobs, vec![-0.5, -0.25]);
        assert_eq!(seqs[0].stop_reason, StopReason::Length);

        let json = serde_json::json!({"type": "sample", "sequences": [
            {"stop_reason": "stop", "tokens": [1], "logprobs": [-1.0]}]});
        let seqs = decode_sample(Outcome::Json(json)).unwrap();
        assert_eq!(seqs[0].stop_reason, StopReason::Stop);
    }

    #[test]
    fn missing_or_ragged_logprobs_are_errors() {
        let resp = proto::SampleResponse {
            sequences: vec![proto::SampledSequence {
                stop_reason: 0,
                tokens: proto::le_i32([5, 6]),
                logprobs: Some(proto::le_f32([-0.5])),
            }],
            ..Default::default()
        };
        assert!(decode_sample(Outcome::Protobuf(resp.encode_to_vec())).is_err());
        let json = serde_json::json!({"sequences": [{"tokens": [1]}]});
        assert!(decode_sample(Outcome::Json(json)).is_err());
    }
}
