//! The BM25F inverted index over one snapshot's active skills.
//!
//! Built once per snapshot and then only read, so all the arithmetic that does
//! not depend on the query (field weights, length normalisation, saturation,
//! idf) is done at build time: each posting stores the finished contribution of
//! its term to its document's score, and a query only adds numbers up.

use std::collections::HashMap;

use crate::tokenize::Tokenizer;

use hasher::FxBuild;

mod hasher;
mod search;

/// The fields of a skill, in the order [`SkillIndex::build`] takes them.
pub(crate) const FIELDS: usize = 4;

/// Per-field weight and length normalisation `b`, for name, description,
/// category and body. The name and description say when a skill applies, so
/// they count more than words that merely occur in the body; short fields are
/// normalised less because their length varies little.
const FIELD_WEIGHT: [f32; FIELDS] = [3.0, 2.0, 1.0, 1.0];
const FIELD_B: [f32; FIELDS] = [0.3, 0.5, 0.0, 0.75];

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;

/// Most distinct query terms scored; the rarest are kept, as they carry the
/// most information and have the shortest posting lists.
pub(crate) const MAX_QUERY_TERMS: usize = 64;

/// Longer queries are read only at their start and end, where a pasted log
/// usually has its command and its final error.
const MAX_QUERY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: u32,
    impact: f32,
}

/// An immutable inverted index; documents are numbered in build order.
pub(crate) struct SkillIndex {
    tokenizer: Tokenizer,
    /// Lowercase word → term, for words seen while building: lets most query
    /// words skip the stemmer.
    surface: HashMap<Box<str>, u32, FxBuild>,
    /// Stem → term.
    stems: HashMap<Box<str>, u32, FxBuild>,
    /// Term `t`'s postings are `postings[offsets[t]..offsets[t + 1]]`, by
    /// document; empty for terms stored as a dense row.
    offsets: Vec<u32>,
    postings: Vec<Posting>,
    /// Documents containing each term.
    df: Vec<u32>,
    /// For terms in a large share of the documents, one impact per document
    /// (0 where absent), `docs` values per row: adding a whole row is a
    /// vectorised loop, several times faster than scattering as many
    /// postings, for at most 1.5 times the memory the postings would take.
    dense_row: Vec<Option<u32>>,
    dense: Vec<f32>,
    docs: usize,
}

/// A term is stored densely when it occurs in at least this share of documents.
const DENSE_SHARE: usize = 3;

