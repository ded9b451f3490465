//! `/api/v1/acme/provisioners`: the tenant's ACME servers (issuer, profiles, challenge
//! types, EAB requirement, validation ports, rate limits) and their external account
//! binding keys, whose HMAC key is shown once.

use super::certificates::rfc3339;
use super::wire;
use super::{json, ApiError, ApiJson, ApiPath, App, Auth};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, PayloadTooLarge, TooManyRequests,
    Unauthorized, UnprocessableEntity, UnsupportedMediaType,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trustbox_authority::{AcmeEabKey, AcmeProfile, AcmeProvisioner, AcmeSettings};
use utoipa::ToSchema;

/// A challenge type.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[schema(as = AcmeChallengeType)]
pub(crate) enum ChallengeName {
    /// http-01 (RFC 8555 §8.3).
    #[serde(rename = "http-01")]
    Http01,
    /// dns-01 (RFC 8555 §8.4).
    #[serde(rename = "dns-01")]
    Dns01,
    /// tls-alpn-01 (RFC 8737).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl ChallengeName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// An ACME profile: a TrustBox profile and a lifetime.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AcmeProfile)]
pub(crate) struct AcmeProfileBody {
    /// The TrustBox profile certificates are issued under.
    #[schema(min_length = 1, max_length = 64)]
    profile: String,
    /// Lifetime in days (the TrustBox profile bounds it).
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(deserialize_with = "wire::integer")]
    validity_days: u32,
    /// What it is for (shown in the directory's `meta.profiles`).
    #[serde(default)]
    #[schema(max_length = 256)]
    description: String,
}

/// A provisioner's settings; every field left out keeps its default (or, on update, is
/// reset to it).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AcmeSettingsInput)]
pub(crate) struct SettingsInput {
    /// Issuing CA, id or name [default: the tenant's default issuing CA].
    issuer: Option<String>,
    /// ACME profiles by name [default: `tlsserver` (90 days) and `shortlived` (7 days)].
    profiles: Option<BTreeMap<String, AcmeProfileBody>>,
    /// The profile of orders that name none [default: `tlsserver`].
    default_profile: Option<String>,
    /// Challenge types offered [default: all three].
    #[schema(min_items = 1, max_items = 3)]
    challenges: Option<Vec<ChallengeName>>,
    /// Whether new accounts need an external account binding [default: false].
    eab_required: Option<bool>,
    /// Port http-01 validation connects to [default: 80].
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1, maximum = 65535)]
    http01_port: Option<u16>,
    /// Port tls-alpn-01 validation connects to [default: 443].
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1, maximum = 65535)]
    tls_alpn01_port: Option<u16>,
    /// New orders per account per hour [default: 300].
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1)]
    orders_per_account_per_hour: Option<u32>,
    /// New orders per hour over the provisioner [default: 100000].
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1)]
    orders_per_hour: Option<u32>,
    /// Failed validations per account per hour before new orders are refused [default: 60].
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1)]
    failed_validations_per_account_per_hour: Option<u32>,
    /// Terms of service URL shown in the directory (accounts must agree).
    terms_of_service: Option<String>,
}

impl SettingsInput {
    fn into_settings(self) -> AcmeSettings {
        let d = AcmeSettings::default();
        let SettingsInput {
            issuer,
            profiles,
            default_profile,
            challenges,
            eab_required,
            http01_port,
            tls_alpn01_port,
            orders_per_account_per_hour,
            orders_per_hour,
            failed_validations_per_account_per_hour,
            terms_of_service,
        } = self;
        AcmeSettings {
            issuer,
            profiles: profiles
                .map(|m| {
                    m.into_iter()
                        .map(|(k, p)| {
                            (
                                k,
                                AcmeProfile {
                                    profile: p.profile,
                                    validity_days: p.validity_days,
                                    description: p.description,
                                },
                            )
                        })
                        .collect()
                })
                .unwrap_or(d.profiles),
            default_profile: default_profile.unwrap_or(d.default_profile),
            challenges: challenges
                .map(|c| c.iter().map(|n| n.as_str().to_owned()).collect())
                .unwrap_or(d.challenges),
            eab_required: eab_required.unwrap_or(d.eab_required),
            http01_port: http01_port.unwrap_or(d.http01_port),
            tls_alpn01_port: tls_alpn01_port.unwrap_or(d.tls_alpn01_port),
            orders_per_account_per_hour: orders_per_account_per_hour
                .unwrap_or(d.orders_per_account_per_hour),
            orders_per_hour: orders_per_hour.unwrap_or(d.orders_per_hour),
            failed_validations_per_account_per_hour: failed_validations_per_account_per_hour
                .unwrap_or(d.failed_validations_per_account_per_hour),
            terms_of_service,
        }
    }
}

