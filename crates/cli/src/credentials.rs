//! The credentials `helvetia login` saves: a server URL and a token, in a file only the user can
//! read (`$HELVETIA_CONFIG_DIR`, else `$XDG_CONFIG_HOME/helvetia`, else `~/.config/helvetia`).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("token", &"***")
            .finish()
    }
}

const FILE_NAME: &str = "credentials.toml";

fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("HELVETIA_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("helvetia"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("helvetia")),
        None => bail!("cannot find a configuration directory: set HOME or HELVETIA_CONFIG_DIR"),
    }
}

impl Credentials {
    pub fn path() -> anyhow::Result<PathBuf> {
        Ok(config_dir()?.join(FILE_NAME))
    }

    /// The saved credentials, or `None` when the user never logged in.
    pub fn load() -> anyhow::Result<Option<Credentials>> {
        let path = Credentials::path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Saves atomically: a 0600 temporary file renamed over the old one.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let dir = config_dir()?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("securing {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let temporary = dir.join(format!(".{FILE_NAME}.tmp"));
        let mut file = std::fs::File::options()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("writing {}", temporary.display()))?;
        file.write_all(toml::to_string(self)?.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    pub fn remove() -> anyhow::Result<bool> {
        match std::fs::remove_file(Credentials::path()?) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
