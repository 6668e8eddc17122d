//! Reading the evolver's answer: a JSON array of skills, found inside code
//! fences or prose when the model adds them. Only the JSON's shape is
//! checked here; names and sizes are made safe in `dedupe`.

use serde_json::Value;

/// The most bracket positions tried as the start of the JSON.
const MAX_CANDIDATES: usize = 256;

/// One skill as the evolver proposed it. Untrusted text: it only ever
/// becomes a SKILL.md through the skills crate, under a slug name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedSkill {
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    pub body: String,
}

/// The skills in `reply`, or why no JSON array of skills could be read
/// (the caller then asks the model once to repair its answer). Items that
/// are not objects with a name, description and body are skipped: the
/// JSON was valid, the item was not usable.
pub fn parse_reply(reply: &str) -> Result<Vec<ProposedSkill>, String> {
    let value = find_json(reply)?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("skills") {
            Some(Value::Array(items)) => items,
            // A lone skill instead of an array of one.
            _ if object.contains_key("name") => vec![Value::Object(object)],
            _ => return Err("the JSON is an object, not an array of skills".to_string()),
        },
        _ => return Err("the JSON is not an array of skills".to_string()),
    };
    Ok(items.iter().filter_map(skill_from).collect())
}

fn skill_from(item: &Value) -> Option<ProposedSkill> {
    let text = |key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(ProposedSkill {
        name: text("name")?,
        description: text("description")?,
        category: text("category"),
        body: text("body").or_else(|| text("content"))?,
    })
}

/// The first JSON array or object in `reply`: the whole text, the inside of
/// a code fence, or the first balanced `[…]` / `{…}` span that parses.
fn find_json(reply: &str) -> Result<Value, String> {
    let trimmed = reply.trim();
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return Ok(value);
    }
    for fenced in fences(trimmed) {
        if let Ok(value) = serde_json::from_str::<Value>(fenced.trim()) {
            return Ok(value);
        }
    }
    let mut last_error = "no JSON array found in the answer".to_string();
    // Each candidate is a scan to its closing bracket: a bounded number keeps
    // a long answer full of brackets from costing quadratic time.
    let candidates = trimmed
        .char_indices()
        .filter(|(_, c)| *c == '[' || *c == '{')
        .take(MAX_CANDIDATES);
    for (start, _) in candidates {
        if let Some(end) = balanced_end(&trimmed[start..]) {
            match serde_json::from_str::<Value>(&trimmed[start..start + end]) {
                Ok(value)
                    if value.is_array()
                        || value.get("name").is_some()
                        || value.get("skills").is_some() =>
                {
                    return Ok(value)
                }
                Ok(_) => {}
                Err(e) => last_error = format!("invalid JSON: {e}"),
            }
        }
    }
    Err(last_error)
}

/// The contents of ``` fences, in order.
fn fences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        // The info string (`json`) runs to the end of the line.
        let Some(line_end) = after.find('\n') else {
            break;
        };
        let body = &after[line_end + 1..];
        let Some(close) = body.find("```") else {
            break;
        };
        out.push(&body[..close]);
        rest = &body[close + 3..];
    }
    out
}

/// The length of the bracketed span `text` starts with, skipping brackets
/// inside strings; `None` when it never closes.
fn balanced_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ONE: &str = r#"[{"name": "Check Offsets", "description": "Use when dates need time zones", "category": "time", "body": "Always add the offset, e.g. +08:00."}]"#;

    #[test]
    fn reads_a_plain_array() {
        let skills = parse_reply(ONE).unwrap();
        assert_eq!(skills.len(), 1);
        assert_eq!(skills[0].name, "Check Offsets");
        assert_eq!(skills[0].category.as_deref(), Some("time"));
    }

    #[test]
    fn reads_fenced_json_with_prose_around_it() {
        let reply =
            format!("Here are the skills I propose:\n\n```json\n{ONE}\n```\n\nHope this helps!");
        assert_eq!(parse_reply(&reply).unwrap().len(), 1);
    }

    #[test]
    fn reads_an_array_inside_prose_with_brackets_in_strings() {
        let reply = r#"Sure [see below]: [{"name": "a", "description": "d ] tricky", "body": "use [x] \"quoted\""}] done"#;
        let skills = parse_reply(reply).unwrap();
        assert_eq!(skills[0].description, "d ] tricky");
        assert_eq!(skills[0].body, "use [x] \"quoted\"");
    }

    #[test]
    fn accepts_a_skills_object_or_a_lone_skill_and_skips_unusable_items() {
        let wrapped = r#"{"skills": [{"name": "a", "description": "d", "content": "b"}, {"name": "no body"}, 7]}"#;
        let skills = parse_reply(wrapped).unwrap();
        assert_eq!(skills.len(), 1);
        assert_eq!(skills[0].body, "b");
        let lone = r#"{"name": "a", "description": "d", "body": "b"}"#;
        assert_eq!(parse_reply(lone).unwrap().len(), 1);
        assert!(parse_reply("[]").unwrap().is_empty());
    }

    #[test]
    fn broken_json_is_an_error_for_the_repair_attempt() {
        for reply in [
            "I could not think of anything.",
            r#"[{"name": "a", "description": "d", "body": "b"#,
            r#"[{"name": 'a'}]"#,
            "42",
        ] {
            assert!(parse_reply(reply).is_err(), "{reply}");
        }
    }
}
