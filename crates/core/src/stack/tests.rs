use std::collections::BTreeMap;

use super::*;

/// A repository in memory: paths and their text.
struct Files(BTreeMap<String, String>);

impl Files {
    fn new(files: &[(&str, &str)]) -> Files {
        Files(
            files
                .iter()
                .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
                .collect(),
        )
    }
}

impl RepoFiles for Files {
    fn is_file(&self, path: &str) -> bool {
        self.0.contains_key(path)
    }

    fn read(&self, path: &str) -> Option<String> {
        self.0.get(path).cloned()
    }

    fn directories(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut found: Vec<String> = self
            .0
            .keys()
            .filter_map(|path| {
                let (first, _) = path.strip_prefix(&prefix)?.split_once('/')?;
                Some(first.to_owned())
            })
            .collect();
        found.dedup();
        found
    }
}

fn detected(files: &[(&str, &str)]) -> Detected {
    detect(&Files::new(files), &StackImages::default()).unwrap()
}

#[test]
fn a_node_app_installs_with_its_lockfile_s_manager_and_runs_its_start_script() {
    let package = r#"{"scripts": {"start": "node server.js"}, "dependencies": {"x": "1"}}"#;
    for (lockfile, install, cache) in [
        ("package-lock.json", "npm ci", "/root/.npm"),
        (
            "yarn.lock",
            "yarn install --frozen-lockfile",
            "/usr/local/share/.cache/yarn",
        ),
        (
            "pnpm-lock.yaml",
            "pnpm install --frozen-lockfile",
            "/root/.local/share/pnpm/store",
        ),
    ] {
        let app = detected(&[("package.json", package), (lockfile, ""), ("server.js", "")]);
        assert_eq!(app.kind, StackKind::Node);
        assert!(app.dockerfile.starts_with("FROM node:22-bookworm-slim\n"));
        assert!(
            app.dockerfile
                .contains(&format!("COPY package.json {lockfile} ./")),
            "{}",
            app.dockerfile
        );
        assert!(
            app.dockerfile
                .contains(&format!("RUN --mount=type=cache,target={cache} ")),
            "{}",
            app.dockerfile
        );
        assert!(app.dockerfile.contains(install), "{}", app.dockerfile);
        assert!(app.dockerfile.contains("USER 10001:10001\n"));
        assert!(
            app.dockerfile
                .ends_with("CMD [\"/bin/sh\",\"-c\",\"exec node server.js\"]\n")
        );
        assert!(!app.dockerfile.contains("# syntax"));
        assert!(
            app.found.contains(&"start script".to_owned()),
            "{:?}",
            app.found
        );
    }
}

