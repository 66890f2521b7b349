//! The BuildKit session of one build, served by Helvetia itself.
//!
//! BuildKit asks the client that started a build for whatever the build needs from the client's
//! side (here: the values of `RUN --mount=type=secret` mounts) through a "session": the client
//! opens the engine's `/session` endpoint, the connection is upgraded to HTTP/2 without TLS, and
//! from then on the *engine* is the gRPC client and we are the gRPC server. bollard's own session
//! offers no secrets provider and cannot be extended, so the session is served here, over the
//! engine's local unix socket, with only what a build needs: the secrets and the health check
//! BuildKit uses to notice a vanished client.
//!
//! Secret values live only in memory here, are sent only to the engine through this session,
//! and appear in no log, error or `Debug` output.

use std::collections::HashMap;
use std::path::Path;

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST, UPGRADE};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio_util::task::AbortOnDropHandle;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Status, async_trait};

use super::socket::{SOCKET_HOST, connect, error_message, unreachable};
use super::{EngineError, Result};

/// A running build session. The engine keeps it for as long as the connection stays open, so
/// it ends when this is ended or dropped (a cancelled or timed-out build included).
pub(super) struct Session {
    id: String,
    task: AbortOnDropHandle<()>,
}

impl Session {
    /// Opens a session on the engine behind `socket` that hands out `secrets` (id → value).
    /// When an id occurs twice, the later value wins.
    pub(super) async fn start(socket: &Path, secrets: &[(String, String)]) -> Result<Session> {
        // 128 random bits: the id is all that ties a build to this session (and its secrets).
        let id = format!("helvetia-{:032x}", rand::random::<u128>());
        let store = SecretStore {
            values: secrets
                .iter()
                .map(|(id, value)| (id.clone(), Bytes::copy_from_slice(value.as_bytes())))
                .collect(),
        };
        let mut request = Request::post("/session")
            .header(HOST, SOCKET_HOST)
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, "h2c")
            .header("X-Docker-Expose-Session-Uuid", &id)
            .header("X-Docker-Expose-Session-Name", "helvetia");
        // The methods this session serves, as the protocol asks. (Engine 20.10 called both even
        // when they were not listed, tried; the list is still the contract a builder may check.)
        for method in [
            method_path::<SecretsServer<SecretStore>>("GetSecret"),
            method_path::<HealthServer<Healthy>>("Check"),
        ] {
            request = request.header("X-Docker-Expose-Session-Grpc-Method", method);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| EngineError::Api(format!("the build session request: {e}")))?;

        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(connect(socket).await?))
                .await
                .map_err(|e| unreachable(socket, &e))?;
        let upgrade = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| unreachable(socket, &e))?;
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                let status = response.status();
                let message = error_message(response).await;
                return Err(EngineError::Api(format!(
                    "the engine refused the build session ({status}): {message}"
                )));
            }
            hyper::upgrade::on(response)
                .await
                .map_err(|e| unreachable(socket, &e))
        };
        // The HTTP/1 connection must be driven until it hands its socket over to the upgrade;
        // it then finishes by itself.
        let (connection, upgraded) = tokio::join!(connection.with_upgrades(), upgrade);
        let upgraded = upgraded?;
        if let Err(error) = connection {
            tracing::debug!(%error, "the build session's HTTP/1 connection ended with an error");
        }

        let routes = Routes::new(HealthServer::new(Healthy))
            .add_service(SecretsServer::new(store))
            .prepare();
        let server = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(upgraded, TowerToHyperService::new(routes));
        let session = id.clone();
        let task = tokio::spawn(async move {
            match server.await {
                Ok(()) => tracing::debug!(%session, "build session closed by the engine"),
                Err(error) => tracing::debug!(%session, %error, "build session ended"),
            }
        });
        tracing::debug!(session = %id, secrets = secrets.len(), "build session started");
        Ok(Session {
            id,
            task: AbortOnDropHandle::new(task),
        })
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Ends the session and waits until its task has stopped. Closing the connection is how
    /// the engine learns a session is over (the docker CLI ends its sessions the same way).
    pub(super) async fn end(mut self) {
        self.task.abort();
        // The only possible outcome is the cancellation just asked for (or an earlier end).
        let _ = (&mut self.task).await;
        tracing::debug!(session = %self.id, "build session ended");
    }
}

/// `/<package>.<Service>/<Method>`, the path a gRPC method is called at.
fn method_path<S: NamedService>(method: &str) -> String {
    format!("/{}/{method}", S::NAME)
}

/// The secrets of one build.
struct SecretStore {
    values: HashMap<String, Bytes>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("ids", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: tonic::Request<GetSecretRequest>,
    ) -> Result<tonic::Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        match self.values.get(id) {
            Some(value) => {
                tracing::debug!(%id, "build secret handed to the builder");
                Ok(tonic::Response::new(GetSecretResponse {
                    data: value.to_vec(),
                }))
            }
            // NOT_FOUND is what BuildKit expects for an unknown secret: it then skips an
            // optional mount and fails a `required=true` one, naming the id.
            None => {
                tracing::debug!(%id, "the builder asked for an unknown build secret");
                Err(Status::not_found(format!("no build secret with id `{id}`")))
            }
        }
    }
}

/// Always healthy: the session lives exactly as long as the build needs it, and BuildKit ends
/// a session whose health check fails.
#[derive(Debug)]
struct Healthy;

#[async_trait]
impl Health for Healthy {
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, Status> {
        Ok(tonic::Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        }))
    }

    async fn list(
        &self,
        _request: tonic::Request<HealthListRequest>,
    ) -> Result<tonic::Response<HealthListResponse>, Status> {
        let serving = HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        };
        Ok(tonic::Response::new(HealthListResponse {
            statuses: HashMap::from([(String::new(), serving)]),
        }))
    }

    type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        // BuildKit only polls `Check`; UNIMPLEMENTED tells a client not to retry.
        Err(Status::unimplemented("watching health is not supported"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_out_known_secrets_and_not_found_for_others() {
        let store = SecretStore {
            values: HashMap::from([("TOKEN".to_owned(), Bytes::from_static(b"s3cret"))]),
        };
        let request = |id: &str| {
            tonic::Request::new(GetSecretRequest {
                id: id.to_owned(),
                annotations: HashMap::new(),
            })
        };
        let found = store.get_secret(request("TOKEN")).await.unwrap();
        assert_eq!(found.get_ref().data, b"s3cret");
        let missing = store.get_secret(request("OTHER")).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert!(!format!("{store:?}").contains("s3cret"));
    }

    #[test]
    fn exposes_the_grpc_method_paths_buildkit_calls() {
        assert_eq!(
            method_path::<SecretsServer<SecretStore>>("GetSecret"),
            "/moby.buildkit.secrets.v1.Secrets/GetSecret"
        );
        assert_eq!(
            method_path::<HealthServer<Healthy>>("Check"),
            "/grpc.health.v1.Health/Check"
        );
    }
}
