//! What the evolver model reads: a session's turns (newest first, each cut
//! to a size a model reads well, the whole bounded), their scores and the
//! judge's reasons, the user's next message, and the skills that exist.

use metaclaw_dialect::{latest_instruction, Dialect};
use metaclaw_skills::Skill;
use metaclaw_store::{TurnRow, TurnStatus, TurnType};
use serde_json::{json, Value};

use crate::model_client::cut;
use crate::prm::render_response;

/// The most bytes of one turn shown to the evolver.
pub const MAX_TURN_BYTES: usize = 4 * 1024;
/// The most bytes of turns in one prompt; older turns beyond it are left for
/// a later evolution.
pub const MAX_TURNS_BYTES: usize = 24 * 1024;
/// The most bytes of the existing skills' list.
const MAX_SKILLS_BYTES: usize = 8 * 1024;

const SYSTEM: &str = "You improve an AI agent by writing reusable skills: short \
Markdown instructions that are injected into the agent's system prompt when a \
later request is similar. You read turns of a conversation, how a judge scored \
them (+1 good, 0 unclear, -1 failed) and what the user said next (corrections \
show what went wrong). Write skills that would have prevented the failures or \
that capture what worked, general enough to help with other requests of the \
same kind. Do not repeat an existing skill. Never include secrets, personal \
data or anything specific to this one conversation.";

const ANSWER_FORMAT: &str = "Answer with only a JSON array (no prose) of at most \
{max} objects, each {\"name\": a short kebab-case name, \"description\": one \
sentence saying when to use the skill, \"category\": one word such as coding or \
writing, \"body\": the skill's Markdown instructions}. Answer [] when no skill \
is worth adding.";

/// One main turn the evolver may read.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnView {
    pub id: i64,
    pub score: Option<i8>,
    /// Whether the judge is done with the turn (scored, or gave up for now).
    pub judged: bool,
    pub judge_reason: Option<String>,
    pub instruction: Option<String>,
    pub response: String,
    pub next_message: Option<String>,
}

impl TurnView {
    /// The complete main turns of a session, oldest first, each with the
    /// user's next message; `consumed` turns (already learned from) are left
    /// out after the next messages are taken from them.
    pub fn from_session(turns: &[TurnRow], consumed: &[i64]) -> Vec<TurnView> {
        let main: Vec<&TurnRow> = turns
            .iter()
            .filter(|t| t.turn_type == TurnType::Main)
            .collect();
        let mut out = Vec::new();
        for (i, turn) in main.iter().enumerate() {
            if turn.status != TurnStatus::Complete || consumed.contains(&turn.id) {
                continue;
            }
            // Stored requests and responses are in the upstream's dialect.
            let api = turn.upstream_api.parse().unwrap_or(Dialect::OpenAi);
            let next_message = main.get(i + 1).and_then(|next| {
                let api = next.upstream_api.parse().unwrap_or(Dialect::OpenAi);
                latest_instruction(api, &next.request)
            });
            out.push(TurnView {
                id: turn.id,
                score: turn.score,
                judged: turn
                    .judge_state
                    .is_some_and(|s| s != metaclaw_store::JudgementState::Pending),
                judge_reason: turn.judge_reason.clone(),
                instruction: latest_instruction(api, &turn.request),
                response: turn
                    .response
                    .as_ref()
                    .map(|r| render_response(api, r))
                    .unwrap_or_default(),
                next_message,
            });
        }
        out
    }

    fn render(&self) -> String {
        let score = match self.score {
            Some(1) => "+1 (succeeded)".to_string(),
            Some(0) => "0 (unclear)".to_string(),
            Some(s) if s < 0 => format!("{s} (failed)"),
            Some(s) => s.to_string(),
            None => "not scored".to_string(),
        };
        let mut text = format!("### Turn {} — score {score}\n", self.id);
        if let Some(reason) = &self.judge_reason {
            text.push_str(&format!("Judge: {reason}\n"));
        }
        text.push_str(&format!(
            "User: {}\nAssistant: {}\n",
            self.instruction.as_deref().unwrap_or("(no text)"),
            self.response
        ));
        if let Some(next) = &self.next_message {
            text.push_str(&format!("User's next message: {next}\n"));
        }
        cut(&text, MAX_TURN_BYTES)
    }
}

