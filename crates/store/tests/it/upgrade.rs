//! Upgrades: a database written by an earlier release is migrated when the store opens it, and
//! its rows read back as today's code expects them.

use helvetia_core::account::Email;
use helvetia_core::auth::{Scope, TeamId};
use helvetia_core::certificate::{CertificateKind, CertificateState};
use helvetia_core::routing::route_name;
use helvetia_core::service::Port;
use helvetia_store::audit::AuditBy;
use helvetia_store::env::EnvScope;
use helvetia_store::users::NewUser;
use jiff::Timestamp;
use sqlx::migrate::Migrator;

use crate::backend::{Blank, TestDb};
use crate::projects::{project, service};

/// What a release whose schema ended at migration 8 wrote: a web service and a worker, whose
/// "no port" it stored as 0.
const BEFORE_NULLABLE_PORTS: i64 = 8;
const SERVICES_WITH_PORT_ZERO: &str = "
    INSERT INTO teams (name, created_at) VALUES ('default', 0);
    INSERT INTO projects (team_id, name, created_at) SELECT id, 'demo', 0 FROM teams;
    INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port, created_at,
                          updated_at)
        SELECT id, 'web', 'https://git.example.org/demo.git', 'main', 'Dockerfile', '.', 8080,
               0, 0
        FROM projects;
    INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port, created_at,
                          updated_at)
        SELECT id, 'jobs', 'https://git.example.org/demo.git', 'main', 'Dockerfile', '.', 0, 0, 0
        FROM projects;
";

/// The migrations of an earlier release: those up to `version`.
fn until(mut migrator: Migrator, version: i64) -> Migrator {
    let earlier: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|migration| migration.version <= version)
        .cloned()
        .collect();
    migrator.migrations = earlier.into();
    migrator
}

/// What a release whose schema ended at migration 10 wrote: a service with a volume, which the
/// engine knew by a name without the installation's id.
const BEFORE_VOLUME_ENGINE_NAMES: i64 = 10;
const A_VOLUME_NAMED_WITHOUT_THE_INSTALLATION: &str = "
    INSERT INTO teams (name, created_at) VALUES ('default', 0);
    INSERT INTO projects (team_id, name, created_at) SELECT id, 'demo', 0 FROM teams;
    INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port, created_at,
                          updated_at)
        SELECT id, 'web', 'https://git.example.org/demo.git', 'main', 'Dockerfile', '.', 8080,
               0, 0
        FROM projects;
    INSERT INTO volumes (service_id, name, path, created_at)
        SELECT id, 'data', '/data', 0 FROM services;
";

/// What the last release before accounts (schema up to migration 11) wrote: everything in the
/// one `default` team — two projects, their services, plain and secret variables of a project
/// and of a service, the bootstrap admin token and a deploy token for CI (tokens of a team, no
/// user).
const BEFORE_ACCOUNTS: i64 = 11;
const ONE_TEAM_OF_EVERYTHING: &str = "
    INSERT INTO teams (name, created_at) VALUES ('default', 0);
    INSERT INTO projects (team_id, name, created_at) SELECT id, 'shop', 0 FROM teams;
    INSERT INTO projects (team_id, name, created_at) SELECT id, 'blog', 0 FROM teams;
    INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port, created_at,
                          updated_at)
        SELECT id, 'web', 'https://git.example.org/' || name || '.git', 'main', 'Dockerfile',
               '.', 8080, 0, 0
        FROM projects;
    INSERT INTO env_vars (project_id, service_id, name, value, secret, build, key_id, version,
                          created_at, updated_at)
        SELECT id, NULL, 'LOG_LEVEL', 'debug', FALSE, FALSE, NULL, 1, 0, 0 FROM projects;
    INSERT INTO env_vars (project_id, service_id, name, value, secret, build, key_id, version,
                          created_at, updated_at)
        SELECT project_id, id, 'API_KEY', 'sealed-form', TRUE, FALSE, 'k1', 1, 0, 0
        FROM services;
    INSERT INTO api_tokens (team_id, name, token_hash, hint, scopes, created_at)
        SELECT id, 'admin (first start)', 'hash-of-the-bootstrap-token', 'hlv_boot', 'admin', 0
        FROM teams;
    INSERT INTO api_tokens (team_id, name, token_hash, hint, scopes, created_at)
        SELECT id, 'ci', 'hash-of-the-ci-token', 'hlv_ci', 'deploy', 0 FROM teams;
";

