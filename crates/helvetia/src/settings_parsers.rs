//! Value parsers and look-ups shared by the server's settings (`server_config`,
//! `builder_config`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use helvetia_core::units;

/// Clap value parser for sizes.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    units::parse_bytes(text).map_err(|e| e.to_string())
}

/// `name` itself when it is a path, else the first executable of that name in `PATH`; `hint`
/// says what to do when there is none.
pub(crate) fn find_executable(name: &Path, hint: &str) -> anyhow::Result<PathBuf> {
    if name.components().count() > 1 {
        return Ok(name.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("`{}` was not found in PATH: {hint}", name.display()))
}
