//! Embeds the dashboard (ui/dist), the icons and the capabilities into the
//! app, and declares the one IPC command (`api`) so capabilities can grant it.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // The dashboard is built by npm, outside Cargo: rebuild when it changes
    // or first appears.
    println!("cargo:rerun-if-changed=../ui/dist");
    println!("cargo:rerun-if-changed=../icons");
    // TAURI_CONFIG can point frontendDist elsewhere (a development build
    // before the dashboard exists); otherwise say how to build it, rather
    // than Tauri's panic about a missing path.
    println!("cargo:rerun-if-env-changed=TAURI_CONFIG");
    if std::env::var_os("TAURI_CONFIG").is_none() && !Path::new("../ui/dist/index.html").exists() {
        eprintln!(
            "error: the dashboard is not built (ui/dist/index.html is missing); \
             build it first with `npm --prefix ui ci && npm --prefix ui run build`"
        );
        return ExitCode::FAILURE;
    }
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(&["api"]))
        .codegen(tauri_build::CodegenContext::new());
    match tauri_build::try_build(attributes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: tauri-build: {error:#}");
            ExitCode::FAILURE
        }
    }
}
