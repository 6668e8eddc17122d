//! `metaclaw train status | history | now` and `metaclaw checkpoints list`:
//! the slow loop's records in the store, and train-now through the running
//! server (the same path as `metaclaw schedule train-now`).

use std::process::ExitCode;

use clap::Subcommand;
use metaclaw_store::{Store, StoreReader, TrainingStepRecord};
use serde_json::json;

use super::schedule::ScheduleCommand;
use crate::output::{local_time, outln, print_json, print_table};

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Mode, policy version, the batch being collected, the last step and checkpoint.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Training steps, newest first.
    History {
        /// How many steps.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Open a training window now (in `auto` the trainer steps in it).
    Now,
}

#[derive(Subcommand)]
pub enum CheckpointsCommand {
    /// Saved weights on the training service, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn reader() -> anyhow::Result<(metaclaw_engine::config::Config, StoreReader)> {
    let store = super::load()?;
    let database = store.paths().database();
    if !database.exists() {
        // Nothing recorded yet: an empty store reads as no training.
        Store::open(&database)?.close();
    }
    Ok((store.config().clone(), StoreReader::open(&database)?))
}

pub async fn run(command: TrainCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrainCommand::Status { json } => status(json),
        TrainCommand::History { limit, json } => history(limit, json),
        TrainCommand::Now => super::schedule::run(ScheduleCommand::TrainNow).await,
    }
}

fn status(as_json: bool) -> anyhow::Result<ExitCode> {
    let (config, reader) = reader()?;
    let summary = reader.training_summary()?;
    if as_json {
        return print_json(&json!({
            "mode": config.mode.to_string(),
            "training": config.trains(),
            "model": config.rl.model,
            "batch_size": config.rl.batch_size,
            "summary": summary,
        }));
    }
    outln!("mode:            {}", config.mode);
    if let Some(why) = config.why_not_training() {
        outln!("training:        {why}");
    } else {
        outln!(
            "model:           {} (LoRA rank {})",
            config.rl.model,
            config.rl.lora_rank
        );
    }
    outln!("policy version:  {}", summary.policy_version);
    outln!(
        "steps:           {} ({} trained, {} failed)",
        summary.steps,
        summary.trained_steps,
        summary.failed_steps
    );
    outln!(
        "batch:           {}/{} turns collected",
        summary.pending_turns.len(),
        config.rl.batch_size
    );
    match &summary.last_step {
        Some(step) => outln!(
            "last step:       #{} {} at {}",
            step.id,
            step.outcome,
            local_time(step.finished_at_ms)
        ),
        None => outln!("last step:       none"),
    }
    match &summary.last_checkpoint {
        Some(c) => outln!("last checkpoint: {} (step {}, {})", c.path, c.step, c.kind),
        None => outln!("last checkpoint: none"),
    }
    Ok(ExitCode::SUCCESS)
}

fn history(limit: usize, as_json: bool) -> anyhow::Result<ExitCode> {
    let (_, reader) = reader()?;
    let steps = reader.training_steps(limit)?;
    if as_json {
        return print_json(&steps);
    }
    if steps.is_empty() {
        outln!("no training steps yet");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = steps.iter().map(history_row).collect();
    print_table(
        &[
            "STEP", "FINISHED", "OUTCOME", "POLICY", "TURNS", "REWARD", "LOSS", "SECS", "WINDOW",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn history_row(step: &TrainingStepRecord) -> Vec<String> {
    let policy = match step.policy_after {
        Some(after) => format!("v{}→v{after}", step.policy_before),
        None => format!("v{}", step.policy_before),
    };
    let reward = match (step.reward_mean, step.reward_std) {
        (Some(mean), Some(std)) => format!("{mean:+.2}±{std:.2}"),
        _ => "-".into(),
    };
    let loss = step
        .metrics
        .iter()
        .find(|(k, _)| k.split(':').next() == Some("loss"))
        .map_or_else(|| "-".into(), |(_, v)| format!("{v:.4}"));
    let outcome = match &step.error {
        Some(error) => format!("{}: {error}", step.outcome),
        None => step.outcome.to_string(),
    };
    vec![
        step.id.to_string(),
        local_time(step.finished_at_ms),
        outcome,
        policy,
        step.turn_ids.len().to_string(),
        reward,
        loss,
        format!("{:.1}", step.duration_ms as f64 / 1000.0),
        step.window_id.clone().unwrap_or_else(|| "-".into()),
    ]
}

pub fn checkpoints(command: CheckpointsCommand) -> anyhow::Result<ExitCode> {
    let CheckpointsCommand::List { json } = command;
    let (_, reader) = reader()?;
    let checkpoints = reader.checkpoints(usize::MAX)?;
    if json {
        return print_json(&checkpoints);
    }
    if checkpoints.is_empty() {
        outln!("no checkpoints yet");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = checkpoints
        .iter()
        .map(|c| {
            vec![
                c.step.to_string(),
                c.kind.to_string(),
                local_time(c.created_at_ms),
                c.path.clone(),
            ]
        })
        .collect();
    print_table(&["STEP", "KIND", "CREATED", "PATH"], &rows);
    Ok(ExitCode::SUCCESS)
}
