//! `/api/v1/certificates`: issue, read, list, revoke.

use super::wire::{self, KeyAlgorithmName, RecordedReasonName, RevocationReasonName};
use super::{json, ApiError, ApiJson, ApiPath, ApiQuery, App, Auth};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, PayloadTooLarge, ServiceUnavailable,
    TooManyRequests, Unauthorized, UnprocessableEntity, UnsupportedMediaType,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use trustbox_authority::{
    Certificate, CertificateQuery, IssuanceOutcome, IssuanceRequest, IssuedCertificate,
};
use trustbox_types::{
    CertificateId, CertificateStatus, IssuerId, RevocationReason, SourceProtocol,
};
use utoipa::{IntoParams, ToSchema};

/// A CSR for `www.example.com` (ECDSA P-256), the documented example of an issuance.
const EXAMPLE_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIIBAzCBqQIBADAaMRgwFgYDVQQDDA93d3cuZXhhbXBsZS5jb20wWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAASmv+yzS+oaiacIv1pRsnOR2+usSy67Yo8AdhZ7eyVn
BHaakpZekCLrpX17bLmHPwBlr08FfUuNu21Sufz5JlFpoC0wKwYJKoZIhvcNAQkO
MR4wHDAaBgNVHREEEzARgg93d3cuZXhhbXBsZS5jb20wCgYIKoZIzj0EAwIDSQAw
RgIhALCygNuiXFLZC94YH343SUoxx9YPMPEe40ZKNdz/PUzUAiEAwtwYQj9PPIYS
x5vXD4qI4ny15+d214nDUavkvK+a6eA=
-----END CERTIFICATE REQUEST-----
";

/// `POST /api/v1/certificates` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IssueRequest, example = json!({"csr": EXAMPLE_CSR, "profile": "tls-server", "validity_days": 30}))]
pub(crate) struct IssueBody {
    /// PKCS#10 CSR, PEM (its signature is verified: proof of possession).
    csr: String,
    /// Profile name (default `tls-server`).
    profile: Option<String>,
    /// Issuer id or name (default: the tenant's issuing CA).
    issuer: Option<String>,
    /// Requested validity in days (default: the profile's).
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    validity_days: Option<u32>,
    /// What the certificate is for, recorded in the audit event (at most 256 characters,
    /// none of them control characters).
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    purpose: Option<String>,
}

/// A newly issued certificate.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IssuedCertificate)]
pub(crate) struct IssuedBody {
    /// Inventory id.
    #[schema(format = Uuid)]
    id: String,
    /// Serial, lowercase hex.
    serial: String,
    /// notBefore, RFC 3339.
    #[schema(format = DateTime)]
    not_before: String,
    /// notAfter, RFC 3339.
    #[schema(format = DateTime)]
    not_after: String,
    /// The certificate, PEM.
    certificate: String,
    /// Intermediates up to, excluding, the root, PEM.
    chain: String,
}

/// A certificate in the inventory.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Certificate)]
pub(crate) struct CertificateView {
    /// Inventory id.
    #[schema(format = Uuid)]
    id: String,
    /// Serial, lowercase hex.
    serial: String,
    /// Issuer id.
    #[schema(format = Uuid)]
    issuer: String,
    /// Subject commonName.
    common_name: Option<String>,
    /// SANs as `type:value`.
    sans: Vec<String>,
    /// Subject key type.
    #[schema(value_type = KeyAlgorithmName)]
    key_type: String,
    /// Revoked or not (expiry is visible in `not_after` and `expired`).
    status: StatusName,
    /// notBefore, RFC 3339.
    #[schema(format = DateTime)]
    not_before: String,
    /// notAfter, RFC 3339.
    #[schema(format = DateTime)]
    not_after: String,
    /// Whether notAfter has passed.
    expired: bool,
    /// Revocation time, RFC 3339.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    /// RFC 5280 reason name.
    #[schema(value_type = Option<RecordedReasonName>)]
    revocation_reason: Option<String>,
    /// Invalidity date, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    invalidity_date: Option<String>,
    /// The issuer's CRL shard that lists it once revoked.
    crl_shard: u32,
    /// Profile name and version.
    profile: String,
    /// Source protocol.
    source: String,
    /// SHA-256 fingerprint of the DER.
    fingerprint: String,
    /// How it was enrolled (an ACME provisioner, account and order); absent when nothing
    /// was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    enrollment: Option<EnrollmentView>,
    /// The certificate it replaces (ACME ARI), inventory id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    replaces: Option<String>,
    /// The certificate, PEM (single reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    /// The chain, PEM (single reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<String>,
}

/// How a certificate was enrolled.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Enrollment)]
pub(crate) struct EnrollmentView {
    /// The provisioner or enrollment label.
    label: Option<String>,
    /// The client's account (an ACME account id).
    account: Option<String>,
    /// The protocol's order (an ACME order id).
    order: Option<String>,
    /// The protocol's transaction.
    transaction: Option<String>,
}

