//! Tests for the BM25F index: ranking, field weights, limits and buffer reuse.

use super::*;

fn index(docs: &[[&str; FIELDS]]) -> SkillIndex {
    SkillIndex::build(docs.iter().copied())
}

fn ranked(index: &SkillIndex, query: &str) -> Vec<u32> {
    index
        .search(query, 10)
        .into_iter()
        .map(|(d, _)| d)
        .collect()
}

#[test]
fn finds_matching_documents_best_first() {
    let idx = index(&[
        [
            "cook-pasta",
            "Use when boiling pasta.",
            "food",
            "Salt the water.",
        ],
        [
            "git-commits",
            "Use when writing commit messages.",
            "coding",
            "Imperative mood.",
        ],
        [
            "deploy",
            "Use when shipping code.",
            "ops",
            "Run the tests, then commit and tag.",
        ],
    ]);
    assert_eq!(ranked(&idx, "how do I write a good commit message"), [1, 2]);
    assert_eq!(ranked(&idx, "boiled pastas"), [0]);
    assert!(ranked(&idx, "quantum chromodynamics").is_empty());
}

#[test]
fn name_and_description_outweigh_body() {
    let idx = index(&[
        [
            "notes",
            "Use when taking notes.",
            "",
            "Mention the timezone in every note.",
        ],
        [
            "timezone",
            "Use when converting times.",
            "",
            "Say which zone.",
        ],
    ]);
    assert_eq!(ranked(&idx, "timezone"), [1, 0]);
}

#[test]
fn scores_are_positive_and_sorted() {
    let idx = index(&[
        ["alpha", "alpha beta", "", "gamma"],
        ["beta", "beta", "", "alpha alpha alpha"],
        ["gamma", "gamma", "", ""],
    ]);
    let hits = idx.search("alpha beta gamma", 10);
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|&(_, s)| s > 0.0 && s.is_finite()));
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
}

#[test]
fn ties_go_to_the_lower_document() {
    let idx = index(&[["a", "same words", "", ""], ["b", "same words", "", ""]]);
    assert_eq!(ranked(&idx, "words"), [0, 1]);
}

#[test]
fn empty_inputs() {
    let idx = index(&[["a", "text", "", ""]]);
    assert!(idx.search("", 5).is_empty());
    assert!(idx.search("the of and", 5).is_empty());
    assert!(idx.search("text", 0).is_empty());
    let empty = SkillIndex::build(std::iter::empty());
    assert!(empty.search("text", 5).is_empty());
}

#[test]
fn k_limits_results() {
    let docs: Vec<[&str; FIELDS]> = (0..50).map(|_| ["x", "shared word", "", ""]).collect();
    let idx = index(&docs);
    assert_eq!(idx.search("shared", 7).len(), 7);
    assert_eq!(idx.search("shared", usize::MAX).len(), 50);
    assert_eq!(ranked(&idx, "shared")[..3], [0, 1, 2]);
}

#[test]
fn scratch_is_clean_between_queries() {
    let idx = index(&[["a", "apple", "", ""], ["b", "banana", "", ""]]);
    let first = idx.search("apple", 10);
    let _ = idx.search("banana apple", 10);
    assert_eq!(idx.search("apple", 10), first);
    // A smaller index after a larger one on the same thread.
    let small = index(&[["c", "banana", "", ""]]);
    assert_eq!(ranked(&small, "banana"), [0]);
}

#[test]
fn query_words_match_unseen_inflections() {
    let idx = index(&[["x", "Use when committing", "", ""]]);
    // "commits" never occurs in the corpus; its stem does.
    assert_eq!(ranked(&idx, "commits"), [0]);
}

#[test]
fn long_queries_keep_the_rarest_terms() {
    let mut docs: Vec<String> = (0..200)
        .map(|i| format!("common{} filler", i % 100))
        .collect();
    docs.push("needle filler".to_owned());
    let fields: Vec<[&str; FIELDS]> = docs.iter().map(|d| ["x", d.as_str(), "", ""]).collect();
    let idx = index(&fields);
    let mut query = String::new();
    for i in 0..100 {
        query.push_str(&format!("common{i} "));
    }
    query.push_str("needle");
    let terms = idx.query_terms(&query);
    assert_eq!(terms.len(), MAX_QUERY_TERMS);
    let needle = idx.stems.get("needl").copied().unwrap();
    assert!(terms.contains(&needle));
    assert_eq!(ranked(&idx, &query)[0], 200);
}

#[test]
fn huge_queries_read_head_and_tail() {
    let idx = index(&[
        ["a", "beginning", "", ""],
        ["b", "ending", "", ""],
        ["c", "middle", "", ""],
    ]);
    let filler = "é lorem ipsum ".repeat(20_000);
    let query = format!("beginning {filler} middle {filler} ending");
    let found = ranked(&idx, &query);
    assert_eq!(found.len(), 2);
    assert!(found.contains(&0) && found.contains(&1));
}

#[test]
fn top_k_equals_the_head_of_the_full_ranking() {
    // A corpus with a skewed vocabulary: a few words everywhere, most rare,
    // so both the dense and the sparse paths are exercised.
    let mut seed = 12345u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let vocab: Vec<String> = (0..300).map(|i| format!("w{i}x")).collect();
    let pick = |r: usize| {
        // Squared to skew towards the first words.
        let x = r % 1000;
        &vocab[(x * x) / (1000 * 1000 / vocab.len()) % vocab.len()]
    };
    let docs: Vec<[String; 2]> = (0..3000)
        .map(|_| {
            let desc: Vec<&str> = (0..8).map(|_| pick(next()).as_str()).collect();
            let body: Vec<&str> = (0..60).map(|_| pick(next()).as_str()).collect();
            [desc.join(" "), body.join(" ")]
        })
        .collect();
    let fields = || {
        docs.iter()
            .map(|[d, b]| ["name", d.as_str(), "", b.as_str()])
    };
    let idx = SkillIndex::build(fields());
    assert!(
        idx.dense_row.iter().any(Option::is_some),
        "no dense rows to test"
    );
    let sparse_only = SkillIndex::build_with(fields(), false);
    assert!(sparse_only.dense.is_empty());
    for _ in 0..200 {
        let words: Vec<&str> = (0..(5 + next() % 30))
            .map(|_| pick(next()).as_str())
            .collect();
        let query = words.join(" ");
        for k in [1, 3, 6, 20] {
            let top = idx.search(&query, k);
            let full = idx.search(&query, usize::MAX);
            assert_eq!(sparse_only.search(&query, k), top, "{query}");
            assert_eq!(top.len(), k.min(full.len()), "{query}");
            for (i, (&(doc, score), &(full_doc, full_score))) in top.iter().zip(&full).enumerate() {
                assert!(
                    (score - full_score).abs() < 1e-3,
                    "{query} k={k} #{i}: {score} vs {full_score}"
                );
                if doc != full_doc {
                    // Only near-equal scores may swap places.
                    let other = full.iter().find(|&&(d, _)| d == doc).map(|&(_, s)| s);
                    assert!(
                        other.is_some_and(|s| (s - full_score).abs() < 1e-3),
                        "{query} k={k} #{i}"
                    );
                }
            }
        }
    }
}
