//! The teacher of on-policy distillation (`opd.*`): an OpenAI-compatible
//! completions endpoint (vLLM, SGLang, …) serving a model with the
//! policy's tokenizer, asked for its log-prob of every token the policy
//! sampled.
//!
//! One request per turn: `POST {opd.teacher_url}/completions` with the
//! turn's prompt and response token ids as the `prompt`, `echo: true`,
//! `logprobs: 1` and `max_tokens: 1`, so the answer carries the log-prob
//! of each prompt token given the ones before it. Two answer shapes are
//! read: OpenAI's `choices[0].logprobs.token_logprobs` (one number per
//! echoed token, `null` for the first) and vLLM's `prompt_logprobs` (per
//! position a map from token id to `{"logprob": …}`). The response part is
//! checked for length and finiteness: a teacher with another tokenizer,
//! or a server that ignored `echo`, must fail the step, never train it.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use metaclaw_policy::ScoredTurn;
use serde_json::{json, Value};

use crate::config::OpdConfig;
use crate::secret::Secret;

/// Turns scored at once: the teacher is usually one GPU server.
const CONCURRENCY: usize = 4;

/// Why the teacher's log-probs of a turn are not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TeacherError {
    #[error("cannot reach the teacher at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the teacher at {url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the teacher's answer is not usable: {0} (does opd.teacher_url serve completions with echo and logprobs?)")]
    Malformed(String),
    #[error(
        "the teacher returned {got} log-probs for a sequence of {expected} tokens \
         (does opd.teacher_model use the policy's tokenizer?)"
    )]
    Length { expected: usize, got: usize },
    #[error("the teacher has no log-prob for response token {index}")]
    Missing { index: usize },
    #[error("the teacher's log-prob of response token {index} is {value} (it must be finite)")]
    NonFinite { index: usize, value: f64 },
}

/// The teacher's endpoint and settings.
#[derive(Debug, Clone)]
pub struct Teacher {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Secret,
    /// `opd.kl_coef`: the weight of the reverse-KL penalty.
    pub kl_coef: f64,
}

impl Teacher {
    /// The teacher of `opd`, or `None` when distillation is off.
    pub fn from_config(opd: &OpdConfig) -> Result<Option<Teacher>, TeacherError> {
        if !opd.enabled() {
            return Ok(None);
        }
        let url = format!(
            "{}/completions",
            opd.teacher_url.trim().trim_end_matches('/')
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(opd.timeout_secs))
            .user_agent(concat!("metaclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TeacherError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Some(Teacher {
            http,
            url,
            model: opd.teacher_model.trim().to_owned(),
            api_key: opd.api_key.clone(),
            kl_coef: opd.kl_coef,
        }))
    }

    /// Sets each turn's `teacher_logprobs`. The error names the turn (its
    /// index in `turns`).
    pub async fn score(&self, turns: &mut [ScoredTurn]) -> Result<(), (usize, TeacherError)> {
        // Owned jobs: the futures borrow nothing, so the step that awaits
        // them stays `Send` for any caller.
        let jobs: Vec<(usize, Vec<u32>, usize)> = turns
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut tokens = t.prompt_tokens.clone();
                tokens.extend_from_slice(&t.response_tokens);
                (i, tokens, t.prompt_tokens.len())
            })
            .collect();
        let teacher = self.clone();
        let scored: Vec<Vec<f32>> = futures_util::stream::iter(jobs)
            .map(move |(i, tokens, prompt_len)| {
                let teacher = teacher.clone();
                async move {
                    teacher
                        .logprobs(tokens, prompt_len)
                        .await
                        .map_err(|e| (i, e))
                }
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        for (turn, logprobs) in turns.iter_mut().zip(scored) {
            turn.teacher_logprobs = Some(logprobs);
        }
        Ok(())
    }

    /// The teacher's log-prob of each response token after `prompt`.
    pub async fn response_logprobs(
        &self,
        prompt: &[u32],
        response: &[u32],
    ) -> Result<Vec<f32>, TeacherError> {
        let mut tokens = Vec::with_capacity(prompt.len() + response.len());
        tokens.extend_from_slice(prompt);
        tokens.extend_from_slice(response);
        self.logprobs(tokens, prompt.len()).await
    }

    /// The teacher's log-probs of `tokens[prompt_len..]`.
    async fn logprobs(
        &self,
        tokens: Vec<u32>,
        prompt_len: usize,
    ) -> Result<Vec<f32>, TeacherError> {
        let body = json!({
            "model": self.model,
            "prompt": tokens,
            "max_tokens": 1,
            "echo": true,
            "logprobs": 1,
            "temperature": 0.0,
        });
        let mut request = self.http.post(&self.url).json(&body);
        if !self.api_key.is_empty() {
            request = request.bearer_auth(self.api_key.expose());
        }
        let unreachable = |e: reqwest::Error| TeacherError::Unreachable {
            url: self.url.clone(),
            reason: if e.is_timeout() {
                "timed out (opd.timeout_secs)".to_owned()
            } else {
                e.to_string()
            },
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(TeacherError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            });
        }
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| TeacherError::Malformed(format!("not JSON ({e})")))?;
        parse_logprobs(&answer, &tokens, prompt_len)
    }
}

