//! The REST API: state, extractors, errors as problem+json, routes.

mod admin;
mod certificates;

pub(crate) use admin::*;
pub(crate) use certificates::*;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use trustbox_authority::{Authority, AuthorityError, ErrorKind};
use trustbox_types::Principal;
use utoipa::ToSchema;

/// Shared state of every handler.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) authority: Arc<Authority>,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) ready: Arc<AtomicBool>,
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// A URI naming the problem type (`urn:trustbox:problem:<code>`).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The HTTP reason phrase.
    pub(crate) title: String,
    /// The HTTP status.
    pub(crate) status: u16,
    /// What went wrong, for a human.
    pub(crate) detail: String,
    /// The stable problem code.
    pub(crate) code: String,
}

/// An error on its way to becoming a problem+json response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: String,
    detail: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            detail: detail.into(),
        }
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        )
    }
}

impl From<AuthorityError> for ApiError {
    fn from(e: AuthorityError) -> Self {
        let status = match e.kind {
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.code, e.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: format!("urn:trustbox:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"trustbox\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// The authenticated principal of a request; fails closed with 401.
pub(crate) struct Auth(pub(crate) Principal);

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let unauthenticated = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing, invalid or revoked token",
            )
        };
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthenticated)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(unauthenticated)?;
        Ok(Auth(app.authority.authenticate(token.trim()).await?))
    }
}

/// JSON body whose rejections (wrong content type, syntax, unknown fields, too large)
/// become problem documents.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rej) => {
                let code = match &rej {
                    JsonRejection::MissingJsonContentType(_) => "unsupported-media-type",
                    JsonRejection::JsonSyntaxError(_) => "malformed-json",
                    JsonRejection::JsonDataError(_) => "invalid-json",
                    JsonRejection::BytesRejection(_)
                        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                    {
                        "body-too-large"
                    }
                    _ => "invalid-body",
                };
                Err(ApiError::new(rej.status(), code, rej.body_text()))
            }
        }
    }
}

/// Query string whose rejections become problem documents.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rej) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                rej.body_text(),
            )),
        }
    }
}

/// JSON response with a status.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let _entered = span.enter();
    drop(_entered);
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<App>) -> Response {
    let ok = app.ready.load(std::sync::atomic::Ordering::Relaxed)
        && matches!(
            app.authority.store().tenant_by_name("default").await,
            Ok(Some(_))
        );
    if ok {
        json(StatusCode::OK, &serde_json::json!({ "status": "ready" }))
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "the store is unreachable or not bootstrapped",
        )
        .into_response()
    }
}

async fn metrics(State(app): State<App>) -> Response {
    match &app.metrics {
        Some(h) => {
            let mut resp = h.render().into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-metrics",
            "metrics recorder unavailable",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "method not allowed on this route",
    )
}

/// Every route.
pub(crate) fn router(app: App, max_body: usize) -> Router {
    let api = Router::new()
        .route(
            "/certificates",
            post(issue_certificate).get(list_certificates),
        )
        .route("/certificates/{id}", get(get_certificate))
        .route("/certificates/{id}/revoke", post(revoke_certificate))
        .route("/issuers", get(list_issuers).post(create_issuer))
        .route("/issuers/{id}", get(get_issuer).patch(update_issuer))
        .route("/issuers/{id}/revoke", post(revoke_issuer))
        .route("/profiles", get(list_profiles).post(create_profile))
        .route("/profiles/{name}", get(get_profile).put(update_profile))
        .route("/tenants", get(list_tenants).post(create_tenant))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/audit", get(list_audit))
        .route("/audit/verify", get(verify_audit))
        .route("/openapi.json", get(crate::openapi::openapi_json));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::public::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(app)
}
