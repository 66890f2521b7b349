use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use helvetia_core::deployment::DeploymentStatus::*;
use helvetia_core::job::{ClaimedJob, JobKind, JobState};
use helvetia_store::queue::Heartbeat;
use jiff::{Timestamp, ToSpan};

use crate::backend::TestDb;
use crate::deployments::{build_main, demo_service};

const LEASE: Duration = Duration::from_secs(30);

pub async fn claim_takes_oldest_and_leases(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let api = demo_service(db, "api").await;
    let first = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let second = db
        .store
        .create_deployment(&admin, &api, &build_main())
        .await
        .unwrap();
    let now = Timestamp::now();
    let job = db.store.claim_job("w1", now, LEASE).await.unwrap().unwrap();
    assert_eq!(job.kind, JobKind::Deploy);
    assert_eq!(job.deployment_id, Some(first.id));
    assert_eq!(job.service_id, Some(web.id));
    assert_eq!(job.attempt, 1);
    let record = db.store.job(job.id).await.unwrap();
    assert_eq!(record.state, JobState::Running);
    assert_eq!(record.lease_owner.as_deref(), Some("w1"));
    assert_eq!(
        record.lease_expires_at.unwrap().as_millisecond(),
        now.as_millisecond() + 30_000
    );
    let next = db.store.claim_job("w2", now, LEASE).await.unwrap().unwrap();
    assert_eq!(next.deployment_id, Some(second.id));
    assert!(
        db.store
            .claim_job("w3", now, LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store
            .finish_job(&job, "w1", JobState::Succeeded, None, now)
            .await
            .unwrap()
    );
    assert_eq!(
        db.store.job(job.id).await.unwrap().state,
        JobState::Succeeded
    );
}

pub async fn expired_lease_is_claimed_again(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    db.store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let t0 = Timestamp::now();
    let job = db
        .store
        .claim_job("dead", t0, LEASE)
        .await
        .unwrap()
        .unwrap();
    // Before the lease ends nobody else gets it…
    let t1 = t0 + 29.seconds();
    assert!(
        db.store
            .claim_job("rescuer", t1, LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.store
            .next_lease_expiry()
            .await
            .unwrap()
            .unwrap()
            .as_millisecond(),
        t0.as_millisecond() + 30_000
    );
    // …after it, the job is claimed again, and the attempt count says so.
    let t2 = t0 + 31.seconds();
    let again = db
        .store
        .claim_job("rescuer", t2, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, job.id);
    assert_eq!(again.attempt, 2);
    // The dead worker, should it wake up, can neither renew nor finish the job.
    superseded(db, (&job, "dead"), (&again, "rescuer"), t2).await;
}

/// Asserts that claim `old` of a job lost it to claim `new`: `old` can neither renew nor
/// finish it, `new` can do both.
async fn superseded(
    db: &TestDb,
    (old, old_worker): (&ClaimedJob, &str),
    (new, new_worker): (&ClaimedJob, &str),
    now: Timestamp,
) {
    assert_eq!(
        db.store
            .heartbeat_job(old, old_worker, now, LEASE)
            .await
            .unwrap(),
        Heartbeat::Lost
    );
    assert!(
        !db.store
            .finish_job(old, old_worker, JobState::Succeeded, None, now)
            .await
            .unwrap()
    );
    assert_eq!(
        db.store
            .heartbeat_job(new, new_worker, now, LEASE)
            .await
            .unwrap(),
        Heartbeat::Renewed {
            cancel_requested: false
        }
    );
    assert!(
        db.store
            .finish_job(new, new_worker, JobState::Failed, Some("interrupted"), now)
            .await
            .unwrap()
    );
    let record = db.store.job(new.id).await.unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert_eq!(record.error.as_deref(), Some("interrupted"));
}

/// A worker whose heartbeats failed for a whole lease may claim its own job again; the first
/// attempt may still be running then, so it must lose the job to the second even though both
/// carry the same worker id.
pub async fn a_reclaim_by_the_same_worker_supersedes_its_first_claim(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    db.store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let t0 = Timestamp::now();
    let first = db.store.claim_job("w1", t0, LEASE).await.unwrap().unwrap();
    let t1 = t0 + 31.seconds();
    let second = db.store.claim_job("w1", t1, LEASE).await.unwrap().unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempt, 2);
    superseded(db, (&first, "w1"), (&second, "w1"), t1).await;
}

pub async fn two_workers_never_share_a_job(db: &TestDb) {
    let admin = db.admin().await;
    const JOBS: usize = 24;
    for i in 0..JOBS {
        let svc = demo_service(db, &format!("svc{i}")).await;
        db.store
            .create_deployment(&admin, &svc, &build_main())
            .await
            .unwrap();
    }
    let store = Arc::new(db.store.clone());
    let mut workers = vec![];
    for w in 0..6 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = vec![];
            while let Some(job) = store
                .claim_job(&format!("w{w}"), Timestamp::now(), LEASE)
                .await
                .unwrap()
            {
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for worker in workers {
        for id in worker.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "job {id} claimed twice");
        }
    }
    assert_eq!(total, JOBS);
}

pub async fn one_running_job_per_service(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let first = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let now = Timestamp::now();
    let job = db.store.claim_job("w1", now, LEASE).await.unwrap().unwrap();
    db.store
        .transition_deployment(first.id, Queued, Cloning, "go")
        .await
        .unwrap();
    let second = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    // The service is busy: its second job waits even though workers are free.
    assert!(
        db.store
            .claim_job("w2", now, LEASE)
            .await
            .unwrap()
            .is_none()
    );
    db.store
        .finish_job(&job, "w1", JobState::Succeeded, None, now)
        .await
        .unwrap();
    let next = db.store.claim_job("w2", now, LEASE).await.unwrap().unwrap();
    assert_eq!(next.deployment_id, Some(second.id));
}

pub async fn jobs_survive_a_restart(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let d = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    db.store.close().await;
    let reopened = db.reopen().await;
    let job = reopened
        .claim_job("w1", Timestamp::now(), LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.deployment_id, Some(d.id));
    // A server starting up releases the leases of the previous process at once.
    assert_eq!(
        reopened.expire_all_leases(Timestamp::now()).await.unwrap(),
        1
    );
    let rescued = reopened
        .claim_job("w2", Timestamp::now(), LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rescued.id, job.id);
    assert_eq!(rescued.attempt, 2);
    reopened.close().await;
}

pub async fn heartbeat_reports_cancellation(db: &TestDb) {
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    let d = db
        .store
        .create_deployment(&admin, &web, &build_main())
        .await
        .unwrap();
    let t0 = Timestamp::now();
    let job = db.store.claim_job("w1", t0, LEASE).await.unwrap().unwrap();
    db.store
        .transition_deployment(d.id, Queued, Cloning, "go")
        .await
        .unwrap();
    let t1 = t0 + 20.seconds();
    assert_eq!(
        db.store.heartbeat_job(&job, "w1", t1, LEASE).await.unwrap(),
        Heartbeat::Renewed {
            cancel_requested: false
        }
    );
    // The renewed lease outlives the original one.
    let t2 = t0 + 40.seconds();
    assert!(db.store.claim_job("w2", t2, LEASE).await.unwrap().is_none());
    db.store.cancel_deployment(&admin, d.id).await.unwrap();
    assert_eq!(
        db.store.heartbeat_job(&job, "w1", t2, LEASE).await.unwrap(),
        Heartbeat::Renewed {
            cancel_requested: true
        }
    );
}
