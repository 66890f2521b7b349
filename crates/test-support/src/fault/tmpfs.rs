//! A small tmpfs mounted where a test wants a filesystem to run full (a server's data
//! directory, its build directory), filled on demand and unmounted when dropped — also when
//! the test panics, since unwinding drops it.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{output, run};

/// The file that takes the space; removing it gives the space back.
const FILLER: &str = ".filler";

pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `megabytes` at `path` (created if missing).
    pub fn mount(path: &Path, megabytes: u32) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let target = path.to_str().unwrap();
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
        let target = self.path.to_str().unwrap_or_default();
        // Lazily: a process still holding a file there (a server being killed) must not keep
        // the mount behind.
        let unmounted = output("umount", &["--lazy", target]);
        assert!(
            unmounted.status.success() || std::thread::panicking(),
            "umount {target}: {}",
            String::from_utf8_lossy(&unmounted.stderr)
        );
    }
}
