#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The skill evolver end to end inside one process: a fake upstream answers
//! the agent (and keeps what it was sent), a fake judge fails every turn,
//! and a fake evolver answers from a script (malformed JSON then a repair, a
//! 500). The skill library, the store, the proxy's next request and the
//! event bus show the outcome.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use metaclaw_engine::config::{Config, ReviewMode};
use metaclaw_engine::events::EngineEvent;
use metaclaw_engine::paths::AppPaths;
use metaclaw_engine::proxy::ProxyState;
use metaclaw_engine::Engine;
use metaclaw_skills::{SkillOrigin, SkillStatus};
use metaclaw_store::{EvolvedSkillOutcome, StoreReader};
use serde_json::{json, Value};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn completion(text: &str) -> Response {
    Json(json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}))
    .into_response()
}

/// Replies from a script in order (the last one repeats); keeps every body.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<(u16, String)>>,
    bodies: Mutex<Vec<Value>>,
}

impl Scripted {
    fn new(script: &[(u16, &str)]) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(script.iter().map(|(s, t)| (*s, t.to_string())).collect()),
            bodies: Mutex::default(),
        })
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn scripted_reply(State(fake): State<Arc<Scripted>>, Json(body): Json<Value>) -> Response {
    fake.bodies.lock().unwrap().push(body);
    let (status, text) = {
        let mut script = fake.script.lock().unwrap();
        if script.len() > 1 {
            script.pop_front().unwrap()
        } else {
            script.front().cloned().unwrap()
        }
    };
    if status == 200 {
        completion(&text)
    } else {
        (StatusCode::from_u16(status).unwrap(), text).into_response()
    }
}

async fn fake(script: &[(u16, &str)]) -> (Arc<Scripted>, String) {
    let fake = Scripted::new(script);
    let url = serve(
        Router::new()
            .route("/v1/chat/completions", post(scripted_reply))
            .with_state(fake.clone()),
    )
    .await;
    (fake, url)
}

const SKILL_JSON: &str = r#"[{"name": "Meeting Time Offsets!", "description": "Use when stating meeting times: always include the UTC offset", "category": "Time", "body": "- Write every meeting time with its UTC offset, e.g. 10:00+08:00.\n- Name the time zone too."}]"#;

struct Running {
    _home: tempfile::TempDir,
    state: Arc<ProxyState>,
    url: String,
    upstream: Arc<Scripted>,
}

async fn start(evolver_url: &str, judge_url: Option<&str>, review: ReviewMode) -> Running {
    let (upstream, upstream_url) = fake(&[(200, "The meeting is at 10:00.")]).await;
    let home = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.upstream.base_url = upstream_url;
    config.skills.dir = home.path().join("library").display().to_string();
    config.skills.review = review;
    if let Some(judge_url) = judge_url {
        config.prm.enabled = true;
        config.prm.base_url = judge_url.to_string();
        config.prm.model = "judge-model".into();
        config.prm.votes = 1;
    }
    config.evolver.enabled = true;
    config.evolver.base_url = evolver_url.to_string();
    config.evolver.model = "evolver-model".into();
    config.evolver.timeout_secs = 5.0;
    let engine = Engine::open(&AppPaths::under(home.path()), config).unwrap();
    let state = engine.state().clone();
    let listener = Engine::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    tokio::spawn(engine.serve(listener, std::future::pending()));
    Running {
        _home: home,
        state,
        url,
        upstream,
    }
}

impl Running {
    async fn chat(&self, text: &str, session: &str, done: bool) {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": text}],
            "session_id": session, "session_done": done});
        let response = reqwest::Client::new()
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// A failing session: a question, the user's correction, then its end.
    async fn failing_session(&self, session: &str) {
        self.chat(
            "When is the meeting with the Singapore team?",
            session,
            false,
        )
        .await;
        self.chat(
            "No, that is wrong: the time must include the +08:00 offset",
            session,
            true,
        )
        .await;
    }
}

