//! Client for Tinker-compatible cloud LoRA services: the slow loop's
//! trainer runs forward-backward and optimizer steps on the service and
//! samples from the weights it produces.
//!
//! ```no_run
//! # async fn demo() -> Result<(), metaclaw_tinker::TinkerError> {
//! use metaclaw_tinker::*;
//! let config = TinkerConfig::new("https://tinker.example", ApiKey::new("tml-…"));
//! let session = TinkerClient::connect(config).await?;
//! let model = session.create_lora("Qwen/Qwen3-4B-Instruct-2507", 32).await?;
//! let datum = Datum::shifted(&[1, 2, 3], vec![0.0, -0.7], vec![0.0, 0.5])
//!     .map_err(|source| TinkerError::Datum { index: 0, source })?;
//! let fwd = model.submit_forward_backward(&[datum], LossFn::ImportanceSampling).await?;
//! let step = model.submit_optim_step(AdamParams::new(1e-4)).await?;
//! let (out, _) = (fwd.await?, step.await?);
//! println!("loss {:?}", out.loss());
//! let sampler = model.save_weights_and_get_sampler().await?;
//! let seqs = sampler.sample(&[1, 2, 3], 1, &SamplingParams::default()).await?;
//! println!("{:?}", seqs[0].tokens);
//! session.finish().await?;
//! # Ok(()) }
//! ```
//!
//! The wire protocol is the one the official Python SDK speaks (version
//! [`PROTOCOL_SDK_VERSION`]): JSON requests, protobuf forward-backward
//! bodies and results, request futures long-polled through
//! `retrieve_future`, per-model `seq_id` ordering, and a session heartbeat.

mod auth;
pub mod config;
pub mod datum;
pub mod error;
mod futures;
mod fwdbwd;
mod http;
pub mod paths;
pub mod proto;
pub mod retry;
pub mod sampling;
pub mod session;
pub mod training;

pub use config::{ApiKey, TinkerConfig, DEFAULT_BASE_URL, PROTOCOL_SDK_VERSION};
pub use datum::{Datum, DatumError, Loss, LossFn};
pub use error::{FailureCategory, TinkerError};
pub use futures::Pending;
pub use fwdbwd::{ForwardBackwardOutput, OutputTensor, TensorValues};
pub use http::ServerFeatures;
pub use paths::{CheckpointPath, SamplerPath};
pub use retry::RetryPolicy;
pub use sampling::{Sampler, SamplerSource, SamplingParams, Sequence, Stop, StopReason};
pub use session::{FinishReason, HeartbeatStatus, TinkerClient, TinkerSession};
pub use training::{
    AdamParams, LoraConfig, ModelInfo, OptimStepOutput, PendingForwardBackward, TrainingModel,
};

#[cfg(feature = "testing")]
pub mod testing;
