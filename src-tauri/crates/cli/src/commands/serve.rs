//! `metaclaw serve`: the proxy in the foreground until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use metaclaw_engine::Engine;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides proxy.host; keep it on loopback unless you mean to share the proxy).
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on (overrides proxy.port).
    #[arg(long)]
    port: Option<u16>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = super::load()?;
    let config = store.config().clone();
    let host = args.host.unwrap_or_else(|| config.proxy.host.clone());
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse()
            .with_context(|| format!("--host {host:?} is not an IP address such as 127.0.0.1"))?
    };
    let addr = SocketAddr::new(ip, args.port.unwrap_or(config.proxy.port));
    if !ip.is_loopback() {
        tracing::warn!(%addr, "the proxy is reachable from other machines; set proxy.api_key to require a key");
    }
    let engine = Engine::open(store.paths(), config)?;
    let listener = Engine::bind(addr).await?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!("metaclaw proxy listening on http://{local} (OpenAI: http://{local}/v1, Anthropic: http://{local})");
    engine
        .serve(listener, metaclaw_engine::shutdown_signal())
        .await?;
    Ok(ExitCode::SUCCESS)
}
