//! The scheduler's states and transitions: waiting → window open → working
//! → pausing → waiting. Pure: the driver feeds it assessments and worker
//! reports with their times and records the notes it returns.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::policy::{Assessment, Trigger};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Waiting,
    WindowOpen,
    Working,
    Pausing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::WindowOpen => "window_open",
            State::Working => "working",
            State::Pausing => "pausing",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Waiting => "waiting",
            State::WindowOpen => "window open",
            State::Working => "working",
            State::Pausing => "pausing",
        })
    }
}

/// An open window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub id: String,
    pub opened_at: DateTime<Utc>,
    pub triggers: Vec<Trigger>,
    /// Refreshed while the window is open.
    pub expected_end: Option<DateTime<Utc>>,
}

/// A worker's run inside a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Work {
    pub id: String,
    pub worker: String,
    pub started_at: DateTime<Utc>,
}

/// How a worker's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done; the window may serve the next worker.
    Finished,
    /// Stopped because it was told to pause.
    Paused,
    /// Stopped on its own before finishing (an error, say).
    Stopped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Finished => "finished",
            Outcome::Paused => "paused",
            Outcome::Stopped => "stopped",
        }
    }
}

/// What happened, for the store and the event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    State {
        at: DateTime<Utc>,
        state: State,
        reason: String,
        window_id: Option<String>,
    },
    WindowOpened(Window),
    WindowClosed {
        id: String,
        at: DateTime<Utc>,
        reason: String,
    },
    WorkStarted {
        work: Work,
        window_id: String,
    },
    WorkEnded {
        id: String,
        at: DateTime<Utc>,
        outcome: Outcome,
        summary: String,
    },
    /// Tell the running worker to stop at its next safe point.
    Pause,
}

/// The state machine. Ids come from `new_id` so tests can predict them.
#[derive(Debug)]
pub struct Machine {
    state: State,
    since: DateTime<Utc>,
    window: Option<Window>,
    work: Option<Work>,
    new_id: fn() -> String,
}

