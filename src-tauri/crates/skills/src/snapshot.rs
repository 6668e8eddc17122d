//! An immutable view of the library at one moment: skills, problems and the search index.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::index::SkillIndex;
use crate::{validate_name, Skill, SkillError, SkillStatus};

/// A skill that could not be loaded, and why. The library skips it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillProblem {
    /// The SKILL.md file, or the folder when the file itself is missing.
    pub path: PathBuf,
    /// What is wrong and, where it helps, how to fix it.
    pub reason: String,
}

impl SkillProblem {
    /// A problem from an error; the path is not repeated in the reason.
    pub(crate) fn from_error(path: &Path, err: &SkillError) -> SkillProblem {
        let message = err.to_string();
        // Most messages start with "<path>: "; the path is already a field.
        let prefix = format!("{}: ", path.display());
        let reason = message.strip_prefix(&prefix).unwrap_or(&message).to_owned();
        SkillProblem {
            path: path.to_owned(),
            reason,
        }
    }
}

/// One search result.
#[derive(Debug, Clone)]
pub struct SkillHit {
    pub skill: Arc<Skill>,
    /// BM25F score; only comparable within one query.
    pub score: f32,
}

/// The library at one moment. Cheap to share ([`crate::SkillLibrary::snapshot`]
/// hands out an `Arc`); never changes, so a request sees one consistent set of skills.
pub struct LibrarySnapshot {
    /// Sorted by name, names unique.
    skills: Vec<Arc<Skill>>,
    problems: Vec<SkillProblem>,
    index: SkillIndex,
    /// Index document number → position in `skills`; only active skills are indexed.
    indexed: Vec<usize>,
}

impl LibrarySnapshot {
    /// Builds a snapshot, and its search index, from skills already parsed.
    ///
    /// Skills with an invalid name, and every repeat of a name after its first
    /// occurrence, become problems rather than entries.
    pub fn from_skills(skills: Vec<Skill>) -> LibrarySnapshot {
        LibrarySnapshot::from_parts(skills, Vec::new())
    }

    pub(crate) fn from_parts(
        mut skills: Vec<Skill>,
        mut problems: Vec<SkillProblem>,
    ) -> LibrarySnapshot {
        // Stable, so the first of several skills with one name is the one kept.
        skills.sort_by(|a, b| a.name.cmp(&b.name));
        let mut kept: Vec<Arc<Skill>> = Vec::with_capacity(skills.len());
        for skill in skills {
            if let Err(err) = validate_name(&skill.name) {
                problems.push(SkillProblem::from_error(&skill.path, &err));
                continue;
            }
            if let Some(previous) = kept.last().filter(|last| last.name == skill.name) {
                problems.push(SkillProblem {
                    path: skill.path.clone(),
                    reason: format!(
                        "duplicate skill name `{}`: already defined by {}",
                        skill.name,
                        previous.path.display()
                    ),
                });
                continue;
            }
            kept.push(Arc::new(skill));
        }
        let indexed: Vec<usize> = kept
            .iter()
            .enumerate()
            .filter(|(_, skill)| skill.status == SkillStatus::Active)
            .map(|(position, _)| position)
            .collect();
        let index = SkillIndex::build(indexed.iter().map(|&position| {
            let skill = &kept[position];
            [
                skill.name.as_str(),
                skill.description.as_str(),
                skill.category.as_deref().unwrap_or(""),
                skill.body.as_str(),
            ]
        }));
        LibrarySnapshot {
            skills: kept,
            problems,
            index,
            indexed,
        }
    }

    /// All loaded skills, whatever their status, sorted by name.
    pub fn skills(&self) -> &[Arc<Skill>] {
        &self.skills
    }

    /// The skill with this name, whatever its status.
    pub fn get(&self, name: &str) -> Option<&Arc<Skill>> {
        self.skills
            .binary_search_by(|skill| skill.name.as_str().cmp(name))
            .ok()
            .map(|position| &self.skills[position])
    }

    /// Skills that could not be loaded, in folder order.
    pub fn problems(&self) -> &[SkillProblem] {
        &self.problems
    }

