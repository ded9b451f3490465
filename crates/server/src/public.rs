//! What relying parties fetch without credentials: CRL shards, OCSP, CA certificates.
//!
//! Served on the plain-HTTP listener (relying parties often cannot verify our TLS yet, and
//! RFC 5280 §4.2.1.13 warns against HTTPS distribution points) and on the HTTPS one. Every
//! handler only reads: CRLs are published by the background worker, OCSP answers come from
//! the pre-signed cache or the responder, never from a CRL build on this path.

use crate::api::{ApiError, App};
use crate::ocsp::OcspService;
use axum::body::Body;
use axum::extract::{FromRef, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use std::sync::Arc;
use time::OffsetDateTime;
use trustbox_authority::Revocation;
use trustbox_proto_ocsp::{decode_get_path, error_response, ErrorStatus, MAX_REQUEST_BYTES};
use trustbox_types::IssuerId;
use trustbox_x509::pem;

/// What the relying-party routes hold: the revocation service (CRLs, CA certificates) and
/// the OCSP adapter. Each handler extracts only its own.
#[derive(Clone)]
pub(crate) struct Public {
    pub(crate) revocation: Revocation,
    pub(crate) ocsp: Arc<OcspService>,
}

impl FromRef<Public> for Revocation {
    fn from_ref(public: &Public) -> Self {
        public.revocation.clone()
    }
}

impl FromRef<Public> for Arc<OcspService> {
    fn from_ref(public: &Public) -> Self {
        public.ocsp.clone()
    }
}

impl FromRef<App> for Revocation {
    fn from_ref(app: &App) -> Self {
        app.revocation.clone()
    }
}

impl FromRef<App> for Arc<OcspService> {
    fn from_ref(app: &App) -> Self {
        app.ocsp.clone()
    }
}

/// The relying-party routes, over any state that holds their services (the plain-HTTP
/// listener's [`Public`], and the REST API's `App`, which merges them into the HTTPS
/// router).
pub(crate) fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Revocation: FromRef<S>,
    Arc<OcspService>: FromRef<S>,
{
    Router::new()
        .route("/crl/{issuer}/{file}", get(crl))
        .route("/ca/{file}", get(ca_certificate))
        .route("/ocsp/{issuer}", get(ocsp_get_empty).post(ocsp_post))
        .route("/ocsp/{issuer}/", get(ocsp_get_empty))
        .route("/ocsp/{issuer}/{*request}", get(ocsp_get))
}

/// The plain-HTTP listener's whole router: relying-party routes and health.
pub(crate) fn router(public: Public) -> Router {
    routes()
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(public)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
fn http_date(t: i64) -> Option<HeaderValue> {
    let t = OffsetDateTime::from_unix_timestamp(t).ok()?;
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    HeaderValue::from_str(&t.format(&f).ok()?).ok()
}

fn parse_issuer(s: &str) -> Result<IssuerId, ApiError> {
    s.parse().map_err(|_| ApiError::not_found("issuer"))
}

/// `GET /crl/{issuer}/{shard}.crl` (DER, `application/pkix-crl`) or `.../{shard}.pem`; the
/// DER URL also answers PEM to `Accept: application/x-pem-file`.
async fn crl(
    State(revocation): State<Revocation>,
    Path((issuer, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let issuer = parse_issuer(&issuer)?;
    let (shard, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| ApiError::not_found("CRL"))?;
    let shard: u32 = shard.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown-shard",
            format!("{shard:?} is not a shard number"),
        )
    })?;
    let wants_pem = ext == "pem"
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/x-pem-file"));
    if ext != "crl" && ext != "pem" {
        return Err(ApiError::not_found("CRL"));
    }
    let crl = revocation.crl(issuer, shard).await?;
    let etag = format!(
        "\"{}-{}\"",
        crl.crl_number,
        if wants_pem { "pem" } else { "der" }
    );
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut out = HeaderMap::new();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!(
            "public, max-age={}",
            (crl.next_update - now).max(0)
        ))
        .map_err(|_| ApiError::not_found("CRL"))?,
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    if let Some(v) = http_date(crl.this_update) {
        out.insert(header::LAST_MODIFIED, v);
    }
    if let Some(v) = http_date(crl.next_update) {
        out.insert(header::EXPIRES, v);
    }
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let (content_type, body) = if wants_pem {
        ("application/x-pem-file", crl.pem.clone())
    } else {
        ("application/pkix-crl", crl.der.clone())
    };
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok((StatusCode::OK, out, Body::from(body)).into_response())
}

