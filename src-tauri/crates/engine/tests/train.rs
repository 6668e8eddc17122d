#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The trainer end to end against an in-process fake Tinker service (the
//! client crate's fake, same wire format): scored turns with policy tokens
//! recorded through a real store, steps that train, record and checkpoint,
//! support-set turns that never reach a datum, a paused step whose batch
//! outlives a restart, on-policy distillation against a local fake teacher
//! (an OpenAI-format completions server), and the training events a
//! running engine publishes.

use metaclaw_tinker::testing as support;

#[path = "../../policy/tests/common/mod.rs"]
mod model;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use metaclaw_engine::config::{OpdConfig, RlConfig};
use metaclaw_engine::secret::Secret;
use metaclaw_engine::train::{
    StepReport, StoreExamples, Teacher, TrainSettings, Trainer, REVERSE_KL_METRIC,
};
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
            checkpoint: None,
            reward_mean: Some(0.0),
            turns: 2,
        }
    );
    let second = trainer.try_step(0, None, &never).await.unwrap();
    let StepReport::Trained {
        step: 2,
        policy_version: 2,
        checkpoint: Some(saved),
        ..
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
            checkpoint: None,
            reward_mean: Some(0.0),
            turns: 2,
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

// ---------------------------------------------------------------- distillation

/// How the fake teacher answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TeacherMode {
    /// OpenAI's echo shape: `choices[0].logprobs.token_logprobs`.
    Echo,
    /// vLLM's `prompt_logprobs` shape.
    PromptLogprobs,
    /// HTTP 500.
    Broken,
    /// One log-prob short (another tokenizer, say).
    Short,
}

/// What the fake teacher was sent: the `Authorization` header and the body.
type TeacherRequests = Arc<std::sync::Mutex<Vec<(Option<String>, serde_json::Value)>>>;

/// A local OpenAI-format completions server standing in for the teacher.
/// Its log-prob of a token: −1.5 for the marks (≥ 1000), −0.25 for 7,
/// −2 for anything else; the first echoed token has none.
#[derive(Clone)]
struct FakeTeacher {
    url: String,
    mode: Arc<std::sync::Mutex<TeacherMode>>,
    requests: TeacherRequests,
}

fn teacher_logprob(token: u64) -> f64 {
    match token {
        7 => -0.25,
        t if t >= 1_000 => -1.5,
        _ => -2.0,
    }
}