impl Machine {
    pub fn new(now: DateTime<Utc>, new_id: fn() -> String) -> Self {
        Machine {
            state: State::Waiting,
            since: now,
            window: None,
            work: None,
            new_id,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn since(&self) -> DateTime<Utc> {
        self.since
    }

    pub fn window(&self) -> Option<&Window> {
        self.window.as_ref()
    }

    pub fn work(&self) -> Option<&Work> {
        self.work.as_ref()
    }

    /// Applies a fresh verdict. `reason` describes it in words.
    pub fn assess(&mut self, now: DateTime<Utc>, a: &Assessment, reason: &str) -> Vec<Note> {
        let mut notes = Vec::new();
        match (self.state, a.is_open()) {
            (State::Waiting, true) => {
                let window = Window {
                    id: (self.new_id)(),
                    opened_at: now,
                    triggers: a.triggers.clone(),
                    expected_end: a.expected_end,
                };
                notes.push(Note::WindowOpened(window.clone()));
                self.window = Some(window);
                self.set(now, State::WindowOpen, reason, &mut notes);
            }
            (State::WindowOpen | State::Working, true) => {
                if let Some(w) = &mut self.window {
                    w.expected_end = a.expected_end;
                }
            }
            (State::WindowOpen, false) => {
                self.close_window(now, reason, &mut notes);
                self.set(now, State::Waiting, reason, &mut notes);
            }
            (State::Working, false) => {
                self.close_window(now, reason, &mut notes);
                notes.push(Note::Pause);
                self.set(now, State::Pausing, reason, &mut notes);
            }
            (State::Waiting | State::Pausing, false) | (State::Pausing, true) => {}
        }
        notes
    }

    /// A worker asks to start. Granted only in an open window with no
    /// other work running.
    pub fn start_work(&mut self, now: DateTime<Utc>, worker: &str) -> Option<(Work, Vec<Note>)> {
        if self.state != State::WindowOpen {
            return None;
        }
        let window_id = self.window.as_ref()?.id.clone();
        let work = Work {
            id: (self.new_id)(),
            worker: worker.to_owned(),
            started_at: now,
        };
        let mut notes = vec![Note::WorkStarted {
            work: work.clone(),
            window_id,
        }];
        self.work = Some(work.clone());
        self.set(
            now,
            State::Working,
            &format!("{worker} started"),
            &mut notes,
        );
        Some((work, notes))
    }

    /// The running work ended.
    pub fn end_work(
        &mut self,
        now: DateTime<Utc>,
        work_id: &str,
        outcome: Outcome,
        summary: &str,
    ) -> Vec<Note> {
        let mut notes = Vec::new();
        let Some(work) = self.work.take_if(|w| w.id == work_id) else {
            return notes;
        };
        notes.push(Note::WorkEnded {
            id: work.id,
            at: now,
            outcome,
            summary: summary.to_owned(),
        });
        let reason = format!("{} {}", work.worker, outcome.as_str());
        match self.state {
            State::Pausing => self.set(now, State::Waiting, &reason, &mut notes),
            State::Working => self.set(now, State::WindowOpen, &reason, &mut notes),
            State::Waiting | State::WindowOpen => {}
        }
        notes
    }

    /// The process is stopping: the window closes and running work is
    /// recorded as stopped, since it cannot report back any more.
    pub fn stop(&mut self, now: DateTime<Utc>, reason: &str) -> Vec<Note> {
        let mut notes = Vec::new();
        if self.state == State::Waiting {
            return notes;
        }
        self.close_window(now, reason, &mut notes);
        if let Some(work) = self.work.take() {
            notes.push(Note::Pause);
            notes.push(Note::WorkEnded {
                id: work.id,
                at: now,
                outcome: Outcome::Stopped,
                summary: reason.to_owned(),
            });
        }
        self.set(now, State::Waiting, reason, &mut notes);
        notes
    }

    fn close_window(&mut self, now: DateTime<Utc>, reason: &str, notes: &mut Vec<Note>) {
        if let Some(w) = self.window.take() {
            notes.push(Note::WindowClosed {
                id: w.id,
                at: now,
                reason: reason.to_owned(),
            });
        }
    }

    fn set(&mut self, now: DateTime<Utc>, state: State, reason: &str, notes: &mut Vec<Note>) {
        self.state = state;
        self.since = now;
        notes.push(Note::State {
            at: now,
            state,
            reason: reason.to_owned(),
            window_id: self.window.as_ref().map(|w| w.id.clone()),
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scheduler::policy::Blocker;
    use chrono::TimeZone;
    use std::sync::atomic::{AtomicU32, Ordering};

    static NEXT: AtomicU32 = AtomicU32::new(0);
    fn id() -> String {
        format!("id{}", NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn open() -> Assessment {
        Assessment {
            triggers: vec![Trigger::Idle],
            blocker: None,
            expected_end: None,
            sleep_ends: None,
            busy_until: None,
            next_change: None,
        }
    }

    fn closed() -> Assessment {
        Assessment {
            blocker: Some(Blocker::NoTrigger),
            triggers: vec![],
            ..open()
        }
    }

    fn states(notes: &[Note]) -> Vec<State> {
        notes
            .iter()
            .filter_map(|n| match n {
                Note::State { state, .. } => Some(*state),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn full_cycle_waiting_open_working_pausing_waiting() {
        let mut m = Machine::new(t(0), id);
        let notes = m.assess(t(1), &open(), "idle");
        assert!(matches!(notes[0], Note::WindowOpened(_)));
        assert_eq!(m.state(), State::WindowOpen);

        let (work, notes) = m.start_work(t(2), "trainer").unwrap();
        assert_eq!(states(&notes), [State::Working]);
        // A second worker is refused while one runs.
        assert!(m.start_work(t(3), "curator").is_none());

        let notes = m.assess(t(4), &closed(), "keyboard used");
        assert!(notes.contains(&Note::Pause));
        assert!(notes.iter().any(|n| matches!(n, Note::WindowClosed { .. })));
        assert_eq!(m.state(), State::Pausing);
        assert!(m.window().is_none());
        // Reopening conditions while still pausing change nothing.
        assert!(m.assess(t(5), &open(), "idle").is_empty());

        let notes = m.end_work(t(6), &work.id, Outcome::Paused, "1 step");
        assert_eq!(states(&notes), [State::Waiting]);
        assert_eq!(m.since(), t(6));
        // And the next verdict opens a fresh window.
        m.assess(t(7), &open(), "idle");
        assert_eq!(m.state(), State::WindowOpen);
    }

    #[test]
    fn finished_work_leaves_the_window_open_for_the_next_worker() {
        let mut m = Machine::new(t(0), id);
        m.assess(t(1), &open(), "idle");
        let (work, _) = m.start_work(t(2), "trainer").unwrap();
        let notes = m.end_work(t(3), &work.id, Outcome::Finished, "done");
        assert_eq!(states(&notes), [State::WindowOpen]);
        assert!(m.start_work(t(4), "curator").is_some());
    }

    #[test]
    fn window_without_work_closes_straight_to_waiting() {
        let mut m = Machine::new(t(0), id);
        m.assess(t(1), &open(), "idle");
        let notes = m.assess(t(2), &closed(), "back");
        assert_eq!(states(&notes), [State::Waiting]);
        assert!(!notes.contains(&Note::Pause));
    }

    #[test]
    fn stale_work_reports_are_ignored() {
        let mut m = Machine::new(t(0), id);
        m.assess(t(1), &open(), "idle");
        assert!(m.end_work(t(2), "nope", Outcome::Finished, "").is_empty());
        assert!(m.start_work(t(2), "x").is_some());
        assert!(m.start_work(t(2), "y").is_none());
    }
}
