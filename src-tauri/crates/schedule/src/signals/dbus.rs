//! Idle time and lock state from desktop services on D-Bus: on Wayland no X
//! server sees the input, only the compositor does.
//!
//! Each bus gets a one-thread tokio runtime of its own and callers wait on a
//! channel. `zbus`'s blocking API would `block_on` a runtime instead, which
//! panics when the caller is itself inside a tokio runtime; spawning onto a
//! runtime handle works from any thread. Every call, including connecting,
//! runs under [`CALL_TIMEOUT`].

use std::cell::OnceCell;
use std::fmt;
use std::future::Future;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use zbus::proxy::{CacheProperties, MethodFlags};
use zbus::zvariant::{DynamicDeserialize, DynamicType, OwnedValue};
use zbus::{Connection, DBusError as _};

use super::{IdleSource, LockSource, SignalError};

/// Long enough for a busy compositor to answer, short enough that a hung bus
/// cannot stall the scheduler's quarter-second loop for long.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BusKind {
    Session,
    System,
}

impl fmt::Display for BusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Session => "session",
            Self::System => "system",
        })
    }
}

/// One method of a well-known service, and the source that calls it.
pub(crate) struct Method {
    pub(crate) source: &'static str,
    service: &'static str,
    path: &'static str,
    interface: &'static str,
    member: &'static str,
    /// What the call reads, for error messages.
    what: &'static str,
}

impl Method {
    fn error(&self, reason: impl Into<String>) -> SignalError {
        SignalError::new(self.source, reason)
    }
}

const MUTTER_IDLE: Method = Method {
    source: "gnome-mutter-idle-monitor",
    service: "org.gnome.Mutter.IdleMonitor",
    path: "/org/gnome/Mutter/IdleMonitor/Core",
    interface: "org.gnome.Mutter.IdleMonitor",
    member: "GetIdletime",
    what: "org.gnome.Mutter.IdleMonitor.GetIdletime",
};

const FREEDESKTOP_IDLE: Method = Method {
    source: "freedesktop-screensaver",
    service: "org.freedesktop.ScreenSaver",
    path: "/org/freedesktop/ScreenSaver",
    interface: "org.freedesktop.ScreenSaver",
    member: "GetSessionIdleTime",
    what: "org.freedesktop.ScreenSaver.GetSessionIdleTime",
};

pub(crate) const FREEDESKTOP_LOCK: &Method = &Method {
    source: "freedesktop-screensaver",
    service: "org.freedesktop.ScreenSaver",
    path: "/org/freedesktop/ScreenSaver",
    interface: "org.freedesktop.ScreenSaver",
    member: "GetActive",
    what: "org.freedesktop.ScreenSaver.GetActive",
};

pub(crate) const GNOME_LOCK: &Method = &Method {
    source: "gnome-screensaver",
    service: "org.gnome.ScreenSaver",
    path: "/org/gnome/ScreenSaver",
    interface: "org.gnome.ScreenSaver",
    member: "GetActive",
    what: "org.gnome.ScreenSaver.GetActive",
};

/// `auto` is logind's alias for the caller's own session.
const LOGIND_LOCK: Method = Method {
    source: "logind-locked-hint",
    service: "org.freedesktop.login1",
    path: "/org/freedesktop/login1/session/auto",
    interface: "org.freedesktop.DBus.Properties",
    member: "Get",
    what: "org.freedesktop.login1.Session.LockedHint",
};

/// The source names detection reports when a bus cannot be reached.
pub(crate) const MUTTER_IDLE_NAME: &str = MUTTER_IDLE.source;
pub(crate) const FREEDESKTOP_IDLE_NAME: &str = FREEDESKTOP_IDLE.source;
pub(crate) const LOGIND_LOCK_NAME: &str = LOGIND_LOCK.source;

/// GNOME's idle monitor (Mutter), answering in milliseconds.
pub(crate) struct MutterIdle(pub(crate) Arc<Bus>);

impl IdleSource for MutterIdle {
    fn name(&self) -> &'static str {
        MUTTER_IDLE.source
    }

    fn idle(&self) -> Result<Duration, SignalError> {
        self.0
            .call::<_, u64>(&MUTTER_IDLE, ())
            .map(Duration::from_millis)
    }
}

