//! Builders shared by the unit tests.

use crate::{SessionStart, TurnRecord, TurnStatus, TurnType};

pub(crate) fn session(id: &str, started_at_ms: i64) -> SessionStart {
    SessionStart {
        id: id.to_owned(),
        session_key: format!("key-{id}"),
        key_source: "header".to_owned(),
        started_at_ms,
    }
}

/// A complete main turn of `session_id` with a small request and response.
pub(crate) fn turn(session_id: &str, index: u32, skills: &[&str]) -> TurnRecord {
    TurnRecord {
        request_id: format!("{session_id}-req-{index}"),
        session_id: session_id.to_owned(),
        session_key: format!("key-{session_id}"),
        key_source: "header".to_owned(),
        turn_index: index,
        turn_type: TurnType::Main,
        client_dialect: "openai".to_owned(),
        upstream_api: "openai".to_owned(),
        model: Some("gpt-test".to_owned()),
        stream: true,
        started_at_ms: 1_000 + i64::from(index) * 100,
        latency_ms: 42.5,
        ttfb_ms: Some(7.25),
        status: TurnStatus::Complete,
        http_status: Some(200),
        prompt_tokens: Some(10),
        completion_tokens: Some(5),
        skill_generation: 3,
        injected_skills: skills.iter().map(|s| (*s).to_owned()).collect(),
        request_json: format!(r#"{{"messages":[{{"role":"user","content":"q{index}"}}]}}"#),
        response_json: Some(format!(r#"{{"content":"a{index}"}}"#)),
        error: None,
    }
}

/// The ids of a session's turns, in order.
pub(crate) fn turn_ids(reader: &crate::StoreReader, session_id: &str) -> Vec<i64> {
    match reader.session(session_id) {
        Ok(Some(detail)) => detail.turns.iter().map(|t| t.id).collect(),
        _ => Vec::new(),
    }
}

/// A successful judging of `turn_id` with `score`.
pub(crate) fn scored(turn_id: i64, score: i8) -> crate::JudgementRecord {
    crate::JudgementRecord {
        turn_id,
        score: Some(score),
        votes: vec![crate::JudgeVote::scored(score)],
        reason: Some("judged".to_owned()),
        judge_model: "judge".to_owned(),
        judged_at_ms: 9_000,
        next_attempt_at_ms: 0,
    }
}
