//! Start-up and shutdown of a whole server: data dir, instance lock, store, first admin token,
//! recovery of interrupted work, then the API and the worker until shutdown.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use helvetia_core::auth::Scopes;
use helvetia_engine::builder::BuilderError;
use helvetia_engine::docker::{Engine, EngineError};
use helvetia_engine::outbound::{Outbound, OutboundError};
use helvetia_engine::traefik::{self, Traefik, TraefikError, TraefikMode, TraefikSettings};
use helvetia_store::{Store, StoreError};
use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::builds;
use crate::config::{EdgeConfig, ServerConfig};
use crate::metrics;
use crate::platform::Platform;
use crate::reconcile::{self, ReconcileError};
use crate::supervisor::Supervisor;
use crate::vault::{Vault, VaultError};
use crate::worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another Helvetia server is already using {0}")]
    AlreadyRunning(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the Docker engine is not usable: {0}")]
    Engine(#[from] EngineError),
    #[error("the edge router (Traefik) could not be started: {0}")]
    Traefik(#[from] TraefikError),
    #[error("the builder engine (--builder isolated) could not be started: {0}")]
    Builder(#[from] BuilderError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("reconciling with the engine and the edge router failed: {0}")]
    Reconcile(#[from] ReconcileError),
    #[error("there is no Helvetia database at {0}: pass the server's data dir (or DATABASE_URL)")]
    NoDatabase(PathBuf),
    #[error(transparent)]
    Resolver(#[from] OutboundError),
    #[error("cannot make a single-use link: {0}")]
    Link(String),
    #[error("no user has the address {0}")]
    NoSuchUser(String),
    #[error("serving HTTP failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The name of the file, in the data dir, that receives the first admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// Under the data dir: checkouts and build contexts of running builds.
pub const BUILDS_DIR: &str = "builds";

/// A server that has opened its store and is ready to serve.
pub struct Server {
    config: ServerConfig,
    platform: Arc<Platform>,
    traefik: Option<traefik::Supervisor>,
    builder: Option<builds::Daemons>,
    listener: TcpListener,
    /// The admin token created on the very first start, if this was it. Shown once.
    pub first_admin_token: Option<String>,
    /// While the server has no user: the single-use link (`<public or API URL>/signup?token=…`)
    /// where the first owner signs up. A new one at each such start; shown once.
    pub owner_signup: Option<String>,
    _lock: File,
    _database_lock: Option<helvetia_store::InstanceLock>,
}

impl Server {
    /// Prepares everything that can fail before serving: a failure here leaves no process
    /// half-started.
    pub async fn start(
        mut config: ServerConfig,
        listener: TcpListener,
    ) -> Result<Server, StartError> {
        // The port actually bound (a test binds port 0): the edge router relays the public
        // URL's requests there, and links name it when there is no public URL.
        config.platform.api_listen = listener.local_addr().map_err(StartError::Serve)?;
        let data_dir = &config.data_dir;
        create_private_dir(data_dir)?;
        let lock = lock_data_dir(data_dir)?;
        let store = Store::open(&config.database).await?;
        let database_lock = store.lock_instance().await?;
        // Before anything else is written: a wrong or missing master key must leave the data
        // exactly as it was.
        let vault = Vault::open_for(
            data_dir,
            config.master_key.as_ref().map(|k| k.expose()),
            &store,
        )
        .await?;
        // Until the first user exists, the server has its pre-accounts team and a bootstrap
        // token: whoever holds it creates the first owner, who then inherits both.
        let first_admin_token = if store.count_users().await? == 0 {
            let team = store.default_team().await?;
            let (token, stored) =
                api::mint_token("admin (first start)".into(), Scopes::admin(), None);
            match store.bootstrap_admin_token(team, &stored).await? {
                Some(_) => {
                    write_private_file(&data_dir.join(ADMIN_TOKEN_FILE), &token)?;
                    Some(token)
                }
                None => None,
            }
        } else {
            None
        };
        let owner_signup = if store.count_users().await? == 0 {
            let link = crate::usecases::links::bootstrap_signup(&store)
                .await
                .map_err(|e| StartError::Link(e.to_string()))?;
            Some(link_url(&config.platform, &link.path))
        } else {
            None
        };

        // This process holds the instance lock, so no other worker is alive: jobs still marked
        // running were cut off by a crash and can be recovered now instead of after their
        // leases run out.
        let released = store.expire_all_leases(Timestamp::now()).await?;
        if released > 0 {
            tracing::warn!(
                jobs = released,
                "recovering jobs interrupted by the previous run"
            );
        }

        let builds_dir = data_dir.join(BUILDS_DIR);
        empty_builds_dir(&builds_dir)?;
        let instance = store.instance_id().await?;
        let engine = Engine::connect(&instance)?;
        let version = engine.ping().await?;
        tracing::info!(%version, "connected to the Docker engine");
        let outbound = Outbound::new(config.platform.repo_policy.destinations, config.resolver)?;
        let (edge, traefik) = start_edge(&config, &instance, &store).await?;
        let (builder_daemon, builder) = match builds::start(&config, &instance).await? {
            Some((daemon, builder)) => (Some(daemon), Some(builder)),
            None => (None, None),
        };
        let platform = Arc::new(
            Platform::new(
                store,
                engine,
                Arc::new(edge),
                config.platform.clone(),
                vault,
                builds_dir,
                Arc::new(outbound),
            )
            .with_server_secrets(server_secrets(&config))
            .with_builder(builder),
        );
        match platform.git.pins_http().await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "git is older than 2.37: fetches over http(s) cannot be pinned to the addresses \
                 the outbound policy checked, so a name answered differently a moment later (DNS \
                 rebinding) could reach a refused address; install git 2.37 or later"
            ),
            Err(error) => tracing::warn!(%error, "git cannot run: deployments will fail"),
        }
        reconcile::at_startup(&platform).await?;
        Ok(Server {
            config,
            platform,
            traefik,
            builder: builder_daemon,
            listener,
            first_admin_token,
            owner_signup,
            _lock: lock,
            _database_lock: database_lock,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves the API and runs the background tasks until `shutdown` fires; then stops
    /// accepting requests, finishes in-flight ones, gives running jobs their grace period and
    /// waits for every task to return.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let exposition_listener = match self.config.metrics_listen {
            Some(address) => {
                let listener = std::net::TcpListener::bind(address)
                    .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                    .map_err(StartError::Serve)?;
                tracing::info!(%address, "serving the Prometheus exposition without a token");
                Some(listener)
            }
            None => None,
        };
        // Also ends the tasks when serving fails before `shutdown` fires.
        let stop = shutdown.child_token();
        let store = self.platform.store.clone();
        let platform = self.platform;
        let mut tasks = Supervisor::new(stop.clone());
        let worker = Worker::new(
            platform.clone(),
            self.config.queue,
            self.config.shutdown_grace,
        );
        let reconcile_now = Arc::new(Notify::new());
        let worker_handle = worker.handle();
        let app = api::router(
            platform.clone(),
            worker.handle(),
            reconcile_now.clone(),
            tasks.health(),
            crate::dashboard::routes(),
        );
        tasks.spawn("worker", move |stop| worker.clone().run(stop));
        if let Some(traefik) = self.traefik {
            let traefik = Arc::new(Mutex::new(traefik));
            tasks.spawn("traefik-watcher", move |stop| {
                let traefik = traefik.clone();
                async move { traefik.lock().await.watch(stop).await }
            });
        }
        if let Some(daemons) = self.builder {
            daemons.watch(&mut tasks);
        }
        tasks.spawn("monitor", on(&platform, crate::monitor::run));
        match platform.engine.stats_reader() {
            Ok(reader) => {
                let (platform, reader) = (platform.clone(), Arc::new(reader));
                tasks.spawn("metrics-collector", move |stop| {
                    metrics::collector::run(platform.clone(), reader.clone(), stop)
                });
            }
            Err(error) => tracing::warn!(%error, "container metrics are not collected"),
        }
        tasks.spawn("metrics-rollup", on(&platform, metrics::rollup::run));
        tasks.spawn("log-retention", on(&platform, crate::logs::retention::run));
        tasks.spawn("certificates", on(&platform, crate::certificates::run));
        tasks.spawn(
            "certificate-expiry",
            on(&platform, crate::certificates::notices::warn_of_expiry),
        );
        tasks.spawn("notifications", on(&platform, crate::notifications::run));
        tasks.spawn("disk-budget", on(&platform, crate::disk::run));
        if let Some(listener) = exposition_listener {
            let store = store.clone();
            tasks.spawn("metrics-exposition", move |stop| {
                // Each run serves a handle of the same socket, so a restart needs no new bind.
                let listener = listener.try_clone().and_then(TcpListener::from_std);
                let store = store.clone();
                async move {
                    match listener {
                        Ok(listener) => metrics::exposition::serve(listener, store, stop).await,
                        Err(error) => tracing::error!(%error, "the exposition's socket is lost"),
                    }
                }
            });
        }
        let scheduled =
            crate::usecases::App::new(platform.clone(), worker_handle, reconcile_now.clone());
        let rechecks = scheduled.clone();
        tasks.spawn("domain-rechecks", move |stop| {
            crate::usecases::domains::recheck_periodically(rechecks.clone(), stop)
        });
        tasks.spawn("preview-idle-sweep", move |stop| {
            stop_idle_previews(scheduled.clone(), stop)
        });
        tasks.spawn("reconciler", move |stop| {
            reconcile::run_periodically(platform.clone(), reconcile_now.clone(), stop)
        });
        let address = self.listener.local_addr().map_err(StartError::Serve)?;
        match &self.config.platform.public_url {
            Some(public_url) => tracing::info!(%address, %public_url, "serving"),
            None => tracing::info!(%address, "serving"),
        }
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .await;
        stop.cancel();
        tasks.join().await;
        store.close().await;
        served.map_err(StartError::Serve)
    }
}

/// Stops idle previews every minute (see `usecases::previews::stop_idle`) until `stop`.
async fn stop_idle_previews(app: crate::usecases::App, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match crate::usecases::previews::stop_idle(&app, jiff::Timestamp::now()).await {
            Ok(0) => {}
            Ok(stopped) => tracing::info!(stopped, "stopped idle previews"),
            Err(error) => tracing::warn!(%error, "stopping idle previews failed"),
        }
    }
}

/// A supervised task whose every run is `run` on the platform.
fn on<Run: 'static>(
    platform: &Arc<Platform>,
    run: fn(Arc<Platform>, CancellationToken) -> Run,
) -> impl FnMut(CancellationToken) -> Run + Send + 'static {
    let platform = platform.clone();
    move |stop| run(platform.clone(), stop)
}

/// `helvetia server rotate-key`: re-seals every secret under a new master key. Refuses while
/// a server uses the data dir. Returns the new key when it must be handed to the operator
/// (the current key came from `HELVETIA_MASTER_KEY`).
pub async fn rotate_master_key(config: &ServerConfig) -> Result<Option<String>, StartError> {
    let data_dir = &config.data_dir;
    create_private_dir(data_dir)?;
    let _lock = lock_data_dir(data_dir)?;
    let store = Store::open(&config.database).await?;
    let _database_lock = store.lock_instance().await?;
    let key = crate::vault::rotate(
        data_dir,
        config.master_key.as_ref().map(|k| k.expose()),
        &store,
    )
    .await?;
    store.close().await;
    Ok(key)
}

/// `helvetia server admin-token`: issues a new admin token straight into the store, the way
/// back in after the last one was revoked or lost. Returns the token (it is not stored).
/// Takes no lock, so it works beside a running server: the token is one transaction.
pub async fn issue_admin_token(config: &ServerConfig) -> Result<String, StartError> {
    // A mistyped data dir must not quietly get a fresh database and a token for nothing.
    if let helvetia_store::Location::SqliteFile(path) = &config.database
        && !path.exists()
    {
        return Err(StartError::NoDatabase(path.clone()));
    }
    let store = Store::open(&config.database).await?;
    let name = format!(
        "admin (recovered {})",
        Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    let (token, stored) = api::mint_token(name, Scopes::admin(), None);
    let issued = store.issue_system_token(&stored).await;
    store.close().await;
    issued?;
    Ok(token)
}

/// `helvetia server admin-token --reset-link <email>`: a password reset link for a user (an
/// owner locked out), made straight in the store like the token, at the public URL (or the
/// API's address).
pub async fn issue_reset_link(config: &ServerConfig, email: &str) -> Result<String, StartError> {
    if let helvetia_store::Location::SqliteFile(path) = &config.database
        && !path.exists()
    {
        return Err(StartError::NoDatabase(path.clone()));
    }
    let store = Store::open(&config.database).await?;
    let link = async {
        let user = match helvetia_core::account::Email::parse(email) {
            Ok(parsed) => store.user_by_email(&parsed).await?,
            Err(_) => None,
        };
        let user = user.ok_or_else(|| StartError::NoSuchUser(email.to_owned()))?;
        let by = helvetia_store::audit::AuditBy {
            actor: "system (helvetia server admin-token)".into(),
            ..Default::default()
        };
        crate::usecases::links::reset_link(&store, by, user.id)
            .await
            .map_err(|e| StartError::Link(e.to_string()))
    }
    .await;
    store.close().await;
    Ok(link_url(&config.platform, &link?.path))
}

/// `path` (a link's page and token) at the URL people reach Helvetia by.
fn link_url(settings: &crate::platform::PlatformSettings, path: &str) -> String {
    format!(
        "{}{path}",
        settings.link_base().as_str().trim_end_matches('/')
    )
}

/// Starts and serves in one call.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    Server::start(config, listener).await?.serve(shutdown).await
}

/// Secrets of the server itself that must never appear in a log or an answer: the database
/// password and the first admin token.
fn server_secrets(config: &ServerConfig) -> Vec<String> {
    let mut secrets = vec![];
    if let helvetia_store::Location::Postgres(url) = &config.database
        && let Ok(parsed) = url::Url::parse(url)
    {
        secrets.extend(parsed.password().map(str::to_owned));
    }
    if let Ok(token) = fs::read_to_string(config.data_dir.join(ADMIN_TOKEN_FILE)) {
        secrets.push(token.trim().to_owned());
    }
    if let Some(acme) = &config.platform.acme {
        secrets.extend(acme.secrets());
    }
    secrets
}

/// The edge router, started (or adopted) when Helvetia manages it. A managed Traefik that
/// cannot start (a port taken) does not stop the server: `/healthz`, the log and every
/// deployment say why, and the watcher keeps trying.
async fn start_edge(
    config: &ServerConfig,
    instance: &str,
    store: &Store,
) -> Result<(Traefik, Option<traefik::Supervisor>), StartError> {
    match &config.edge {
        EdgeConfig::Managed {
            binary,
            entry_address,
            api_address,
            secure_address,
        } => {
            let settings = TraefikSettings {
                binary: binary.clone(),
                state_dir: config.data_dir.join("traefik"),
                entry_point_address: entry_address.clone(),
                secure_address: secure_address.clone(),
                api_address: api_address.clone(),
                extra_env: vec![],
                trusted_ips: config
                    .platform
                    .trusted_proxies
                    .blocks()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                instance: instance.to_owned(),
            };
            let table = config
                .platform
                .with_control_plane(store.routing_table().await?);
            let supervisor = traefik::start_or_adopt(settings, &table).await?;
            Ok((supervisor.edge_router()?, Some(supervisor)))
        }
        EdgeConfig::External {
            dynamic_dir,
            entry_point,
            api_url,
        } => {
            let mode = TraefikMode::External {
                dynamic_dir: dynamic_dir.clone(),
                entry_point: entry_point.clone(),
                api_url: api_url.clone(),
                instance: instance.to_owned(),
            };
            Ok((Traefik::new(mode)?, None))
        }
    }
}

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::DataDir {
        path: path.to_owned(),
        source,
    }
}

fn create_private_dir(path: &Path) -> Result<(), StartError> {
    fs::create_dir_all(path).map_err(data_dir_error(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(data_dir_error(path))
}

/// Removes what builds cut off by a crash left behind and recreates the directory. Only the
/// holder of the data dir's lock may call this: no build of another process can be running.
fn empty_builds_dir(path: &Path) -> Result<(), StartError> {
    match fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(data_dir_error(path)(error)),
    }
    create_private_dir(path)
}

/// Holds an exclusive lock on `<data dir>/helvetia.lock` for the life of the process, so two
/// servers never share a data dir (and the SQLite database in it).
fn lock_data_dir(path: &Path) -> Result<File, StartError> {
    let lock_path = path.join("helvetia.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(data_dir_error(&lock_path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StartError::AlreadyRunning(path.to_owned())),
        Err(fs::TryLockError::Error(source)) => Err(StartError::DataDir {
            path: lock_path,
            source,
        }),
    }
}

/// Writes a secret file readable by its owner only: created 0600 before any byte is written.
fn write_private_file(path: &Path, contents: &str) -> Result<(), StartError> {
    let mut file = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(data_dir_error(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(data_dir_error(path))?;
    writeln!(file, "{contents}").map_err(data_dir_error(path))
}
