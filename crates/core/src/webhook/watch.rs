//! Watch paths: git-style globs over paths relative to the repository's root. `*` and `?` stay
//! within one directory, `**` crosses any number of them, and a pattern ending in `/` stands
//! for everything under that directory (`docs/` = `docs/**`).

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::validation::Invalid;

pub const MAX_PATTERNS: usize = 50;
pub const MAX_PATTERN_LEN: usize = 200;

/// A service's watch paths, compiled once; empty means "every change".
#[derive(Debug, Clone)]
pub struct WatchPaths {
    patterns: Vec<String>,
    set: GlobSet,
}

impl PartialEq for WatchPaths {
    fn eq(&self, other: &WatchPaths) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for WatchPaths {}

impl Default for WatchPaths {
    fn default() -> WatchPaths {
        WatchPaths {
            patterns: Vec::new(),
            set: GlobSet::empty(),
        }
    }
}

fn compile(pattern: &str) -> Result<Glob, Invalid> {
    if pattern.trim().is_empty() || pattern.len() > MAX_PATTERN_LEN {
        return Err(Invalid::new(format!(
            "each pattern must be 1 to {MAX_PATTERN_LEN} characters"
        )));
    }
    if pattern.chars().any(char::is_control) {
        return Err(Invalid::new("patterns must not contain control characters"));
    }
    let expanded = match pattern.strip_suffix('/') {
        Some(directory) => format!("{directory}/**"),
        None => pattern.to_owned(),
    };
    GlobBuilder::new(expanded.trim_start_matches('/'))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|error| Invalid::new(format!("`{pattern}` is not a glob: {}", error.kind())))
}

impl WatchPaths {
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<WatchPaths, Invalid> {
        if patterns.len() > MAX_PATTERNS {
            return Err(Invalid::new(format!("at most {MAX_PATTERNS} patterns")));
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            builder.add(compile(pattern.as_ref())?);
        }
        let set = builder
            .build()
            .map_err(|error| Invalid::new(format!("the patterns do not compile: {error}")))?;
        Ok(WatchPaths {
            patterns: patterns.iter().map(|p| p.as_ref().to_owned()).collect(),
            set,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a change to any of `files` concerns the service.
    pub fn matches_any(&self, files: &[String]) -> bool {
        files.iter().any(|file| self.set.is_match(file))
    }
}
