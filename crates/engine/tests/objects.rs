#![allow(clippy::unwrap_used)]
//! Engine objects against the real Docker engine: an installation uses only volumes, networks
//! and image tags that carry its own labels (two installations share one engine).

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use helvetia_engine::docker::{BuildRequest, Engine, EngineError, NetworkSpec};

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
    };
    engine.build_image(&request, |_| {}).await.unwrap()
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
