//! A LoRA training model on the service: create it, then forward-backward,
//! optimizer steps, and saving or loading weights.
//!
//! Every request on a model carries the next `seq_id` (1, 2, 3, … after the
//! implicit 0 of `create_model`), and the service runs them strictly in that
//! order, waiting for a missing one. So submissions on one model are
//! serialised here: a submission is sent only after the previous one was
//! acknowledged, and if one cannot be delivered the model refuses further
//! requests instead of leaving a gap the service would wait on forever.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::datum::{Datum, Loss};
use crate::error::TinkerError;
use crate::futures::{json_result, Decoder, Outcome, Pending, RequestKind, Submitted};
use crate::fwdbwd::{self, ForwardBackwardOutput};
use crate::http::{Payload, Request};
use crate::paths::{check_name, CheckpointPath, SamplerPath};
use crate::sampling::Sampler;
use crate::session::{SessionShared, TinkerSession};

/// A LoRA adapter to train on top of a base model.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// The base model, e.g. `Qwen/Qwen3-4B-Instruct-2507`.
    pub base_model: String,
    pub rank: u32,
    pub train_unembed: bool,
    pub train_mlp: bool,
    pub train_attn: bool,
    /// Initialisation seed; the service picks one when unset.
    pub seed: Option<i64>,
    /// Free-form labels stored with the model on the service.
    pub user_metadata: BTreeMap<String, String>,
}

impl LoraConfig {
    /// Rank `rank` on all layers (attention, MLP and unembedding).
    pub fn new(base_model: impl Into<String>, rank: u32) -> LoraConfig {
        LoraConfig {
            base_model: base_model.into(),
            rank,
            train_unembed: true,
            train_mlp: true,
            train_attn: true,
            seed: None,
            user_metadata: BTreeMap::new(),
        }
    }
}

/// What the service says about a model (`get_info`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelInfo {
    pub model_id: String,
    /// The base model; samplers of this model use its tokenizer.
    pub model_name: String,
    /// The tokenizer to load (a model id, cut at the first `:`).
    pub tokenizer_id: Option<String>,
    pub is_lora: Option<bool>,
    pub lora_rank: Option<u32>,
}

/// Adam(W) settings of one optimizer step. Defaults are the service's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdamParams {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Gradient clipping norm; 0 disables clipping.
    pub grad_clip_norm: f64,
}

impl AdamParams {
    pub fn new(learning_rate: f64) -> AdamParams {
        AdamParams {
            learning_rate,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-12,
            weight_decay: 0.0,
            grad_clip_norm: 0.0,
        }
    }

    fn validate(&self) -> Result<(), TinkerError> {
        let all = [
            self.learning_rate,
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
            self.grad_clip_norm,
        ];
        let fail = |why: String| Err(TinkerError::InvalidInput(why));
        if all.iter().any(|v| !v.is_finite()) {
            return fail(format!("Adam parameters must be finite: {self:?}"));
        }
        if self.learning_rate <= 0.0 {
            return fail(format!(
                "the learning rate must be positive (got {})",
                self.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return fail(format!(
                "Adam betas must be in [0, 1) (got {}, {})",
                self.beta1, self.beta2
            ));
        }
        if self.eps <= 0.0 || self.weight_decay < 0.0 || self.grad_clip_norm < 0.0 {
            return fail(format!(
                "eps must be positive and weight decay and clip norm non-negative: {self:?}"
            ));
        }
        Ok(())
    }
}

impl Default for AdamParams {
    fn default() -> AdamParams {
        AdamParams::new(1e-4)
    }
}

/// Result of an optimizer step.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct OptimStepOutput {
    /// Keyed `name:reduction`; may be empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metrics: BTreeMap<String, f64>,
}

fn null_as_empty<'de, D>(d: D) -> Result<BTreeMap<String, f64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<BTreeMap<String, f64>>::deserialize(d)?.unwrap_or_default())
}

/// Next `seq_id` of a model, or the one whose submission failed.
#[derive(Debug)]
struct SeqState {
    next: u64,
    poisoned: Option<u64>,
}

/// A LoRA model being trained. Methods take `&self`; concurrent calls are
/// submitted one at a time in call order.
pub struct TrainingModel {
    session: Arc<SessionShared>,
    info: ModelInfo,
    seq: Mutex<SeqState>,
}

impl std::fmt::Debug for TrainingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingModel")
            .field("info", &self.info)
            .finish()
    }
}

impl TinkerSession {
    /// Creates a LoRA model of `rank` on `base_model` (all layers).
    pub async fn create_lora(
        &self,
        base_model: &str,
        rank: u32,
    ) -> Result<TrainingModel, TinkerError> {
        self.create_model(LoraConfig::new(base_model, rank)).await
    }

