//! The API's one error type and its one mapping to HTTP.
//!
//! Every handler returns [`ApiError`]; [`IntoResponse`] below is the only place that decides a
//! status code. Bodies are a stable JSON shape, `{"error": {"code", "message", "fields"?}}`.
//! Server-side failures are logged in full and answered with a generic message, so nothing
//! internal (SQL, paths, driver messages) reaches a client.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use helvetia_core::auth::Scope;
use helvetia_core::redact::Redactor;
use helvetia_core::validation::FieldErrors;
use helvetia_store::StoreError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthenticated,
    #[error("the token is invalid, expired or revoked")]
    InvalidToken,
    #[error("this operation needs the `{0}` scope")]
    Forbidden(Scope),
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
    /// Something failed on our side. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
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
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The server's secrets, kept out of every error message. Set once when the router is built.
static REDACTOR: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();

pub fn set_redactor(redactor: Redactor) {
    let _ = REDACTOR.set(redactor);
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let fields = match &self {
            ApiError::Invalid(errors) => Some(errors.fields().clone()),
            _ => None,
        };
        let redact = |text: String| match REDACTOR.get() {
            Some(redactor) => redactor.redact(&text),
            None => text,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: redact(self.to_string()),
                fields: fields
                    .map(|fields| fields.into_iter().map(|(k, v)| (k, redact(v))).collect()),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(why) => ApiError::Conflict(why),
            StoreError::IllegalTransition(illegal) => ApiError::Conflict(illegal.to_string()),
            StoreError::Corrupt(_)
            | StoreError::Config(_)
            | StoreError::Backend(_)
            | StoreError::Migrate(_) => ApiError::Internal(error.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
