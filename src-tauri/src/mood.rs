//! What the tray says: its state (icon), tooltip and status line, worked
//! out from the engine's overview (`GET /api/overview`) and its events. Pure
//! logic, so it is tested without a display.

use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};
use metaclaw_engine::events::EngineEvent;
use serde::Deserialize;

use crate::icons::TrayState;

/// Every evolution ends with `evolution_finished` or `evolution_failed`;
/// should one never arrive (the learning task ended with it in flight),
/// "learning" lapses on its own after this long (an evolution is one model
/// call, well under it).
pub const LEARNING_AT_MOST: Duration = Duration::from_secs(10 * 60);

/// Longest status line: tray menus are narrow.
const STATUS_MAX_CHARS: usize = 100;

/// The parts of `GET /api/overview` the tray shows.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Overview {
    pub mode: String,
    /// The scheduler's state: `waiting`, `window_open`, `working`,
    /// `pausing`, `disabled`.
    pub state: String,
    pub state_reason: Option<String>,
    pub paused_until: Option<DateTime<Utc>>,
    pub skills: SkillCounts,
    pub last_event: Option<LastEvent>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SkillCounts {
    pub active: u64,
    pub pending: u64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct LastEvent {
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct Mood {
    overview: Option<Overview>,
    /// The scheduler state from the newest `schedule_changed` event, newer
    /// than the overview until that is fetched again.
    schedule_state: Option<String>,
    learning_since: Option<Instant>,
    /// An `action_needed` message the user has not looked at yet.
    action_needed: Option<String>,
    /// Why the engine did not start; the tray stays to say so.
    failure: Option<String>,
}

impl Mood {
    pub fn failed(reason: impl Into<String>) -> Mood {
        Mood {
            failure: Some(reason.into()),
            ..Mood::default()
        }
    }

    /// The engine stopped serving: the tray says so until the app restarts.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.failure = Some(reason.into());
    }

    pub fn set_overview(&mut self, overview: Overview) {
        self.schedule_state = None;
        self.overview = Some(overview);
    }

    /// Follows an engine event; true when the tray should be redrawn and
    /// the overview fetched again (per-request events change neither).
    pub fn observe(&mut self, event: &EngineEvent, now: Instant) -> bool {
        match event {
            EngineEvent::EvolutionStarted { .. } => self.learning_since = Some(now),
            EngineEvent::EvolutionFinished { .. } | EngineEvent::EvolutionFailed { .. } => {
                self.learning_since = None
            }
            EngineEvent::ScheduleChanged { state, .. } => self.schedule_state = Some(state.clone()),
            EngineEvent::ActionNeeded { message, .. } => self.action_needed = Some(message.clone()),
            EngineEvent::SessionStarted { .. }
            | EngineEvent::SessionEnded { .. }
            | EngineEvent::TurnRecorded { .. }
            | EngineEvent::TurnScored { .. } => return false,
            _ => {}
        }
        true
    }

    /// The user opened the page that explains the problem.
    pub fn acknowledge(&mut self) {
        self.action_needed = None;
    }

    pub fn state(&self, now: Instant, wall: DateTime<Utc>) -> TrayState {
        if self.failure.is_some() || self.action_needed.is_some() {
            return TrayState::Error;
        }
        if self
            .learning_since
            .is_some_and(|since| now.duration_since(since) < LEARNING_AT_MOST)
        {
            return TrayState::Learning;
        }
        if self.paused_until(wall).is_some() {
            return TrayState::Paused;
        }
        let schedule = self
            .schedule_state
            .as_deref()
            .or(self.overview.as_ref().map(|o| o.state.as_str()));
        match schedule {
            Some("window_open" | "working") => TrayState::Training,
            _ => TrayState::Idle,
        }
    }

    /// When the user's pause ends, while it lasts.
    pub fn paused_until(&self, wall: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.overview
            .as_ref()
            .and_then(|o| o.paused_until)
            .filter(|until| *until > wall)
    }

    /// The state with what it is about: the pause's end, the problem.
    fn state_in_words(&self, now: Instant, wall: DateTime<Utc>) -> String {
        let state = self.state(now, wall);
        match state {
            TrayState::Error => match (&self.failure, &self.action_needed) {
                (Some(failure), _) => format!("not running: {failure}"),
                (None, Some(message)) => format!("{}: {message}", state.words()),
                (None, None) => state.words().to_owned(),
            },
            TrayState::Paused => match self.paused_until(wall) {
                Some(until) => format!("paused until {}", local_time(until, wall)),
                None => state.words().to_owned(),
            },
            _ => state.words().to_owned(),
        }
    }

    pub fn tooltip(&self, now: Instant, wall: DateTime<Utc>) -> String {
        format!("MetaClaw: {}", self.state_in_words(now, wall))
    }

    /// `Skills only · idle · 12 skills (1 pending) · learned a new skill: x`
    ///
    /// `configured` is the saved mode: a mode changed in the settings takes
    /// a restart, and until then the line says so.
    pub fn status_line(&self, now: Instant, wall: DateTime<Utc>, configured: &str) -> String {
        let mut parts = Vec::new();
        if let Some(overview) = &self.overview {
            let running = mode_label(&overview.mode);
            parts.push(if configured.is_empty() || configured == overview.mode {
                running.to_owned()
            } else {
                format!("{running} ({} after a restart)", mode_label(configured))
            });
        }
        parts.push(self.state_in_words(now, wall));
        if let Some(overview) = &self.overview {
            let skills = &overview.skills;
            let noun = if skills.active == 1 {
                "skill"
            } else {
                "skills"
            };
            parts.push(match skills.pending {
                0 => format!("{} {noun}", skills.active),
                pending => format!("{} {noun} ({pending} pending)", skills.active),
            });
            if let Some(last) = &overview.last_event {
                parts.push(last.text.clone());
            }
        }
        truncate(&parts.join(" · "), STATUS_MAX_CHARS)
    }
}

pub fn mode_label(mode: &str) -> &str {
    match mode {
        "skills_only" => "Skills only",
        "rl" => "RL",
        "auto" => "Auto",
        other => other,
    }
}

/// `16:05` today, `Tue 09:00` on another day.
fn local_time(at: DateTime<Utc>, wall: DateTime<Utc>) -> String {
    let local = at.with_timezone(&Local);
    if local.date_naive() == wall.with_timezone(&Local).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%a %H:%M").to_string()
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overview(json: serde_json::Value) -> Overview {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn learning_lasts_from_the_start_of_an_evolution_to_its_outcome() {
        let (now, wall) = (Instant::now(), Utc::now());
        let mut mood = Mood::default();
        mood.set_overview(overview(
            serde_json::json!({"mode": "skills_only", "state": "waiting"}),
        ));
        assert_eq!(mood.state(now, wall), TrayState::Idle);
        let started = EngineEvent::EvolutionStarted {
            session_id: "s1".into(),
        };
        assert!(mood.observe(&started, now));
        assert_eq!(mood.state(now, wall), TrayState::Learning);
        assert_eq!(mood.tooltip(now, wall), "MetaClaw: learning a skill");
        // Its skills are announced first; it is over when it says so.
        mood.observe(
            &EngineEvent::SkillAdded {
                name: "x".into(),
                description: "d".into(),
                pending: false,
            },
            now,
        );
        assert_eq!(mood.state(now, wall), TrayState::Learning);
        mood.observe(
            &EngineEvent::EvolutionFinished {
                session_id: "s1".into(),
                added: 1,
                pending: 0,
                merged: 0,
                dropped: 0,
            },
            now,
        );
        assert_eq!(mood.state(now, wall), TrayState::Idle);
        // Should the end never come, it lapses.
        mood.observe(&started, now);
        assert_eq!(mood.state(now + LEARNING_AT_MOST, wall), TrayState::Idle);
    }

    #[test]
    fn a_pause_shows_until_it_ends_and_windows_show_as_training() {
        let (now, wall) = (Instant::now(), Utc::now());
        let mut mood = Mood::default();
        let until = wall + chrono::Duration::hours(1);
        mood.set_overview(overview(serde_json::json!({
            "mode": "auto", "state": "waiting", "paused_until": until.to_rfc3339(),
            "skills": {"active": 1, "pending": 0},
        })));
        assert_eq!(mood.state(now, wall), TrayState::Paused);
        assert!(mood
            .status_line(now, wall, "auto")
            .starts_with("Auto · paused until "));
        assert!(mood.status_line(now, wall, "").ends_with(" · 1 skill"));
        assert_eq!(
            mood.state(now, until + chrono::Duration::seconds(1)),
            TrayState::Idle
        );
        // A schedule event is newer than the overview.
        mood.observe(
            &EngineEvent::ScheduleChanged {
                state: "working".into(),
                reason: "the user is away".into(),
                window_id: Some("w".into()),
            },
            now,
        );
        assert_eq!(
            mood.state(now, until + chrono::Duration::seconds(1)),
            TrayState::Training
        );
    }

    #[test]
    fn problems_win_until_acknowledged_and_a_failed_start_stays() {
        let (now, wall) = (Instant::now(), Utc::now());
        let mut mood = Mood::default();
        mood.set_overview(overview(serde_json::json!({
            "mode": "skills_only", "state": "working",
            "skills": {"active": 12, "pending": 2},
            "last_event": {"type": "skill_added", "at": wall.to_rfc3339(), "text": "learned: x"},
        })));
        mood.observe(
            &EngineEvent::ActionNeeded {
                kind: "upstream_auth".into(),
                message: "the key was refused".into(),
            },
            now,
        );
        assert_eq!(mood.state(now, wall), TrayState::Error);
        assert_eq!(
            mood.status_line(now, wall, ""),
            "Skills only · needs your attention: the key was refused · 12 skills (2 pending) · learned: x"
        );
        mood.acknowledge();
        assert_eq!(mood.state(now, wall), TrayState::Training);
        assert!(mood
            .status_line(now, wall, "rl")
            .starts_with("Skills only (RL after a restart) · training · "));

        let failed = Mood::failed("cannot listen on 127.0.0.1:30000");
        assert_eq!(failed.state(now, wall), TrayState::Error);
        assert_eq!(
            failed.tooltip(now, wall),
            "MetaClaw: not running: cannot listen on 127.0.0.1:30000"
        );
    }

    #[test]
    fn per_request_events_do_not_redraw_and_long_lines_are_cut() {
        let mut mood = Mood::default();
        assert!(!mood.observe(
            &EngineEvent::TurnRecorded {
                session_id: "s".into(),
                request_id: "r".into(),
                status: "complete".into(),
            },
            Instant::now(),
        ));
        let long = "x".repeat(200);
        let cut = truncate(&long, STATUS_MAX_CHARS);
        assert_eq!(cut.chars().count(), STATUS_MAX_CHARS);
        assert!(cut.ends_with('…'));
    }
}