    /// Creates a LoRA model, waits until the service has allocated it, and
    /// reads its info.
    pub async fn create_model(&self, lora: LoraConfig) -> Result<TrainingModel, TinkerError> {
        if lora.rank == 0 {
            return Err(TinkerError::InvalidInput(
                "the LoRA rank must be at least 1".into(),
            ));
        }
        if lora.base_model.trim().is_empty() {
            return Err(TinkerError::InvalidInput("the base model is empty".into()));
        }
        let shared = &self.shared;
        let mut lora_config = serde_json::json!({
            "rank": lora.rank,
            "train_unembed": lora.train_unembed,
            "train_mlp": lora.train_mlp,
            "train_attn": lora.train_attn,
        });
        if let Some(seed) = lora.seed {
            lora_config["seed"] = seed.into();
        }
        let mut body = serde_json::json!({
            "session_id": shared.session_id,
            "model_seq_id": shared.take_model_seq(),
            "base_model": lora.base_model,
            "lora_config": lora_config,
            "optimizer_config": {"type": "adamw"},
            "type": "create_model",
        });
        if !lora.user_metadata.is_empty() {
            body["user_metadata"] = serde_json::json!(lora.user_metadata);
        }
        let started = Instant::now();
        let req = Request::post(&shared.transport, "create_model", Payload::json(&body)?)
            .operation("create_model");
        let submitted: Submitted = shared.transport.call(&req).await?.json("create_model")?;
        #[derive(Deserialize)]
        struct Created {
            model_id: String,
        }
        let created: Created = Pending::new(
            shared.transport.clone(),
            submitted.request_id,
            RequestKind::CreateModel,
            started.elapsed(),
            |o| json_result(o, "create_model"),
        )
        .wait()
        .await?;
        tracing::info!(model_id = %created.model_id, "Tinker LoRA model created");

        let info = get_info(shared, &created.model_id).await?;
        Ok(TrainingModel {
            session: shared.clone(),
            info,
            seq: Mutex::new(SeqState {
                next: 1,
                poisoned: None,
            }),
        })
    }
}

async fn get_info(shared: &SessionShared, model_id: &str) -> Result<ModelInfo, TinkerError> {
    #[derive(Deserialize)]
    struct Reply {
        model_id: String,
        model_data: ModelData,
        #[serde(default)]
        is_lora: Option<bool>,
        #[serde(default)]
        lora_rank: Option<u32>,
    }
    #[derive(Deserialize)]
    struct ModelData {
        model_name: String,
        #[serde(default)]
        tokenizer_id: Option<String>,
    }
    let body = serde_json::json!({ "model_id": model_id, "type": "get_info" });
    let reply: Reply = shared
        .transport
        .post_json("get_info", &body, "get_info")
        .await?;
    Ok(ModelInfo {
        model_id: reply.model_id,
        model_name: reply.model_data.model_name,
        tokenizer_id: reply
            .model_data
            .tokenizer_id
            .map(|t| t.split(':').next().unwrap_or_default().to_string()),
        is_lora: reply.is_lora,
        lora_rank: reply.lora_rank,
    })
}

/// The results of a forward_backward that may have been split into
/// several requests to respect the service's size limits.
#[must_use = "a submitted request does nothing until its result is awaited"]
#[derive(Debug)]
pub struct PendingForwardBackward {
    parts: Vec<Pending<ForwardBackwardOutput>>,
}

impl PendingForwardBackward {
    /// The service's ids for the underlying requests.
    pub fn request_ids(&self) -> Vec<&str> {
        self.parts.iter().map(Pending::request_id).collect()
    }

    /// Waits for every part and joins them.
    pub async fn wait(self) -> Result<ForwardBackwardOutput, TinkerError> {
        let mut outputs = Vec::with_capacity(self.parts.len());
        for part in self.parts {
            outputs.push(part.wait().await?);
        }
        Ok(fwdbwd::merge(outputs))
    }
}

