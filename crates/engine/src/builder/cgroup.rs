//! The control group the builder engine runs its build steps in (`dockerd --cgroup-parent`):
//! created by Helvetia, capped before every build (memory, CPU, pids), and read after a failed
//! build to tell which cap stopped it.
//!
//! Both layouts are written through [`CgroupFs`], rooted at a path (`/sys/fs/cgroup` on a
//! machine, a temporary directory in tests): cgroup v1 keeps one directory per controller
//! (`memory/<group>`, `cpu/<group>`, `pids/<group>`), v2 one directory for all of them.

use std::io;
use std::path::{Path, PathBuf};

/// The CFS period the CPU cap is a share of (the kernel's default, 100 ms).
const CPU_PERIOD_MICROS: u64 = 100_000;
/// The builder's share of contended CPU time, an eighth of the default (1024 on v1, 100 on
/// v2): within its quota a build still yields to the apps whenever they want the CPU, so a
/// busy build costs their latency little.
const CPU_SHARES_V1: u32 = 128;
const CPU_WEIGHT_V2: u32 = 13;

/// Which cgroup hierarchy a machine mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The cgroup filesystem, rooted at `root`.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    root: PathBuf,
    version: CgroupVersion,
}

impl CgroupFs {
    pub fn new(root: impl Into<PathBuf>, version: CgroupVersion) -> CgroupFs {
        CgroupFs {
            root: root.into(),
            version,
        }
    }

    /// The hierarchy mounted at `root`, if it offers the memory, CPU and pids controllers the
    /// caps need: v2 lists them in `cgroup.controllers`, v1 mounts one directory for each.
    pub fn detect(root: &Path) -> Option<CgroupFs> {
        if let Ok(controllers) = std::fs::read_to_string(root.join("cgroup.controllers")) {
            let offered: Vec<&str> = controllers.split_whitespace().collect();
            return ["memory", "cpu", "pids"]
                .iter()
                .all(|wanted| offered.contains(wanted))
                .then(|| CgroupFs::new(root, CgroupVersion::V2));
        }
        ["memory", "cpu", "pids"]
            .iter()
            .all(|controller| root.join(controller).join("cgroup.procs").is_file())
            .then(|| CgroupFs::new(root, CgroupVersion::V1))
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The group `name` (a single path component) in this hierarchy.
    pub fn group(&self, name: &str) -> BuildGroup {
        BuildGroup {
            fs: self.clone(),
            name: name.to_owned(),
        }
    }
}

/// What one build may use. The group holds every step of the build, so these are the build's
/// caps while builds run one at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildCaps {
    pub memory_bytes: u64,
    /// In cores, fractions allowed.
    pub cpus: f64,
    pub pids: u32,
}

/// The counters by which a cap that stopped a build is recognised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapCounters {
    /// Processes the kernel killed for going over the memory cap (on v1: the times the
    /// group's memory met its cap).
    pub oom_kills: u64,
    /// Forks refused for reaching the pids cap, where the kernel counts them in the group
    /// (v2; v1 counts them only in the step's own cgroup, gone once it ends).
    pub pids_refused: u64,
    /// The most processes the group held at once (`pids.peak`, Linux 6.1).
    pub pids_peak: u64,
}

/// A cap that stopped a build, found by comparing [`CapCounters`] from before and after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapHit {
    Memory,
    Pids,
}

impl CapCounters {
    /// Which cap of `caps` counted hits between `before` and `self`; memory first, since a
    /// step killed for its memory may have been refused forks on its way down too.
    pub fn hit_since(&self, before: &CapCounters, caps: &BuildCaps) -> Option<CapHit> {
        let pids_cap = u64::from(caps.pids);
        if self.oom_kills > before.oom_kills {
            Some(CapHit::Memory)
        } else if self.pids_refused > before.pids_refused
            || (self.pids_peak >= pids_cap && before.pids_peak < pids_cap)
        {
            Some(CapHit::Pids)
        } else {
            None
        }
    }
}

/// The builder engine's control group.
#[derive(Debug, Clone)]
pub struct BuildGroup {
    fs: CgroupFs,
    name: String,
}

impl BuildGroup {
    /// The value of `dockerd --cgroup-parent`: the group's path from the hierarchy's root.
    pub fn parent_argument(&self) -> String {
        format!("/{}", self.name)
    }

