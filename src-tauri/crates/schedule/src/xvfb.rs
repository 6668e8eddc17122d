//! A private X server (Xvfb) with xdotool as the "user", so tests and the
//! benchmark can produce real keyboard/mouse idle time and real input.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::signals::X11Idle;

/// Spreads display numbers across servers in this process and across
/// processes running at the same time.
static NEXT: AtomicU32 = AtomicU32::new(0);

fn candidate_display() -> u32 {
    90 + std::process::id() % 100 + NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Whether something already holds display `:n`.
pub fn display_taken(n: u32) -> bool {
    Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        || Path::new(&format!("/tmp/.X{n}-lock")).exists()
}

/// A display number nobody is using, for "no server there" checks.
pub fn unused_display() -> u32 {
    let mut n = candidate_display() + 100;
    while display_taken(n) {
        n += 1;
    }
    n
}

fn require(tool: &str, package: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if found {
        Ok(())
    } else {
        Err(format!(
            "`{tool}` is not installed: install the `{package}` package (apt-get install xvfb xdotool; .ci/run does)"
        ))
    }
}

/// An Xvfb server, stopped when dropped.
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts a server on a free display and waits until it accepts
    /// connections; returns it with an idle source connected to it.
    pub fn start() -> Result<(Xvfb, X11Idle), String> {
        require("Xvfb", "xvfb")?;
        require("xdotool", "xdotool")?;
        let mut last_log = String::new();
        for _ in 0..50 {
            let n = candidate_display();
            if display_taken(n) {
                continue;
            }
            let display = format!(":{n}");
            let log = std::env::temp_dir().join(format!("metaclaw-xvfb-{n}.log"));
            let stderr = std::fs::File::create(&log).map_err(|e| e.to_string())?;
            let child = Command::new("Xvfb")
                .args([&display, "-screen", "0", "800x600x24", "-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .map_err(|e| format!("cannot start Xvfb: {e}"))?;
            let mut server = Xvfb { child, display };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(server.child.try_wait(), Ok(Some(_))) {
                    // Lost a race for this display number: try the next.
                    break;
                }
                if let Ok(source) = X11Idle::connect(Some(&server.display)) {
                    let _ = std::fs::remove_file(&log);
                    return Ok((server, source));
                }
                sleep(Duration::from_millis(50));
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
        }
        Err(format!(
            "could not start Xvfb on any display; its last output:\n{last_log}"
        ))
    }

    /// The display name, e.g. `:93`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Runs xdotool against this display.
    pub fn xdotool(&self, args: &[&str]) -> Result<(), String> {
        let status = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .map_err(|e| format!("cannot run xdotool: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("xdotool {args:?} failed: {status}"))
        }
    }

    /// Moves the pointer twice, so it really moves wherever it was.
    pub fn wiggle(&self) -> Result<(), String> {
        self.xdotool(&["mousemove", "10", "10"])?;
        self.xdotool(&["mousemove", "200", "200"])
    }
}

impl Drop for Xvfb {
    /// SIGTERM first: a killed Xvfb leaves its socket and lock file behind.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
