//! The typed records that go into the store (commands) and come out of it (rows).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A session the tracker has just seen for the first time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStart {
    pub id: String,
    pub session_key: String,
    /// How the key was obtained, e.g. `header` or `derived`.
    pub key_source: String,
    pub started_at_ms: i64,
}

/// Whether a turn is part of the main conversation (learned from) or a side call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnType {
    Main,
    Side,
}

impl TurnType {
    /// The text stored in the database and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnType::Main => "main",
            TurnType::Side => "side",
        }
    }
}

impl fmt::Display for TurnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TurnType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "main" => Ok(TurnType::Main),
            "side" => Ok(TurnType::Side),
            other => Err(other.to_owned()),
        }
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    /// The upstream answered in full and the client received it.
    Complete,
    /// The client went away mid-stream; the partial answer is kept but never
    /// learned from as if it were complete.
    Aborted,
    /// The upstream answered with an error or could not be reached.
    UpstreamError,
    /// The proxy itself failed (bad request, internal error).
    ProxyError,
}

impl TurnStatus {
    /// The text stored in the database and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnStatus::Complete => "complete",
            TurnStatus::Aborted => "aborted",
            TurnStatus::UpstreamError => "upstream_error",
            TurnStatus::ProxyError => "proxy_error",
        }
    }
}

impl fmt::Display for TurnStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TurnStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "complete" => Ok(TurnStatus::Complete),
            "aborted" => Ok(TurnStatus::Aborted),
            "upstream_error" => Ok(TurnStatus::UpstreamError),
            "proxy_error" => Ok(TurnStatus::ProxyError),
            other => Err(other.to_owned()),
        }
    }
}

/// One finished request/response pair, as the turn recorder hands it over.
///
/// It carries the session key and its source too, so the session row can be
/// recreated if it is missing (a turn that outlived a restart of the proxy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    pub request_id: String,
    pub session_id: String,
    pub session_key: String,
    pub key_source: String,
    pub turn_index: u32,
    pub turn_type: TurnType,
    pub client_dialect: String,
    pub upstream_api: String,
    pub model: Option<String>,
    pub stream: bool,
    pub started_at_ms: i64,
    pub latency_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub status: TurnStatus,
    pub http_status: Option<u16>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub skill_generation: i64,
    /// Skill names in the order they were injected (best first).
    pub injected_skills: Vec<String>,
    /// The request as sent upstream. The store keeps each distinct part of
    /// it (a message, the tools, a long prompt's pieces) once, so a session
    /// that resends its history costs linear space; [`TurnRow::request`]
    /// reads back the value parsed from this exact text.
    pub request_json: String,
    /// The response as received; for streams, the assembled message.
    pub response_json: Option<String>,
    pub error: Option<String>,
}

/// One row of the session list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub session_key: String,
    pub key_source: String,
    pub started_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub end_reason: Option<String>,
    pub turn_count: u32,
}

/// A session with all its turns, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionDetail {
    pub session: SessionSummary,
    pub turns: Vec<TurnRow>,
}

/// One recorded turn as read back; request and response are parsed JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnRow {
    pub id: i64,
    pub request_id: String,
    pub turn_index: u32,
    pub turn_type: TurnType,
    pub client_dialect: String,
    pub upstream_api: String,
    pub model: Option<String>,
    pub stream: bool,
    pub started_at_ms: i64,
    pub latency_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub status: TurnStatus,
    pub http_status: Option<u16>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub skill_generation: i64,
    pub injected_skills: Vec<String>,
    pub request: serde_json::Value,
    pub response: Option<serde_json::Value>,
    pub error: Option<String>,
    /// Whether the PRM judge has scored the turn; `None` for turns that are
    /// never judged (side turns, turns that did not complete).
    pub judge_state: Option<JudgementState>,
    /// The PRM score (+1, 0, -1) once scored.
    pub score: Option<i8>,
    /// The votes of the latest judging attempt.
    pub votes: Vec<JudgeVote>,
    /// The judge's reason, from a vote of the majority.
    pub judge_reason: Option<String>,
}

/// Where a main turn is in judging. A turn without a stored judgement is
/// `Pending`; every vote failing gives `FailedRetry`, never a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgementState {
    Pending,
    Scored,
    FailedRetry,
}

impl JudgementState {
    /// The text stored in the database and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JudgementState::Pending => "pending",
            JudgementState::Scored => "scored",
            JudgementState::FailedRetry => "failed_retry",
        }
    }
}

impl FromStr for JudgementState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(JudgementState::Pending),
            "scored" => Ok(JudgementState::Scored),
            "failed_retry" => Ok(JudgementState::FailedRetry),
            other => Err(other.to_owned()),
        }
    }
}

/// One judge sample: a score, or why it produced none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeVote {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<i8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl JudgeVote {
    pub fn scored(score: i8) -> JudgeVote {
        JudgeVote {
            score: Some(score),
            failure: None,
        }
    }

    pub fn failed(reason: impl Into<String>) -> JudgeVote {
        JudgeVote {
            score: None,
            failure: Some(reason.into()),
        }
    }
}

