//! A small tmpfs mounted where a test wants a filesystem to run full (a server's data
//! directory, its build directory), filled on demand and unmounted when dropped — also when
//! the test panics, since unwinding drops it. A test process killed outright leaves its
//! mounts: each is claimed like the other fault targets, with its mount point recorded beside
//! the lock, and the next run unmounts those whose claim is free.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Claim, LOCK_DIR, lock_path, output, run};

/// Claim names start with this; a claim so named whose lock is free is a leftover.
const PREFIX: &str = "hvtfs_";

/// The file that takes the space; removing it gives the space back.
const FILLER: &str = ".filler";

pub struct Tmpfs {
    path: PathBuf,
    name: String,
    _claim: Claim,
}

impl Tmpfs {
    /// Mounts a tmpfs of `megabytes` at `path` (created if missing).
    pub fn mount(path: &Path, megabytes: u32) -> Tmpfs {
        super::remove_stale_once();
        let name = crate::unique(PREFIX);
        let claim = Claim::try_take(&name).expect("a fresh claim name");
        std::fs::create_dir_all(path).unwrap();
        let target = path.to_str().unwrap();
        std::fs::write(mount_point_path(&name), target).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m,mode=0755"),
                "tmpfs",
                target,
            ],
        );
        Tmpfs {
            path: path.to_owned(),
            name,
            _claim: claim,
        }
    }

    /// Writes a file until the filesystem is full: a short write takes the last pages, the
    /// next one fails with ENOSPC.
    pub fn fill(&self) {
        let mut file = std::fs::File::create(self.path.join(FILLER)).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.raw_os_error() == Some(28) => break,
                Err(error) => panic!("filling {}: {error}", self.path.display()),
            }
        }
    }

    /// Gives back the space [`Tmpfs::fill`] took.
    pub fn free(&self) {
        std::fs::remove_file(self.path.join(FILLER)).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = unmount(&self.name);
        assert!(
            unmounted.is_ok() || std::thread::panicking(),
            "{}",
            unmounted.unwrap_err()
        );
    }
}

/// Where the mount point of claim `name` is recorded.
fn mount_point_path(name: &str) -> PathBuf {
    Path::new(LOCK_DIR).join(format!("{name}.mount"))
}

/// Unmounts what claim `name` mounted and forgets it; the caller holds the claim.
fn unmount(name: &str) -> Result<(), String> {
    let record = mount_point_path(name);
    let target = std::fs::read_to_string(&record).unwrap_or_default();
    // Lazily: a process still holding a file there (a server being killed) must not keep the
    // mount behind.
    let unmounted = output("umount", &["--lazy", &target]);
    let _ = std::fs::remove_file(record);
    let _ = std::fs::remove_file(lock_path(name));
    if unmounted.status.success() {
        Ok(())
    } else {
        Err(format!(
            "umount {target}: {}",
            String::from_utf8_lossy(&unmounted.stderr)
        ))
    }
}

/// Unmounts the tmpfs mounts of crashed earlier runs: claimed so, and no live process holds
/// the claim. Their mount points may be gone already (the test's temporary directory).
pub(super) fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(LOCK_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|n| n.strip_suffix(".lock"))
            .filter(|n| n.starts_with(PREFIX))
        else {
            continue;
        };
        if let Some(_claim) = Claim::try_take(name) {
            // Nothing to unmount is fine: the crash came before the mount, or after it went.
            let _ = unmount(name);
        }
    }
}
