//! A router on a fresh store, plus helpers to call it.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use helvetia_core::account::Email;
use helvetia_core::auth::{Caller, Credential, Principal, Scope, Scopes, UserId, token_hash};
use helvetia_store::audit::AuditBy;
use helvetia_store::users::NewUser;
use jiff::Timestamp;
use std::sync::Arc;

use helvetia_core::container::SubnetPool;
use helvetia_core::git::RepoPolicy;
use helvetia_engine::docker::Engine;
use helvetia_engine::outbound::{Outbound, ResolverSetting};
use helvetia_engine::traefik::{Traefik, TraefikMode};
use helvetia_server::api;
use helvetia_server::logs::LogLimits;
use helvetia_server::platform::{Platform, PlatformSettings};
use helvetia_server::supervisor::TaskHealth;
use helvetia_server::vault::Vault;
use helvetia_server::worker::WorkerHandle;
use helvetia_store::{Location, Store};
use helvetia_test_support::database::TestDatabase;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::Notify;
use tower::ServiceExt;

/// The e-mail domain whose addresses may sign up on a test API without an invitation.
pub const SIGNUP_DOMAIN: &str = "open.example";

pub struct Api {
    pub router: Router,
    /// What the router works with, for tests that reach past the API (GitHub's tokens).
    pub platform: Arc<Platform>,
    pub store: Store,
    pub admin: String,
    pub admin_caller: Caller,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, when the API runs on one.
    pub postgres: Option<TestDatabase>,
}

impl Api {
    /// An API on a SQLite store.
    pub async fn new() -> Api {
        Api::on(None, TaskHealth::default(), LogLimits::default()).await
    }

    /// An API on a fresh PostgreSQL database.
    pub async fn on_postgres() -> Api {
        Api::on(
            Some(TestDatabase::create()),
            TaskHealth::default(),
            LogLimits::default(),
        )
        .await
    }

    /// An API on a SQLite store whose `/healthz` reports `tasks`.
    pub async fn with_tasks(tasks: TaskHealth) -> Api {
        Api::on(None, tasks, LogLimits::default()).await
    }

    /// An API on a SQLite store with these log limits.
    pub async fn with_log_limits(log_limits: LogLimits) -> Api {
        Api::on(None, TaskHealth::default(), log_limits).await
    }

    /// An API on a SQLite store whose settings `configure` changes.
    pub async fn configured(configure: impl FnOnce(&mut PlatformSettings)) -> Api {
        Api::resolving_with(ResolverSetting::System, configure).await
    }

    /// [`Api::configured`], resolving names through `resolver`.
    pub async fn resolving_with(
        resolver: ResolverSetting,
        configure: impl FnOnce(&mut PlatformSettings),
    ) -> Api {
        let defaults = (TaskHealth::default(), LogLimits::default());
        Api::with(None, defaults, resolver, configure).await
    }

    async fn on(postgres: Option<TestDatabase>, tasks: TaskHealth, log_limits: LogLimits) -> Api {
        Api::with(
            postgres,
            (tasks, log_limits),
            ResolverSetting::System,
            |_| {},
        )
        .await
    }

