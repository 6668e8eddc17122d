//! The Opportunistic Meta-Learning Scheduler: decides when heavy background
//! work may run (the user is asleep, away, in a meeting, or has locked the
//! screen, and their agent is quiet), hands those windows to workers and
//! tells them to pause the moment the user is back.
//!
//! [`policy`] is the verdict at one instant, [`machine`] the states and
//! transitions, [`idle_history`] the idle-stretch estimates, and [`driver`]
//! the task that runs them against real signals and time.

pub mod driver;
pub mod idle_history;
pub mod machine;
pub mod policy;

pub use driver::{
    spawn, Clock, Journal, Lease, Reading, ScheduleError, SchedulerHandle, Setup, SharedCalendar,
    Signals, SourceReport, Status, SystemClock, TokioClock, Worker, WATCH_PERIOD,
};
pub use idle_history::Stretch;
pub use machine::{Note, Outcome, State, Window, Work};
pub use policy::{Assessment, Blocker, Settings, Trigger, AWAY_CONFIRM};
