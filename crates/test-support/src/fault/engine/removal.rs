//! Finding and removing what a second engine leaves on the host — after a drop, or after the
//! run that made it crashed: processes in its cgroup and namespace, mounts under its directory,
//! the namespace (with its veth and route), the shims' sockets, the cgroups, the directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::super::{Claim, output, run};
use super::{FIRST_BLOCK, SLOTS, dir, name, slot_of};

/// Removes what engines of crashed earlier runs left in any slot no live process holds.
pub(in crate::fault) fn remove_stale() {
    // The directory is made first and removed last, so it marks every leftover.
    for slot in (0..SLOTS).filter(|slot| dir(*slot).exists()) {
        if let Some(_claim) = Claim::try_take(&name(slot)) {
            remove(slot);
        }
    }
}

/// What of engine `name` exists on the host: its namespace, veth, routes, cgroups, mounts and
/// directory. Empty once it is dropped.
pub fn engine_leftovers(name: &str) -> Vec<String> {
    let slot = slot_of(name);
    let mut leftovers = Vec::new();
    if Path::new("/var/run/netns").join(name).exists() {
        leftovers.push(format!("network namespace {name}"));
    }
    if Path::new("/sys/class/net")
        .join(format!("{name}h"))
        .exists()
    {
        leftovers.push(format!("veth {name}h"));
    }
    let block = format!("10.{}.", FIRST_BLOCK + slot);
    leftovers.extend(
        run("ip", &["route"])
            .lines()
            .filter(|route| route.starts_with(&block))
            .map(|route| format!("route {route}")),
    );
    leftovers.extend(
        cgroups(name)
            .iter()
            .map(|c| format!("cgroup {}", c.display())),
    );
    leftovers.extend(mounts_under(&dir(slot)).map(|m| format!("mount {m}")));
    // `dockerd`, `containerd` and the shims name the directory in their arguments.
    let marker = dir(slot).display().to_string();
    leftovers.extend(
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                std::fs::read(entry.path().join("cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&marker))
            })
            .map(|entry| format!("process {}", entry.file_name().to_string_lossy())),
    );
    if dir(slot).exists() {
        leftovers.push(format!("directory {}", dir(slot).display()));
    }
    leftovers
}

/// The engine's cgroups (one per controller on cgroup v1, one on v2), its containers' inside.
fn cgroups(name: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let controllers = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join(name));
    std::iter::once(root.join(name))
        .chain(controllers)
        .filter(|path| path.is_dir())
        .collect()
}

/// Mount points at or under `dir`, deepest first.
fn mounts_under(dir: &Path) -> impl Iterator<Item = String> {
    let prefix = dir.display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut mounts: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| *point == prefix || point.starts_with(&format!("{prefix}/")))
        .map(str::to_owned)
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.len()));
    mounts.dedup();
    mounts.into_iter()
}

/// Removes everything of slot `slot`'s engine, whether it runs, was killed or crashed.
pub(super) fn remove(slot: u8) {
    let name = name(slot);
    // Containers first (their processes are in the cgroup, not the namespace), then
    // `dockerd`, `containerd` and the shims, which all run in the namespace.
    for cgroup in cgroups(&name) {
        kill_all(walk(&cgroup).flat_map(|group| pids(&group.join("cgroup.procs"))));
    }
    let in_namespace: Vec<String> =
        String::from_utf8_lossy(&output("ip", &["netns", "pids", &name]).stdout)
            .lines()
            .map(str::to_owned)
            .collect();
    // The shims listen on sockets in the host's /run/containerd/s, which a killed shim leaves.
    let shim_sockets = in_namespace
        .first()
        .map(|pid| shim_sockets(Path::new("/proc").join(pid).join("net/unix")))
        .unwrap_or_default();
    kill_all(in_namespace);
    for socket in shim_sockets {
        let _ = std::fs::remove_file(socket);
    }
    for point in mounts_under(&dir(slot)) {
        if !output("umount", &[&point]).status.success() {
            let _ = output("umount", &["--lazy", &point]);
        }
    }
    let _ = output("ip", &["netns", "delete", &name]);
    let _ = output("ip", &["link", "delete", &format!("{name}h")]);
    for cgroup in cgroups(&name) {
        let mut groups: Vec<PathBuf> = walk(&cgroup).collect();
        groups.sort_by_key(|group| std::cmp::Reverse(group.components().count()));
        for group in groups {
            // A cgroup goes once its last process has exited, which SIGKILL does not wait for.
            let deadline = Instant::now() + Duration::from_secs(5);
            while group.exists()
                && std::fs::remove_dir(&group).is_err()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir(slot));
}

/// Paths of the shim sockets in a network namespace's `/proc/<pid>/net/unix` (unix sockets are
/// listed per namespace; the path is the eighth column).
fn shim_sockets(net_unix: PathBuf) -> Vec<String> {
    std::fs::read_to_string(net_unix)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(7))
        .filter(|path| path.starts_with("/run/containerd/s/"))
        .map(str::to_owned)
        .collect()
}

/// `dir` and every cgroup below it.
fn walk(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut pending = vec![dir.to_path_buf()];
    let mut found = Vec::new();
    while let Some(dir) = pending.pop() {
        pending.extend(
            std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
                .map(|entry| entry.path()),
        );
        found.push(dir);
    }
    found.into_iter()
}

fn pids(procs: &Path) -> Vec<String> {
    std::fs::read_to_string(procs)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn kill_all(pids: impl IntoIterator<Item = String>) {
    let pids: Vec<String> = pids.into_iter().collect();
    if !pids.is_empty() {
        let mut args = vec!["-KILL"];
        args.extend(pids.iter().map(String::as_str));
        let _ = output("kill", &args);
    }
}