/// `GET /ca/{issuer}.cer` (DER, `application/pkix-cert`, the AIA caIssuers URL) or `.pem`.
async fn ca_certificate(
    State(revocation): State<Revocation>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let (issuer, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| ApiError::not_found("CA certificate"))?;
    let issuer = parse_issuer(issuer)?;
    let cert = revocation.ca_certificate(issuer).await?;
    let (content_type, body) = match ext {
        "cer" | "crt" | "der" => ("application/pkix-cert", cert.der),
        "pem" => (
            "application/x-pem-file",
            Bytes::from(pem::encode("CERTIFICATE", &cert.der)),
        ),
        _ => return Err(ApiError::not_found("CA certificate")),
    };
    let mut out = HeaderMap::new();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Some(v) = http_date(cert.not_before) {
        out.insert(header::LAST_MODIFIED, v);
    }
    Ok((StatusCode::OK, out, Body::from(body)).into_response())
}

fn ocsp_response(body: Bytes) -> Response {
    let mut resp = (StatusCode::OK, Body::from(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ocsp-response"),
    );
    resp
}

fn ocsp_error(status: ErrorStatus) -> Response {
    ocsp_response(Bytes::from(error_response(status)))
}

/// `POST /ocsp/{issuer}` with a DER OCSPRequest (RFC 6960 Appendix A.1). Every answer is an
/// OCSPResponse with HTTP 200, errors included (malformedRequest, unauthorized, ...).
async fn ocsp_post(
    State(ocsp): State<Arc<OcspService>>,
    Path(issuer): Path<String>,
    req: Request,
) -> Response {
    let Ok(issuer) = issuer.parse::<IssuerId>() else {
        return ocsp_error(ErrorStatus::Unauthorized);
    };
    // Read (up to 1 MiB) before refusing an oversized request, so the client sees the
    // malformedRequest answer instead of a connection closed mid-upload.
    let body = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
        Ok(b) if b.len() <= MAX_REQUEST_BYTES => b,
        _ => return ocsp_error(ErrorStatus::MalformedRequest),
    };
    ocsp_response(ocsp.respond(issuer, &body).await)
}

/// `GET /ocsp/{issuer}/{url-encoded base64 of the DER request}`. The path is read raw
/// (not through the `Path` extractor) so bad percent-encoding is a malformedRequest too.
async fn ocsp_get(State(ocsp): State<Arc<OcspService>>, uri: axum::http::Uri) -> Response {
    let rest = uri.path().strip_prefix("/ocsp/").unwrap_or_default();
    let Some((issuer, request)) = rest.split_once('/') else {
        return ocsp_error(ErrorStatus::MalformedRequest);
    };
    let Ok(issuer) = issuer.parse::<IssuerId>() else {
        return ocsp_error(ErrorStatus::Unauthorized);
    };
    // Percent-encoded base64 is at most four times the DER it carries.
    if request.len() > MAX_REQUEST_BYTES * 4 {
        return ocsp_error(ErrorStatus::MalformedRequest);
    }
    match decode_get_path(request) {
        Ok(der) => ocsp_response(ocsp.respond(issuer, &der).await),
        Err(_) => ocsp_error(ErrorStatus::MalformedRequest),
    }
}

/// `GET /ocsp/{issuer}` with no request in the path.
async fn ocsp_get_empty() -> Response {
    ocsp_error(ErrorStatus::MalformedRequest)
}
