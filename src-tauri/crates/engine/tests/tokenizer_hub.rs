#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! `rl.tokenizer` as a model id: the files come once from a local HTTP
//! server speaking the model hub's `/{model}/resolve/{revision}/{file}`
//! format (large files redirected to a second "CDN" server, errors with
//! `X-Error-Code` as huggingface.co sends them), land in the cache folder,
//! and are read from there ever after, with the hub gone. Nothing is
//! downloaded from the internet.

#[path = "../../policy/tests/common/mod.rs"]
mod model;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use metaclaw_engine::config::{Config, Mode};
use metaclaw_engine::paths::AppPaths;
use metaclaw_engine::proxy::policy_hub::{fetch_model, tokenizer_folder};
use metaclaw_engine::proxy::{Hub, HubError, HubModel};
use metaclaw_engine::secret::Secret;
use metaclaw_engine::Engine;
use serde_json::json;

const TOKEN: &str = "hf_test_token_0123456789abcdef";

/// Every request a fake server saw: path and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct FakeHub {
    url: String,
    hub_seen: Seen,
    cdn_seen: Seen,
}

#[derive(Clone)]
struct HubState {
    cdn: String,
    seen: Seen,
}

fn auth(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("x-error-code", code), ("x-error-message", message)],
        message.to_owned(),
    )
        .into_response()
}

async fn resolve(
    State(state): State<HubState>,
    UrlPath((org, name, revision, file)): UrlPath<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let token = auth(&headers);
    state.seen.lock().unwrap().push((
        format!("/{org}/{name}/resolve/{revision}/{file}"),
        token.clone(),
    ));
    let repo = format!("{org}/{name}");
    if revision != "main" {
        return refuse(StatusCode::NOT_FOUND, "RevisionNotFound", "Invalid rev id");
    }
    match (repo.as_str(), file.as_str()) {
        ("gated/Model", _) => match token {
            None => refuse(
                StatusCode::UNAUTHORIZED,
                "GatedRepo",
                "Access to model gated/Model is restricted.",
            ),
            Some(_) => refuse(
                StatusCode::FORBIDDEN,
                "GatedRepo",
                "Access to model gated/Model is restricted and you are not in the authorized list.",
            ),
        },
        ("qwen/Tiny", "tokenizer.json") | ("qwen/NoConfig", "tokenizer.json") => {
            // Large files live behind a redirect to the CDN, another host.
            Redirect::to(&format!("{}/cas/tokenizer-blob", state.cdn)).into_response()
        }
        ("qwen/Tiny", "tokenizer_config.json") => (
            [("content-type", "application/json")],
            model::tokenizer_config(json!(model::QWEN3_STYLE_TEMPLATE)).to_string(),
        )
            .into_response(),
        ("qwen/Tiny", "generation_config.json") => (
            [("content-type", "application/json")],
            json!({"eos_token_id": [model::IM_END, model::ENDOFTEXT]}).to_string(),
        )
            .into_response(),
        ("qwen/Tiny" | "qwen/NoConfig", _) => {
            refuse(StatusCode::NOT_FOUND, "EntryNotFound", "Entry not found")
        }
        ("broken/Html", _) => "<html><body>Sign in</body></html>".into_response(),
        _ => refuse(
            StatusCode::UNAUTHORIZED,
            "RepoNotFound",
            "Repository not found",
        ),
    }
}