async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
    pick: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = events.recv().await.unwrap();
            if pick(&event) {
                return event;
            }
        }
    })
    .await
    .expect("the event never came")
}

/// The store's id of the session the client called `key`.
fn session_id(reader: &StoreReader, key: &str) -> String {
    reader
        .list_sessions(100, 0)
        .unwrap()
        .into_iter()
        .find(|s| s.session_key == format!("id:{key}"))
        .unwrap()
        .id
}

fn system_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "system")
        .map(|m| m["content"].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_turns_become_a_skill_that_the_next_request_carries() {
    let (_judge, judge_url) = fake(&[(200, "The offset was missing.\nScore: -1")]).await;
    // Malformed JSON first; the repair attempt answers properly.
    let (evolver, evolver_url) = fake(&[
        (
            200,
            "Sure! Here is the skill: [{\"name\": \"meeting\", \"description\": ",
        ),
        (200, SKILL_JSON),
    ])
    .await;
    let run = start(&evolver_url, Some(&judge_url), ReviewMode::Auto).await;
    let mut events = run.state.events.subscribe();
    assert_eq!(run.state.skill_generation(), 0);
    run.failing_session("evolve-1").await;

    let added = next_event(&mut events, |e| matches!(e, EngineEvent::SkillAdded { .. })).await;
    assert_eq!(
        added,
        EngineEvent::SkillAdded {
            name: "meeting-time-offsets".into(),
            description: "Use when stating meeting times: always include the UTC offset".into(),
            pending: false,
        }
    );
    // The end of the evolution follows its announcements.
    let finished = next_event(&mut events, |e| {
        matches!(e, EngineEvent::EvolutionFinished { .. })
    })
    .await;
    let EngineEvent::EvolutionFinished {
        session_id: evolved,
        added,
        pending,
        merged,
        dropped,
    } = finished
    else {
        unreachable!()
    };
    assert_eq!((added, pending, merged, dropped), (1, 0, 0, 0));

    // The evolver read the turns with their scores and the judge's reasons,
    // and got one repair request with its bad answer.
    let asked = evolver.bodies();
    assert_eq!(asked.len(), 2);
    let prompt = asked[0]["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("score -1 (failed)"), "{prompt}");
    assert!(
        prompt.contains("Judge: The offset was missing."),
        "{prompt}"
    );
    assert!(
        prompt.contains("User's next message: No, that is wrong"),
        "{prompt}"
    );
    assert_eq!(asked[0]["model"], "evolver-model");
    let repair = asked[1]["messages"].as_array().unwrap();
    assert_eq!(repair[2]["role"], "assistant");
    assert!(repair[3]["content"]
        .as_str()
        .unwrap()
        .contains("only the JSON array"));

    // The SKILL.md, with provenance.
    let snapshot = run.state.library.snapshot();
    let skill = snapshot.get("meeting-time-offsets").unwrap();
    assert_eq!(skill.origin, SkillOrigin::Evolved);
    assert_eq!(skill.status, SkillStatus::Active);
    assert_eq!(skill.category.as_deref(), Some("time"));
    let text = std::fs::read_to_string(&skill.path).unwrap();
    let reader = StoreReader::open(run.state.store.path()).unwrap();
    let first = session_id(&reader, "evolve-1");
    assert_eq!(
        evolved, first,
        "evolution_finished names the store's session"
    );
    for key in [
        "origin: evolved",
        &format!("evolved_from_session: {first}"),
        "evolved_from_turns:",
        "evolved_at:",
        "evolver_model: evolver-model",
    ] {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }

    // The generation went up, in the proxy and in the store.
    assert_eq!(run.state.skill_generation(), 1);
    assert_eq!(reader.skill_generation().unwrap(), 1);
    let evolutions = reader.evolutions(10).unwrap();
    assert_eq!(evolutions.len(), 1);
    assert_eq!(evolutions[0].status(), "ok");
    assert_eq!(evolutions[0].trigger, "session_end");
    assert_eq!(evolutions[0].count(EvolvedSkillOutcome::Added), 1);

    // The very next request carries the skill.
    // (The session stays open, so no evolution consumes it; its first turn
    // is judged once the second arrives.)
    run.chat("When is the meeting on Monday?", "evolve-2", false)
        .await;
    let last = run.upstream.bodies().pop().unwrap();
    run.chat("Thanks, and on Tuesday?", "evolve-2", false).await;
    assert!(
        system_text(&last).contains("10:00+08:00"),
        "{}",
        system_text(&last)
    );

    // Training data leaves out the support turns (and the new turn is of
    // the new generation).
    let old = reader.session(&first).unwrap().unwrap();
    let support: Vec<i64> = old.turns.iter().map(|t| t.id).collect();
    assert_eq!(reader.consumed_turns(&first).unwrap(), support);
    let new = reader
        .session(&session_id(&reader, "evolve-2"))
        .unwrap()
        .unwrap();
    assert_eq!(new.turns[0].skill_generation, 1);
    tokio::time::timeout(Duration::from_secs(20), async {
        while reader.training_turns(1).unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the new turn was never scored");
    for generation in [0, 1] {
        let training = reader.training_turns(generation).unwrap();
        assert!(training.iter().all(|t| !support.contains(&t.turn_id)));
    }
    assert_eq!(
        reader.training_turns(1).unwrap()[0].turn_id,
        new.turns[0].id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_evolver_writes_nothing() {
    let (evolver, evolver_url) = fake(&[(500, "overloaded")]).await;
    let run = start(&evolver_url, None, ReviewMode::Auto).await;
    let before = run.state.library.snapshot().len();
    let mut events = run.state.events.subscribe();
    run.failing_session("evolve-500").await;
    let failed = next_event(&mut events, |e| {
        matches!(e, EngineEvent::EvolutionFailed { .. })
    })
    .await;
    let EngineEvent::EvolutionFailed {
        session_id: failed_session,
        reason,
    } = failed
    else {
        unreachable!()
    };
    assert!(reason.contains("HTTP 500"), "{reason}");
    assert_eq!(evolver.bodies().len(), 1, "a 500 is not repaired");
    assert_eq!(run.state.library.snapshot().len(), before);
    assert_eq!(run.state.skill_generation(), 0);
    let reader = StoreReader::open(run.state.store.path()).unwrap();
    assert_eq!(failed_session, session_id(&reader, "evolve-500"));
    assert!(reader.consumed_turns(&failed_session).unwrap().is_empty());
    let evolutions = reader.evolutions(10).unwrap();
    assert_eq!(evolutions[0].status(), "failed");
    assert!(evolutions[0].error.as_deref().unwrap().contains("HTTP 500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_review_keeps_the_skill_pending_and_uninjected() {
    let (_evolver, evolver_url) = fake(&[(200, SKILL_JSON)]).await;
    let run = start(&evolver_url, None, ReviewMode::Manual).await;
    let mut events = run.state.events.subscribe();
    run.failing_session("evolve-manual").await;
    let added = next_event(&mut events, |e| matches!(e, EngineEvent::SkillAdded { .. })).await;
    assert!(matches!(
        added,
        EngineEvent::SkillAdded { pending: true, .. }
    ));
    let snapshot = run.state.library.snapshot();
    let skill = snapshot.get("meeting-time-offsets").unwrap();
    assert_eq!(skill.status, SkillStatus::Pending);
    assert!(std::fs::read_to_string(&skill.path)
        .unwrap()
        .contains("status: pending"));
    assert_eq!(run.state.skill_generation(), 0, "nothing was activated");

    run.chat("When is the meeting on Monday?", "evolve-manual-2", true)
        .await;
    let last = run.upstream.bodies().pop().unwrap();
    assert!(!system_text(&last).contains("10:00+08:00"));
}
