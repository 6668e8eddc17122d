//! The app's state and everything the tray, the notifications and a second
//! launch do. Every action goes through the engine's API (`api::call`), the
//! same code the dashboard and the CLI reach over HTTP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, Local, NaiveTime, TimeZone, Utc};
use metaclaw_engine::config::Mode;
use metaclaw_engine::events::EngineEvent;
use metaclaw_engine::proxy::ProxyState;
use serde_json::{json, Value};
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_autostart::ManagerExt;
use tokio::sync::broadcast::error::RecvError;

use crate::args::Launch;
use crate::engine::{Reply, Running};
use crate::menu_ids as id;
use crate::mood::{Mood, Overview};
use crate::notes::{self, NoteKind};
use crate::tray::{MenuView, TrayMenu};
use crate::windows;

/// The Tauri event every engine event is forwarded as.
pub const ENGINE_EVENT: &str = "engine-event";

/// How often the tray looks at the engine when no event says anything
/// (a pause running out, a lapsed "learning").
const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Time for a second launch's D-Bus call to be answered before `--quit`
/// ends this process (the answer takes well under a millisecond).
const SECOND_LAUNCH_REPLY: Duration = Duration::from_millis(250);

/// When "Pause learning ▸ Until tomorrow" ends: tomorrow morning.
const TOMORROW_AT: NaiveTime = match NaiveTime::from_hms_opt(8, 0, 0) {
    Some(time) => time,
    None => NaiveTime::MIN,
};

pub struct Shell {
    /// The engine, or why it did not start (the tray then says so).
    engine: Result<Running, String>,
    mood: Mutex<Mood>,
    tray: OnceLock<TrayMenu>,
    /// What the tray shows now, to redraw only what changed.
    drawn: Mutex<Option<Drawn>>,
    quitting: AtomicBool,
}

#[derive(Clone, PartialEq)]
struct Drawn {
    state: crate::icons::TrayState,
    tooltip: String,
    view: MenuView,
}

impl Shell {
    pub fn new(engine: Result<Running, String>) -> Shell {
        let mood = match &engine {
            Ok(_) => Mood::default(),
            Err(why) => Mood::failed(why.clone()),
        };
        Shell {
            engine,
            mood: Mutex::new(mood),
            tray: OnceLock::new(),
            drawn: Mutex::new(None),
            quitting: AtomicBool::new(false),
        }
    }

    pub fn engine(&self) -> Option<&Running> {
        self.engine.as_ref().ok()
    }

    pub fn is_quitting(&self) -> bool {
        self.quitting.load(Ordering::SeqCst)
    }

    /// One API request; the same answer shape whether or not the engine runs.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        match &self.engine {
            Ok(engine) => engine.call(method, path, body).await,
            Err(why) => Reply::unavailable(why),
        }
    }

    fn mood(&self) -> std::sync::MutexGuard<'_, Mood> {
        self.mood.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sets up the tray and the engine's event forwarding (from the app's setup).
pub fn start(app: &AppHandle, engine: Result<Running, String>) {
    let shell = Shell::new(engine);
    let receiver = shell.engine().map(|e| e.state.events.subscribe());
    app.manage(shell);
    let shell = app.state::<Shell>();
    let (state, tooltip, view) = picture(app, &shell);
    match TrayMenu::build(app, state, &tooltip, &view) {
        Ok(tray) => {
            let _ = shell.tray.set(tray);
        }
        // A desktop without a tray (no StatusNotifierWatcher on Linux):
        // the engine still runs, and `metaclaw-app --dashboard` opens the
        // dashboard.
        Err(error) => tracing::warn!(%error, "no system tray to show MetaClaw in"),
    }
    *shell.drawn.lock().unwrap_or_else(|p| p.into_inner()) = Some(Drawn {
        state,
        tooltip,
        view,
    });
    if let Some(receiver) = receiver {
        tauri::async_runtime::spawn(forward_events(app.clone(), receiver));
    }
    if let Some(engine) = shell.engine() {
        tauri::async_runtime::spawn(follow_schedule(app.clone(), engine.state.clone()));
        let handle = app.clone();
        tauri::async_runtime::spawn(async move {
            let shell = handle.state::<Shell>();
            let Some(engine) = shell.engine() else {
                return;
            };
            let why = engine.died().await;
            shell.mood().fail(why);
            redraw(&handle);
        });
    }
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            refresh(&handle).await;
        }
    });
    // Ctrl-C or SIGTERM: the same clean stop as Quit.
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        metaclaw_engine::shutdown_signal().await;
        quit(&handle);
    });
}

