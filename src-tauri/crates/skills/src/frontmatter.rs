//! Splitting a SKILL.md into its YAML front matter and Markdown body.

use std::borrow::Cow;
use std::path::Path;

use serde_norway::{Mapping, Value};

use crate::SkillError;

/// A SKILL.md cut into its two parts.
#[derive(Debug, PartialEq)]
pub(crate) struct Split<'a> {
    /// The YAML between the `---` lines, prefixed with one `\n` so that line
    /// numbers in YAML errors are line numbers in the file (the opening `---`
    /// is line 1).
    pub yaml: String,
    /// Everything after the closing `---` line, verbatim.
    pub body: &'a str,
}

/// Removes a leading byte-order mark and turns CRLF line endings into LF.
///
/// Editors on Windows write both; neither is meaningful in a skill, and the
/// rest of the parser only has to think about `\n`.
pub(crate) fn normalize(text: &str) -> Cow<'_, str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains("\r\n") {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Splits normalised text into front matter and body.
pub(crate) fn split<'a>(text: &'a str, path: &Path) -> Result<Split<'a>, SkillError> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if !is_delimiter(first) {
        return Err(SkillError::FrontMatter {
            path: path.to_owned(),
            reason: "no front matter: a SKILL.md must start with a `---` line, then YAML \
                     with `name` and `description`, then another `---` line"
                .to_owned(),
        });
    }
    let mut yaml = String::from("\n");
    let mut offset = first.len();
    for line in lines {
        offset += line.len();
        if is_delimiter(line) {
            return Ok(Split {
                yaml,
                body: &text[offset..],
            });
        }
        yaml.push_str(line);
    }
    Err(SkillError::FrontMatter {
        path: path.to_owned(),
        reason: "the front matter opened by `---` on line 1 is never closed by another `---` line"
            .to_owned(),
    })
}

/// Reads front matter that is not valid YAML only because a value contains a
/// colon, such as `description: Use when: the user asks`.
///
/// That is the most common hand-editing mistake in SKILL.md files, and its
/// meaning is unambiguous when every line is a flat `key: value` pair. Anything
/// else (indentation, lists, quotes, block scalars, anchors, tags, comments
/// after a value, repeated keys) returns `None`, and the YAML error stands.
pub(crate) fn lenient_mapping(yaml: &str) -> Option<Mapping> {
    let mut mapping = Mapping::new();
    for line in yaml.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            return None;
        }
        let (key, value) = line.split_once(':')?;
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !key_ok || !(value.is_empty() || value.starts_with(' ')) {
            return None;
        }
        let value = value.trim();
        let yaml_syntax = [
            '[', '{', '"', '\'', '|', '>', '&', '*', '!', '-', '%', '@', '`',
        ];
        if value.starts_with(yaml_syntax) || value.contains(" #") {
            return None;
        }
        let value = if value.is_empty() {
            Value::Null
        } else {
            Value::String(value.to_owned())
        };
        if mapping
            .insert(Value::String(key.to_owned()), value)
            .is_some()
        {
            return None;
        }
    }
    Some(mapping)
}

/// A `---` line; trailing spaces are tolerated because they are invisible in editors.
fn is_delimiter(line: &str) -> bool {
    line.trim_end() == "---"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_str(text: &str) -> Result<(String, String), SkillError> {
        let text = normalize(text);
        let parts = split(&text, Path::new("x/SKILL.md"))?;
        Ok((parts.yaml, parts.body.to_owned()))
    }

    #[test]
    fn splits_front_matter_and_body() {
        let (yaml, body) = split_str("---\nname: a\n---\n\n# Body\n").unwrap();
        assert_eq!(yaml, "\nname: a\n");
        assert_eq!(body, "\n# Body\n");
    }

    #[test]
    fn body_may_be_empty_and_file_may_lack_final_newline() {
        let (yaml, body) = split_str("---\nname: a\n---").unwrap();
        assert_eq!(yaml, "\nname: a\n");
        assert_eq!(body, "");
    }

    #[test]
    fn later_rules_stay_in_the_body() {
        let (_, body) = split_str("---\na: 1\n---\nx\n---\ny\n").unwrap();
        assert_eq!(body, "x\n---\ny\n");
    }

    #[test]
    fn crlf_and_bom_are_normalised() {
        let (yaml, body) = split_str("\u{feff}---\r\nname: a\r\n---\r\nhello\r\n").unwrap();
        assert_eq!(yaml, "\nname: a\n");
        assert_eq!(body, "hello\n");
    }

    #[test]
    fn missing_front_matter() {
        let err = split_str("# Just markdown\n").unwrap_err().to_string();
        assert!(err.contains("x/SKILL.md"), "{err}");
        assert!(err.contains("no front matter"), "{err}");
        assert!(split_str("").is_err());
    }

    #[test]
    fn lenient_reading_of_unquoted_colons() {
        let m = lenient_mapping("\nname: a\ndescription: Use when: things break\n# note\nempty:\n")
            .unwrap();
        assert_eq!(
            m.get("description").and_then(Value::as_str),
            Some("Use when: things break")
        );
        assert_eq!(m.get("empty"), Some(&Value::Null));
        for yaml in [
            "name: a\n  nested: b\n",
            "name: [a: b\n",
            "name: a\nname: b\n",
            "name: 'a: b\n",
            "list:\n- a\n",
            "no colon here\n",
            "name: a: b # comment\n",
            "key:value\n",
            "bad key: value\n",
        ] {
            assert!(lenient_mapping(yaml).is_none(), "{yaml:?}");
        }
    }

    #[test]
    fn unclosed_front_matter() {
        let err = split_str("---\nname: a\n# body").unwrap_err().to_string();
        assert!(err.contains("never closed"), "{err}");
    }
}
