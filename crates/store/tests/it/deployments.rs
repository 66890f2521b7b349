use helvetia_core::deployment::{DeploymentKind, DeploymentStatus::*};
use helvetia_core::git::GitRef;
use helvetia_core::job::JobState;
use helvetia_core::service::Service;
use helvetia_store::StoreError;
use helvetia_store::deployments::DeploymentRequest;
use helvetia_store::services::NewService;

use crate::backend::TestDb;
use crate::projects::{hostname, project, service, settings};

pub async fn demo_service(db: &TestDb, name: &str) -> Service {
    let admin = db.admin().await;
    if db
        .store
        .project(admin.team, &project("demo"))
        .await
        .is_err()
    {
        db.store
            .create_project(&admin, &project("demo"))
            .await
            .unwrap();
    }
    db.store
        .create_service(
            &admin,
            &NewService {
                project: &project("demo"),
                name: &service(name),
                settings: &settings("https://e.org/a"),
                runtime: &Default::default(),
                hostname: &hostname(&project("demo"), &service(name)),
                github: None,
            },
        )
        .await
        .unwrap()
}

pub fn build_main() -> DeploymentRequest {
    DeploymentRequest::Build {
        git_ref: GitRef::parse("main").unwrap(),
        commit: None,
    }
}

pub async fn create_enqueues_a_job(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let deployment = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    assert_eq!(deployment.status, Queued);
    assert_eq!(deployment.kind, DeploymentKind::Build);
    assert_eq!(deployment.git_ref.as_deref(), Some("main"));
    assert_eq!(deployment.project.as_str(), "demo");
    let job = db.store.deployment_job(deployment.id).await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(db.store.queued_job_count().await.unwrap(), 1);
    let history = db.store.transitions(deployment.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].from, None);
    assert_eq!(history[0].to, Queued);
    assert!(history[0].reason.contains("requested by"));
}

pub async fn walks_the_state_machine(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let d = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let path = [Queued, Cloning, Building, Starting, HealthChecking, Live];
    for pair in path.windows(2) {
        let reason = format!("to {}", pair[1]);
        let after = db
            .store
            .transition_deployment(d.id, pair[0], pair[1], &reason)
            .await
            .unwrap();
        assert_eq!(after.status, pair[1]);
        assert_eq!(after.status_reason.as_deref(), Some(reason.as_str()));
    }
    let done = db.store.deployment_by_id(d.id).await.unwrap();
    assert!(done.finished_at.is_some());
    let history = db.store.transitions(d.id).await.unwrap();
    let statuses: Vec<_> = history.iter().map(|t| t.to).collect();
    assert_eq!(statuses, path);
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(
        db.store.live_deployment(web.id).await.unwrap().unwrap().id,
        d.id
    );
}

pub async fn refuses_illegal_and_stale_transitions(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let d = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let illegal = db
        .store
        .transition_deployment(d.id, Queued, Live, "skip")
        .await;
    assert!(
        matches!(illegal, Err(StoreError::IllegalTransition(_))),
        "{illegal:?}"
    );
    let wrong_kind = db
        .store
        .transition_deployment(d.id, Queued, Starting, "x")
        .await;
    assert!(matches!(wrong_kind, Err(StoreError::IllegalTransition(_))));
    db.store
        .transition_deployment(d.id, Queued, Cloning, "go")
        .await
        .unwrap();
    // A second actor still believing it is queued loses the race.
    let stale = db
        .store
        .transition_deployment(d.id, Queued, Cloning, "go")
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(db.store.transitions(d.id).await.unwrap().len(), 2);
}

