//! The two windows, created on demand and destroyed when closed (a closed
//! web view gives its memory back; the app lives on in the tray).

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

pub const DASHBOARD: &str = "dashboard";
pub const SETTINGS: &str = "settings";

/// The dashboard's first page when none is asked for.
const DASHBOARD_HOME: &str = "skills";
/// The settings page, told that it is the whole window (no navigation).
const SETTINGS_ROUTE: &str = "settings?window=settings";

/// Opens the dashboard at `page` (a route such as `skills/foo`), or brings
/// it to the front where it is.
pub fn open_dashboard(app: &AppHandle, page: Option<&str>) -> tauri::Result<()> {
    open(
        app,
        DASHBOARD,
        "MetaClaw",
        page.unwrap_or(DASHBOARD_HOME),
        page.is_some(),
        (1120.0, 760.0),
    )
}

pub fn open_settings(app: &AppHandle) -> tauri::Result<()> {
    open(
        app,
        SETTINGS,
        "MetaClaw settings",
        SETTINGS_ROUTE,
        false,
        (760.0, 720.0),
    )
}

fn open(
    app: &AppHandle,
    label: &str,
    title: &str,
    route: &str,
    navigate: bool,
    (width, height): (f64, f64),
) -> tauri::Result<()> {
    if let Some(window) = app.get_webview_window(label) {
        if navigate {
            // Same document, new fragment: the dashboard's router follows
            // the hash without reloading.
            let mut url = window.url()?;
            url.set_fragment(Some(&format!("/{route}")));
            window.navigate(url)?;
        }
        window.unminimize()?;
        window.show()?;
        return window.set_focus();
    }
    WebviewWindowBuilder::new(
        app,
        label,
        WebviewUrl::App(format!("index.html#/{route}").into()),
    )
    .title(title)
    .inner_size(width, height)
    .min_inner_size(560.0, 420.0)
    // The page names itself (document.title) once its data is loaded; the
    // window, and so the task bar and window switchers, follow it.
    .on_document_title_changed(|window, title| {
        if !title.is_empty() {
            if let Err(error) = window.set_title(&title) {
                tracing::debug!(%error, "cannot set the window title");
            }
        }
    })
    .build()?;
    Ok(())
}
