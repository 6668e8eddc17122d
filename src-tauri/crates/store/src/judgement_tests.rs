//! Judgements, the selection of turns to judge, and training data with
//! support sets, through the public store API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::testing::{session, turn};
use crate::{
    EvolutionRecord, EvolvedSkill, EvolvedSkillOutcome, JudgeVote, JudgementRecord, JudgementState,
    Store, StoreReader, TurnStatus, TurnType,
};

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.sqlite3")).unwrap();
    (dir, store)
}

fn ids_to_judge(reader: &StoreReader, now_ms: i64, grace_ms: i64) -> Vec<i64> {
    reader
        .turns_to_judge(now_ms, grace_ms, 100)
        .unwrap()
        .iter()
        .map(|t| t.turn_id)
        .collect()
}

fn turn_ids(reader: &StoreReader, session_id: &str) -> Vec<i64> {
    let detail = reader.session(session_id).unwrap().unwrap();
    detail.turns.iter().map(|t| t.id).collect()
}

fn scored(turn_id: i64, score: i8) -> JudgementRecord {
    JudgementRecord {
        turn_id,
        score: Some(score),
        votes: vec![JudgeVote::scored(score), JudgeVote::failed("HTTP 500")],
        reason: Some("fine".to_owned()),
        judge_model: "judge".to_owned(),
        judged_at_ms: 9_000,
        next_attempt_at_ms: 0,
    }
}

#[tokio::test]
async fn a_turn_is_ready_once_settled_and_carries_the_next_instruction() {
    let (_dir, store) = temp_store();
    store.session_started(session("s", 1_000));
    store.record_turn(turn("s", 0, &[]));
    let mut side = turn("s", 1, &[]);
    side.turn_type = TurnType::Side;
    store.record_turn(side);
    let mut aborted = turn("s", 2, &[]);
    aborted.status = TurnStatus::Aborted;
    store.record_turn(aborted);
    store.record_turn(turn("s", 3, &[]));
    store.flush().await.unwrap();
    let reader = store.reader().unwrap();
    let ids = turn_ids(&reader, "s");

    // Turn 0 has a later main turn; turn 3 is the latest and still open.
    let ready = reader.turns_to_judge(1_400, 60_000, 100).unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].turn_id, ids[0]);
    assert_eq!(ready[0].next_instruction.as_deref(), Some("q2"));
    assert_eq!(ready[0].request["messages"][0]["content"], "q0");
    assert_eq!(ready[0].response.as_ref().unwrap()["content"], "a0");
    assert_eq!(
        (ready[0].upstream_api.as_str(), ready[0].attempts),
        ("openai", 0)
    );

    // After the grace period the latest turn is judged without a reply...
    assert_eq!(ids_to_judge(&reader, 100_000, 60_000), vec![ids[0], ids[3]]);
    // ...or at once when its session ended.
    store.session_ended("s", 2_000, "done");
    store.flush().await.unwrap();
    let ready = reader.turns_to_judge(1_400, 60_000, 100).unwrap();
    assert_eq!(ready.len(), 2);
    assert_eq!(ready[1].next_instruction, None);
}

#[tokio::test]
async fn a_failed_attempt_waits_for_its_retry_and_is_never_a_zero() {
    let (_dir, store) = temp_store();
    store.record_turn(turn("s", 0, &[]));
    store.session_ended("s", 2_000, "done");
    store.flush().await.unwrap();
    let reader = store.reader().unwrap();
    let id = turn_ids(&reader, "s")[0];

    store.record_judgement(JudgementRecord {
        turn_id: id,
        score: None,
        votes: vec![
            JudgeVote::failed("timed out"),
            JudgeVote::failed("no score"),
        ],
        reason: None,
        judge_model: "judge".to_owned(),
        judged_at_ms: 5_000,
        next_attempt_at_ms: 8_000,
    });
    store.flush().await.unwrap();
    let j = reader.judgement(id).unwrap().unwrap();
    assert_eq!(j.state, JudgementState::FailedRetry);
    assert_eq!(
        (j.score, j.attempts, j.next_attempt_at_ms),
        (None, 1, Some(8_000))
    );
    assert_eq!(j.judged_at_ms, None);
    assert_eq!(j.votes[1], JudgeVote::failed("no score"));
    assert!(ids_to_judge(&reader, 7_999, 0).is_empty());
    let retry = reader.turns_to_judge(8_000, 0, 10).unwrap();
    assert_eq!((retry[0].turn_id, retry[0].attempts), (id, 1));
    assert!(reader.training_turns(3).unwrap().is_empty());

    store.record_judgement(scored(id, 0));
    store.flush().await.unwrap();
    let j = reader.judgement(id).unwrap().unwrap();
    assert_eq!(
        (j.state, j.score, j.attempts),
        (JudgementState::Scored, Some(0), 2)
    );
    assert_eq!((j.next_attempt_at_ms, j.judged_at_ms), (None, Some(9_000)));
    assert!(ids_to_judge(&reader, i64::MAX / 2, 0).is_empty());

    let row = &reader.session("s").unwrap().unwrap().turns[0];
    assert_eq!(row.judge_state, Some(JudgementState::Scored));
    assert_eq!(row.score, Some(0));
    assert_eq!(row.judge_reason.as_deref(), Some("fine"));
    assert_eq!(row.votes.len(), 2);
    let json = serde_json::to_value(row).unwrap();
    assert_eq!(json["score"], 0);
    assert_eq!(json["votes"][1]["failure"], "HTTP 500");
    assert_eq!(json["judge_state"], "scored");

    // A late duplicate attempt (all votes failed) never replaces the score.
    store.record_judgement(JudgementRecord {
        turn_id: id,
        score: None,
        votes: vec![JudgeVote::failed("late")],
        reason: None,
        judge_model: "judge".to_owned(),
        judged_at_ms: 10_000,
        next_attempt_at_ms: 20_000,
    });
    store.flush().await.unwrap();
    let j = reader.judgement(id).unwrap().unwrap();
    assert_eq!(
        (j.state, j.score, j.attempts),
        (JudgementState::Scored, Some(0), 2)
    );
    assert_eq!(j.votes.len(), 2);
}

