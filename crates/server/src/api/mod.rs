//! The REST API: state, extractors, errors as problem+json, routes.

mod acme;
mod admin;
mod certificates;
mod jobs;
mod profiles;
pub(crate) mod wire;

pub(crate) use acme::*;
pub(crate) use admin::*;
pub(crate) use certificates::*;
pub(crate) use jobs::*;
pub(crate) use profiles::*;

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
use trustbox_authority::{
    Administration, Authentication, AuthorityError, ErrorKind, Issuance, Revocation,
};
use trustbox_types::Principal;
use utoipa::ToSchema;

/// Shared state of every handler: the seam's services the REST API calls (never the core
/// or the store).
#[derive(Clone)]
pub(crate) struct App {
    /// `POST/GET /certificates`.
    pub(crate) issuance: Issuance,
    /// Certificate and issuer revocation; CRLs and CA certificates (relying-party routes).
    pub(crate) revocation: Revocation,
    /// Tenants, issuers, profiles, tokens, audit, jobs.
    pub(crate) administration: Administration,
    /// The `Auth` extractor and `/readyz`.
    pub(crate) authentication: Authentication,
    /// The OCSP adapter (relying-party routes).
    pub(crate) ocsp: Arc<crate::ocsp::OcspService>,
    /// The ACME adapter (`/acme/{provisioner}/...`).
    pub(crate) acme: Arc<crate::acme::AcmeAdapter>,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) ready: Arc<AtomicBool>,
    /// Requests per second per API token (checked once the token is authenticated).
    pub(crate) token_limits: Arc<crate::limits::KeyedLimiter<trustbox_types::TokenId>>,
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
    /// Seconds for a `Retry-After` header (429); 503 answers say 1 without it.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Adds `Retry-After: secs` to the response.
    pub(crate) fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
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
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
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
        let principal = app.authentication.authenticate(token.trim()).await?;
        // every principal of the REST API is a token
        if let Some(id) = principal.actor.token() {
            app.token_limits
                .check(&id)
                .map_err(crate::limits::token_limited)?;
        }
        Ok(Auth(principal))
    }
}

/// JSON body whose rejections (wrong content type, syntax, unknown fields, a body that is
/// not an object, too large) become problem documents.
pub(crate) struct ApiJson<T>(pub(crate) T);

/// Whether the request says its body is JSON (`application/json` or `application/*+json`,
/// parameters allowed), as `axum::Json` decides it.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "expected a request with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rej| {
                let code = if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "body-too-large"
                } else {
                    "invalid-body"
                };
                ApiError::new(rej.status(), code, rej.body_text())
            })?;
        match axum::Json::<T>::from_bytes(&bytes) {
            // Every body of this API is an object, but serde's derived structs also read one
            // from an array of its fields (`[null, null]`): refuse that here.
            Ok(_) if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') => {
                Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-json",
                    "the body must be a JSON object",
                ))
            }
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rej) => {
                let code = match &rej {
                    JsonRejection::JsonSyntaxError(_) => "malformed-json",
                    JsonRejection::JsonDataError(_) => "invalid-json",
                    _ => "invalid-body",
                };
                Err(ApiError::new(rej.status(), code, rej.body_text()))
            }
        }
    }
}

/// Path parameters whose rejections (text that is not UTF-8, say) become problem documents.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            // A route whose handler expects parameters it does not declare: our bug.
            Err(rej) if rej.status().is_server_error() => {
                tracing::error!(cause = %rej.body_text(), "path extraction failed");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                ))
            }
            Err(rej) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-path",
                rej.body_text(),
            )),
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
        && app.authentication.check_ready().await;
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

