//! Builds without a Dockerfile: which stack an app is, read from the files at its build
//! context's root, and the Dockerfile Helvetia writes for it. A small table ([`RULES`]): the
//! first stack whose marker files are present wins — Node, Python, Go, a static site, then a
//! bare `Procfile` — and a `Procfile`'s `web` process (else its first) is the start command
//! of any of them.
//!
//! The generated Dockerfiles install dependencies in a layer of their own with a cache mount
//! (so a code-only change rebuilds only the last layers, and a changed dependency list reuses
//! what was downloaded), run the app as an unprivileged user, and have no `# syntax=` line
//! (the engine's built-in frontend is used; nothing is fetched). Base images are settings
//! ([`StackImages`]).
//!
//! Pure: the files come through [`RepoFiles`].

use crate::validation::Invalid;

mod generate;
mod procfile;

pub use procfile::Procfile;

/// Read access to the app's files, relative to the build context's root.
pub trait RepoFiles {
    /// Whether `path` is a regular file (not a link, not a directory).
    fn is_file(&self, path: &str) -> bool;
    /// The text of a small regular file; `None` when it is missing, too large or not text.
    fn read(&self, path: &str) -> Option<String>;
    /// The names of the subdirectories of `dir` (`""` for the root), sorted.
    fn directories(&self, dir: &str) -> Vec<String>;
}

/// The stacks Helvetia recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StackKind {
    Node,
    Python,
    Go,
    Static,
    Procfile,
}

impl StackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StackKind::Node => "node",
            StackKind::Python => "python",
            StackKind::Go => "go",
            StackKind::Static => "static",
            StackKind::Procfile => "procfile",
        }
    }

    /// How the log names it.
    pub fn title(self) -> &'static str {
        match self {
            StackKind::Node => "a Node app",
            StackKind::Python => "a Python app",
            StackKind::Go => "a Go app",
            StackKind::Static => "a static site",
            StackKind::Procfile => "an app with a Procfile",
        }
    }
}

/// The base images generated Dockerfiles start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackImages {
    pub node: String,
    pub python: String,
    /// Where Go apps are compiled.
    pub go: String,
    /// Where compiled Go apps run.
    pub go_runtime: String,
    /// Serves a static site with busybox's `httpd` (and needs `/bin/sh`).
    pub static_site: String,
    /// Runs an app that only has a `Procfile`.
    pub procfile: String,
}

impl Default for StackImages {
    /// The official slim images.
    fn default() -> Self {
        StackImages {
            node: "node:22-bookworm-slim".into(),
            python: "python:3.12-slim-bookworm".into(),
            go: "golang:1.23-bookworm".into(),
            go_runtime: "debian:bookworm-slim".into(),
            static_site: "busybox:1.36".into(),
            procfile: "debian:bookworm-slim".into(),
        }
    }
}

impl StackImages {
    /// The settings' keys, as `--stack-image KEY=IMAGE` names them.
    pub const KEYS: [&'static str; 6] =
        ["node", "python", "go", "go-runtime", "static", "procfile"];

    /// Sets one image from `KEY=IMAGE`.
    pub fn set(&mut self, assignment: &str) -> Result<(), Invalid> {
        let (key, image) = assignment
            .split_once('=')
            .ok_or_else(|| Invalid::new(format!("`{assignment}` is not KEY=IMAGE")))?;
        check_image(image)?;
        let slot = match key {
            "node" => &mut self.node,
            "python" => &mut self.python,
            "go" => &mut self.go,
            "go-runtime" => &mut self.go_runtime,
            "static" => &mut self.static_site,
            "procfile" => &mut self.procfile,
            _ => {
                return Err(Invalid::new(format!(
                    "`{key}` is not one of {}",
                    StackImages::KEYS.join(", ")
                )));
            }
        };
        *slot = image.to_owned();
        Ok(())
    }
}

/// An image reference as a `FROM` line takes it: it must not carry a second instruction.
fn check_image(image: &str) -> Result<(), Invalid> {
    let valid = !image.is_empty()
        && image.len() <= 512
        && !image.starts_with('-')
        && image
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "`{image}` is not an image reference like node:22-bookworm-slim"
        )))
    }
}

/// A stack found, and the Dockerfile for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub kind: StackKind,
    /// What was found, for the log: `package.json`, `package-lock.json (npm)`, `start script`.
    pub found: Vec<String>,
    pub dockerfile: String,
}

/// Why no Dockerfile could be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotDetected {
    #[error("no stack recognised: looked for {}", looked_for())]
    Nothing,
    #[error("it looks like {} ({}), but {why}", kind.title(), found.join(", "))]
    Incomplete {
        kind: StackKind,
        found: Vec<String>,
        why: String,
    },
}

/// One stack: the files that mark it, and how its Dockerfile is made.
struct Rule {
    kind: StackKind,
    markers: &'static [&'static str],
    what: &'static str,
    generate: fn(&Context<'_>) -> Result<generate::Generated, String>,
}

/// What a generator reads.
struct Context<'a> {
    files: &'a dyn RepoFiles,
    images: &'a StackImages,
    procfile: Option<Procfile>,
}

const RULES: &[Rule] = &[
    Rule {
        kind: StackKind::Node,
        markers: &["package.json"],
        what: "package.json (Node)",
        generate: generate::node,
    },
    Rule {
        kind: StackKind::Python,
        markers: &["requirements.txt", "pyproject.toml", "uv.lock", "setup.py"],
        what: "requirements.txt, pyproject.toml, uv.lock or setup.py (Python)",
        generate: generate::python,
    },
    Rule {
        kind: StackKind::Go,
        markers: &["go.mod"],
        what: "go.mod (Go)",
        generate: generate::go,
    },
    Rule {
        kind: StackKind::Static,
        markers: generate::STATIC_ROOTS_INDEX,
        what: "index.html in the root, public/, dist/, build/ or _site/ (a static site)",
        generate: generate::static_site,
    },
    Rule {
        kind: StackKind::Procfile,
        markers: &["Procfile"],
        what: "a Procfile",
        generate: generate::procfile,
    },
];

fn looked_for() -> String {
    RULES
        .iter()
        .map(|rule| rule.what)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The app's stack and its Dockerfile.
pub fn detect(files: &dyn RepoFiles, images: &StackImages) -> Result<Detected, NotDetected> {
    let rule = RULES
        .iter()
        .find(|rule| rule.markers.iter().any(|marker| files.is_file(marker)))
        .ok_or(NotDetected::Nothing)?;
    let procfile = files.read("Procfile").map(|text| Procfile::parse(&text));
    let context = Context {
        files,
        images,
        procfile,
    };
    match (rule.generate)(&context) {
        Ok(generated) => Ok(Detected {
            kind: rule.kind,
            found: generated.found,
            dockerfile: generated.dockerfile,
        }),
        Err(why) => Err(NotDetected::Incomplete {
            kind: rule.kind,
            found: rule
                .markers
                .iter()
                .filter(|marker| files.is_file(marker))
                .map(|marker| (*marker).to_owned())
                .collect(),
            why,
        }),
    }
}

#[cfg(test)]
mod tests;