/// A second launch's request, which can arrive while the app is still
/// starting its engine: it waits for that, then is done.
pub fn launch_when_ready(app: &AppHandle, request: Launch, second: bool) {
    if app.try_state::<Shell>().is_some() {
        launch(app, &request, second);
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        // Starting takes well under this; a request older than it is stale.
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if app.try_state::<Shell>().is_some() {
                launch(&app, &request, second);
                return;
            }
        }
        tracing::warn!(
            ?request,
            "dropped a second launch's request: the app did not finish starting"
        );
    });
}

/// Does what a launch asked for; `second` when another launch forwarded it.
pub fn launch(app: &AppHandle, launch: &Launch, second: bool) {
    match launch {
        Launch::Plain if second => open_dashboard(app, None),
        Launch::Plain | Launch::Help | Launch::Version => {}
        Launch::Dashboard(page) => open_dashboard(app, page.as_deref()),
        Launch::Settings => open_settings(app),
        Launch::Quit if second => {
            // The second launch waits for the answer to its D-Bus call,
            // which is sent once this callback returns: exiting at once
            // could close the connection first and fail that launch.
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                tokio::time::sleep(SECOND_LAUNCH_REPLY).await;
                quit(&app);
            });
        }
        Launch::Quit => quit(app),
    }
}

