//! Which turns the next step trains on: pure, so the rules are tested
//! without a store.
//!
//! The batch being collected (turns already taken, kept in the store across
//! pauses and restarts) comes first, in the order it was taken; turns that
//! are no longer training data (another skill generation, or used up by a
//! step) leave it. New turns fill it up in turn order.

use std::collections::HashSet;

/// What [`select_batch`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The next step's turns; full when it has `batch_size` turns.
    pub batch: Vec<i64>,
    /// Turns taken now (to record as pending).
    pub taken: Vec<i64>,
    /// Pending turns that are no longer training data (to drop).
    pub dropped: Vec<i64>,
}

/// Chooses up to `batch_size` turns from `available` (the training turns
/// that have policy tokens, ascending), never one in `consumed`, the
/// pending ones first.
///
/// ```
/// # use std::collections::HashSet;
/// # use metaclaw_engine::train::select_batch;
/// let consumed: HashSet<i64> = [1].into();
/// let s = select_batch(&[1, 2, 3, 4, 5], &consumed, &[4, 9], 3);
/// assert_eq!(s.batch, [4, 2, 3]);
/// assert_eq!((s.taken, s.dropped), (vec![2, 3], vec![9]));
/// ```
pub fn select_batch(
    available: &[i64],
    consumed: &HashSet<i64>,
    pending: &[i64],
    batch_size: usize,
) -> Selection {
    let usable: HashSet<i64> = available
        .iter()
        .copied()
        .filter(|id| !consumed.contains(id))
        .collect();
    let mut selection = Selection::default();
    let mut seen = HashSet::new();
    for &id in pending {
        if !usable.contains(&id) {
            selection.dropped.push(id);
        } else if seen.insert(id) && selection.batch.len() < batch_size {
            selection.batch.push(id);
        }
    }
    for &id in available {
        if selection.batch.len() >= batch_size {
            break;
        }
        if usable.contains(&id) && seen.insert(id) {
            selection.batch.push(id);
            selection.taken.push(id);
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_turn_order_and_skips_consumed_turns() {
        let consumed: HashSet<i64> = [2, 3].into();
        let s = select_batch(&[1, 2, 3, 4, 5, 6], &consumed, &[], 3);
        assert_eq!(s.batch, [1, 4, 5]);
        assert_eq!(s.taken, [1, 4, 5]);
        assert!(s.dropped.is_empty());
    }

    #[test]
    fn pending_turns_come_first_and_stale_ones_are_dropped() {
        // 7 belongs to an older generation now; 3 was used up meanwhile.
        let consumed: HashSet<i64> = [3].into();
        let s = select_batch(&[1, 3, 5, 8], &consumed, &[5, 7, 3], 4);
        assert_eq!(s.batch, [5, 1, 8]);
        assert_eq!(s.taken, [1, 8]);
        assert_eq!(s.dropped, [7, 3]);
    }

    #[test]
    fn a_short_supply_is_a_partial_batch_and_extra_pending_turns_wait() {
        let none = HashSet::new();
        let s = select_batch(&[1, 2], &none, &[], 4);
        assert_eq!(s.batch, [1, 2]);
        assert_eq!(s.taken, [1, 2]);
        // The batch size shrank below the pending batch: the rest waits.
        let s = select_batch(&[1, 2, 3], &none, &[3, 2, 1], 2);
        assert_eq!(s.batch, [3, 2]);
        assert!(s.taken.is_empty() && s.dropped.is_empty());
        let s = select_batch(&[], &none, &[], 2);
        assert_eq!(s, Selection::default());
    }
}
