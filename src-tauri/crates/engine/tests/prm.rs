#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The PRM judge end to end inside one process: a fake upstream answers the
//! agent, a fake judge answers each vote from a script (a good reply, a 500,
//! malformed JSON, a hang past the timeout, an unparseable score), and the
//! store and the event bus show the outcome.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use metaclaw_engine::config::Config;
use metaclaw_engine::events::EngineEvent;
use metaclaw_engine::paths::AppPaths;
use metaclaw_engine::Engine;
use metaclaw_store::{JudgeVote, JudgementState, StoreReader};
use serde_json::{json, Value};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

async fn fake_upstream() -> String {
    let reply = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "The meeting is at 10:00."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    });
    serve(Router::new().route(
        "/v1/chat/completions",
        post(move || async move { Json(reply) }),
    ))
    .await
}

#[derive(Default)]
struct Judge {
    /// Every prompt received, and how many votes each marker has had.
    prompts: Mutex<Vec<String>>,
    counts: Mutex<std::collections::HashMap<&'static str, usize>>,
}

fn completion(text: &str) -> Response {
    Json(json!({"id": "j", "object": "chat.completion", "created": 1, "model": "judge",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}))
    .into_response()
}

async fn judge_reply(State(judge): State<Arc<Judge>>, Json(body): Json<Value>) -> Response {
    assert_eq!(body["model"], "judge-model");
    assert_eq!(body["stream"], false);
    let prompt = body["messages"][1]["content"].as_str().unwrap().to_string();
    judge.prompts.lock().unwrap().push(prompt.clone());
    let marker = if prompt.contains("task-A") { "A" } else { "B" };
    let n = {
        let mut counts = judge.counts.lock().unwrap();
        let n = counts.entry(marker).or_default();
        *n += 1;
        *n
    };
    match (marker, n) {
        ("A", 1) => completion("The time matches the request.\nScore: +1"),
        ("A", 2) => (StatusCode::INTERNAL_SERVER_ERROR, "judge overloaded").into_response(),
        ("A", _) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{not json",
        )
            .into_response(),
        ("B", 1) => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            completion("Score: +1")
        }
        ("B", 2) => (StatusCode::INTERNAL_SERVER_ERROR, "judge overloaded").into_response(),
        _ => completion("It is fine, mostly.\nScore: excellent"),
    }
}

fn chat(text: &str, done: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": text}],
        "session_id": "prm-conversation", "session_done": done})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_are_judged_by_majority_and_all_failed_votes_are_retried() {
    let judge = Arc::new(Judge::default());
    let judge_url = serve(
        Router::new()
            .route("/v1/chat/completions", post(judge_reply))
            .with_state(judge.clone()),
    )
    .await;

    let home = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.upstream.base_url = fake_upstream().await;
    config.skills.dir = home.path().join("library").display().to_string();
    config.prm.enabled = true;
    config.prm.base_url = judge_url;
    config.prm.model = "judge-model".into();
    config.prm.votes = 3;
    config.prm.timeout_secs = 0.5;
    let engine = Engine::open(&AppPaths::under(home.path()), config).unwrap();
    let state = engine.state().clone();
    let mut events = state.events.subscribe();
    let listener = Engine::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    tokio::spawn(engine.serve(listener, std::future::pending()));

    let client = reqwest::Client::new();
    for body in [
        chat("task-A: when is the meeting?", false),
        chat(
            "task-B no, that is wrong: it must include the +08:00 offset",
            true,
        ),
    ] {
        let response = client.post(&url).json(&body).send().await.unwrap();
        assert!(response.status().is_success());
    }

    // Turn A: one good vote, a 500 and malformed JSON → scored +1.
    let scored = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let EngineEvent::TurnScored {
                turn_id,
                session_id,
                score,
            } = events.recv().await.unwrap()
            {
                return (turn_id, session_id, score);
            }
        }
    })
    .await
    .expect("no TurnScored event");
    let reader = StoreReader::open(state.store.path()).unwrap();
    let detail = reader.session(&scored.1).unwrap().unwrap();
    let (a, b) = (&detail.turns[0], &detail.turns[1]);
    assert_eq!((scored.0, scored.2), (a.id, 1));

    let judged = reader.judgement(a.id).unwrap().unwrap();
    assert_eq!(judged.state, JudgementState::Scored);
    assert_eq!(judged.score, Some(1));
    assert_eq!(
        judged.reason.as_deref(),
        Some("The time matches the request.")
    );
    assert_eq!(judged.judge_model, "judge-model");
    assert_eq!(judged.attempts, 1);
    assert_eq!(judged.votes.len(), 3);
    assert!(judged.votes.contains(&JudgeVote::scored(1)));
    let failures: Vec<&str> = judged
        .votes
        .iter()
        .filter_map(|v| v.failure.as_deref())
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures.iter().any(|f| f.contains("HTTP 500")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|f| f.contains("not JSON")),
        "{failures:?}"
    );

    // The judge saw the user's correction as the next message.
    let prompt_a = judge
        .prompts
        .lock()
        .unwrap()
        .iter()
        .find(|p| p.contains("task-A"))
        .cloned()
        .unwrap();
    assert!(prompt_a.contains("## The user's next message\ntask-B no, that is wrong"));
    assert!(prompt_a.contains("The meeting is at 10:00."));

    // Turn B (the session's last): a hang, a 500 and an unparseable score
    // → no score at all, a retry later.
    let failed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(j) = reader.judgement(b.id).unwrap() {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("turn B was never judged");
    assert_eq!(failed.state, JudgementState::FailedRetry);
    assert_eq!(failed.score, None);
    assert_eq!(failed.attempts, 1);
    assert!(failed.next_attempt_at_ms.unwrap() > metaclaw_engine::now_ms() + 30_000);
    let failures: Vec<&str> = failed
        .votes
        .iter()
        .filter_map(|v| v.failure.as_deref())
        .collect();
    assert_eq!(failures.len(), 3, "{:?}", failed.votes);
    assert!(
        failures.iter().any(|f| f.contains("within 0.5 s")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|f| f.contains("\"excellent\"")),
        "{failures:?}"
    );

    // Training data: turn A only (B is not scored), until an evolution
    // takes A as its support set.
    let training: Vec<i64> = reader
        .training_turns(0)
        .unwrap()
        .iter()
        .map(|t| t.turn_id)
        .collect();
    assert_eq!(training, vec![a.id]);
    state.store.mark_support_set("evolution-1", vec![a.id]);
    state.store.flush().await.unwrap();
    assert!(reader.training_turns(0).unwrap().is_empty());
}
