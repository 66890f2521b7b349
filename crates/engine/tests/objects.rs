#![allow(clippy::unwrap_used)]
//! Engine objects against the real Docker engine: an installation uses only volumes, networks
//! and image tags that carry its own labels (two installations share one engine), and app
//! containers run without privileges they were not given.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use helvetia_core::security::{Capability, ContainerSecurity};
use helvetia_engine::docker::{BuildRequest, ContainerSpec, Engine, EngineError, NetworkSpec};

fn nonce() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// `docker <args>`: its standard output, or `None` when it failed.
fn docker(args: &[&str]) -> Option<String> {
    let output = Command::new("/usr/bin/docker").args(args).output().unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8(output.stdout).unwrap())
}

/// Removes what a test made, passed or not: `docker <kind> rm -f <name>` for each.
struct Objects(Vec<(&'static str, String)>);

impl Objects {
    fn add(&mut self, kind: &'static str, name: &str) -> String {
        self.0.push((kind, name.to_owned()));
        name.to_owned()
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        // Containers first: they hold the networks, volumes and images.
        self.0.sort_by_key(|(kind, _)| *kind != "container");
        for (kind, name) in &self.0 {
            // `network rm` of the engine's 20.10 has no `--force`.
            let force = (*kind != "network").then_some("--force");
            let _ = Command::new("/usr/bin/docker")
                .args([*kind, "rm"])
                .args(force)
                .arg(name)
                .output();
        }
    }
}

/// Builds a `FROM scratch` image holding the host's static busybox as `engine`'s installation.
async fn busybox_image(engine: &Engine, tag: &str) -> String {
    let checkout = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", checkout.path().join("busybox")).unwrap();
    std::fs::write(
        checkout.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n",
    )
    .unwrap();
    let request = BuildRequest {
        checkout: checkout.path().to_owned(),
        context: ".".to_owned(),
        dockerfile: "Dockerfile".to_owned(),
        tag: tag.to_owned(),
        labels: HashMap::new(),
        timeout: Duration::from_secs(120),
        secrets: vec![],
        build_args: vec![],
    };
    engine.build_image(&request, |_| {}).await.unwrap()
}

/// A container's `HostConfig`, as `docker inspect` shows it.
fn host_config(container: &str) -> serde_json::Value {
    let inspect = docker(&["inspect", "--format", "{{json .HostConfig}}", container]).unwrap();
    serde_json::from_str(&inspect).unwrap()
}

fn refused_as_not_ours<T: std::fmt::Debug>(result: Result<T, EngineError>, owner: Option<&str>) {
    match result {
        Err(EngineError::NotOurs {
            owner: refused_for, ..
        }) => assert_eq!(refused_for.as_deref(), owner),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn another_installations_volumes_networks_and_tags_are_refused() {
    let run = nonce();
    let (a_id, b_id) = (format!("objects-a-{run}"), format!("objects-b-{run}"));
    let a = Engine::connect(&a_id).unwrap();
    let b = Engine::connect(&b_id).unwrap();
    let mut objects = Objects(vec![]);

    // A volume: adopted by its own installation, refused by another, and refused to anyone
    // when Helvetia did not create it.
    let volume = objects.add("volume", &format!("helvetia-objects-{run}"));
    a.ensure_volume(&volume, "demo").await.unwrap();
    a.ensure_volume(&volume, "demo").await.unwrap();
    refused_as_not_ours(b.ensure_volume(&volume, "demo").await, Some(&a_id));
    let unlabelled = objects.add("volume", &format!("helvetia-objects-{run}-bare"));
    docker(&["volume", "create", &unlabelled]).unwrap();
    refused_as_not_ours(a.ensure_volume(&unlabelled, "demo").await, None);

    // A network, likewise.
    let network = NetworkSpec {
        name: objects.add("network", &format!("helvetia-objects-{run}")),
        subnet: format!("10.252.{}.0/24", rand::random::<u8>()),
        project: "demo".to_owned(),
    };
    a.ensure_network(&network).await.unwrap();
    a.ensure_network(&network).await.unwrap();
    refused_as_not_ours(b.ensure_network(&network).await, Some(&a_id));

    // Image tags: neither run nor moved when they name the other's image.
    let repository = format!("helvetia-objects-{run}");
    let a_tag = objects.add("image", &format!("{repository}:a"));
    let b_tag = objects.add("image", &format!("{repository}:b"));
    let a_image = busybox_image(&a, &a_tag).await;
    let b_image = busybox_image(&b, &b_tag).await;
    assert_ne!(
        a_image, b_image,
        "the installation's label is part of the image"
    );
    assert_eq!(a.owned_image(&a_tag).await.unwrap(), a_image);
    refused_as_not_ours(b.owned_image(&a_tag).await, Some(&a_id));
    refused_as_not_ours(b.tag_image(&b_image, &repository, "a").await, Some(&a_id));
    assert_eq!(a.image_id(&a_tag).await.unwrap(), a_image, "not moved");

    // Pruning removes a tag only while it names the image listed as this installation's.
    let moved = objects.add("image", &format!("{repository}:moved"));
    docker(&["tag", &b_image, &moved]).unwrap();
    assert!(!a.remove_tag(&a_image, &moved).await.unwrap());
    assert_eq!(a.image_id(&moved).await.unwrap(), b_image);
    let extra = objects.add("image", &format!("{repository}:extra"));
    a.tag_image(&a_image, &repository, "extra").await.unwrap();
    assert!(a.remove_tag(&a_image, &extra).await.unwrap());
    assert!(docker(&["image", "inspect", &extra]).is_none());
}

/// Runs `script` (busybox sh) to its end with `security`; returns its exit code and output.
async fn run(
    engine: &Engine,
    objects: &mut Objects,
    image: &str,
    security: ContainerSecurity,
    script: &str,
) -> (i64, String) {
    let name = objects.add("container", &format!("helvetia-objects-{}", nonce()));
    let spec = ContainerSpec {
        name,
        image: image.to_owned(),
        network: "bridge".to_owned(),
        port: None,
        env: vec![],
        labels: HashMap::new(),
        limits: Default::default(),
        command: Some(vec![
            "/bin/busybox".to_owned(),
            "sh".to_owned(),
            "-c".to_owned(),
            script.to_owned(),
        ]),
        stop_grace: Duration::from_secs(1),
        mounts: vec![],
        security,
    };
    let id = engine.run_container(&spec).await.unwrap();
    let code = engine.wait_container(&id).await.unwrap();
    let output = engine
        .container_logs_tail(&id, 20)
        .await
        .unwrap()
        .join("\n");
    (code, output)
}

#[tokio::test]
async fn containers_hold_only_the_privileges_they_were_given() {
    let engine = Engine::connect("engine-tests").unwrap();
    let mut objects = Objects(vec![]);
    let tag = objects.add("image", &format!("helvetia-objects-{}:privileges", nonce()));
    let image = busybox_image(&engine, &tag).await;
    let chown = "/bin/busybox touch /owned && /bin/busybox chown 1:1 /owned";

    // By default: no new privileges, every capability dropped but binding low ports, so a
    // root process cannot even change a file's owner; the root filesystem is writable.
    let (code, output) = run(
        &engine,
        &mut objects,
        &image,
        ContainerSecurity::default(),
        chown,
    )
    .await;
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("Operation not permitted"), "{output}");
    let host = host_config(&objects.0.last().unwrap().1);
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(host["CapAdd"], serde_json::json!(["NET_BIND_SERVICE"]));
    assert_eq!(host["ReadonlyRootfs"], false);

    // The override gives a capability back.
    let with_chown = ContainerSecurity {
        cap_add: BTreeSet::from([Capability::Chown]),
        ..ContainerSecurity::default()
    };
    let (code, output) = run(&engine, &mut objects, &image, with_chown, chown).await;
    assert_eq!(code, 0, "{output}");

    // A read-only root: writing to it fails, /tmp stays writable.
    let read_only = ContainerSecurity {
        read_only_root: true,
        ..ContainerSecurity::default()
    };
    let write = "/bin/busybox mkdir -p /tmp && echo kept > /tmp/scratch && /bin/busybox cat /tmp/scratch && echo lost > /written";
    let (code, output) = run(&engine, &mut objects, &image, read_only, write).await;
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("kept"), "{output}");
    assert!(output.contains("Read-only file system"), "{output}");
    let host = host_config(&objects.0.last().unwrap().1);
    assert_eq!(host["ReadonlyRootfs"], true);
    assert!(host["Tmpfs"]["/tmp"].is_string(), "{host}");
    let (code, output) = run(
        &engine,
        &mut objects,
        &image,
        ContainerSecurity::default(),
        write,
    )
    .await;
    assert_eq!(code, 0, "{output}");
}