/// What a release whose schema ended at migration 23 wrote: a routed domain with an issued
/// certificate, keyed by the domain.
const BEFORE_CERTIFICATE_SUBJECTS: i64 = 23;
const A_DOMAINS_CERTIFICATE: &str = "
    INSERT INTO teams (name, created_at) VALUES ('default', 0);
    INSERT INTO projects (team_id, name, created_at) SELECT id, 'demo', 0 FROM teams;
    INSERT INTO services (project_id, name, repo, branch, dockerfile, context, port, created_at,
                          updated_at)
        SELECT id, 'web', 'https://git.example.org/demo.git', 'main', 'Dockerfile', '.', 8080,
               0, 0
        FROM projects;
    INSERT INTO domains (service_id, name, is_primary, token, verification, verified_at,
                         created_at)
        SELECT id, 'shop.example.test', TRUE, 'token-1', 'dns', 0, 0 FROM services;
    INSERT INTO certificates (domain_id, state, issuer, not_before, not_after, failures,
                              next_attempt_at, chain_pem, sealed_key, updated_at)
        SELECT id, 'issued', 'Pebble', 0, 7776000000, 0, 5184000000, 'CHAIN', 'SEALED', 0
        FROM domains;
";

/// Migrates `$pool` (of either backend) as the release whose schema ended at `$version` did,
/// writes `$rows` as it did, and closes it.
macro_rules! written_by_release {
    ($pool:expr, $migrations:literal, $version:expr, $rows:expr) => {
        until(sqlx::migrate!($migrations), $version)
            .run(&$pool)
            .await
            .unwrap();
        sqlx::raw_sql($rows).execute(&$pool).await.unwrap();
        $pool.close().await;
    };
}

/// A test on each backend: a database the release whose schema ended at `$version` wrote
/// `$rows` into, opened (and migrated) by today's store, then `$check`ed.
macro_rules! upgrade_test {
    ($sqlite:ident, $postgres:ident, $version:expr, $rows:expr, $check:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let blank = Blank::sqlite();
            let helvetia_store::Location::SqliteFile(path) = &blank.location else {
                unreachable!("a SQLite blank is a file");
            };
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            written_by_release!(pool, "migrations/sqlite", $version, $rows);
            $check(blank.open().await).await;
        }

        #[tokio::test]
        async fn $postgres() {
            let blank = Blank::postgres().await;
            let helvetia_store::Location::Postgres(url) = &blank.location else {
                unreachable!("a PostgreSQL blank is a URL");
            };
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            written_by_release!(pool, "migrations/postgres", $version, $rows);
            $check(blank.open().await).await;
        }
    };
}

async fn worker_ports_read_as_none(db: TestDb) {
    let team = db.store.default_team().await.unwrap();
    let web = db
        .store
        .service(team, &project("demo"), &service("web"))
        .await
        .unwrap();
    assert_eq!(web.settings.port.map(Port::get), Some(8080));
    let worker = db
        .store
        .service(team, &project("demo"), &service("jobs"))
        .await
        .unwrap();
    assert_eq!(worker.settings.port, None);
    let routes = db.store.routing_table().await.unwrap();
    assert!(routes.route(&route_name("demo", "web")).is_some());
    assert!(
        routes.route(&route_name("demo", "jobs")).is_none(),
        "a worker has no route"
    );
    db.drop().await;
}

/// A volume from before names carried the installation keeps the engine name its data is in;
/// one added now gets the name it is given.
async fn volumes_keep_their_engine_names(db: TestDb) {
    let team = db.store.default_team().await.unwrap();
    let web = db
        .store
        .service(team, &project("demo"), &service("web"))
        .await
        .unwrap();
    let volumes = db.store.volumes(web.id).await.unwrap();
    assert_eq!(
        volumes[0].engine_name,
        format!("helvetia-demo-web-data-{}", web.id)
    );
    let admin = db.admin().await;
    db.store
        .add_volume(
            &admin,
            &web,
            "cache",
            "/cache",
            "helvetia-77c0-demo-web-cache-1",
        )
        .await
        .unwrap();
    let mut names = db.store.all_engine_volume_names().await.unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            "helvetia-77c0-demo-web-cache-1".to_owned(),
            format!("helvetia-demo-web-data-{}", web.id)
        ]
    );
    db.drop().await;
}