    /// Creates the group (again: creating an existing one is no error). On v2 the root must
    /// delegate the controllers to its children first.
    pub fn create(&self) -> io::Result<()> {
        match self.fs.version {
            CgroupVersion::V1 => {
                for controller in ["memory", "cpu", "pids"] {
                    std::fs::create_dir_all(self.dir(controller))?;
                }
                Ok(())
            }
            CgroupVersion::V2 => {
                let control = self.fs.root.join("cgroup.subtree_control");
                let enabled = std::fs::read_to_string(&control).unwrap_or_default();
                for controller in ["memory", "cpu", "pids"] {
                    if !enabled.split_whitespace().any(|c| c == controller) {
                        std::fs::write(&control, format!("+{controller}"))?;
                    }
                }
                std::fs::create_dir_all(self.dir(""))
            }
        }
    }

    /// Sets the caps for the next build.
    pub fn set_caps(&self, caps: &BuildCaps) -> io::Result<()> {
        let quota = (caps.cpus * CPU_PERIOD_MICROS as f64).round().max(1000.0) as u64;
        match self.fs.version {
            CgroupVersion::V1 => {
                // Memory plus swap (`memory.memsw.*`) is left alone: set to the same figure,
                // the kernel here killed steps at the cap without counting it in either
                // `failcnt`, so a build stopped by it could not say why. Swap is the machine's.
                let memory = self.dir("memory");
                std::fs::write(
                    memory.join("memory.limit_in_bytes"),
                    caps.memory_bytes.to_string(),
                )?;
                // The peak cannot be reset on v1; a group that reached the cap before is made
                // anew (it holds no process between builds), so that reaching it again shows.
                let pids = self.dir("pids");
                if read_counter(&pids.join("pids.peak")) >= u64::from(caps.pids) {
                    remove_group_tree(&pids)?;
                    std::fs::create_dir_all(&pids)?;
                }
                let cpu = self.dir("cpu");
                std::fs::write(cpu.join("cpu.cfs_period_us"), CPU_PERIOD_MICROS.to_string())?;
                std::fs::write(cpu.join("cpu.cfs_quota_us"), quota.to_string())?;
                std::fs::write(cpu.join("cpu.shares"), CPU_SHARES_V1.to_string())?;
                std::fs::write(self.dir("pids").join("pids.max"), caps.pids.to_string())
            }
            CgroupVersion::V2 => {
                let dir = self.dir("");
                std::fs::write(dir.join("memory.max"), caps.memory_bytes.to_string())?;
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    std::fs::write(swap, "0")?;
                }
                std::fs::write(dir.join("cpu.max"), format!("{quota} {CPU_PERIOD_MICROS}"))?;
                std::fs::write(dir.join("cpu.weight"), CPU_WEIGHT_V2.to_string())?;
                std::fs::write(dir.join("pids.max"), caps.pids.to_string())
            }
        }
    }

    /// The group's counters now. A file that cannot be read counts as zero: the build then
    /// fails with the engine's words only.
    pub fn counters(&self) -> CapCounters {
        let oom_kills = match self.fs.version {
            // v1 counts kills (`memory.oom_control`) only in the cgroup where they happen, which
            // is a build step's own below the group, gone once it ends; the group's count of
            // allocations that met its limit stays.
            // With swap accounting the memory-plus-swap limit (set to the same figure) is the
            // one met, and counted apart.
            CgroupVersion::V1 => {
                let memory = self.dir("memory");
                read_counter(&memory.join("memory.failcnt"))
                    + read_counter(&memory.join("memory.memsw.failcnt"))
            }
            // Counted for the group's descendants too.
            CgroupVersion::V2 => keyed_counter(&self.dir("").join("memory.events"), "oom_kill"),
        };
        let pids_events = match self.fs.version {
            CgroupVersion::V1 => self.dir("pids").join("pids.events"),
            CgroupVersion::V2 => self.dir("").join("pids.events"),
        };
        CapCounters {
            oom_kills,
            pids_refused: keyed_counter(&pids_events, "max"),
            pids_peak: read_counter(&pids_events.with_file_name("pids.peak")),
        }
    }

    fn dir(&self, controller: &str) -> PathBuf {
        match self.fs.version {
            CgroupVersion::V1 => self.fs.root.join(controller).join(&self.name),
            CgroupVersion::V2 => self.fs.root.join(&self.name),
        }
    }
}