    /// Number of loaded skills, whatever their status.
    pub fn len(&self) -> usize {
        self.skills.len()
    }

    pub fn is_empty(&self) -> bool {
        self.skills.is_empty()
    }

    /// The `k` active skills most relevant to `query`, best first.
    ///
    /// Empty for an empty query or one with no word any skill uses. Very long
    /// queries are fine: only their 64 rarest known terms are scored.
    pub fn search(&self, query: &str, k: usize) -> Vec<SkillHit> {
        self.index
            .search(query, k)
            .into_iter()
            .filter_map(|(doc, score)| {
                let position = *self.indexed.get(doc as usize)?;
                let skill = Arc::clone(self.skills.get(position)?);
                Some(SkillHit { skill, score })
            })
            .collect()
    }
}

impl Default for LibrarySnapshot {
    fn default() -> Self {
        LibrarySnapshot::from_parts(Vec::new(), Vec::new())
    }
}

impl fmt::Debug for LibrarySnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibrarySnapshot")
            .field("skills", &self.skills.len())
            .field("active", &self.indexed.len())
            .field("problems", &self.problems)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(name: &str, description: &str) -> Skill {
        let mut skill = Skill::new(name, description, "");
        skill.path = PathBuf::from(format!("lib/{name}/SKILL.md"));
        skill
    }

    #[test]
    fn sorts_and_looks_up_by_name() {
        let snapshot = LibrarySnapshot::from_skills(vec![
            skill("zeta", "last"),
            skill("alpha", "first"),
            skill("mid", "middle"),
        ]);
        let names: Vec<_> = snapshot.skills().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
        assert_eq!(
            snapshot.get("mid").map(|s| s.description.as_str()),
            Some("middle")
        );
        assert!(snapshot.get("nope").is_none());
        assert_eq!(snapshot.len(), 3);
        assert!(!snapshot.is_empty());
        assert!(LibrarySnapshot::default().is_empty());
    }

    #[test]
    fn duplicates_and_bad_names_become_problems() {
        let mut second = skill("same", "second");
        second.path = PathBuf::from("other/SKILL.md");
        let snapshot = LibrarySnapshot::from_skills(vec![
            skill("same", "first"),
            second,
            skill("Bad Name", "x"),
        ]);
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot.skills()[0].description, "first");
        let reasons: Vec<_> = snapshot
            .problems()
            .iter()
            .map(|p| p.reason.as_str())
            .collect();
        assert_eq!(reasons.len(), 2);
        assert!(reasons
            .iter()
            .any(|r| r.contains("duplicate skill name `same`")));
        assert!(reasons
            .iter()
            .any(|r| r.contains("invalid skill name `Bad Name`")));
    }

    #[test]
    fn search_skips_inactive_skills() {
        let mut pending = skill("tz-pending", "Use when converting time zones.");
        pending.status = SkillStatus::Pending;
        let mut disabled = skill("tz-disabled", "Use when converting time zones.");
        disabled.status = SkillStatus::Disabled;
        let snapshot = LibrarySnapshot::from_skills(vec![
            pending,
            skill("tz-active", "Use when converting time zones."),
            disabled,
            skill("other", "Use when baking bread."),
        ]);
        let hits = snapshot.search("convert this time zone", 10);
        let names: Vec<_> = hits.iter().map(|h| h.skill.name.as_str()).collect();
        assert_eq!(names, ["tz-active"]);
        assert!(snapshot.search("", 10).is_empty());
        assert_eq!(
            snapshot.get("tz-disabled").map(|s| s.status),
            Some(SkillStatus::Disabled)
        );
    }

    #[test]
    fn problem_reason_omits_the_path() {
        let path = Path::new("lib/x/SKILL.md");
        let err = SkillError::FrontMatter {
            path: path.to_owned(),
            reason: "broken".to_owned(),
        };
        let problem = SkillProblem::from_error(path, &err);
        assert_eq!(problem.reason, "broken");
        assert_eq!(
            serde_json::to_value(&problem).unwrap(),
            serde_json::json!({"path": "lib/x/SKILL.md", "reason": "broken"})
        );
    }
}
