//! A `Procfile`: `name: command` lines, as Heroku and its peers read them.

/// The processes a `Procfile` declares, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procfile {
    processes: Vec<(String, String)>,
}

impl Procfile {
    /// Reads `name: command` lines; blank lines, comments and anything else are skipped.
    pub fn parse(text: &str) -> Procfile {
        let processes = text
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                if line.starts_with('#') {
                    return None;
                }
                let (name, command) = line.split_once(':')?;
                let name = name.trim();
                let command = command.trim();
                let named = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                (named && !command.is_empty()).then(|| (name.to_owned(), command.to_owned()))
            })
            .collect();
        Procfile { processes }
    }

    /// The command that serves the app: the `web` process, else the first one.
    pub fn start(&self) -> Option<(&str, &str)> {
        self.processes
            .iter()
            .find(|(name, _)| name == "web")
            .or_else(|| self.processes.first())
            .map(|(name, command)| (name.as_str(), command.as_str()))
    }
}
