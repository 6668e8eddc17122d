//! The proxy's own cost in `rl` mode: a real `metaclaw serve` answering
//! main turns with the policy, sampled from the in-process fake Tinker
//! service (`metaclaw_tinker::testing`), measured from outside.
//!
//! Overhead is a request's whole latency (sent → last byte) minus the time
//! the fake sampler spent answering the proxy's `asample` and
//! `retrieve_future` calls for it: what the proxy adds going in (parse,
//! skills, chat template, tokens, the sample request) and coming out
//! (decode, Qwen3 parsing, the client's dialect). Requests go one at a
//! time, so every sampler call in a request's span is that request's.
//!
//! Two prompts: a short one (~1 KB), and an agent session near 28k tokens
//! that grows by one round per request, the way a conversation does.

use std::time::Duration;

use anyhow::Context;
use metaclaw_policy::{ChatCodec, ChatInput, ChatTemplate, PolicyTokenizer, SpecialTokens};
use metaclaw_tinker::testing::{Fake, Recorded, KEY};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::report::{show, thousands, Section};
use super::serve::{configure, metaclaw_binary, start_proxy};
use super::{trained_tokenizer, TextGen, TEMPLATE};

/// Short-prompt requests per case (after the warm-up).
const SHORT_RUNS: usize = 300;
/// Long-prompt sessions per case, and requests in each.
const LONG_SESSIONS: usize = 6;
const LONG_TURNS: usize = 10;
/// Where the long sessions start, in prompt tokens.
const LONG_START: usize = 26_000;

/// One measured request.
struct Sample {
    total: Duration,
    sampler: Duration,
    /// The prompt as the sampler got it (with the injected skills).
    prompt_tokens: usize,
}

pub fn section() -> anyhow::Result<Vec<Section>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<Vec<Section>> {
    let binary = metaclaw_binary()?;
    let (tokenizer, _, _) = trained_tokenizer()?;
    let model = tempfile::tempdir()?;
    write_model(&tokenizer, model.path())?;
    let codec = ChatCodec::load(model.path())?;
    let stop = codec
        .stop_token_ids()
        .first()
        .copied()
        .context("no stop token")?;

    let fake = Fake::start().await;
    fake.set_try_again_polls(0);
    let mut reply = tokenizer.encode("Done: the sync moved to Thursday 15:00 Europe/Berlin.")?;
    reply.push(stop);
    fake.script_samples(&reply);

    let home = tempfile::tempdir()?;
    let tokenizer_dir = model.path().display().to_string();
    configure(
        &binary,
        home.path(),
        &[
            ("rl.base_url", fake.url.as_str()),
            ("rl.api_key", KEY),
            ("rl.model", "bench/policy"),
            ("rl.tokenizer", tokenizer_dir.as_str()),
            // Never a full batch: no training competes with the requests.
            ("rl.batch_size", "1024"),
            ("mode", "rl"),
        ],
    )?;
    let (proxy, _) = start_proxy(&binary, home.path()).await?;
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", proxy.port);
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;

    let short = short_request();
    let sessions: Vec<(Vec<[Value; 4]>, usize)> = (0..LONG_SESSIONS)
        .map(|s| long_rounds(&codec, s as u64))
        .collect::<anyhow::Result<_>>()?;
    let mut section = Section::new(format!(
        "The proxy in rl mode: overhead excluding the sampler ({} short requests, {} long ones per case)",
        SHORT_RUNS,
        LONG_SESSIONS * LONG_TURNS
    ));
    for stream in [false, true] {
        let kind = if stream { "streamed" } else { "whole" };
        // Warm-up: the sampler session, connections, caches.
        for i in 0..20 {
            one(
                &client,
                &url,
                &fake,
                &format!("warm-{kind}-{i}"),
                &with_stream(&short, stream),
            )
            .await?;
        }
        let mut samples = Vec::with_capacity(SHORT_RUNS);
        for i in 0..SHORT_RUNS {
            let session = format!("short-{kind}-{}", i / 10);
            samples.push(one(&client, &url, &fake, &session, &with_stream(&short, stream)).await?);
        }
        section.rows.push(row(
            &format!(
                "short request (~1 KB; {} with the injected skills), {kind}",
                span(&samples)
            ),
            &samples,
        ));

        let mut samples = Vec::with_capacity(LONG_SESSIONS * LONG_TURNS);
        for (s, (rounds, base)) in sessions.iter().enumerate() {
            let session = format!("long-{kind}-{s}");
            for turn in 0..LONG_TURNS {
                let request = with_stream(&conversation(rounds, base + turn), stream);
                samples.push(one(&client, &url, &fake, &session, &request).await?);
            }
        }
        section.rows.push(row(
            &format!(
                "long agent sessions ({}, growing a round per request), {kind}",
                span(&samples)
            ),
            &samples,
        ));
    }
    drop(proxy);
    Ok(vec![section])
}

