//! Issuers, tenants, tokens and the audit chain.

use super::certificates::{parse_uuid, rfc3339};
use super::wire::{self, CaKeyAlgorithmName, KeyAlgorithmName, ScopeName};
use super::{json, ApiError, ApiJson, ApiPath, ApiQuery, App, Auth};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, PayloadTooLarge, TooManyRequests,
    Unauthorized, UnprocessableEntity, UnsupportedMediaType,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use trustbox_authority::{AuditEntry, IssuerView, NewIssuer, Tenant, Token};
use trustbox_types::{IssuerId, KeyAlgorithm, Scope, ScopeSet, TokenId};
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/issuers` body: a root when `parent` is absent, else an intermediate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewIssuer, example = json!({"name": "edge", "common_name": "Edge Issuing CA", "parent": "root"}))]
pub(crate) struct NewIssuerBody {
    /// Unique name within the tenant.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: String,
    /// Subject commonName (at most 64 bytes of UTF-8, not only spaces).
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    common_name: String,
    /// Subject organizationName.
    organization: Option<String>,
    /// Parent issuer id or name.
    parent: Option<String>,
    /// Key algorithm (default `ecdsa-p256`).
    #[schema(value_type = Option<CaKeyAlgorithmName>)]
    key_algorithm: Option<String>,
    /// Validity in days (default 1825; clamped to the parent's notAfter).
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1, maximum = 36500)]
    validity_days: Option<u32>,
    /// pathLenConstraint (default 0 for intermediates, unconstrained for roots).
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(maximum = 255)]
    path_len: Option<u8>,
    /// CRL shards its certificates are spread over (default: the server's `crl_shards`).
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1, maximum = 1024)]
    crl_shards: Option<u32>,
    /// Whether its OCSP responder answers and certificates carry its URL (default true).
    ocsp_enabled: Option<bool>,
    /// The key backend its key is generated on (default `software`, today the only one).
    #[schema(max_length = 64)]
    key_backend: Option<String>,
}

/// `PATCH /api/v1/issuers/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IssuerPatch)]
pub(crate) struct IssuerPatchBody {
    /// Turn the issuer's OCSP responder on or off.
    ocsp_enabled: bool,
}

/// An issuer as shown by the API (never its key).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Issuer)]
pub(crate) struct IssuerBody {
    /// Identifier.
    #[schema(format = Uuid)]
    id: String,
    /// Name.
    name: String,
    /// Subject commonName.
    common_name: String,
    /// Parent issuer, if not a root.
    #[schema(format = Uuid)]
    parent: Option<String>,
    /// Whether it is a root.
    is_root: bool,
    /// Key algorithm.
    #[schema(value_type = KeyAlgorithmName)]
    key_algorithm: KeyAlgorithm,
    /// notBefore, RFC 3339.
    #[schema(format = DateTime)]
    not_before: String,
    /// notAfter, RFC 3339.
    #[schema(format = DateTime)]
    not_after: String,
    /// The CA certificate, PEM.
    certificate: String,
    /// Its ancestors up to, excluding, the root, PEM (empty for roots and for intermediates
    /// directly under a root).
    chain: String,
    /// Serial of the CA certificate, lowercase hex.
    serial: String,
    /// CRL shards its certificates are spread over.
    crl_shards: u32,
    /// Whether its OCSP responder answers.
    ocsp_enabled: bool,
    /// The key backend holding its key (`software`).
    key_backend: String,
}

impl From<IssuerView> for IssuerBody {
    fn from(v: IssuerView) -> Self {
        let IssuerView {
            id,
            name,
            common_name,
            parent,
            is_root,
            key_algorithm,
            not_before,
            not_after,
            certificate,
            chain,
            serial,
            crl_shards,
            ocsp_enabled,
            key_backend,
        } = v;
        Self {
            id: id.to_string(),
            name,
            common_name,
            parent: parent.map(|p| p.to_string()),
            is_root,
            key_algorithm,
            not_before,
            not_after,
            certificate,
            chain,
            serial,
            crl_shards,
            ocsp_enabled,
            key_backend,
        }
    }
}

fn parse_issuer_id(id: &str) -> Result<IssuerId, ApiError> {
    parse_uuid(id).ok_or_else(|| ApiError::not_found("issuer"))
}

