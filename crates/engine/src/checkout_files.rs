//! A checkout's files as the stack detector reads them ([`RepoFiles`]), and the Dockerfile
//! generated for it written beside them. A repository is untrusted: no symbolic link is ever
//! followed (every component of every path is checked), files are read up to a size, and the
//! generated file never goes through an existing name.

use std::io::Write;
use std::path::{Path, PathBuf};

use helvetia_core::stack::RepoFiles;

/// Larger files (a lockfile, say) are only checked for, never read.
const MAX_READ: u64 = 1 << 20;
/// Where the generated Dockerfile is written, at the checkout's root.
pub const GENERATED_DOCKERFILE: &str = ".helvetia-generated.Dockerfile";

/// The files under one directory of a checkout (the build context).
pub struct CheckoutFiles {
    checkout: PathBuf,
    /// The directory's components below the checkout.
    base: Vec<String>,
}

impl CheckoutFiles {
    /// The files of `context` (a path relative to `checkout` with no `..`, as service settings
    /// are).
    pub fn new(checkout: &Path, context: &str) -> CheckoutFiles {
        CheckoutFiles {
            checkout: checkout.to_owned(),
            base: components(context),
        }
    }

    /// The directory reached through `parts` from the checkout, if each is a real directory.
    fn real_directory(&self, parts: &[String]) -> Option<PathBuf> {
        let mut current = self.checkout.clone();
        for part in parts {
            current.push(part);
            if !std::fs::symlink_metadata(&current).ok()?.is_dir() {
                return None;
            }
        }
        Some(current)
    }

    /// `path` under the context, if every directory on the way is a real directory; with the
    /// last component's metadata (not followed).
    fn entry(&self, path: &str) -> Option<(PathBuf, std::fs::Metadata)> {
        let parts: Vec<String> = self.base.iter().cloned().chain(components(path)).collect();
        let (last, directories) = parts.split_last()?;
        let full = self.real_directory(directories)?.join(last);
        let metadata = std::fs::symlink_metadata(&full).ok()?;
        Some((full, metadata))
    }
}

/// The normal components of a relative path (`.` and empty ones dropped).
fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(str::to_owned)
        .collect()
}

impl RepoFiles for CheckoutFiles {
    fn is_file(&self, path: &str) -> bool {
        self.entry(path)
            .is_some_and(|(_, metadata)| metadata.is_file())
    }

    fn read(&self, path: &str) -> Option<String> {
        let (full, metadata) = self.entry(path)?;
        if !metadata.is_file() || metadata.len() > MAX_READ {
            return None;
        }
        String::from_utf8(std::fs::read(full).ok()?).ok()
    }

    fn directories(&self, dir: &str) -> Vec<String> {
        let parts: Vec<String> = self.base.iter().cloned().chain(components(dir)).collect();
        let Some(listed) = self.real_directory(&parts) else {
            return vec![];
        };
        let mut names: Vec<String> = std::fs::read_dir(listed)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        names
    }
}

/// Whether `checkout` is built with a generated Dockerfile: the service names the default
/// `Dockerfile` (`configured`) and the repository has nothing there. A path a service names
/// explicitly must exist; a link there is the context archive's to judge.
pub fn needs_generated_dockerfile(checkout: &Path, configured: &str) -> bool {
    configured == helvetia_core::service::DEFAULT_DOCKERFILE
        && std::fs::symlink_metadata(checkout.join(configured)).is_err()
}

/// Writes `dockerfile` as [`GENERATED_DOCKERFILE`] at the checkout's root: whatever the
/// repository had under that name (a link, say) is removed first, and the file is created
/// new, so nothing outside the checkout is ever written.
pub fn write_generated_dockerfile(checkout: &Path, dockerfile: &str) -> std::io::Result<()> {
    let path = checkout.join(GENERATED_DOCKERFILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(dockerfile.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_never_followed_and_sizes_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("app/public")).unwrap();
        std::fs::create_dir_all(root.join("app/.git")).unwrap();
        std::fs::write(root.join("app/package.json"), "{}").unwrap();
        std::fs::write(root.join("app/public/index.html"), "hi").unwrap();
        std::fs::write(root.join("app/big.txt"), vec![b'x'; 2 << 20]).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("app/etc")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("app/requirements.txt")).unwrap();
        let files = CheckoutFiles::new(root, "app");
        assert!(files.is_file("package.json"));
        assert!(files.is_file("public/index.html"));
        assert_eq!(files.read("package.json").as_deref(), Some("{}"));
        assert!(!files.is_file("requirements.txt"));
        assert_eq!(files.read("requirements.txt"), None);
        assert!(!files.is_file("etc/hostname"));
        assert!(files.is_file("big.txt"));
        assert_eq!(files.read("big.txt"), None);
        assert_eq!(files.directories(""), ["public"]);
        assert!(files.directories("etc").is_empty());
        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(root.join("app"), linked.path().join("ctx")).unwrap();
        assert!(!CheckoutFiles::new(linked.path(), "ctx").is_file("package.json"));
    }

    #[test]
    fn the_generated_dockerfile_replaces_a_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(GENERATED_DOCKERFILE)).unwrap();
        write_generated_dockerfile(dir.path(), "FROM x\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(GENERATED_DOCKERFILE)).unwrap(),
            "FROM x\n"
        );
    }
}