impl std::future::IntoFuture for PendingForwardBackward {
    type Output = Result<ForwardBackwardOutput, TinkerError>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

impl TrainingModel {
    /// The service's id, `<session>:train:<n>`.
    pub fn id(&self) -> &str {
        &self.info.model_id
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The `seq_id` the next request will carry.
    pub async fn next_seq_id(&self) -> u64 {
        self.seq.lock().await.next
    }

    /// Sends one sequenced request built by `build(seq_id)` and returns its
    /// acknowledgement. Holds the sequence lock across the POST so requests
    /// reach the service in `seq_id` order.
    async fn submit(
        &self,
        seq: &mut SeqState,
        kind: RequestKind,
        build: impl FnOnce(u64) -> Result<Request, TinkerError>,
    ) -> Result<(Submitted, std::time::Duration), TinkerError> {
        if let Some(seq_id) = seq.poisoned {
            return Err(TinkerError::ModelPoisoned { seq_id });
        }
        let seq_id = seq.next;
        let req = build(seq_id)?;
        let started = Instant::now();
        let transport = &self.session.transport;
        let acknowledged = match transport.call(&req).await {
            Ok(resp) => resp.json::<Submitted>(kind.operation()),
            Err(e) => Err(e),
        };
        match acknowledged {
            Ok(submitted) => {
                seq.next += 1;
                Ok((submitted, started.elapsed()))
            }
            Err(e) => {
                tracing::error!(
                    model_id = %self.info.model_id,
                    seq_id,
                    "Tinker {} could not be submitted: {e}",
                    kind.operation()
                );
                seq.poisoned = Some(seq_id);
                Err(e)
            }
        }
    }

    /// A JSON request on this model with the standard fields.
    async fn submit_json<T: Send + 'static>(
        &self,
        kind: RequestKind,
        path: &'static str,
        fields: serde_json::Value,
        decode: Decoder<T>,
    ) -> Result<Pending<T>, TinkerError> {
        let mut seq = self.seq.lock().await;
        let transport = self.session.transport.clone();
        let model_id = self.info.model_id.clone();
        let (submitted, rtt) = self
            .submit(&mut seq, kind, |seq_id| {
                let mut body = fields;
                body["model_id"] = model_id.into();
                body["seq_id"] = seq_id.into();
                Ok(Request::post(&transport, path, Payload::json(&body)?)
                    .operation(kind.operation()))
            })
            .await?;
        Ok(Pending::new(
            transport,
            submitted.request_id,
            kind,
            rtt,
            decode,
        ))
    }

    /// Submits forward-backward on `data` with `loss` and returns at once;
    /// await the result later (e.g. after submitting `optim_step`).
    pub async fn submit_forward_backward(
        &self,
        data: &[Datum],
        loss: impl Into<Loss>,
    ) -> Result<PendingForwardBackward, TinkerError> {
        let loss = loss.into();
        loss.validate()?;
        if data.is_empty() {
            return Err(TinkerError::InvalidInput(
                "forward_backward needs at least one datum".into(),
            ));
        }
        let features = &self.session.features;
        let sizes: Vec<usize> = data.iter().map(fwdbwd::datum_bytes).collect();
        let ranges = fwdbwd::chunk_ranges(
            &sizes,
            features.fwdbwd_max_chunk_len,
            features.fwdbwd_max_chunk_bytes_count,
        );
        let transport = self.session.transport.clone();
        let model_id = self.info.model_id.clone();
        let mut seq = self.seq.lock().await;
        let mut parts = Vec::with_capacity(ranges.len());
        for range in ranges {
            let chunk = &data[range];
            let (submitted, rtt) = self
                .submit(&mut seq, RequestKind::ForwardBackward, |seq_id| {
                    let body = fwdbwd::encode_request(&model_id, seq_id, chunk, &loss)?;
                    Ok(
                        Request::post(&transport, "forward_backward", Payload::Protobuf(body))
                            .operation("forward_backward"),
                    )
                })
                .await?;
            parts.push(Pending::new(
                transport.clone(),
                submitted.request_id,
                RequestKind::ForwardBackward,
                rtt,
                fwdbwd::decode_output,
            ));
        }
        Ok(PendingForwardBackward { parts })
    }

    /// Computes the loss and its gradients on `data` (accumulated until the
    /// next optimizer step).
    pub async fn forward_backward(
        &self,
        data: &[Datum],
        loss: impl Into<Loss>,
    ) -> Result<ForwardBackwardOutput, TinkerError> {
        self.submit_forward_backward(data, loss).await?.wait().await
    }

    /// Submits an Adam step and returns at once.
    pub async fn submit_optim_step(
        &self,
        adam: AdamParams,
    ) -> Result<Pending<OptimStepOutput>, TinkerError> {
        adam.validate()?;
        let fields = serde_json::json!({ "type": "optim_step", "adam_params": adam });
        self.submit_json(RequestKind::OptimStep, "optim_step", fields, |o| {
            json_result(o, "optim_step")
        })
        .await
    }

