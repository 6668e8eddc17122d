//! Is the user at the machine? Time since the last keyboard or mouse input
//! and whether the screen is locked, read from whatever this desktop offers.
//!
//! Detection asks each candidate a real question and keeps the first that
//! answers, because an environment variable being set proves nothing (a
//! stale `$DISPLAY` under Wayland, a session bus with no compositor on it).
//! Every candidate that did not answer is reported with its reason, so the
//! UI can say why idle or lock detection is off.

use std::time::Duration;

#[cfg(all(unix, not(target_os = "macos")))]
mod dbus;
#[cfg(any(target_os = "macos", target_os = "windows"))]
mod os;
#[cfg(all(unix, not(target_os = "macos")))]
mod x11;

#[cfg(all(unix, not(target_os = "macos")))]
pub use x11::X11Idle;

/// Why a signal could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct SignalError {
    /// The source that failed, as in [`IdleSource::name`].
    pub source_name: &'static str,
    /// What went wrong, in words a user can act on.
    pub reason: String,
}

impl SignalError {
    pub(crate) fn new(source_name: &'static str, reason: impl Into<String>) -> Self {
        Self {
            source_name,
            reason: reason.into(),
        }
    }
}

/// Seconds since the last keyboard or mouse input. Blocking call, must be
/// cheap (called 4x/second while a window is open).
pub trait IdleSource: Send + Sync {
    /// Which source this is, e.g. "x11-screensaver".
    fn name(&self) -> &'static str;
    /// Time since the last keyboard or mouse input.
    fn idle(&self) -> Result<Duration, SignalError>;
}

/// Whether the screen is locked. Blocking, cheap.
pub trait LockSource: Send + Sync {
    /// Which source this is, e.g. "logind-locked-hint".
    fn name(&self) -> &'static str;
    /// Whether the screen is locked now.
    fn locked(&self) -> Result<bool, SignalError>;
}

/// What detection found: the source that works, and why each other candidate
/// did not.
pub struct Detected<T: ?Sized> {
    /// The first candidate that answered, if any did.
    pub source: Option<Box<T>>,
    /// Every candidate tried before it (or all of them), with the reason.
    pub unavailable: Vec<SignalError>,
}

impl<T: ?Sized> Detected<T> {
    fn nothing() -> Self {
        Self {
            source: None,
            unavailable: Vec::new(),
        }
    }

    /// Tries one candidate unless an earlier one already answered: `open`
    /// connects, `probe` asks the real question once.
    #[allow(dead_code)] // Unused on platforms with no source at all.
    fn try_candidate<S>(
        &mut self,
        open: impl FnOnce() -> Result<S, SignalError>,
        probe: impl FnOnce(&S) -> Result<(), SignalError>,
        boxed: impl FnOnce(S) -> Box<T>,
    ) {
        if self.source.is_some() {
            return;
        }
        match open().and_then(|source| probe(&source).map(|()| source)) {
            Ok(source) => self.source = Some(boxed(source)),
            Err(error) => self.unavailable.push(error),
        }
    }
}

/// The environment detection reads, passed in so tests can point it at
/// private servers without touching the process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// X display name (`$DISPLAY`); `None` skips the X11 source.
    pub display: Option<String>,
    /// A Wayland session (`$WAYLAND_DISPLAY` or `$XDG_SESSION_TYPE`), where
    /// `$DISPLAY` is XWayland and the X11 source must not be trusted.
    pub wayland: bool,
    /// Session bus address (`$DBUS_SESSION_BUS_ADDRESS`, else
    /// `$XDG_RUNTIME_DIR/bus`).
    pub session_bus: Option<String>,
    /// System bus address (`$DBUS_SYSTEM_BUS_ADDRESS`, else the well-known
    /// socket).
    pub system_bus: Option<String>,
}

impl Env {
    /// The real environment of this process, resolved the way libdbus and
    /// Xlib resolve it.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Self {
            display: var("DISPLAY"),
            wayland: var("WAYLAND_DISPLAY").is_some()
                || var("XDG_SESSION_TYPE").is_some_and(|kind| kind == "wayland"),
            session_bus: var("DBUS_SESSION_BUS_ADDRESS")
                .or_else(|| var("XDG_RUNTIME_DIR").map(|dir| format!("unix:path={dir}/bus"))),
            system_bus: Some(
                var("DBUS_SYSTEM_BUS_ADDRESS")
                    .unwrap_or_else(|| "unix:path=/var/run/dbus/system_bus_socket".to_owned()),
            ),
        }
    }
}

