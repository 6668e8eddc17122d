//! `metaclaw status`: is the proxy up, and what it reports about itself.

use std::time::Duration;

use serde_json::Value;

/// What a probe of `GET /healthz` found.
#[derive(Debug, serde::Serialize)]
pub struct ProxyProbe {
    pub url: String,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub async fn probe_proxy(host: &str, port: u16) -> ProxyProbe {
    // A wildcard bind address is reached through loopback.
    let host = match host {
        "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        other => other,
    };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let url = format!("http://{authority}/healthz");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build();
    let result = match client {
        Ok(client) => client.get(&url).send().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(response) if response.status().is_success() => ProxyProbe {
            health: response.json().await.ok(),
            url,
            up: true,
            error: None,
        },
        Ok(response) => ProxyProbe {
            error: Some(format!("answered {}", response.status())),
            url,
            up: false,
            health: None,
        },
        Err(e) if e.is_connect() => ProxyProbe {
            error: Some("nothing is listening there".to_string()),
            url,
            up: false,
            health: None,
        },
        Err(e) => ProxyProbe {
            error: Some(crate::upstream::error_chain(&e)),
            url,
            up: false,
            health: None,
        },
    }
}