/// Removes a cgroup directory and the empty groups below it (BuildKit's `buildkit/…`): a
/// cgroup is removed with `rmdir`, its files with it.
fn remove_group_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_group_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// The number a single-value file holds, zero when absent.
fn read_counter(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// The value of `key` in a flat keyed file (`key value` lines), zero when absent.
fn keyed_counter(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == key).then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: BuildCaps = BuildCaps {
        memory_bytes: 256 << 20,
        cpus: 1.5,
        pids: 512,
    };

    fn read(path: PathBuf) -> String {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn v2_caps_are_written_into_one_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        let fs = CgroupFs::detect(root.path()).unwrap();
        assert_eq!(fs.version(), CgroupVersion::V2);
        let group = fs.group("helvetia-0a1b-builder");
        group.create().unwrap();
        // The last controller delegated is what the fake file holds; the kernel's keeps all.
        assert_eq!(read(root.path().join("cgroup.subtree_control")), "+pids");
        let dir = root.path().join("helvetia-0a1b-builder");
        std::fs::write(dir.join("memory.swap.max"), "max").unwrap();
        group.set_caps(&CAPS).unwrap();
        assert_eq!(read(dir.join("memory.max")), (256u64 << 20).to_string());
        assert_eq!(read(dir.join("memory.swap.max")), "0");
        assert_eq!(read(dir.join("cpu.max")), "150000 100000");
        assert_eq!(read(dir.join("cpu.weight")), "13");
        assert_eq!(read(dir.join("pids.max")), "512");
        assert_eq!(group.parent_argument(), "/helvetia-0a1b-builder");
    }

    #[test]
    fn v2_counters_name_the_cap_that_was_hit() {
        let root = tempfile::tempdir().unwrap();
        let group = CgroupFs::new(root.path(), CgroupVersion::V2).group("g");
        let dir = root.path().join("g");
        std::fs::create_dir_all(&dir).unwrap();
        let before = group.counters();
        assert_eq!(before, CapCounters::default());
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(
            group.counters().hit_since(&before, &CAPS),
            Some(CapHit::Memory)
        );
        let before = group.counters();
        std::fs::write(dir.join("pids.events"), "max 3\n").unwrap();
        assert_eq!(
            group.counters().hit_since(&before, &CAPS),
            Some(CapHit::Pids)
        );
        let before = group.counters();
        assert_eq!(group.counters().hit_since(&before, &CAPS), None);
        std::fs::write(dir.join("pids.peak"), "512\n").unwrap();
        assert_eq!(
            group.counters().hit_since(&before, &CAPS),
            Some(CapHit::Pids),
            "the peak reached the cap"
        );
    }

    #[test]
    fn v1_caps_are_written_per_controller() {
        let root = tempfile::tempdir().unwrap();
        for controller in ["memory", "cpu", "pids"] {
            std::fs::create_dir_all(root.path().join(controller)).unwrap();
            std::fs::write(root.path().join(controller).join("cgroup.procs"), "").unwrap();
        }
        let fs = CgroupFs::detect(root.path()).unwrap();
        assert_eq!(fs.version(), CgroupVersion::V1);
        let group = fs.group("g");
        group.create().unwrap();
        group.set_caps(&CAPS).unwrap();
        let memory = root.path().join("memory/g");
        assert_eq!(
            read(memory.join("memory.limit_in_bytes")),
            (256u64 << 20).to_string()
        );
        assert_eq!(read(root.path().join("cpu/g/cpu.cfs_quota_us")), "150000");
        assert_eq!(read(root.path().join("cpu/g/cpu.cfs_period_us")), "100000");
        assert_eq!(read(root.path().join("cpu/g/cpu.shares")), "128");
        assert_eq!(read(root.path().join("pids/g/pids.max")), "512");
        std::fs::write(memory.join("memory.failcnt"), "2\n").unwrap();
        std::fs::write(memory.join("memory.memsw.failcnt"), "1\n").unwrap();
        std::fs::write(root.path().join("pids/g/pids.events"), "max 5\n").unwrap();
        assert_eq!(
            group.counters(),
            CapCounters {
                oom_kills: 3,
                pids_refused: 5,
                pids_peak: 0,
            }
        );
    }

    #[test]
    fn a_machine_without_the_controllers_has_no_build_caps() {
        let root = tempfile::tempdir().unwrap();
        assert!(CgroupFs::detect(root.path()).is_none());
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        assert!(
            CgroupFs::detect(root.path()).is_none(),
            "no pids controller"
        );
    }
}
