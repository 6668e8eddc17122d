//! `metaclaw-app`: MetaClaw in the tray. A thin shell over the engine: it
//! starts the engine in-process (as `metaclaw serve` does), shows its state
//! in the tray, raises notifications and opens the dashboard and settings
//! web views, which reach the engine through one IPC command.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod args;
mod engine;
mod icons;
mod ipc;
mod menu_ids;
mod mood;
mod notes;
mod shell;
mod tray;
mod windows;

use std::process::ExitCode;

use tauri::{Manager, RunEvent};

use crate::args::Launch;

fn main() -> ExitCode {
    let launch = match args::parse(std::env::args().skip(1)) {
        Ok(Launch::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Launch::Version) => {
            println!("metaclaw-app {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(launch) => launch,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    metaclaw_engine::logging::init("info");
    // One runtime for the engine and Tauri's async tasks.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("metaclaw")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    tauri::async_runtime::set(runtime.handle().clone());

    let app = tauri::Builder::default()
        // First: a second launch hands over its arguments and exits here,
        // before it could start a second engine.
        .plugin(tauri_plugin_single_instance::init(
            |app, argv, _cwd| match args::parse(argv.iter().skip(1)) {
                Ok(launch) => shell::launch_when_ready(app, launch, true),
                Err(error) => tracing::warn!(%error, "ignored a second launch's arguments"),
            },
        ))
        .plugin(tauri_plugin_autostart::Builder::new().build())
        .invoke_handler(tauri::generate_handler![ipc::api])
        .setup(move |app| {
            if launch == Launch::Quit {
                println!("MetaClaw is not running.");
                app.handle().exit(0);
                return Ok(());
            }
            let engine = tauri::async_runtime::block_on(engine::start()).map_err(|error| {
                tracing::error!(%error, "the engine did not start");
                error.to_string()
            });
            shell::start(app.handle(), engine);
            shell::launch(app.handle(), &launch, false);
            Ok(())
        })
        .build(context());
    let app = match app {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: cannot start the app: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = app.run_return(|app, event| {
        if let RunEvent::ExitRequested { api, .. } = event {
            // Closing the last window leaves the app in the tray; only Quit
            // (or a signal, or `--quit`) ends it.
            let quitting = app
                .try_state::<shell::Shell>()
                .is_none_or(|shell| shell.is_quitting());
            if !quitting {
                api.prevent_exit();
            }
        }
    });
    // Tasks still running (the notification waits) end with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The context tauri-build generated: the config, the embedded dashboard
/// and the resolved capabilities. Its code unwraps values tauri-build
/// already validated.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
fn context() -> tauri::Context {
    tauri::tauri_build_context!()
}
