//! The disk budget: under a budget far too small, the sweep removes only Helvetia's own build
//! cache, registry blobs and images — a user's image, another installation's image and the
//! host engine's build cache stay — and never what a live or rollback-able deployment needs.
//! Runs the isolated builder with its registry at the per-installation default address.

use std::process::Command;
use std::time::Duration;

use helvetia_test_support::fault::busybox_httpd_image;
use helvetia_test_support::{FixtureRepo, TestServer, eventually, free_port, unique};
use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::Cleanup;

/// The web fixture, with a step that writes 512 KiB of its own on every version: each build
/// leaves a layer, cache and registry blobs of its own.
const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\n\
    RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY www /www\n\
    RUN head -c 524288 /dev/urandom > /www/noise\n\
    CMD [\"/bin/sh\", \"-c\", \"exec httpd -f -p ${PORT:-8080} -h /www\"]\n";

fn docker(args: &[&str]) -> (bool, String) {
    let output = Command::new("/usr/bin/docker").args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    )
}

/// Builds an image outside Helvetia from a context with 256 KiB of its own: `labels` make it
/// look like another installation's.
fn outside_image(tag: &str, labels: &[&str]) {
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {}\nCOPY blob /blob\n", busybox_httpd_image()),
    )
    .unwrap();
    let blob: Vec<u8> = (0..262_144).map(|_| rand::random::<u8>()).collect();
    std::fs::write(context.path().join("blob"), blob).unwrap();
    let mut args = vec!["build", "-q", "-t", tag];
    for label in labels {
        args.extend(["--label", label]);
    }
    args.push(context.path().to_str().unwrap());
    let output = Command::new("/usr/bin/docker")
        .env("DOCKER_BUILDKIT", "1")
        .args(&args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

/// The host engine's build cache records, by id.
fn host_build_cache() -> Vec<String> {
    let (ok, table) = docker(&["system", "df", "-v"]);
    assert!(ok);
    table
        .lines()
        .skip_while(|line| !line.starts_with("Build cache usage"))
        .skip(2)
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// A series' value in a Prometheus exposition, 0 when absent.
fn series(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn deploy_version(server: &TestServer, project: &str, repo: &FixtureRepo, v: u32) -> Value {
    repo.write("www/index.html", &format!("version {v}\n"), "a version");
    let deployment = server.deploy(project, "web").await;
    let id = deployment["id"].as_i64().unwrap();
    assert_eq!(
        deployment["status"],
        "live",
        "{}",
        server.deploy_log(id).await
    );
    deployment
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_disk_budget_prunes_only_helvetias_own_objects_and_keeps_rollback_targets() {
    let outside = unique("outside");
    let user_tag = format!("{outside}/app:1");
    let other_tag = format!("{outside}/other-installation:1");
    outside_image(&user_tag, &[]);
    outside_image(
        &other_tag,
        &[
            "io.helvetia.managed=true",
            "io.helvetia.instance=someone-else",
            "io.helvetia.service-id=1",
        ],
    );
    let host_cache = host_build_cache();
    assert!(!host_cache.is_empty());

    let bridge = format!("10.213.{}.1/24", rand::random::<u8>());
    let exposition = format!("127.0.0.1:{}", free_port());
    let server = TestServer::start_with(
        crate::BINARY,
        &[
            "--builder",
            "isolated",
            "--builder-bridge-address",
            &bridge,
            "--disk-budget",
            "1M",
            "--images-kept",
            "2",
            "--metrics-listen",
            &exposition,
        ],
    )
    .await;
    let project = unique("budget");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    repo.write("Dockerfile", DOCKERFILE, "noise of its own");
    server.service(&project, "web", &repo).await;
    let mut deployments = vec![];
    for v in 1..=3 {
        deployments.push(deploy_version(&server, &project, &repo, v).await);
    }
    let registry = std::fs::read_to_string(server.data_dir().join("registry/address")).unwrap();
    let registry = registry.trim();
    // The registry's manifest of each deployment, from its log: `pushed to the registry:
    // ADDRESS/REPOSITORY@DIGEST`.
    let mut manifests = vec![];
    for deployment in &deployments {
        let log = server.deploy_log(deployment["id"].as_i64().unwrap()).await;
        let digest = deployment["image_digest"].as_str().unwrap().to_owned();
        let pushed = log
            .lines()
            .find_map(|line| line.split("pushed to the registry: ").nth(1))
            .unwrap_or_else(|| panic!("not through the registry: {log}"));
        let (remote, logged) = pushed.trim().split_once('@').unwrap();
        assert_eq!(logged, digest);
        let repository = remote.strip_prefix(&format!("{registry}/")).unwrap();
        manifests.push(format!(
            "http://{registry}/v2/{repository}/manifests/{digest}"
        ));
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let manifest_status = |url: String| {
        let http = http.clone();
        async move {
            http.head(url)
                .header(
                    "accept",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    // The sweep after the last drain: the first build's manifest (out of the rollback window
    // of two) deleted and its blobs collected; everything over the budget that is not needed
    // pruned from the builder's cache.
    let metrics = eventually(
        Duration::from_secs(60),
        "the sweep to reclaim the registry",
        || async {
            let text = http
                .get(format!("http://{exposition}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let gone = manifest_status(manifests[0].clone()).await == 404;
            (gone && series(&text, "helvetia_disk_freed_bytes_total{kind=\"registry\"}") > 0.0)
                .then_some(text)
        },
    )
    .await;
    assert_eq!(manifest_status(manifests[1].clone()).await, 200);
    assert_eq!(manifest_status(manifests[2].clone()).await, 200);
    assert!(
        series(
            &metrics,
            "helvetia_disk_freed_bytes_total{kind=\"build_cache\"}"
        ) > 0.0,
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, "helvetia_disk_budget_bytes"),
        1_048_576.0,
        "{metrics}"
    );
    assert!(server.log().contains("the disk budget's sweep freed"));
    assert!(server.log().contains("over the disk budget by"));

    // Runtime images: the first build's gone, the live one and the rollback target kept.
    let image = |deployment: &Value| deployment["image"].as_str().unwrap().to_owned();
    assert!(!docker(&["image", "inspect", &image(&deployments[0])]).0);
    assert!(docker(&["image", "inspect", &image(&deployments[1])]).0);
    assert!(docker(&["image", "inspect", &image(&deployments[2])]).0);
    // The builder keeps no built image once it is handed over.
    let builder = format!(
        "unix://{}",
        server.data_dir().join("builder/run/docker.sock").display()
    );
    let (ok, built) = docker(&[
        "-H",
        &builder,
        "images",
        "-q",
        "--filter",
        "label=io.helvetia.managed=true",
    ]);
    assert!(ok && built.is_empty(), "{built}");

    // What is not Helvetia's is untouched.
    assert!(docker(&["image", "inspect", &user_tag]).0);
    assert!(docker(&["image", "inspect", &other_tag]).0);
    let after = host_build_cache();
    let lost: Vec<&String> = host_cache.iter().filter(|id| !after.contains(id)).collect();
    assert!(lost.is_empty(), "host build cache records gone: {lost:?}");

    // The rollback target runs.
    let (status, body) = server
        .api(
            Method::POST,
            &format!("/api/v1/projects/{project}/services/web/rollback"),
            Some(json!({"deployment": deployments[1]["id"]})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let back = server.wait_finished(body["id"].as_i64().unwrap()).await;
    assert_eq!(back["status"], "live", "{back}");
    let host = format!("web.{project}.localhost");
    server.wait_answering(&host, Duration::from_secs(10)).await;
    let page = http
        .get(format!("http://127.0.0.1:{}/", server.http_port))
        .header("host", &host)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page, "version 2\n");

    for tag in [&user_tag, &other_tag] {
        docker(&["rmi", tag]);
    }
}
