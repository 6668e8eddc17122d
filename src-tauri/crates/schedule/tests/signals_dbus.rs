//! The D-Bus idle and lock sources against a private dbus-daemon, with fake
//! GNOME and freedesktop services speaking the real interfaces.
#![cfg(all(unix, not(target_os = "macos")))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metaclaw_schedule::signals::{detect_idle_with, detect_lock_with, Env};

/// A private session bus, killed when dropped.
struct SessionBus {
    child: Child,
    address: String,
    /// Runs the fake services' connections.
    runtime: tokio::runtime::Runtime,
    services: Vec<zbus::Connection>,
    _dir: tempfile::TempDir,
}

impl SessionBus {
    fn start() -> SessionBus {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join("dbus-daemon").is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "`dbus-daemon` is not installed: install the `dbus` package \
             (apt-get install dbus); CI installs it"
        );
        // The socket lives in a temporary directory, so it goes away with the
        // test even when the daemon is killed.
        let dir = tempfile::tempdir().unwrap();
        let listen = format!("--address=unix:path={}", dir.path().join("bus").display());
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address", &listen])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed but could not be started");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {line:?}");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        SessionBus {
            child,
            address,
            runtime,
            services: Vec::new(),
            _dir: dir,
        }
    }

    /// Serves `object` at `path` under the well-known `name`.
    fn serve<I: zbus::object_server::Interface>(&mut self, name: &str, path: &str, object: I) {
        let address = self.address.clone();
        let connection = self
            .runtime
            .block_on(async move {
                zbus::connection::Builder::address(address.as_str())?
                    .name(name)?
                    .serve_at(path, object)?
                    .build()
                    .await
            })
            .unwrap();
        self.services.push(connection);
    }

    fn env(&self) -> Env {
        Env {
            display: None,
            wayland: true,
            session_bus: Some(self.address.clone()),
            system_bus: Some("unix:path=/nonexistent/metaclaw-test/system".to_owned()),
        }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        self.services.clear();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct MutterIdleMonitor {
    idle_ms: u64,
}

#[zbus::interface(name = "org.gnome.Mutter.IdleMonitor")]
impl MutterIdleMonitor {
    #[zbus(name = "GetIdletime")]
    fn get_idletime(&self) -> u64 {
        self.idle_ms
    }
}

/// Like Plasma 6 on Wayland: the service is there, the idle time is not.
struct PlasmaScreenSaver;

#[zbus::interface(name = "org.freedesktop.ScreenSaver")]
impl PlasmaScreenSaver {
    fn get_session_idle_time(&self) -> zbus::fdo::Result<u32> {
        Err(zbus::fdo::Error::NotSupported(
            "GetSessionIdleTime is not supported on this platform".to_owned(),
        ))
    }
}

struct FreedesktopScreenSaver {
    idle_ms: u32,
}

#[zbus::interface(name = "org.freedesktop.ScreenSaver")]
impl FreedesktopScreenSaver {
    fn get_session_idle_time(&self) -> u32 {
        self.idle_ms
    }
}

struct GnomeScreenSaver {
    active: Arc<AtomicBool>,
}

#[zbus::interface(name = "org.gnome.ScreenSaver")]
impl GnomeScreenSaver {
    fn get_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }
}

/// Answers only after the caller has given up.
struct HungIdleMonitor;

#[zbus::interface(name = "org.gnome.Mutter.IdleMonitor")]
impl HungIdleMonitor {
    #[zbus(name = "GetIdletime")]
    async fn get_idletime(&self) -> u64 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        0
    }
}

const MUTTER_PATH: &str = "/org/gnome/Mutter/IdleMonitor/Core";

#[test]
fn gnome_idle_monitor_wins_and_reads_milliseconds() {
    let mut bus = SessionBus::start();
    bus.serve(
        "org.gnome.Mutter.IdleMonitor",
        MUTTER_PATH,
        MutterIdleMonitor { idle_ms: 4321 },
    );
    let found = detect_idle_with(&bus.env());
    let source = found.source.expect("the Mutter idle monitor");
    assert_eq!(source.name(), "gnome-mutter-idle-monitor");
    assert_eq!(source.idle().unwrap(), Duration::from_millis(4321));
    let reasons: Vec<_> = found.unavailable.iter().map(ToString::to_string).collect();
    assert_eq!(reasons, ["x11-screensaver: DISPLAY is not set"]);
}

#[test]
fn freedesktop_screensaver_is_the_fallback() {
    let mut bus = SessionBus::start();
    bus.serve(
        "org.freedesktop.ScreenSaver",
        "/org/freedesktop/ScreenSaver",
        FreedesktopScreenSaver { idle_ms: 2500 },
    );
    let found = detect_idle_with(&bus.env());
    let source = found.source.expect("the freedesktop screen saver");
    assert_eq!(source.name(), "freedesktop-screensaver");
    assert_eq!(source.idle().unwrap(), Duration::from_millis(2500));
    assert_eq!(
        found.unavailable[1].to_string(),
        "gnome-mutter-idle-monitor: org.gnome.Mutter.IdleMonitor not on the session bus"
    );
}

#[test]
fn a_service_that_refuses_is_reported_with_its_answer() {
    let mut bus = SessionBus::start();
    bus.serve(
        "org.freedesktop.ScreenSaver",
        "/org/freedesktop/ScreenSaver",
        PlasmaScreenSaver,
    );
    let found = detect_idle_with(&bus.env());
    assert!(found.source.is_none());
    let refused = &found.unavailable[2];
    assert_eq!(refused.source_name, "freedesktop-screensaver");
    assert!(
        refused.reason.contains("GetSessionIdleTime failed")
            && refused.reason.contains("NotSupported"),
        "{refused}"
    );
}

#[test]
fn gnome_lock_screen_is_read_live_even_from_async_code() {
    let mut bus = SessionBus::start();
    let active = Arc::new(AtomicBool::new(true));
    bus.serve(
        "org.gnome.ScreenSaver",
        "/org/gnome/ScreenSaver",
        GnomeScreenSaver {
            active: active.clone(),
        },
    );
    let env = bus.env();
    // The scheduler is async: a blocking read from inside a runtime must
    // not panic the way a nested `block_on` would.
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    caller.block_on(async {
        let found = detect_lock_with(&env);
        let source = found.source.expect("the GNOME screen saver");
        assert_eq!(source.name(), "gnome-screensaver");
        assert_eq!(
            found.unavailable[0].to_string(),
            "freedesktop-screensaver: org.freedesktop.ScreenSaver not on the session bus"
        );
        assert!(source.locked().unwrap());
        active.store(false, Ordering::SeqCst);
        assert!(!source.locked().unwrap());
    });
}

#[test]
fn a_hung_service_times_out_within_about_a_second() {
    let mut bus = SessionBus::start();
    bus.serve("org.gnome.Mutter.IdleMonitor", MUTTER_PATH, HungIdleMonitor);
    let started = Instant::now();
    let found = detect_idle_with(&bus.env());
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "detection took {elapsed:?}"
    );
    assert_eq!(
        found.unavailable[1].to_string(),
        "gnome-mutter-idle-monitor: no reply from org.gnome.Mutter.IdleMonitor \
         on the session bus within 1 s"
    );
}