/// Issuers of the tenant.
#[utoipa::path(get, path = "/api/v1/issuers", tag = "issuers",
    responses(
        (status = 200, description = "Every issuer of the tenant.", body = Vec<IssuerBody>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_issuers(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let list: Vec<IssuerBody> = app
        .administration
        .list_issuers(&p)
        .await?
        .into_iter()
        .map(IssuerBody::from)
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// One issuer with its certificate and chain.
#[utoipa::path(get, path = "/api/v1/issuers/{id}", tag = "issuers",
    params(("id" = uuid::Uuid, Path, description = "Issuer id.")),
    responses(
        (status = 200, description = "The issuer.", body = IssuerBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_issuer(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_issuer_id(&id)?;
    Ok(json(
        StatusCode::OK,
        &IssuerBody::from(app.administration.issuer_view(&p, id).await?),
    ))
}

/// Create a root or an intermediate CA.
#[utoipa::path(post, path = "/api/v1/issuers", tag = "issuers", request_body = NewIssuerBody,
    responses(
        (status = 201, description = "Created, with its key in custody.", body = IssuerBody),
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
pub(crate) async fn create_issuer(
    State(app): State<App>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewIssuerBody>,
) -> Result<Response, ApiError> {
    let key_algorithm: KeyAlgorithm = match b.key_algorithm.as_deref() {
        None => KeyAlgorithm::EcdsaP256,
        Some(s) => s
            .parse()
            .map_err(|e: trustbox_types::ParseKeyAlgorithmError| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-key-algorithm",
                    e.to_string(),
                )
            })?,
    };
    let is_root = b.parent.is_none();
    let view = app
        .administration
        .create_issuer(
            &p,
            NewIssuer {
                name: b.name,
                common_name: b.common_name,
                organization: b.organization,
                parent: b.parent,
                key_algorithm,
                validity_days: b.validity_days.unwrap_or(1825),
                path_len: b.path_len.or(if is_root { None } else { Some(0) }),
                crl_shards: b.crl_shards,
                ocsp_enabled: b.ocsp_enabled,
                key_backend: b.key_backend,
            },
        )
        .await?;
    Ok(json(StatusCode::CREATED, &IssuerBody::from(view)))
}

/// Change an issuer's revocation settings (today: OCSP on or off).
#[utoipa::path(patch, path = "/api/v1/issuers/{id}", tag = "issuers", request_body = IssuerPatchBody,
    params(("id" = uuid::Uuid, Path, description = "Issuer id.")),
    responses(
        (status = 200, description = "The issuer as changed.", body = IssuerBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn update_issuer(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<IssuerPatchBody>,
) -> Result<Response, ApiError> {
    let id = parse_issuer_id(&id)?;
    Ok(json(
        StatusCode::OK,
        &IssuerBody::from(
            app.administration
                .set_issuer_ocsp(&p, id, b.ocsp_enabled)
                .await?,
        ),
    ))
}

/// Revoke an intermediate CA: its parent's CRL and OCSP list it, and it signs nothing more.
#[utoipa::path(post, path = "/api/v1/issuers/{id}/revoke", tag = "issuers", request_body = super::certificates::RevokeBody,
    params(("id" = uuid::Uuid, Path, description = "Issuer id (an intermediate: roots are not revocable).")),
    responses(
        (status = 200, description = "The intermediate's certificate, revoked.", body = super::certificates::CertificateView),
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
pub(crate) async fn revoke_issuer(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<super::certificates::RevokeBody>,
) -> Result<Response, ApiError> {
    let id = parse_issuer_id(&id)?;
    let (reason, invalidity_date) = b.parse()?;
    let rec = app
        .revocation
        .revoke_issuer(&p, id, reason, invalidity_date)
        .await?;
    Ok(json(StatusCode::OK, &super::certificates::view(&rec, None)))
}

/// `POST /api/v1/tenants` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewTenant)]
pub(crate) struct NewTenantBody {
    /// Unique tenant name (it is part of its CAs' commonNames, hence at most 42 characters).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,42}$")]
    name: String,
}

/// The longest tenant name whose CA commonNames (`TrustBox Issuing CA (<name>)`, the longer
/// of the two the authority gives a new tenant) fit the 64 characters of an X.520
/// commonName. A longer name would fail after the tenant row exists.
const MAX_TENANT_NAME: usize = trustbox_authority::MAX_TENANT_NAME_CHARS;

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tenant)]
pub(crate) struct TenantBody {
    /// Identifier.
    #[schema(format = Uuid)]
    id: String,
    /// Name.
    name: String,
    /// Creation time, RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<Tenant> for TenantBody {
    fn from(t: Tenant) -> Self {
        let Tenant {
            id,
            name,
            created_at,
        } = t;
        Self {
            id: id.to_string(),
            name,
            created_at: rfc3339(created_at),
        }
    }
}

/// Tenants visible to the caller.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses(
        (status = 200, description = "The tenants: all of them for an operator, else the caller's.", body = Vec<TenantBody>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_tenants(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let list: Vec<TenantBody> = app
        .administration
        .list_tenants(&p)
        .await?
        .into_iter()
        .map(TenantBody::from)
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// Create a tenant with its own root and issuing CA (operator only).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenantBody,
    responses(
        (status = 201, description = "Created, with its own root and issuing CA.", body = TenantBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create_tenant(
    State(app): State<App>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewTenantBody>,
) -> Result<Response, ApiError> {
    if b.name.len() > MAX_TENANT_NAME {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-name",
            format!("tenant name must be at most {MAX_TENANT_NAME} characters"),
        ));
    }
    let t = app.administration.create_tenant(&p, &b.name).await?;
    Ok(json(StatusCode::CREATED, &TenantBody::from(t)))
}

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewToken, example = json!({"name": "ci", "scopes": ["certs:issue", "certs:read"]}))]
pub(crate) struct NewTokenBody {
    /// A label.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: String,
    /// Scopes (at least one); none beyond the caller's own.
    #[schema(value_type = Vec<ScopeName>, min_items = 1)]
    scopes: Vec<String>,
    /// Another tenant's name (operator only).
    tenant: Option<String>,
    /// Lifetime in seconds (60 to 10 years); the token never expires when absent.
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 60, maximum = 316_224_000)]
    expires_in: Option<i64>,
}

/// A token (the secret only in the creation response).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Token)]
pub(crate) struct TokenBody {
    /// Identifier.
    #[schema(format = Uuid)]
    id: String,
    /// Label.
    name: String,
    /// Scopes.
    #[schema(value_type = Vec<ScopeName>)]
    scopes: Vec<String>,
    /// Creation time, RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// Revocation time, RFC 3339.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    /// Expiry time, RFC 3339 (none: it does not expire).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// The bearer secret: shown once, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn token_body(r: &Token, secret: Option<String>) -> TokenBody {
    let Token {
        id,
        tenant: _,
        name,
        scopes,
        created_at,
        revoked_at,
        expires_at,
    } = r;
    TokenBody {
        id: id.to_string(),
        name: name.clone(),
        scopes: scopes.as_slice().iter().map(|s| s.to_string()).collect(),
        created_at: rfc3339(*created_at),
        revoked_at: revoked_at.map(rfc3339),
        expires_at: expires_at.map(rfc3339),
        token: secret,
    }
}

/// Mint a token; the response is the only time its secret is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewTokenBody,
    responses(
        (status = 201, description = "Minted; `token` is the secret, shown this once.", body = TokenBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create_token(
    State(app): State<App>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewTokenBody>,
) -> Result<Response, ApiError> {
    // Each element is one scope name (no comma-separated lists inside an element).
    let scopes = b
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map(ScopeSet::new)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-scopes", e.to_string()))?;
    let t = app
        .administration
        .create_token_expiring(&p, b.tenant.as_deref(), &b.name, scopes, b.expires_in)
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &token_body(&t.token, Some(t.secret)),
    ))
}

/// The tenant's tokens (no secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "The tenant's tokens, revoked ones included.", body = Vec<TokenBody>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_tokens(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let list: Vec<TokenBody> = app
        .administration
        .list_tokens(&p)
        .await?
        .iter()
        .map(|r| token_body(r, None))
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// Revoke a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = uuid::Uuid, Path, description = "Token id.")),
    responses(
        (status = 204, description = "Revoked (also when it already was); it authenticates nothing from now on."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke_token(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id: TokenId = parse_uuid(&id).ok_or_else(|| ApiError::not_found("token"))?;
    app.administration.revoke_token(&p, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The largest integer every JSON implementation reads exactly (2^53 - 1).
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Paging through the audit chain.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// The `next_cursor` of the previous page (a sequence number; events after it).
    #[param(minimum = 0, maximum = 9007199254740991_i64, nullable = false)]
    cursor: Option<i64>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    limit: Option<u32>,
}

/// One event of the tenant's hash chain.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub(crate) struct AuditEventBody {
    /// Position in the tenant's chain, from 1.
    #[schema(minimum = 1)]
    seq: i64,
    /// Tenant.
    #[schema(format = Uuid)]
    tenant: String,
    /// Time, microseconds since the Unix epoch.
    at_us: i64,
    /// Who acted (`token:<id>:<name>`, `system:...`).
    actor: String,
    /// What was done (`certificate.issue`, ...).
    action: String,
    /// On what (`certificate:<id>`, ...).
    resource: String,
    /// The outcome (`success`, or what failed).
    outcome: String,
    /// Details: compact JSON text, hashed exactly as stored.
    details: String,
    /// Hash of the previous event (or the genesis hash), lowercase hex.
    prev_hash: String,
    /// This event's hash, lowercase hex.
    hash: String,
}

impl From<AuditEntry> for AuditEventBody {
    fn from(e: AuditEntry) -> Self {
        let AuditEntry {
            seq,
            tenant,
            at_us,
            actor,
            action,
            resource,
            outcome,
            details,
            prev_hash,
            hash,
        } = e;
        Self {
            seq,
            tenant: tenant.to_string(),
            at_us,
            actor,
            action,
            resource,
            outcome,
            details,
            prev_hash,
            hash,
        }
    }
}

/// A page of audit events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Events in chain order.
    items: Vec<AuditEventBody>,
    /// Pass as `cursor` for the next page; null when this page is not full.
    next_cursor: Option<i64>,
}

/// The tenant's audit events, in chain order.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses(
        (status = 200, description = "A page of events, in chain order.", body = AuditPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_audit(
    State(app): State<App>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> Result<Response, ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", m);
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit must be between 1 and 1000"));
    }
    let cursor = q.cursor.unwrap_or(0);
    if !(0..=MAX_SAFE_INTEGER).contains(&cursor) {
        return Err(bad("cursor must be between 0 and 2^53 - 1"));
    }
    let items: Vec<AuditEventBody> = app
        .administration
        .audit_events(&p, cursor, limit)
        .await?
        .into_iter()
        .map(AuditEventBody::from)
        .collect();
    let next_cursor = if items.len() == limit as usize {
        items.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(json(StatusCode::OK, &AuditPage { items, next_cursor }))
}

/// The result of verifying the chain.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditVerdict)]
pub(crate) struct VerifyBody {
    /// Whether every link holds.
    valid: bool,
    /// Events verified before the first break (all of them when valid).
    verified: i64,
    /// Sequence number of the first broken event.
    broken_at: Option<i64>,
    /// What is wrong with it.
    reason: Option<String>,
}

/// Verify the tenant's audit chain and name the first broken event.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses(
        (status = 200, description = "The verdict (a broken chain is a 200 that says so).", body = VerifyBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn verify_audit(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let body = match app.administration.verify_audit(&p).await? {
        Ok(n) => VerifyBody {
            valid: true,
            verified: n,
            broken_at: None,
            reason: None,
        },
        Err(brk) => VerifyBody {
            valid: false,
            verified: brk.seq - 1,
            broken_at: Some(brk.seq),
            reason: Some(brk.reason),
        },
    };
    Ok(json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn the_documented_tenant_name_length_is_the_enforced_one() {
        let schema = serde_json::to_value(NewTenantBody::schema()).expect("serializes");
        assert_eq!(
            schema["properties"]["name"]["pattern"],
            format!("^[A-Za-z0-9._-]{{1,{MAX_TENANT_NAME}}}$")
        );
        assert_eq!(
            format!("TrustBox Issuing CA ({})", "n".repeat(MAX_TENANT_NAME)).len(),
            64
        );
    }
}
