//! The command line of `metaclaw-app`. The same parser reads a second
//! launch's arguments, which the single-instance plugin forwards to the
//! running app.

/// What a launch asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// No arguments: the first launch lives in the tray; a second one opens
    /// the dashboard (the user clicked the app's launcher again).
    Plain,
    /// `--dashboard [page]`: the dashboard at a route such as `skills/foo`.
    Dashboard(Option<String>),
    /// `--settings`: the settings window.
    Settings,
    /// `--quit`: stop the running app (a no-op for a first launch).
    Quit,
    Help,
    Version,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown argument `{0}` (try --help)")]
    Unknown(String),
    #[error("`{0}` is not a dashboard page: use letters, digits and - _ / . ? = & only, as in `skills/email-triage`")]
    BadPage(String),
    #[error("`{0}` and `{1}` ask for different things: give one of them")]
    Conflict(String, String),
}

pub const USAGE: &str = "\
usage: metaclaw-app [--dashboard [PAGE] | --settings | --quit]

Runs MetaClaw in the tray: the learning proxy on its configured port, a
dashboard and a settings window on demand. Launched again while running, it
hands its arguments to the running app instead of starting a second one.

  --dashboard [PAGE]  open the dashboard, at PAGE (e.g. skills/NAME, training)
  --settings          open the settings window
  --quit              stop the running app
  --help, --version";

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Launch, ArgsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut launch = Launch::Plain;
    let mut given: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let next = match arg {
            "--dashboard" => match args.get(i + 1).filter(|a| !a.starts_with("--")) {
                Some(page) => {
                    i += 1;
                    Launch::Dashboard(Some(route(page)?))
                }
                None => Launch::Dashboard(None),
            },
            _ if arg.starts_with("--dashboard=") => {
                Launch::Dashboard(Some(route(&arg["--dashboard=".len()..])?))
            }
            "--settings" => Launch::Settings,
            "--quit" => Launch::Quit,
            "-h" | "--help" => Launch::Help,
            "-V" | "--version" => Launch::Version,
            other => return Err(ArgsError::Unknown(other.to_owned())),
        };
        if let Some(first) = &given {
            if next != launch {
                return Err(ArgsError::Conflict(first.clone(), arg.to_owned()));
            }
        }
        given = Some(arg.to_owned());
        launch = next;
        i += 1;
    }
    Ok(launch)
}

/// A dashboard route without its `#/` (`skills/foo`), from what a user
/// might type: `skills/foo`, `/skills/foo` or `#/skills/foo`. It ends up
/// in the window's URL fragment, so only plain URL characters are allowed.
pub fn route(page: &str) -> Result<String, ArgsError> {
    let trimmed = page.trim_start_matches('#').trim_start_matches('/');
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_/.?=&".contains(c);
    if trimmed.is_empty() || !trimmed.chars().all(plain) {
        return Err(ArgsError::BadPage(page.to_owned()));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_launch() {
        assert_eq!(parse::<_, &str>([]), Ok(Launch::Plain));
        assert_eq!(parse(["--dashboard"]), Ok(Launch::Dashboard(None)));
        assert_eq!(
            parse(["--dashboard", "#/skills/email-triage"]),
            Ok(Launch::Dashboard(Some("skills/email-triage".into())))
        );
        assert_eq!(
            parse(["--dashboard=training"]),
            Ok(Launch::Dashboard(Some("training".into())))
        );
        assert_eq!(parse(["--settings"]), Ok(Launch::Settings));
        assert_eq!(parse(["--quit"]), Ok(Launch::Quit));
        // Repeating the same request is harmless.
        assert_eq!(parse(["--quit", "--quit"]), Ok(Launch::Quit));
    }

    #[test]
    fn a_page_is_not_taken_from_the_next_flag() {
        assert_eq!(
            parse(["--dashboard", "--dashboard"]),
            Ok(Launch::Dashboard(None))
        );
        assert_eq!(
            parse(["--dashboard", "--settings"]),
            Err(ArgsError::Conflict(
                "--dashboard".into(),
                "--settings".into()
            ))
        );
    }

    #[test]
    fn rejects_what_it_cannot_do() {
        assert_eq!(
            parse(["--dashbord"]),
            Err(ArgsError::Unknown("--dashbord".into()))
        );
        assert_eq!(
            parse(["--dashboard", "skills/<script>"]),
            Err(ArgsError::BadPage("skills/<script>".into()))
        );
        assert_eq!(route("#/"), Err(ArgsError::BadPage("#/".into())));
        assert_eq!(
            route("settings?window=settings").as_deref(),
            Ok("settings?window=settings")
        );
    }
}