/// `org.freedesktop.ScreenSaver`'s session idle time. The spec says seconds,
/// but KDE (`KIdleTime::idleTime`) and the clients that use it treat the
/// value as milliseconds, so it is read as milliseconds. Plasma 6 on Wayland
/// answers `NotSupported`, which detection reports.
pub(crate) struct FreedesktopIdle(pub(crate) Arc<Bus>);

impl IdleSource for FreedesktopIdle {
    fn name(&self) -> &'static str {
        FREEDESKTOP_IDLE.source
    }

    fn idle(&self) -> Result<Duration, SignalError> {
        self.0
            .call::<_, u32>(&FREEDESKTOP_IDLE, ())
            .map(|ms| Duration::from_millis(u64::from(ms)))
    }
}

/// A screen saver service's `GetActive`: true while the lock screen is up.
pub(crate) struct ScreenSaverLock {
    method: &'static Method,
    bus: Arc<Bus>,
}

impl ScreenSaverLock {
    pub(crate) fn new(method: &'static Method, bus: Arc<Bus>) -> Self {
        Self { method, bus }
    }
}

impl LockSource for ScreenSaverLock {
    fn name(&self) -> &'static str {
        self.method.source
    }

    fn locked(&self) -> Result<bool, SignalError> {
        self.bus.call::<_, bool>(self.method, ())
    }
}

/// logind's `LockedHint` for this session, which the desktop sets while its
/// lock screen is up.
pub(crate) struct LogindLock(pub(crate) Arc<Bus>);

impl LockSource for LogindLock {
    fn name(&self) -> &'static str {
        LOGIND_LOCK.source
    }

    fn locked(&self) -> Result<bool, SignalError> {
        let value: OwnedValue = self.0.call(
            &LOGIND_LOCK,
            ("org.freedesktop.login1.Session", "LockedHint"),
        )?;
        bool::try_from(value)
            .map_err(|e| LOGIND_LOCK.error(format!("{} is not a boolean: {e}", LOGIND_LOCK.what)))
    }
}

/// A bus that is connected to on first use, then shared by the candidates
/// that live on it, so detection opens each bus at most once.
pub(crate) struct LazyBus<'a> {
    kind: BusKind,
    address: Option<&'a str>,
    bus: OnceCell<Result<Arc<Bus>, String>>,
}

impl<'a> LazyBus<'a> {
    pub(crate) fn new(kind: BusKind, address: Option<&'a str>) -> Self {
        Self {
            kind,
            address,
            bus: OnceCell::new(),
        }
    }

    /// The bus, or why `source` cannot use it.
    pub(crate) fn get(&self, source: &'static str) -> Result<Arc<Bus>, SignalError> {
        self.bus
            .get_or_init(|| Bus::open(self.kind, self.address))
            .clone()
            .map_err(|reason| SignalError::new(source, reason))
    }
}