/// Finds the idle source for this desktop from the process environment.
pub fn detect_idle() -> Detected<dyn IdleSource> {
    detect_idle_with(&Env::from_process())
}

/// Finds the lock source for this desktop from the process environment.
pub fn detect_lock() -> Detected<dyn LockSource> {
    detect_lock_with(&Env::from_process())
}

/// Finds the idle source: X11 first (one local round trip), then the
/// compositor's idle monitor on the session bus.
///
/// Under Wayland the X server is XWayland, which answers happily but only
/// sees input sent to X windows: its idle time keeps growing while the user
/// types into a Wayland window, which would start training under their
/// hands. So there it is never used.
#[cfg(all(unix, not(target_os = "macos")))]
pub fn detect_idle_with(env: &Env) -> Detected<dyn IdleSource> {
    let mut found = Detected::<dyn IdleSource>::nothing();
    found.try_candidate(
        || match env.display.as_deref() {
            Some(display) if env.wayland => Err(SignalError::new(
                x11::NAME,
                format!(
                    "DISPLAY {display} is XWayland in a Wayland session, \
                     blind to input sent to Wayland windows"
                ),
            )),
            Some(display) => X11Idle::connect(Some(display)),
            None => Err(SignalError::new(x11::NAME, "DISPLAY is not set")),
        },
        |source| source.idle().map(drop),
        |source| Box::new(source),
    );
    let session = dbus::LazyBus::new(dbus::BusKind::Session, env.session_bus.as_deref());
    found.try_candidate(
        || session.get(dbus::MUTTER_IDLE_NAME).map(dbus::MutterIdle),
        |source| source.idle().map(drop),
        |source| Box::new(source),
    );
    found.try_candidate(
        || {
            session
                .get(dbus::FREEDESKTOP_IDLE_NAME)
                .map(dbus::FreedesktopIdle)
        },
        |source| source.idle().map(drop),
        |source| Box::new(source),
    );
    found
}

/// Finds the lock source: the screen saver services on the session bus, then
/// logind's `LockedHint`, which desktops set but some only on their own
/// lock screen.
#[cfg(all(unix, not(target_os = "macos")))]
pub fn detect_lock_with(env: &Env) -> Detected<dyn LockSource> {
    let mut found = Detected::<dyn LockSource>::nothing();
    let session = dbus::LazyBus::new(dbus::BusKind::Session, env.session_bus.as_deref());
    for method in [dbus::FREEDESKTOP_LOCK, dbus::GNOME_LOCK] {
        found.try_candidate(
            || {
                session
                    .get(method.source)
                    .map(|bus| dbus::ScreenSaverLock::new(method, bus))
            },
            |source| source.locked().map(drop),
            |source| Box::new(source),
        );
    }
    let system = dbus::LazyBus::new(dbus::BusKind::System, env.system_bus.as_deref());
    found.try_candidate(
        || system.get(dbus::LOGIND_LOCK_NAME).map(dbus::LogindLock),
        |source| source.locked().map(drop),
        |source| Box::new(source),
    );
    found
}

/// Finds the idle source: the OS call that `user-idle` wraps.
#[cfg(any(target_os = "macos", target_os = "windows"))]
pub fn detect_idle_with(_env: &Env) -> Detected<dyn IdleSource> {
    let mut found = Detected::<dyn IdleSource>::nothing();
    found.try_candidate(
        || Ok(os::OsIdle),
        |source| source.idle().map(drop),
        |source| Box::new(source),
    );
    found
}

/// No lock source yet on this platform; the scheduler falls back to idle time.
#[cfg(any(target_os = "macos", target_os = "windows"))]
pub fn detect_lock_with(_env: &Env) -> Detected<dyn LockSource> {
    let mut found = Detected::<dyn LockSource>::nothing();
    found.unavailable.push(SignalError::new(
        "screen-lock",
        "screen lock detection is not implemented on this platform",
    ));
    found
}

/// Neither X11, D-Bus nor a known OS call: nothing to ask.
#[cfg(not(any(unix, target_os = "windows")))]
pub fn detect_idle_with(_env: &Env) -> Detected<dyn IdleSource> {
    let mut found = Detected::<dyn IdleSource>::nothing();
    found.unavailable.push(SignalError::new(
        "user-idle",
        "idle detection is not implemented on this platform",
    ));
    found
}

