//! `metaclaw config show | get | set | unset | path`.

use std::process::ExitCode;

use clap::Subcommand;
use metaclaw_engine::config::{ConfigEntry, ConfigStore, ValueSource};
use metaclaw_engine::env_var;

use crate::output::{outln, print_json};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Every setting with its effective value and where it comes from (keys masked).
    Show {
        #[arg(long)]
        json: bool,
    },
    /// One setting's effective value.
    Get {
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a setting (API keys go to the secret store, never to config.toml).
    Set {
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Remove a setting so its default applies again.
    Unset { key: String },
    /// Where the config file, secrets, database and skills live.
    Path,
}

pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    let mut store = super::load()?;
    match command {
        ConfigCommand::Show { json } => {
            let entries = store.entries(&env_var);
            if json {
                return print_json(&entries);
            }
            for entry in &entries {
                outln!("{}", describe(entry));
            }
        }
        ConfigCommand::Get { key, json } => {
            let entry = store.get(&key, &env_var)?;
            if json {
                return print_json(&entry);
            }
            outln!("{}", entry.value);
        }
        ConfigCommand::Set { key, value } => {
            store.set(&key, &value)?;
            let shown = store.get(&key, &env_var)?;
            outln!("{} = {}", shown.key, shown.value);
        }
        ConfigCommand::Unset { key } => {
            store.unset(&key)?;
            outln!("{}", describe(&store.get(&key, &env_var)?));
        }
        ConfigCommand::Path => print_paths(&store),
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(entry: &ConfigEntry) -> String {
    let value = if entry.value.is_empty() {
        "\"\""
    } else {
        &entry.value
    };
    match (entry.source, &entry.env_var) {
        (ValueSource::Env, Some(var)) => format!("{} = {value}   (from ${var})", entry.key),
        (ValueSource::Default, _) => format!("{} = {value}   (default)", entry.key),
        _ => format!("{} = {value}", entry.key),
    }
}

fn print_paths(store: &ConfigStore) {
    let paths = store.paths();
    outln!("config   {}", paths.config_file().display());
    outln!("secrets  {}", paths.secrets_file().display());
    outln!("database {}", paths.database().display());
    outln!("skills   {}", store.config().skills_dir(paths).display());
}
