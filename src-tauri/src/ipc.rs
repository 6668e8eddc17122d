//! The web views' one command: the engine API, in-process.

use serde_json::Value;
use tauri::State;

use crate::engine::Reply;
use crate::shell::Shell;

/// `invoke('api', {method, path, body})` → `{status, body}`: the same router
/// `/api` serves over HTTP, without the network or the admin token (the
/// capability granting this command is the permission). Failures, a bad
/// path included, are replies with an error body, never a rejected promise.
#[tauri::command]
pub async fn api(
    shell: State<'_, Shell>,
    method: String,
    path: String,
    body: Option<Value>,
) -> Result<Reply, ()> {
    Ok(shell.api(&method, &path, body).await)
}