impl FakeTeacher {
    async fn start() -> FakeTeacher {
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        let teacher = FakeTeacher {
            url: String::new(),
            mode: Arc::new(std::sync::Mutex::new(TeacherMode::Echo)),
            requests: Arc::default(),
        };
        let state = teacher.clone();
        let app = axum::Router::new().route(
            "/v1/completions",
            axum::routing::post(
                move |headers: HeaderMap, axum::Json(body): axum::Json<serde_json::Value>| {
                    let state = state.clone();
                    async move {
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        state.requests.lock().unwrap().push((auth, body.clone()));
                        let tokens: Vec<u64> = body["prompt"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|t| t.as_u64().unwrap())
                            .collect();
                        let mode = *state.mode.lock().unwrap();
                        let mut echo: Vec<serde_json::Value> = std::iter::once(serde_json::Value::Null)
                            .chain(tokens[1..].iter().map(|&t| teacher_logprob(t).into()))
                            .collect();
                        let choice = match mode {
                            TeacherMode::Broken => {
                                return (StatusCode::INTERNAL_SERVER_ERROR, "teacher on fire")
                                    .into_response()
                            }
                            TeacherMode::Short => {
                                echo.pop();
                                serde_json::json!({"index": 0, "text": "", "logprobs": {"token_logprobs": echo}})
                            }
                            TeacherMode::Echo => {
                                // The generated token (max_tokens 1) follows the echo.
                                echo.push((-0.5).into());
                                serde_json::json!({"index": 0, "text": "", "logprobs": {"token_logprobs": echo}})
                            }
                            TeacherMode::PromptLogprobs => {
                                let entries: Vec<serde_json::Value> = tokens
                                    .iter()
                                    .enumerate()
                                    .map(|(i, &t)| {
                                        if i == 0 {
                                            serde_json::Value::Null
                                        } else {
                                            serde_json::json!({
                                                t.to_string(): {"logprob": teacher_logprob(t), "rank": 3},
                                                "424242": {"logprob": -0.01, "rank": 1}
                                            })
                                        }
                                    })
                                    .collect();
                                serde_json::json!({"index": 0, "text": "", "prompt_logprobs": entries})
                            }
                        };
                        axum::Json(serde_json::json!({"id": "cmpl-1", "object": "text_completion",
                            "model": body["model"], "choices": [choice]}))
                        .into_response()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeTeacher {
            url: format!("http://{addr}/v1"),
            ..teacher
        }
    }

    fn set(&self, mode: TeacherMode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn requests(&self) -> Vec<(Option<String>, serde_json::Value)> {
        self.requests.lock().unwrap().clone()
    }
}

fn distilling(trainer: Trainer, teacher: &FakeTeacher, kl_coef: f64) -> Trainer {
    let opd = OpdConfig {
        teacher_url: teacher.url.clone(),
        teacher_model: "teacher-32b".into(),
        kl_coef,
        api_key: Secret::new("sk-teacher-0123456789abcdef"),
        ..OpdConfig::default()
    };
    trainer.with_teacher(Teacher::from_config(&opd).unwrap().unwrap())
}

/// The per-position advantages of every datum the fake received.
fn trained_advantages(fake: &Fake) -> Vec<Vec<f32>> {
    fake.requests_to("forward_backward")
        .iter()
        .flat_map(|r| r.proto.clone().unwrap().data)
        .map(|d| {
            d.loss_fn_inputs["advantages"]
                .dense
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        })
        .collect()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
}

#[tokio::test]
async fn distillation_folds_the_teachers_logprobs_into_the_advantages() {
    let fake = Fake::start().await;
    let teacher = FakeTeacher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("metaclaw.db")).unwrap();
    scored_turns(&store, 0, 4).await;
    let mut trainer = distilling(trainer(&fake, &store, 2, 5), &teacher, 0.5);
    let never = || false;
    assert!(matches!(
        trainer.try_step(0, None, &never).await.unwrap(),
        StepReport::Trained { step: 1, .. }
    ));
    // The second batch through vLLM's prompt_logprobs shape: same numbers.
    teacher.set(TeacherMode::PromptLogprobs);
    assert!(matches!(
        trainer.try_step(0, None, &never).await.unwrap(),
        StepReport::Trained { step: 2, .. }
    ));

    // What the teacher was asked: the whole sequence, echoed, scored.
    let asked = teacher.requests();
    assert_eq!(asked.len(), 4);
    for (auth, body) in &asked {
        assert_eq!(auth.as_deref(), Some("Bearer sk-teacher-0123456789abcdef"));
        assert_eq!(body["model"], "teacher-32b");
        assert_eq!(body["echo"], true);
        assert_eq!(body["logprobs"], 1);
        assert_eq!(body["max_tokens"], 1);
        let prompt: Vec<u64> = body["prompt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap())
            .collect();
        assert_eq!(&prompt[..3], &[1, 2, 3]);
        assert_eq!(prompt[4], 7);
    }

    // Rewards +1 / −1 give advantages ±1. The sampler's log-probs −0.5,
    // −0.25 against the teacher's −1.5, −0.25: KL 1 and 0, so with
    // kl_coef 0.5 the response positions get A − 0.5 and A.
    let advantages = trained_advantages(&fake);
    assert_eq!(advantages.len(), 4);
    for (i, a) in advantages.iter().enumerate() {
        let want = if i % 2 == 0 {
            [0.0, 0.0, 0.5, 1.0]
        } else {
            [0.0, 0.0, -1.5, -1.0]
        };
        assert!(close(a, &want), "datum {i}: {a:?} vs {want:?}");
    }
    store.flush().await.unwrap();
    let steps = store.reader().unwrap().training_steps(10).unwrap();
    assert_eq!(steps.len(), 2);
    for step in &steps {
        assert_eq!(step.outcome, StepOutcome::Trained);
        // Mean over the four response tokens: (1 + 0 + 1 + 0) / 4.
        assert_eq!(step.metrics[REVERSE_KL_METRIC], 0.5, "{:?}", step.metrics);
    }
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn a_failing_teacher_fails_the_step_and_keeps_the_batch() {
    let fake = Fake::start().await;
    let teacher = FakeTeacher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("metaclaw.db")).unwrap();
    let ids = scored_turns(&store, 0, 2).await;
    let mut trainer = distilling(trainer(&fake, &store, 2, 5), &teacher, 1.0);
    let never = || false;

    for (mode, words) in [
        (TeacherMode::Broken, "HTTP 500: teacher on fire"),
        (TeacherMode::Short, "use the policy's tokenizer"),
    ] {
        teacher.set(mode);
        let report = trainer.try_step(0, None, &never).await.unwrap();
        let StepReport::Failed { error, .. } = &report else {
            panic!("{report:?}");
        };
        assert!(error.starts_with("opd teacher, turn "), "{error}");
        assert!(error.contains(words), "{error}");
        // Nothing reached the training service; the batch waits.
        assert!(fake.requests_to("forward_backward").is_empty());
        store.flush().await.unwrap();
        assert_eq!(
            store.reader().unwrap().pending_training_turns().unwrap(),
            ids
        );
    }
    let reader = store.reader().unwrap();
    let failed = reader.training_steps(10).unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|s| s.outcome == StepOutcome::Failed));
    // The rewards were known before the teacher failed.
    assert_eq!(failed[0].reward_mean, Some(0.0));

    teacher.set(TeacherMode::Echo);
    let report = trainer.try_step(0, None, &never).await.unwrap();
    assert!(matches!(report, StepReport::Trained { .. }), "{report:?}");
    store.flush().await.unwrap();
    assert!(reader.pending_training_turns().unwrap().is_empty());
}

// ---------------------------------------------------------------- events

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_engine_announces_each_step_and_the_end_of_the_run() {
    use metaclaw_engine::config::{Config, Mode};
    use metaclaw_engine::events::EngineEvent;
    use metaclaw_engine::paths::AppPaths;
    use metaclaw_engine::Engine;

    let fake = Fake::start().await;
    fake.set_try_again_polls(0);
    let model_dir = model::qwen_like_model(model::QWEN3_STYLE_TEMPLATE);
    let home = tempfile::tempdir().unwrap();
    let mut config = Config {
        mode: Mode::Rl,
        ..Config::default()
    };
    config.rl.base_url = fake.url.clone();
    config.rl.model = "Qwen/Qwen3-4B-Instruct-2507".into();
    config.rl.tokenizer = model_dir.path().display().to_string();
    config.rl.api_key = Secret::new(support::KEY);
    config.rl.batch_size = 2;
    config.skills.dir = home.path().join("library").display().to_string();
    let engine = Engine::open(&AppPaths::under(home.path()), config).unwrap();
    let state = engine.state().clone();
    let mut events = state.events.subscribe();
    let listener = Engine::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(engine.serve(listener, std::future::pending()));

    // Two full batches (rewards +1/−1, then +1/−1) arrive; the trainer is
    // woken by a scoring event.
    let ids = scored_turns(&state.store, 0, 4).await;
    state.events.publish(EngineEvent::TurnScored {
        turn_id: ids[3],
        session_id: "s1".into(),
        score: -1,
    });
    let mut seen = Vec::new();
    let finished = loop {
        let event = tokio::time::timeout(std::time::Duration::from_secs(30), events.recv())
            .await
            .expect("no training event arrived")
            .unwrap();
        match event {
            EngineEvent::TrainingStep { .. } => seen.push(event),
            EngineEvent::TrainingFinished { .. } => break event,
            _ => {}
        }
    };
    assert_eq!(
        seen,
        [1, 2].map(|step| EngineEvent::TrainingStep {
            step,
            policy_version: step,
            reward_mean: Some(0.0),
            turns: 2,
        })
    );
    assert_eq!(
        finished,
        EngineEvent::TrainingFinished {
            steps: 2,
            reward_first: Some(0.0),
            reward_last: Some(0.0),
            policy_version: 2,
        }
    );
}
