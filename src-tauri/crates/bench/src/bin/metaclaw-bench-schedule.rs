//! `metaclaw-bench-schedule`: how fast the OMLS scheduler's inputs are
//! answered. Each section measures one thing and prints one Markdown table.
//!
//! Run with `bash .ci/bench schedule` (release build). Names given on the
//! command line pick sections (`metaclaw-bench-schedule calendar`); none
//! runs them all.

#[path = "../report.rs"]
mod report;
// The sections live beside the proxy benchmark's modules; this binary is
// their only user.
#[path = "../schedule/mod.rs"]
mod schedule;

use report::SectionFn;

/// Every section, in the order they print, with the name that picks it.
const SECTIONS: &[(&str, SectionFn)] = &[
    ("calendar", || Ok(vec![schedule::calendar::section()?])),
    ("reaction", || {
        Ok(vec![schedule::presence::reaction_section()?])
    }),
    ("waiting", || {
        Ok(vec![schedule::presence::waiting_cpu_section()?])
    }),
];

fn main() -> anyhow::Result<()> {
    report::run("metaclaw scheduler benchmark", SECTIONS)
}