/// The first user (the bootstrap owner) inherits the pre-accounts team: every project, service
/// and variable stays, and both old tokens act as that owner in it. A second user sees none of
/// it.
async fn the_bootstrap_owner_inherits_everything(db: TestDb) {
    let new_user = |email: &str| NewUser {
        email: Email::parse(email).unwrap(),
        name: email.into(),
        password_hash: None,
        instance_admin: false,
    };
    let owner = db
        .store
        .create_user(AuditBy::default(), &new_user("owner@example.com"))
        .await
        .unwrap();
    assert!(owner.instance_admin, "the first user runs the instance");
    let now = Timestamp::now();
    let admin = db
        .store
        .authenticate("hash-of-the-bootstrap-token", now)
        .await
        .unwrap()
        .expect("the bootstrap token still works");
    assert_eq!(admin.user(), Some(owner.id));
    let ci = db
        .store
        .authenticate("hash-of-the-ci-token", now)
        .await
        .unwrap()
        .expect("the CI token still works");
    assert_eq!(ci.user(), Some(owner.id));
    assert!(ci.scopes.allows(Scope::Deploy) && !ci.scopes.allows(Scope::Admin));

    let teams: Vec<TeamId> = admin.teams.keys().copied().collect();
    assert_eq!(teams.len(), 1, "{:?}", admin.teams);
    assert_eq!(ci.teams, admin.teams);
    let team = teams[0];
    assert_eq!(db.store.personal_team(owner.id).await.unwrap(), Some(team));
    let mut names: Vec<String> = db
        .store
        .list_projects(Some(&teams))
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["blog", "shop"]);
    for name in ["blog", "shop"] {
        let project = db.store.project(team, &project(name)).await.unwrap();
        let web = db
            .store
            .service(team, &project.name, &service("web"))
            .await
            .unwrap();
        let variables = db
            .store
            .service_env(project.id, web.id, false)
            .await
            .unwrap();
        let variables: Vec<_> = variables
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str(), v.secret))
            .collect();
        assert_eq!(
            variables,
            [
                ("LOG_LEVEL", "debug", false),
                ("API_KEY", "sealed-form", true)
            ]
        );
        assert_eq!(
            db.store
                .env(EnvScope::Project {
                    project_id: project.id
                })
                .await
                .unwrap()
                .len(),
            1
        );
    }

    let stranger = db
        .store
        .create_user(AuditBy::default(), &new_user("stranger@example.com"))
        .await
        .unwrap();
    assert!(!stranger.instance_admin);
    let theirs: Vec<TeamId> = db
        .store
        .memberships(stranger.id)
        .await
        .unwrap()
        .into_keys()
        .collect();
    assert!(!theirs.contains(&team));
    assert!(
        db.store
            .list_projects(Some(&theirs))
            .await
            .unwrap()
            .is_empty()
    );
    db.drop().await;
}

upgrade_test!(
    the_bootstrap_owner_inherits_everything_on_sqlite,
    the_bootstrap_owner_inherits_everything_on_postgres,
    BEFORE_ACCOUNTS,
    ONE_TEAM_OF_EVERYTHING,
    the_bootstrap_owner_inherits_everything
);

upgrade_test!(
    a_workers_port_stored_as_zero_becomes_none_on_sqlite,
    a_workers_port_stored_as_zero_becomes_none_on_postgres,
    BEFORE_NULLABLE_PORTS,
    SERVICES_WITH_PORT_ZERO,
    worker_ports_read_as_none
);

upgrade_test!(
    volumes_keep_their_engine_names_on_sqlite,
    volumes_keep_their_engine_names_on_postgres,
    BEFORE_VOLUME_ENGINE_NAMES,
    A_VOLUME_NAMED_WITHOUT_THE_INSTALLATION,
    volumes_keep_their_engine_names
);

/// A domain's certificate from before certificates had subjects is the domain's: same state,
/// chain and key (sealed to the domain's id, as before), served, and kept by the sync.
async fn a_domains_certificate_stays_the_domains(db: TestDb) {
    let certificates = db.store.certificates().await.unwrap();
    assert_eq!(certificates.len(), 1, "{certificates:?}");
    let stored = &certificates[0];
    assert_eq!(stored.subject.kind, CertificateKind::Domain);
    assert_eq!(stored.subject.names, ["shop.example.test"]);
    let domain_id = stored.subject.domain_id.unwrap();
    // Issued; shown as `expiring` once the fixture's end is within 14 days.
    let issued = CertificateState::Issued.at(stored.certificate.not_after, jiff::Timestamp::now());
    assert_eq!(stored.certificate.state, issued);
    assert_eq!(stored.certificate.issuer.as_deref(), Some("Pebble"));
    let served = db.store.served_certificates().await.unwrap();
    assert_eq!(served[0].chain_pem, "CHAIN");
    let keys = db.store.sealed_certificate_keys().await.unwrap();
    assert_eq!(keys[0].1.domain_id, Some(domain_id));
    assert!(
        !db.store
            .sync_certificates(&[], Timestamp::now())
            .await
            .unwrap()
    );
    assert_eq!(db.store.certificates().await.unwrap().len(), 1);
    db.drop().await;
}

upgrade_test!(
    a_domains_certificate_stays_the_domains_on_sqlite,
    a_domains_certificate_stays_the_domains_on_postgres,
    BEFORE_CERTIFICATE_SUBJECTS,
    A_DOMAINS_CERTIFICATE,
    a_domains_certificate_stays_the_domains
);
