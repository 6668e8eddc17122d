//! Retrieval over 10,000 generated skills: correct results, whatever the query (no timing asserts).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Instant;

use metaclaw_skills::{LibrarySnapshot, Skill, SkillStatus};

const WORDS: &[&str] = &[
    "deploy",
    "database",
    "schema",
    "migration",
    "invoice",
    "calendar",
    "meeting",
    "python",
    "rust",
    "javascript",
    "docker",
    "kubernetes",
    "network",
    "timeout",
    "retry",
    "cache",
    "memory",
    "profile",
    "latency",
    "report",
    "summary",
    "email",
    "customer",
    "budget",
    "forecast",
    "chart",
    "spreadsheet",
    "regex",
    "parser",
    "token",
    "secret",
    "backup",
    "restore",
    "logging",
    "metrics",
    "alert",
    "incident",
    "release",
    "version",
    "branch",
    "review",
    "refactor",
    "test",
    "fixture",
    "mock",
    "browser",
    "render",
    "layout",
    "font",
    "image",
    "upload",
    "download",
    "queue",
    "worker",
    "schedule",
    "cron",
    "timezone",
    "locale",
    "translate",
    "currency",
    "payment",
    "refund",
    "shipping",
    "inventory",
    "search",
    "index",
];

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| WORDS[self.next() % WORDS.len()])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn corpus() -> Vec<Skill> {
    let mut rng = Lcg(7);
    (0..10_000)
        .map(|i| {
            let description = format!("Use when {}.", rng.words(12));
            let mut body = String::new();
            for _ in 0..20 {
                body.push_str(&format!("- {}\n", rng.words(10)));
            }
            let mut skill = Skill::new(
                format!("skill-{i:05}-{}", rng.words(2).replace(' ', "-")),
                description,
                body,
            );
            skill.category = Some(WORDS[i % 7].to_owned());
            // Every tenth skill is inactive and must never be returned.
            if i % 10 == 3 {
                skill.status = SkillStatus::Disabled;
            }
            // A few skills carry a unique word.
            if i % 1000 == 500 {
                skill.description.push_str(&format!(" Mentions zebra{i}."));
            }
            skill
        })
        .collect()
}

#[test]
fn ten_thousand_skills() {
    let started = Instant::now();
    let snapshot = LibrarySnapshot::from_skills(corpus());
    let built = started.elapsed();
    assert_eq!(snapshot.len(), 10_000);
    assert!(snapshot.problems().is_empty());

    // Unique words find their one skill first.
    for i in (500..10_000).step_by(1000) {
        let hits = snapshot.search(
            &format!("please look at zebra{i} and the database schema"),
            5,
        );
        assert!(
            hits[0].skill.description.contains(&format!("zebra{i}")),
            "zebra{i}"
        );
    }

    let mut rng = Lcg(99);
    let queries: Vec<String> = (0..200).map(|i| rng.words(10 + i % 30)).collect();
    let started = Instant::now();
    for query in &queries {
        let hits = snapshot.search(query, 5);
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|h| h.skill.status == SkillStatus::Active));
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(hits.iter().all(|h| h.score.is_finite() && h.score > 0.0));
    }
    let per_query = started.elapsed() / queries.len() as u32;

    // A pasted 20 KB log with mostly unknown tokens.
    let mut log = String::new();
    let mut n = 0u64;
    while log.len() < 20_000 {
        n += 1;
        log.push_str(&format!(
            "2025-03-01T12:{:02}:{:02}Z ERROR worker-{n} request {n:x}deadbeef failed: timeout after {}ms in queue retry\n",
            n % 60, (n * 7) % 60, n * 13
        ));
    }
    let started = Instant::now();
    let hits = snapshot.search(&log, 10);
    let long_query = started.elapsed();
    assert_eq!(hits.len(), 10);

    assert!(snapshot.search("", 5).is_empty());
    assert!(snapshot.search("the and of to", 5).is_empty());
    assert!(snapshot.search("xylophone", 5).is_empty());
    assert!(snapshot.search("deploy", 0).is_empty());
    assert_eq!(
        snapshot.search("deploy", usize::MAX).len(),
        snapshot
            .skills()
            .iter()
            .filter(|s| s.status == SkillStatus::Active
                && (s.description.contains("deploy")
                    || s.body.contains("deploy")
                    || s.name.contains("deploy")
                    || s.category.as_deref() == Some("deploy")))
            .count()
    );

    eprintln!("index build {built:?}, typical query {per_query:?}, 20 KB log query {long_query:?}");
}
