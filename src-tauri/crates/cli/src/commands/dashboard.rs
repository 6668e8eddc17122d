//! `metaclaw dashboard`: opens the running server's dashboard in the
//! default browser, signed in with the admin token (in the URL fragment,
//! which the browser never sends to a server).

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use metaclaw_engine::api::AdminToken;
use metaclaw_engine::status::probe_proxy;

use crate::output::outln;

#[derive(clap::Args)]
pub struct DashboardArgs {
    /// Print the dashboard's address instead of opening a browser (it
    /// holds the admin token: treat it like a password).
    #[arg(long)]
    print_url: bool,
    /// The port the server listens on, when it was started with `--port`
    /// (default: proxy.port).
    #[arg(long)]
    port: Option<u16>,
}

pub async fn run(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    let store = super::load()?;
    let config = store.config();
    let port = args.port.unwrap_or(config.proxy.port);
    let probe = probe_proxy(&config.proxy.host, port).await;
    let base = probe.url.trim_end_matches("/healthz").to_owned();
    let healthy = probe
        .health
        .as_ref()
        .is_some_and(|h| h["status"] == "ok" && h["version"].is_string());
    if !probe.up || !healthy {
        bail!(
            "metaclaw is not running at {base} ({}); start it with `metaclaw serve` (or the tray app), or pass --port if it listens elsewhere",
            probe.error.as_deref().unwrap_or("it did not answer as metaclaw")
        );
    }
    let token = AdminToken::read(store.paths()).ok_or_else(|| {
        anyhow!(
            "no admin token in {}; the server creates it when it starts: is the server using another METACLAW_HOME?",
            store.paths().admin_token_file().display()
        )
    })?;
    let url = format!("{base}/ui/#token={}", token.expose());
    if args.print_url {
        outln!("{url}");
        return Ok(ExitCode::SUCCESS);
    }
    match webbrowser::open(&url) {
        Ok(()) => {
            outln!("opened the dashboard at {base}/ui/");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: cannot start a browser ({error}); open this address yourself:");
            outln!("{url}");
            Ok(ExitCode::FAILURE)
        }
    }
}
