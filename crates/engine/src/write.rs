//! Replacing a file atomically, so a reader (Traefik's file watcher, or a Helvetia restarted
//! after a crash) sees the old contents or the new ones, never a half-written file.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `contents` to `path` through a temporary file in the same directory: write, fsync,
/// rename over `path`, fsync the directory so the rename itself survives a power loss. The old
/// file is never read.
///
/// The temporary file's name starts with a dot and ends in `.tmp`, which Traefik's file
/// provider skips when it loads a directory (it reads only `.toml`, `.yaml` and `.yml`).
pub fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    write_with_mode(path, contents, 0o644)
}

/// [`write_atomically`] for a file only its owner may read (a private key).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    write_with_mode(path, contents, 0o600)
}

fn write_with_mode(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let prefix = match path.file_name() {
        Some(name) => format!(".{}.", name.to_string_lossy()),
        None => ".".to_owned(),
    };
    // A temporary file is private (0600) by default; the rename would carry that over and lock
    // out an edge router running as another user.
    let mut temporary = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(directory)?;
    temporary.write_all(contents.as_bytes())?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    std::fs::File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_and_replaces_the_file_leaving_nothing_else_behind() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("helvetia.toml");
        write_atomically(&path, "first").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        write_atomically(&path, "second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(entries(directory.path()), ["helvetia.toml"]);
    }

    #[test]
    fn fails_when_the_directory_does_not_exist() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("missing").join("helvetia.toml");
        assert!(write_atomically(&path, "contents").is_err());
        assert_eq!(entries(directory.path()), Vec::<String>::new());
    }
}
