//! The training flow the conformance test also runs with the official
//! Python SDK: create a LoRA model, forward-backward, optimizer step, hot-swap
//! sampler, sample, checkpoint, named sampler weights, sample from them, load
//! the checkpoint, finish. Prints what came back as one JSON object.
//!
//! ```text
//! TINKER_BASE_URL=http://127.0.0.1:8765 TINKER_API_KEY=tml-… \
//!     cargo run -q -p metaclaw-tinker --example flow
//! ```

use metaclaw_tinker::{
    AdamParams, Datum, LossFn, SamplerSource, SamplingParams, Stop, TinkerClient, TinkerConfig,
    TinkerError,
};
use serde_json::json;

const BASE_MODEL: &str = "Qwen/Qwen3-4B-Instruct-2507";

fn datums() -> Result<Vec<Datum>, TinkerError> {
    let datum = |index, tokens: &[u32], logprobs: Vec<f32>, advantages: Vec<f32>| {
        Datum::shifted(tokens, logprobs, advantages)
            .map_err(|source| TinkerError::Datum { index, source })
    };
    Ok(vec![
        datum(
            0,
            &[1, 2, 3, 4, 5],
            vec![0.0, 0.0, -0.1, -0.2],
            vec![0.0, 0.0, 0.5, 0.5],
        )?,
        datum(1, &[7, 8, 9], vec![0.0, -1.5], vec![0.0, -0.25])?,
    ])
}

async fn run() -> Result<serde_json::Value, TinkerError> {
    let config = TinkerConfig::from_env()?;
    let session = TinkerClient::connect(config).await?;
    let model = session.create_lora(BASE_MODEL, 8).await?;

    // Submit both before waiting, as the trainer does.
    let fwd = model
        .submit_forward_backward(&datums()?, LossFn::ImportanceSampling)
        .await?;
    let step = model.submit_optim_step(AdamParams::new(1e-4)).await?;
    let fwd = fwd.await?;
    let step = step.await?;

    let sampler = model.save_weights_and_get_sampler().await?;
    let params = SamplingParams {
        max_tokens: Some(3),
        temperature: 0.7,
        top_k: 50,
        top_p: 0.95,
        seed: Some(7),
        stop: Some(Stop::Strings(vec!["</s>".into()])),
    };
    let samples = sampler.sample(&[11, 12, 13], 2, &params).await?;

    let checkpoint = model.save_weights("step_0001").await?;
    let sampler_path = model.save_weights_for_sampler("final").await?;
    let named = session
        .sampler(SamplerSource::Path(sampler_path.clone()))
        .await?;
    let short = SamplingParams {
        max_tokens: Some(2),
        ..SamplingParams::default()
    };
    let named_samples = named.sample(&[21, 22], 1, &short).await?;
    model.load_weights(&checkpoint, false).await?;
    let session_id = session.id().to_string();
    session.finish().await?;

    let logprobs: Vec<_> = (0..fwd.outputs.len()).map(|i| fwd.logprobs(i)).collect();
    Ok(json!({
        "session_id": session_id,
        "model_id": model.id(),
        "base_model": model.info().model_name,
        "forward_backward": {"metrics": fwd.metrics, "logprobs": logprobs},
        "optim_step": {"metrics": step.metrics},
        "samples": samples,
        "checkpoint": checkpoint,
        "sampler_path": sampler_path,
        "named_sampler_base_model": named.base_model(),
        "named_samples": named_samples,
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    match run().await {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("flow failed [{}]: {e}", e.code());
            std::process::exit(1);
        }
    }
}