/// A judging attempt to record. `score: None` means every vote failed: the
/// turn is kept for a retry at `next_attempt_at_ms` instead of being scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgementRecord {
    pub turn_id: i64,
    pub score: Option<i8>,
    pub votes: Vec<JudgeVote>,
    pub reason: Option<String>,
    pub judge_model: String,
    pub judged_at_ms: i64,
    /// Only read when `score` is `None`.
    pub next_attempt_at_ms: i64,
}

/// A turn's stored judgement in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub turn_id: i64,
    pub state: JudgementState,
    pub score: Option<i8>,
    pub votes: Vec<JudgeVote>,
    pub reason: Option<String>,
    pub judge_model: String,
    pub attempts: u32,
    pub next_attempt_at_ms: Option<i64>,
    pub judged_at_ms: Option<i64>,
}

/// A main turn ready to be judged, with what the judge reads.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnToJudge {
    pub turn_id: i64,
    pub session_id: String,
    pub client_dialect: String,
    /// The dialect `request` and `response` are in (they are stored as the
    /// upstream received and sent them).
    pub upstream_api: String,
    pub request: serde_json::Value,
    pub response: Option<serde_json::Value>,
    /// The user's latest instruction in the session's next main turn, where
    /// corrections show up; `None` when there is no next turn (yet).
    pub next_instruction: Option<String>,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// A scored main turn selected as training data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingTurn {
    pub turn_id: i64,
    pub session_id: String,
    pub skill_generation: i64,
    pub score: i8,
}

/// What became of one skill an evolution proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvolvedSkillOutcome {
    /// Written and active.
    Added,
    /// Written with status pending, waiting for the user's review.
    Pending,
    /// Merged into an existing skill (the name recorded is that skill's).
    Merged,
    /// Not written (a duplicate with nothing new, an unusable name, over the limit).
    Dropped,
}

impl EvolvedSkillOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EvolvedSkillOutcome::Added => "added",
            EvolvedSkillOutcome::Pending => "pending",
            EvolvedSkillOutcome::Merged => "merged",
            EvolvedSkillOutcome::Dropped => "dropped",
        }
    }
}

impl std::str::FromStr for EvolvedSkillOutcome {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "added" => Ok(EvolvedSkillOutcome::Added),
            "pending" => Ok(EvolvedSkillOutcome::Pending),
            "merged" => Ok(EvolvedSkillOutcome::Merged),
            "dropped" => Ok(EvolvedSkillOutcome::Dropped),
            other => Err(other.to_owned()),
        }
    }
}

/// One proposed skill and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvolvedSkill {
    pub name: String,
    pub outcome: EvolvedSkillOutcome,
    /// Why it was dropped, or what it was merged from.
    pub detail: Option<String>,
}

/// One run of the skill evolver, as recorded and read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvolutionRecord {
    pub id: String,
    pub session_id: String,
    /// `session_end`, `every_n_turns` or `low_success`.
    pub trigger: String,
    pub model: String,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    /// `None` when it succeeded; otherwise why it failed (nothing was written).
    pub error: Option<String>,
    pub skills: Vec<EvolvedSkill>,
}

impl EvolutionRecord {
    /// `ok` or `failed`, as stored.
    pub fn status(&self) -> &'static str {
        if self.error.is_some() {
            "failed"
        } else {
            "ok"
        }
    }

    /// How many proposed skills ended with `outcome`.
    pub fn count(&self, outcome: EvolvedSkillOutcome) -> usize {
        self.skills.iter().filter(|s| s.outcome == outcome).count()
    }
}

/// How often a skill was injected, when, and how the turns it was injected
/// into scored against comparable turns without it.
///
/// The baseline is every scored main turn since the skill's first injection
/// that did not have it: the same period, so a judge or an agent that got
/// better or worse over time does not count for or against the skill.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct SkillUsage {
    /// Turns it was injected into (any type, any outcome).
    pub injected: u64,
    pub first_used_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    /// Scored main turns it was injected into, and their mean PRM score.
    pub scored: u64,
    pub mean_score: Option<f64>,
    /// Scored main turns since its first injection without it, and their mean.
    pub baseline_scored: u64,
    pub baseline_mean: Option<f64>,
}

impl SkillUsage {
    /// The mean score with the skill minus the baseline; `None` until both exist.
    pub fn effect(&self) -> Option<f64> {
        Some(self.mean_score? - self.baseline_mean?)
    }
}

/// How many rows the main tables hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StoreCounts {
    pub sessions: u64,
    pub turns: u64,
}

#[cfg(test)]
// Tests may fail loudly; the no-panic policy is for the store itself.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn turn_type_text_matches_serde() {
        for t in [TurnType::Main, TurnType::Side] {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{t}\""));
            assert_eq!(t.as_str().parse::<TurnType>(), Ok(t));
        }
        assert_eq!("Main".parse::<TurnType>(), Err("Main".to_owned()));
    }

    #[test]
    fn turn_status_text_matches_serde() {
        let all = [
            (TurnStatus::Complete, "complete"),
            (TurnStatus::Aborted, "aborted"),
            (TurnStatus::UpstreamError, "upstream_error"),
            (TurnStatus::ProxyError, "proxy_error"),
        ];
        for (status, text) in all {
            assert_eq!(status.to_string(), text);
            assert_eq!(serde_json::to_value(status).unwrap(), text);
            assert_eq!(text.parse::<TurnStatus>(), Ok(status));
        }
    }
}
