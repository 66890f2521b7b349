//! The build context: the tar of the checked-out repository's context directory that the
//! engine builds from, made here (no docker CLI). `.git` and what `.dockerignore` excludes
//! ([`super::ignore`]) are left out, and symbolic links are archived as links, never followed,
//! so a repository cannot smuggle files from the host into its build. The archive is written
//! to an unnamed temporary file beside the checkout and streamed from there, so a large
//! context costs disk, not the server's memory.

use std::fs::File;
use std::io::Seek;
use std::path::{Path, PathBuf};

use super::ignore::IgnoreRules;
use super::{EngineError, Result};

/// Where a Dockerfile that lies outside the context goes inside the context archive.
const OUTSIDE_DOCKERFILE: &str = ".helvetia.Dockerfile";

/// A build context, ready to send.
pub(super) struct ContextArchive {
    /// The tar, read from its start.
    pub archive: File,
    pub size: u64,
    /// The Dockerfile's path inside the archive.
    pub dockerfile: String,
    /// The ignore file that applied, as the repository names it, and how many paths it left
    /// out (an excluded directory counts once).
    pub ignored: Option<(String, usize)>,
}

/// Builds the context tar.
pub(super) fn context_archive(
    checkout: &Path,
    context: &str,
    dockerfile: &str,
) -> Result<ContextArchive> {
    let root = checkout
        .canonicalize()
        .map_err(|e| EngineError::Context(format!("checkout: {e}")))?;
    let context_dir = inside(&root, &root.join(context), "the build context")?;
    let dockerfile_path = inside(&root, &root.join(dockerfile), "the Dockerfile")?;
    if !dockerfile_path.is_file() {
        return Err(EngineError::Context(format!(
            "there is no Dockerfile at `{dockerfile}`"
        )));
    }
    let dockerfile_in_context = dockerfile_path
        .strip_prefix(&context_dir)
        .ok()
        .map(|relative| relative.to_string_lossy().into_owned());
    let mut walk = Walk {
        rules: IgnoreRules::default(),
        left_out: 0,
    };
    let ignore_file = ignore_file(&root, &context_dir, &dockerfile_path, dockerfile)?;
    if let Some((path, name)) = &ignore_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EngineError::Context(format!("{name}: {e}")))?;
        walk.rules = IgnoreRules::parse(&text)
            .map_err(|why| EngineError::Context(format!("{name}, {why}")))?;
        // The builder needs both, whatever the file says (as with the docker CLI).
        let ignore_in_context = path
            .strip_prefix(&context_dir)
            .ok()
            .map(|relative| relative.to_string_lossy().into_owned());
        for kept in [ignore_in_context, dockerfile_in_context.clone()]
            .into_iter()
            .flatten()
        {
            walk.rules.keep(&kept).map_err(EngineError::Context)?;
        }
    }

    let beside_checkout = root.parent().unwrap_or(&root);
    let mut builder =
        tar::Builder::new(tempfile::tempfile_in(beside_checkout).map_err(context_error)?);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    walk.append_tree(&mut builder, &context_dir, Path::new(""))?;
    let dockerfile = match dockerfile_in_context {
        Some(relative) => relative,
        None => {
            builder
                .append_path_with_name(&dockerfile_path, OUTSIDE_DOCKERFILE)
                .map_err(context_error)?;
            OUTSIDE_DOCKERFILE.to_owned()
        }
    };
    let mut archive = builder.into_inner().map_err(context_error)?;
    let size = archive.stream_position().map_err(context_error)?;
    archive.rewind().map_err(context_error)?;
    Ok(ContextArchive {
        archive,
        size,
        dockerfile,
        ignored: ignore_file.map(|(_, name)| (name, walk.left_out)),
    })
}

/// The ignore file that applies, with the name the repository knows it by: as with BuildKit,
/// `<Dockerfile>.dockerignore` beside the Dockerfile comes first, then `.dockerignore` at the
/// context's root. It must stay inside the checkout like everything else that is read.
fn ignore_file(
    root: &Path,
    context_dir: &Path,
    dockerfile_path: &Path,
    dockerfile: &str,
) -> Result<Option<(PathBuf, String)>> {
    let mut beside = dockerfile_path.as_os_str().to_owned();
    beside.push(".dockerignore");
    let candidates = [
        (PathBuf::from(beside), format!("{dockerfile}.dockerignore")),
        (
            context_dir.join(".dockerignore"),
            ".dockerignore".to_owned(),
        ),
    ];
    for (path, name) in candidates {
        if std::fs::symlink_metadata(&path).is_ok() {
            let resolved = inside(root, &path, &format!("`{name}`"))?;
            return Ok(Some((resolved, name)));
        }
    }
    Ok(None)
}

fn context_error(error: std::io::Error) -> EngineError {
    EngineError::Context(error.to_string())
}

/// `path` resolved (symlinks included), refused unless it stays inside `root`.
fn inside(root: &Path, path: &Path, what: &str) -> Result<PathBuf> {
    let resolved = path
        .canonicalize()
        .map_err(|e| EngineError::Context(format!("{what} `{}`: {e}", path.display())))?;
    if resolved.starts_with(root) {
        Ok(resolved)
    } else {
        Err(EngineError::Context(format!(
            "{what} resolves outside the repository"
        )))
    }
}

/// The walk of the context directory into the archive.
struct Walk {
    rules: IgnoreRules,
    left_out: usize,
}

