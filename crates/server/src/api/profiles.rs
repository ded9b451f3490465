//! `/api/v1/profiles`: the tenant's certificate profiles, versioned.
//!
//! The wire types mirror `trustbox_x509::Profile` field by field (destructured both ways,
//! so a field added there fails to compile here until the API shows it too) and carry the
//! schema the document publishes.

use super::wire::{self, KeyAlgorithmName};
use super::{json, ApiError, ApiJson, ApiPath, App, Auth};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, PayloadTooLarge, TooManyRequests,
    Unauthorized, UnprocessableEntity, UnsupportedMediaType,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use trustbox_authority::ProfileView;
use trustbox_types::KeyAlgorithm;
use trustbox_x509::{DnsRules, EmailRules, IpRules, Profile, SanRules, UriRules};
use utoipa::ToSchema;

/// dNSName SAN rules.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DnsRules)]
pub(crate) struct DnsRulesBody {
    /// Allowed names: `*` (any), `*.example.com` (any name below example.com), or an exact
    /// name. Empty: dNSName SANs are forbidden.
    #[serde(default)]
    allowed: Vec<String>,
    /// Whether wildcard names (`*.example.com`) may be requested.
    #[serde(default)]
    allow_wildcards: bool,
}

/// iPAddress SAN rules.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IpRules)]
pub(crate) struct IpRulesBody {
    /// Allowed ranges in CIDR notation (`10.0.0.0/8`, `::/0`). Empty: forbidden.
    #[serde(default)]
    allowed: Vec<String>,
}

/// URI SAN rules (SPIFFE IDs among them).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UriRules)]
pub(crate) struct UriRulesBody {
    /// Allowed prefixes (`spiffe://example.org/`). Empty: forbidden.
    #[serde(default)]
    allowed_prefixes: Vec<String>,
}

/// rfc822Name SAN rules.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EmailRules)]
pub(crate) struct EmailRulesBody {
    /// Allowed mail domains (`example.com`), or `*` for any. Empty: forbidden.
    #[serde(default)]
    allowed_domains: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_max_sans() -> u32 {
    100
}

/// All SAN rules of a profile.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SanRules)]
pub(crate) struct SanRulesBody {
    /// dNSName rules.
    #[serde(deserialize_with = "wire::object")]
    dns: DnsRulesBody,
    /// iPAddress rules.
    #[serde(deserialize_with = "wire::object")]
    ip: IpRulesBody,
    /// URI rules.
    #[serde(deserialize_with = "wire::object")]
    uri: UriRulesBody,
    /// rfc822Name rules.
    #[serde(deserialize_with = "wire::object")]
    email: EmailRulesBody,
    /// At least one SAN is required (default true).
    #[serde(default = "yes")]
    require_san: bool,
    /// The most SANs one certificate may carry (default 100).
    #[serde(default = "default_max_sans", deserialize_with = "wire::integer")]
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    max_sans: u32,
}

/// A profile: what a certificate issued under it may contain (`trustbox_x509::Profile`).
/// Besides what the schema says, the server checks that `default_validity_days` is at most
/// `max_validity_days`, that DNS patterns are `*`, `*.domain` or names, and IP ranges CIDR.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Profile, example = json!({
    "name": "web", "description": "Web servers of example.com",
    "key_algorithms": ["ecdsa-p256", "rsa-3072"], "max_validity_days": 90, "default_validity_days": 30,
    "san": {"dns": {"allowed": ["*.example.com"], "allow_wildcards": false}, "ip": {"allowed": []},
            "uri": {"allowed_prefixes": []}, "email": {"allowed_domains": []}},
    "key_usage": ["digitalSignature"], "extended_key_usage": ["serverAuth"]
}))]
pub(crate) struct ProfileBody {
    /// The profile's name, unique per tenant.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    name: String,
    /// A line for humans.
    #[serde(default)]
    description: String,
    /// Subject key algorithms accepted.
    #[serde(deserialize_with = "wire::key_algorithms")]
    #[schema(value_type = Vec<KeyAlgorithmName>, min_items = 1)]
    key_algorithms: Vec<KeyAlgorithm>,
    /// The longest validity that may be requested, in days.
    #[serde(deserialize_with = "wire::integer")]
    #[schema(minimum = 1, maximum = 3650)]
    max_validity_days: u32,
    /// The validity used when none is requested, in days (at most `max_validity_days`).
    #[serde(deserialize_with = "wire::integer")]
    #[schema(minimum = 1, maximum = 3650)]
    default_validity_days: u32,
    /// Copy the CSR's commonName into the subject (it must also be a permitted SAN value;
    /// default true).
    #[serde(default = "yes")]
    copy_common_name: bool,
    /// SAN rules.
    #[serde(deserialize_with = "wire::object")]
    san: SanRulesBody,
    /// keyUsage names (keyEncipherment is dropped for non-RSA keys, where it is
    /// meaningless).
    #[schema(value_type = Vec<wire::KeyUsageName>, min_items = 1)]
    key_usage: Vec<String>,
    /// extendedKeyUsage names or dotted OIDs (never OCSPSigning or anyExtendedKeyUsage).
    #[schema(value_type = Vec<wire::ExtendedKeyUsageName>)]
    extended_key_usage: Vec<String>,
    /// basicConstraints cA: always false (CA certificates come only from the issuer API);
    /// `true` is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = wire::FalseOnly)]
    ca: bool,
}

