//! The proxy in `rl` mode answers main turns with the policy: requests are
//! rendered and tokenized with a model folder built here, sampled through
//! the fake Tinker service, parsed back into tool calls in the client's
//! dialect (whole and streamed), and recorded with their tokens; a session
//! keeps its policy version when the trainer publishes a new one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use metaclaw_tinker::testing as support;

#[path = "../../policy/tests/common/mod.rs"]
mod model;

use std::sync::Arc;

use metaclaw_engine::config::{Config, Mode};
use metaclaw_engine::paths::AppPaths;
use metaclaw_engine::proxy::ProxyState;
use metaclaw_engine::train::PolicySampler;
use metaclaw_engine::Engine;
use metaclaw_tinker::{SamplerSource, TinkerClient};
use serde_json::{json, Value};
use support::Fake;

const REPLY: &str = "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}";

/// `<tool_call>\n{…}\n</tool_call><|im_end|>` as token ids.
fn reply_tokens() -> Vec<u32> {
    let mut ids = vec![model::TOOL_CALL];
    ids.extend(model::bytes(&format!("\n{REPLY}\n")));
    ids.extend([model::TOOL_CALL_END, model::IM_END]);
    ids
}

struct Running {
    _home: tempfile::TempDir,
    _model: tempfile::TempDir,
    state: Arc<ProxyState>,
    base: String,
    fake: Fake,
}

async fn start() -> Running {
    let fake = Fake::start().await;
    fake.set_try_again_polls(0);
    fake.script_samples(&reply_tokens());
    let model_dir = model::qwen_like_model(model::QWEN3_STYLE_TEMPLATE);
    let home = tempfile::tempdir().unwrap();
    let mut config = Config {
        mode: Mode::Rl,
        ..Config::default()
    };
    config.rl.base_url = fake.url.clone();
    config.rl.model = "Qwen/Qwen3-4B-Instruct-2507".into();
    config.rl.tokenizer = model_dir.path().display().to_string();
    config.rl.api_key = metaclaw_engine::secret::Secret::new(support::KEY);
    // Large enough that no training step runs in these tests.
    config.rl.batch_size = 1024;
    config.skills.dir = home.path().join("library").display().to_string();
    let engine = Engine::open(&AppPaths::under(home.path()), config).unwrap();
    let state = engine.state().clone();
    let listener = Engine::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(engine.serve(listener, std::future::pending()));
    Running {
        _home: home,
        _model: model_dir,
        state,
        base,
        fake,
    }
}

fn tools_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
}

impl Running {
    async fn post(&self, path: &str, session: &str, body: Value) -> reqwest::Response {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("x-session-id", session)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response
    }

