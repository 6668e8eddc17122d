//! Calendars, sleep hours and time intervals: the pure foundation the OMLS
//! scheduler builds its training windows on.
//!
//! Everything here takes "now" and the time zone as parameters, so the
//! scheduler can drive it with a virtual clock. Reading calendar sources
//! (files, vdir folders, subscription URLs) is the only I/O, and it lives in
//! [`source`].

pub mod calendar;
pub mod duration;
pub mod ics;
pub mod interval;
pub mod scheduler;
pub mod set;
pub mod signals;
pub mod sleep;
pub mod source;
#[cfg(all(unix, not(target_os = "macos")))]
pub mod xvfb;
pub mod zone;

mod windows_zones;

pub use calendar::{Busy, Calendar};
pub use ics::EventProblem;
pub use interval::{Interval, IntervalError};
pub use set::{BusyCalendar, CalendarSet, Expanded};
pub use sleep::{SleepError, SleepHours, WallTime};
pub use source::{LoadContext, LoadedSource, SourceSpec, SourceStatus};
