//! What the benchmark binaries share: a section is one Markdown table of
//! measurements; `run` prints the sections named on the command line (all
//! when none is), and the statistics and formatting helpers.

// Each benchmark binary includes this file and uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A titled group of measurements, printed as one Markdown table.
pub struct Section {
    pub title: String,
    pub rows: Vec<Row>,
}

/// One line of a section's table.
pub struct Row {
    pub measure: String,
    pub value: String,
    pub note: String,
}

impl Row {
    pub fn new(
        measure: impl Into<String>,
        value: impl Into<String>,
        note: impl Into<String>,
    ) -> Row {
        Row {
            measure: measure.into(),
            value: value.into(),
            note: note.into(),
        }
    }
}

impl Section {
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    pub fn row(
        &mut self,
        measure: impl Into<String>,
        value: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.rows.push(Row::new(measure, value, note));
    }

    /// The section as Markdown: a heading and a `measure | value | note` table.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### {}\n\n| measure | value | note |\n|---|---|---|\n",
            self.title
        );
        for row in &self.rows {
            out.push_str(&format!(
                "| {} | **{}** | {} |\n",
                row.measure, row.value, row.note
            ));
        }
        out
    }
}

/// Sample statistics over durations.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median: Duration,
    pub p99: Duration,
    pub total: Duration,
    pub count: usize,
}

impl Stats {
    pub fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let total = samples.iter().sum();
        let at = |q: f64| {
            let last = samples.len().saturating_sub(1);
            let index = ((last as f64) * q).round() as usize;
            samples.get(index.min(last)).copied().unwrap_or_default()
        };
        Stats {
            median: at(0.50),
            p99: at(0.99),
            total,
            count: samples.len(),
        }
    }
}

/// Runs `f` `times` times and returns each run's duration and the last result.
pub fn timed<T>(times: usize, mut f: impl FnMut() -> T) -> (Vec<Duration>, Option<T>) {
    let mut samples = Vec::with_capacity(times);
    let mut last = None;
    for _ in 0..times {
        let start = Instant::now();
        let value = std::hint::black_box(f());
        samples.push(start.elapsed());
        last = Some(value);
    }
    (samples, last)
}

/// A duration in the unit that reads best: µs below a millisecond, ms below
/// ten seconds, s above.
pub fn show(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.1} µs")
    } else if micros < 10_000_000.0 {
        format!("{:.2} ms", micros / 1_000.0)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .filter_map(|group| std::str::from_utf8(group).ok())
        .collect();
    groups.join(",")
}

/// A section: measures one thing and returns its tables.
pub type SectionFn = fn() -> anyhow::Result<Vec<Section>>;

/// Prints `heading`, then the sections named on the command line, or all.
pub fn run(heading: &str, sections: &[(&str, SectionFn)]) -> anyhow::Result<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    for name in &wanted {
        anyhow::ensure!(
            sections.iter().any(|(known, _)| known == name),
            "unknown section {name:?}; sections: {}",
            sections
                .iter()
                .map(|(known, _)| *known)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "{heading}: {} cores\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (name, section) in sections {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            for table in section()? {
                println!("{}", table.markdown());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_formatting() {
        let ms = Duration::from_millis;
        let stats = Stats::of((1..=100).map(ms).collect());
        assert_eq!(stats.median, ms(51));
        assert_eq!(stats.p99, ms(99));
        assert_eq!(stats.total, ms(5050));
        assert_eq!(show(Duration::from_micros(250)), "250.0 µs");
        assert_eq!(show(ms(12)), "12.00 ms");
        assert_eq!(thousands(5_000), "5,000");
        assert_eq!(thousands(123), "123");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
