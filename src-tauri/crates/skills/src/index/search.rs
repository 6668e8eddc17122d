//! Answering a query: term-at-a-time scoring with MaxScore pruning, exact top-k.
//!
//! Terms are scored in order of the most they can add to any document
//! (`max_impact`). Once the k-th best score so far exceeds everything the
//! remaining terms could still add together, no unseen document can reach the
//! top k; the remaining terms are then looked up only for the few documents
//! that still can, instead of walking their whole posting lists. Common words
//! have long lists and low impacts, so they are exactly the ones skipped. The
//! k-th best score is estimated from a sample, which keeps checking cheap and
//! the result exact (a sample's k-th best is never above the true one).

use std::cell::Cell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::{Posting, SkillIndex};

/// Documents looked at to estimate the k-th best score during a query.
const SAMPLE_SIZE: usize = 512;

/// Pruning pays off for small k only; larger k walk every posting.
const MAX_PRUNED_K: usize = 256;

/// Floating-point sums depend on their order; this margin keeps the pruning
/// decisions on the safe side of rounding.
const SLACK: f32 = 1.0 + 1e-4;

impl SkillIndex {
    /// The `k` best documents for `query` as `(document, score)`, best first;
    /// ties go to the lower document number.
    pub(crate) fn search(&self, query: &str, k: usize) -> Vec<(u32, f32)> {
        if k == 0 || self.docs == 0 {
            return Vec::new();
        }
        let mut terms = self.query_terms(query);
        if terms.is_empty() {
            return Vec::new();
        }
        let bound = |t: u32| self.max_impact.get(t as usize).copied().unwrap_or(0.0);
        terms.sort_by(|&a, &b| bound(b).total_cmp(&bound(a)).then(a.cmp(&b)));
        // remaining[i]: the most terms i.. can add to one document together.
        let mut remaining = vec![0f32; terms.len() + 1];
        for i in (0..terms.len()).rev() {
            remaining[i] = remaining[i + 1] + bound(terms[i]);
        }
        with_scratch(|scratch| self.evaluate(&terms, &remaining, k, scratch))
    }

