//! The API's one error type and its one mapping to HTTP.
//!
//! Every handler returns [`ApiError`]; [`IntoResponse`] below is the only place that decides a
//! status code. Bodies are a stable JSON shape, `{"error": {"code", "message", "fields"?}}`.
//! Server-side failures are logged in full and answered with a generic message, so nothing
//! internal (SQL, paths, driver messages) reaches a client. The server's own secrets are kept
//! out of every message by [`redact_errors`], a layer on the whole router.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use helvetia_core::auth::Scope;
use helvetia_core::redact::Redactor;
use helvetia_core::validation::FieldErrors;
use helvetia_store::StoreError;
use serde::Serialize;

use crate::limits::RateLimited;
use crate::usecases::{Refusal, UseCaseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthenticated,
    #[error("the token is invalid, expired or revoked")]
    InvalidToken,
    /// A token that proves itself was refused, with why.
    #[error("{0}")]
    TokenRefused(String),
    /// A sign-in refused; which part was wrong is never told.
    #[error("wrong e-mail address, password or code")]
    InvalidCredentials,
    #[error("this account signs in with a second factor: send `totp_code` or `recovery_code`")]
    SecondFactorRequired,
    /// A webhook delivery refused; which part was wrong is never told.
    #[error("the delivery's signature is missing, wrong or expired")]
    InvalidSignature,
    #[error("this operation needs the `{0}` scope")]
    MissingScope(Scope),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Invalid(#[from] FieldErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("send the request body as `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// A limit is reached; `retry_after` (seconds) goes into `Retry-After`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    PreconditionFailed(String),
    /// The database does not answer for now. The detail is logged, never sent.
    #[error("the database is unavailable; try again shortly")]
    Unavailable(String),
    /// The server's disk is full. The detail is logged, never sent.
    #[error("the server's storage is full; changes fail until disk space is freed")]
    InsufficientStorage(String),
    /// Something failed on our side. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `not_found` or `invalid_input`.
    pub code: &'static str,
    /// A sentence for humans.
    pub message: String,
    /// Per-field problems, for `invalid_input`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

impl ApiError {
    /// The status this error answers with, wherever it is shown (the API or a page).
    pub(crate) fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// Per-field problems, for `invalid_input`.
    pub(crate) fn fields(&self) -> Option<&std::collections::BTreeMap<String, String>> {
        match self {
            ApiError::Invalid(errors) => Some(errors.fields()),
            _ => None,
        }
    }

    /// Logs what the answer leaves out: the detail of an internal or storage failure.
    pub(crate) fn log(&self) {
        match self {
            ApiError::Internal(detail) => tracing::error!(%detail, "request failed"),
            ApiError::Unavailable(detail) | ApiError::InsufficientStorage(detail) => {
                tracing::warn!(%detail, "request failed: the database cannot serve it now");
            }
            _ => {}
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::InvalidToken | ApiError::TokenRefused(_) => {
                (StatusCode::UNAUTHORIZED, "invalid_token")
            }
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::InvalidSignature => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            ApiError::SecondFactorRequired => (StatusCode::UNAUTHORIZED, "second_factor_required"),
            ApiError::MissingScope(_) | ApiError::Forbidden(_) => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::PreconditionFailed(_) => {
                (StatusCode::PRECONDITION_FAILED, "precondition_failed")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::InsufficientStorage(_) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    /// The body is also left in the response's extensions, for [`redact_errors`] to render
    /// again without the server's secrets.
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        self.log();
        let fields = self.fields().cloned();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                fields,
            },
        };
        let mut response = (status, Json(&body)).into_response();
        response.extensions_mut().insert(body);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let ApiError::TooManyRequests { retry_after, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        }
        response
    }
}

impl ErrorBody {
    fn redacted(self, redactor: &Redactor) -> ErrorBody {
        let ErrorDetail {
            code,
            message,
            fields,
        } = self.error;
        ErrorBody {
            error: ErrorDetail {
                code,
                message: redactor.redact(&message),
                fields: fields.map(|fields| {
                    fields
                        .into_iter()
                        .map(|(name, problem)| (name, redactor.redact(&problem)))
                        .collect()
                }),
            },
        }
    }
}

/// The layer that keeps the server's secrets (`redactor`: the database password, the first
/// admin token) out of every error an [`ApiError`] answered: an input echoed in a message
/// cannot reveal them.
pub async fn redact_errors(
    State(redactor): State<Arc<Redactor>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let Some(body) = response.extensions_mut().remove::<ErrorBody>() else {
        return response;
    };
    let (parts, _) = response.into_parts();
    let rendered = Json(body.redacted(&redactor)).into_response();
    Response::from_parts(parts, rendered.into_body())
}

impl From<UseCaseError> for ApiError {
    fn from(error: UseCaseError) -> Self {
        match error {
            UseCaseError::NotFound(what) => ApiError::NotFound(what),
            UseCaseError::Forbidden(why) => ApiError::Forbidden(why),
            UseCaseError::Conflict(why) => ApiError::Conflict(why),
            UseCaseError::Unauthenticated(Refusal::Credentials) => ApiError::InvalidCredentials,
            UseCaseError::Unauthenticated(Refusal::SecondFactorRequired) => {
                ApiError::SecondFactorRequired
            }
            UseCaseError::Unauthenticated(Refusal::Session) => ApiError::InvalidToken,
            UseCaseError::TokenRefused(why) => ApiError::TokenRefused(why),
            UseCaseError::Unauthenticated(Refusal::Signature) => ApiError::InvalidSignature,
            UseCaseError::TooLarge(why) => ApiError::PayloadTooLarge(why),
            UseCaseError::Invalid(errors) => ApiError::Invalid(errors),
            UseCaseError::Refused(why) => ApiError::BadRequest(why),
            // A follower's place frees whenever another leaves: a few seconds is a polite pace.
            UseCaseError::Busy(why) => ApiError::TooManyRequests {
                message: why,
                retry_after: BUSY_RETRY_AFTER_SECS,
            },
            UseCaseError::RateLimited(limited) => limited.into(),
            UseCaseError::Stale(why) => ApiError::PreconditionFailed(why),
            UseCaseError::Unavailable(detail) => ApiError::Unavailable(detail),
            UseCaseError::StorageFull(detail) => ApiError::InsufficientStorage(detail),
            UseCaseError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

/// What `Retry-After` says when a limit on what a service holds at once is reached.
const BUSY_RETRY_AFTER_SECS: u64 = 5;

impl From<RateLimited> for ApiError {
    fn from(limited: RateLimited) -> Self {
        ApiError::TooManyRequests {
            message: limited.to_string(),
            retry_after: limited.retry_after_secs(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        UseCaseError::from(error).into()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