impl From<ProfileBody> for Profile {
    fn from(b: ProfileBody) -> Self {
        let ProfileBody {
            name,
            description,
            key_algorithms,
            max_validity_days,
            default_validity_days,
            copy_common_name,
            san,
            key_usage,
            extended_key_usage,
            ca,
        } = b;
        let SanRulesBody {
            dns,
            ip,
            uri,
            email,
            require_san,
            max_sans,
        } = san;
        Profile {
            name,
            description,
            key_algorithms,
            max_validity_days,
            default_validity_days,
            copy_common_name,
            san: SanRules {
                dns: DnsRules {
                    allowed: dns.allowed,
                    allow_wildcards: dns.allow_wildcards,
                },
                ip: IpRules {
                    allowed: ip.allowed,
                },
                uri: UriRules {
                    allowed_prefixes: uri.allowed_prefixes,
                },
                email: EmailRules {
                    allowed_domains: email.allowed_domains,
                },
                require_san,
                max_sans: max_sans as usize,
            },
            key_usage,
            extended_key_usage,
            ca,
        }
    }
}

impl From<Profile> for ProfileBody {
    fn from(p: Profile) -> Self {
        let Profile {
            name,
            description,
            key_algorithms,
            max_validity_days,
            default_validity_days,
            copy_common_name,
            san,
            key_usage,
            extended_key_usage,
            ca,
        } = p;
        let SanRules {
            dns:
                DnsRules {
                    allowed: dns_allowed,
                    allow_wildcards,
                },
            ip: IpRules {
                allowed: ip_allowed,
            },
            uri: UriRules { allowed_prefixes },
            email: EmailRules { allowed_domains },
            require_san,
            max_sans,
        } = san;
        Self {
            name,
            description,
            key_algorithms,
            max_validity_days,
            default_validity_days,
            copy_common_name,
            san: SanRulesBody {
                dns: DnsRulesBody {
                    allowed: dns_allowed,
                    allow_wildcards,
                },
                ip: IpRulesBody {
                    allowed: ip_allowed,
                },
                uri: UriRulesBody { allowed_prefixes },
                email: EmailRulesBody { allowed_domains },
                require_san,
                // Profiles stored through this API hold at most u32::MAX.
                max_sans: u32::try_from(max_sans).unwrap_or(u32::MAX),
            },
            key_usage,
            extended_key_usage,
            ca,
        }
    }
}

/// A profile version as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProfileVersion)]
pub(crate) struct ProfileViewBody {
    /// Version (0 for a built-in never changed by this tenant).
    #[schema(minimum = 0)]
    version: i64,
    /// Whether this is the built-in definition.
    builtin: bool,
    /// The profile.
    profile: ProfileBody,
}

impl From<ProfileView> for ProfileViewBody {
    fn from(v: ProfileView) -> Self {
        let ProfileView {
            version,
            builtin,
            profile,
        } = v;
        Self {
            version,
            builtin,
            profile: profile.into(),
        }
    }
}

/// Profiles of the tenant (its own and the built-ins it has not replaced).
#[utoipa::path(get, path = "/api/v1/profiles", tag = "profiles",
    responses(
        (status = 200, description = "The newest version of each profile.", body = Vec<ProfileViewBody>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_profiles(
    State(app): State<App>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let list: Vec<ProfileViewBody> = app
        .administration
        .list_profiles(&p)
        .await?
        .into_iter()
        .map(ProfileViewBody::from)
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// One profile, newest version.
#[utoipa::path(get, path = "/api/v1/profiles/{name}", tag = "profiles",
    params(("name" = String, Path, description = "Profile name.")),
    responses(
        (status = 200, description = "The profile's newest version.", body = ProfileViewBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_profile(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &ProfileViewBody::from(app.administration.profile_view(&p, &name).await?),
    ))
}

/// Create a profile (version 1).
#[utoipa::path(post, path = "/api/v1/profiles", tag = "profiles", request_body = ProfileBody,
    responses(
        (status = 201, description = "Created as version 1.", body = ProfileViewBody),
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
pub(crate) async fn create_profile(
    State(app): State<App>,
    Auth(p): Auth,
    ApiJson(profile): ApiJson<ProfileBody>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::CREATED,
        &ProfileViewBody::from(
            app.administration
                .put_profile(&p, profile.into(), true)
                .await?,
        ),
    ))
}

/// Replace a profile with a new version.
#[utoipa::path(put, path = "/api/v1/profiles/{name}", tag = "profiles", request_body = ProfileBody,
    params(("name" = String, Path, description = "Profile name; the body's `name` must be the same.")),
    responses(
        (status = 200, description = "The new version.", body = ProfileViewBody),
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
pub(crate) async fn update_profile(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(profile): ApiJson<ProfileBody>,
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
        &ProfileViewBody::from(
            app.administration
                .put_profile(&p, profile.into(), false)
                .await?,
        ),
    ))
}
