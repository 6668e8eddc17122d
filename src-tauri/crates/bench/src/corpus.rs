//! Synthetic but realistic inputs: a skill library of any size and chat
//! requests shaped like the ones real agents send.

use std::path::Path;

use metaclaw_skills::Skill;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const TOPICS: &[&str] = &[
    "git",
    "commit",
    "branch",
    "merge",
    "rebase",
    "test",
    "pytest",
    "cargo",
    "rust",
    "python",
    "docker",
    "deploy",
    "calendar",
    "meeting",
    "timezone",
    "email",
    "draft",
    "summary",
    "report",
    "spreadsheet",
    "csv",
    "sql",
    "query",
    "index",
    "migration",
    "schema",
    "api",
    "pagination",
    "retry",
    "timeout",
    "cache",
    "latency",
    "profile",
    "memory",
    "log",
    "trace",
    "error",
    "exception",
    "stack",
    "debug",
    "refactor",
    "review",
    "security",
    "secret",
    "token",
    "auth",
    "oauth",
    "regex",
    "json",
    "yaml",
    "config",
    "backup",
    "shell",
    "bash",
    "script",
    "cron",
    "schedule",
    "invoice",
    "budget",
    "travel",
    "flight",
    "booking",
    "research",
    "citation",
    "source",
    "paper",
    "notes",
    "todo",
];
const FILLER: &[&str] = &[
    "always",
    "check",
    "before",
    "after",
    "verify",
    "the",
    "output",
    "carefully",
    "prefer",
    "small",
    "steps",
    "explain",
    "why",
    "keep",
    "a",
    "record",
    "of",
    "each",
    "change",
    "and",
    "confirm",
    "with",
    "user",
    "when",
    "unsure",
    "avoid",
    "guessing",
    "values",
    "read",
    "documentation",
    "first",
    "then",
    "act",
];

fn words(rng: &mut StdRng, pool: &[&str], count: usize) -> String {
    (0..count)
        .map(|_| *pool.choose(rng).unwrap_or(&"word"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `count` skills with distinct names and topic-heavy text, deterministic per seed.
pub fn synthetic_skills(count: usize, seed: u64) -> Vec<Skill> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let a = *TOPICS.choose(&mut rng).unwrap_or(&"topic");
            let b = *TOPICS.choose(&mut rng).unwrap_or(&"topic");
            let description = format!(
                "Use when working on {a} and {b}: {}",
                words(&mut rng, TOPICS, 12)
            );
            let mut body = format!("# {a} {b}\n\n");
            for _ in 0..rng.random_range(8..20) {
                body.push_str("- ");
                body.push_str(&words(&mut rng, FILLER, 6));
                body.push(' ');
                body.push_str(&words(&mut rng, TOPICS, 3));
                body.push('\n');
            }
            let name = format!("{a}-{b}-{i}");
            let mut skill = Skill::new(name.clone(), description, body);
            skill.category = Some(a.to_string());
            skill.path = Path::new("/bench").join(name).join("SKILL.md");
            skill
        })
        .collect()
}

/// Writes skills as a library folder the real server loads.
pub fn write_library(dir: &Path, skills: &[Skill]) -> std::io::Result<()> {
    for skill in skills {
        let folder = dir.join(&skill.name);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join("SKILL.md"), skill.to_markdown())?;
    }
    Ok(())
}

/// Realistic instructions a user types.
pub fn queries(count: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let n = rng.random_range(10..40);
            format!(
                "please help me {} {}",
                words(&mut rng, FILLER, n / 2),
                words(&mut rng, TOPICS, n / 2)
            )
        })
        .collect()
}

/// A ~1 KB OpenAI chat request.
pub fn small_request(stream: bool) -> Value {
    json!({
        "model": "bench-model",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant for a busy engineer. Answer briefly and precisely; say when you are unsure."},
            {"role": "user", "content": "I need to move our weekly sync to Thursday afternoon and tell the team."},
            {"role": "assistant", "content": "Sure. Which time zone should the new calendar invite use, and who should receive the email?"},
            {"role": "user", "content": "Use Europe/Berlin, 15:00, and email the whole team. Also check the calendar for conflicts with the release meeting, and draft a short summary of the changes for the git commit message of the schedule config."}
        ],
        "max_tokens": 256,
        "temperature": 0.2
    })
}

/// A request the way OpenClaw sends it: ~48 KB system prompt, 12 tools,
/// a Runtime line and the trailing internal-context block; ~60 KB in all.
pub fn openclaw_request() -> Value {
    let mut system = String::from("<!-- openclaw:attempt:STABLE -->\n# Workspace\n");
    let mut rng = StdRng::seed_from_u64(7);
    while system.len() < 47_000 {
        system.push_str(&words(&mut rng, FILLER, 12));
        system.push(' ');
        system.push_str(&words(&mut rng, TOPICS, 4));
        system.push('\n');
    }
    system.push_str("<!-- /openclaw:attempt:STABLE -->\n<!-- openclaw:attempt:DYNAMIC -->\nDate: 2026-11-25, model: bench\n");
    let tools: Vec<Value> = (0..12)
        .map(|i| {
            json!({"type": "function", "function": {
                "name": format!("tool_{i}"),
                "description": words(&mut rng, FILLER, 60),
                "parameters": {"type": "object", "properties": {
                    "path": {"type": "string", "description": words(&mut rng, FILLER, 30)},
                    "content": {"type": "string", "description": words(&mut rng, FILLER, 30)},
                    "mode": {"type": "string", "enum": ["read", "write", "append"]}
                }, "required": ["path"]}
            }})
        })
        .collect();
    json!({
        "model": "bench-model",
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_completion_tokens": 8192,
        "tool_choice": "auto",
        "tools": tools,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "[Wed 2026-11-25 03:11 UTC] Check my calendar for tomorrow and draft an email moving the standup.\n\nRuntime: agent=main | session=agent:main:explicit:b1 | sessionId=bench-session | host=h | os=linux | model=bench/bench-model"},
            {"role": "user", "content": [{"type": "text", "text": "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nNo background processes.\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"}]}
        ]
    })
}