/// A new provisioner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewAcmeProvisioner)]
pub(crate) struct NewProvisionerBody {
    /// Its name, unique on this server: the directory is `/acme/{name}/directory`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9-]*$")]
    name: String,
    /// Issuing CA, id or name [default: the tenant's default issuing CA].
    issuer: Option<String>,
    /// ACME profiles by name.
    profiles: Option<BTreeMap<String, AcmeProfileBody>>,
    /// The profile of orders that name none.
    default_profile: Option<String>,
    /// Challenge types offered.
    #[schema(min_items = 1, max_items = 3)]
    challenges: Option<Vec<ChallengeName>>,
    /// Whether new accounts need an external account binding.
    eab_required: Option<bool>,
    /// Port http-01 validation connects to.
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1, maximum = 65535)]
    http01_port: Option<u16>,
    /// Port tls-alpn-01 validation connects to.
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1, maximum = 65535)]
    tls_alpn01_port: Option<u16>,
    /// New orders per account per hour.
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1)]
    orders_per_account_per_hour: Option<u32>,
    /// New orders per hour over the provisioner.
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1)]
    orders_per_hour: Option<u32>,
    /// Failed validations per account per hour.
    #[serde(default, deserialize_with = "wire::opt_integer")]
    #[schema(minimum = 1)]
    failed_validations_per_account_per_hour: Option<u32>,
    /// Terms of service URL.
    terms_of_service: Option<String>,
}

impl NewProvisionerBody {
    fn split(self) -> (String, SettingsInput) {
        let NewProvisionerBody {
            name,
            issuer,
            profiles,
            default_profile,
            challenges,
            eab_required,
            http01_port,
            tls_alpn01_port,
            orders_per_account_per_hour,
            orders_per_hour,
            failed_validations_per_account_per_hour,
            terms_of_service,
        } = self;
        (
            name,
            SettingsInput {
                issuer,
                profiles,
                default_profile,
                challenges,
                eab_required,
                http01_port,
                tls_alpn01_port,
                orders_per_account_per_hour,
                orders_per_hour,
                failed_validations_per_account_per_hour,
                terms_of_service,
            },
        )
    }
}

/// A provisioner's settings as stored.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AcmeSettings)]
pub(crate) struct SettingsBody {
    /// Issuing CA; null: the tenant's default issuing CA.
    issuer: Option<String>,
    /// ACME profiles by name.
    profiles: BTreeMap<String, AcmeProfileBody>,
    /// The profile of orders that name none.
    default_profile: String,
    /// Challenge types offered.
    challenges: Vec<String>,
    /// Whether new accounts need an external account binding.
    eab_required: bool,
    /// Port http-01 validation connects to.
    http01_port: u16,
    /// Port tls-alpn-01 validation connects to.
    tls_alpn01_port: u16,
    /// New orders per account per hour.
    orders_per_account_per_hour: u32,
    /// New orders per hour over the provisioner.
    orders_per_hour: u32,
    /// Failed validations per account per hour.
    failed_validations_per_account_per_hour: u32,
    /// Terms of service URL.
    terms_of_service: Option<String>,
}

/// An ACME provisioner.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AcmeProvisioner)]
pub(crate) struct ProvisionerBody {
    /// Its name.
    name: String,
    /// Its directory, relative to this server (`/acme/{name}/directory`).
    directory: String,
    /// Its settings.
    settings: SettingsBody,
    /// Creation, RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<AcmeProvisioner> for ProvisionerBody {
    fn from(p: AcmeProvisioner) -> Self {
        let AcmeSettings {
            issuer,
            profiles,
            default_profile,
            challenges,
            eab_required,
            http01_port,
            tls_alpn01_port,
            orders_per_account_per_hour,
            orders_per_hour,
            failed_validations_per_account_per_hour,
            terms_of_service,
        } = p.settings;
        Self {
            directory: format!("/acme/{}/directory", p.name),
            name: p.name,
            settings: SettingsBody {
                issuer,
                profiles: profiles
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            AcmeProfileBody {
                                profile: v.profile,
                                validity_days: v.validity_days,
                                description: v.description,
                            },
                        )
                    })
                    .collect(),
                default_profile,
                challenges,
                eab_required,
                http01_port,
                tls_alpn01_port,
                orders_per_account_per_hour,
                orders_per_hour,
                failed_validations_per_account_per_hour,
                terms_of_service,
            },
            created_at: rfc3339(p.created_at),
        }
    }
}

/// The tenant's provisioners.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AcmeProvisionerList)]
pub(crate) struct ProvisionerList {
    /// By name.
    items: Vec<ProvisionerBody>,
}

/// A new external account binding key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewEabKey)]
pub(crate) struct NewEabKeyBody {
    /// What it is for (a team, a cluster).
    #[serde(default)]
    #[schema(max_length = 128, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    label: String,
}

/// An external account binding key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EabKey)]
pub(crate) struct EabKeyBody {
    /// The key identifier (the client's `--eab-kid`).
    kid: String,
    /// The provisioner it binds accounts of.
    provisioner: String,
    /// What it is for.
    label: String,
    /// `active`, `used` (bound to an account) or `revoked`.
    status: String,
    /// The account it bound.
    account: Option<String>,
    /// Creation, RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it bound the account, RFC 3339.
    #[schema(format = DateTime)]
    used_at: Option<String>,
}

