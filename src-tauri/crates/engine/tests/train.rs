#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The trainer end to end against an in-process fake Tinker service (the
//! client crate's fake, same wire format): scored turns with policy tokens
//! recorded through a real store, steps that train, record and checkpoint,
//! support-set turns that never reach a datum, and a paused step whose
//! batch outlives a restart.

use metaclaw_tinker::testing as support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use metaclaw_engine::config::RlConfig;
use metaclaw_engine::secret::Secret;
use metaclaw_engine::train::{StepReport, StoreExamples, TrainSettings, Trainer};
use metaclaw_store::{
    CheckpointKind, JudgeVote, JudgementRecord, StepOutcome, Store, TrainingRecord, TurnRecord,
    TurnStatus, TurnTokens, TurnType,
};
use support::Fake;

/// A response token only the support-set turn has.
const SUPPORT_TOKEN: u32 = 9_999;

fn turn(index: u32) -> TurnRecord {
    TurnRecord {
        request_id: format!("request-{index}"),
        session_id: "s1".into(),
        session_key: "s1".into(),
        key_source: "header".into(),
        turn_index: index,
        turn_type: TurnType::Main,
        client_dialect: "openai".into(),
        upstream_api: "openai".into(),
        model: Some("m".into()),
        stream: false,
        started_at_ms: 1_000 + i64::from(index),
        latency_ms: 5.0,
        ttfb_ms: None,
        status: TurnStatus::Complete,
        http_status: Some(200),
        prompt_tokens: None,
        completion_tokens: None,
        skill_generation: 0,
        injected_skills: Vec::new(),
        request_json: format!(r#"{{"messages":[{{"role":"user","content":"q{index}"}}]}}"#),
        response_json: Some(r#"{"content":"a"}"#.into()),
        error: None,
    }
}

/// Records `n` more scored turns (scores alternate +1 / -1) with policy
/// tokens; response token `1000 + index` marks each one. Returns their ids.
async fn scored_turns(store: &Store, first: u32, n: u32) -> Vec<i64> {
    for index in first..first + n {
        store.record_turn(turn(index));
    }
    store.flush().await.unwrap();
    let detail = store.reader().unwrap().session("s1").unwrap().unwrap();
    let ids: Vec<i64> = detail.turns[first as usize..]
        .iter()
        .map(|t| t.id)
        .collect();
    for (k, &id) in ids.iter().enumerate() {
        let index = first + k as u32;
        let score = if index.is_multiple_of(2) { 1 } else { -1 };
        store.record_judgement(JudgementRecord {
            turn_id: id,
            score: Some(score),
            votes: vec![JudgeVote::scored(score)],
            reason: None,
            judge_model: "judge".into(),
            judged_at_ms: 2_000,
            next_attempt_at_ms: 0,
        });
        store.record_training(TrainingRecord::TurnTokens(TurnTokens {
            turn_id: id,
            prompt_tokens: vec![1, 2, 3],
            response_tokens: vec![1_000 + index, 7],
            logprobs: vec![-0.5, -0.25],
            policy_version: 0,
        }));
    }
    store.flush().await.unwrap();
    ids
}

fn settings(fake: &Fake, batch_size: usize, save_every: u64) -> TrainSettings {
    let rl = RlConfig {
        base_url: fake.url.clone(),
        model: "Qwen/Qwen3-4B-Instruct-2507".into(),
        batch_size,
        save_every,
        api_key: Secret::new(support::KEY),
        ..RlConfig::default()
    };
    TrainSettings::from_config(&rl).unwrap()
}

fn trainer(fake: &Fake, store: &Store, batch_size: usize, save_every: u64) -> Trainer {
    let source = StoreExamples {
        database: store.path().to_path_buf(),
    };
    Trainer::new(
        settings(fake, batch_size, save_every),
        store.clone(),
        Arc::new(source),
    )
}

/// The target tokens of every datum the fake received.
fn trained_targets(fake: &Fake) -> Vec<Vec<i64>> {
    fake.requests_to("forward_backward")
        .iter()
        .flat_map(|r| r.proto.clone().unwrap().data)
        .map(|d| {
            d.loss_fn_inputs["target_tokens"]
                .dense
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn steps_train_record_and_checkpoint_and_skip_support_set_turns() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("metaclaw.db")).unwrap();
    let ids = scored_turns(&store, 0, 4).await;
    // A support-set turn (the evolver learned from it) with tokens, and a
    // scored turn without tokens (answered by the upstream).
    let support = scored_turns(&store, 4, 1).await[0];
    store.record_training(TrainingRecord::TurnTokens(TurnTokens {
        turn_id: support,
        prompt_tokens: vec![1, 2, 3],
        response_tokens: vec![SUPPORT_TOKEN, 7],
        logprobs: vec![-0.5, -0.25],
        policy_version: 0,
    }));
    store.mark_support_set("evolution-1", vec![support]);
    store.record_turn(turn(5));
    store.flush().await.unwrap();

    let mut trainer = trainer(&fake, &store, 2, 2);
    let never = || false;
    let first = trainer.try_step(0, Some("window-1"), &never).await.unwrap();
    assert_eq!(
        first,
        StepReport::Trained {
            step: 1,
            policy_version: 1,
            checkpoint: None
        }
    );
    let second = trainer.try_step(0, None, &never).await.unwrap();
    let StepReport::Trained {
        step: 2,
        policy_version: 2,
        checkpoint: Some(saved),
    } = second
    else {
        panic!("{second:?}");
    };
    assert!(saved.contains("metaclaw-policy-000002"), "{saved}");
    // Four turns with tokens outside the support set: nothing is left.
    let third = trainer.try_step(0, None, &never).await.unwrap();
    assert_eq!(third, StepReport::NotEnough { have: 0, need: 2 });
    assert!(trainer.sampler().is_some());
    store.flush().await.unwrap();

    let reader = store.reader().unwrap();
    let steps = reader.training_steps(10).unwrap();
    assert_eq!(steps.len(), 2);
    let (newer, older) = (&steps[0], &steps[1]);
    assert_eq!(older.turn_ids, ids[..2]);
    assert_eq!(newer.turn_ids, ids[2..]);
    assert_eq!(older.window_id.as_deref(), Some("window-1"));
    assert_eq!(newer.window_id, None);
    for (step, before) in [(older, 0), (newer, 1)] {
        assert_eq!(step.outcome, StepOutcome::Trained);
        assert_eq!(
            (step.policy_before, step.policy_after),
            (before, Some(before + 1))
        );
        assert_eq!(step.loss, "importance_sampling");
        assert!(step.sampler_id.is_some());
        // Rewards +1 and -1: mean 0, population std 1.
        assert_eq!((step.reward_mean, step.reward_std), (Some(0.0), Some(1.0)));
        // The fake's loss metric is the datum count; the optimizer's too.
        assert_eq!(step.metrics["loss:sum"], 2.0);
        assert_eq!(step.metrics["grad_norm:mean"], 0.5);
        assert!(step.error.is_none());
    }
    let checkpoints = reader.checkpoints(10).unwrap();
    assert_eq!(checkpoints.len(), 2, "{checkpoints:?}");
    assert!(checkpoints.iter().all(|c| c.step == 2));
    let kinds: Vec<_> = checkpoints.iter().map(|c| c.kind).collect();
    assert!(kinds.contains(&CheckpointKind::State) && kinds.contains(&CheckpointKind::Sampler));
    assert_eq!(
        reader.latest_state_checkpoint().unwrap().unwrap().path,
        saved
    );
    assert!(reader.pending_training_turns().unwrap().is_empty());
    let summary = reader.training_summary().unwrap();
    assert_eq!((summary.trained_steps, summary.policy_version), (2, 2));

    let targets = trained_targets(&fake);
    assert_eq!(targets.len(), 4);
    assert!(targets
        .iter()
        .all(|t| !t.contains(&i64::from(SUPPORT_TOKEN))));
    let marks: Vec<i64> = targets.iter().map(|t| t[2]).collect();
    assert_eq!(marks, [1_000, 1_001, 1_002, 1_003]);
    assert_eq!(fake.requests_to("optim_step").len(), 2);
    assert_eq!(fake.requests_to("save_weights").len(), 1);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn a_paused_step_keeps_its_batch_across_a_restart() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("metaclaw.db")).unwrap();
    let ids = scored_turns(&store, 0, 1).await;

    // One turn of two: a partial batch, taken and kept.
    let mut first = trainer(&fake, &store, 2, 5);
    let never = || false;
    let report = first.try_step(0, Some("w1"), &never).await.unwrap();
    assert_eq!(report, StepReport::NotEnough { have: 1, need: 2 });
    store.flush().await.unwrap();
    assert_eq!(
        store.reader().unwrap().pending_training_turns().unwrap(),
        ids
    );

    // A second turn fills it; the window's pause request comes after the
    // forward-backward was submitted: it is awaited, the next request is not.
    let ids = [ids, scored_turns(&store, 1, 1).await].concat();
    let asked = AtomicUsize::new(0);
    let pause = || asked.fetch_add(1, Ordering::SeqCst) >= 1;
    let report = first.try_step(0, Some("w1"), &pause).await.unwrap();
    assert_eq!(
        report,
        StepReport::Paused {
            step: 1,
            batch: ids.clone()
        }
    );
    assert_eq!(fake.requests_to("forward_backward").len(), 1);
    assert!(fake.requests_to("optim_step").is_empty());
    assert!(first.in_progress());
    drop(first);

    // Restart: a new trainer (and service session) on the same store, with
    // a newer turn available. The kept batch trains, from the start.
    let newer = scored_turns(&store, 2, 1).await;
    store.flush().await.unwrap();
    let reader = store.reader().unwrap();
    assert_eq!(reader.pending_training_turns().unwrap(), ids);
    assert!(reader.training_steps(10).unwrap().is_empty());
    let mut second = trainer(&fake, &store, 2, 5);
    let report = second.try_step(0, Some("w2"), &never).await.unwrap();
    assert_eq!(
        report,
        StepReport::Trained {
            step: 1,
            policy_version: 1,
            checkpoint: None
        }
    );
    store.flush().await.unwrap();
    let steps = reader.training_steps(10).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].turn_ids, ids);
    assert_eq!(steps[0].window_id.as_deref(), Some("w2"));
    assert!(reader.pending_training_turns().unwrap().is_empty());
    // The newer turn starts the next batch.
    let report = second.try_step(0, Some("w2"), &never).await.unwrap();
    assert_eq!(report, StepReport::NotEnough { have: 1, need: 2 });
    store.flush().await.unwrap();
    assert_eq!(reader.pending_training_turns().unwrap(), newer);
    assert_eq!(fake.requests_to("create_session").len(), 2);
    assert_eq!(fake.requests_to("forward_backward").len(), 2);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}
