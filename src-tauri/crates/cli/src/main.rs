//! `metaclaw`: the headless command line. Every command is a thin call into
//! the engine; errors are turned into one readable message here.

mod commands;
mod output;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "metaclaw",
    version,
    about = "A learning proxy between your AI agent and its LLM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the learning proxy in the foreground (127.0.0.1:30000 by default).
    Serve(commands::serve::ServeArgs),
    /// Show whether the proxy is up, the mode, the upstream and the skill library.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Show or change settings.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Open the dashboard of the running server in the browser.
    Dashboard(commands::dashboard::DashboardArgs),
    /// Inspect the skill library.
    #[command(subcommand)]
    Skills(commands::skills::SkillsCommand),
    /// Inspect recorded conversations.
    #[command(subcommand)]
    Sessions(commands::sessions::SessionsCommand),
    /// Busy times from calendars, and the calendars the scheduler reads.
    #[command(subcommand)]
    Calendar(commands::calendar::CalendarCommand),
    /// When background training may run: state, timeline, pause, resume, train now.
    #[command(subcommand)]
    Schedule(commands::schedule::ScheduleCommand),
    /// The slow loop (RL): status, history, train now.
    #[command(subcommand)]
    Train(commands::train::TrainCommand),
    /// Weights the trainer saved on the training service.
    #[command(subcommand)]
    Checkpoints(commands::train::CheckpointsCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let verbose = matches!(cli.command, Command::Serve(_));
    metaclaw_engine::logging::init(if verbose { "info" } else { "warn" });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Status { json } => commands::status::run(json).await,
            Command::Config(command) => commands::config::run(command),
            Command::Dashboard(args) => commands::dashboard::run(args).await,
            Command::Skills(command) => commands::skills::run(command),
            Command::Sessions(command) => commands::sessions::run(command),
            Command::Calendar(command) => commands::calendar::run(command).await,
            Command::Schedule(command) => commands::schedule::run(command).await,
            Command::Train(command) => commands::train::run(command).await,
            Command::Checkpoints(command) => commands::train::checkpoints(command),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