/// A page of certificates.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CertificatePage {
    /// The certificates.
    items: Vec<CertificateView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(format = Uuid)]
    next_cursor: Option<String>,
}

/// A certificate's revocation status, as shown and as filtered on.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = CertificateStatus)]
pub(crate) enum StatusName {
    /// Not revoked.
    Valid,
    /// Revoked.
    Revoked,
}

impl From<CertificateStatus> for StatusName {
    fn from(s: CertificateStatus) -> Self {
        match s {
            CertificateStatus::Valid => Self::Valid,
            CertificateStatus::Revoked => Self::Revoked,
        }
    }
}

impl From<StatusName> for CertificateStatus {
    fn from(s: StatusName) -> Self {
        match s {
            StatusName::Valid => Self::Valid,
            StatusName::Revoked => Self::Revoked,
        }
    }
}

/// Filters for `GET /api/v1/certificates`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only certificates with this status.
    #[param(inline, nullable = false)]
    status: Option<StatusName>,
    /// RFC 3339 time: only certificates expiring before it.
    #[param(format = DateTime, nullable = false)]
    expires_before: Option<String>,
    /// A SAN value (DNS name, IP, URI or e-mail).
    #[param(nullable = false)]
    san: Option<String>,
    /// Issuer id.
    #[param(format = Uuid, nullable = false)]
    issuer: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(format = Uuid, nullable = false)]
    cursor: Option<String>,
}

/// `POST /api/v1/certificates/{id}/revoke` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RevokeRequest)]
pub(crate) struct RevokeBody {
    /// RFC 5280 reason name (`keyCompromise`, `superseded`, ...); default `unspecified`.
    #[schema(value_type = Option<RevocationReasonName>)]
    pub(crate) reason: Option<String>,
    /// When the key was known or suspected to be compromised (RFC 3339; not in the future).
    #[schema(format = DateTime)]
    pub(crate) invalidity_date: Option<String>,
}

impl RevokeBody {
    /// The reason and invalidity date, checked.
    pub(crate) fn parse(&self) -> Result<(RevocationReason, Option<i64>), ApiError> {
        let reason = match self.reason.as_deref() {
            None => RevocationReason::Unspecified,
            Some(r) => r
                .parse()
                .map_err(|e: trustbox_types::ParseRevocationReasonError| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid-reason", e.to_string())
                })?,
        };
        if reason == RevocationReason::RemoveFromCrl {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-reason",
                "removeFromCRL is only meaningful in delta CRLs",
            ));
        }
        let invalidity_date = self
            .invalidity_date
            .as_deref()
            .map(|t| {
                OffsetDateTime::parse(t, &Rfc3339)
                    .map(|t| t.unix_timestamp())
                    .map_err(|_| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid-invalidity-date",
                            format!("invalidity_date {t:?} is not an RFC 3339 time"),
                        )
                    })
            })
            .transpose()?;
        Ok((reason, invalidity_date))
    }
}

pub(crate) fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub(crate) fn view(r: &Certificate, full: Option<&IssuedCertificate>) -> CertificateView {
    CertificateView {
        id: r.id.to_string(),
        serial: r.serial.to_hex(),
        issuer: r.issuer.to_string(),
        common_name: r.common_name.clone(),
        sans: r.sans.clone(),
        key_type: r.key_algorithm.to_string(),
        status: r.status.into(),
        not_before: rfc3339(r.not_before),
        not_after: rfc3339(r.not_after),
        expired: r.not_after < OffsetDateTime::now_utc().unix_timestamp(),
        revoked_at: r.revoked_at.map(rfc3339),
        revocation_reason: r.revocation_reason.map(|x| x.as_str().to_owned()),
        invalidity_date: r.invalidity_date.map(rfc3339),
        crl_shard: r.crl_shard,
        profile: r.profile.clone(),
        source: r.source.clone(),
        fingerprint: r.fingerprint.to_string(),
        enrollment: (!r.enrollment.is_empty()).then(|| EnrollmentView {
            label: r.enrollment.label.clone(),
            account: r.enrollment.account.clone(),
            order: r.enrollment.order.clone(),
            transaction: r.enrollment.transaction.clone(),
        }),
        replaces: r.replaces.map(|id| id.to_string()),
        certificate: full.map(|f| f.certificate_pem.clone()),
        chain: full.map(|f| f.chain_pem.clone()),
    }
}

/// A UUID in its hyphenated form, the only one the document's `format: uuid` admits
/// (`Uuid::parse_str` also takes simple, braced and URN forms).
pub(crate) fn parse_uuid<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.len() == 36 {
        s.parse().ok()
    } else {
        None
    }
}

fn parse_id(s: &str) -> Result<CertificateId, ApiError> {
    parse_uuid(s).ok_or_else(|| ApiError::not_found("certificate"))
}