/// The log-probs of `tokens[prompt_len..]` in a completions answer that
/// echoed `tokens` (either shape; see the module documentation).
pub fn parse_logprobs(
    answer: &Value,
    tokens: &[u32],
    prompt_len: usize,
) -> Result<Vec<f32>, TeacherError> {
    let choice = answer
        .pointer("/choices/0")
        .ok_or_else(|| TeacherError::Malformed("no choices[0]".into()))?;
    let prompt_logprobs = choice
        .get("prompt_logprobs")
        .or_else(|| answer.get("prompt_logprobs"))
        .and_then(Value::as_array);
    let token_logprobs = choice
        .pointer("/logprobs/token_logprobs")
        .and_then(Value::as_array);
    let (entries, by_id) = match (prompt_logprobs, token_logprobs) {
        (Some(entries), _) => (entries, true),
        (None, Some(entries)) => (entries, false),
        (None, None) => {
            return Err(TeacherError::Malformed(
                "neither choices[0].logprobs.token_logprobs nor prompt_logprobs".into(),
            ))
        }
    };
    // With `max_tokens: 1` the echo may also hold the generated token.
    if entries.len() < tokens.len() {
        return Err(TeacherError::Length {
            expected: tokens.len(),
            got: entries.len(),
        });
    }
    let mut out = Vec::with_capacity(tokens.len() - prompt_len);
    for (index, position) in (prompt_len..tokens.len()).enumerate() {
        let entry = &entries[position];
        let value = if by_id {
            let logprob = entry.get(tokens[position].to_string());
            logprob
                .and_then(|l| l.get("logprob").or(Some(l)))
                .and_then(Value::as_f64)
        } else {
            entry.as_f64()
        };
        let value = value.ok_or(TeacherError::Missing { index })?;
        let single = value as f32;
        if !single.is_finite() {
            return Err(TeacherError::NonFinite { index, value });
        }
        out.push(single);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openai_echo_logprobs() {
        // Prompt [5, 6], response [7, 8]; the echo holds 4 prompt entries
        // and the generated token's.
        let answer = json!({"choices": [{"text": "…", "index": 0, "logprobs": {
            "tokens": ["a", "b", "c", "d", "e"],
            "token_logprobs": [null, -1.5, -0.25, -2.0, -0.5],
            "top_logprobs": null, "text_offset": [0, 1, 2, 3, 4]}}]});
        assert_eq!(
            parse_logprobs(&answer, &[5, 6, 7, 8], 2).unwrap(),
            vec![-0.25, -2.0]
        );
    }

    #[test]
    fn reads_vllm_prompt_logprobs_by_token_id() {
        let answer = json!({"choices": [{"text": "x", "prompt_logprobs": [
            null,
            {"6": {"logprob": -1.0, "rank": 1, "decoded_token": "b"}},
            {"9": {"logprob": -0.1, "rank": 1}, "7": {"logprob": -3.0, "rank": 4}},
            {"8": -0.75}
        ]}]});
        assert_eq!(
            parse_logprobs(&answer, &[5, 6, 7, 8], 2).unwrap(),
            vec![-3.0, -0.75]
        );
    }

    #[test]
    fn unusable_answers_fail_with_the_reason() {
        let echo = |values: Value| json!({"choices": [{"logprobs": {"token_logprobs": values}}]});
        let cases = [
            (
                json!({"choices": []}),
                TeacherError::Malformed("no choices[0]".into()),
            ),
            (
                json!({"choices": [{"text": "hi"}]}),
                TeacherError::Malformed(
                    "neither choices[0].logprobs.token_logprobs nor prompt_logprobs".into(),
                ),
            ),
            (
                echo(json!([null, -1.0, -1.0])),
                TeacherError::Length {
                    expected: 4,
                    got: 3,
                },
            ),
            (
                echo(json!([null, -1.0, null, -1.0])),
                TeacherError::Missing { index: 0 },
            ),
            (
                echo(json!([null, -1.0, -1.0, "x"])),
                TeacherError::Missing { index: 1 },
            ),
            (
                echo(json!([null, -1.0, -1.0, -1e300])),
                TeacherError::NonFinite {
                    index: 1,
                    value: -1e300,
                },
            ),
            (
                json!({"choices": [{"prompt_logprobs": [null, {"6": -1}, {"99": -1}, {"8": -1}]}]}),
                TeacherError::Missing { index: 0 },
            ),
        ];
        for (answer, want) in cases {
            assert_eq!(parse_logprobs(&answer, &[5, 6, 7, 8], 2), Err(want));
        }
        assert!(TeacherError::Length {
            expected: 4,
            got: 3
        }
        .to_string()
        .contains("tokenizer"));
    }
}
