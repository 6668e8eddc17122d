//! A skill: its fields, parsing a SKILL.md into them, and rendering them back.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};

use crate::frontmatter;
use crate::{validate_name, SkillError};

/// Whether a skill is offered to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkillStatus {
    /// Retrieved and injected into requests.
    #[default]
    Active,
    /// Written (usually by the evolver) and waiting for the user's review.
    Pending,
    /// Kept on disk but never injected.
    Disabled,
}

impl SkillStatus {
    /// The lowercase word used in front matter and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SkillStatus::Active => "active",
            SkillStatus::Pending => "pending",
            SkillStatus::Disabled => "disabled",
        }
    }
}

impl fmt::Display for SkillStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SkillStatus {
    type Err = SkillError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "active" => Ok(SkillStatus::Active),
            "pending" => Ok(SkillStatus::Pending),
            "disabled" => Ok(SkillStatus::Disabled),
            _ => Err(SkillError::UnknownStatus {
                value: value.to_owned(),
            }),
        }
    }
}

/// Where a skill came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkillOrigin {
    /// Shipped with the app and not edited since it was installed.
    Bundled,
    /// Written or edited by the user (the default for any file on disk).
    #[default]
    User,
    /// Written by the evolver (front matter `origin: evolved`).
    Evolved,
}

impl SkillOrigin {
    /// The lowercase word used in front matter and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SkillOrigin::Bundled => "bundled",
            SkillOrigin::User => "user",
            SkillOrigin::Evolved => "evolved",
        }
    }
}

impl fmt::Display for SkillOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Front matter key: why a disabled skill was disabled (kept with the file,
/// so the reason travels with the skill and survives a restart).
pub const DISABLED_REASON_KEY: &str = "disabled_reason";
/// Front matter key: when it was disabled (RFC 3339).
pub const DISABLED_AT_KEY: &str = "disabled_at";
/// Front matter key: who disabled it (`curator` or `user`).
pub const DISABLED_BY_KEY: &str = "disabled_by";

/// One skill: a `<name>/SKILL.md` file with YAML front matter and a Markdown body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skill {
    /// A slug (see [`validate_name`]); equal to the name of the folder holding the file.
    pub name: String,
    /// When to use the skill; weighted highly by retrieval.
    pub description: String,
    /// A free-form grouping such as `coding`.
    pub category: Option<String>,
    /// Front matter `status`; `active` when absent.
    pub status: SkillStatus,
    /// Bundled, user-written or evolved; see [`SkillOrigin`].
    pub origin: SkillOrigin,
    /// The Markdown after the front matter, verbatim (LF line endings).
    pub body: String,
    /// Front matter keys this crate does not interpret, in file order, so that
    /// rewriting a skill never drops what another tool put there.
    pub extra: Mapping,
    /// The SKILL.md file this skill was read from or will be written to.
    pub path: PathBuf,
}

