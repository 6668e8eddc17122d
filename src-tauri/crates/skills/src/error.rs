//! The one error type of the skills crate: every message names the file or field and why.

use std::path::PathBuf;

/// Everything that can go wrong while parsing, loading, writing or watching skills.
///
/// Loading a library never fails because of one broken skill: those errors become
/// [`crate::SkillProblem`]s carrying this type's message. The `Result`-returning
/// functions use it for failures that stop the whole operation.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// A file system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A folder in the library has no SKILL.md.
    #[error("{}: no SKILL.md in this folder; each skill is a folder holding a SKILL.md", dir.display())]
    MissingSkillFile { dir: PathBuf },

    /// The SKILL.md is a directory, device or pipe rather than a file.
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },

    /// The file is not UTF-8 text.
    #[error("{}: not UTF-8 text (invalid byte at offset {offset}); save the file as UTF-8", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },

    /// The file exceeds the size a skill may have.
    #[error("{}: file is {size} bytes, more than the {limit}-byte limit for a SKILL.md", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    /// The file does not start with a `---` front matter block, or never closes it.
    #[error("{}: {reason}", path.display())]
    FrontMatter { path: PathBuf, reason: String },

    /// The front matter is not valid YAML.
    #[error("{}: invalid YAML in the front matter: {message}", path.display())]
    Yaml {
        path: PathBuf,
        /// Line in the file (1-based) where the YAML parser stopped, when it says.
        line: Option<usize>,
        message: String,
    },

    /// A front matter field is missing, has the wrong type or an invalid value.
    #[error("{}: field `{field}` {reason}", path.display())]
    Field {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },

    /// A skill name is not a valid slug.
    #[error("invalid skill name `{name}`: {reason}; a name uses lowercase letters a-z, digits 0-9 and single hyphens between words, at most 64 characters (like `verify-time-zones`)")]
    InvalidName { name: String, reason: &'static str },

    /// An unknown value for a skill status.
    #[error("unknown skill status `{value}`: expected `active`, `pending` or `disabled`")]
    UnknownStatus { value: String },

    /// The `name` in the front matter differs from the folder holding the file.
    #[error("{}: field `name` is `{name}` but the folder is `{folder}`; they must be equal", path.display())]
    NameMismatch {
        path: PathBuf,
        name: String,
        folder: String,
    },

    /// A symlink inside the library points outside it.
    #[error("{}: resolves to {}, outside the skill library folder; skills must live inside it", path.display(), target.display())]
    OutsideLibrary { path: PathBuf, target: PathBuf },

    /// No skill of that name exists in the library.
    #[error("no skill named `{name}` in {}", dir.display())]
    NotFound { name: String, dir: PathBuf },

    /// The bundled-skills manifest cannot be read.
    #[error("{}: {reason}; delete the file to let bundled skills be reinstalled without overwriting existing ones", path.display())]
    Manifest { path: PathBuf, reason: String },

    /// The file watcher could not be started.
    #[error("could not watch the skill library {} for changes: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

impl SkillError {
    /// Shorthand for an [`SkillError::Io`] error.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        SkillError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
