//! `metaclaw calendar add | remove`: edits `scheduler.calendars` through
//! the config store, after checking the source.

use std::path::{Component, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use metaclaw_engine::config::ConfigStore;
use metaclaw_schedule::{SourceSpec, SourceStatus};

use super::{count, event_label, load, now, unnamed, CALENDARS_KEY};
use crate::output::outln;

pub async fn add(mut store: ConfigStore, source: &str) -> anyhow::Result<ExitCode> {
    let (entry, spec) = config_entry(source)?;
    let mut calendars = store.config().scheduler.calendars.clone();
    if let Some(existing) = calendars.iter().find(|c| same_source(c, &spec)) {
        bail!(
            "{spec} is already configured (as {})",
            SourceSpec::parse(existing)
        );
    }
    // Read it once now: a file that is missing or not a calendar is refused;
    // a feed that cannot be fetched may just be offline, so it is kept.
    let set = load(
        &store,
        std::slice::from_ref(&spec),
        store.config().scheduler.zone(),
        now(),
    )
    .await;
    let loaded = set
        .sources()
        .first()
        .ok_or_else(|| anyhow!("{spec}: nothing was loaded"))?;
    let name = spec.to_string();
    let state = match (&spec, &loaded.status) {
        (SourceSpec::Path(_), SourceStatus::Broken { reason }) => {
            bail!("not added: {name}: {}", unnamed(&name, reason))
        }
        (SourceSpec::Url(_), SourceStatus::Broken { reason }) => {
            eprintln!(
                "warning: {name}: {}; added anyway, since it may only be unreachable for now \
                 (`metaclaw calendar list` shows how it stands)",
                unnamed(&name, reason)
            );
            "not fetched yet".to_owned()
        }
        (_, SourceStatus::Ok { events, .. } | SourceStatus::Stale { events, .. }) => {
            count(*events, "event")
        }
    };
    for problem in loaded.problems() {
        eprintln!(
            "{name}: skipped{}: {}",
            event_label(problem),
            problem.reason
        );
    }
    calendars.push(entry);
    store.set(CALENDARS_KEY, &toml_list(&calendars))?;
    outln!("added {name} ({state}); {}", configured(calendars.len()));
    Ok(ExitCode::SUCCESS)
}

pub fn remove(mut store: ConfigStore, source: &str) -> anyhow::Result<ExitCode> {
    let calendars = store.config().scheduler.calendars.clone();
    let wanted = absolute(SourceSpec::parse(source));
    let is_wanted = |entry: &String| {
        entry.trim() == source.trim()
            || same_source(entry, &wanted)
            || SourceSpec::parse(entry).to_string() == source.trim()
    };
    let (removed, kept): (Vec<String>, Vec<String>) =
        calendars.iter().cloned().partition(|c| is_wanted(c));
    if removed.is_empty() {
        // Shown as `list` shows sources: a URL's secret part hidden.
        let source = SourceSpec::parse(source);
        if calendars.is_empty() {
            bail!("{source} is not configured: no calendars are");
        }
        let shown: Vec<String> = calendars
            .iter()
            .map(|c| SourceSpec::parse(c).to_string())
            .collect();
        bail!(
            "{source} is not among the configured calendars: {}",
            shown.join(", ")
        );
    }
    store.set(CALENDARS_KEY, &toml_list(&kept))?;
    for entry in &removed {
        outln!("removed {}", SourceSpec::parse(entry));
    }
    outln!("{}", configured(kept.len()));
    Ok(ExitCode::SUCCESS)
}

fn configured(n: usize) -> String {
    format!("{} configured", count(n, "calendar"))
}

/// The config entry for SOURCE: a URL as written (secret and all, the
/// scheduler needs it), a path made absolute so the proxy finds it from any
/// working directory.
fn config_entry(source: &str) -> anyhow::Result<(String, SourceSpec)> {
    let text = source.trim();
    if text.is_empty() {
        bail!("give an .ics file, a folder of .ics files or an http(s)/webcal URL");
    }
    match absolute(SourceSpec::parse(text)) {
        SourceSpec::Url(url) => {
            let spec = SourceSpec::Url(url.clone());
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| anyhow!("not added: {spec} is not a valid URL: {e}"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                bail!("not added: {spec} is not a valid URL: it names no host");
            }
            Ok((text.to_owned(), spec))
        }
        SourceSpec::Path(path) => {
            let entry = path
                .to_str()
                .ok_or_else(|| {
                    anyhow!(
                        "not added: {} is not valid UTF-8, which the config file cannot hold",
                        path.display()
                    )
                })?
                .to_owned();
            Ok((entry, SourceSpec::Path(path)))
        }
    }
}

/// Relative paths resolved against the working directory and `.`/`..`
/// folded away; URLs unchanged.
fn absolute(spec: SourceSpec) -> SourceSpec {
    match spec {
        SourceSpec::Path(path) => {
            let path = std::path::absolute(&path).unwrap_or(path);
            let mut clean = PathBuf::new();
            for part in path.components() {
                match part {
                    Component::CurDir => {}
                    Component::ParentDir => {
                        clean.pop();
                    }
                    other => clean.push(other),
                }
            }
            SourceSpec::Path(clean)
        }
        url => url,
    }
}

/// Whether a config entry names the same calendar as `spec`: `webcal://`
/// and `https://` alike, relative and absolute paths alike, and two paths
/// that lead to the same file.
fn same_source(entry: &str, spec: &SourceSpec) -> bool {
    let entry = absolute(SourceSpec::parse(entry));
    if entry == *spec {
        return true;
    }
    match (&entry, spec) {
        (SourceSpec::Path(a), SourceSpec::Path(b)) => {
            match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        _ => false,
    }
}

/// A TOML array of basic strings, for `ConfigStore::set`.
fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", quoted.join(", "))
}

fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use metaclaw_engine::paths::AppPaths;

    #[test]
    fn awkward_entries_survive_the_config_file() {
        let home = tempfile::tempdir().unwrap();
        let paths = AppPaths::under(home.path());
        let mut store = ConfigStore::open(&paths).unwrap();
        let entries = vec![
            r#"C:\Users\me\cal\"odd" name.ics"#.to_owned(),
            "/tmp/tab\there/ünïcode ✓.ics".to_owned(),
            "/tmp/line\nbreak/[brackets], 'quotes'.ics".to_owned(),
            "webcal://example.com/cal.ics?a=1&b=\u{7f}".to_owned(),
        ];
        store.set(CALENDARS_KEY, &toml_list(&entries)).unwrap();
        let reopened = ConfigStore::open(&paths).unwrap();
        assert_eq!(reopened.config().scheduler.calendars, entries);
        store.set(CALENDARS_KEY, &toml_list(&[])).unwrap();
        let reopened = ConfigStore::open(&paths).unwrap();
        assert!(reopened.config().scheduler.calendars.is_empty());
    }

    #[test]
    fn the_same_calendar_written_two_ways_is_one() {
        let here = std::env::current_dir().unwrap();
        let spec = absolute(SourceSpec::parse("cal/work.ics"));
        assert!(same_source(
            &here.join("cal/work.ics").display().to_string(),
            &spec
        ));
        let feed = SourceSpec::parse("https://example.com/cal.ics");
        assert!(same_source("webcal://example.com/cal.ics", &feed));
        assert!(!same_source("https://example.com/other.ics", &feed));
    }

    #[test]
    fn entries_are_absolute_paths_or_valid_urls() {
        let (entry, _) = config_entry("cal/work.ics").unwrap();
        assert!(std::path::Path::new(&entry).is_absolute(), "{entry}");
        let (entry, spec) = config_entry(" webcal://example.com/c.ics ").unwrap();
        assert_eq!(entry, "webcal://example.com/c.ics");
        assert_eq!(spec, SourceSpec::Url("https://example.com/c.ics".into()));
        let err = config_entry("https://").unwrap_err().to_string();
        assert!(err.contains("not a valid URL"), "{err}");
        assert!(config_entry("  ").is_err());
    }
}