pub async fn going_live_retires_the_previous(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let mut ids = vec![];
    for _ in 0..2 {
        let d = db
            .store
            .create_deployment(&admin, &web, &build_main())
            .await
            .unwrap();
        for pair in [Queued, Cloning, Building, Starting, HealthChecking, Live].windows(2) {
            db.store
                .transition_deployment(d.id, pair[0], pair[1], "ok")
                .await
                .unwrap();
        }
        ids.push(d.id);
    }
    let first = db.store.deployment_by_id(ids[0]).await.unwrap();
    assert_eq!(first.status, Retired);
    assert_eq!(
        first.status_reason.as_deref(),
        Some(format!("replaced by deployment #{}", ids[1]).as_str())
    );
    assert_eq!(
        db.store.live_deployment(web.id).await.unwrap().unwrap().id,
        ids[1]
    );

    // An image deployment skips the build.
    let rollback = DeploymentRequest::Image {
        source_deployment_id: ids[0],
        image: "helvetia/demo-web:1".into(),
        cause: helvetia_core::deployment::DeploymentCause::Rollback,
    };
    let r = db
        .store
        .create_deployment(&admin, &web, &rollback)
        .await
        .unwrap();
    assert_eq!(r.kind, DeploymentKind::Image);
    assert_eq!(r.source_deployment_id, Some(ids[0]));
    for pair in [Queued, Starting, HealthChecking, Live].windows(2) {
        db.store
            .transition_deployment(r.id, pair[0], pair[1], "ok")
            .await
            .unwrap();
    }
    assert_eq!(
        db.store.live_deployment(web.id).await.unwrap().unwrap().id,
        r.id
    );
}

pub async fn newer_request_supersedes_queued(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let api = demo_service(db, "api").await;
    let first = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let other = db
        .store
        .create_deployment(&admin, &api, &build_main())
        .await
        .unwrap();
    let second = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let first = db.store.deployment_by_id(first.id).await.unwrap();
    assert_eq!(first.status, Superseded);
    assert_eq!(
        first.status_reason.as_deref(),
        Some(format!("superseded by deployment #{}", second.id).as_str())
    );
    assert_eq!(
        db.store.deployment_job(first.id).await.unwrap().state,
        JobState::Cancelled
    );
    // Another service's queue is untouched.
    assert_eq!(
        db.store.deployment_by_id(other.id).await.unwrap().status,
        Queued
    );
    // A deployment that already started is not superseded.
    db.store
        .transition_deployment(second.id, Queued, Cloning, "go")
        .await
        .unwrap();
    db.store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    assert_eq!(
        db.store.deployment_by_id(second.id).await.unwrap().status,
        Cloning
    );
}

pub async fn cancel(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let api = demo_service(db, "api").await;
    let queued = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let cancelled = db.store.cancel_deployment(&admin, queued.id).await.unwrap();
    assert_eq!(cancelled.status, Cancelled);
    assert_eq!(
        db.store.deployment_job(queued.id).await.unwrap().state,
        JobState::Cancelled
    );

    let running = db
        .store
        .create_deployment(&admin, &api, &build_main())
        .await
        .unwrap();
    let now = jiff::Timestamp::now();
    let job = db
        .store
        .claim_job("w1", now, std::time::Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.deployment_id, Some(running.id));
    db.store
        .transition_deployment(running.id, Queued, Cloning, "go")
        .await
        .unwrap();
    let requested = db
        .store
        .cancel_deployment(&admin, running.id)
        .await
        .unwrap();
    // The worker records the outcome; the request only flags the job.
    assert_eq!(requested.status, Cloning);
    let beat = db
        .store
        .heartbeat_job(&job, "w1", now, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        beat,
        helvetia_store::queue::Heartbeat::Renewed {
            cancel_requested: true
        }
    );

    let again = db.store.cancel_deployment(&admin, queued.id).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let missing = db.store.cancel_deployment(&admin, 9999).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn no_partial_writes_on_conflict(db: &TestDb) {
    let admin = db.admin().await;
    let before = db
        .store
        .audit_log(helvetia_store::audit::AuditLog::Team(admin.team), None, 100)
        .await
        .unwrap()
        .len();
    db.store
        .create_project(&admin, &project("demo"))
        .await
        .unwrap();
    assert!(
        db.store
            .create_project(&admin, &project("demo"))
            .await
            .is_err()
    );
    let after = db
        .store
        .audit_log(helvetia_store::audit::AuditLog::Team(admin.team), None, 100)
        .await
        .unwrap();
    // Only the successful create was audited; the refused one left nothing behind.
    assert_eq!(after.len(), before + 1);
    assert_eq!(
        db.store
            .list_projects(Some(&[admin.team]))
            .await
            .unwrap()
            .len(),
        1
    );
}