/// One connection to a message bus, reconnected on the next call after it
/// breaks.
pub(crate) struct Bus {
    kind: BusKind,
    address: String,
    connection: Mutex<Option<Connection>>,
    /// Always `Some` until dropped; taken out to shut it down without
    /// blocking, which a plain drop would do (and panic in async code).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bus {
    fn open(kind: BusKind, address: Option<&str>) -> Result<Arc<Bus>, String> {
        let address = address.ok_or_else(|| match kind {
            BusKind::Session => {
                "no session bus: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset".to_owned()
            }
            BusKind::System => "no system bus address".to_owned(),
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("metaclaw-dbus")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the D-Bus client: {e}"))?;
        let bus = Bus {
            kind,
            address: address.to_owned(),
            connection: Mutex::new(None),
            runtime: Some(runtime),
        };
        let target = bus.address.clone();
        match bus.run(async move { connect(&target).await }) {
            Some(Ok(connection)) => bus.keep(connection),
            Some(Err(e)) => return Err(bus.unreachable(&e)),
            None => return Err(bus.silent()),
        }
        Ok(Arc::new(bus))
    }

    /// Calls `method` and decodes its reply, connecting first if the last
    /// call broke the connection; all of it within [`CALL_TIMEOUT`].
    fn call<B, R>(&self, method: &'static Method, body: B) -> Result<R, SignalError>
    where
        B: Serialize + DynamicType + Send + Sync + 'static,
        R: for<'d> DynamicDeserialize<'d> + Send + 'static,
    {
        let cached = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let address = self.address.clone();
        let outcome = self.run(async move {
            let connection = match cached {
                Some(connection) => connection,
                None => connect(&address).await?,
            };
            let reply = invoke::<B, R>(&connection, method, &body).await;
            Ok::<_, zbus::Error>((connection, reply))
        });
        let Some(outcome) = outcome else {
            // A hung peer or daemon: start afresh next time.
            self.forget();
            return Err(method.error(format!(
                "no reply from {} on the {} bus within {} s",
                method.service,
                self.kind,
                CALL_TIMEOUT.as_secs()
            )));
        };
        let (connection, reply) = outcome.map_err(|e| method.error(self.unreachable(&e)))?;
        match reply {
            Ok(Some(value)) => {
                self.keep(connection);
                Ok(value)
            }
            Ok(None) => {
                self.keep(connection);
                Err(method.error(format!("{} sent no reply", method.what)))
            }
            Err(e) => {
                if answered(&e) {
                    self.keep(connection);
                } else {
                    self.forget();
                }
                Err(method.error(self.describe(method, &e)))
            }
        }
    }

    fn describe(&self, method: &Method, e: &zbus::Error) -> String {
        const PREFIX: &str = "org.freedesktop.DBus.Error.";
        let name = error_name(e);
        match name.as_deref().and_then(|n| n.strip_prefix(PREFIX)) {
            Some("ServiceUnknown" | "NameHasNoOwner") => {
                format!("{} not on the {} bus", method.service, self.kind)
            }
            Some("UnknownMethod" | "UnknownObject" | "UnknownInterface" | "UnknownProperty") => {
                format!(
                    "{} on the {} bus does not offer {}: {e}",
                    method.service, self.kind, method.what
                )
            }
            _ => format!("{} failed: {e}", method.what),
        }
    }

    /// Runs `work` on this bus's runtime and waits for it, at most
    /// [`CALL_TIMEOUT`]; `None` when it did not finish in time.
    fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let runtime = self.runtime.as_ref()?;
        let (done, result) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            if let Ok(value) = tokio::time::timeout(CALL_TIMEOUT, work).await {
                let _ = done.send(value);
            }
        });
        // The timeout above ends the task; the margin only guards against a
        // runtime that stopped polling altogether.
        result.recv_timeout(CALL_TIMEOUT * 2).ok()
    }

    fn keep(&self, connection: Connection) {
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(connection);
    }

    fn forget(&self) {
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn unreachable(&self, e: &zbus::Error) -> String {
        let detail = e.to_string();
        if detail.contains(&self.address) {
            format!("cannot connect to the {} bus: {detail}", self.kind)
        } else {
            format!(
                "cannot connect to the {} bus at {}: {detail}",
                self.kind, self.address
            )
        }
    }

    fn silent(&self) -> String {
        format!(
            "the {} bus at {} did not answer within {} s",
            self.kind,
            self.address,
            CALL_TIMEOUT.as_secs()
        )
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn connect(address: &str) -> zbus::Result<Connection> {
    zbus::connection::Builder::address(address)?.build().await
}

async fn invoke<B, R>(connection: &Connection, method: &Method, body: &B) -> zbus::Result<Option<R>>
where
    B: Serialize + DynamicType,
    R: for<'d> DynamicDeserialize<'d>,
{
    let proxy: zbus::Proxy<'_> = zbus::proxy::Builder::new(connection)
        .destination(method.service)?
        .path(method.path)?
        .interface(method.interface)?
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    // Probing must not launch a screen saver daemon that was not running.
    proxy
        .call_with_flags(method.member, MethodFlags::NoAutoStart.into(), body)
        .await
}

/// Whether the other end answered (with an error), so the connection works.
fn answered(e: &zbus::Error) -> bool {
    matches!(
        e,
        zbus::Error::MethodError(..) | zbus::Error::FDO(_) | zbus::Error::Variant(_)
    )
}

/// The D-Bus error name, when the error is a reply from the other end.
fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(fdo) => Some(fdo.name().to_string()),
        _ => None,
    }
}