/// Every engine event goes to the web views as `engine-event`, moves the
/// tray and may raise a notification.
async fn forward_events(
    app: AppHandle,
    mut receiver: tokio::sync::broadcast::Receiver<EngineEvent>,
) {
    loop {
        match receiver.recv().await {
            Ok(event) => {
                if let Err(error) = app.emit(ENGINE_EVENT, &event) {
                    tracing::debug!(%error, "cannot forward an engine event");
                }
                let shell = app.state::<Shell>();
                let changed = shell.mood().observe(&event, Instant::now());
                notify(&app, &event);
                if changed {
                    refresh(&app).await;
                }
            }
            Err(RecvError::Lagged(missed)) => {
                // The same notice the SSE stream sends: the dashboard reloads.
                let _ = app.emit(ENGINE_EVENT, json!({"type": "lagged", "missed": missed}));
                refresh(&app).await;
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// Redraws when the scheduler's state or pause changes: a pause from the
/// tray, the CLI or the dashboard takes effect a moment after the request,
/// and changes no state an event would announce.
async fn follow_schedule(app: AppHandle, state: std::sync::Arc<ProxyState>) {
    // The scheduler starts with serving, a moment after the engine opened
    // (and never, when serving failed at once).
    let mut waited = Duration::ZERO;
    let scheduler = loop {
        if let Some(scheduler) = state.scheduler() {
            break scheduler;
        }
        if waited > Duration::from_secs(60) {
            tracing::warn!("the scheduler did not start; the tray shows its state only on events");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    };
    let mut status = scheduler.subscribe();
    let mut seen = None;
    loop {
        let now = {
            let status = status.borrow_and_update();
            Some((status.state.as_str(), status.paused_until))
        };
        // The status also carries readings that change every poll (idle
        // seconds): only what the tray shows is worth a redraw.
        if now != seen {
            seen = now;
            refresh(&app).await;
        }
        if status.changed().await.is_err() {
            break;
        }
    }
}

fn notify(app: &AppHandle, event: &EngineEvent) {
    let Some(note) = notes::note_for(event) else {
        return;
    };
    let shell = app.state::<Shell>();
    let Some(engine) = shell.engine() else {
        return;
    };
    // Read live: turning a kind off in the settings applies at once.
    let wanted = engine.state.live_config().notifications.clone();
    let on = match note.kind {
        NoteKind::SkillLearned => wanted.skill_learned,
        NoteKind::TrainingFinished => wanted.training_finished,
        NoteKind::Error => wanted.errors,
    };
    if !on {
        return;
    }
    let app = app.clone();
    notes::show(note, move |page| open_dashboard(&app, Some(&page)));
}

/// Fetches the overview and redraws the tray.
pub async fn refresh(app: &AppHandle) {
    let shell = app.state::<Shell>();
    if shell.engine().is_some() {
        let reply = shell.api("GET", "/api/overview", None).await;
        if reply.is_success() {
            match serde_json::from_value::<Overview>(reply.body) {
                Ok(overview) => shell.mood().set_overview(overview),
                Err(error) => tracing::warn!(%error, "the overview has an unexpected shape"),
            }
        } else {
            tracing::warn!(error = %reply.message(), "cannot read the overview");
        }
    }
    redraw(app);
}

/// What the tray should show now.
fn picture(app: &AppHandle, shell: &Shell) -> (crate::icons::TrayState, String, MenuView) {
    let (now, wall) = (Instant::now(), Utc::now());
    let mood = shell.mood();
    let state = mood.state(now, wall);
    let tooltip = mood.tooltip(now, wall);
    let live = shell.engine().map(|e| e.state.live_config());
    let mode = live
        .as_ref()
        .map(|c| c.mode.to_string())
        .unwrap_or_default();
    let view = MenuView {
        status: mood.status_line(now, wall, &mode),
        running: shell.engine().is_some(),
        paused: mood.paused_until(wall).is_some(),
        mode,
        // The workers were started with the engine, from its start-up config.
        // Train now opens a window: it needs a worker that waits for one,
        // the curator or the trainer in auto mode.
        can_train_now: shell.engine().is_some_and(|e| {
            let config = &e.state.config;
            config.curator.enabled || (config.mode == Mode::Auto && config.trains())
        }),
        rl_ready: live.as_ref().is_some_and(|c| c.rl_configured()),
        start_at_login: app
            .try_state::<tauri_plugin_autostart::AutoLaunchManager>()
            .and_then(|m| m.is_enabled().ok()),
    };
    (state, tooltip, view)
}

/// Redraws the tray on the main thread. Tray updates from other threads
/// wait for the main thread, so doing them all there, one after another,
/// means no lock is ever held while waiting for it (a click handler, on
/// the main thread, takes the same locks).
fn redraw(app: &AppHandle) {
    let handle = app.clone();
    if let Err(error) = app.run_on_main_thread(move || redraw_now(&handle)) {
        tracing::debug!(%error, "cannot redraw the tray (the app is exiting)");
    }
}

fn redraw_now(app: &AppHandle) {
    let shell = app.state::<Shell>();
    let Some(tray) = shell.tray.get() else {
        return;
    };
    let (state, tooltip, view) = picture(app, &shell);
    let mut drawn = shell.drawn.lock().unwrap_or_else(|p| p.into_inner());
    let before = drawn.clone();
    let result = (|| {
        if before
            .as_ref()
            .is_none_or(|d| d.state != state || d.tooltip != tooltip)
        {
            tray.set_state(state, &tooltip)?;
        }
        if before.as_ref().is_none_or(|d| d.view != view) {
            tray.show(&view)?;
        }
        tauri::Result::Ok(())
    })();
    match result {
        Ok(()) => {
            *drawn = Some(Drawn {
                state,
                tooltip,
                view,
            })
        }
        Err(error) => tracing::warn!(%error, "cannot update the tray"),
    }
}

pub fn open_dashboard(app: &AppHandle, page: Option<&str>) {
    if page.is_some_and(|p| p.starts_with("settings")) {
        acknowledge(app);
    }
    if let Err(error) = windows::open_dashboard(app, page) {
        tracing::error!(%error, "cannot open the dashboard");
    }
}

pub fn open_settings(app: &AppHandle) {
    acknowledge(app);
    if let Err(error) = windows::open_settings(app) {
        tracing::error!(%error, "cannot open the settings");
    }
}

/// The user is looking at the problem: the tray stops showing it.
fn acknowledge(app: &AppHandle) {
    if let Some(shell) = app.try_state::<Shell>() {
        shell.mood().acknowledge();
        redraw(app);
    }
}

/// Stops the engine (open sessions end, the store is flushed), then exits:
/// status 0, or 1 when the engine could not stop cleanly.
pub fn quit(app: &AppHandle) {
    let Some(shell) = app.try_state::<Shell>() else {
        // Asked before the engine started: nothing to stop.
        app.exit(0);
        return;
    };
    if shell.quitting.swap(true, Ordering::SeqCst) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        let code = match shell.engine() {
            None => 0,
            Some(engine) => match engine.stop().await {
                Ok(()) => 0,
                Err(error) => {
                    tracing::error!(%error, "the engine did not stop cleanly");
                    1
                }
            },
        };
        app.exit(code);
    });
}

/// A tray menu click.
pub fn menu_clicked(app: &AppHandle, item: &str) {
    if item == id::START_AT_LOGIN || id::MODES.iter().any(|(mode, _)| *mode == item) {
        // The click already toggled the check mark by itself; the next
        // redraw must set every mark from the engine again.
        if let Some(shell) = app.try_state::<Shell>() {
            *shell.drawn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
    match item {
        id::OPEN_DASHBOARD => open_dashboard(app, None),
        id::SETTINGS => open_settings(app),
        id::QUIT => quit(app),
        id::START_AT_LOGIN => toggle_start_at_login(app),
        id::PAUSE_HOUR => act(
            app,
            "POST",
            "/api/schedule/pause",
            Some(pause_body(Utc::now() + chrono::Duration::hours(1))),
        ),
        id::PAUSE_UNTIL_TOMORROW => act(
            app,
            "POST",
            "/api/schedule/pause",
            Some(pause_body(tomorrow_morning(Local::now()))),
        ),
        id::RESUME => act(
            app,
            "POST",
            "/api/schedule/pause",
            Some(json!({"until": null})),
        ),
        id::TRAIN_NOW => act(app, "POST", "/api/training/now", None),
        other => match id::MODES.iter().find(|(item, _)| *item == other) {
            Some((_, mode)) => act(
                app,
                "PUT",
                "/api/settings",
                Some(json!({"values": {"mode": mode}})),
            ),
            None => tracing::debug!(item = other, "a menu item without an action"),
        },
    }
}

fn pause_body(until: DateTime<Utc>) -> Value {
    json!({"until": until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
}

/// 08:00 local time tomorrow.
fn tomorrow_morning(now: DateTime<Local>) -> DateTime<Utc> {
    let day = now.date_naive() + Days::new(1);
    let local = Local
        .from_local_datetime(&day.and_time(TOMORROW_AT))
        .earliest()
        // A clock change right at 08:00: a day from now is close enough.
        .unwrap_or(now + chrono::Duration::days(1));
    local.with_timezone(&Utc)
}

/// Runs an API request for a menu item, then redraws; a refusal is shown as
/// a notification, since a menu has nowhere else to say it.
fn act(app: &AppHandle, method: &'static str, path: &'static str, body: Option<Value>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        let reply = shell.api(method, path, body).await;
        if !reply.is_success() {
            tracing::warn!(path, error = %reply.message(), "a menu action was refused");
            notes::show(
                notes::Note {
                    kind: NoteKind::Error,
                    summary: "MetaClaw could not do that".to_owned(),
                    body: reply.message(),
                    page: "settings".to_owned(),
                },
                {
                    let app = app.clone();
                    move |page| open_dashboard(&app, Some(&page))
                },
            );
        }
        refresh(&app).await;
    });
}

fn toggle_start_at_login(app: &AppHandle) {
    let autostart = app.autolaunch();
    let result = match autostart.is_enabled() {
        Ok(true) => autostart.disable(),
        Ok(false) => autostart.enable(),
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        tracing::warn!(%error, "cannot change start at login");
    }
    redraw(app);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_tomorrow_means_tomorrow_morning() {
        let now = Local.with_ymd_and_hms(2026, 3, 16, 22, 30, 0).unwrap();
        let until = tomorrow_morning(now).with_timezone(&Local);
        assert_eq!(until.date_naive().to_string(), "2026-03-17");
        assert_eq!(until.time(), TOMORROW_AT);
        assert_eq!(
            pause_body(Utc.with_ymd_and_hms(2026, 3, 16, 9, 0, 0).unwrap()),
            json!({"until": "2026-03-16T09:00:00Z"})
        );
    }
}