/// The prompt and the ids of the turns it shows (the evolution's support set).
#[derive(Clone, Debug, PartialEq)]
pub struct EvolvePrompt {
    pub messages: Value,
    pub turn_ids: Vec<i64>,
}

/// Builds the prompt from `turns` (oldest first): newest turns first until
/// the budget is spent.
pub fn build(turns: &[TurnView], skills: &[std::sync::Arc<Skill>], max_new: usize) -> EvolvePrompt {
    let mut shown = Vec::new();
    let mut turn_ids = Vec::new();
    let mut used = 0;
    for turn in turns.iter().rev() {
        let text = turn.render();
        if used + text.len() > MAX_TURNS_BYTES && !shown.is_empty() {
            break;
        }
        used += text.len();
        turn_ids.push(turn.id);
        shown.push(text);
    }
    turn_ids.sort_unstable();

    let mut existing = String::new();
    for skill in skills {
        let line = format!("- {}: {}\n", skill.name, skill.description);
        if existing.len() + line.len() > MAX_SKILLS_BYTES {
            existing.push_str("- (more skills not listed)\n");
            break;
        }
        existing.push_str(&line);
    }
    if existing.is_empty() {
        existing.push_str("(none yet)\n");
    }
    let user = format!(
        "## Existing skills\n{existing}\n## Turns, newest first\n{}\n## Your answer\n{}",
        shown.join("\n"),
        ANSWER_FORMAT.replace("{max}", &max_new.to_string())
    );
    EvolvePrompt {
        messages: json!([
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": user},
        ]),
        turn_ids,
    }
}

/// The one repair attempt: the original question, the bad answer, and a
/// request for valid JSON only.
pub fn repair(messages: &Value, bad_reply: &str, problem: &str) -> Value {
    let mut all = messages.as_array().cloned().unwrap_or_default();
    all.push(json!({"role": "assistant", "content": cut(bad_reply, MAX_TURNS_BYTES)}));
    all.push(json!({"role": "user", "content": format!(
        "Your answer could not be read ({problem}). Reply again with only the JSON array of \
         skills, valid JSON, no prose and no code fences."
    )}));
    Value::Array(all)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn view(id: i64, size: usize) -> TurnView {
        TurnView {
            id,
            score: Some(-1),
            judged: true,
            judge_reason: Some("the offset was missing".into()),
            instruction: Some(format!("task {id}")),
            response: "é".repeat(size / 2),
            next_message: Some("no, add +08:00".into()),
        }
    }

    #[test]
    fn newest_turns_first_within_the_budget_and_each_turn_cut() {
        let turns: Vec<TurnView> = (1..=10).map(|i| view(i, 10_000)).collect();
        let prompt = build(&turns, &[], 3);
        let user = prompt.messages[1]["content"].as_str().unwrap();
        // 24 KB of ~4 KB turns: the newest five or six.
        assert!(
            prompt.turn_ids.len() >= 5 && prompt.turn_ids.len() <= 6,
            "{:?}",
            prompt.turn_ids
        );
        assert_eq!(prompt.turn_ids.last(), Some(&10));
        assert!(user.find("### Turn 10").unwrap() < user.find("### Turn 9").unwrap());
        assert!(!user.contains("### Turn 1 "));
        assert!(user.contains("bytes cut"));
        assert!(user.contains("Judge: the offset was missing"));
        assert!(user.contains("User's next message: no, add +08:00"));
        assert!(user.contains("at most 3 objects"));
        assert!(user.contains("(none yet)"));
    }

    #[test]
    fn the_repair_sends_the_bad_answer_back() {
        let prompt = build(&[view(1, 10)], &[], 1);
        let repaired = repair(&prompt.messages, "{oops", "invalid JSON");
        let all = repaired.as_array().unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[2]["content"], "{oops");
        assert!(all[3]["content"]
            .as_str()
            .unwrap()
            .contains("only the JSON array"));
    }
}