    /// Applies the accumulated gradients with Adam.
    pub async fn optim_step(&self, adam: AdamParams) -> Result<OptimStepOutput, TinkerError> {
        self.submit_optim_step(adam).await?.wait().await
    }

    /// Saves the current weights for sampling under `name` and returns
    /// their path (`tinker://…/sampler_weights/<name>`).
    pub async fn save_weights_for_sampler(&self, name: &str) -> Result<SamplerPath, TinkerError> {
        check_name(name)?;
        let fields = serde_json::json!({
            "path": name,
            "kind": "snapshot",
            "type": "save_weights_for_sampler",
        });
        let pending = self
            .submit_json(
                RequestKind::SaveWeightsForSampler,
                "save_weights_for_sampler",
                fields,
                decode_sampler_path,
            )
            .await?;
        pending.wait().await
    }

    /// Snapshots the current weights and returns a sampler on them, without
    /// naming or keeping the weights (the per-step hot swap).
    pub async fn save_weights_and_get_sampler(&self) -> Result<Sampler, TinkerError> {
        let fields = serde_json::json!({
            "sampling_session_seq_id": self.session.take_sampling_seq(),
            "kind": "snapshot",
            "type": "save_weights_for_sampler",
        });
        let pending = self
            .submit_json(
                RequestKind::SaveWeightsForSampler,
                "save_weights_for_sampler",
                fields,
                |o| {
                    #[derive(Deserialize)]
                    struct Reply {
                        sampling_session_id: String,
                    }
                    json_result::<Reply>(o, "save_weights_for_sampler")
                        .map(|r| r.sampling_session_id)
                },
            )
            .await?;
        let sampling_session_id = pending.wait().await?;
        Ok(Sampler::new(
            self.session.clone(),
            sampling_session_id,
            Some(self.info.model_name.clone()),
            None,
        ))
    }

    /// Saves weights and optimizer state under `name` for resuming later.
    pub async fn save_weights(&self, name: &str) -> Result<CheckpointPath, TinkerError> {
        check_name(name)?;
        let fields = serde_json::json!({
            "path": name,
            "overwrite": false,
            "type": "save_weights",
        });
        let pending = self
            .submit_json(RequestKind::SaveWeights, "save_weights", fields, |o| {
                #[derive(Deserialize)]
                struct Reply {
                    path: String,
                }
                CheckpointPath::new(json_result::<Reply>(o, "save_weights")?.path)
            })
            .await?;
        pending.wait().await
    }

    /// Replaces the weights with a checkpoint's; with `restore_optimizer`
    /// the Adam state too.
    pub async fn load_weights(
        &self,
        path: &CheckpointPath,
        restore_optimizer: bool,
    ) -> Result<(), TinkerError> {
        let fields = serde_json::json!({
            "path": path.as_str(),
            "optimizer": restore_optimizer,
            "type": "load_weights",
        });
        let pending = self
            .submit_json(
                RequestKind::LoadWeights,
                "load_weights",
                fields,
                |o: Outcome| json_result::<serde_json::Value>(o, "load_weights").map(|_| ()),
            )
            .await?;
        pending.wait().await
    }
}

fn decode_sampler_path(outcome: Outcome) -> Result<SamplerPath, TinkerError> {
    #[derive(Deserialize)]
    struct Reply {
        path: String,
    }
    SamplerPath::new(json_result::<Reply>(outcome, "save_weights_for_sampler")?.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_defaults_and_checks() {
        let a = AdamParams::new(1e-4);
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::json!({"learning_rate": 1e-4, "beta1": 0.9, "beta2": 0.95, "eps": 1e-12,
                               "weight_decay": 0.0, "grad_clip_norm": 0.0})
        );
        assert!(a.validate().is_ok());
        assert!(AdamParams::new(0.0).validate().is_err());
        assert!(AdamParams::new(f64::NAN).validate().is_err());
        assert!(AdamParams { beta1: 1.0, ..a }.validate().is_err());
        assert!(AdamParams {
            grad_clip_norm: -1.0,
            ..a
        }
        .validate()
        .is_err());
    }

    #[test]
    fn optim_metrics_may_be_null_or_missing() {
        let o: OptimStepOutput = serde_json::from_str(r#"{"metrics": null}"#).unwrap();
        assert!(o.metrics.is_empty());
        let o: OptimStepOutput = serde_json::from_str(r#"{}"#).unwrap();
        assert!(o.metrics.is_empty());
        let o: OptimStepOutput =
            serde_json::from_str(r#"{"metrics": {"grad_norm:mean": 1.5}}"#).unwrap();
        assert_eq!(o.metrics["grad_norm:mean"], 1.5);
    }
}
