//! `/api/settings`: every setting with the keys masked, provider presets
//! and the calendars' state; saving validates everything first.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::json;

use super::{body, ApiError, ApiResult};
use crate::config::ChangeError;
use crate::proxy::ProxyState;
use crate::settings::{SettingsChange, SettingsError};

impl From<SettingsError> for ApiError {
    fn from(error: SettingsError) -> ApiError {
        match error {
            SettingsError::Unavailable => ApiError::unavailable(error.to_string()),
            SettingsError::Change(ChangeError::Invalid(fields)) => ApiError::invalid(
                format!("nothing was saved: {} invalid", plural(fields.len())),
                fields,
            ),
            SettingsError::Change(ChangeError::Config(error)) => {
                ApiError::internal(error.to_string())
            }
        }
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 setting is".to_owned()
    } else {
        format!("{n} settings are")
    }
}

pub(super) async fn get(State(state): State<Arc<ProxyState>>) -> ApiResult {
    super::blocking(move || Ok(Json(json!(crate::settings::view(&state)?)))).await
}

pub(super) async fn put(State(state): State<Arc<ProxyState>>, bytes: Bytes) -> ApiResult {
    let change: SettingsChange = body(
        &bytes,
        "{\"values\": {\"key\": value}, \"secrets\": {\"key\": \"value\" | null}}",
    )?;
    super::blocking(move || Ok(Json(json!(crate::settings::change(&state, change)?)))).await
}
