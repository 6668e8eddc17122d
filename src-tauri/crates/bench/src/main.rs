//! `metaclaw-bench`: measures what the proxy adds, against a fast local
//! upstream, in one run: added latency at a fixed request rate, added
//! time-to-first-byte for streams, retrieval time, idle memory and start-up.
//!
//! Run with `bash .ci/bench` (builds release binaries first).

mod corpus;
mod load;
mod serve;
mod upstream;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use metaclaw_skills::LibrarySnapshot;
use serve::{configure, metaclaw_binary, start_proxy};

const RATE: u32 = 1_000;
const PHASE: Duration = Duration::from_secs(3);
const PHASES: usize = 4;
const TTFB_SAMPLES: usize = 300;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let binary = metaclaw_binary()?;
    let home = tempfile::tempdir()?;
    let skills_dir = home.path().join("library");
    corpus::write_library(&skills_dir, &corpus::synthetic_skills(1_000, 1))?;
    let upstream = upstream::start().await?;
    configure(
        &binary,
        home.path(),
        &[
            ("upstream.base_url", &format!("http://{upstream}/v1")),
            ("upstream.api_key", "bench-key"),
            ("skills.dir", &skills_dir.display().to_string()),
        ],
    )?;

    println!(
        "metaclaw benchmark: {} cores, upstream on {upstream}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut starts = Vec::new();
    for _ in 0..5 {
        let (proxy, elapsed) = start_proxy(&binary, home.path()).await?;
        starts.push(elapsed);
        drop(proxy);
    }
    let (proxy, elapsed) = start_proxy(&binary, home.path()).await?;
    starts.push(elapsed);
    let health: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{}/healthz", proxy.port))
            .await?
            .json()
            .await?;
    anyhow::ensure!(
        health["skills"] == 1_000 && health["skill_problems"] == 0,
        "the proxy did not load the 1,000 benchmark skills: {health}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_mb(proxy.child.id())?;

    let retrieval = retrieval_times();

    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let direct_url = format!("http://{upstream}/v1/chat/completions");
    let proxy_url = format!("http://127.0.0.1:{}/v1/chat/completions", proxy.port);
    let small = Arc::new(serde_json::to_vec(&corpus::small_request(false))?);

    let (direct, proxied, mut failures) = latency(&client, &direct_url, &proxy_url, &small).await;
    let loaded_rss = rss_mb(proxy.child.id())?;

    let small_stream = serde_json::to_vec(&corpus::small_request(true))?;
    let openclaw = serde_json::to_vec(&corpus::openclaw_request())?;
    let ttfb_small = ttfb_pair(&client, &direct_url, &proxy_url, &small_stream).await?;
    let ttfb_openclaw = ttfb_pair(&client, &direct_url, &proxy_url, &openclaw).await?;

    // The same latency run with the fast loop on — the PRM judge scoring
    // turns (3 votes, 4 turns at a time) and the evolver writing skills every
    // 10 turns; the local upstream doubles as both. Twice: a fast fake that
    // answers at once, then one that answers after 0.5 s / 2 s like remote
    // LLMs. Learning runs off the request path, so both should match.
    drop(proxy);
    configure(
        &binary,
        home.path(),
        &[
            ("prm.model", upstream::JUDGE_MODEL),
            ("prm.enabled", "true"),
            ("evolver.model", upstream::EVOLVER_MODEL),
            ("evolver.enabled", "true"),
        ],
    )?;
    let mut learning_rows = Vec::new();
    for (realistic, label) in [
        (false, "a fast fake judge and evolver (instant answers)"),
        (true, "judge and evolver answering in 0.5 s / 2 s"),
    ] {
        upstream::set_learning_delays(realistic);
        let judged_before = judged_turns(&binary, home.path())?;
        let evolutions_before = evolutions(home.path())?;
        let (learning_proxy, _) = start_proxy(&binary, home.path()).await?;
        let learning_url = format!(
            "http://127.0.0.1:{}/v1/chat/completions",
            learning_proxy.port
        );
        let (direct_learning, proxied_learning, failed) =
            latency(&client, &direct_url, &learning_url, &small).await;
        failures += failed;
        drop(learning_proxy);
        let judged = judged_turns(&binary, home.path())? - judged_before;
        let evolved = evolutions(home.path())? - evolutions_before;
        learning_rows.push(format!(
            "| latency p50 / p99, same load with {label}: {judged} turns judged, {evolved} evolutions | {:.3} / {:.3} ms | {:.3} / {:.3} ms | **{:.3} / {:.3} ms** | same as above |",
            direct_learning.p50,
            direct_learning.p99,
            proxied_learning.p50,
            proxied_learning.p99,
            proxied_learning.p50 - direct_learning.p50,
            proxied_learning.p99 - direct_learning.p99
        ));
    }

    println!("| measure | direct | through proxy | added | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| latency p50, ~1 KB request at {RATE} req/s, 1,000 skills, recording on | {:.3} ms | {:.3} ms | **{:.3} ms** | < 0.3 ms |",
        direct.p50, proxied.p50, proxied.p50 - direct.p50
    );
    println!(
        "| latency p99, same run | {:.3} ms | {:.3} ms | **{:.3} ms** | < 1 ms |",
        direct.p99,
        proxied.p99,
        proxied.p99 - direct.p99
    );
    for row in &learning_rows {
        println!("{row}");
    }
    println!(
        "| stream time to first byte p50, ~1 KB request | {:.3} ms | {:.3} ms | **{:.3} ms** | < 1 ms |",
        ttfb_small.0.p50, ttfb_small.1.p50, ttfb_small.1.p50 - ttfb_small.0.p50
    );
    println!(
        "| stream time to first byte p50, OpenClaw-sized request ({} KB) | {:.3} ms | {:.3} ms | **{:.3} ms** | < 1 ms |",
        openclaw.len() / 1024,
        ttfb_openclaw.0.p50,
        ttfb_openclaw.1.p50,
        ttfb_openclaw.1.p50 - ttfb_openclaw.0.p50
    );
    println!("\n| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| retrieval over 10,000 skills, p50 / p99 per query | **{:.3} / {:.3} ms** | < 0.2 ms |",
        retrieval.p50, retrieval.p99
    );
    println!("| idle resident memory (1,000 skills loaded) | **{idle_rss:.1} MB** | < 30 MB |");
    println!("| resident memory after the load test | {loaded_rss:.1} MB | |");
    starts.sort_by(Duration::cmp);
    println!(
        "| start to healthy, median of {} (first: {:.0} ms, creates the database) | **{:.0} ms** | < 200 ms |",
        starts.len(),
        elapsed_ms(starts[0]),
        elapsed_ms(starts[starts.len() / 2])
    );
    println!(
        "\nrequests: {} direct, {} through the proxy, {failures} failed",
        direct.count, proxied.count
    );
    Ok(())
}

/// Open-loop load at [`RATE`], alternating direct and proxied phases after a
/// warm-up; returns (direct, proxied, failures).
async fn latency(
    client: &reqwest::Client,
    direct_url: &str,
    proxy_url: &str,
    body: &Arc<Vec<u8>>,
) -> (load::Percentiles, load::Percentiles, usize) {
    // Warm both paths (connection pools, page cache, SQLite) before measuring.
    for url in [direct_url, proxy_url] {
        load::open_loop(client, url, body.clone(), RATE, Duration::from_secs(1)).await;
    }
    let (mut direct, mut proxied, mut failures) = (Vec::new(), Vec::new(), 0);
    for phase in 0..PHASES {
        let url = if phase % 2 == 0 {
            direct_url
        } else {
            proxy_url
        };
        let (samples, failed) = load::open_loop(client, url, body.clone(), RATE, PHASE).await;
        failures += failed;
        if phase % 2 == 0 {
            direct.extend(samples);
        } else {
            proxied.extend(samples);
        }
    }
    (
        load::percentiles(direct),
        load::percentiles(proxied),
        failures,
    )
}

/// How many evolutions ran, read from the database.
fn evolutions(home: &Path) -> anyhow::Result<usize> {
    let conn = rusqlite::Connection::open(home.join("metaclaw.db"))?;
    let n: i64 = conn.query_row("SELECT count(*) FROM evolutions", [], |row| row.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// How many turns the judge scored, read through `metaclaw sessions`.
fn judged_turns(binary: &Path, home: &Path) -> anyhow::Result<usize> {
    let sessions = Command::new(binary)
        .args(["sessions", "list", "--json", "--limit", "1000"])
        .env("METACLAW_HOME", home)
        .output()?;
    let sessions: serde_json::Value = serde_json::from_slice(&sessions.stdout)?;
    let mut judged = 0;
    for session in sessions.as_array().into_iter().flatten() {
        let id = session["id"].as_str().unwrap_or_default();
        let shown = Command::new(binary)
            .args(["sessions", "show", id, "--json"])
            .env("METACLAW_HOME", home)
            .output()?;
        let detail: serde_json::Value = serde_json::from_slice(&shown.stdout)?;
        judged += detail["turns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|turn| !turn["score"].is_null())
            .count();
    }
    Ok(judged)
}

/// Alternates direct and proxied streaming requests; returns (direct, proxied).
async fn ttfb_pair(
    client: &reqwest::Client,
    direct: &str,
    proxy: &str,
    body: &[u8],
) -> anyhow::Result<(load::Percentiles, load::Percentiles)> {
    for _ in 0..20 {
        load::time_to_first_byte(client, direct, body).await?;
        load::time_to_first_byte(client, proxy, body).await?;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..TTFB_SAMPLES {
        a.push(load::time_to_first_byte(client, direct, body).await?);
        b.push(load::time_to_first_byte(client, proxy, body).await?);
    }
    Ok((load::percentiles(a), load::percentiles(b)))
}

fn retrieval_times() -> load::Percentiles {
    let snapshot = LibrarySnapshot::from_skills(corpus::synthetic_skills(10_000, 2));
    assert_eq!(
        snapshot.len(),
        10_000,
        "the synthetic library must load in full"
    );
    let queries = corpus::queries(200, 3);
    for query in &queries {
        std::hint::black_box(snapshot.search(query, 6));
    }
    let mut samples = Vec::with_capacity(queries.len() * 20);
    for _ in 0..20 {
        for query in &queries {
            let start = Instant::now();
            std::hint::black_box(snapshot.search(query, 6));
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    load::percentiles(samples)
}

fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kb / 1024.0)
}

fn elapsed_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
