//! `metaclaw-bench-schedule`: how fast the OMLS scheduler's inputs are
//! answered. Each section measures one thing and prints one Markdown table.
//!
//! Run with `bash .ci/bench schedule` (release build). Names given on the
//! command line pick sections (`metaclaw-bench-schedule calendar`); none
//! runs them all.

// The sections live beside the proxy benchmark's modules; this binary is
// their only user.
#[path = "../schedule/mod.rs"]
mod schedule;

use schedule::Section;

/// A section: measures one thing and returns its table.
type SectionFn = fn() -> anyhow::Result<Section>;

/// Every section, in the order they print, with the name that picks it.
const SECTIONS: &[(&str, SectionFn)] = &[
    ("calendar", schedule::calendar::section),
    ("reaction", schedule::presence::reaction_section),
    ("waiting", schedule::presence::waiting_cpu_section),
];

fn main() -> anyhow::Result<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    for name in &wanted {
        anyhow::ensure!(
            SECTIONS.iter().any(|(known, _)| known == name),
            "unknown section {name:?}; sections: {}",
            SECTIONS
                .iter()
                .map(|(known, _)| *known)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "metaclaw scheduler benchmark: {} cores\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (name, section) in SECTIONS {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            println!("{}", section()?.markdown());
        }
    }
    Ok(())
}
