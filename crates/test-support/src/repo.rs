//! Git repositories on the local disk holding one of `fixtures/apps`, served as packed bare
//! repositories, with helpers to commit new versions.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::unique;

/// A git repository on the local disk holding one of `fixtures/apps`, served as a bare repo.
pub struct FixtureRepo {
    dir: tempfile::TempDir,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/apps")
}

fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Test Author",
            "-c",
            "user.email=test@example.org",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl FixtureRepo {
    /// A repository whose first commit is `fixtures/apps/<app>`.
    pub fn new(app: &str) -> FixtureRepo {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        copy_tree(&fixtures().join(app), &work);
        std::fs::copy("/bin/busybox", work.join("busybox")).unwrap();
        // Fixtures that must really build (not hit the engine's shared layer cache) copy this.
        std::fs::write(work.join(".fixture-id"), unique("")).unwrap();
        git(&work, &["init", "--quiet", "--initial-branch=main"]);
        git(&work, &["add", "--all"]);
        git(
            &work,
            &[
                "commit",
                "--quiet",
                "--message",
                &format!("{app}: first version"),
            ],
        );
        git(
            dir.path(),
            &["clone", "--quiet", "--bare", "work", "repo.git"],
        );
        let repo = FixtureRepo { dir };
        // A local clone shares the work tree's loose objects; the served repository is packed.
        repo.repack();
        repo
    }

    pub fn url(&self) -> String {
        self.dir
            .path()
            .join("repo.git")
            .to_string_lossy()
            .into_owned()
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn commit_and_push(&self, message: &str) {
        let work = self.work();
        git(&work, &["add", "--all"]);
        git(&work, &["commit", "--quiet", "--message", message]);
        git(&work, &["push", "--quiet", &self.url(), "main"]);
        self.repack();
    }

    /// Packs the served repository, as any hosted repository is: fetches then reuse compressed
    /// objects instead of compressing loose ones on every fetch.
    fn repack(&self) {
        git(&self.dir.path().join("repo.git"), &["repack", "-adq"]);
    }

    /// Commits `fixtures/apps/<variant>` laid over the current tree.
    pub fn overlay(&self, variant: &str) {
        copy_tree(&fixtures().join(variant), &self.work());
        self.commit_and_push(&format!("switch to {variant}"));
    }

    /// The commit `main` points to in the served repository.
    pub fn head(&self) -> String {
        let output = Command::new("git")
            .args(["rev-parse", "main"])
            .current_dir(self.dir.path().join("repo.git"))
            .output()
            .unwrap();
        assert!(output.status.success(), "git rev-parse main");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Commits a new version of `path` on pull request `number`'s branch (made from `main`
    /// the first time) and publishes it as GitHub does, as `refs/pull/<number>/head` of the
    /// served repository — also for a fork's pull request. Answers the commit.
    pub fn pull_request(&self, number: u64, path: &str, contents: &str) -> String {
        let work = self.work();
        let branch = format!("pr-{number}");
        let exists = Command::new("git")
            .args([
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ])
            .current_dir(&work)
            .output()
            .unwrap()
            .status
            .success();
        if exists {
            git(&work, &["checkout", "--quiet", &branch]);
        } else {
            git(&work, &["checkout", "--quiet", "-b", &branch]);
        }
        std::fs::write(work.join(path), contents).unwrap();
        git(&work, &["add", "--all"]);
        git(
            &work,
            &[
                "commit",
                "--quiet",
                "--message",
                &format!("pull request {number}"),
            ],
        );
        let head = format!("HEAD:refs/pull/{number}/head");
        git(&work, &["push", "--quiet", "--force", &self.url(), &head]);
        let output = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&work)
            .output()
            .unwrap();
        git(&work, &["checkout", "--quiet", "main"]);
        self.repack();
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Commits a new version of one file.
    pub fn write(&self, path: &str, contents: &str, message: &str) {
        let file = self.work().join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(file, contents).unwrap();
        self.commit_and_push(message);
    }
}
