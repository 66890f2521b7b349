use helvetia_core::container::{ContainerState, Health};
use helvetia_core::deployment::DeploymentStatus::*;
use helvetia_core::git::RepoPolicy;
use helvetia_core::routing::{Backend, route_name};
use helvetia_core::service::{PortInput, ServiceInput, ServiceSettings};
use helvetia_store::services::NewService;

use crate::backend::TestDb;
use crate::deployments::{build_main, demo_service};
use crate::projects::{hostname, project, service};

/// Takes a new deployment of `service` through to ready with one container at `address`.
pub async fn ready_deployment(
    db: &TestDb,
    service: &helvetia_core::service::Service,
    address: &str,
) -> i64 {
    let admin = db.admin().await;
    let d = db
        .store
        .create_deployment(&admin, service, &build_main())
        .await
        .unwrap();
    for pair in [Queued, Cloning, Building, Starting].windows(2) {
        db.store
            .transition_deployment(d.id, pair[0], pair[1], "ok")
            .await
            .unwrap();
    }
    let name = format!("c-{}", d.id);
    let container = db
        .store
        .reserve_container(d.id, service.id, &name, Some(8080))
        .await
        .unwrap();
    assert_eq!(container.state, ContainerState::Starting);
    db.store
        .record_container_engine(container.id, &format!("engine-{}", d.id), Some(address))
        .await
        .unwrap();
    db.store
        .transition_deployment(d.id, Starting, HealthChecking, "ok")
        .await
        .unwrap();
    db.store
        .set_container_state(container.id, ContainerState::Ready)
        .await
        .unwrap();
    d.id
}

/// What the reconciler must leave in the engine: active containers, and anything a deployment
/// still in progress started (a finished release command's container, say) until its job ends.
pub async fn containers_of_running_deployments_are_wanted(db: &TestDb) {
    let web = demo_service(db, "web").await;
    let first = ready_deployment(db, &web, "10.0.0.2").await;
    let release = db
        .store
        .reserve_container(first, web.id, "release-1", None)
        .await
        .unwrap();
    db.store
        .set_container_state(release.id, ContainerState::Stopped)
        .await
        .unwrap();
    let names = db.store.wanted_container_names().await.unwrap();
    assert_eq!(names, [format!("c-{first}"), "release-1".into()]);
    db.store
        .transition_deployment(first, HealthChecking, Live, "ok")
        .await
        .unwrap();
    let names = db.store.wanted_container_names().await.unwrap();
    assert_eq!(names, [format!("c-{first}")]);
}

pub async fn routing_table_follows_the_live_deployment(db: &TestDb) {
    let web = demo_service(db, "web").await;
    demo_service(db, "idle").await;
    let table = db.store.routing_table().await.unwrap();
    let name = route_name("demo", "web");
    assert_eq!(
        table.route(&name).unwrap().hostnames,
        ["web.demo.localhost"]
    );
    assert!(
        table.published().all(|route| route.backends.is_empty()),
        "nothing is deployed yet, but the routes are published (and answer 503)"
    );
    assert_eq!(table.published().count(), 2);
    // A worker answers no HTTP: no route, so its address is unknown to the edge (404).
    let admin = db.admin().await;
    let worker = ServiceInput {
        repo: Some("https://e.org/a".into()),
        port: Some(PortInput::Keyword("none".into())),
        ..ServiceInput::default()
    };
    db.store
        .create_service(
            &admin,
            &NewService {
                project: &project("demo"),
                name: &service("jobs"),
                settings: &ServiceSettings::create(&worker, RepoPolicy::default()).unwrap(),
                runtime: &Default::default(),
                hostname: &hostname(&project("demo"), &service("jobs")),
                github: None,
            },
        )
        .await
        .unwrap();
    let table = db.store.routing_table().await.unwrap();
    assert!(table.route(&route_name("demo", "jobs")).is_none());
    assert_eq!(table.published().count(), 2);

    let first = ready_deployment(db, &web, "10.0.0.2").await;
    // Ready is not serving: the table only changes when the deployment goes live.
    assert!(
        db.store
            .routing_table()
            .await
            .unwrap()
            .published()
            .all(|route| route.backends.is_empty())
    );
    db.store
        .transition_deployment(first, HealthChecking, Live, "ok")
        .await
        .unwrap();
    let table = db.store.routing_table().await.unwrap();
    assert_eq!(
        table.route(&name).unwrap().backends,
        [Backend {
            address: "10.0.0.2".into(),
            port: 8080
        }]
    );

    let second = ready_deployment(db, &web, "10.0.0.3").await;
    db.store
        .transition_deployment(second, HealthChecking, Live, "ok")
        .await
        .unwrap();
    let table = db.store.routing_table().await.unwrap();
    assert_eq!(table.route(&name).unwrap().backends[0].address, "10.0.0.3");
    let old = db.store.deployment_containers(first).await.unwrap();
    assert_eq!(old[0].state, ContainerState::Draining);
    assert_eq!(db.store.active_containers().await.unwrap().len(), 2);

    // A restarted container's new address reaches the table.
    assert!(
        db.store
            .update_container_address(&format!("engine-{second}"), "10.0.0.9")
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .update_container_address(&format!("engine-{second}"), "10.0.0.9")
            .await
            .unwrap()
    );
    let table = db.store.routing_table().await.unwrap();
    assert_eq!(table.route(&name).unwrap().backends[0].address, "10.0.0.9");

    // A container the engine is restarting, or a `recreate` deploy stopped, is off the route
    // until it answers again.
    let serving = db.store.deployment_containers(second).await.unwrap();
    for health in [Health::Restarting, Health::Stopped] {
        db.store
            .set_container_health(serving[0].id, health)
            .await
            .unwrap();
        let table = db.store.routing_table().await.unwrap();
        assert!(
            table.route(&name).unwrap().backends.is_empty(),
            "{health:?}"
        );
    }
    db.store
        .set_container_health(serving[0].id, Health::Healthy)
        .await
        .unwrap();
    let table = db.store.routing_table().await.unwrap();
    assert_eq!(table.route(&name).unwrap().backends.len(), 1);

    db.store
        .sync_generated_hostnames("apps.example.org")
        .await
        .unwrap();
    assert_eq!(
        db.store.hostnames(web.id).await.unwrap(),
        ["web.demo.apps.example.org"]
    );
}