#[test]
fn a_node_app_without_dependencies_installs_nothing_and_a_build_script_runs() {
    let app = detected(&[(
        "package.json",
        r#"{"scripts": {"build": "tsc", "start": "node dist/index.js && echo done"}}"#,
    )]);
    assert!(
        !app.dockerfile.contains("npm install"),
        "{}",
        app.dockerfile
    );
    assert!(app.dockerfile.contains("RUN npm run build\n"));
    // Not one plain command: run as written, without `exec`.
    assert!(
        app.dockerfile
            .contains(r#""-c","node dist/index.js && echo done"]"#),
        "{}",
        app.dockerfile
    );
    let plain = detected(&[("package.json", r#"{"main": "app.js"}"#), ("app.js", "")]);
    assert!(
        plain.dockerfile.contains("exec node app.js"),
        "{}",
        plain.dockerfile
    );
    let error = detect(
        &Files::new(&[("package.json", "{}")]),
        &StackImages::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("no `start` script"), "{error}");
    let broken = detect(
        &Files::new(&[("package.json", "{")]),
        &StackImages::default(),
    )
    .unwrap_err();
    assert!(broken.to_string().contains("not valid JSON"), "{broken}");
}

#[test]
fn a_procfile_s_web_process_starts_any_stack() {
    let app = detected(&[
        ("requirements.txt", "flask\n"),
        (
            "Procfile",
            "# processes\nworker: python3 worker.py\nweb: gunicorn app:app\n",
        ),
    ]);
    assert_eq!(app.kind, StackKind::Python);
    assert!(
        app.dockerfile.ends_with("\"exec gunicorn app:app\"]\n"),
        "{}",
        app.dockerfile
    );
    assert!(app.found.contains(&"Procfile (web)".to_owned()));
    let bare = detected(&[("Procfile", "worker: ./run.sh\n")]);
    assert_eq!(bare.kind, StackKind::Procfile);
    assert!(bare.dockerfile.starts_with("FROM debian:bookworm-slim\n"));
    assert!(bare.dockerfile.contains("exec ./run.sh"));
    let empty = detect(&Files::new(&[("Procfile", "\n")]), &StackImages::default()).unwrap_err();
    assert!(empty.to_string().contains("names no process"), "{empty}");
}

#[test]
fn a_python_app_runs_its_wsgi_or_asgi_object_or_its_script() {
    let wsgi = detected(&[
        ("requirements.txt", "Flask==3.0\ngunicorn>=21\n"),
        ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
    ]);
    assert!(wsgi.dockerfile.contains("COPY requirements.txt ./\nRUN --mount=type=cache,target=/root/.cache/pip python3 -m pip install -r requirements.txt\nCOPY . .\n"), "{}", wsgi.dockerfile);
    assert!(
        wsgi.dockerfile
            .contains("gunicorn --bind 0.0.0.0:${PORT:-8080} app:app"),
        "{}",
        wsgi.dockerfile
    );
    let asgi = detected(&[
        (
            "pyproject.toml",
            "[project]\ndependencies = [\n  \"fastapi\",\n  \"uvicorn[standard]\",\n]\n",
        ),
        ("main.py", "application = make()\n"),
    ]);
    assert!(
        asgi.dockerfile
            .contains("uvicorn main:application --host 0.0.0.0"),
        "{}",
        asgi.dockerfile
    );
    assert!(
        asgi.dockerfile.contains(
            "COPY . .\nRUN --mount=type=cache,target=/root/.cache/pip python3 -m pip install .\n"
        ),
        "{}",
        asgi.dockerfile
    );
    let django = detected(&[
        ("requirements.txt", "django\ngunicorn\n"),
        ("manage.py", ""),
        ("site/wsgi.py", "application = get_wsgi_application()\n"),
    ]);
    assert!(
        django.dockerfile.contains(" site.wsgi:application"),
        "{}",
        django.dockerfile
    );
    let script = detected(&[
        ("requirements.txt", "# nothing\n"),
        ("app.py", "print(1)\n"),
    ]);
    assert!(
        !script.dockerfile.contains("pip install"),
        "{}",
        script.dockerfile
    );
    assert!(script.dockerfile.contains("exec python3 app.py"));
    let uv = detected(&[("pyproject.toml", ""), ("uv.lock", ""), ("main.py", "")]);
    assert!(
        uv.dockerfile.contains("uv sync --frozen"),
        "{}",
        uv.dockerfile
    );
    // `gunicorn-extras` is not gunicorn.
    assert!(!super::generate::requires("gunicorn-extras\n", "gunicorn"));
    assert!(super::generate::requires("gunicorn==21\n", "gunicorn"));
    let nothing = detect(
        &Files::new(&[("requirements.txt", "")]),
        &StackImages::default(),
    )
    .unwrap_err();
    assert!(
        nothing.to_string().contains("main.py, app.py or server.py"),
        "{nothing}"
    );
}

#[test]
fn a_go_app_is_compiled_in_one_image_and_runs_in_another() {
    let app = detected(&[("go.mod", "module x\n"), ("go.sum", ""), ("main.go", "")]);
    assert!(
        app.dockerfile
            .starts_with("FROM golang:1.23-bookworm AS build\n")
    );
    assert!(app.dockerfile.contains("COPY go.mod go.sum ./\n"));
    assert!(app.dockerfile.contains("go build -o /out/app .\n"));
    assert!(
        app.dockerfile
            .contains("FROM debian:bookworm-slim\nCOPY --from=build")
    );
    let cmd = detected(&[("go.mod", ""), ("cmd/server/main.go", "")]);
    assert!(
        cmd.dockerfile
            .contains("go build -o /out/app ./cmd/server\n"),
        "{}",
        cmd.dockerfile
    );
}

#[test]
fn a_static_site_is_served_from_where_its_index_is() {
    let root = detected(&[("index.html", "")]);
    assert_eq!(root.kind, StackKind::Static);
    assert!(
        root.dockerfile
            .contains("COPY . /srv/www\nUSER 65534:65534\n")
    );
    let public = detected(&[("public/index.html", ""), ("README.md", "")]);
    assert!(
        public.dockerfile.contains("COPY public /srv/www\n"),
        "{}",
        public.dockerfile
    );
    // A Node app with a public/ directory is a Node app.
    let node = detected(&[
        ("public/index.html", ""),
        ("package.json", r#"{"scripts":{"start":"x"}}"#),
    ]);
    assert_eq!(node.kind, StackKind::Node);
}

#[test]
fn nothing_recognised_says_what_was_looked_for() {
    let error = detect(&Files::new(&[("README.md", "hi")]), &StackImages::default()).unwrap_err();
    assert_eq!(error, NotDetected::Nothing);
    let message = error.to_string();
    for named in [
        "package.json",
        "requirements.txt",
        "go.mod",
        "index.html",
        "Procfile",
    ] {
        assert!(message.contains(named), "{message}");
    }
}

#[test]
fn base_images_are_settings_that_cannot_inject_instructions() {
    let mut images = StackImages::default();
    images.set("node=helvetia-test/node:bookworm").unwrap();
    images
        .set("go-runtime=127.0.0.1:5000/base@sha256:abc")
        .unwrap();
    assert_eq!(images.node, "helvetia-test/node:bookworm");
    assert!(images.set("node=x\nRUN rm -rf /").is_err());
    assert!(images.set("node=").is_err());
    assert!(images.set("ruby=ruby:3").is_err());
    assert!(images.set("node").is_err());
    let app = detect(
        &Files::new(&[("package.json", r#"{"main":"a.js"}"#), ("a.js", "")]),
        &images,
    )
    .unwrap();
    assert!(
        app.dockerfile
            .starts_with("FROM helvetia-test/node:bookworm\n")
    );
}
