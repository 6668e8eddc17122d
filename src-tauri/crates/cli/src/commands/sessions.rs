//! `metaclaw sessions list | show`.

use std::process::ExitCode;

use clap::Subcommand;
use metaclaw_store::{JudgementState, StoreReader, TurnRow};

use crate::output::{local_time, outln, print_json, print_table, truncate};

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// Recorded conversations, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One conversation with its turns (ID or a unique prefix of it).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let store = super::load()?;
    let db = store.paths().database();
    let reader = if db.exists() {
        Some(StoreReader::open(&db)?)
    } else {
        None
    };
    match command {
        SessionsCommand::List { limit, json } => {
            let sessions = match &reader {
                Some(reader) => reader.list_sessions(limit, 0)?,
                None => Vec::new(),
            };
            if json {
                return print_json(&sessions);
            }
            if sessions.is_empty() {
                outln!("no sessions recorded yet");
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = sessions
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        local_time(s.started_at_ms),
                        local_time(s.last_seen_at_ms),
                        s.turn_count.to_string(),
                        s.end_reason.clone().unwrap_or_else(|| "open".into()),
                        s.key_source.clone(),
                    ]
                })
                .collect();
            print_table(
                &["ID", "STARTED", "LAST", "TURNS", "ENDED", "KEY FROM"],
                &rows,
            );
        }
        SessionsCommand::Show { id, json } => {
            let detail = reader
                .as_ref()
                .map(|r| r.session(&id))
                .transpose()?
                .flatten()
                .ok_or_else(|| {
                    anyhow::anyhow!("no session with id {id:?} (see `metaclaw sessions list`)")
                })?;
            if json {
                return print_json(&detail);
            }
            let s = &detail.session;
            outln!("session  {}", s.id);
            outln!(
                "started  {}   last {}",
                local_time(s.started_at_ms),
                local_time(s.last_seen_at_ms)
            );
            outln!("ended    {}", s.end_reason.as_deref().unwrap_or("open"));
            outln!();
            let rows: Vec<Vec<String>> = detail
                .turns
                .iter()
                .map(|t| {
                    vec![
                        t.turn_index.to_string(),
                        local_time(t.started_at_ms),
                        t.turn_type.to_string(),
                        format!("{}→{}", t.client_dialect, t.upstream_api),
                        t.model.clone().unwrap_or_default(),
                        t.status.to_string(),
                        format!("{:.0} ms", t.latency_ms),
                        format!("{}/{}", opt(t.prompt_tokens), opt(t.completion_tokens)),
                        score(t),
                        truncate(&t.injected_skills.join(","), 60),
                    ]
                })
                .collect();
            print_table(
                &[
                    "#", "TIME", "TYPE", "API", "MODEL", "STATUS", "LATENCY", "TOKENS", "SCORE",
                    "SKILLS",
                ],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The PRM score (`+1`, `0`, `-1`), `…` while judging is pending or being
/// retried, `-` for turns that are never judged.
fn score(turn: &TurnRow) -> String {
    match (turn.score, turn.judge_state) {
        (Some(score), _) if score > 0 => format!("+{score}"),
        (Some(score), _) => score.to_string(),
        (None, Some(JudgementState::FailedRetry)) => "retry".into(),
        (None, Some(_)) => "…".into(),
        (None, None) => "-".into(),
    }
}

fn opt(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}