async fn cdn(State(seen): State<Seen>, headers: HeaderMap) -> Response {
    seen.lock()
        .unwrap()
        .push(("/cas/tokenizer-blob".into(), auth(&headers)));
    (
        [("content-type", "application/octet-stream")],
        model::tokenizer_json(None).to_string(),
    )
        .into_response()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

impl FakeHub {
    async fn start() -> FakeHub {
        let cdn_seen = Seen::default();
        let cdn_url = serve(
            Router::new()
                .route("/cas/tokenizer-blob", get(cdn))
                .with_state(cdn_seen.clone()),
        )
        .await;
        let hub_seen = Seen::default();
        let url = serve(
            Router::new()
                .route("/{org}/{name}/resolve/{revision}/{file}", get(resolve))
                .with_state(HubState {
                    cdn: cdn_url,
                    seen: hub_seen.clone(),
                }),
        )
        .await;
        FakeHub {
            url,
            hub_seen,
            cdn_seen,
        }
    }

    fn hub(&self, token: &str) -> Hub {
        Hub {
            base_url: self.url.clone(),
            token: Secret::new(token),
        }
    }

    fn hub_requests(&self) -> Vec<(String, Option<String>)> {
        self.hub_seen.lock().unwrap().clone()
    }

    fn cdn_requests(&self) -> Vec<(String, Option<String>)> {
        self.cdn_seen.lock().unwrap().clone()
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn model_id(text: &str) -> HubModel {
    HubModel::parse(text).unwrap()
}

#[tokio::test]
async fn a_model_id_is_downloaded_once_then_read_offline() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let tiny = model_id("qwen/Tiny");

    let folder = fetch_model(&hub.hub(TOKEN), &tiny, cache.path())
        .await
        .unwrap();
    assert_eq!(folder, cache.path().join("qwen--Tiny"));
    // The optional files the model lacks (404 EntryNotFound) are skipped;
    // nothing half-written is left beside the folder.
    assert_eq!(
        entries(&folder),
        [
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );
    assert_eq!(entries(cache.path()), ["qwen--Tiny"]);
    let codec = metaclaw_policy::ChatCodec::load(&folder).unwrap();
    assert_eq!(codec.stop_token_ids(), &[model::IM_END, model::ENDOFTEXT]);

    // The hub got the token on every request; the CDN (another host, after
    // the redirect) never did.
    let asked: Vec<String> = hub.hub_requests().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        asked,
        [
            "tokenizer.json",
            "tokenizer_config.json",
            "chat_template.jinja",
            "special_tokens_map.json",
            "generation_config.json"
        ]
        .map(|f| format!("/qwen/Tiny/resolve/main/{f}"))
    );
    assert!(hub
        .hub_requests()
        .iter()
        .all(|(_, a)| a.as_deref() == Some(&format!("Bearer {TOKEN}"))));
    assert_eq!(
        hub.cdn_requests(),
        [("/cas/tokenizer-blob".to_owned(), None)]
    );

    // Later starts read the cache, with the hub unreachable.
    let offline = Hub {
        base_url: "http://127.0.0.1:9".into(),
        token: Secret::default(),
    };
    let again = fetch_model(&offline, &tiny, cache.path()).await.unwrap();
    assert_eq!(again, folder);
    assert_eq!(hub.hub_requests().len(), 5, "no second download");
}

#[tokio::test]
async fn hub_refusals_are_clear_errors_and_leave_no_cache() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let fetch = |id: &'static str, token: &'static str| {
        let hub = hub.hub(token);
        let root = cache.path().to_path_buf();
        async move { fetch_model(&hub, &model_id(id), &root).await.unwrap_err() }
    };

    let gated = fetch("gated/Model", "").await;
    assert!(
        matches!(
            gated,
            HubError::Gated {
                token_sent: false,
                ..
            }
        ),
        "{gated:?}"
    );
    let message = gated.to_string();
    assert!(message.contains("gated model"), "{message}");
    assert!(message.contains("rl.hub_token (or HF_TOKEN)"), "{message}");
    let gated = fetch("gated/Model", TOKEN).await;
    assert!(
        matches!(
            gated,
            HubError::Gated {
                token_sent: true,
                ..
            }
        ),
        "{gated:?}"
    );
    assert!(gated.to_string().contains("has no access yet"), "{gated}");

    let missing = fetch("nobody/Nothing", "").await;
    assert!(
        matches!(missing, HubError::RepoNotFound { .. }),
        "{missing:?}"
    );
    assert!(
        missing
            .to_string()
            .starts_with("no model nobody/Nothing on http://127.0.0.1:"),
        "{missing}"
    );

    let no_config = fetch("qwen/NoConfig", "").await;
    assert!(
        matches!(&no_config, HubError::FileMissing { file, .. } if file == "tokenizer_config.json"),
        "{no_config:?}"
    );

    let revision = fetch_model(&hub.hub(""), &model_id("qwen/Tiny@v9"), cache.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&revision, HubError::RevisionNotFound { revision, .. } if revision == "v9"),
        "{revision:?}"
    );

    // A 200 that is not a tokenizer must not become the cache.
    let html = fetch("broken/Html", "").await;
    assert!(matches!(html, HubError::Unusable { .. }), "{html:?}");

    // Offline with nothing cached: says so, and how to get going.
    let offline = Hub {
        base_url: "http://127.0.0.1:9".into(),
        token: Secret::default(),
    };
    let error = fetch_model(&offline, &model_id("qwen/Tiny"), cache.path())
        .await
        .unwrap_err();
    assert!(matches!(error, HubError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message
            .starts_with("cannot reach http://127.0.0.1:9 to download the tokenizer of qwen/Tiny"),
        "{message}"
    );
    assert!(
        message.contains("point rl.tokenizer at a local folder"),
        "{message}"
    );

    // No partial folder survived any of it.
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_loads_a_model_id_through_the_cache() {
    let hub = FakeHub::start().await;
    let home = tempfile::tempdir().unwrap();
    let paths = AppPaths::under(home.path());
    let config = || {
        let mut config = Config {
            mode: Mode::Rl,
            ..Config::default()
        };
        config.rl.base_url = "http://127.0.0.1:9".into();
        config.rl.model = "qwen/Tiny".into();
        config.rl.tokenizer = "qwen/Tiny".into();
        config.rl.hub_url = hub.url.clone();
        config.skills.dir = home.path().join("library").display().to_string();
        config
    };
    let engine = Engine::open(&paths, config()).unwrap();
    let policy = engine.state().policy.clone().unwrap();
    assert_eq!(
        policy.codec().stop_token_ids(),
        &[model::IM_END, model::ENDOFTEXT]
    );
    drop(engine);
    let cached: PathBuf = paths.tokenizer_cache_dir().join("qwen--Tiny");
    assert!(cached.join("tokenizer.json").is_file());
    // Anonymous: no token went anywhere.
    assert!(hub.hub_requests().iter().all(|(_, a)| a.is_none()));

    // A second start with the hub gone reads the cache.
    let mut offline = config();
    offline.rl.hub_url = "http://127.0.0.1:9".into();
    Engine::open(&paths, offline).unwrap();
    assert_eq!(hub.hub_requests().len(), 5);

    // A model id never fetched, offline: the start fails naming the key.
    let mut other = config();
    other.rl.tokenizer = "qwen/Other".into();
    other.rl.hub_url = "http://127.0.0.1:9".into();
    let error = Engine::open(&paths, other).err().unwrap().to_string();
    assert!(
        error.starts_with("rl.tokenizer: cannot reach http://127.0.0.1:9"),
        "{error}"
    );

    // The blocking entry point used at start agrees with the cache.
    let folder = tokenizer_folder("qwen/Tiny", &hub.hub(""), &paths.tokenizer_cache_dir()).unwrap();
    assert_eq!(folder, cached);
}
