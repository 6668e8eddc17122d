//! Idle time from an X server's MIT-SCREEN-SAVER extension.
//!
//! `x11rb`'s pure-Rust connection rather than `user-idle`: `user-idle` links
//! libX11 and libXss (C `-dev` packages to build), opens a new display on
//! every call, reads only `$DISPLAY`, and dereferences a null display when no
//! X server is running. Here one connection is kept open, so a reading is a
//! single round trip on a local socket, and the display can be named
//! explicitly.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::protocol::screensaver::{self, ConnectionExt as _};
use x11rb::protocol::xproto::Window;
use x11rb::rust_connection::RustConnection;

use super::{IdleSource, SignalError};

pub(crate) const NAME: &str = "x11-screensaver";

/// The X11 source against an explicit display (used by detect_idle with
/// $DISPLAY, and by tests with an Xvfb display).
pub struct X11Idle {
    display: Option<String>,
    /// `None` after a failed query: the next reading reconnects, so an X
    /// server restart does not leave the source dead.
    link: Mutex<Option<Link>>,
}

struct Link {
    connection: RustConnection,
    root: Window,
}

impl X11Idle {
    /// Connects to `display` (`None`: `$DISPLAY`) and checks that the server
    /// has the screen saver extension.
    pub fn connect(display: Option<&str>) -> Result<X11Idle, SignalError> {
        let link = Link::open(display)?;
        Ok(X11Idle {
            display: display.map(str::to_owned),
            link: Mutex::new(Some(link)),
        })
    }

    fn label(&self) -> &str {
        label(self.display.as_deref())
    }
}

impl IdleSource for X11Idle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn idle(&self) -> Result<Duration, SignalError> {
        let mut slot = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        let link = match slot.take() {
            Some(link) => link,
            None => Link::open(self.display.as_deref())?,
        };
        let idle = link.idle().map_err(|e| {
            SignalError::new(
                NAME,
                format!("query to the X server at {} failed: {e}", self.label()),
            )
        })?;
        *slot = Some(link);
        Ok(idle)
    }
}

impl Link {
    fn open(display: Option<&str>) -> Result<Link, SignalError> {
        let at = label(display);
        let (connection, screen) = x11rb::connect(display)
            .map_err(|e| SignalError::new(NAME, format!("no X server at {at}: {e}")))?;
        let extension = connection
            .extension_information(screensaver::X11_EXTENSION_NAME)
            .map_err(|e| SignalError::new(NAME, format!("X server at {at}: {e}")))?;
        if extension.is_none() {
            return Err(SignalError::new(
                NAME,
                format!("the X server at {at} lacks the MIT-SCREEN-SAVER extension"),
            ));
        }
        let root = connection
            .setup()
            .roots
            .get(screen)
            .map(|s| s.root)
            .ok_or_else(|| {
                SignalError::new(NAME, format!("X server at {at} has no screen {screen}"))
            })?;
        Ok(Link { connection, root })
    }

    fn idle(&self) -> Result<Duration, x11rb::errors::ReplyError> {
        let info = self.connection.screensaver_query_info(self.root)?.reply()?;
        Ok(Duration::from_millis(u64::from(info.ms_since_user_input)))
    }
}

fn label(display: Option<&str>) -> &str {
    display.unwrap_or("$DISPLAY")
}