impl From<AcmeEabKey> for EabKeyBody {
    fn from(k: AcmeEabKey) -> Self {
        Self {
            kid: k.id,
            provisioner: k.provisioner,
            label: k.label,
            status: k.status,
            account: k.account_id,
            created_at: rfc3339(k.created_at),
            used_at: k.used_at.map(rfc3339),
        }
    }
}

/// A new EAB key with its HMAC key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatedEabKey)]
pub(crate) struct CreatedEabKeyBody {
    /// The key.
    #[serde(flatten)]
    key: EabKeyBody,
    /// The HMAC-SHA256 key, base64url without padding (the client's `--eab-hmac-key`).
    /// Shown once; it cannot be read again.
    hmac_key: String,
}

/// The EAB keys of a provisioner.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EabKeyList)]
pub(crate) struct EabKeyList {
    /// Newest first.
    items: Vec<EabKeyBody>,
}

/// The tenant's ACME provisioners.
#[utoipa::path(get, path = "/api/v1/acme/provisioners", tag = "acme",
    responses(
        (status = 200, description = "The provisioners.", body = ProvisionerList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_acme_provisioners(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let items = app.acme.service().list_provisioners(&p).await?;
    Ok(json(
        StatusCode::OK,
        &ProvisionerList {
            items: items.into_iter().map(ProvisionerBody::from).collect(),
        },
    ))
}

/// Create an ACME provisioner (`ca:admin`).
#[utoipa::path(post, path = "/api/v1/acme/provisioners", tag = "acme", request_body = NewProvisionerBody,
    responses(
        (status = 201, description = "The provisioner.", body = ProvisionerBody),
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
pub(crate) async fn create_acme_provisioner(
    State(app): State<App>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewProvisionerBody>,
) -> Result<Response, ApiError> {
    let (name, settings) = body.split();
    let created = app
        .acme
        .service()
        .create_provisioner(&p, &name, &settings.into_settings())
        .await?;
    Ok(json(StatusCode::CREATED, &ProvisionerBody::from(created)))
}

/// One of the tenant's ACME provisioners (`ca:admin`).
#[utoipa::path(get, path = "/api/v1/acme/provisioners/{name}", tag = "acme",
    params(("name" = String, Path, description = "Provisioner name.")),
    responses(
        (status = 200, description = "The provisioner.", body = ProvisionerBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_acme_provisioner(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let v = app.acme.service().provisioner_view(&p, &name).await?;
    Ok(json(StatusCode::OK, &ProvisionerBody::from(v)))
}

/// Replace a provisioner's settings (`ca:admin`); fields left out return to their defaults.
#[utoipa::path(put, path = "/api/v1/acme/provisioners/{name}", tag = "acme", request_body = SettingsInput,
    params(("name" = String, Path, description = "Provisioner name.")),
    responses(
        (status = 200, description = "The provisioner.", body = ProvisionerBody),
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
pub(crate) async fn update_acme_provisioner(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SettingsInput>,
) -> Result<Response, ApiError> {
    let v = app
        .acme
        .service()
        .update_provisioner(&p, &name, &body.into_settings())
        .await?;
    Ok(json(StatusCode::OK, &ProvisionerBody::from(v)))
}

/// The EAB keys of a provisioner (`ca:admin`), without their HMAC keys.
#[utoipa::path(get, path = "/api/v1/acme/provisioners/{name}/eab-keys", tag = "acme",
    params(("name" = String, Path, description = "Provisioner name.")),
    responses(
        (status = 200, description = "The keys.", body = EabKeyList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_eab_keys(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let items = app.acme.service().list_eab_keys(&p, &name).await?;
    Ok(json(
        StatusCode::OK,
        &EabKeyList {
            items: items.into_iter().map(EabKeyBody::from).collect(),
        },
    ))
}

/// Create an EAB key (`ca:admin`): its HMAC key is in this answer only.
#[utoipa::path(post, path = "/api/v1/acme/provisioners/{name}/eab-keys", tag = "acme", request_body = NewEabKeyBody,
    params(("name" = String, Path, description = "Provisioner name.")),
    responses(
        (status = 201, description = "The key, with its HMAC key (shown once).", body = CreatedEabKeyBody),
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
pub(crate) async fn create_eab_key(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<NewEabKeyBody>,
) -> Result<Response, ApiError> {
    let (key, hmac) = app
        .acme
        .service()
        .create_eab_key(&p, &name, &body.label)
        .await?;
    let hmac_key = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hmac)
    };
    Ok(json(
        StatusCode::CREATED,
        &CreatedEabKeyBody {
            key: key.into(),
            hmac_key,
        },
    ))
}

/// Revoke an EAB key (`ca:admin`): an unused one can no longer bind an account.
#[utoipa::path(delete, path = "/api/v1/acme/provisioners/{name}/eab-keys/{kid}", tag = "acme",
    params(
        ("name" = String, Path, description = "Provisioner name."),
        ("kid" = String, Path, description = "Key identifier."),
    ),
    responses(
        (status = 200, description = "The key, revoked.", body = EabKeyBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke_eab_key(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath((name, kid)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let key = app.acme.service().revoke_eab_key(&p, &name, &kid).await?;
    Ok(json(StatusCode::OK, &EabKeyBody::from(key)))
}