    fn evaluate(&self, terms: &[u32], remaining: &[f32], k: usize, s: &mut Scratch) -> Vec<(u32, f32)> {
        let n = self.docs;
        if s.scores.len() < n {
            s.scores.resize(n, 0.0);
        }
        // rest[i]: postings of terms i.., the work left if nothing is pruned.
        let mut rest = vec![0usize; terms.len() + 1];
        for i in (0..terms.len()).rev() {
            rest[i] = rest[i + 1] + self.postings(terms[i]).len();
        }
        // Dense: walk all scores at the end instead of tracking which were
        // touched; cheaper when the postings cover a good part of the corpus.
        let dense = rest[0] >= n / 4;

        let mut split = None;
        for (i, &term) in terms.iter().enumerate() {
            // Worth checking only once the terms done could outweigh the
            // rest, and while enough work is left to save.
            let bound = remaining[i] * SLACK;
            let done = remaining[0] - remaining[i];
            if i > 0 && k <= MAX_PRUNED_K && bound < done && rest[i] > n / 2 {
                let sample = Sample::of(s, dense, n);
                if let Some(theta) = sample.kth_best(k).filter(|&theta| theta > bound) {
                    // Looking up the remaining terms for each candidate beats
                    // walking their postings only when candidates are few.
                    let candidates = sample.estimate_at_least(theta - bound);
                    if candidates * (terms.len() - i) * LOOKUP_COST < rest[i] {
                        split = Some((i, theta));
                        break;
                    }
                }
            }
            accumulate(self.postings(term), s, dense);
        }

        let Some((split, theta)) = split else {
            let best = top_k_scored(k, s, dense, n);
            reset(s, dense, n);
            return best;
        };
        // Documents that can still reach the top k with every remaining term.
        let floor = theta - remaining[split] * SLACK;
        let mut candidates: Vec<(u32, f32)> = Vec::new();
        for_each_scored(s, dense, n, |doc, score| {
            if score >= floor {
                candidates.push((doc, score));
            }
        });
        reset(s, dense, n);
        candidates.sort_unstable_by_key(|&(doc, _)| doc);
        for (j, &term) in terms.iter().enumerate().skip(split) {
            let list = self.postings(term);
            let mut cursor = 0;
            for (doc, score) in &mut candidates {
                cursor = gallop(list, cursor, *doc);
                match list.get(cursor) {
                    Some(posting) if posting.doc == *doc => *score += posting.impact,
                    Some(_) => {}
                    None => break,
                }
            }
            let floor = theta - remaining[j + 1] * SLACK;
            candidates.retain(|&(_, score)| score >= floor);
        }
        let mut best = TopK::new(k);
        for (doc, score) in candidates {
            best.offer(doc, score);
        }
        best.into_sorted()
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

/// Rough cost of looking one document up in a posting list, in posting steps.
const LOOKUP_COST: usize = 8;

/// Calls `f` for every scored document, in the current mode.
fn for_each_scored(s: &Scratch, dense: bool, n: usize, mut f: impl FnMut(u32, f32)) {
    if dense {
        for (doc, &score) in s.scores[..n].iter().enumerate() {
            if score > 0.0 {
                f(doc as u32, score);
            }
        }
    } else {
        for &doc in &s.touched {
            f(doc, s.scores[doc as usize]);
        }
    }
}

fn top_k_scored(k: usize, s: &Scratch, dense: bool, n: usize) -> Vec<(u32, f32)> {
    let mut best = TopK::new(k);
    for_each_scored(s, dense, n, |doc, score| best.offer(doc, score));
    best.into_sorted()
}

/// Leaves the scratch buffers zeroed for the next query.
fn reset(s: &mut Scratch, dense: bool, n: usize) {
    if dense {
        s.scores[..n].fill(0.0);
    } else {
        for &doc in &s.touched {
            s.scores[doc as usize] = 0.0;
        }
    }
    s.touched.clear();
}

/// Every so-many scored document, for cheap estimates mid-query.
///
/// The k-th best score within any set of documents is at most the k-th best
/// overall, so a sample gives a safe lower bound for pruning.
struct Sample {
    scores: Vec<f32>,
    stride: usize,
}

impl Sample {
    fn of(s: &Scratch, dense: bool, n: usize) -> Sample {
        let (stride, scores) = if dense {
            let stride = (n / SAMPLE_SIZE).max(1);
            let scores = s.scores[..n].iter().step_by(stride).copied().filter(|&x| x > 0.0);
            (stride, scores.collect())
        } else {
            let stride = (s.touched.len() / SAMPLE_SIZE).max(1);
            let docs = s.touched.iter().step_by(stride);
            (stride, docs.map(|&doc| s.scores[doc as usize]).collect())
        };
        Sample { scores, stride }
    }

    /// The k-th best sampled score, or `None` with fewer than k sampled.
    fn kth_best(&self, k: usize) -> Option<f32> {
        let mut best = TopK::new(k);
        for (i, &score) in self.scores.iter().enumerate() {
            best.offer(i as u32, score);
        }
        let best = best.into_sorted();
        if best.len() < k {
            return None;
        }
        best.last().map(|&(_, score)| score)
    }

    /// Roughly how many scored documents have at least `floor`.
    fn estimate_at_least(&self, floor: f32) -> usize {
        self.scores.iter().filter(|&&x| x >= floor).count() * self.stride
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

/// The first position at or after `from` whose document is `>= doc`
/// (exponential then binary search: candidates are few and ascending).
fn gallop(list: &[Posting], from: usize, doc: u32) -> usize {
    let (mut low, mut high, mut step) = (from, from, 1);
    while high < list.len() && list[high].doc < doc {
        low = high + 1;
        high += step;
        step *= 2;
    }
    let high = high.min(list.len());
    low + list[low..high].partition_point(|p| p.doc < doc)
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
    fn gallop_finds_the_first_not_smaller() {
        let list: Vec<Posting> = [1, 3, 5, 7, 9, 11, 13]
            .iter()
            .map(|&doc| Posting { doc, impact: 1.0 })
            .collect();
        assert_eq!(gallop(&list, 0, 0), 0);
        assert_eq!(gallop(&list, 0, 1), 0);
        assert_eq!(gallop(&list, 0, 4), 2);
        assert_eq!(gallop(&list, 2, 5), 2);
        assert_eq!(gallop(&list, 2, 12), 6);
        assert_eq!(gallop(&list, 0, 13), 6);
        assert_eq!(gallop(&list, 3, 14), 7);
        assert_eq!(gallop(&list, 7, 1), 7);
        assert_eq!(gallop(&[], 0, 1), 0);
    }

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
