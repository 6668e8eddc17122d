//! The tray icon and its menu. The menu's items are kept so their text,
//! checks and enabled states follow the engine; items that cannot apply
//! are disabled, never hidden, so the menu keeps its shape.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Wry};

use crate::icons::TrayState;
use crate::menu_ids as id;

pub const TRAY_ID: &str = "metaclaw";

/// What the menu shows; computed by the shell from the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct MenuView {
    pub status: String,
    /// The engine runs (everything but Open/Settings/Start at login/Quit
    /// needs it).
    pub running: bool,
    pub paused: bool,
    /// The configured mode (`skills_only`, `rl`, `auto`).
    pub mode: String,
    /// The scheduler has a worker to give a window to (the trainer in
    /// rl/auto, the curator): "Train now" applies.
    pub can_train_now: bool,
    /// rl.base_url, rl.model and rl.tokenizer are set: rl can be chosen
    /// (auto can always: it trains once they are set).
    pub rl_ready: bool,
    pub start_at_login: Option<bool>,
}

pub struct TrayMenu {
    pub tray: TrayIcon,
    status: MenuItem<Wry>,
    pause: Submenu<Wry>,
    pause_hour: MenuItem<Wry>,
    pause_tomorrow: MenuItem<Wry>,
    resume: MenuItem<Wry>,
    train_now: MenuItem<Wry>,
    mode: Submenu<Wry>,
    modes: Vec<(CheckMenuItem<Wry>, &'static str)>,
    start_at_login: CheckMenuItem<Wry>,
}

impl TrayMenu {
    /// Builds the tray in `state`, its menu showing `view`.
    pub fn build(
        app: &AppHandle,
        state: TrayState,
        tooltip: &str,
        view: &MenuView,
    ) -> tauri::Result<TrayMenu> {
        let none = None::<&str>;
        let status = MenuItem::with_id(app, id::STATUS, &view.status, false, none)?;
        let open = MenuItem::with_id(app, id::OPEN_DASHBOARD, "Open dashboard", true, none)?;
        let pause_hour = MenuItem::with_id(app, id::PAUSE_HOUR, "For 1 hour", true, none)?;
        let pause_tomorrow =
            MenuItem::with_id(app, id::PAUSE_UNTIL_TOMORROW, "Until tomorrow", true, none)?;
        let resume = MenuItem::with_id(app, id::RESUME, "Resume", true, none)?;
        let pause = Submenu::with_id_and_items(
            app,
            id::PAUSE,
            "Pause learning",
            true,
            &[&pause_hour, &pause_tomorrow, &resume],
        )?;
        let train_now = MenuItem::with_id(app, id::TRAIN_NOW, "Train now", true, none)?;
        let mut modes = Vec::new();
        for (item_id, mode) in id::MODES {
            let label = crate::mood::mode_label(mode);
            let item = CheckMenuItem::with_id(app, item_id, label, true, false, none)?;
            modes.push((item, mode));
        }
        let mode_items: Vec<&dyn tauri::menu::IsMenuItem<Wry>> = modes
            .iter()
            .map(|(item, _)| item as &dyn tauri::menu::IsMenuItem<Wry>)
            .collect();
        let mode = Submenu::with_id_and_items(app, id::MODE, "Mode", true, &mode_items)?;
        let settings = MenuItem::with_id(app, id::SETTINGS, "Settings…", true, none)?;
        let start_at_login =
            CheckMenuItem::with_id(app, id::START_AT_LOGIN, "Start at login", true, false, none)?;
        let quit = MenuItem::with_id(app, id::QUIT, "Quit", true, none)?;
        let menu = Menu::with_items(
            app,
            &[
                &status,
                &PredefinedMenuItem::separator(app)?,
                &open,
                &pause,
                &train_now,
                &mode,
                &settings,
                &start_at_login,
                &PredefinedMenuItem::separator(app)?,
                &quit,
            ],
        )?;
        let builder = TrayIconBuilder::with_id(TRAY_ID)
            .icon(Image::from_bytes(state.png())?)
            .tooltip(tooltip)
            .menu(&menu)
            .on_menu_event(|app, event| crate::shell::menu_clicked(app, event.id().as_ref()));
        // On Linux the tray item's title is its name in the panel's
        // accessibility tree and the tooltip's heading; elsewhere it would
        // be drawn next to the icon.
        #[cfg(target_os = "linux")]
        let builder = builder.title("MetaClaw").on_tray_icon_event(|tray, event| {
            // A primary click (where the panel sends one) opens the
            // dashboard; the menu is on the secondary button.
            if let tauri::tray::TrayIconEvent::Click {
                button: tauri::tray::MouseButton::Left,
                ..
            } = event
            {
                crate::shell::open_dashboard(tray.app_handle(), None);
            }
        });
        let tray = builder.build(app)?;
        let tray_menu = TrayMenu {
            tray,
            status,
            pause,
            pause_hour,
            pause_tomorrow,
            resume,
            train_now,
            mode,
            modes,
            start_at_login,
        };
        tray_menu.show(view)?;
        Ok(tray_menu)
    }

    pub fn set_state(&self, state: TrayState, tooltip: &str) -> tauri::Result<()> {
        self.tray.set_icon(Some(Image::from_bytes(state.png())?))?;
        self.tray.set_tooltip(Some(tooltip))
    }

    /// Makes the menu show `view`.
    pub fn show(&self, view: &MenuView) -> tauri::Result<()> {
        self.status.set_text(&view.status)?;
        self.pause.set_enabled(view.running)?;
        self.pause_hour.set_enabled(view.running)?;
        self.pause_tomorrow.set_enabled(view.running)?;
        self.resume.set_enabled(view.running && view.paused)?;
        self.train_now
            .set_enabled(view.running && view.can_train_now)?;
        self.mode.set_enabled(view.running)?;
        for (item, mode) in &self.modes {
            // A click toggles a check item by itself: set every one, so
            // they act as radio items.
            item.set_checked(*mode == view.mode)?;
            item.set_enabled(view.running && (*mode != "rl" || view.rl_ready))?;
        }
        match view.start_at_login {
            Some(enabled) => {
                self.start_at_login.set_checked(enabled)?;
                self.start_at_login.set_enabled(true)?;
            }
            // The platform cannot tell: offer nothing that would fail.
            None => self.start_at_login.set_enabled(false)?,
        }
        Ok(())
    }
}
