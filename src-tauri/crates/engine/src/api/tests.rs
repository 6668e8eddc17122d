//! The API through [`call`] (the tray's in-process transport) and through
//! the router as HTTP sees it, on a real engine: a skill library folder, a
//! SQLite store and a config folder in a temporary home.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use super::{call, router, ApiReply};
use crate::config::Config;
use crate::paths::AppPaths;
use crate::proxy::ProxyState;
use crate::Engine;

struct Running {
    home: tempfile::TempDir,
    engine: Engine,
}

impl Running {
    fn state(&self) -> &Arc<ProxyState> {
        self.engine.state()
    }

    fn library(&self) -> std::path::PathBuf {
        self.home.path().join("library")
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> ApiReply {
        call(self.state(), method, path, body).await
    }
}

fn write_skill(library: &std::path::Path, name: &str, extra: &str, body: &str) {
    let dir = library.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: Use when {name} matters\n{extra}---\n{body}\n"),
    )
    .unwrap();
}

fn start() -> Running {
    let home = tempfile::tempdir().unwrap();
    let library = home.path().join("library");
    write_skill(
        &library,
        "zebra-care",
        "category: animals\n",
        "Brush the zebra daily.",
    );
    write_skill(
        &library,
        "waiting-one",
        "status: pending\norigin: evolved\nevolution_id: ev-1\nevolved_from_session: s-1\n",
        "Pending advice.",
    );
    let mut config = Config::default();
    config.skills.dir = library.display().to_string();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "# my settings\n[skills]\ndir = {:?}\n",
            library.display().to_string()
        ),
    )
    .unwrap();
    let engine = Engine::open(&AppPaths::under(home.path()), config).unwrap();
    Running { home, engine }
}

