//! `/api/skills*`: list and search the library, read one skill with its
//! provenance, history and effect, edit its SKILL.md, and the user's
//! actions (disable, enable, approve, reject, delete).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use metaclaw_skills::{Skill, SkillOrigin};
use metaclaw_store::SkillUsage;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{body, rfc3339, ApiError, ApiResult};
use crate::events::EngineEvent;
use crate::proxy::ProxyState;
use crate::skill_actions::{
    history_events, updated_at, SkillActionError, SkillActions, SkillChange, SkillProvenance,
};

impl From<SkillActionError> for ApiError {
    fn from(error: SkillActionError) -> ApiError {
        let message = error.to_string();
        match error {
            SkillActionError::InvalidName(_) => ApiError::bad_request(message),
            SkillActionError::NotFound { .. } => ApiError::not_found(message),
            SkillActionError::Conflict(_) => ApiError::conflict(message),
            SkillActionError::Invalid(_) => {
                let fields = BTreeMap::from([("markdown".to_owned(), message.clone())]);
                ApiError::invalid(format!("the SKILL.md was not saved: {message}"), fields)
            }
            SkillActionError::Skills(_) | SkillActionError::Store(_) => ApiError::internal(message),
        }
    }
}

/// Refuses anything but a slug before it comes near a path.
fn slug(name: &str) -> Result<(), ApiError> {
    metaclaw_skills::validate_name(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Usage counts from the store, by skill.
fn usage(state: &ProxyState) -> Result<HashMap<String, SkillUsage>, ApiError> {
    Ok(state.store.reader()?.skill_usage()?)
}

/// Use and effect as the API shows them.
fn usage_json(usage: Option<&SkillUsage>) -> Value {
    let u = usage.copied().unwrap_or_default();
    json!({
        "uses": u.injected,
        "first_used_at": u.first_used_ms.and_then(rfc3339),
        "last_used_at": u.last_used_ms.and_then(rfc3339),
        "scored": u.scored,
        "mean_score": u.mean_score,
        "baseline": u.baseline_mean,
        "baseline_scored": u.baseline_scored,
        "effect": u.effect(),
    })
}

fn summary(skill: &Skill, usage: Option<&SkillUsage>) -> Value {
    let mut item = json!({
        "name": skill.name,
        "description": skill.description,
        "status": skill.status.as_str(),
        "origin": skill.origin.as_str(),
        "category": skill.category,
        "disabled_reason": skill.disabled_reason(),
        "updated_at": updated_at(&skill.path),
    });
    if let (Some(item), Value::Object(usage)) = (item.as_object_mut(), usage_json(usage)) {
        item.extend(usage);
    }
    item
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    q: Option<String>,
    status: Option<String>,
}

pub(super) async fn list(
    State(state): State<Arc<ProxyState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let status = query.status.unwrap_or_else(|| "all".to_owned());
    if !matches!(status.as_str(), "all" | "active" | "pending" | "disabled") {
        return Err(ApiError::bad_request(format!(
            "status: `{status}` is not one of active, pending, disabled, all"
        )));
    }
    let words: Vec<String> = query
        .q
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    super::blocking(move || {
        let snapshot = state.library.snapshot();
        let usage = usage(&state)?;
        let skills: Vec<Value> = snapshot
            .skills()
            .iter()
            .filter(|s| status == "all" || s.status.as_str() == status)
            .filter(|s| {
                // Without a search, no lower-cased copy of every body.
                if words.is_empty() {
                    return true;
                }
                // Every word somewhere in the name, description or body.
                let text = format!("{}\n{}\n{}", s.name, s.description, s.body).to_lowercase();
                words.iter().all(|w| text.contains(w.as_str()))
            })
            .map(|s| summary(s, usage.get(&s.name)))
            .collect();
        Ok(Json(
            json!({"skills": skills, "problems": snapshot.problems()}),
        ))
    })
    .await
}

/// One skill in full: `GET /api/skills/{name}` and every action's answer.
fn detail(state: &ProxyState, name: &str) -> ApiResult {
    let snapshot = state.library.snapshot();
    let Some(skill) = snapshot.get(name).cloned() else {
        let folder = state.library.dir().join(name);
        let problem = snapshot
            .problems()
            .iter()
            .find(|p| p.path.starts_with(&folder));
        return Err(ApiError::not_found(match problem {
            Some(problem) => format!(
                "the skill `{name}` cannot be read: {}: {}",
                problem.path.display(),
                problem.reason
            ),
            None => format!(
                "no skill named `{name}` in {}",
                state.library.dir().display()
            ),
        }));
    };
    let reader = state.store.reader()?;
    let usage = reader.skill_usage()?.remove(name);
    let history: Vec<Value> = history_events(&reader, name)?
        .into_iter()
        .map(|e| {
            let mut event = json!({"at": rfc3339(e.at_ms), "kind": e.event});
            if let (Some(event), Ok(Value::Object(rest))) =
                (event.as_object_mut(), serde_json::to_value(&e))
            {
                for (key, value) in rest {
                    if !matches!(key.as_str(), "at_ms" | "event") {
                        event.insert(key, value);
                    }
                }
            }
            event
        })
        .collect();
    let markdown = std::fs::read_to_string(&skill.path).unwrap_or_else(|_| skill.to_markdown());
    let provenance = (skill.origin == SkillOrigin::Evolved).then(|| {
        let p = SkillProvenance::of(&skill);
        json!({
            "evolution_id": p.evolution_id,
            "session_id": p.session_id,
            "created_at": p.at,
            "turns": p.turns,
            "model": p.model,
            "text": p.describe(),
        })
    });
    let mut item = summary(&skill, usage.as_ref());
    if let Some(item) = item.as_object_mut() {
        item.insert("path".into(), json!(skill.path));
        item.insert("markdown".into(), json!(markdown));
        item.insert("body".into(), json!(skill.body));
        item.insert("front_matter".into(), front_matter(&skill));
        item.insert("provenance".into(), json!(provenance));
        item.insert("history".into(), json!(history));
        item.insert("usage".into(), usage_json(usage.as_ref()));
    }
    Ok(Json(item))
}

/// The front matter as JSON: the interpreted fields, then the rest.
fn front_matter(skill: &Skill) -> Value {
    let mut map = Map::new();
    map.insert("name".into(), json!(skill.name));
    map.insert("description".into(), json!(skill.description));
    if let Some(category) = &skill.category {
        map.insert("category".into(), json!(category));
    }
    map.insert("status".into(), json!(skill.status.as_str()));
    map.insert("origin".into(), json!(skill.origin.as_str()));
    if let Ok(Value::Object(extra)) = serde_json::to_value(&skill.extra) {
        for (key, value) in extra {
            map.entry(key).or_insert(value);
        }
    }
    Value::Object(map)
}

pub(super) async fn show(
    State(state): State<Arc<ProxyState>>,
    Path(name): Path<String>,
) -> ApiResult {
    slug(&name)?;
    super::blocking(move || detail(&state, &name)).await
}

/// Runs an action, waits for its record, and answers with the skill (or
/// `answer` when the skill is gone).
async fn act(
    state: Arc<ProxyState>,
    name: String,
    action: impl FnOnce(&SkillActions<'_>) -> Result<SkillChange, SkillActionError> + Send + 'static,
) -> Result<(SkillChange, Arc<ProxyState>), ApiError> {
    slug(&name)?;
    let change = super::blocking({
        let state = state.clone();
        move || {
            let trash = match state.paths() {
                Some(paths) => paths.skill_trash_dir(),
                // Hidden names are skipped by the library.
                None => state.library.dir().join(".trash"),
            };
            let actions = SkillActions {
                library: &state.library,
                store: &state.store,
                trash,
                proxy: Some(&state),
            };
            Ok(action(&actions)?)
        }
    })
    .await?;
    // The history the answer shows includes this change.
    state.store.flush().await.map_err(ApiError::from)?;
    tracing::info!(skill = %change.name, action = %change.action, "{}", change.message);
    Ok((change, state))
}

async fn act_and_show(
    state: Arc<ProxyState>,
    name: String,
    action: impl FnOnce(&SkillActions<'_>) -> Result<SkillChange, SkillActionError> + Send + 'static,
) -> ApiResult {
    let (change, state) = act(state, name, action).await?;
    super::blocking(move || detail(&state, &change.name)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditRequest {
    markdown: String,
}

pub(super) async fn edit(
    State(state): State<Arc<ProxyState>>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: EditRequest = body(&bytes, "{\"markdown\": \"<the whole SKILL.md>\"}")?;
    act_and_show(state, name.clone(), move |a| {
        a.edit(&name, &request.markdown)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DisableRequest {
    reason: Option<String>,
}

pub(super) async fn disable(
    State(state): State<Arc<ProxyState>>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: DisableRequest = body(&bytes, "{\"reason\": \"<why>\"} or nothing")?;
    let events = state.events.clone();
    let (change, state) = act(state, name.clone(), {
        let name = name.clone();
        move |a| a.disable(&name, request.reason.as_deref())
    })
    .await?;
    let answer = super::blocking(move || detail(&state, &change.name)).await?;
    let reason = answer.0["disabled_reason"].as_str().unwrap_or_default();
    events.publish(EngineEvent::SkillDisabled {
        name,
        reason: reason.to_owned(),
    });
    Ok(answer)
}

pub(super) async fn enable(
    State(state): State<Arc<ProxyState>>,
    Path(name): Path<String>,
) -> ApiResult {
    act_and_show(state, name.clone(), move |a| a.enable(&name)).await
}

pub(super) async fn approve(
    State(state): State<Arc<ProxyState>>,
    Path(name): Path<String>,
) -> ApiResult {
    act_and_show(state, name.clone(), move |a| a.approve(&name)).await
}

pub(super) async fn reject(
    State(state): State<Arc<ProxyState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let (change, _) = act(state, name.clone(), move |a| a.reject(&name)).await?;
    Ok(Json(
        json!({"rejected": change.name, "message": change.message}),
    ))
}

pub(super) async fn delete(
    State(state): State<Arc<ProxyState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let (change, _) = act(state, name.clone(), move |a| a.delete(&name)).await?;
    Ok(Json(
        json!({"deleted": change.name, "message": change.message}),
    ))
}
