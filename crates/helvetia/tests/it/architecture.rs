//! The shape ARCHITECTURE.md promises, checked on the source itself: no import cycle between
//! the modules of a crate, and no source file over 600 lines before its inline tests.
//!
//! A module and its own ancestors or descendants do not count as a cycle: a `mod.rs` that
//! re-exports its children while they use its error type is one facade. Everything else —
//! `monitor` using `reconcile` while `reconcile` reaches `monitor` through others — is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The part of a file before its inline tests.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .collect::<Vec<_>>()
        .join("\n")
}

type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut module: Module = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        module.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        module.pop();
    }
    module
}

fn is_segment(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every module path a file names through `crate::…`, `super::…` (also inside `{…}` groups)
/// or `use child::…`, as written: resolving them is the caller's.
fn paths_named(module: &Module, code: &str) -> Vec<Module> {
    let mut named = vec![];
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (root, base) in [("crate::", vec![]), ("super::", parent(module))] {
            for (at, _) in line.match_indices(root) {
                let rest = &line[at + root.len()..];
                let (head, group) = match rest.find('{') {
                    Some(open) if rest[..open].chars().all(|c| is_segment_char(c) || c == ':') => {
                        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
                        (&rest[..open], Some(&rest[open + 1..close]))
                    }
                    _ => (rest, None),
                };
                let prefix: Module = base.iter().cloned().chain(segments(head)).collect();
                named.push(prefix.clone());
                for item in group.into_iter().flat_map(|g| g.split(',')) {
                    named.push(
                        prefix
                            .iter()
                            .cloned()
                            .chain(segments(item.trim()))
                            .collect(),
                    );
                }
            }
        }
        let trimmed = line.trim_start();
        for keyword in ["use ", "pub use ", "pub(crate) use ", "pub(super) use "] {
            if let Some(rest) = trimmed.strip_prefix(keyword) {
                let child: Module = module.iter().cloned().chain(segments(rest)).collect();
                named.push(child);
            }
        }
    }
    named
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The module-like segments a path starts with: `a::b::Thing;` gives `a`, `b`.
fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    let end = path
        .find(|c: char| !(is_segment_char(c) || c == ':'))
        .unwrap_or(path.len());
    path[..end]
        .split("::")
        .take_while(|s| is_segment(s))
        .map(str::to_owned)
}

fn parent(module: &Module) -> Module {
    module[..module.len().saturating_sub(1)].to_vec()
}

fn related(a: &Module, b: &Module) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The import graph of one crate's `src`: module → the modules it uses.
fn import_graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let files = rust_files(src);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let resolve = |path: &Module| {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| modules.contains(prefix))
    };
    files
        .iter()
        .map(|file| {
            let module = module_of(src, file);
            let uses = paths_named(&module, &code_of(file))
                .iter()
                .filter_map(resolve)
                .filter(|target| !target.is_empty() && !related(target, &module))
                .collect();
            (module, uses)
        })
        .collect()
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(start) = path.iter().position(|m| m == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut vec![], &mut done))
}

fn crate_sources() -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    sources.sort();
    sources
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let sources = crate_sources();
    assert!(sources.len() >= 6, "{sources:?}");
    for src in sources {
        let graph = import_graph(&src);
        if let Some(cycle) = find_cycle(&graph) {
            let shown: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            panic!("{}: import cycle {}", src.display(), shown.join(" → "));
        }
    }
}

#[test]
fn the_checker_sees_a_cycle_between_sibling_modules() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("lib.rs", "mod a;\nmod b;\nmod c;\n");
    write("a.rs", "use crate::b;\n");
    write("b.rs", "use crate::{c::Other, d};\n");
    write(
        "c.rs",
        "// use crate::a is only a comment\nfn f() { super::a::g() }\n",
    );
    let cycle = find_cycle(&import_graph(dir.path())).expect("a → b → c → a");
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    write("c.rs", "fn f() {}\n");
    assert_eq!(find_cycle(&import_graph(dir.path())), None);
}

#[test]
fn no_source_file_is_over_600_lines_before_its_inline_tests() {
    let root = workspace();
    let mut files = rust_files(&root.join("bench"));
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let krate = krate.unwrap().path();
        files.extend(rust_files(&krate.join("src")));
        files.extend(rust_files(&krate.join("tests")));
    }
    assert!(files.len() > 100, "{} files", files.len());
    let long: Vec<String> = files
        .iter()
        .map(|file| (file, code_of(file).lines().count()))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(file, lines)| format!("{} ({lines} lines)", file.display()))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}