/// Sends one request and reads the whole answer; the sampler's share is
/// the fake's handling time of the sampling calls made meanwhile.
async fn one(
    client: &reqwest::Client,
    url: &str,
    fake: &Fake,
    session: &str,
    body: &[u8],
) -> anyhow::Result<Sample> {
    let seen = fake.requests().len();
    let sent = Instant::now();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-session-id", session)
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status();
    let text = response.bytes().await?;
    let total = sent.elapsed();
    anyhow::ensure!(
        status.is_success(),
        "the proxy answered {status}: {}",
        String::from_utf8_lossy(&text)
    );
    let calls = fake.requests();
    let calls = &calls[seen..];
    let sampler = calls
        .iter()
        .filter(|r: &&Recorded| matches!(r.path.as_str(), "asample" | "retrieve_future"))
        .map(|r| r.handled_in)
        .sum();
    let prompt_tokens = calls
        .iter()
        .find(|r| r.path == "asample")
        .and_then(|r| r.json.pointer("/prompt/chunks/0/tokens"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(Sample {
        total,
        sampler,
        prompt_tokens,
    })
}

/// The smallest and largest prompt of `samples`, in tokens.
fn span(samples: &[Sample]) -> String {
    let low = samples.iter().map(|s| s.prompt_tokens).min().unwrap_or(0);
    let high = samples.iter().map(|s| s.prompt_tokens).max().unwrap_or(0);
    if low == high {
        format!("{} tokens", thousands(low))
    } else {
        format!("{}–{} tokens", thousands(low), thousands(high))
    }
}

fn row(label: &str, samples: &[Sample]) -> super::report::Row {
    let pct = |mut v: Vec<Duration>| {
        v.sort();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.99))
    };
    let total = pct(samples.iter().map(|s| s.total).collect());
    let sampler = pct(samples.iter().map(|s| s.sampler).collect());
    let overhead = pct(samples
        .iter()
        .map(|s| s.total.saturating_sub(s.sampler))
        .collect());
    super::report::Row::new(
        format!("{label}: overhead p50 / p99"),
        format!("{} / {}", show(overhead.0), show(overhead.1)),
        format!(
            "whole request {} / {}; inside the fake sampler {} / {}",
            show(total.0),
            show(total.1),
            show(sampler.0),
            show(sampler.1)
        ),
    )
}

fn with_stream(request: &Value, stream: bool) -> Vec<u8> {
    let mut request = request.clone();
    request["stream"] = json!(stream);
    serde_json::to_vec(&request).unwrap_or_default()
}

fn prompt_len(codec: &ChatCodec, body: &[u8]) -> anyhow::Result<usize> {
    let request: Value = serde_json::from_slice(body)?;
    Ok(codec
        .prompt_for(&ChatInput::from_openai(&request)?)?
        .token_ids
        .len())
}

/// A ~1 KB request: a system prompt, one tool, a question.
fn short_request() -> Value {
    json!({
        "model": "policy",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant that manages the user's calendar. Keep answers short and confirm every change you make. Use the tools when you need data."},
            {"role": "user", "content": "Move tomorrow's team sync to Thursday at 15:00 Berlin time and tell everyone invited."}
        ],
        "tools": [{"type": "function", "function": {"name": "move_event", "description": "Move a calendar event to a new time",
            "parameters": {"type": "object", "properties": {"event": {"type": "string"}, "start": {"type": "string", "description": "ISO 8601 start"}},
            "required": ["event", "start"]}}}]
    })
}

/// The rounds of one long agent session (user ask, tool call, tool
/// output, answer; each session its own text) and how many of them make
/// [`LONG_START`] tokens.
fn long_rounds(codec: &ChatCodec, seed: u64) -> anyhow::Result<(Vec<[Value; 4]>, usize)> {
    let mut gen = TextGen::new(10 + seed);
    let rounds: Vec<[Value; 4]> = (0..(LONG_START / 100) + LONG_TURNS)
        .map(|round| {
            let output: Vec<String> = (0..4).map(|_| gen.paragraph()).collect();
            [
                json!({"role": "user", "content": gen.paragraph()}),
                json!({"role": "assistant", "content": "", "tool_calls": [{
                    "id": format!("call_{round}"), "type": "function",
                    "function": {"name": "read_file", "arguments": json!({"path": format!("/src/{}.rs", gen.word())}).to_string()}}]}),
                json!({"role": "tool", "tool_call_id": format!("call_{round}"), "content": output.join("\n\n")}),
                json!({"role": "assistant", "content": gen.paragraph()}),
            ]
        })
        .collect();
    let mut base = 1;
    while base + LONG_TURNS < rounds.len() {
        let body = with_stream(&conversation(&rounds, base), false);
        if prompt_len(codec, &body)? >= LONG_START {
            break;
        }
        base += 1;
    }
    Ok((rounds, base))
}

/// The first `n` rounds and the user's ask of the next one: request `n + 1`
/// is request `n` plus the rest of that round and the next ask, as an
/// agent's conversation grows.
fn conversation(rounds: &[[Value; 4]], n: usize) -> Value {
    let n = n.min(rounds.len() - 1);
    let mut messages = vec![
        json!({"role": "system", "content": "You are a coding agent. Read files with read_file before changing them; keep changes small."}),
    ];
    messages.extend(rounds[..n].iter().flatten().cloned());
    messages.push(rounds[n][0].clone());
    json!({"model": "policy", "messages": messages,
        "tools": [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]})
}

/// The model folder `rl.tokenizer` points at: the benchmark's tokenizer,
/// the Qwen3-style template, ChatML's end token as the stop.
fn write_model(tokenizer: &PolicyTokenizer, dir: &std::path::Path) -> anyhow::Result<()> {
    tokenizer
        .inner()
        .save(dir.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("saving tokenizer.json: {e}"))?;
    std::fs::write(
        dir.join("tokenizer_config.json"),
        json!({"bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
               "chat_template": TEMPLATE})
        .to_string(),
    )?;
    // The template must load the way the proxy loads it.
    ChatTemplate::new(TEMPLATE, SpecialTokens::default())?;
    Ok(())
}
