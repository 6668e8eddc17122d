//! The tray icons, one per state, drawn for this project (sources and the
//! script that renders them are in icons/). Embedded so the app never looks
//! for files at run time.

/// What the tray shows, most urgent first when several apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrayState {
    /// The user must act (a refused key, an unreadable calendar) or the
    /// engine did not start.
    Error,
    /// The evolver is writing a skill from a session.
    Learning,
    /// The user paused learning.
    Paused,
    /// A training window is open (the trainer or the curator runs).
    Training,
    /// Waiting: proxying and recording, nothing in the background.
    Idle,
}

impl TrayState {
    pub fn png(self) -> &'static [u8] {
        match self {
            TrayState::Idle => include_bytes!("../../icons/tray-idle.png"),
            TrayState::Learning => include_bytes!("../../icons/tray-learning.png"),
            TrayState::Training => include_bytes!("../../icons/tray-training.png"),
            TrayState::Paused => include_bytes!("../../icons/tray-paused.png"),
            TrayState::Error => include_bytes!("../../icons/tray-error.png"),
        }
    }

    /// The state in a few words, for the tooltip and the status line.
    pub fn words(self) -> &'static str {
        match self {
            TrayState::Idle => "idle",
            TrayState::Learning => "learning a skill",
            TrayState::Training => "training",
            TrayState::Paused => "paused",
            TrayState::Error => "needs your attention",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_its_own_png_icon() {
        let states = [
            TrayState::Idle,
            TrayState::Learning,
            TrayState::Training,
            TrayState::Paused,
            TrayState::Error,
        ];
        for (i, state) in states.iter().enumerate() {
            let png = state.png();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{state:?} is not a PNG");
            // Decodable by the same loader the tray uses.
            tauri::image::Image::from_bytes(png).unwrap();
            for other in &states[i + 1..] {
                assert_ne!(png, other.png(), "{state:?} and {other:?} look the same");
            }
        }
    }
}
