//! Issuers, profiles, tenants, tokens and the audit chain.

use super::certificates::rfc3339;
use super::{json, ApiError, ApiJson, ApiQuery, App, Auth};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use trustbox_authority::NewIssuer;
use trustbox_types::{IssuerId, KeyAlgorithm, ScopeSet, TokenId};
use trustbox_x509::Profile;
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/issuers` body: a root when `parent` is absent, else an intermediate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewIssuerBody {
    /// Unique name within the tenant.
    name: String,
    /// Subject commonName.
    common_name: String,
    /// Subject organizationName.
    organization: Option<String>,
    /// Parent issuer id or name.
    parent: Option<String>,
    /// `ecdsa-p256` (default), `ecdsa-p384`, `rsa-3072`, `rsa-4096`, `ed25519`.
    key_algorithm: Option<String>,
    /// Validity in days (default 1825; clamped to the parent's notAfter).
    validity_days: Option<u32>,
    /// pathLenConstraint (default 0 for intermediates, unconstrained for roots).
    path_len: Option<u8>,
    /// CRL shards its certificates are spread over (default: the server's `crl_shards`).
    crl_shards: Option<u32>,
    /// Whether its OCSP responder answers and certificates carry its URL (default true).
    ocsp_enabled: Option<bool>,
}

/// `PATCH /api/v1/issuers/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuerPatchBody {
    /// Turn the issuer's OCSP responder on or off.
    ocsp_enabled: bool,
}

/// An issuer as shown by the API.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct IssuerBody(trustbox_authority::IssuerView);

/// Issuers of the tenant.
#[utoipa::path(get, path = "/api/v1/issuers", tag = "issuers", responses((status = 200, body = Vec<IssuerBody>)), security(("bearer" = [])))]
pub(crate) async fn list_issuers(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &app.authority.list_issuers(&p).await?))
}

/// One issuer with its certificate and chain.
#[utoipa::path(get, path = "/api/v1/issuers/{id}", tag = "issuers", responses((status = 200, body = IssuerBody)), security(("bearer" = [])))]
pub(crate) async fn get_issuer(
    State(app): State<App>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: IssuerId = id.parse().map_err(|_| ApiError::not_found("issuer"))?;
    Ok(json(
        StatusCode::OK,
        &app.authority.issuer_view(&p, id).await?,
    ))
}

/// Create a root or an intermediate CA.
#[utoipa::path(post, path = "/api/v1/issuers", tag = "issuers", request_body = NewIssuerBody,
    responses((status = 201, body = IssuerBody)), security(("bearer" = [])))]
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
        .authority
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
            },
        )
        .await?;
    Ok(json(StatusCode::CREATED, &view))
}

/// Change an issuer's revocation settings (today: OCSP on or off).
#[utoipa::path(patch, path = "/api/v1/issuers/{id}", tag = "issuers", request_body = IssuerPatchBody,
    responses((status = 200, body = IssuerBody)), security(("bearer" = [])))]
pub(crate) async fn update_issuer(
    State(app): State<App>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<IssuerPatchBody>,
) -> Result<Response, ApiError> {
    let id: IssuerId = id.parse().map_err(|_| ApiError::not_found("issuer"))?;
    Ok(json(
        StatusCode::OK,
        &app.authority
            .set_issuer_ocsp(&p, id, b.ocsp_enabled)
            .await?,
    ))
}

/// Revoke an intermediate CA: its parent's CRL and OCSP list it, and it signs nothing more.
#[utoipa::path(post, path = "/api/v1/issuers/{id}/revoke", tag = "issuers", request_body = super::certificates::RevokeBody,
    responses((status = 200, body = super::certificates::CertificateView)), security(("bearer" = [])))]
pub(crate) async fn revoke_issuer(
    State(app): State<App>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<super::certificates::RevokeBody>,
) -> Result<Response, ApiError> {
    let id: IssuerId = id.parse().map_err(|_| ApiError::not_found("issuer"))?;
    let (reason, invalidity_date) = b.parse()?;
    let rec = app
        .authority
        .revoke_issuer(&p, id, reason, invalidity_date)
        .await?;
    Ok(json(StatusCode::OK, &super::certificates::view(&rec, None)))
}

/// Profiles of the tenant (its own and the built-ins it has not replaced).
#[utoipa::path(get, path = "/api/v1/profiles", tag = "profiles", responses((status = 200, body = Object)), security(("bearer" = [])))]
pub(crate) async fn list_profiles(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &app.authority.list_profiles(&p).await?,
    ))
}

/// One profile, newest version.
#[utoipa::path(get, path = "/api/v1/profiles/{name}", tag = "profiles", responses((status = 200, body = Object)), security(("bearer" = [])))]
pub(crate) async fn get_profile(
    State(app): State<App>,
    Auth(p): Auth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &app.authority.profile_view(&p, &name).await?,
    ))
}

/// Create a profile (version 1).
#[utoipa::path(post, path = "/api/v1/profiles", tag = "profiles", request_body = Object, responses((status = 201, body = Object)), security(("bearer" = [])))]
pub(crate) async fn create_profile(
    State(app): State<App>,
    Auth(p): Auth,
    ApiJson(profile): ApiJson<Profile>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::CREATED,
        &app.authority.put_profile(&p, profile, true).await?,
    ))
}