    async fn with(
        postgres: Option<TestDatabase>,
        (tasks, log_limits): (TaskHealth, LogLimits),
        resolver: ResolverSetting,
        configure: impl FnOnce(&mut PlatformSettings),
    ) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let location = match &postgres {
            Some(database) => Location::Postgres(database.url.clone()),
            None => Location::SqliteFile(dir.path().join("db.sqlite")),
        };
        let store = Store::open(&location).await.unwrap();
        let team = store.default_team().await.unwrap();
        let (admin, stored) = api::mint_token("admin".into(), Scopes::admin(), None);
        store
            .bootstrap_admin_token(team, &stored)
            .await
            .unwrap()
            .unwrap();
        // Where routes are published (a server makes it at start).
        std::fs::create_dir_all(dir.path().join("traefik")).unwrap();
        let edge = Traefik::new(TraefikMode::External {
            dynamic_dir: dir.path().join("traefik"),
            entry_point: "web".into(),
            api_url: None,
            instance: "0a1b".into(),
        })
        .unwrap();
        let mut settings = PlatformSettings {
            repo_policy: RepoPolicy::default(),
            base_domain: "localhost".into(),
            public_port: None,
            subnets: SubnetPool::parse(SubnetPool::DEFAULT, 24).unwrap(),
            default_limits: PlatformSettings::default_limits(),
            max_limits: PlatformSettings::default_limits(),
            build_default_limits: PlatformSettings::default_limits(),
            build_max_limits: PlatformSettings::default_limits(),
            confirm_timeout: PlatformSettings::DEFAULT_CONFIRM_TIMEOUT,
            images_kept: PlatformSettings::DEFAULT_IMAGES_KEPT,
            disk_budget: PlatformSettings::DEFAULT_DISK_BUDGET,
            stack_images: Default::default(),
            max_replicas: PlatformSettings::DEFAULT_MAX_REPLICAS,
            log_limits,
            metrics: Default::default(),
            api_listen: "127.0.0.1:7300".parse().unwrap(),
            public_url: None,
            trusted_proxies: Default::default(),
            signup_domains: vec![SIGNUP_DOMAIN.into()],
            signup_github_orgs: Vec::new(),
            github: Default::default(),
            notification_retry_base: helvetia_core::notification::DEFAULT_RETRY_BASE,
            public_addresses: Vec::new(),
            acme: None,
            https_port: None,
        };
        configure(&mut settings);
        // The engine client connects lazily; only the tests of runtime output reach it.
        let engine = Engine::connect("api-tests").unwrap();
        let vault = Vault::open_for(dir.path(), None, &store).await.unwrap();
        let builds_dir = dir.path().join("builds");
        let outbound = Outbound::new(settings.repo_policy.destinations, resolver);
        let outbound = Arc::new(outbound.unwrap());
        let platform = Platform::new(
            store.clone(),
            engine,
            Arc::new(edge),
            settings,
            vault,
            builds_dir,
            outbound,
        )
        .with_server_secrets(["server-secret-value".to_owned()]);
        let platform = Arc::new(platform);
        let router = api::router(
            platform.clone(),
            WorkerHandle::default(),
            Arc::new(Notify::new()),
            tasks,
            helvetia_server::dashboard::routes(),
        );
        let admin_caller = store
            .authenticate(&token_hash(&admin), Timestamp::now())
            .await
            .unwrap()
            .unwrap();
        Api {
            router,
            platform,
            store,
            admin,
            admin_caller,
            dir,
            postgres,
        }
    }

    /// A new user (the first one adopts the pre-accounts team and the admin token) and an
    /// admin-scoped token of theirs.
    pub async fn user(&self, email: &str) -> (String, UserId) {
        self.store
            .create_user(
                AuditBy::default(),
                &NewUser {
                    email: Email::parse(email).unwrap(),
                    name: email.into(),
                    password_hash: None,
                    instance_admin: false,
                },
            )
            .await
            .unwrap();
        self.user_token(email).await
    }

    /// A new admin-scoped token of existing user `email`.
    pub async fn user_token(&self, email: &str) -> (String, UserId) {
        let user = self
            .store
            .user_by_email(&Email::parse(email).unwrap())
            .await
            .unwrap()
            .unwrap();
        let (token, mut stored) = api::mint_token(email.into(), Scopes::admin(), None);
        stored.user = Some(user.id);
        let caller = Caller {
            principal: Principal::User {
                id: user.id,
                email: email.into(),
                instance_admin: false,
            },
            credential: Credential::Session { session: 0 },
            scopes: Scopes::admin(),
            teams: Default::default(),
            client: None,
        };
        self.store.create_token(&caller, &stored).await.unwrap();
        (token, user.id)
    }

    /// A new token with exactly `scopes`.
    pub async fn token(&self, scopes: &[Scope]) -> String {
        let (token, stored) = api::mint_token(
            "test".into(),
            Scopes::new(scopes.iter().copied()).unwrap(),
            None,
        );
        self.store
            .create_token(&self.admin_caller, &stored)
            .await
            .unwrap();
        token
    }

    /// The answer to an authenticated `GET`, its body unread: a stream stays open until the
    /// response is dropped.
    pub async fn open(&self, path: &str) -> axum::response::Response {
        let request = Request::builder()
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.admin))
            .body(Body::empty())
            .unwrap();
        self.router.clone().oneshot(request).await.unwrap()
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, body)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    /// Service `name` of project `demo` (made on first use), as created.
    pub async fn demo_service(&self, name: &str) -> Value {
        let (status, _) = self.get("/api/v1/projects/demo").await;
        if status == StatusCode::NOT_FOUND {
            let (status, body) = self
                .post("/api/v1/projects", serde_json::json!({"name": "demo"}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (status, service) = self
            .post(
                "/api/v1/projects/demo/services",
                serde_json::json!({"name": name, "repo": "https://e.org/a.git"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{service}");
        service
    }

    /// `method path` with `body` by the holder of `token` (`None`: no one), which must answer
    /// `expected`; answers the body.
    pub async fn expect(
        &self,
        expected: StatusCode,
        token: Option<&str>,
        (method, path): (Method, &str),
        body: Option<Value>,
    ) -> Value {
        let (status, reply) = self.call(method.clone(), path, token, body).await;
        assert_eq!(status, expected, "{method} {path}: {reply}");
        reply
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&self.admin.clone()), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&self.admin.clone()), Some(body))
            .await
    }
}
