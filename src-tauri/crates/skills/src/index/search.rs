//! Answering a query: term-at-a-time scoring into a reused buffer, then a small top-k heap.
//!
//! Rare terms scatter their postings into the buffer; common ones add a dense
//! row of impacts, which the compiler turns into vector instructions.
//!
//! Every posting of every query term is added up; there is no approximate
//! early exit, so results are exact. Dynamic pruning (MaxScore) was tried and
//! measured slower on 10,000 synthetic skills: when common words make the
//! candidates numerous, looking them up costs more than the postings it skips.

use std::cell::Cell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::{Posting, SkillIndex, TermImpacts};

impl SkillIndex {
    /// The `k` best documents for `query` as `(document, score)`, best first;
    /// ties go to the lower document number.
    pub(crate) fn search(&self, query: &str, k: usize) -> Vec<(u32, f32)> {
        if k == 0 || self.docs == 0 {
            return Vec::new();
        }
        let terms = self.query_terms(query);
        if terms.is_empty() {
            return Vec::new();
        }
        with_scratch(|s| {
            let n = self.docs;
            if s.scores.len() < n {
                s.scores.resize(n, 0.0);
            }
            // Dense: scan every score at the end instead of tracking which
            // were touched; cheaper once the postings cover much of the corpus.
            let postings: usize = terms.iter().map(|&t| self.df(t)).sum();
            let dense = postings >= n / 4;
            for &term in &terms {
                match self.impacts(term) {
                    TermImpacts::Sparse(postings) => accumulate(postings, s, dense),
                    // Dense rows only exist for terms in a third of the
                    // documents or more, so `dense` is always set here.
                    TermImpacts::Dense(row) => {
                        for (score, &impact) in s.scores[..n].iter_mut().zip(row) {
                            *score += impact;
                        }
                    }
                }
            }
            let mut best = TopK::new(k);
            if dense {
                for (doc, &score) in s.scores[..n].iter().enumerate() {
                    if score > 0.0 {
                        best.offer(doc as u32, score);
                    }
                }
                s.scores[..n].fill(0.0);
            } else {
                for &doc in &s.touched {
                    if let Some(score) = s.scores.get_mut(doc as usize) {
                        best.offer(doc, *score);
                        *score = 0.0;
                    }
                }
                s.touched.clear();
            }
            best.into_sorted()
        })
    }
}

/// Adds a term's impacts to the scores: the inner loop of every query.
fn accumulate(postings: &[Posting], s: &mut Scratch, dense: bool) {
    let scores = s.scores.as_mut_slice();
    if dense {
        for posting in postings {
            if let Some(score) = scores.get_mut(posting.doc as usize) {
                *score += posting.impact;
            }
        }
    } else {
        for posting in postings {
            if let Some(score) = scores.get_mut(posting.doc as usize) {
                // Impacts are strictly positive, so 0 means "not seen yet".
                if *score == 0.0 {
                    s.touched.push(posting.doc);
                }
                *score += posting.impact;
            }
        }
    }
}

/// The k best documents offered, ties to the lower document number.
struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Candidate>>,
    /// The worst score in a full heap (minus infinity until full); most
    /// offers lose to it with one comparison, which keeps a pass over 10,000
    /// scores cheap.
    worst: f32,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1024) + 1),
            worst: f32::NEG_INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, doc: u32, score: f32) {
        if score >= self.worst {
            self.offer_slow(doc, score);
        }
    }

    #[inline(never)]
    fn offer_slow(&mut self, doc: u32, score: f32) {
        let candidate = Candidate { score, doc };
        if self.heap.len() < self.k {
            self.heap.push(Reverse(candidate));
        } else if self.heap.peek().is_some_and(|worst| candidate > worst.0) {
            self.heap.pop();
            self.heap.push(Reverse(candidate));
        } else {
            return;
        }
        if self.heap.len() == self.k {
            self.worst = self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score);
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<(u32, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(c)| (c.doc, c.score))
            .collect()
    }
}

/// A scored document, ordered so that "greater" means "ranks higher".
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f32,
    doc: u32,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.doc.cmp(&self.doc))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// Per-thread score accumulator, reused across queries so a search allocates
/// nothing proportional to the number of skills. `scores` is all zeros
/// between queries; `touched` lists the entries a sparse query made non-zero.
#[derive(Default)]
struct Scratch {
    scores: Vec<f32>,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers, moved out of the thread-local
/// for the duration (no borrow to fail) and put back afterwards. During thread
/// teardown the thread-local is gone and a fresh buffer is used instead.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
    let result = f(&mut scratch);
    // Ignoring the error is right: it only means the thread is exiting.
    let _ = SCRATCH.try_with(|cell| cell.set(scratch));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties() {
        let top = |k| {
            let mut best = TopK::new(k);
            for (doc, score) in [(4, 1.0), (2, 3.0), (9, 1.0), (1, 2.0), (3, 1.0)] {
                best.offer(doc, score);
            }
            best.into_sorted()
        };
        assert_eq!(top(3), [(2, 3.0), (1, 2.0), (3, 1.0)]);
        assert_eq!(top(10).len(), 5);
        assert!(top(0).is_empty());
    }
}