/// What a query adds up for one term.
enum TermImpacts<'a> {
    Sparse(&'a [Posting]),
    Dense(&'a [f32]),
}

/// Term frequencies of one term in one document, per field.
struct Entry {
    term: u32,
    doc: u32,
    tf: [u16; FIELDS],
}

impl SkillIndex {
    /// Indexes documents given as their field texts, numbered 0, 1, 2, …
    pub(crate) fn build<'a>(documents: impl IntoIterator<Item = [&'a str; FIELDS]>) -> SkillIndex {
        SkillIndex::build_with(documents, true)
    }

    /// [`SkillIndex::build`], optionally without dense rows (to test that both
    /// layouts score alike).
    fn build_with<'a>(
        documents: impl IntoIterator<Item = [&'a str; FIELDS]>,
        dense_rows: bool,
    ) -> SkillIndex {
        let mut index = SkillIndex {
            tokenizer: Tokenizer::new(),
            surface: HashMap::default(),
            stems: HashMap::default(),
            offsets: Vec::new(),
            postings: Vec::new(),
            df: Vec::new(),
            dense_row: Vec::new(),
            dense: Vec::new(),
            docs: 0,
        };
        let mut entries = Vec::new();
        let mut lengths: Vec<[u32; FIELDS]> = Vec::new();
        let mut occurrences: Vec<(u32, usize)> = Vec::new();
        for fields in documents {
            let doc = u32::try_from(lengths.len()).unwrap_or(u32::MAX);
            let mut length = [0u32; FIELDS];
            occurrences.clear();
            for (field, text) in fields.iter().enumerate() {
                Tokenizer::for_each_word(text, |word| {
                    occurrences.push((index.intern(word), field));
                    length[field] += 1;
                });
            }
            occurrences.sort_unstable();
            for group in occurrences.chunk_by(|a, b| a.0 == b.0) {
                let mut tf = [0u16; FIELDS];
                for &(_, field) in group {
                    tf[field] = tf[field].saturating_add(1);
                }
                entries.push(Entry {
                    term: group[0].0,
                    doc,
                    tf,
                });
            }
            lengths.push(length);
        }
        index.docs = lengths.len();
        index.fill_postings(&entries, &lengths, dense_rows);
        index
    }

    /// The term for a lowercase word, created if new.
    fn intern(&mut self, word: &str) -> u32 {
        if let Some(&term) = self.surface.get(word) {
            return term;
        }
        let stem = self.tokenizer.stem(word);
        let term = match self.stems.get(stem.as_ref()) {
            Some(&term) => term,
            None => {
                let term = u32::try_from(self.stems.len()).unwrap_or(u32::MAX);
                self.stems.insert(stem.into(), term);
                term
            }
        };
        self.surface.insert(word.into(), term);
        term
    }

    /// Lays out the postings term by term (a counting sort: entries arrive in
    /// document order, so each list ends up sorted by document) with their impacts.
    fn fill_postings(&mut self, entries: &[Entry], lengths: &[[u32; FIELDS]], dense_rows: bool) {
        let terms = self.stems.len();
        let docs = lengths.len();
        let mut df = vec![0u32; terms];
        for entry in entries {
            df[entry.term as usize] += 1;
        }
        // Dense rows only pay off in a corpus of some size.
        let dense_from = if dense_rows && docs >= 64 {
            docs / DENSE_SHARE
        } else {
            usize::MAX
        };
        let mut rows = 0u32;
        self.dense_row = df
            .iter()
            .map(|&count| {
                (count as usize >= dense_from).then(|| {
                    rows += 1;
                    rows - 1
                })
            })
            .collect();
        self.dense = vec![0.0; rows as usize * docs];
        self.offsets = Vec::with_capacity(terms + 1);
        let mut total = 0u32;
        self.offsets.push(0);
        for (&count, row) in df.iter().zip(&self.dense_row) {
            if row.is_none() {
                total += count;
            }
            self.offsets.push(total);
        }

        let n = docs.max(1) as f32;
        let mut average = [0f32; FIELDS];
        for length in lengths {
            for (sum, &len) in average.iter_mut().zip(length) {
                *sum += len as f32;
            }
        }
        for avg in &mut average {
            *avg = (*avg / n).max(1.0);
        }
        let idf: Vec<f32> = df
            .iter()
            .map(|&df| (1.0 + (n - df as f32 + 0.5) / (df as f32 + 0.5)).ln())
            .collect();

        let mut cursor = self.offsets.clone();
        let empty = Posting {
            doc: 0,
            impact: 0.0,
        };
        self.postings = vec![empty; total as usize];
        for entry in entries {
            let length = &lengths[entry.doc as usize];
            let mut tf = 0f32;
            for field in 0..FIELDS {
                if entry.tf[field] > 0 {
                    let norm = 1.0 - FIELD_B[field]
                        + FIELD_B[field] * length[field] as f32 / average[field];
                    tf += FIELD_WEIGHT[field] * f32::from(entry.tf[field]) / norm;
                }
            }
            let term = entry.term as usize;
            let impact = idf[term] * tf * (K1 + 1.0) / (K1 + tf);
            if let Some(row) = self.dense_row[term] {
                self.dense[row as usize * docs + entry.doc as usize] = impact;
            } else {
                let slot = &mut cursor[term];
                self.postings[*slot as usize] = Posting {
                    doc: entry.doc,
                    impact,
                };
                *slot += 1;
            }
        }
        self.df = df;
    }

    /// A term's impacts, sparse or dense.
    fn impacts(&self, term: u32) -> TermImpacts<'_> {
        let t = term as usize;
        if let Some(Some(row)) = self.dense_row.get(t) {
            let start = *row as usize * self.docs;
            return TermImpacts::Dense(self.dense.get(start..start + self.docs).unwrap_or(&[]));
        }
        match (self.offsets.get(t), self.offsets.get(t + 1)) {
            (Some(&start), Some(&end)) => TermImpacts::Sparse(
                self.postings
                    .get(start as usize..end as usize)
                    .unwrap_or(&[]),
            ),
            _ => TermImpacts::Sparse(&[]),
        }
    }

    /// Documents containing `term`.
    fn df(&self, term: u32) -> usize {
        self.df.get(term as usize).map_or(0, |&df| df as usize)
    }

    /// The distinct known terms of a query, at most [`MAX_QUERY_TERMS`], rarest kept.
    fn query_terms(&self, query: &str) -> Vec<u32> {
        let mut terms = Vec::new();
        // Words the corpus never used must be stemmed; a pasted log repeats
        // the same few of them hundreds of times, so remember the outcome.
        let mut unseen: HashMap<Box<str>, Option<u32>> = HashMap::new();
        let mut add = |word: &str| {
            if let Some(&term) = self.surface.get(word) {
                terms.push(term);
                return;
            }
            // Words with digits are their own stem (see `Tokenizer::stem`), so
            // one not in `surface` is in no skill: ids, hashes, timestamps.
            if !word.chars().all(char::is_alphabetic) {
                return;
            }
            let term = match unseen.get(word) {
                Some(&term) => term,
                None => {
                    let term = self.stems.get(self.tokenizer.stem(word).as_ref()).copied();
                    unseen.insert(word.into(), term);
                    term
                }
            };
            terms.extend(term);
        };
        if query.len() <= MAX_QUERY_BYTES {
            Tokenizer::for_each_word(query, &mut add);
        } else {
            let head = floor_char_boundary(query, MAX_QUERY_BYTES / 2);
            let tail = ceil_char_boundary(query, query.len() - MAX_QUERY_BYTES / 2);
            Tokenizer::for_each_word(&query[..head], &mut add);
            Tokenizer::for_each_word(&query[tail..], &mut add);
        }
        terms.sort_unstable();
        terms.dedup();
        if terms.len() > MAX_QUERY_TERMS {
            terms.select_nth_unstable_by_key(MAX_QUERY_TERMS, |&t| (self.df(t), t));
            terms.truncate(MAX_QUERY_TERMS);
        }
        terms
    }
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_char_boundary(s: &str, mut index: usize) -> usize {
    while index < s.len() && !s.is_char_boundary(index) {
        index += 1;
    }
    index
}

#[cfg(test)]
mod tests;
