//! Installations sharing one engine: every engine object's name carries the installation, so
//! two with the same project, service and volume names share nothing; and an installation from
//! before that upgrades in place, keeping its volumes' data.

use std::process::Command;

use helvetia_test_support::{FixtureRepo, TestServer, project_volumes, unique};
use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::Cleanup;

/// `docker <args>`' standard output; the command must succeed.
fn docker(args: &[&str]) -> String {
    let output = Command::new("/usr/bin/docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The project's networks, by name, straight from the engine.
fn project_networks(project: &str) -> Vec<String> {
    let listed = docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        &format!("label=io.helvetia.project={project}"),
    ]);
    listed.lines().map(str::to_owned).collect()
}

/// `/data/notes` of the service, through the edge router, after appending `query` (if any).
async fn notes(server: &TestServer, project: &str, query: &str) -> String {
    let host = format!("web.{project}.localhost");
    let (status, body) = server
        .through_edge(&host, &format!("/cgi-bin/notes{query}"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// A service `web` of `project` with a volume `data` at `/data`; returns the service's id.
async fn service_with_a_volume(server: &TestServer, project: &str, repo: &FixtureRepo) -> i64 {
    server.service(project, "web", repo).await;
    server.cli_ok(&[
        "volumes",
        "add",
        &format!("{project}/web"),
        "data",
        "--path",
        "/data",
    ]);
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    service["id"].as_i64().unwrap()
}

async fn deploy_live(server: &TestServer, project: &str) -> Value {
    let deployed = server.deploy(project, "web").await;
    let id = deployed["id"].as_i64().unwrap();
    assert_eq!(
        deployed["status"],
        "live",
        "{}",
        server.deploy_log(id).await
    );
    deployed
}

/// The name of the container the engine runs for the service now.
async fn serving_container(server: &TestServer, project: &str) -> String {
    let service = server
        .get(&format!("/api/v1/projects/{project}/services/web"))
        .await;
    service["status"]["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_installations_on_one_engine_share_no_object() {
    let (production, staging) = tokio::join!(
        TestServer::start(crate::BINARY),
        TestServer::start(crate::BINARY)
    );
    let project = unique("twins");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    // The same names everywhere, and (fresh databases) the same service and deployment ids.
    let (production_id, staging_id) = tokio::join!(
        service_with_a_volume(&production, &project, &repo),
        service_with_a_volume(&staging, &project, &repo)
    );
    assert_eq!(production_id, staging_id);
    let (production_live, staging_live) = tokio::join!(
        deploy_live(&production, &project),
        deploy_live(&staging, &project)
    );
    assert_eq!(production_live["id"], staging_live["id"]);

    assert_ne!(production_live["image"], staging_live["image"]);
    let (production_scope, staging_scope) = (production.scope().await, staging.scope().await);
    let mut networks = project_networks(&project);
    networks.sort();
    let mut expected = [
        production_scope.network(&project),
        staging_scope.network(&project),
    ];
    expected.sort();
    assert_eq!(networks, expected);
    assert_eq!(project_volumes(&project).len(), 2);
    assert_ne!(
        serving_container(&production, &project).await,
        serving_container(&staging, &project).await
    );
    assert_eq!(
        notes(&production, &project, "?production").await,
        "production\n"
    );
    assert_eq!(notes(&staging, &project, "?staging").await, "staging\n");
    assert_eq!(notes(&production, &project, "").await, "production\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_installation_from_before_scoped_names_upgrades_in_place() {
    let mut server = TestServer::start(crate::BINARY).await;
    let project = unique("upgrade");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("web");
    let service_id = service_with_a_volume(&server, &project, &repo).await;
    let scope = server.scope().await;
    let instance = scope.instance().to_owned();
    let labels = [
        "--label".to_owned(),
        "io.helvetia.managed=true".to_owned(),
        "--label".to_owned(),
        format!("io.helvetia.instance={instance}"),
        "--label".to_owned(),
        format!("io.helvetia.project={project}"),
    ];

    // What the release before left in the engine and the store: a volume and a network named
    // without the installation (with its labels), recorded under those names.
    server.terminate();
    let old_volume = format!("helvetia-{project}-web-data-{service_id}");
    let old_network = format!("helvetia-{project}");
    // Outside every test server's pool (10.128.0.0/10).
    let octet = u8::from_str_radix(&unique("")[..2], 16).unwrap();
    let subnet = format!("10.253.{octet}.0/24");
    let mut create = vec!["volume", "create"];
    create.extend(labels.iter().map(String::as_str));
    create.push(&old_volume);
    docker(&create);
    let mut create = vec!["network", "create", "--subnet", &subnet];
    create.extend(labels.iter().map(String::as_str));
    create.push(&old_network);
    docker(&create);
    server
        .sql(&format!(
            "UPDATE volumes SET engine_name = '{old_volume}';
             INSERT INTO networks (project_id, name, subnet, created_at)
                 SELECT project_id, '{old_network}', '{subnet}', 0 FROM services;"
        ))
        .await;
    server.launch().await;
    let first = deploy_live(&server, &project).await;
    let first_id = first["id"].as_i64().unwrap();
    assert_eq!(
        notes(&server, &project, "?before-the-upgrade").await,
        "before-the-upgrade\n"
    );

    // …and its container and image tag, also named without the installation.
    server.terminate();
    let old_container = format!("helvetia-{project}-web-{first_id}-0");
    let old_tag = format!("helvetia/{project}-web:{first_id}");
    let new_tag = first["image"].as_str().unwrap();
    docker(&[
        "rename",
        &scope.container(&project, "web", first_id, 0),
        &old_container,
    ]);
    docker(&["tag", new_tag, &old_tag]);
    docker(&["rmi", new_tag]);
    server
        .sql(&format!(
            "UPDATE containers SET name = '{old_container}' WHERE deployment_id = {first_id};
             UPDATE deployments SET image = '{old_tag}' WHERE id = {first_id};"
        ))
        .await;

    // The upgraded server adopts all of it: nothing restarts, nothing is lost.
    server.launch().await;
    assert_eq!(notes(&server, &project, "").await, "before-the-upgrade\n");
    assert_eq!(serving_container(&server, &project).await, old_container);

    // The next deploy moves the container to the new name; the volume keeps its old one.
    repo.write("www/index.html", "hello from version 2\n", "second version");
    let second = deploy_live(&server, &project).await;
    let second_id = second["id"].as_i64().unwrap();
    assert_eq!(
        serving_container(&server, &project).await,
        scope.container(&project, "web", second_id, 0)
    );
    assert_eq!(project_volumes(&project), [old_volume]);
    assert_eq!(project_networks(&project), [old_network]);
    assert_eq!(
        notes(&server, &project, "?after-the-upgrade").await,
        "before-the-upgrade\nafter-the-upgrade\n"
    );

    // A rollback to the old image runs it under a tag of the new form.
    let (status, body) = server
        .api(
            Method::POST,
            &format!("/api/v1/projects/{project}/services/web/rollback"),
            Some(json!({"deployment": first_id})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let back = server.wait_finished(body["id"].as_i64().unwrap()).await;
    assert_eq!(back["status"], "live", "{back}");
    assert_eq!(
        back["image"],
        format!("{}:{}", scope.image_repository(&project, "web"), back["id"])
    );
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            back["image"].as_str().unwrap()
        ]),
        docker(&["image", "inspect", "--format", "{{.Id}}", &old_tag])
    );
    let host = format!("web.{project}.localhost");
    assert_eq!(
        server.through_edge(&host, "/").await.unwrap().1,
        "hello from version 1\n"
    );
    assert_eq!(
        notes(&server, &project, "").await,
        "before-the-upgrade\nafter-the-upgrade\n"
    );
}
