//! The engine, started in-process exactly as `metaclaw serve` starts it:
//! the config and paths from the engine, the proxy on the configured
//! loopback port.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use metaclaw_engine::config::ConfigStore;
use metaclaw_engine::paths::AppPaths;
use metaclaw_engine::proxy::ProxyState;
use metaclaw_engine::{Engine, EngineError};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Paths(#[from] metaclaw_engine::paths::PathsError),
    #[error(transparent)]
    Config(#[from] metaclaw_engine::config::ConfigError),
    #[error("proxy.host {0:?} is not an IP address such as 127.0.0.1")]
    Host(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The running engine.
pub struct Running {
    pub state: Arc<ProxyState>,
    stop: CancellationToken,
    serving: Mutex<Option<JoinHandle<Result<(), String>>>>,
    /// Why serving ended when nobody asked it to stop.
    died: tokio::sync::watch::Receiver<Option<String>>,
}

/// An API answer, as the `api` IPC command returns it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The API's error message, for the log and the status line.
    pub fn message(&self) -> String {
        self.body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("status {}", self.status))
    }

    /// What every call answers when the engine did not start, in the API's
    /// own error shape so the dashboard shows it like any other error.
    pub fn unavailable(why: &str) -> Reply {
        Reply {
            status: 503,
            body: json!({"error": {
                "code": "unavailable",
                "message": format!("the MetaClaw engine is not running: {why}"),
            }}),
        }
    }
}

/// Opens the engine and starts serving; must run inside the Tokio runtime.
pub async fn start() -> Result<Running, StartError> {
    let paths = AppPaths::resolve()?;
    let store = ConfigStore::open(&paths)?;
    let config = store.config().clone();
    let addr = listen_addr(&config.proxy.host, config.proxy.port)?;
    let engine = Engine::open(store.paths(), config)?;
    let listener = Engine::bind(addr).await?;
    let addr = listener.local_addr().unwrap_or(addr);
    let state = engine.state().clone();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let (death, died) = tokio::sync::watch::channel(None);
    let serving = tokio::spawn({
        let stop = stop.clone();
        async move {
            let result = engine
                .serve(listener, async move { stopped.cancelled().await })
                .await
                .map_err(|e| e.to_string());
            if !stop.is_cancelled() {
                let why = match &result {
                    Ok(()) => "the proxy stopped".to_owned(),
                    Err(error) => error.clone(),
                };
                tracing::error!(%why, "the engine stopped on its own");
                death.send_replace(Some(why));
            }
            result
        }
    });
    tracing::info!("metaclaw proxy listening on http://{addr} (OpenAI: http://{addr}/v1, Anthropic: http://{addr})");
    Ok(Running {
        state,
        stop,
        serving: Mutex::new(Some(serving)),
        died,
    })
}

impl Running {
    /// One API request through the same router `/api` serves over HTTP.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let reply = metaclaw_engine::api::call(&self.state, method, path, body).await;
        Reply {
            status: reply.status,
            body: reply.body,
        }
    }

    /// Resolves with the reason if serving ends without [`Running::stop`].
    pub async fn died(&self) -> String {
        let mut died = self.died.clone();
        let why = died
            .wait_for(Option::is_some)
            .await
            .map(|why| why.clone().unwrap_or_default());
        match why {
            Ok(why) => why,
            // The serving task is gone without a word: it was stopped.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops serving and waits until open sessions are ended and the store
    /// is flushed. Later calls return at once.
    pub async fn stop(&self) -> Result<(), String> {
        self.stop.cancel();
        let serving = self
            .serving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match serving {
            None => Ok(()),
            Some(task) => match task.await {
                Ok(result) => result,
                Err(e) => Err(format!("the engine task ended abnormally: {e}")),
            },
        }
    }
}

/// The proxy's address from `proxy.host` and `proxy.port`, as `metaclaw
/// serve` reads them (`localhost` is the IPv4 loopback).
fn listen_addr(host: &str, port: u16) -> Result<SocketAddr, StartError> {
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse()
            .map_err(|_| StartError::Host(host.to_owned()))?
    };
    if !ip.is_loopback() {
        tracing::warn!(%ip, "the proxy is reachable from other machines; set proxy.api_key to require a key");
    }
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_where_serve_does() {
        assert_eq!(
            listen_addr("localhost", 30000).unwrap(),
            "127.0.0.1:30000".parse().unwrap()
        );
        assert_eq!(listen_addr("::1", 9).unwrap(), "[::1]:9".parse().unwrap());
        assert!(matches!(
            listen_addr("my-box", 1),
            Err(StartError::Host(h)) if h == "my-box"
        ));
    }

    #[test]
    fn errors_read_the_api_message() {
        let reply = Reply::unavailable("cannot listen on 127.0.0.1:30000");
        assert!(!reply.is_success());
        assert_eq!(
            reply.message(),
            "the MetaClaw engine is not running: cannot listen on 127.0.0.1:30000"
        );
        assert_eq!(
            Reply {
                status: 500,
                body: Value::Null
            }
            .message(),
            "status 500"
        );
    }
}