/// Issue a certificate from a CSR.
#[utoipa::path(post, path = "/api/v1/certificates", tag = "certificates", request_body = IssueBody,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, max_length = 128, min_length = 1,
        description = "1 to 128 printable characters: a retried request with the same key (and the same CSR) gets the certificate the first one got, never a second one.")),
    responses(
        (status = 201, description = "Issued, and committed to the inventory and the audit chain (or, for a retried Idempotency-Key, the certificate the first request got; then `Idempotent-Replayed: true`).", body = IssuedBody),
        (status = 202, description = "Pending (an issuance hook has not decided yet): retry with the same Idempotency-Key after Retry-After seconds.", body = PendingBody,
            headers(("Retry-After" = u64, description = "Seconds until the request should be retried."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])))]
pub(crate) async fn issue_certificate(
    State(app): State<App>,
    Auth(principal): Auth,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<IssueBody>,
) -> Result<Response, ApiError> {
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid-idempotency-key",
                        "Idempotency-Key must be printable ASCII",
                    )
                })?
                .to_owned(),
        ),
    };
    let mut request =
        IssuanceRequest::for_csr(principal, body.csr.into_bytes(), SourceProtocol::Api);
    request.profile = body.profile;
    request.issuer = body.issuer;
    request.purpose = body.purpose;
    request.validity = body
        .validity_days
        .map(|d| std::time::Duration::from_secs(u64::from(d) * 86400));
    request.idempotency_key = idempotency_key;
    let issued = match app.issuance.issue(request).await? {
        IssuanceOutcome::Issued(c) => c,
        IssuanceOutcome::Pending {
            request_id,
            retry_after,
        } => {
            let mut resp = json(
                StatusCode::ACCEPTED,
                &PendingBody {
                    status: "pending",
                    request_id,
                    retry_after: retry_after.as_secs(),
                },
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.as_secs().to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            return Ok(resp);
        }
    };
    let replayed = issued.replayed;
    let mut resp = json(
        StatusCode::CREATED,
        &IssuedBody {
            id: issued.certificate.id.to_string(),
            serial: issued.certificate.serial.to_hex(),
            not_before: rfc3339(issued.certificate.not_before),
            not_after: rfc3339(issued.certificate.not_after),
            certificate: issued.certificate_pem,
            chain: issued.chain_pem,
        },
    );
    if replayed {
        resp.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

/// A request an issuance hook has not decided yet.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PendingIssuance)]
pub(crate) struct PendingBody {
    /// Always `pending`.
    status: &'static str,
    /// The request's reference (its Idempotency-Key when one was sent).
    request_id: String,
    /// Seconds until it should be retried.
    retry_after: u64,
}

/// One certificate, with its PEM and chain.
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "certificates",
    params(("id" = uuid::Uuid, Path, description = "Inventory id.")),
    responses(
        (status = 200, description = "The certificate.", body = CertificateView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_certificate(
    State(app): State<App>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let full = app.issuance.certificate(&principal, parse_id(&id)?).await?;
    Ok(json(StatusCode::OK, &view(&full.certificate, Some(&full))))
}

/// A page of the inventory.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates", params(ListParams),
    responses(
        (status = 200, description = "A page, oldest first.", body = CertificatePage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_certificates(
    State(app): State<App>,
    Auth(principal): Auth,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", m);
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit must be between 1 and 1000".into()));
    }
    let query = CertificateQuery {
        status: q.status.map(CertificateStatus::from),
        expires_before: match q.expires_before.as_deref() {
            None => None,
            Some(s) => Some(
                OffsetDateTime::parse(s, &Rfc3339)
                    .map_err(|_| bad(format!("expires_before {s:?} is not an RFC 3339 time")))?
                    .unix_timestamp(),
            ),
        },
        san: q.san,
        issuer: match q.issuer.as_deref() {
            None => None,
            Some(s) => Some(
                parse_uuid::<IssuerId>(s)
                    .ok_or_else(|| bad(format!("issuer {s:?} is not an issuer id")))?,
            ),
        },
        after: match q.cursor.as_deref() {
            None => None,
            Some(s) => Some(
                parse_uuid::<CertificateId>(s).ok_or_else(|| bad("cursor is not valid".into()))?,
            ),
        },
        limit: limit + 1,
    };
    let mut items = app.issuance.list_certificates(&principal, &query).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|c| c.id.to_string())
    } else {
        None
    };
    Ok(json(
        StatusCode::OK,
        &CertificatePage {
            items: items.iter().map(|r| view(r, None)).collect(),
            next_cursor,
        },
    ))
}

/// Revoke a certificate.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/revoke", tag = "certificates", request_body = RevokeBody,
    params(("id" = uuid::Uuid, Path, description = "Inventory id.")),
    responses(
        (status = 200, description = "Revoked; its shard CRL and OCSP answers follow shortly.", body = CertificateView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke_certificate(
    State(app): State<App>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Response, ApiError> {
    let (reason, invalidity_date) = body.parse()?;
    let rec = app
        .revocation
        .revoke(&principal, parse_id(&id)?, reason, invalidity_date)
        .await?;
    Ok(json(StatusCode::OK, &view(&rec, None)))
}