pub async fn networks_get_distinct_subnets(db: &TestDb) {
    let admin = db.admin().await;
    let a = db
        .store
        .create_project(&admin, &crate::projects::project("a"))
        .await
        .unwrap();
    let b = db
        .store
        .create_project(&admin, &crate::projects::project("b"))
        .await
        .unwrap();
    let pool = || {
        ["10.1.0.0/24", "10.1.1.0/24", "10.1.2.0/24"]
            .map(String::from)
            .into_iter()
    };
    let first = db
        .store
        .project_network(a.id, "helvetia-a", pool(), &[])
        .await
        .unwrap();
    assert_eq!(first, ("helvetia-a".to_owned(), "10.1.0.0/24".to_owned()));
    assert_eq!(
        db.store
            .project_network(a.id, "helvetia-a", pool(), &[])
            .await
            .unwrap(),
        first
    );
    let second = db
        .store
        .project_network(b.id, "helvetia-b", pool(), &[])
        .await
        .unwrap();
    assert_eq!(second.1, "10.1.1.0/24");
    // The engine said b's subnet is taken by something else: b moves on.
    let moved = db
        .store
        .project_network(b.id, "helvetia-b", pool(), &["10.1.1.0/24".into()])
        .await
        .unwrap();
    assert_eq!(moved.1, "10.1.2.0/24");
    // A network keeps the name it was recorded with (one from before names carried the
    // installation, say) until it has to move.
    assert_eq!(
        db.store
            .project_network(b.id, "helvetia-x-b", pool(), &[])
            .await
            .unwrap(),
        ("helvetia-b".to_owned(), "10.1.2.0/24".to_owned())
    );
    let renamed = db
        .store
        .project_network(b.id, "helvetia-x-b", pool(), &["10.1.2.0/24".into()])
        .await
        .unwrap();
    assert_eq!(
        renamed,
        ("helvetia-x-b".to_owned(), "10.1.1.0/24".to_owned())
    );
    let exhausted = db
        .store
        .project_network(
            b.id,
            "helvetia-b",
            pool(),
            &["10.1.1.0/24".into(), "10.1.2.0/24".into()],
        )
        .await;
    assert!(exhausted.is_err());
}

pub async fn logs_append_in_order(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let d = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    assert_eq!(db.store.last_log_seq(d.id).await.unwrap(), 0);
    let now = jiff::Timestamp::now();
    let lines: Vec<_> = (1..=2500).map(|i| (now, format!("line {i}"))).collect();
    db.store.append_logs(d.id, 1, &lines).await.unwrap();
    db.store
        .append_logs(d.id, 2501, &[(now, "last".into())])
        .await
        .unwrap();
    assert_eq!(db.store.last_log_seq(d.id).await.unwrap(), 2501);
    let page = db.store.deployment_logs(d.id, 1000, 3).await.unwrap();
    let seqs: Vec<_> = page.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [1001, 1002, 1003]);
    assert_eq!(page[0].line, "line 1001");
    let tail = db.store.deployment_logs(d.id, 2500, 100).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].line, "last");
}

pub async fn log_retention_keeps_recent_and_the_last_per_service(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let api = demo_service(db, "api").await;
    let line = |text: &str| vec![(jiff::Timestamp::now(), text.to_owned())];
    let mut web_ids = vec![];
    for _ in 0..4 {
        let d = db
            .store
            .create_deployment(&admin, &web, &build_main())
            .await
            .unwrap();
        db.store.append_logs(d.id, 1, &line("web")).await.unwrap();
        web_ids.push(d.id);
    }
    let old_api = db
        .store
        .create_deployment(&admin, &api, &build_main())
        .await
        .unwrap();
    db.store
        .append_logs(old_api.id, 1, &line("api"))
        .await
        .unwrap();

    // Nothing is older than an hour ago: nothing goes.
    let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    assert_eq!(db.store.prune_logs(an_hour_ago, 2).await.unwrap(), 0);
    // Everything is older than "in an hour": all but the 2 newest of each service go.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    assert_eq!(db.store.prune_logs(later, 2).await.unwrap(), 2);
    for (i, id) in web_ids.iter().enumerate() {
        let kept = !db
            .store
            .deployment_logs(*id, 0, 10)
            .await
            .unwrap()
            .is_empty();
        assert_eq!(kept, i >= 2, "deployment #{id}");
    }
    assert_eq!(
        db.store
            .deployment_logs(old_api.id, 0, 10)
            .await
            .unwrap()
            .len(),
        1,
        "the only api deployment is among its last 2"
    );
}
