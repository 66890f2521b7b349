//! `bench/build_cache`: what the builder's cache saves, and that it lasts.
//!
//! A fixture whose dependency step is deliberately heavy: each "package" in `packages.txt`
//! is compiled by a busy `awk` computation (real CPU work, about 2 s each on this machine,
//! `BENCH_PACKAGES`, default 5), into a cache mount (`RUN --mount=type=cache`) it is copied
//! from, before the app's code is copied in. Measured, each from the deployment's own log
//! ("Built image … in N ms", which includes handing the image to the host engine):
//!
//! 1. a cold build;
//! 2. a code-only change (the dependency layer cached);
//! 3. a code-only change after Helvetia restarted (it adopts the running builder);
//! 4. a code-only change after the builder engine itself was stopped and started again by
//!    the next Helvetia (the cache is on disk, in its data root);
//! 5. one package added: the layer is rebuilt, but the cache mount still holds the other
//!    packages, so only the new one is compiled.
//!
//! Prints each build's time and the cold / code-only ratio (goal ≥ 5×).
//!
//! Run: `eval "$(sudo scripts/dev-setup.sh)" && cargo bench -p helvetia --bench build_cache`

use helvetia_test_support::bench::env_or;
use helvetia_test_support::{
    FixtureRepo, TestServer, remove_project_objects, stop_builder, unique,
};

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\n\
     RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
     COPY packages.txt /src/packages.txt\n\
     RUN --mount=type=cache,target=/cache set -e; mkdir -p /deps; \
         for p in $(cat /src/packages.txt); do \
           if [ -f /cache/$p ]; then echo \"cached $p\"; else \
             awk -v seed=\"$p\" 'BEGIN { s = length(seed); for (i = 0; i < 6000000; i++) s = (s * 31 + i) % 1000003; print s }' > /cache/$p.part; \
             mv /cache/$p.part /cache/$p; echo \"compiled $p\"; fi; \
           cp /cache/$p /deps/$p; done\n\
     COPY www /www\n\
     CMD [\"/bin/sh\", \"-c\", \"exec httpd -f -p ${PORT:-8080} -h /www\"]\n";

/// One deploy; returns the build's milliseconds and how many packages it compiled.
async fn build(server: &TestServer, project: &str) -> (f64, usize) {
    let deployment = server.deploy(project, "app").await;
    let id = deployment["id"].as_i64().expect("id");
    let log = server.deploy_log(id).await;
    assert_eq!(deployment["status"], "live", "{log}");
    let millis = log
        .lines()
        .find_map(|line| {
            let rest = line.split("Built image ").nth(1)?;
            rest.split(" in ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no build in: {log}"));
    let compiled = log
        .lines()
        .filter(|line| line.contains("compiled p"))
        .count();
    (millis, compiled)
}

#[tokio::main]
async fn main() {
    let packages: usize = env_or("BENCH_PACKAGES", 5);
    let bridge = format!("10.215.{}.1/24", rand::random::<u8>());
    let args = ["--builder", "isolated", "--builder-bridge-address", &bridge];
    let mut server = TestServer::start_with(env!("CARGO_BIN_EXE_helvetia"), &args).await;
    let project = unique("cache");
    let repo = FixtureRepo::new("web");
    let list: Vec<String> = (1..=packages).map(|p| format!("p{p}")).collect();
    repo.write("packages.txt", &(list.join("\n") + "\n"), "packages");
    repo.write("Dockerfile", DOCKERFILE, "a heavy dependency step");
    server.service(&project, "app", &repo).await;

    let mut rows: Vec<(&str, (f64, usize))> = vec![];
    rows.push(("cold", build(&server, &project).await));
    let mut version = 0;
    let mut code_change = |repo: &FixtureRepo| {
        version += 1;
        repo.write(
            "www/index.html",
            &format!("version {version}\n"),
            "code only",
        );
    };
    code_change(&repo);
    rows.push(("code-only change", build(&server, &project).await));

    server.terminate();
    server.launch().await;
    code_change(&repo);
    rows.push((
        "code-only change, Helvetia restarted",
        build(&server, &project).await,
    ));

    server.terminate();
    stop_builder(&server.data_dir());
    server.launch().await;
    code_change(&repo);
    rows.push((
        "code-only change, builder restarted",
        build(&server, &project).await,
    ));

    repo.write(
        "packages.txt",
        &(list.join("\n") + &format!("\np{}\n", packages + 1)),
        "one more package",
    );
    rows.push((
        "one package added (cache mount)",
        build(&server, &project).await,
    ));

    println!("bench/build_cache: {packages} packages of ~2 s each, builds in ms");
    println!();
    println!("| build | ms | packages compiled | cold ÷ this |");
    println!("|---|---|---|---|");
    let cold = rows[0].1.0;
    for (label, (millis, compiled)) in &rows {
        println!(
            "| {label} | {millis:.0} | {compiled} | {:.1}× |",
            cold / millis
        );
    }
    remove_project_objects(&project);
}
