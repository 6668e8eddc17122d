//! Benchmarks for the OMLS scheduler's building blocks. Each section is a
//! function that measures one thing and returns the rows of its table, so
//! the binary is a list of sections and new ones slot in beside the rest.

pub mod calendar;
pub mod presence;
pub mod synth;

pub use crate::report::{show, thousands, timed, Row, Section, Stats};
