//! The tray menu's item ids, in one place: the menu is built from them, the
//! click handler dispatches on them, and the end-to-end test finds items by
//! their labels (dbusmenu does not carry these ids).

pub const STATUS: &str = "status";
pub const OPEN_DASHBOARD: &str = "open-dashboard";
pub const PAUSE: &str = "pause";
pub const PAUSE_HOUR: &str = "pause-hour";
pub const PAUSE_UNTIL_TOMORROW: &str = "pause-until-tomorrow";
pub const RESUME: &str = "resume";
pub const TRAIN_NOW: &str = "train-now";
pub const MODE: &str = "mode";
pub const MODE_SKILLS_ONLY: &str = "mode-skills_only";
pub const MODE_RL: &str = "mode-rl";
pub const MODE_AUTO: &str = "mode-auto";
pub const SETTINGS: &str = "settings";
pub const START_AT_LOGIN: &str = "start-at-login";
pub const QUIT: &str = "quit";

/// The mode items and the config value each one selects.
pub const MODES: [(&str, &str); 3] = [
    (MODE_SKILLS_ONLY, "skills_only"),
    (MODE_RL, "rl"),
    (MODE_AUTO, "auto"),
];
