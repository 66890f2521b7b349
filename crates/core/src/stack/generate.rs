//! The Dockerfile of each stack. Every one runs the app as user 10001 (65534 for a static
//! site), listens on `$PORT` (which Helvetia sets), and keeps dependencies in a layer of
//! their own, installed through a cache mount.

use super::Context;

/// The user generated images run as: no name needed, no home but `/tmp`.
const USER: &str = "USER 10001:10001";

/// Where a static site's `index.html` may be, in the order looked at.
pub(super) const STATIC_ROOTS_INDEX: &[&str] = &[
    "index.html",
    "public/index.html",
    "dist/index.html",
    "build/index.html",
    "_site/index.html",
];

/// A generated Dockerfile and what it was made from.
pub(super) struct Generated {
    pub found: Vec<String>,
    pub dockerfile: String,
}

/// The `CMD` running `command` through `/bin/sh`: with `exec` when it is one plain command,
/// so that the app is process 1 and gets the stop signal.
fn cmd(command: &str) -> String {
    let plain = !command
        .chars()
        .any(|c| matches!(c, ';' | '&' | '|' | '<' | '>' | '(' | ')' | '`' | '\n'));
    let line = if plain {
        format!("exec {command}")
    } else {
        command.to_owned()
    };
    let words = ["/bin/sh", "-c", line.as_str()];
    format!(
        "CMD {}",
        serde_json::to_string(&words).unwrap_or_else(|_| "[]".into())
    )
}

/// The Procfile's start command, noted in `found`.
fn procfile_start(context: &Context<'_>, found: &mut Vec<String>) -> Option<String> {
    let (name, command) = context.procfile.as_ref()?.start()?;
    found.push(format!("Procfile ({name})"));
    Some(command.to_owned())
}

fn lines(lines: Vec<String>) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[derive(serde::Deserialize, Default)]
struct PackageJson {
    #[serde(default)]
    scripts: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    dependencies: serde_json::Map<String, serde_json::Value>,
    #[serde(default, rename = "devDependencies")]
    dev_dependencies: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    main: Option<String>,
}

impl PackageJson {
    fn script(&self, name: &str) -> Option<&str> {
        self.scripts
            .get(name)?
            .as_str()
            .filter(|s| !s.trim().is_empty())
    }
}

pub(super) fn node(context: &Context<'_>) -> Result<Generated, String> {
    let files = context.files;
    let package: PackageJson = match files.read("package.json") {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| format!("package.json is not valid JSON: {e}"))?,
        None => return Err("package.json could not be read".into()),
    };
    let mut found = vec!["package.json".to_owned()];
    // (lockfile, how to install with it, its cache)
    let manager = [
        (
            "pnpm-lock.yaml",
            "corepack enable && pnpm install --frozen-lockfile",
            "/root/.local/share/pnpm/store",
            "pnpm",
        ),
        (
            "yarn.lock",
            "yarn install --frozen-lockfile",
            "/usr/local/share/.cache/yarn",
            "yarn",
        ),
        ("package-lock.json", "npm ci", "/root/.npm", "npm"),
        ("npm-shrinkwrap.json", "npm ci", "/root/.npm", "npm"),
    ]
    .into_iter()
    .find(|(lockfile, ..)| files.is_file(lockfile));
    let has_dependencies = !package.dependencies.is_empty() || !package.dev_dependencies.is_empty();
    let mut dockerfile = vec![
        format!("FROM {}", context.images.node),
        "WORKDIR /app".to_owned(),
        "ENV HOME=/tmp PATH=/app/node_modules/.bin:$PATH".to_owned(),
    ];
    let runner = match manager {
        Some((lockfile, install, cache, runner)) => {
            found.push(format!("{lockfile} ({runner})"));
            dockerfile.push(format!("COPY package.json {lockfile} ./"));
            dockerfile.push(format!("RUN --mount=type=cache,target={cache} {install}"));
            runner
        }
        None if has_dependencies => {
            found.push("no lockfile (npm)".to_owned());
            dockerfile.push("COPY package.json ./".to_owned());
            dockerfile.push("RUN --mount=type=cache,target=/root/.npm npm install".to_owned());
            "npm"
        }
        None => "npm",
    };
    dockerfile.push("COPY . .".to_owned());
    if package.script("build").is_some() {
        found.push("build script".to_owned());
        dockerfile.push(format!("RUN {runner} run build"));
    }
    let start = match procfile_start(context, &mut found) {
        Some(command) => command,
        None => match package.script("start") {
            Some(script) => {
                found.push("start script".to_owned());
                script.to_owned()
            }
            None => {
                let mut candidates = package.main.iter().map(String::as_str).chain([
                    "server.js",
                    "index.js",
                    "app.js",
                    "main.js",
                ]);
                let file = candidates.find(|file| files.is_file(file)).ok_or(
                    "it has no `start` script, no Procfile and no server.js, index.js, app.js \
                     or main.js",
                )?;
                found.push(file.to_owned());
                format!("node {file}")
            }
        },
    };
    dockerfile.push("ENV NODE_ENV=production".to_owned());
    dockerfile.push(USER.to_owned());
    dockerfile.push(cmd(&start));
    Ok(Generated {
        found,
        dockerfile: lines(dockerfile),
    })
}

