#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The engine's event bus as a subscriber sees it: sessions start, turns are
//! recorded, sessions end when the client says so or go quiet.

use std::time::Duration;

use axum::routing::post;
use axum::Router;
use metaclaw_engine::api::AdminToken;
use metaclaw_engine::config::Config;
use metaclaw_engine::events::EngineEvent;
use metaclaw_engine::paths::AppPaths;
use metaclaw_engine::Engine;
use tokio::sync::broadcast::Receiver;

async fn fake_upstream() -> String {
    let reply = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    });
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || async move { axum::Json(reply) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

/// The next session or turn event; the scheduler's own events (windows
/// open in sleep hours, whatever the time of day the test runs) are skipped.
async fn next_event(events: &mut Receiver<EngineEvent>) -> EngineEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("no event arrived")
            .unwrap();
        if !matches!(event, EngineEvent::ScheduleChanged { .. }) {
            return event;
        }
    }
}

/// Returns the home (keep it alive), the chat URL and a bus subscription.
async fn start(idle_minutes: f64) -> (tempfile::TempDir, String, Receiver<EngineEvent>) {
    let home = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.upstream.base_url = fake_upstream().await;
    config.skills.dir = home.path().join("library").display().to_string();
    config.session.idle_timeout_minutes = idle_minutes;
    let engine = Engine::open(&AppPaths::under(home.path()), config).unwrap();
    let events = engine.state().events.subscribe();
    let listener = Engine::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    tokio::spawn(engine.serve(listener, std::future::pending()));
    (home, url, events)
}

fn chat(session_done: bool) -> serde_json::Value {
    serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hello"}],
        "session_id": "conversation-1", "session_done": session_done})
}

#[tokio::test]
async fn a_done_session_is_announced_after_its_turn() {
    let (_home, url, mut events) = start(30.0).await;
    let client = reqwest::Client::new();
    let response = client.post(&url).json(&chat(false)).send().await.unwrap();
    assert!(response.status().is_success());
    let started = next_event(&mut events).await;
    let EngineEvent::SessionStarted { session_id } = started else {
        panic!("expected a start, got {started:?}")
    };
    assert!(
        matches!(next_event(&mut events).await, EngineEvent::TurnRecorded { status, .. } if status == "complete")
    );

    // The last turn is recorded before the end is announced, so a
    // subscriber that reads the session on "ended" sees all of it.
    client.post(&url).json(&chat(true)).send().await.unwrap();
    assert!(
        matches!(next_event(&mut events).await, EngineEvent::TurnRecorded { session_id: s, .. } if s == session_id)
    );
    assert_eq!(
        next_event(&mut events).await,
        EngineEvent::SessionEnded {
            session_id: session_id.clone(),
            reason: "done".into()
        }
    );

    // The same id after "done" opens a new session.
    client.post(&url).json(&chat(false)).send().await.unwrap();
    let EngineEvent::SessionStarted { session_id: next } = next_event(&mut events).await else {
        panic!("expected a new session")
    };
    assert_ne!(next, session_id);
}

#[tokio::test]
async fn a_quiet_session_ends_as_idle() {
    // 0.005 minutes = 300 ms of silence.
    let (_home, url, mut events) = start(0.005).await;
    reqwest::Client::new()
        .post(&url)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    let EngineEvent::SessionStarted { session_id } = next_event(&mut events).await else {
        panic!("expected a start")
    };
    next_event(&mut events).await;
    assert_eq!(
        next_event(&mut events).await,
        EngineEvent::SessionEnded {
            session_id,
            reason: "idle".into()
        }
    );
}

#[tokio::test]
async fn events_stream_to_http_subscribers() {
    let (home, url, _events) = start(30.0).await;
    let events_url = url.replace("/v1/chat/completions", "/api/events");
    let client = reqwest::Client::new();
    // Nobody listens without the admin token (no proxy key is set here).
    let refused = client.get(&events_url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let token = AdminToken::read(&AppPaths::under(home.path())).unwrap();
    let mut stream = client
        .get(&events_url)
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    client.post(&url).json(&chat(true)).send().await.unwrap();
    let mut received = String::new();
    while !received.contains("event: session_ended") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("no event arrived")
            .unwrap()
            .expect("the event stream ended");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    let started = received
        .find("event: session_started")
        .expect("no session_started event");
    let recorded = received
        .find("event: turn_recorded")
        .expect("no turn_recorded event");
    let ended = received.find("event: session_ended").unwrap();
    assert!(started < recorded && recorded < ended, "{received}");
    assert!(received.contains(r#""reason":"done""#), "{received}");
}
