//! MetaClaw's skill library: SKILL.md files on disk, loaded live and searched on every request.
//!
//! A skill is a folder `<name>/SKILL.md`: YAML front matter (`name`,
//! `description`, optional `category`, `status`, `origin`, anything else kept
//! as is) and a Markdown body, the open Agent Skills layout. The library
//! folder is the source of truth; [`SkillLibrary`] keeps an immutable
//! [`LibrarySnapshot`] of it (skills, per-file problems and a BM25F index)
//! that requests read without locking, and swaps in a new one when the folder
//! changes.
//!
//! ```no_run
//! # fn main() -> Result<(), metaclaw_skills::SkillError> {
//! use metaclaw_skills::{install_bundled, SkillLibrary};
//! let dir = std::path::Path::new("/home/me/.metaclaw/skills");
//! install_bundled(dir)?;
//! let library = SkillLibrary::open(dir)?;
//! let _watcher = library.watch()?;
//! for hit in library.snapshot().search("convert 9am PST to Berlin time", 3) {
//!     println!("{} {:.2}", hit.skill.name, hit.score);
//! }
//! # Ok(())
//! # }
//! ```

// Tests may unwrap: a panic there is a failing test, which is the point.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod atomic;
mod bundled;
mod error;
mod frontmatter;
mod index;
mod library;
mod load;
mod name;
mod skill;
mod snapshot;
mod tokenize;
mod watch;

pub use bundled::{bundled_skills, install_bundled, BundledReport, MANIFEST_FILE};
pub use error::SkillError;
pub use library::SkillLibrary;
pub use load::{MAX_SKILL_BYTES, SKILL_FILE};
pub use name::{slugify, validate_name, MAX_NAME_LEN};
pub use skill::{
    Skill, SkillOrigin, SkillStatus, DISABLED_AT_KEY, DISABLED_BY_KEY, DISABLED_REASON_KEY,
};
pub use snapshot::{LibrarySnapshot, SkillHit, SkillProblem};
pub use watch::LibraryWatcher;
