//! Logging for the binaries (`metaclaw`, `metaclaw-app`): to stderr, never
//! with keys or request bodies in it.

/// Installs the global subscriber. `METACLAW_LOG` (or `RUST_LOG`) overrides
/// `default_level`; colours only on a terminal.
pub fn init(default_level: &str) {
    let filter = std::env::var("METACLAW_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default_level.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