/// Whether `requirements` (the text of requirements.txt, pyproject.toml) names `package`.
pub(super) fn requires(requirements: &str, package: &str) -> bool {
    requirements.lines().any(|line| {
        let line = line
            .trim()
            .trim_start_matches(['"', '\''])
            .to_ascii_lowercase();
        line.strip_prefix(package).is_some_and(|rest| {
            rest.is_empty()
                || rest.starts_with(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
        })
    })
}

/// The module and variable of a WSGI/ASGI app object: `app = …` or `application = …` at the
/// top level of app.py, main.py, wsgi.py, asgi.py or server.py, or Django's
/// `<project>/wsgi.py` (`asgi.py`) beside manage.py.
fn app_object(context: &Context<'_>, asgi: bool) -> Option<(String, String)> {
    let files = context.files;
    let mut candidates: Vec<String> = ["app.py", "main.py", "wsgi.py", "asgi.py", "server.py"]
        .map(str::to_owned)
        .to_vec();
    if files.is_file("manage.py") {
        let module = if asgi { "asgi.py" } else { "wsgi.py" };
        candidates.extend(
            files
                .directories("")
                .into_iter()
                .map(|dir| format!("{dir}/{module}")),
        );
    }
    candidates.into_iter().find_map(|path| {
        let text = files.read(&path)?;
        let variable = ["app", "application"].into_iter().find(|name| {
            text.lines().any(|line| {
                line.strip_prefix(name).is_some_and(|rest| {
                    rest.trim_start().starts_with('=') && !rest.trim_start().starts_with("==")
                })
            })
        })?;
        let module = path.trim_end_matches(".py").replace('/', ".");
        Some((module, variable.to_owned()))
    })
}

pub(super) fn python(context: &Context<'_>) -> Result<Generated, String> {
    let files = context.files;
    let mut found = vec![];
    let mut dockerfile = vec![
        format!("FROM {}", context.images.python),
        "WORKDIR /app".to_owned(),
        "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HOME=/tmp"
            .to_owned(),
    ];
    let requirements = files.read("requirements.txt").unwrap_or_default();
    let pyproject = files.read("pyproject.toml").unwrap_or_default();
    let listed = requirements
        .lines()
        .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'));
    let mut install_after_copy = None;
    if files.is_file("uv.lock") {
        found.push("uv.lock (uv)".to_owned());
        dockerfile.push("COPY pyproject.toml uv.lock ./".to_owned());
        dockerfile.push(
            "RUN --mount=type=cache,target=/root/.cache/uv python3 -m pip install uv && uv sync --frozen --no-dev --no-install-project"
                .to_owned(),
        );
        dockerfile.push("ENV PATH=/app/.venv/bin:$PATH".to_owned());
    } else if files.is_file("requirements.txt") {
        found.push("requirements.txt".to_owned());
        if listed {
            dockerfile.push("COPY requirements.txt ./".to_owned());
            dockerfile.push(
                "RUN --mount=type=cache,target=/root/.cache/pip python3 -m pip install -r requirements.txt"
                    .to_owned(),
            );
        }
    } else if files.is_file("pyproject.toml") || files.is_file("setup.py") {
        let marker = if files.is_file("pyproject.toml") {
            "pyproject.toml"
        } else {
            "setup.py"
        };
        found.push(marker.to_owned());
        install_after_copy = Some(
            "RUN --mount=type=cache,target=/root/.cache/pip python3 -m pip install .".to_owned(),
        );
    }
    dockerfile.push("COPY . .".to_owned());
    dockerfile.extend(install_after_copy);
    let dependencies = format!("{requirements}\n{pyproject}");
    let start = match procfile_start(context, &mut found) {
        Some(command) => command,
        None => {
            let server = [("gunicorn", false), ("uvicorn", true)]
                .into_iter()
                .find(|(package, _)| requires(&dependencies, package));
            match server.and_then(|(server, asgi)| Some((server, app_object(context, asgi)?))) {
                Some(("gunicorn", (module, variable))) => {
                    found.push(format!("gunicorn, {module}:{variable}"));
                    format!("gunicorn --bind 0.0.0.0:${{PORT:-8080}} {module}:{variable}")
                }
                Some((_, (module, variable))) => {
                    found.push(format!("uvicorn, {module}:{variable}"));
                    format!("uvicorn {module}:{variable} --host 0.0.0.0 --port ${{PORT:-8080}}")
                }
                None => {
                    let script = ["main.py", "app.py", "server.py"]
                        .into_iter()
                        .find(|file| files.is_file(file))
                        .ok_or(
                            "it has no Procfile, no gunicorn or uvicorn app object and no \
                             main.py, app.py or server.py to run",
                        )?;
                    found.push(script.to_owned());
                    format!("python3 {script}")
                }
            }
        }
    };
    dockerfile.push(USER.to_owned());
    dockerfile.push(cmd(&start));
    Ok(Generated {
        found,
        dockerfile: lines(dockerfile),
    })
}

pub(super) fn go(context: &Context<'_>) -> Result<Generated, String> {
    let files = context.files;
    let mut found = vec!["go.mod".to_owned()];
    let modules = if files.is_file("go.sum") {
        found.push("go.sum".to_owned());
        "COPY go.mod go.sum ./"
    } else {
        "COPY go.mod ./"
    };
    // The main package: the root's, else the only one under cmd/.
    let package = match files.directories("cmd").as_slice() {
        [only] if !files.is_file("main.go") => {
            found.push(format!("cmd/{only}"));
            format!("./cmd/{only}")
        }
        _ => ".".to_owned(),
    };
    let caches =
        "--mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build";
    let mut dockerfile = vec![
        format!("FROM {} AS build", context.images.go),
        "WORKDIR /src".to_owned(),
        "ENV GOPATH=/go GOMODCACHE=/go/pkg/mod GOCACHE=/root/.cache/go-build CGO_ENABLED=0"
            .to_owned(),
        modules.to_owned(),
        "RUN --mount=type=cache,target=/go/pkg/mod go mod download".to_owned(),
        "COPY . .".to_owned(),
        format!("RUN {caches} go build -o /out/app {package}"),
        format!("FROM {}", context.images.go_runtime),
        "COPY --from=build /out/app /usr/local/bin/app".to_owned(),
        USER.to_owned(),
    ];
    let start = procfile_start(context, &mut found).unwrap_or_else(|| "/usr/local/bin/app".into());
    dockerfile.push(cmd(&start));
    Ok(Generated {
        found,
        dockerfile: lines(dockerfile),
    })
}

pub(super) fn static_site(context: &Context<'_>) -> Result<Generated, String> {
    let index = STATIC_ROOTS_INDEX
        .iter()
        .find(|index| context.files.is_file(index))
        .ok_or("it has no index.html")?;
    let root = index.trim_end_matches("index.html").trim_end_matches('/');
    let source = if root.is_empty() { "." } else { root };
    Ok(Generated {
        found: vec![(*index).to_owned()],
        dockerfile: lines(vec![
            format!("FROM {}", context.images.static_site),
            format!("COPY {source} /srv/www"),
            "USER 65534:65534".to_owned(),
            cmd("httpd -f -p ${PORT:-8080} -h /srv/www"),
        ]),
    })
}

pub(super) fn procfile(context: &Context<'_>) -> Result<Generated, String> {
    let mut found = vec![];
    let start = procfile_start(context, &mut found).ok_or("its Procfile names no process")?;
    Ok(Generated {
        found,
        dockerfile: lines(vec![
            format!("FROM {}", context.images.procfile),
            "WORKDIR /app".to_owned(),
            "COPY . .".to_owned(),
            "ENV HOME=/tmp".to_owned(),
            USER.to_owned(),
            cmd(&start),
        ]),
    })
}
