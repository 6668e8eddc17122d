//! Idle time from the OS on macOS (IOKit's HID idle time) and Windows
//! (`GetLastInputInfo`), through `user-idle`, which needs no session bus or
//! display server there.

use std::time::Duration;

use super::{IdleSource, SignalError};

#[cfg(target_os = "macos")]
const NAME: &str = "macos-hid-idle";
#[cfg(target_os = "windows")]
const NAME: &str = "windows-last-input";

pub(crate) struct OsIdle;

impl IdleSource for OsIdle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn idle(&self) -> Result<Duration, SignalError> {
        user_idle::UserIdle::get_time()
            .map(|idle| idle.duration())
            .map_err(|e| SignalError::new(NAME, e.to_string()))
    }
}