/// Replace a profile with a new version.
#[utoipa::path(put, path = "/api/v1/profiles/{name}", tag = "profiles", request_body = Object, responses((status = 200, body = Object)), security(("bearer" = [])))]
pub(crate) async fn update_profile(
    State(app): State<App>,
    Auth(p): Auth,
    Path(name): Path<String>,
    ApiJson(profile): ApiJson<Profile>,
) -> Result<Response, ApiError> {
    if profile.name != name {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-profile",
            "the body's name differs from the path",
        ));
    }
    Ok(json(
        StatusCode::OK,
        &app.authority.put_profile(&p, profile, false).await?,
    ))
}

/// `POST /api/v1/tenants` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenantBody {
    /// Unique tenant name.
    name: String,
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TenantBody {
    /// Identifier.
    id: String,
    /// Name.
    name: String,
    /// Creation time, RFC 3339.
    created_at: String,
}

/// Tenants visible to the caller.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", responses((status = 200, body = Vec<TenantBody>)), security(("bearer" = [])))]
pub(crate) async fn list_tenants(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let list: Vec<TenantBody> = app
        .authority
        .list_tenants(&p)
        .await?
        .into_iter()
        .map(|t| TenantBody {
            id: t.id.to_string(),
            name: t.name,
            created_at: rfc3339(t.created_at),
        })
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// Create a tenant with its own root and issuing CA (operator only).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenantBody, responses((status = 201, body = TenantBody)), security(("bearer" = [])))]
pub(crate) async fn create_tenant(
    State(app): State<App>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewTenantBody>,
) -> Result<Response, ApiError> {
    let t = app.authority.create_tenant(&p, &b.name).await?;
    Ok(json(
        StatusCode::CREATED,
        &TenantBody {
            id: t.id.to_string(),
            name: t.name,
            created_at: rfc3339(t.created_at),
        },
    ))
}

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTokenBody {
    /// A label.
    name: String,
    /// Scopes (`certs:issue`, `certs:read`, ...).
    scopes: Vec<String>,
    /// Another tenant's name (operator only).
    tenant: Option<String>,
}

/// A token (the secret only in the creation response).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenBody {
    /// Identifier.
    id: String,
    /// Label.
    name: String,
    /// Scopes.
    scopes: Vec<String>,
    /// Creation time, RFC 3339.
    created_at: String,
    /// Revocation time, RFC 3339.
    revoked_at: Option<String>,
    /// The bearer secret: shown once, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn token_body(r: &trustbox_store::TokenRecord, secret: Option<String>) -> TokenBody {
    TokenBody {
        id: r.id.to_string(),
        name: r.name.clone(),
        scopes: r.scopes.as_slice().iter().map(|s| s.to_string()).collect(),
        created_at: rfc3339(r.created_at),
        revoked_at: r.revoked_at.map(rfc3339),
        token: secret,
    }
}

/// Mint a token; the response is the only time its secret is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewTokenBody, responses((status = 201, body = TokenBody)), security(("bearer" = [])))]
pub(crate) async fn create_token(
    State(app): State<App>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewTokenBody>,
) -> Result<Response, ApiError> {
    let scopes = ScopeSet::parse_list(&b.scopes.join(","))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-scopes", e.to_string()))?;
    let t = app
        .authority
        .create_token(&p, b.tenant.as_deref(), &b.name, scopes)
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &token_body(&t.record, Some(t.secret)),
    ))
}

/// The tenant's tokens (no secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenBody>)), security(("bearer" = [])))]
pub(crate) async fn list_tokens(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let list: Vec<TokenBody> = app
        .authority
        .list_tokens(&p)
        .await?
        .iter()
        .map(|r| token_body(r, None))
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// Revoke a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", responses((status = 204)), security(("bearer" = [])))]
pub(crate) async fn revoke_token(
    State(app): State<App>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: TokenId = id.parse().map_err(|_| ApiError::not_found("token"))?;
    app.authority.revoke_token(&p, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Paging through the audit chain.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// The `next_cursor` of the previous page (a sequence number).
    cursor: Option<i64>,
    /// Page size, 1-1000 (default 100).
    limit: Option<u32>,
}

/// A page of audit events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Events in chain order.
    #[schema(value_type = Vec<Object>)]
    items: Vec<trustbox_store::AuditEvent>,
    /// Pass as `cursor` for the next page.
    next_cursor: Option<i64>,
}

/// The tenant's audit events, in chain order.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams), responses((status = 200, body = AuditPage)), security(("bearer" = [])))]
pub(crate) async fn list_audit(
    State(app): State<App>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items = app
        .authority
        .audit_events(&p, q.cursor.unwrap_or(0), limit)
        .await?;
    let next_cursor = if items.len() == limit as usize {
        items.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(json(StatusCode::OK, &AuditPage { items, next_cursor }))
}

/// The result of verifying the chain.
#[derive(Debug, Serialize, ToSchema)]
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
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", responses((status = 200, body = VerifyBody)), security(("bearer" = [])))]
pub(crate) async fn verify_audit(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let body = match app.authority.verify_audit(&p).await? {
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
