//! A fast local upstream speaking the OpenAI wire format, so the benchmark
//! measures the proxy and not a model.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::stream;
use serde_json::{json, Value};

/// The model name that makes this upstream answer as a PRM judge.
pub const JUDGE_MODEL: &str = "bench-judge";

/// The model name the benchmark gives the skill evolver.
pub const EVOLVER_MODEL: &str = "bench-evolver";

/// How long the judge and the evolver take to answer when they act like the
/// remote LLMs they stand for; see [`set_learning_delays`].
const JUDGE_DELAY: Duration = Duration::from_millis(500);
const EVOLVER_DELAY: Duration = Duration::from_secs(2);

/// Whether the judge and the evolver answer after [`JUDGE_DELAY`] and
/// [`EVOLVER_DELAY`] (like remote LLMs) or at once (a fast fake: the judge
/// then scores turns as fast as two cores allow, competing with the proxy).
static REALISTIC: AtomicBool = AtomicBool::new(false);

pub fn set_learning_delays(realistic: bool) {
    REALISTIC.store(realistic, Ordering::Relaxed);
}

async fn learning_delay(delay: Duration) {
    if REALISTIC.load(Ordering::Relaxed) {
        tokio::time::sleep(delay).await;
    }
}

/// What the judge answers: a short reason and a final score line.
const JUDGE_REPLY: &str = "The assistant moved the meeting as asked.\nScore: +1";

/// What the evolver answers: one skill, the same every time, so repeated
/// evolutions exercise the duplicate check instead of growing the library.
const EVOLVER_REPLY: &str = r#"[{"name": "announce-moved-meetings", "description": "When moving a recurring meeting, confirm the time zone and tell everyone invited", "category": "calendar", "body": "1. Confirm the new time and its time zone.\n2. Check for conflicts.\n3. Send the update to everyone invited."}]"#;

/// Delay between the first streamed chunk and the rest: long enough that the
/// first byte's arrival is clearly separate from the end of the stream.
const STREAM_GAP: Duration = Duration::from_millis(5);

pub async fn start() -> anyhow::Result<SocketAddr> {
    let app = Router::new().route("/v1/chat/completions", post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn chat(body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let streaming = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !streaming {
        let content = match request.get("model").and_then(Value::as_str) {
            Some(JUDGE_MODEL) => {
                learning_delay(JUDGE_DELAY).await;
                JUDGE_REPLY
            }
            Some(EVOLVER_MODEL) => {
                learning_delay(EVOLVER_DELAY).await;
                EVOLVER_REPLY
            }
            _ => "Done: the sync moved to Thursday 15:00 Europe/Berlin.",
        };
        let reply = json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_764_000_000, "model": "bench-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 210, "completion_tokens": 14, "total_tokens": 224}
        });
        return (
            [(header::CONTENT_TYPE, "application/json")],
            reply.to_string(),
        )
            .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        let data = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_764_000_000,
            "model": "bench-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        Bytes::from(format!("data: {data}\n\n"))
    };
    let first = chunk(json!({"role": "assistant", "content": "Done"}), Value::Null);
    let rest = vec![
        chunk(json!({"content": ": moved."}), Value::Null),
        chunk(json!({}), json!("stop")),
        Bytes::from(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_764_000_000, "model": "bench-model",
                "choices": [], "usage": {"prompt_tokens": 210, "completion_tokens": 4, "total_tokens": 214}})
        )),
        Bytes::from_static(b"data: [DONE]\n\n"),
    ];
    let body = stream::once(async move { Ok::<_, Infallible>(first) }).chain_rest(rest);
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

trait ChainRest {
    fn chain_rest(
        self,
        rest: Vec<Bytes>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send;
}

impl<S: futures_util::Stream<Item = Result<Bytes, Infallible>> + Send> ChainRest for S {
    fn chain_rest(
        self,
        rest: Vec<Bytes>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send {
        use futures_util::StreamExt;
        let later = stream::once(async move {
            tokio::time::sleep(STREAM_GAP).await;
            stream::iter(rest.into_iter().map(Ok))
        })
        .flatten();
        self.chain(later)
    }
}
