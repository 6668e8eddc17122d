//! `GET /v1/models`: the configured model, or the upstream's list, in the
//! format of the client asking (Anthropic clients send `anthropic-version`).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use metaclaw_dialect::Dialect;
use serde_json::{json, Value};

use super::error::ProxyError;
use super::ProxyState;

pub async fn list(state: &ProxyState, headers: HeaderMap) -> Response {
    let client = if headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    };
    match models(state, client, &headers).await {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.to_string(),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "listing models failed");
            error.into_response(client)
        }
    }
}

async fn models(
    state: &ProxyState,
    client: Dialect,
    headers: &HeaderMap,
) -> Result<Value, ProxyError> {
    state.check_auth(headers)?;
    let upstream = state.upstream.as_ref().ok_or(ProxyError::NoUpstream)?;
    if let Some(model) = &upstream.target().model {
        return Ok(model_list(client, std::slice::from_ref(model)));
    }
    let response = upstream.get_models(headers).await?;
    let status = response.status();
    let body = tokio::time::timeout(upstream.timeout, response.bytes())
        .await
        .map_err(|_| ProxyError::UpstreamInvalid("the model list did not arrive in time".into()))?
        .map_err(|e| ProxyError::UpstreamInvalid(crate::upstream::error_chain(&e)))?;
    if !status.is_success() {
        return Err(ProxyError::from_upstream_status(
            status,
            upstream.api(),
            body,
            None,
        ));
    }
    let list: Value = serde_json::from_slice(&body)
        .map_err(|e| ProxyError::UpstreamInvalid(format!("model list is not JSON: {e}")))?;
    if upstream.api() == client {
        return Ok(list);
    }
    let ids: Vec<String> = list
        .get("data")
        .and_then(Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(model_list(client, &ids))
}

fn model_list(client: Dialect, ids: &[String]) -> Value {
    match client {
        Dialect::OpenAi => json!({
            "object": "list",
            "data": ids.iter().map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "metaclaw"})).collect::<Vec<_>>(),
        }),
        Dialect::Anthropic => json!({
            "data": ids.iter().map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"})).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": ids.first(),
            "last_id": ids.last(),
        }),
    }
}
