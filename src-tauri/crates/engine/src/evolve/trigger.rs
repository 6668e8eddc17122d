//! When a session is worth an evolution: it ended, it has had N new main
//! turns, or too few of its recent scored turns succeeded. Pure, so every
//! rule is tested without a server.

use super::prompt::TurnView;

/// Fewest scored turns before a success rate means anything.
pub const MIN_SCORED: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    SessionEnd,
    EveryNTurns,
    LowSuccess,
}

impl Trigger {
    /// As stored in `evolutions.trigger`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::SessionEnd => "session_end",
            Trigger::EveryNTurns => "every_n_turns",
            Trigger::LowSuccess => "low_success",
        }
    }
}

/// Whether `unconsumed` (a session's main turns no evolution has read,
/// oldest first) should be evolved now. `ended`: the session is over.
pub fn check(
    unconsumed: &[TurnView],
    ended: bool,
    every_n: u32,
    threshold: f64,
) -> Option<Trigger> {
    if unconsumed.is_empty() {
        return None;
    }
    if ended {
        return Some(Trigger::SessionEnd);
    }
    if unconsumed.len() >= every_n as usize {
        return Some(Trigger::EveryNTurns);
    }
    // Fewer than N turns are unconsumed here, so these are the recent ones.
    let recent: Vec<i8> = unconsumed.iter().filter_map(|t| t.score).collect();
    if recent.len() < MIN_SCORED {
        return None;
    }
    let succeeded = recent.iter().filter(|s| **s > 0).count();
    let rate = succeeded as f64 / recent.len() as f64;
    (rate < threshold).then_some(Trigger::LowSuccess)
}

/// Whether the judge is done with every turn, so an evolution at session
/// end sees their scores and reasons (`judging`: the PRM is on).
pub fn settled(unconsumed: &[TurnView], judging: bool) -> bool {
    !judging || unconsumed.iter().all(|t| t.judged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(scores: &[Option<i8>]) -> Vec<TurnView> {
        scores
            .iter()
            .enumerate()
            .map(|(i, score)| TurnView {
                id: i as i64,
                score: *score,
                judged: score.is_some(),
                judge_reason: None,
                instruction: None,
                response: String::new(),
                next_message: None,
            })
            .collect()
    }

    #[test]
    fn nothing_new_never_triggers() {
        assert_eq!(check(&[], true, 10, 0.4), None);
    }

    #[test]
    fn session_end_and_every_n_turns() {
        assert_eq!(
            check(&turns(&[None]), true, 10, 0.4),
            Some(Trigger::SessionEnd)
        );
        assert_eq!(check(&turns(&[None; 9]), false, 10, 0.4), None);
        assert_eq!(
            check(&turns(&[None; 10]), false, 10, 0.4),
            Some(Trigger::EveryNTurns)
        );
    }

    #[test]
    fn low_success_needs_enough_scored_turns() {
        assert_eq!(check(&turns(&[Some(-1)]), false, 10, 0.4), None);
        assert_eq!(
            check(&turns(&[Some(-1), None, Some(0)]), false, 10, 0.4),
            Some(Trigger::LowSuccess)
        );
        // One in two succeeded: 0.5 is not below 0.4.
        assert_eq!(check(&turns(&[Some(1), Some(-1)]), false, 10, 0.4), None);
        let scores = [Some(1), Some(1), Some(1), Some(-1), Some(-1)];
        assert_eq!(check(&turns(&scores), false, 6, 0.5), None);
        assert_eq!(
            check(&turns(&scores), false, 6, 0.7),
            Some(Trigger::LowSuccess)
        );
        // A threshold of 0 turns the rule off.
        assert_eq!(check(&turns(&[Some(-1), Some(-1)]), false, 10, 0.0), None);
    }

    #[test]
    fn settled_waits_for_the_judge_only_when_it_runs() {
        let pending = turns(&[Some(-1), None]);
        assert!(!settled(&pending, true));
        assert!(settled(&pending, false));
        assert!(settled(&turns(&[Some(1)]), true));
    }
}