/// `GET /metrics`: the Prometheus text exposition.
pub(crate) async fn metrics(State(app): State<App>) -> Response {
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

/// Every route; `/metrics` only with `serve_metrics` (off when it has its own listener).
pub(crate) fn router(app: App, max_body: usize, serve_metrics: bool) -> Router {
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
        .route("/jobs", get(list_jobs))
        .route("/jobs/{id}", get(get_job))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route(
            "/acme/provisioners",
            get(list_acme_provisioners).post(create_acme_provisioner),
        )
        .route(
            "/acme/provisioners/{name}",
            get(get_acme_provisioner).put(update_acme_provisioner),
        )
        .route(
            "/acme/provisioners/{name}/eab-keys",
            get(list_eab_keys).post(create_eab_key),
        )
        .route(
            "/acme/provisioners/{name}/eab-keys/{kid}",
            axum::routing::delete(revoke_eab_key),
        )
        .route("/audit", get(list_audit))
        .route("/audit/verify", get(verify_audit))
        .route("/openapi.json", get(crate::openapi::openapi_json));
    let mut top = Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if serve_metrics {
        top = top.route("/metrics", get(metrics));
    }
    top.merge(crate::public::routes())
        .merge(crate::acme::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    //! The extractors' rejections, without sockets: every one is a problem document.

    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn extractors() -> Router {
        Router::new()
            .route(
                "/query",
                get(|ApiQuery(_): ApiQuery<certificates::ListParams>| async { "ok" }),
            )
            .route(
                "/audit",
                get(|ApiQuery(_): ApiQuery<admin::AuditParams>| async { "ok" }),
            )
            .route(
                "/path/{id}",
                get(|ApiPath(id): ApiPath<String>| async move { id }),
            )
            .route(
                "/json",
                post(|ApiJson(_): ApiJson<certificates::RevokeBody>| async { "ok" }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(64))
    }

    /// Status and problem code (or `ok` for a success) of one request.
    async fn send(method: &str, uri: &str, body: Option<(&str, &str)>) -> (u16, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some((ct, _)) = body {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let body = body.map_or_else(Body::empty, |(_, b)| Body::from(b.to_owned()));
        let resp = extractors()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return (status, "ok".into());
        }
        assert_eq!(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..]),
            "{method} {uri}"
        );
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("problem JSON");
        assert_eq!(v["status"], status, "{v}");
        (status, v["code"].as_str().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn bad_query_parameters_are_400_problems() {
        for uri in [
            "/query?limit=abc",
            "/query?limit=-1",
            "/query?status=expired",
            "/query?colour=blue",
            "/audit?cursor=x",
            "/audit?limit=1.5",
        ] {
            assert_eq!(
                send("GET", uri, None).await,
                (400, "invalid-query".into()),
                "{uri}"
            );
        }
        assert_eq!(
            send("GET", "/query?status=revoked&limit=5", None).await.0,
            200
        );
    }

    #[tokio::test]
    async fn a_path_that_is_not_text_is_a_400_problem() {
        assert_eq!(
            send("GET", "/path/%FF", None).await,
            (400, "invalid-path".into())
        );
        assert_eq!(send("GET", "/path/abc", None).await.0, 200);
    }

    #[tokio::test]
    async fn bodies_that_are_not_the_object_are_problems() {
        let json = "application/json";
        for (body, want) in [
            ((json, "[null, null]"), (422, "invalid-json")),
            ((json, "null"), (422, "invalid-json")),
            ((json, "{\"reason\": 1}"), (422, "invalid-json")),
            ((json, "{\"colour\": \"blue\"}"), (422, "invalid-json")),
            ((json, "{not json"), (400, "malformed-json")),
            (("text/plain", "{}"), (415, "unsupported-media-type")),
            (("application/xml", "{}"), (415, "unsupported-media-type")),
            ((json, &"{}   ".repeat(40)), (413, "body-too-large")),
        ] {
            assert_eq!(
                send("POST", "/json", Some(body)).await,
                (want.0, want.1.to_owned()),
                "{body:?}"
            );
        }
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert_eq!(
                send("POST", "/json", Some((ct, " {}"))).await.0,
                200,
                "{ct}"
            );
        }
    }
}