#[tokio::test]
async fn training_turns_are_scored_main_turns_of_the_generation_outside_support_sets() {
    let (_dir, store) = temp_store();
    for i in 0..4 {
        store.record_turn(turn("s", i, &[]));
    }
    let mut older = turn("s", 4, &[]);
    older.skill_generation = 2;
    store.record_turn(older);
    store.record_turn(turn("s", 5, &[])); // never scored
    store.flush().await.unwrap();
    let reader = store.reader().unwrap();
    let ids = turn_ids(&reader, "s");
    for (i, id) in ids.iter().take(5).enumerate() {
        store.record_judgement(scored(*id, if i % 2 == 0 { 1 } else { -1 }));
    }
    store.mark_support_set("evo-1", vec![ids[1]]);
    store.mark_support_set("evo-2", vec![ids[1], ids[2]]);
    store.flush().await.unwrap();

    let selected = reader.training_turns(3).unwrap();
    let picked: Vec<(i64, i8)> = selected.iter().map(|t| (t.turn_id, t.score)).collect();
    assert_eq!(picked, vec![(ids[0], 1), (ids[3], -1)]);
    assert!(selected.iter().all(|t| t.skill_generation == 3));
    let older: Vec<i64> = reader
        .training_turns(2)
        .unwrap()
        .iter()
        .map(|t| t.turn_id)
        .collect();
    assert_eq!(older, vec![ids[4]]);
    assert!(reader.training_turns(7).unwrap().is_empty());
}

#[tokio::test]
async fn evolutions_are_recorded_with_their_skills_and_consumed_turns() {
    let (_dir, store) = temp_store();
    for i in 0..3 {
        store.record_turn(turn("s", i, &[]));
    }
    store.flush().await.unwrap();
    let reader = store.reader().unwrap();
    let ids = turn_ids(&reader, "s");
    assert!(reader.consumed_turns("s").unwrap().is_empty());
    store.mark_support_set("evo-1", vec![ids[0], ids[2]]);
    let skill = |name: &str, outcome, detail: Option<&str>| EvolvedSkill {
        name: name.to_owned(),
        outcome,
        detail: detail.map(str::to_owned),
    };
    store.record_evolution(EvolutionRecord {
        id: "evo-1".to_owned(),
        session_id: "s".to_owned(),
        trigger: "session_end".to_owned(),
        model: "evolver".to_owned(),
        started_at_ms: 10,
        finished_at_ms: 20,
        error: None,
        skills: vec![
            skill("check-offsets", EvolvedSkillOutcome::Added, None),
            skill("dates", EvolvedSkillOutcome::Merged, Some("from dates-2")),
            skill("x", EvolvedSkillOutcome::Dropped, Some("over the limit")),
        ],
    });
    store.record_evolution(EvolutionRecord {
        id: "evo-2".to_owned(),
        session_id: "s".to_owned(),
        trigger: "low_success".to_owned(),
        model: "evolver".to_owned(),
        started_at_ms: 30,
        finished_at_ms: 31,
        error: Some("HTTP 500".to_owned()),
        skills: Vec::new(),
    });
    store.flush().await.unwrap();

    assert_eq!(reader.consumed_turns("s").unwrap(), vec![ids[0], ids[2]]);
    let found = reader.evolutions(10).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].status(), "failed");
    assert_eq!(found[1].status(), "ok");
    assert_eq!(found[1].skills.len(), 3);
    assert_eq!(found[1].skills[1].outcome, EvolvedSkillOutcome::Merged);
    assert_eq!(found[1].count(EvolvedSkillOutcome::Added), 1);
}
