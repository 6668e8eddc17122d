//! Load generation and latency statistics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub count: usize,
}

pub fn percentiles(mut samples: Vec<f64>) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if samples.is_empty() {
            return f64::NAN;
        }
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index.min(samples.len() - 1)]
    };
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        count: samples.len(),
    }
}

/// Sends `body` to `url` at a fixed rate for `duration` (open loop: a slow
/// answer never delays the next request) and returns each request's latency
/// in milliseconds. Failed requests are counted separately.
pub async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    body: Arc<Vec<u8>>,
    rate_per_sec: u32,
    duration: Duration,
) -> (Vec<f64>, usize) {
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(
        (rate_per_sec as f64 * duration.as_secs_f64()) as usize,
    )));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate_per_sec));
    let total = (duration.as_secs_f64() * f64::from(rate_per_sec)) as u64;
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        let (latencies, failures) = (latencies.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let result = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.as_ref().clone())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => {
                    if response.bytes().await.is_ok() {
                        latencies
                            .lock()
                            .await
                            .push(sent.elapsed().as_secs_f64() * 1000.0);
                        return;
                    }
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                _ => {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let samples = std::mem::take(&mut *latencies.lock().await);
    (samples, failures.load(std::sync::atomic::Ordering::Relaxed))
}

/// Time from sending a streaming request to the first body bytes, in ms.
pub async fn time_to_first_byte(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
) -> anyhow::Result<f64> {
    let sent = Instant::now();
    let mut response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    let first = response.chunk().await?;
    let ttfb = sent.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(first.is_some(), "empty stream");
    while response.chunk().await?.is_some() {}
    Ok(ttfb)
}