impl Walk {
    fn append_tree(
        &mut self,
        builder: &mut tar::Builder<File>,
        dir: &Path,
        prefix: &Path,
    ) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(context_error)?
            .collect::<std::io::Result<_>>()
            .map_err(context_error)?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name();
            if prefix.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let path = entry.path();
            let in_archive = prefix.join(&name);
            let relative = in_archive.to_string_lossy();
            let kind = entry.file_type().map_err(context_error)?;
            if self.rules.excludes(&relative) {
                // An excluded directory is walked only for what an exception brings back;
                // the directory itself is not sent (the builder creates the parents).
                if kind.is_dir() && self.rules.reincludes_inside(&relative) {
                    self.append_tree(builder, &path, &in_archive)?;
                } else {
                    self.left_out += 1;
                }
                continue;
            }
            if kind.is_dir() {
                builder
                    .append_dir(&in_archive, &path)
                    .map_err(context_error)?;
                self.append_tree(builder, &path, &in_archive)?;
            } else {
                builder
                    .append_path_with_name(&path, &in_archive)
                    .map_err(context_error)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry names of an archive, in order.
    fn names(mut archive: &File) -> Vec<String> {
        archive.rewind().unwrap();
        let mut reader = tar::Archive::new(archive);
        let entries = reader.entries().unwrap();
        entries
            .map(|entry| {
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    /// Writes `files` (path, content) under `root`, creating directories.
    fn write_tree(root: &Path, files: &[(&str, &str)]) {
        for (path, content) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }

    #[test]
    fn archives_the_context_without_git_and_without_following_links() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        write_tree(
            root,
            &[
                (".git/config", "secret"),
                ("Dockerfile", "FROM scratch\n"),
                ("app/main.txt", "hello"),
            ],
        );
        std::os::unix::fs::symlink("/etc/hostname", root.join("app/leak")).unwrap();

        let context = context_archive(root, ".", "Dockerfile").unwrap();
        assert_eq!(context.dockerfile, "Dockerfile");
        assert_eq!(context.ignored, None);
        let mut reader = tar::Archive::new(&context.archive);
        for entry in reader.entries().unwrap() {
            let entry = entry.unwrap();
            if entry.path().unwrap() == Path::new("app/leak") {
                assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
            }
        }
        let names = names(&context.archive);
        assert!(names.iter().all(|n| !n.starts_with(".git")), "{names:?}");
        assert!(names.contains(&"app/leak".to_owned()));
        assert!(names.contains(&"app/main.txt".to_owned()));

        // A Dockerfile outside a sub-directory context travels under its own name.
        let context = context_archive(root, "app", "Dockerfile").unwrap();
        assert_eq!(context.dockerfile, OUTSIDE_DOCKERFILE);
    }

    #[test]
    fn leaves_out_what_dockerignore_excludes_but_always_sends_the_build_files() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        write_tree(
            root,
            &[
                (
                    ".dockerignore",
                    "# local only\n*\n!app\napp/node_modules\n!app/node_modules/keep.js\n**/*.env\n",
                ),
                ("Dockerfile", "FROM scratch\n"),
                ("README.md", "docs"),
                ("app/main.js", "main"),
                ("app/prod.env", "TOKEN=secret"),
                ("app/node_modules/big/index.js", "big"),
                ("app/node_modules/keep.js", "kept"),
            ],
        );
        let context = context_archive(root, ".", "Dockerfile").unwrap();
        assert_eq!(
            names(&context.archive),
            [
                ".dockerignore",
                "Dockerfile",
                "app",
                "app/main.js",
                "app/node_modules/keep.js",
            ]
        );
        // README.md, app/node_modules/big, app/prod.env.
        assert_eq!(context.ignored, Some((".dockerignore".to_owned(), 3)));

        // `<Dockerfile>.dockerignore` beside the Dockerfile comes first, and a Dockerfile in
        // an excluded directory is still sent.
        write_tree(
            root,
            &[
                ("docker/Dockerfile", "FROM scratch\n"),
                ("docker/Dockerfile.dockerignore", "docker\nREADME.md\n"),
            ],
        );
        let context = context_archive(root, ".", "docker/Dockerfile").unwrap();
        let names = names(&context.archive);
        assert!(names.contains(&"docker/Dockerfile".to_owned()), "{names:?}");
        assert!(names.contains(&"docker/Dockerfile.dockerignore".to_owned()));
        assert!(names.contains(&"app/node_modules/big/index.js".to_owned()));
        assert!(!names.contains(&"README.md".to_owned()));
        assert_eq!(
            context.ignored,
            Some(("docker/Dockerfile.dockerignore".to_owned(), 1))
        );
    }

    #[test]
    fn a_bad_or_escaping_dockerignore_fails_the_build_without_reading_the_host() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        write_tree(
            root,
            &[
                ("Dockerfile", "FROM scratch\n"),
                (".dockerignore", "ok\n[oops\n"),
            ],
        );
        let error = context_archive(root, ".", "Dockerfile")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains(".dockerignore, line 2: `[oops`"), "{error}");

        std::fs::remove_file(root.join(".dockerignore")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join(".dockerignore")).unwrap();
        let error = context_archive(root, ".", "Dockerfile")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("resolves outside the repository"), "{error}");
        assert!(!error.contains("root:"), "{error}");
    }

    #[test]
    fn refuses_paths_that_escape_the_checkout() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("Dockerfile")).unwrap();
        assert!(context_archive(root, "escape", "Dockerfile").is_err());
        assert!(context_archive(root, ".", "Dockerfile").is_err());
    }
}