/// Neither D-Bus nor a known OS call: nothing to ask.
#[cfg(not(any(unix, target_os = "windows")))]
pub fn detect_lock_with(_env: &Env) -> Detected<dyn LockSource> {
    let mut found = Detected::<dyn LockSource>::nothing();
    found.unavailable.push(SignalError::new(
        "screen-lock",
        "screen lock detection is not implemented on this platform",
    ));
    found
}

#[cfg(all(test, unix, not(target_os = "macos")))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn nowhere() -> Env {
        Env {
            display: None,
            wayland: false,
            session_bus: Some("unix:path=/nonexistent/metaclaw-test/session".to_owned()),
            system_bus: Some("unix:path=/nonexistent/metaclaw-test/system".to_owned()),
        }
    }

    #[test]
    fn idle_detection_explains_every_candidate_when_nothing_is_there() {
        let found = detect_idle_with(&nowhere());
        assert!(found.source.is_none());
        let names: Vec<_> = found.unavailable.iter().map(|e| e.source_name).collect();
        assert_eq!(
            names,
            [
                "x11-screensaver",
                "gnome-mutter-idle-monitor",
                "freedesktop-screensaver"
            ]
        );
        assert_eq!(found.unavailable[0].reason, "DISPLAY is not set");
        for error in &found.unavailable[1..] {
            assert!(
                error.reason.contains("session bus")
                    && error.reason.contains("/nonexistent/metaclaw-test/session"),
                "{error}"
            );
        }
    }

    #[test]
    fn lock_detection_explains_every_candidate_when_nothing_is_there() {
        let found = detect_lock_with(&nowhere());
        assert!(found.source.is_none());
        let names: Vec<_> = found.unavailable.iter().map(|e| e.source_name).collect();
        assert_eq!(
            names,
            [
                "freedesktop-screensaver",
                "gnome-screensaver",
                "logind-locked-hint"
            ]
        );
        assert!(found.unavailable[2].reason.contains("system bus"));
        assert!(found.unavailable[2]
            .reason
            .contains("/nonexistent/metaclaw-test/system"));
    }

    #[test]
    fn missing_bus_addresses_are_reported_not_guessed() {
        let found = detect_lock_with(&Env::default());
        assert!(found.source.is_none());
        assert_eq!(found.unavailable.len(), 3);
        assert!(found.unavailable[0].reason.contains("no session bus"));
        assert!(found.unavailable[2].reason.contains("no system bus"));
    }

    #[test]
    fn a_display_without_a_server_is_named_in_the_error() {
        let env = Env {
            display: Some(":4711".to_owned()),
            ..nowhere()
        };
        let found = detect_idle_with(&env);
        let x11 = &found.unavailable[0];
        assert_eq!(x11.source_name, "x11-screensaver");
        assert!(x11.reason.starts_with("no X server at :4711"), "{x11}");
    }

    #[test]
    fn xwayland_is_not_trusted_for_idle_time() {
        let env = Env {
            display: Some(":0".to_owned()),
            wayland: true,
            ..nowhere()
        };
        let found = detect_idle_with(&env);
        let x11 = &found.unavailable[0];
        assert_eq!(x11.source_name, "x11-screensaver");
        assert!(x11.reason.contains("XWayland"), "{x11}");
        assert_eq!(found.unavailable.len(), 3);
    }

    #[test]
    fn a_hung_bus_costs_one_timeout_not_a_stall() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("bus");
        // Accepts connections and never says a word.
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let env = Env {
            session_bus: Some(format!("unix:path={}", socket.display())),
            ..nowhere()
        };
        let started = std::time::Instant::now();
        let found = detect_idle_with(&env);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(found.source.is_none());
        assert_eq!(found.unavailable.len(), 3);
        for error in &found.unavailable[1..] {
            assert!(
                error.reason.contains("did not answer within 1 s"),
                "{error}"
            );
        }
    }

    #[test]
    fn errors_read_as_source_then_reason() {
        let error = SignalError::new(
            "gnome-screensaver",
            "org.gnome.ScreenSaver not on the session bus",
        );
        assert_eq!(
            error.to_string(),
            "gnome-screensaver: org.gnome.ScreenSaver not on the session bus"
        );
    }
}