impl Skill {
    /// A new active, user-origin skill with no category and no extra keys.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        body: impl Into<String>,
    ) -> Skill {
        Skill {
            name: name.into(),
            description: description.into(),
            category: None,
            status: SkillStatus::Active,
            origin: SkillOrigin::User,
            body: body.into(),
            extra: Mapping::new(),
            path: PathBuf::new(),
        }
    }

    /// Why the skill is disabled (front matter `disabled_reason`), when it is.
    pub fn disabled_reason(&self) -> Option<&str> {
        if self.status != SkillStatus::Disabled {
            return None;
        }
        self.extra.get(DISABLED_REASON_KEY).and_then(Value::as_str)
    }

    /// Marks the skill disabled (never injected, kept on disk) with why, who
    /// and when in its front matter; [`Skill::enable`] undoes it.
    pub fn disable(&mut self, reason: &str, by: &str, at: &str) {
        self.status = SkillStatus::Disabled;
        self.extra.insert(DISABLED_REASON_KEY.into(), reason.into());
        self.extra.insert(DISABLED_BY_KEY.into(), by.into());
        self.extra.insert(DISABLED_AT_KEY.into(), at.into());
    }

    /// Makes the skill active again and drops the disabling keys.
    pub fn enable(&mut self) {
        self.status = SkillStatus::Active;
        for key in [DISABLED_REASON_KEY, DISABLED_BY_KEY, DISABLED_AT_KEY] {
            self.extra.remove(key);
        }
    }

    /// Parses the text of a SKILL.md; `path` is recorded and used in error messages.
    ///
    /// A leading byte-order mark is ignored and CRLF line endings become LF.
    /// Front matter whose only fault is an unquoted colon inside a value
    /// (`description: Use when: …`) is read as flat `key: value` lines.
    /// `origin` is [`SkillOrigin::Evolved`] for `origin: evolved` and
    /// [`SkillOrigin::User`] otherwise (any other `origin` value stays in
    /// `extra`); the library marks unchanged bundled skills afterwards.
    pub fn parse(text: &str, path: &Path) -> Result<Skill, SkillError> {
        let text = frontmatter::normalize(text);
        let parts = frontmatter::split(&text, path)?;
        let value: Value = match serde_norway::from_str(&parts.yaml) {
            Ok(value) => value,
            Err(err) => match frontmatter::lenient_mapping(&parts.yaml) {
                Some(mapping) => Value::Mapping(mapping),
                None => {
                    return Err(SkillError::Yaml {
                        path: path.to_owned(),
                        // `parts.yaml` starts with one extra newline, so this is a file line.
                        line: err.location().map(|location| location.line()),
                        message: err.to_string(),
                    });
                }
            },
        };
        let mapping = match value {
            Value::Mapping(mapping) => mapping,
            Value::Null => {
                return Err(SkillError::FrontMatter {
                    path: path.to_owned(),
                    reason: "the front matter is empty; it needs at least `name` and `description`"
                        .to_owned(),
                })
            }
            other => {
                return Err(SkillError::FrontMatter {
                    path: path.to_owned(),
                    reason: format!(
                        "the front matter must be YAML `key: value` lines, not {}",
                        kind_of(&other)
                    ),
                })
            }
        };

        let mut skill = Skill::new(String::new(), String::new(), parts.body);
        skill.path = path.to_owned();
        let (mut name, mut description) = (None, None);
        for (key, value) in mapping {
            match key.as_str() {
                Some("name") => name = Some(required_string(path, "name", value)?),
                Some("description") => {
                    description = Some(required_string(path, "description", value)?)
                }
                Some("category") => skill.category = optional_string(path, "category", value)?,
                Some("status") => skill.status = parse_status(path, value)?,
                Some("origin") if value.as_str() == Some("evolved") => {
                    skill.origin = SkillOrigin::Evolved
                }
                _ => {
                    skill.extra.insert(key, value);
                }
            }
        }
        skill.name = name.ok_or_else(|| missing(path, "name"))?;
        skill.description = description.ok_or_else(|| missing(path, "description"))?;
        validate_name(&skill.name).map_err(|err| SkillError::Field {
            path: path.to_owned(),
            field: "name",
            reason: format!("is not valid: {err}"),
        })?;
        Ok(skill)
    }

    /// Renders the skill as a SKILL.md: front matter then body.
    ///
    /// Keys come in a fixed order: `name`, `description`, `category`, `status`
    /// (only when not active), `origin` (only when evolved), then the extra keys
    /// in their original order. `Skill::parse(&skill.to_markdown(), path)` gives
    /// back an equal skill, except that `Bundled` origin is not written down (the
    /// library derives it from the bundled manifest).
    pub fn to_markdown(&self) -> String {
        let mut front = Mapping::new();
        front.insert("name".into(), self.name.as_str().into());
        front.insert("description".into(), self.description.as_str().into());
        if let Some(category) = &self.category {
            front.insert("category".into(), category.as_str().into());
        }
        if self.status != SkillStatus::Active {
            front.insert("status".into(), self.status.as_str().into());
        }
        if self.origin == SkillOrigin::Evolved {
            front.insert("origin".into(), "evolved".into());
        }
        for (key, value) in &self.extra {
            // Extra keys never override the fields above; a hand-built skill
            // might carry a stale copy of one of them.
            if !front.contains_key(key) {
                front.insert(key.clone(), value.clone());
            }
        }
        let yaml = serde_norway::to_string(&front).unwrap_or_else(|err| {
            // Only an exotic extra value (which parsing never produces) can
            // fail to serialise; keep the skill usable without it.
            tracing::warn!(skill = %self.name, "dropping front matter keys that cannot be written as YAML: {err}");
            self.core_front_matter()
        });
        let mut out = String::with_capacity(yaml.len() + self.body.len() + 8);
        out.push_str("---\n");
        out.push_str(&yaml);
        if !yaml.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("---\n");
        out.push_str(&self.body);
        out
    }

    /// The interpreted fields as YAML, written by hand so it cannot fail: JSON
    /// string literals are valid YAML double-quoted scalars.
    fn core_front_matter(&self) -> String {
        let quote = |s: &str| serde_json::Value::from(s).to_string();
        let mut yaml = format!(
            "name: {}\ndescription: {}\n",
            quote(&self.name),
            quote(&self.description)
        );
        if let Some(category) = &self.category {
            yaml.push_str(&format!("category: {}\n", quote(category)));
        }
        if self.status != SkillStatus::Active {
            yaml.push_str(&format!("status: {}\n", self.status));
        }
        if self.origin == SkillOrigin::Evolved {
            yaml.push_str("origin: evolved\n");
        }
        yaml
    }
}

fn missing(path: &Path, field: &'static str) -> SkillError {
    SkillError::Field {
        path: path.to_owned(),
        field,
        reason: "is missing from the front matter".to_owned(),
    }
}

fn required_string(path: &Path, field: &'static str, value: Value) -> Result<String, SkillError> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::String(_) | Value::Null => Err(SkillError::Field {
            path: path.to_owned(),
            field,
            reason: "is empty".to_owned(),
        }),
        other => Err(wrong_type(path, field, &other)),
    }
}

fn optional_string(
    path: &Path,
    field: &'static str,
    value: Value,
) -> Result<Option<String>, SkillError> {
    match value {
        Value::String(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        other => Err(wrong_type(path, field, &other)),
    }
}

fn parse_status(path: &Path, value: Value) -> Result<SkillStatus, SkillError> {
    match value {
        Value::String(s) => s.parse().map_err(|err: SkillError| SkillError::Field {
            path: path.to_owned(),
            field: "status",
            reason: format!("is invalid: {err}"),
        }),
        Value::Null => Ok(SkillStatus::Active),
        other => Err(wrong_type(path, "status", &other)),
    }
}

fn wrong_type(path: &Path, field: &'static str, value: &Value) -> SkillError {
    SkillError::Field {
        path: path.to_owned(),
        field,
        reason: format!("must be a string, not {}", kind_of(value)),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
#[path = "skill_tests.rs"]
mod tests;
