//! The dashboard under `/ui`: the built web app (`ui/dist`), embedded in
//! release builds and read from the folder in debug builds. The page needs
//! no token (it carries no data); its API calls do, and it takes the token
//! from the URL fragment, which never reaches a server.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// What the page may load: only itself. No inline scripts or styles, no
/// other origins, not framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

#[derive(rust_embed::RustEmbed)]
#[folder = "../../../ui/dist"]
#[allow_missing = true]
struct Dist;

pub fn router() -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route(
            "/ui/{*path}",
            get(|axum::extract::Path(path): axum::extract::Path<String>| async move {
                asset(&path)
            }),
        )
}

/// Whether a built dashboard is there to serve.
pub fn available() -> bool {
    Dist::get("index.html").is_some()
}

fn asset(path: &str) -> Response {
    // Only plain relative names: nothing that could climb out of the folder.
    if path
        .split('/')
        .any(|part| part == ".." || part.contains('\\'))
        || path.starts_with('/')
    {
        return secure(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "no such file in the dashboard\n",
            )
                .into_response(),
        );
    }
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    let response = match Dist::get(&path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_owned();
            // Hashed asset names change with their content; the page itself
            // must be fetched fresh to find the new names.
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, cache.to_owned()),
                ],
                file.data.into_owned(),
            )
                .into_response()
        }
        None if !available() => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The dashboard is not built. Build it with `npm --prefix ui ci && npm --prefix ui run build`, then rebuild metaclaw (release builds embed it; debug builds read ui/dist directly).\n",
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no file `{path}` in the dashboard\n"),
        )
            .into_response(),
    };
    secure(response)
}

fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