fn code(reply: &ApiReply) -> &str {
    reply.body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn http_requests_without_the_admin_token_get_a_json_401() {
    let running = start();
    for auth in [None, Some("Bearer wrong-token")] {
        let mut request = Request::get("/api/overview");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let response = tower::ServiceExt::oneshot(
            router(running.state().clone()),
            request.body(Body::empty()).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let reply = super::reply(response).await;
        assert_eq!(code(&reply), "unauthorized", "{reply:?}");
    }
    // `call` adds the token itself.
    assert_eq!(running.call("GET", "/api/overview", None).await.status, 200);
}

#[tokio::test]
async fn call_runs_the_router_in_process() {
    let running = start();
    let overview = running.call("get", "/api/overview", None).await;
    assert_eq!(overview.status, 200, "{overview:?}");
    let body = &overview.body;
    assert_eq!(body["mode"], "auto");
    assert_eq!(
        body["skills"],
        json!({"active": 1, "pending": 1, "disabled": 0, "problems": 0})
    );
    assert_eq!(body["state"], "disabled", "no scheduler runs here");
    assert_eq!(body["training"], Value::Null);

    let unknown = running.call("GET", "/api/nothing-here", None).await;
    assert_eq!((unknown.status, code(&unknown)), (404, "not_found"));
    let outside = running.call("GET", "/healthz", None).await;
    assert_eq!((outside.status, code(&outside)), (400, "bad_request"));
    let stream = running.call("GET", "/api/events", None).await;
    assert_eq!(stream.status, 400);
    let schedule = running.call("GET", "/api/schedule", None).await;
    assert_eq!((schedule.status, code(&schedule)), (503, "unavailable"));
    let bad_body = running
        .call("PUT", "/api/skills/zebra-care", Some(json!({"text": "x"})))
        .await;
    assert_eq!((bad_body.status, code(&bad_body)), (400, "bad_request"));
}

#[tokio::test]
async fn skills_are_listed_searched_and_shown() {
    let running = start();
    let all = running.call("GET", "/api/skills", None).await;
    let names: Vec<&str> = all.body["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["waiting-one", "zebra-care"]);
    let found = running.call("GET", "/api/skills?q=BRUSH", None).await;
    assert_eq!(found.body["skills"][0]["name"], "zebra-care");
    assert_eq!(found.body["skills"].as_array().unwrap().len(), 1);
    let pending = running
        .call("GET", "/api/skills?status=pending", None)
        .await;
    assert_eq!(pending.body["skills"][0]["name"], "waiting-one");
    let bad = running.call("GET", "/api/skills?status=odd", None).await;
    assert_eq!(bad.status, 400);

    let shown = running.call("GET", "/api/skills/waiting-one", None).await;
    assert_eq!(shown.status, 200, "{shown:?}");
    assert_eq!(shown.body["provenance"]["evolution_id"], "ev-1");
    assert_eq!(shown.body["front_matter"]["status"], "pending");
    assert!(shown.body["markdown"]
        .as_str()
        .unwrap()
        .contains("Pending advice."));
    assert_eq!(shown.body["usage"]["uses"], 0);
    assert_eq!(shown.body["usage"]["effect"], Value::Null);

    for bad_name in ["Zebra", "..%2Fescape", "a_b"] {
        let reply = running
            .call("GET", &format!("/api/skills/{bad_name}"), None)
            .await;
        assert_eq!(
            (reply.status, code(&reply)),
            (400, "bad_request"),
            "{bad_name}"
        );
    }
    let missing = running.call("GET", "/api/skills/no-such", None).await;
    assert_eq!((missing.status, code(&missing)), (404, "not_found"));
}

#[tokio::test]
async fn edits_are_validated_and_written_as_given() {
    let running = start();
    let file = running.library().join("zebra-care").join("SKILL.md");
    let before = std::fs::read_to_string(&file).unwrap();
    let broken = running
        .call(
            "PUT",
            "/api/skills/zebra-care",
            Some(json!({"markdown": "---\nname: zebra-care\n---\nno description\n"})),
        )
        .await;
    assert_eq!(
        (broken.status, code(&broken)),
        (422, "invalid"),
        "{broken:?}"
    );
    assert!(broken.body["error"]["fields"]["markdown"]
        .as_str()
        .unwrap()
        .contains("description"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    let text =
        "---\nname: zebra-care\ndescription: Use when a zebra needs care\n---\nBrush twice.\n";
    let edited = running
        .call(
            "PUT",
            "/api/skills/zebra-care",
            Some(json!({"markdown": text})),
        )
        .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    assert_eq!(edited.body["body"], "Brush twice.\n");
    assert_eq!(edited.body["history"][0]["kind"], "edited");
    // Injected text changed: requests from now on are a new generation.
    assert_eq!(running.state().skill_generation(), 1);
}

#[tokio::test]
async fn status_actions_and_delete_keep_everything_recoverable() {
    let running = start();
    let disabled = running
        .call(
            "POST",
            "/api/skills/zebra-care/disable",
            Some(json!({"reason": "no zebras here"})),
        )
        .await;
    assert_eq!(disabled.status, 200, "{disabled:?}");
    assert_eq!(disabled.body["status"], "disabled");
    assert_eq!(disabled.body["disabled_reason"], "no zebras here");
    let again = running
        .call("POST", "/api/skills/zebra-care/disable", None)
        .await;
    assert_eq!((again.status, code(&again)), (409, "conflict"));
    let enabled = running
        .call("POST", "/api/skills/zebra-care/enable", None)
        .await;
    assert_eq!(enabled.body["status"], "active");
    let kinds: Vec<&str> = enabled.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["disabled", "enabled"]);

    let not_pending = running
        .call("POST", "/api/skills/zebra-care/approve", None)
        .await;
    assert_eq!(not_pending.status, 409);
    let approved = running
        .call("POST", "/api/skills/waiting-one/approve", None)
        .await;
    assert_eq!(approved.body["status"], "active", "{approved:?}");

    let deleted = running.call("DELETE", "/api/skills/zebra-care", None).await;
    assert_eq!(deleted.body["deleted"], "zebra-care", "{deleted:?}");
    assert!(!running.library().join("zebra-care").exists());
    let trash = AppPaths::under(running.home.path()).skill_trash_dir();
    let kept: Vec<_> = std::fs::read_dir(&trash).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].path().join("SKILL.md").is_file());
    let gone = running.call("DELETE", "/api/skills/zebra-care", None).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn settings_are_validated_whole_and_applied_live() {
    let running = start();
    let config_file = running.home.path().join("config.toml");
    let before = std::fs::read_to_string(&config_file).unwrap();
    let view = running.call("GET", "/api/settings", None).await;
    assert_eq!(view.status, 200, "{view:?}");
    assert_eq!(view.body["values"]["skills.top_k"], 6);
    assert_eq!(view.body["values"]["notifications.skill_learned"], true);
    assert_eq!(view.body["secrets"]["upstream.api_key"]["set"], false);
    assert_eq!(view.body["secrets"]["upstream.api_key"]["store"], "file");
    let ids: Vec<&str> = view.body["presets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "openai",
            "anthropic",
            "openrouter",
            "kimi",
            "qwen",
            "ollama",
            "custom"
        ]
    );

    let refused = running
        .call(
            "PUT",
            "/api/settings",
            Some(json!({"values": {"skills.top_k": 0, "proxy.port": "x", "skills.review": "manual"}})),
        )
        .await;
    assert_eq!(
        (refused.status, code(&refused)),
        (422, "invalid"),
        "{refused:?}"
    );
    let fields = refused.body["error"]["fields"].as_object().unwrap();
    assert!(fields.contains_key("skills.top_k") && fields.contains_key("proxy.port"));
    assert_eq!(std::fs::read_to_string(&config_file).unwrap(), before);

    let mut events = running.state().events.subscribe();
    let saved = running
        .call(
            "PUT",
            "/api/settings",
            Some(json!({
                "values": {"skills.top_k": 2, "upstream.base_url": "http://127.0.0.1:9/v1"},
                "secrets": {"upstream.api_key": "sk-live-0123456789abcdef"},
            })),
        )
        .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    assert_eq!(saved.body["applied"], json!(["skills.top_k"]));
    let restart = saved.body["restart_required"].as_array().unwrap();
    assert!(
        restart.contains(&json!("upstream.base_url"))
            && restart.contains(&json!("upstream.api_key"))
    );
    assert_eq!(running.state().live_config().skills.top_k, 2);
    let text = std::fs::read_to_string(&config_file).unwrap();
    assert!(
        text.starts_with("# my settings") && text.contains("top_k = 2"),
        "{text}"
    );
    assert!(!text.contains("sk-live"), "{text}");
    match events.recv().await.unwrap() {
        crate::events::EngineEvent::SettingsChanged { keys } => assert_eq!(
            keys,
            ["skills.top_k", "upstream.base_url", "upstream.api_key"]
        ),
        other => panic!("expected settings_changed, got {other:?}"),
    }
    let view = running.call("GET", "/api/settings", None).await;
    assert_eq!(
        view.body["secrets"]["upstream.api_key"]["masked"],
        "sk-l…cdef"
    );
    assert!(!view.body.to_string().contains("sk-live-0123456789abcdef"));
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_policy() {
    let response = tower::ServiceExt::oneshot(
        super::ui::router(),
        Request::get("/ui/").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    let headers = response.headers().clone();
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        super::ui::CONTENT_SECURITY_POLICY
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    if super::ui::available() {
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&text).contains("<html"));
    } else {
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(String::from_utf8_lossy(&text).contains("npm --prefix ui"));
    }
    let redirect = tower::ServiceExt::oneshot(
        super::ui::router(),
        Request::get("/ui").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(redirect.headers()[header::LOCATION], "/ui/");
    let climbing = tower::ServiceExt::oneshot(
        super::ui::router(),
        Request::get("/ui/../Cargo.toml")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(climbing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_refused_upstream_key_is_announced_once_per_ten_minutes() {
    let running = start();
    let mut events = running.state().events.subscribe();
    running.state().upstream_refused_key(401);
    running.state().upstream_refused_key(403);
    let first = events.recv().await.unwrap();
    assert!(
        matches!(&first, crate::events::EngineEvent::ActionNeeded { kind, message }
            if kind == "upstream_auth" && message.contains("401")),
        "{first:?}"
    );
    assert!(
        events.try_recv().is_err(),
        "the second refusal was announced too"
    );
    let last = running.state().events.last().unwrap();
    assert_eq!(last.kind, "action_needed");
}
