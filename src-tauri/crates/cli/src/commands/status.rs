//! `metaclaw status`: the proxy, the mode, the upstream and the library at a glance.

use std::process::ExitCode;

use metaclaw_engine::env_var;
use metaclaw_engine::status::probe_proxy;
use serde_json::json;

use crate::output::{outln, print_json};

pub async fn run(json: bool) -> anyhow::Result<ExitCode> {
    let store = super::load()?;
    let config = store.config();
    let probe = probe_proxy(&config.proxy.host, config.proxy.port).await;
    let library = metaclaw_engine::open_library(store.paths(), config)?;
    let snapshot = library.snapshot();
    let upstream = config.resolve_upstream(&env_var);
    if json {
        return print_json(&json!({
            "proxy": probe,
            "mode": config.mode.to_string(),
            "upstream": upstream.as_ref().map(|u| json!({
                "api": u.api.to_string(), "base_url": u.base_url, "model": u.model,
                "api_key": u.api_key.masked(),
            })),
            "skills": {"dir": library.dir(), "count": snapshot.len(), "problems": snapshot.problems()},
        }));
    }
    if probe.up {
        outln!("proxy     up at {}", probe.url.trim_end_matches("/healthz"));
    } else {
        outln!(
            "proxy     not running ({}: {})",
            probe.url,
            probe.error.as_deref().unwrap_or("no answer")
        );
    }
    outln!("mode      {}", config.mode);
    match &upstream {
        Some(u) => {
            let model = u.model.as_deref().unwrap_or("client's choice");
            outln!(
                "upstream  {} at {} (model: {model}, key: {})",
                u.api,
                u.base_url,
                u.api_key.masked()
            );
        }
        None => {
            outln!("upstream  not configured: run `metaclaw config set upstream.base_url URL`")
        }
    }
    outln!(
        "skills    {} in {}",
        snapshot.len(),
        library.dir().display()
    );
    if !snapshot.problems().is_empty() {
        outln!(
            "problems  {} (see `metaclaw skills check`)",
            snapshot.problems().len()
        );
        for problem in snapshot.problems() {
            outln!("  {}: {}", problem.path.display(), problem.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}