    async fn openai(&self, session: &str, stream: bool) -> reqwest::Response {
        let body = json!({"model": "policy", "stream": stream,
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": tools_openai()});
        self.post("/v1/chat/completions", session, body).await
    }

    async fn anthropic(&self, session: &str, stream: bool) -> reqwest::Response {
        let body = json!({"model": "policy", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"name": "get_weather", "description": "Weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]});
        self.post("/v1/messages", session, body).await
    }

    /// The stored session of the client's session key.
    fn session_id(&self, key: &str) -> String {
        let reader = self.state.store.reader().unwrap();
        let sessions = reader.list_sessions(100, 0).unwrap();
        sessions
            .into_iter()
            .find(|s| s.session_key == format!("id:{key}"))
            .unwrap()
            .id
    }

    /// The sampling session each `asample` went to, in order.
    fn sampled_from(&self) -> Vec<String> {
        self.fake
            .requests_to("asample")
            .iter()
            .map(|r| r.json["sampling_session_id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The `data:` payloads of a server-sent event stream.
fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|d| d.trim().to_string())
        .collect()
}

#[tokio::test]
async fn openai_and_anthropic_requests_are_answered_by_the_policy_and_recorded_with_tokens() {
    let running = start().await;

    // OpenAI, whole.
    let whole: Value = running
        .openai("s-openai", false)
        .await
        .json()
        .await
        .unwrap();
    let message = &whole["choices"][0]["message"];
    assert_eq!(
        whole["choices"][0]["finish_reason"], "tool_calls",
        "{whole}"
    );
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(
        message["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(arguments, json!({"city": "Paris"}));
    assert_eq!(whole["usage"]["completion_tokens"], reply_tokens().len());

    // OpenAI, streamed: the chunks carry the tool call and end with [DONE].
    let text = running.openai("s-openai", true).await.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let call = chunks
        .iter()
        .find_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]
                .as_object()
                .cloned()
        })
        .expect("a tool call chunk");
    assert_eq!(call["function"]["name"], "get_weather");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));

    // Anthropic, whole.
    let whole: Value = running
        .anthropic("s-anthropic", false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["type"], "message");
    assert_eq!(whole["stop_reason"], "tool_use", "{whole}");
    let tool_use = whole["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert_eq!(tool_use["name"], "get_weather");
    assert_eq!(tool_use["input"], json!({"city": "Paris"}));

    // Anthropic, streamed: message_start … tool_use … message_stop.
    let text = running
        .anthropic("s-anthropic", true)
        .await
        .text()
        .await
        .unwrap();
    let events: Vec<Value> = sse_data(&text)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["type"], "message_start", "{text}");
    assert_eq!(events.last().unwrap()["type"], "message_stop", "{text}");
    assert!(events.iter().any(|e| e["type"] == "content_block_start"
        && e["content_block"]["type"] == "tool_use"
        && e["content_block"]["name"] == "get_weather"));
    assert!(events
        .iter()
        .any(|e| e["delta"]["stop_reason"] == "tool_use"));

    // The prompt the sampler got is the rendered conversation with the tools.
    let asked = running.fake.requests_to("asample");
    assert_eq!(asked.len(), 4);
    let prompt: Vec<u32> = asked[0].json["prompt"]["chunks"][0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(prompt.first(), Some(&model::IM_START));
    assert_eq!(asked[2].json["sampling_params"]["max_tokens"], 64);
    assert_eq!(asked[0].json["sampling_params"]["max_tokens"], 2048);

    // Every turn is stored with its tokens, log-probs and policy version.
    running.state.store.flush().await.unwrap();
    let reader = running.state.store.reader().unwrap();
    for session in ["s-openai", "s-anthropic"] {
        let detail = reader
            .session(&running.session_id(session))
            .unwrap()
            .unwrap();
        assert_eq!(detail.turns.len(), 2, "{session}");
        for turn in &detail.turns {
            let tokens = reader.turn_tokens(turn.id).unwrap().expect("turn tokens");
            assert_eq!(tokens.prompt_tokens, prompt);
            assert_eq!(tokens.response_tokens, reply_tokens());
            assert_eq!(tokens.logprobs.len(), reply_tokens().len());
            assert_eq!(tokens.logprobs[0], -0.125);
            assert_eq!(tokens.policy_version, 0);
        }
    }
}

#[tokio::test]
async fn a_session_keeps_its_policy_version_and_new_sessions_get_the_newest() {
    let running = start().await;
    running.openai("old", false).await;
    running.state.store.flush().await.unwrap();
    let old = running.session_id("old");
    let policy = running.state.policy.clone().unwrap();
    assert_eq!(policy.session_version(&old), Some(0));

    // The trainer publishes version 1 on the same channel.
    let session = TinkerClient::connect(running.fake.config()).await.unwrap();
    let sampler = session
        .sampler(SamplerSource::BaseModel(
            "Qwen/Qwen3-4B-Instruct-2507".into(),
        ))
        .await
        .unwrap();
    let new_id = sampler.sampling_session_id().to_string();
    policy
        .publisher()
        .send_replace(Some(Arc::new(PolicySampler {
            version: 1,
            sampler,
        })));

    running.openai("old", false).await;
    running.openai("new", true).await.text().await.unwrap();
    let from = running.sampled_from();
    assert_eq!(from.len(), 3);
    assert_eq!(from[0], from[1], "the old session changed its sampler");
    assert_eq!(from[2], new_id);
    running.state.store.flush().await.unwrap();
    assert_eq!(policy.session_version(&running.session_id("new")), Some(1));

    running.state.store.flush().await.unwrap();
    let reader = running.state.store.reader().unwrap();
    let versions = |session: &str| -> Vec<i64> {
        let detail = reader
            .session(&running.session_id(session))
            .unwrap()
            .unwrap();
        detail
            .turns
            .iter()
            .map(|t| reader.turn_tokens(t.id).unwrap().unwrap().policy_version)
            .collect()
    };
    assert_eq!(versions("old"), vec![0, 0]);
    assert_eq!(versions("new"), vec![1]);
}

#[tokio::test]
async fn an_unreachable_service_is_a_503_in_the_clients_format() {
    let running = start().await;
    running.fake.fail("create_session", 401, &[]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", running.base))
        .json(&json!({"model": "policy", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the training service is unavailable"),
        "{message}"
    );
}

#[tokio::test]
async fn the_clients_sampling_settings_reach_the_sampler_and_n_above_1_is_refused() {
    let running = start().await;
    let answer = "It is sunny in Paris. END of the answer";
    let mut sampled = model::bytes(answer);
    sampled.push(model::IM_END);
    running.fake.script_samples(&sampled);
    let specials = ["<|im_end|>", "<|endoftext|>"];

    // OpenAI, whole: every setting goes to the sampler; the stop string
    // ends the answer and is not shown.
    let whole: Value = running
        .post(
            "/v1/chat/completions",
            "s-params",
            json!({"model": "policy", "max_tokens": 50, "temperature": 0.3, "top_p": 0.8,
                "top_k": 20, "seed": 42, "stop": ["END"], "n": 1,
                "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        whole["choices"][0]["message"]["content"], "It is sunny in Paris. ",
        "{whole}"
    );
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    let asked = running.fake.requests_to("asample");
    assert_eq!(
        asked[0].json["sampling_params"],
        json!({"max_tokens": 50, "seed": 42, "stop": ["END", specials[0], specials[1]],
               "temperature": 0.3, "top_k": 20, "top_p": 0.8})
    );

    // Anthropic, streamed: `stop_sequences`, and top_k 0 means no cut.
    let text = running
        .post(
            "/v1/messages",
            "s-params-2",
            json!({"model": "policy", "max_tokens": 30, "stream": true, "top_k": 0,
                "stop_sequences": ["Paris"],
                "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await
        .text()
        .await
        .unwrap();
    let streamed: String = sse_data(&text)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(streamed, "It is sunny in ");
    let params = &running.fake.requests_to("asample")[1].json["sampling_params"];
    assert_eq!(params["stop"], json!(["Paris", specials[0], specials[1]]));
    assert_eq!(
        (params["top_k"].clone(), params["max_tokens"].clone()),
        (json!(-1), json!(30))
    );
    assert!(params.get("seed").is_none(), "{params}");

    // The stored response ends with the token that completed the stop
    // string: what was sampled past it is neither shown nor trained on.
    running.state.store.flush().await.unwrap();
    let reader = running.state.store.reader().unwrap();
    let turn = &reader
        .session(&running.session_id("s-params"))
        .unwrap()
        .unwrap()
        .turns[0];
    let tokens = reader.turn_tokens(turn.id).unwrap().unwrap();
    assert_eq!(
        tokens.response_tokens,
        model::bytes("It is sunny in Paris. END")
    );
    assert_eq!(tokens.logprobs.len(), tokens.response_tokens.len());

    // n = 2 is refused before anything is sampled, in the client's format.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", running.base))
        .json(&json!({"model": "policy", "n": 2,
            "messages": [{"role": "user", "content": "Two answers?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("n: is 2, but the policy being trained"),
        "{message}"
    );
    assert_eq!(running.fake.requests_to("asample").len(), 2);
}

#[test]
fn a_missing_tokenizer_folder_fails_at_start_naming_the_key() {
    let home = tempfile::tempdir().unwrap();
    let mut config = Config {
        mode: Mode::Rl,
        ..Config::default()
    };
    config.rl.base_url = "http://127.0.0.1:9".into();
    config.rl.model = "Qwen/Qwen3-4B-Instruct-2507".into();
    config.rl.tokenizer = home.path().join("missing").display().to_string();
    config.skills.dir = home.path().join("library").display().to_string();
    let error = Engine::open(&AppPaths::under(home.path()), config)
        .err()
        .unwrap()
        .to_string();
    assert!(error.starts_with("rl.tokenizer"), "{error}");
}
