//! A `metaclaw serve` child process for the benchmarks that measure the
//! real binary: where the binary is, `config set`, start and wait for
//! health, stop on drop.

// Each benchmark binary includes this file and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running `metaclaw serve`; killed when dropped.
pub struct Proxy {
    pub child: Child,
    pub port: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `metaclaw config set` for each pair.
pub fn configure(binary: &Path, home: &Path, settings: &[(&str, &str)]) -> anyhow::Result<()> {
    for (key, value) in settings {
        let status = Command::new(binary)
            .args(["config", "set", key, value])
            .env("METACLAW_HOME", home)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "metaclaw config set {key} failed");
    }
    Ok(())
}

pub async fn start_proxy(binary: &Path, home: &Path) -> anyhow::Result<(Proxy, Duration)> {
    let port = free_port()?;
    let log = std::fs::File::create(home.join("serve.log"))?;
    let started = Instant::now();
    let child = Command::new(binary)
        .args(["serve", "--port", &port.to_string()])
        .env("METACLAW_HOME", home)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting metaclaw serve")?;
    let proxy = Proxy { child, port };
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(response) = client.get(&url).send().await {
            if response.status().is_success() {
                return Ok((proxy, started.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bail!(
        "metaclaw serve did not become healthy; see {}",
        home.join("serve.log").display()
    )
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `METACLAW_BIN`, or the `metaclaw` built next to this benchmark.
pub fn metaclaw_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("METACLAW_BIN") {
        return Ok(PathBuf::from(path));
    }
    let sibling = std::env::current_exe()?.with_file_name("metaclaw");
    anyhow::ensure!(
        sibling.exists(),
        "build the proxy first: cargo build --release -p metaclaw-cli"
    );
    Ok(sibling)
}
