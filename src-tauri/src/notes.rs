//! Desktop notifications for what the user would want to know without
//! looking: a new skill, a finished training run, a problem only they can
//! fix. Clicking one opens the dashboard page about it.

use metaclaw_engine::events::EngineEvent;

/// Each kind can be turned off in the config (`notifications.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    SkillLearned,
    TrainingFinished,
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub kind: NoteKind,
    pub summary: String,
    pub body: String,
    /// The dashboard route the click opens (`skills/<name>`).
    pub page: String,
}

/// The notification an event deserves, if any.
pub fn note_for(event: &EngineEvent) -> Option<Note> {
    Some(match event {
        EngineEvent::SkillAdded {
            name,
            description,
            pending,
        } => Note {
            kind: NoteKind::SkillLearned,
            summary: if *pending {
                format!("New skill waiting for your approval: {name}")
            } else {
                format!("New skill learned: {name}")
            },
            body: if *pending {
                format!("{description}\nIt is not used until you approve it.")
            } else {
                description.clone()
            },
            page: format!("skills/{name}"),
        },
        EngineEvent::TrainingFinished {
            steps,
            reward_first,
            reward_last,
            policy_version,
        } => Note {
            kind: NoteKind::TrainingFinished,
            summary: "Training run finished".to_owned(),
            body: format!(
                "{steps} step{}, {}; now answering with policy v{policy_version}.",
                if *steps == 1 { "" } else { "s" },
                reward_trend(*reward_first, *reward_last)
            ),
            page: "training".to_owned(),
        },
        EngineEvent::ActionNeeded { message, .. } => Note {
            kind: NoteKind::Error,
            summary: "MetaClaw needs your attention".to_owned(),
            body: message.clone(),
            page: "settings".to_owned(),
        },
        _ => return None,
    })
}

/// `mean reward +0.10 → +0.35 (rising)`.
fn reward_trend(first: Option<f64>, last: Option<f64>) -> String {
    // Differences below this are noise between two batch means.
    const STEADY: f64 = 0.01;
    match (first, last) {
        (Some(first), Some(last)) => {
            let trend = if last - first > STEADY {
                "rising"
            } else if first - last > STEADY {
                "falling"
            } else {
                "steady"
            };
            format!("mean reward {first:+.2} → {last:+.2} ({trend})")
        }
        (None, Some(last)) | (Some(last), None) => format!("mean reward {last:+.2}"),
        (None, None) => "no rewards recorded".to_owned(),
    }
}

/// Shows `note` and, on its own thread (the D-Bus wait blocks), waits for
/// the user to click it; `on_click` then gets the page to open.
pub fn show(note: Note, on_click: impl FnOnce(String) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("notification".into())
        .spawn(move || {
            let mut notification = notify_rust::Notification::new();
            notification
                .appname("MetaClaw")
                .summary(&note.summary)
                .body(&note.body)
                // "default" is the action a click on the bubble invokes.
                .action("default", "Open");
            match notification.show() {
                Ok(handle) => handle.wait_for_action(|action| {
                    if action == "default" {
                        on_click(note.page);
                    }
                }),
                Err(error) => {
                    tracing::warn!(%error, summary = %note.summary, "cannot show a notification")
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the notification thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills_say_whether_they_wait_for_approval() {
        let note = note_for(&EngineEvent::SkillAdded {
            name: "email-triage".into(),
            description: "Sort the inbox".into(),
            pending: true,
        })
        .unwrap();
        assert_eq!(note.kind, NoteKind::SkillLearned);
        assert_eq!(
            note.summary,
            "New skill waiting for your approval: email-triage"
        );
        assert_eq!(note.page, "skills/email-triage");
        let active = note_for(&EngineEvent::SkillAdded {
            name: "x".into(),
            description: "Sort the inbox".into(),
            pending: false,
        })
        .unwrap();
        assert_eq!(active.summary, "New skill learned: x");
        assert_eq!(active.body, "Sort the inbox");
    }

    #[test]
    fn training_runs_report_steps_and_the_reward_trend() {
        let note = note_for(&EngineEvent::TrainingFinished {
            steps: 3,
            reward_first: Some(0.1),
            reward_last: Some(0.35),
            policy_version: 4,
        })
        .unwrap();
        assert_eq!(note.page, "training");
        assert_eq!(
            note.body,
            "3 steps, mean reward +0.10 → +0.35 (rising); now answering with policy v4."
        );
        assert_eq!(
            reward_trend(Some(0.5), Some(0.2)),
            "mean reward +0.50 → +0.20 (falling)"
        );
        assert_eq!(
            reward_trend(Some(0.5), Some(0.504)),
            "mean reward +0.50 → +0.50 (steady)"
        );
        assert_eq!(reward_trend(None, None), "no rewards recorded");
    }

    #[test]
    fn problems_open_settings_and_routine_events_stay_quiet() {
        let note = note_for(&EngineEvent::ActionNeeded {
            kind: "calendar".into(),
            message: "the calendar work.ics cannot be read".into(),
        })
        .unwrap();
        assert_eq!(
            (note.kind, note.page.as_str()),
            (NoteKind::Error, "settings")
        );
        assert_eq!(
            note_for(&EngineEvent::SessionStarted {
                session_id: "s".into()
            }),
            None
        );
    }
}
