//! What the ACME adapter keeps through the seam: provisioners (which tenant an ACME
//! directory serves, with its settings), external account binding keys, accounts, orders
//! with their authorizations and challenges, and single-use nonces; and the two steps that
//! end in the seam proper: finalize (an issuance as the account, for the identifiers its
//! authorizations proved) and revocation. The protocol itself (JWS, nonces' format, the
//! wire JSON) is `trustbox_proto_acme`, above the seam.

use crate::error::{AuthorityError, ErrorKind};
use crate::{Authority, Enrollment, IssuanceRequest, SubjectKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use trustbox_store::{
    AcmeAccountRecord, AcmeAuthorizationRecord, AcmeChallengeRecord, AcmeEabKeyRecord, AcmeObject,
    AcmeOp, AcmeOrderRecord, AcmeProvisionerRecord, AcmeStateChange,
};
use trustbox_types::{
    Actor, CertificateId, Grants, Principal, RevocationReason, Scope, ScopeSet, SourceProtocol,
    TenantId,
};

/// The job kind that validates one challenge (key: the challenge id).
pub const ACME_VALIDATE: &str = "acme.validate";
/// How long a challenge response waits for its validation's first attempt: one that is
/// over by then is answered in the response, a slower one as `processing`.
const ANSWER_VALIDATION_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a new order (and its authorizations) may take to become valid, seconds.
const ORDER_LIFETIME_S: i64 = 24 * 3600;
/// Most identifiers in one order.
pub const MAX_ORDER_IDENTIFIERS: usize = 100;
/// How long a provisioner read from the store is used before it is read again (a change
/// made on another replica applies within it).
pub(crate) const PROVISIONER_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// The window rate limits count in, seconds.
const RATE_WINDOW_S: i64 = 3600;

/// One ACME profile a provisioner offers (the ACME profiles extension): a TrustBox
/// profile and a lifetime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeProfile {
    /// The TrustBox profile certificates are issued under.
    pub profile: String,
    /// Their lifetime, days (the TrustBox profile bounds it).
    pub validity_days: u32,
    /// What it is for (shown in the directory).
    #[serde(default)]
    pub description: String,
}

/// A provisioner's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeSettings {
    /// The issuing CA (id or name); the tenant's default issuing CA when `None`.
    pub issuer: Option<String>,
    /// The ACME profiles offered, by name.
    pub profiles: BTreeMap<String, AcmeProfile>,
    /// The profile of orders that name none.
    pub default_profile: String,
    /// The challenge types offered (`http-01`, `dns-01`, `tls-alpn-01`).
    pub challenges: Vec<String>,
    /// Whether new accounts need an external account binding.
    pub eab_required: bool,
    /// The port http-01 validation connects to (80; another for test setups).
    pub http01_port: u16,
    /// The port tls-alpn-01 validation connects to (443; another for test setups).
    pub tls_alpn01_port: u16,
    /// New orders per account per hour.
    pub orders_per_account_per_hour: u32,
    /// New orders per hour over the whole provisioner.
    pub orders_per_hour: u32,
    /// Failed validations per account per hour before new orders are refused.
    pub failed_validations_per_account_per_hour: u32,
    /// The terms of service URL shown in the directory.
    pub terms_of_service: Option<String>,
}

impl Default for AcmeSettings {
    fn default() -> Self {
        let profile = |days: u32, description: &str| AcmeProfile {
            profile: "tls-server".into(),
            validity_days: days,
            description: description.into(),
        };
        Self {
            issuer: None,
            profiles: BTreeMap::from([
                (
                    "tlsserver".into(),
                    profile(90, "TLS server certificate, 90 days"),
                ),
                (
                    "shortlived".into(),
                    profile(7, "Short-lived TLS server certificate, 7 days"),
                ),
            ]),
            default_profile: "tlsserver".into(),
            challenges: ["http-01", "dns-01", "tls-alpn-01"]
                .map(String::from)
                .to_vec(),
            eab_required: false,
            http01_port: 80,
            tls_alpn01_port: 443,
            orders_per_account_per_hour: 300,
            orders_per_hour: 100_000,
            failed_validations_per_account_per_hour: 60,
            terms_of_service: None,
        }
    }
}

impl AcmeSettings {
    /// Checks the settings; a bad one is `invalid-acme-settings` naming the field.
    pub fn validate(&self) -> Result<(), AuthorityError> {
        let bad = |d: String| AuthorityError::invalid("invalid-acme-settings", d);
        if self.profiles.is_empty() || self.profiles.len() > 32 {
            return Err(bad("profiles: 1 to 32 profiles".into()));
        }
        for (name, p) in &self.profiles {
            let token = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !token {
                return Err(bad(format!(
                    "profiles: {name:?} is not 1 to 64 letters, digits, '-' or '_'"
                )));
            }
            if p.validity_days == 0 || p.validity_days > 3650 {
                return Err(bad(format!("profiles.{name}.validity_days: 1 to 3650")));
            }
            if p.profile.is_empty() || p.description.len() > 256 {
                return Err(bad(format!(
                    "profiles.{name}: a TrustBox profile and a short description"
                )));
            }
        }
        if !self.profiles.contains_key(&self.default_profile) {
            return Err(bad(format!(
                "default_profile: {:?} is not among the profiles",
                self.default_profile
            )));
        }
        if self.challenges.is_empty() {
            return Err(bad("challenges: at least one".into()));
        }
        for (i, c) in self.challenges.iter().enumerate() {
            if !["http-01", "dns-01", "tls-alpn-01"].contains(&c.as_str()) {
                return Err(bad(format!(
                    "challenges: {c:?} is not http-01, dns-01 or tls-alpn-01"
                )));
            }
            if self.challenges[..i].contains(c) {
                return Err(bad(format!("challenges: {c:?} is named twice")));
            }
        }
        if self.http01_port == 0 || self.tls_alpn01_port == 0 {
            return Err(bad("http01_port and tls_alpn01_port: 1 to 65535".into()));
        }
        if self.orders_per_account_per_hour == 0
            || self.orders_per_hour == 0
            || self.failed_validations_per_account_per_hour == 0
        {
            return Err(bad("rate limits: at least 1".into()));
        }
        if let Some(tos) = &self.terms_of_service {
            if !(tos.starts_with("https://") || tos.starts_with("http://")) || tos.len() > 512 {
                return Err(bad("terms_of_service: an http(s) URL".into()));
            }
        }
        Ok(())
    }
}

/// An ACME provisioner: a named ACME server bound to a tenant, with its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeProvisioner {
    /// Identifier.
    pub id: String,
    /// Its name (the `{provisioner}` of `/acme/{provisioner}/directory`).
    pub name: String,
    /// The tenant its accounts and certificates belong to.
    pub tenant: TenantId,
    /// What it offers and how it is limited.
    pub settings: AcmeSettings,
    /// Creation time.
    pub created_at: i64,
}

impl TryFrom<AcmeProvisionerRecord> for AcmeProvisioner {
    type Error = AuthorityError;
    fn try_from(r: AcmeProvisionerRecord) -> Result<Self, Self::Error> {
        Ok(Self {
            settings: serde_json::from_str(&r.settings).map_err(AuthorityError::internal)?,
            id: r.id,
            name: r.name,
            tenant: r.tenant,
            created_at: r.created_at,
        })
    }
}

/// An external account binding key as listed (the HMAC key is shown once, at creation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeEabKey {
    /// The key identifier a client passes as `kid`.
    pub id: String,
    /// The provisioner it is valid with.
    pub provisioner: String,
    /// What it is for.
    pub label: String,
    /// `active`, `used` or `revoked`.
    pub status: String,
    /// The account it bound.
    pub account_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// When it bound the account.
    pub used_at: Option<i64>,
}

impl From<AcmeEabKeyRecord> for AcmeEabKey {
    fn from(r: AcmeEabKeyRecord) -> Self {
        Self {
            id: r.id,
            provisioner: r.provisioner,
            label: r.label,
            status: r.status,
            account_id: r.account_id,
            created_at: r.created_at,
            used_at: r.used_at,
        }
    }
}

/// An ACME identifier (`dns` or `ip`) as an order names it (`*.` kept for wildcards).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeIdentifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The name or address.
    pub value: String,
}

impl AcmeIdentifier {
    /// The identifier as the inventory records SANs (`dns:NAME`, `ip:ADDR`).
    fn san(&self) -> String {
        format!("{}:{}", self.kind, self.value.to_ascii_lowercase())
    }
}

/// What an order asks for: per identifier, the challenge types that may prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAcmeOrder {
    /// The identifiers with the challenge types offered for each.
    pub identifiers: Vec<(AcmeIdentifier, Vec<String>)>,
    /// The ACME profile (`None`: the provisioner's default).
    pub profile: Option<String>,
    /// Requested validity start, Unix seconds.
    pub not_before: Option<i64>,
    /// Requested validity end, Unix seconds.
    pub not_after: Option<i64>,
    /// The certificate this order replaces (ARI): its certificate id, and the ARI
    /// identifier the client named it by.
    pub replaces: Option<(String, String)>,
}

/// An ACME order as the adapter answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeOrder {
    /// Identifier.
    pub id: String,
    /// The account that placed it.
    pub account_id: String,
    /// Its status, expiry applied.
    pub status: String,
    /// When it expires.
    pub expires_at: i64,
    /// Its identifiers.
    pub identifiers: Vec<AcmeIdentifier>,
    /// The ACME profile it is issued under.
    pub profile: String,
    /// Requested validity start.
    pub not_before: Option<i64>,
    /// Requested validity end.
    pub not_after: Option<i64>,
    /// The certificate it replaces, as the client named it (ARI identifier).
    pub replaces: Option<String>,
    /// The inventory id of the certificate it replaces.
    pub replaces_certificate: Option<String>,
    /// Why it is invalid, a problem document.
    pub error: Option<serde_json::Value>,
    /// The certificate issued for it.
    pub certificate_id: Option<String>,
    /// Its authorizations' ids.
    pub authorizations: Vec<String>,
}

/// An ACME challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeChallenge {
    /// Identifier.
    pub id: String,
    /// The authorization it can prove.
    pub authz_id: String,
    /// `http-01`, `dns-01` or `tls-alpn-01`.
    pub kind: String,
    /// The token.
    pub token: String,
    /// `pending`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// When it was validated.
    pub validated_at: Option<i64>,
    /// Why it failed, a problem document.
    pub error: Option<serde_json::Value>,
}

/// An ACME authorization with its challenges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAuthorization {
    /// Identifier.
    pub id: String,
    /// The order it belongs to.
    pub order_id: String,
    /// Its identifier (without `*.`).
    pub identifier: AcmeIdentifier,
    /// Whether the order asked for a wildcard.
    pub wildcard: bool,
    /// Its status, expiry applied.
    pub status: String,
    /// When it expires.
    pub expires_at: i64,
    /// Its challenges.
    pub challenges: Vec<AcmeChallenge>,
}

/// What validating one challenge needs (the job handler's input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeValidationTarget {
    /// The challenge.
    pub challenge: AcmeChallenge,
    /// The identifier to prove (without `*.`).
    pub identifier: AcmeIdentifier,
    /// Whether the order asked for a wildcard.
    pub wildcard: bool,
    /// The account key's RFC 7638 thumbprint (for the key authorization).
    pub thumbprint: String,
    /// The provisioner's settings (ports).
    pub settings: AcmeSettings,
    /// The order the challenge belongs to.
    pub order_id: String,
    /// How many authorizations the order has.
    pub authorizations: usize,
}

/// A certificate an ACME order got, with its chain, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeCertificate {
    /// The certificate and its issuing chain, PEM.
    pub chain_pem: String,
}

fn order_view(
    r: AcmeOrderRecord,
    authzs: Vec<String>,
    default_profile: &str,
    now: i64,
) -> Result<AcmeOrder, AuthorityError> {
    let expired = now >= r.expires_at && matches!(r.status.as_str(), "pending" | "ready");
    Ok(AcmeOrder {
        identifiers: serde_json::from_str(&r.identifiers).map_err(AuthorityError::internal)?,
        status: if expired { "invalid".into() } else { r.status },
        error: r
            .error
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(AuthorityError::internal)?,
        profile: r.profile.unwrap_or_else(|| default_profile.to_owned()),
        id: r.id,
        account_id: r.account_id,
        expires_at: r.expires_at,
        not_before: r.not_before,
        not_after: r.not_after,
        replaces: r.replaces_ari,
        replaces_certificate: r.replaces,
        certificate_id: r.certificate_id,
        authorizations: authzs,
    })
}

/// An order's authorization ids: the order id and the identifier's index, so they are
/// known without reading them.
fn authorization_ids(r: &AcmeOrderRecord) -> Result<Vec<String>, AuthorityError> {
    let n = serde_json::from_str::<Vec<serde_json::Value>>(&r.identifiers)
        .map_err(AuthorityError::internal)?
        .len();
    Ok((0..n).map(|i| authorization_id(&r.id, i)).collect())
}

fn authorization_id(order: &str, index: usize) -> String {
    format!("{order}{index:03}")
}

fn challenge_view(r: AcmeChallengeRecord) -> Result<AcmeChallenge, AuthorityError> {
    Ok(AcmeChallenge {
        error: r
            .error
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(AuthorityError::internal)?,
        id: r.id,
        authz_id: r.authz_id,
        kind: r.kind,
        token: r.token,
        status: r.status,
        validated_at: r.validated_at,
    })
}

fn authz_view(
    r: AcmeAuthorizationRecord,
    challenges: Vec<AcmeChallengeRecord>,
    now: i64,
) -> Result<AcmeAuthorization, AuthorityError> {
    let expired = now >= r.expires_at && matches!(r.status.as_str(), "pending" | "valid");
    Ok(AcmeAuthorization {
        status: if expired { "expired".into() } else { r.status },
        identifier: AcmeIdentifier {
            kind: r.identifier_type,
            value: r.identifier_value,
        },
        id: r.id,
        order_id: r.order_id,
        wildcard: r.wildcard,
        expires_at: r.expires_at,
        challenges: challenges
            .into_iter()
            .map(challenge_view)
            .collect::<Result<_, _>>()?,
    })
}

/// A random token: 32 bytes, base64url (RFC 8555 §8.1 asks for at least 128 bits).
fn random_token() -> Result<String, AuthorityError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthorityError::internal("no randomness available"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn acme_error(kind: ErrorKind, code: &'static str, detail: impl Into<String>) -> AuthorityError {
    AuthorityError::new(kind, code, detail)
}

/// An ACME account as the adapter sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAccount {
    /// Identifier (the last segment of its URL).
    pub id: String,
    /// The provisioner it registered with.
    pub provisioner: String,
    /// The RFC 7638 thumbprint of its key.
    pub thumbprint: String,
    /// Its public key, canonical JWK JSON.
    pub jwk: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// Contact URLs.
    pub contact: Vec<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// The external account binding key it was created with.
    pub eab_kid: Option<String>,
}

impl TryFrom<AcmeAccountRecord> for AcmeAccount {
    type Error = AuthorityError;
    fn try_from(r: AcmeAccountRecord) -> Result<Self, Self::Error> {
        Ok(Self {
            contact: serde_json::from_str(&r.contact).map_err(AuthorityError::internal)?,
            id: r.id,
            provisioner: r.provisioner,
            thumbprint: r.thumbprint,
            jwk: r.jwk,
            status: r.status,
            created_at: r.created_at,
            eab_kid: r.eab_kid,
        })
    }
}

/// The provisioner every server has: the default tenant's.
pub const DEFAULT_PROVISIONER: &str = "default";

impl Authority {
    /// The provisioner `name` (cached for [`PROVISIONER_TTL`] while caches are trusted).
    pub(crate) async fn acme_provisioner(
        &self,
        name: &str,
    ) -> Result<AcmeProvisioner, AuthorityError> {
        if let Some((at, p)) = self
            .acme_provisioners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            if at.elapsed() < PROVISIONER_TTL && self.caches_trusted() {
                return Ok(p.clone());
            }
        }
        let p: AcmeProvisioner = self
            .store
            .acme_provisioner_by_name(name)
            .await?
            .ok_or_else(|| AuthorityError::not_found("ACME provisioner"))?
            .try_into()?;
        let mut cache = self
            .acme_provisioners
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(name.to_owned(), (std::time::Instant::now(), p.clone()));
        Ok(p)
    }

    fn forget_acme_provisioner(&self, name: &str) {
        self.acme_provisioners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Creates the [`DEFAULT_PROVISIONER`] of the `default` tenant with default settings,
    /// unless it exists (startup).
    pub(crate) async fn ensure_default_acme_provisioner(&self) -> Result<(), AuthorityError> {
        if self
            .store
            .acme_provisioner_by_name(DEFAULT_PROVISIONER)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let tenant = self
            .store
            .tenant_by_name("default")
            .await?
            .ok_or_else(|| AuthorityError::not_found("tenant"))?;
        match self
            .insert_acme_provisioner(
                tenant.id,
                "system:bootstrap",
                DEFAULT_PROVISIONER,
                &AcmeSettings::default(),
            )
            .await
        {
            Ok(_) => Ok(()),
            // another replica created it first
            Err(e) if e.kind == ErrorKind::Conflict => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn insert_acme_provisioner(
        &self,
        tenant: TenantId,
        actor: &str,
        name: &str,
        settings: &AcmeSettings,
    ) -> Result<AcmeProvisioner, AuthorityError> {
        settings.validate()?;
        let now = self.now_s();
        let rec = AcmeProvisionerRecord {
            tenant,
            id: new_id(),
            name: name.to_owned(),
            settings: serde_json::to_string(settings).map_err(AuthorityError::internal)?,
            created_at: now,
            updated_at: now,
        };
        let event = self.event(
            tenant,
            actor,
            "acme.provisioner.create",
            format!("acme-provisioner:{name}"),
            "success",
            settings,
        );
        match self.store.insert_acme_provisioner(&rec, &event).await {
            Ok(()) => rec.try_into(),
            Err(trustbox_store::StoreError::Conflict(_)) => Err(acme_error(
                ErrorKind::Conflict,
                "acme-provisioner-exists",
                format!("an ACME provisioner named {name:?} exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a provisioner of the principal's tenant (`ca:admin`); its name is global
    /// (it is the URL), so a taken name is `Conflict` whichever tenant holds it.
    pub(crate) async fn create_acme_provisioner(
        &self,
        principal: &Principal,
        name: &str,
        settings: &AcmeSettings,
    ) -> Result<AcmeProvisioner, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !ok {
            return Err(AuthorityError::invalid(
                "invalid-acme-provisioner-name",
                "a provisioner name is 1 to 64 lowercase letters, digits and '-'",
            ));
        }
        if settings.issuer.is_some() {
            self.resolve_acme_issuer(principal.tenant, settings).await?;
        }
        self.insert_acme_provisioner(principal.tenant, &principal.audit_actor(), name, settings)
            .await
    }

    /// Replaces the settings of the principal's tenant's provisioner `name` (`ca:admin`).
    pub(crate) async fn update_acme_provisioner(
        &self,
        principal: &Principal,
        name: &str,
        settings: &AcmeSettings,
    ) -> Result<AcmeProvisioner, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        settings.validate()?;
        if settings.issuer.is_some() {
            self.resolve_acme_issuer(principal.tenant, settings).await?;
        }
        let event = self.event(
            principal.tenant,
            &principal.audit_actor(),
            "acme.provisioner.update",
            format!("acme-provisioner:{name}"),
            "success",
            settings,
        );
        let rec = self
            .store
            .update_acme_provisioner(
                principal.tenant,
                name,
                &serde_json::to_string(settings).map_err(AuthorityError::internal)?,
                self.now_s(),
                &event,
            )
            .await
            .map_err(|e| match e {
                trustbox_store::StoreError::NotFound => {
                    AuthorityError::not_found("ACME provisioner")
                }
                e => e.into(),
            })?;
        self.forget_acme_provisioner(name);
        rec.try_into()
    }

    /// The principal's tenant's provisioners (`ca:admin`).
    pub(crate) async fn list_acme_provisioners(
        &self,
        principal: &Principal,
    ) -> Result<Vec<AcmeProvisioner>, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        self.store
            .list_acme_provisioners(principal.tenant)
            .await?
            .into_iter()
            .map(AcmeProvisioner::try_from)
            .collect()
    }

    /// The principal's tenant's provisioner `name` (`ca:admin`); another tenant's is
    /// `NotFound`, as one that does not exist.
    pub(crate) async fn acme_provisioner_view(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<AcmeProvisioner, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        match self.store.acme_provisioner_by_name(name).await? {
            Some(r) if r.tenant == principal.tenant => r.try_into(),
            _ => Err(AuthorityError::not_found("ACME provisioner")),
        }
    }

    async fn resolve_acme_issuer(
        &self,
        tenant: TenantId,
        settings: &AcmeSettings,
    ) -> Result<trustbox_types::IssuerId, AuthorityError> {
        match &settings.issuer {
            Some(reference) => {
                let issuers = self.store.list_issuers(tenant).await?;
                issuers
                    .iter()
                    .find(|i| i.id.to_string() == *reference || i.name == *reference)
                    .map(|i| i.id)
                    .ok_or_else(|| crate::issue::unknown_issuer(reference))
            }
            None => Err(AuthorityError::internal("no issuer named")),
        }
    }

    /// The secret EAB keys are derived from (set once at startup from the KEK).
    pub(crate) fn set_acme_eab_secret(&self, secret: [u8; 32]) {
        let _ = self.acme_eab_secret.set(zeroize::Zeroizing::new(secret));
    }

    /// The HMAC key of EAB key `kid` of `tenant`: derived, never stored.
    fn eab_hmac_key(&self, tenant: TenantId, kid: &str) -> Result<Vec<u8>, AuthorityError> {
        let secret = self
            .acme_eab_secret
            .get()
            .ok_or_else(|| AuthorityError::internal("the EAB secret is not set"))?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_slice());
        let tag = ring::hmac::sign(&key, format!("trustbox-acme-eab:{tenant}:{kid}").as_bytes());
        Ok(tag.as_ref().to_vec())
    }

    fn eab_key_check(key: &[u8]) -> String {
        hex::encode(&ring::digest::digest(&ring::digest::SHA256, key).as_ref()[..8])
    }

    /// Creates an EAB key for the principal's tenant's provisioner (`ca:admin`); returns it
    /// with its HMAC key, shown this once.
    pub(crate) async fn create_acme_eab_key(
        &self,
        principal: &Principal,
        provisioner: &str,
        label: &str,
    ) -> Result<(AcmeEabKey, Vec<u8>), AuthorityError> {
        let p = self.acme_provisioner_view(principal, provisioner).await?;
        if label.chars().count() > 128 || label.chars().any(char::is_control) {
            return Err(AuthorityError::invalid(
                "invalid-label",
                "a label is at most 128 characters, without control characters",
            ));
        }
        let kid = format!("eab-{}", new_id());
        let hmac = self.eab_hmac_key(p.tenant, &kid)?;
        let rec = AcmeEabKeyRecord {
            tenant: p.tenant,
            id: kid.clone(),
            provisioner: p.name.clone(),
            label: label.to_owned(),
            key_check: Self::eab_key_check(&hmac),
            status: "active".into(),
            account_id: None,
            created_at: self.now_s(),
            used_at: None,
        };
        let event = self.event(
            p.tenant,
            &principal.audit_actor(),
            "acme.eab.create",
            format!("acme-eab:{kid}"),
            "success",
            serde_json::json!({ "provisioner": p.name, "label": label }),
        );
        self.store.insert_acme_eab_key(&rec, &event).await?;
        Ok((rec.into(), hmac))
    }

    /// The EAB keys of the principal's tenant's provisioner (`ca:admin`).
    pub(crate) async fn list_acme_eab_keys(
        &self,
        principal: &Principal,
        provisioner: &str,
    ) -> Result<Vec<AcmeEabKey>, AuthorityError> {
        let p = self.acme_provisioner_view(principal, provisioner).await?;
        Ok(self
            .store
            .list_acme_eab_keys(p.tenant, &p.name)
            .await?
            .into_iter()
            .map(AcmeEabKey::from)
            .collect())
    }

    /// Revokes an EAB key of the principal's tenant's provisioner (`ca:admin`).
    pub(crate) async fn revoke_acme_eab_key(
        &self,
        principal: &Principal,
        provisioner: &str,
        kid: &str,
    ) -> Result<AcmeEabKey, AuthorityError> {
        let p = self.acme_provisioner_view(principal, provisioner).await?;
        match self.store.acme_eab_key(p.tenant, kid).await? {
            Some(k) if k.provisioner == p.name => {}
            _ => return Err(AuthorityError::not_found("EAB key")),
        }
        let event = self.event(
            p.tenant,
            &principal.audit_actor(),
            "acme.eab.revoke",
            format!("acme-eab:{kid}"),
            "success",
            serde_json::json!({ "provisioner": p.name }),
        );
        Ok(self
            .store
            .revoke_acme_eab_key(p.tenant, kid, &event)
            .await?
            .into())
    }

    /// Checks an external account binding: `mac` must be HMAC-SHA256 over `signing_input`
    /// under the active EAB key `kid` of the provisioner.
    pub(crate) async fn verify_acme_eab(
        &self,
        p: &AcmeProvisioner,
        kid: &str,
        signing_input: &[u8],
        mac: &[u8],
    ) -> Result<(), AuthorityError> {
        let unauthorized =
            |d: &str| acme_error(ErrorKind::Unauthenticated, "bad-eab", d.to_owned());
        let key = match self.store.acme_eab_key(p.tenant, kid).await? {
            Some(k) if k.provisioner == p.name => k,
            _ => return Err(unauthorized("no such external account key")),
        };
        if key.status != "active" {
            return Err(unauthorized("the external account key was used or revoked"));
        }
        let hmac = self.eab_hmac_key(p.tenant, kid)?;
        if Self::eab_key_check(&hmac) != key.key_check {
            return Err(AuthorityError::internal(
                "the EAB key does not match its check value",
            ));
        }
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hmac);
        ring::hmac::verify(&k, signing_input, mac)
            .map_err(|_| unauthorized("the external account binding's MAC does not verify"))
    }

    /// Records a nonce as used; `false` when it was used before (group-committed with the
    /// nonces of concurrent requests).
    pub(crate) async fn consume_acme_nonce(
        &self,
        p: &AcmeProvisioner,
        id: &str,
        expires_at: i64,
    ) -> Result<bool, AuthorityError> {
        self.acme_writes.consume(p.tenant, id, expires_at).await
    }

    /// The provisioner's account whose key has `thumbprint`.
    pub(crate) async fn acme_account_by_key(
        &self,
        p: &AcmeProvisioner,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccount>, AuthorityError> {
        self.store
            .acme_account_by_thumbprint(p.tenant, &p.name, thumbprint)
            .await?
            .map(AcmeAccount::try_from)
            .transpose()
    }

    /// The provisioner's account `id`.
    pub(crate) async fn acme_account(
        &self,
        p: &AcmeProvisioner,
        id: &str,
    ) -> Result<Option<AcmeAccount>, AuthorityError> {
        self.store
            .acme_account(p.tenant, id)
            .await?
            .filter(|a| a.provisioner == p.name)
            .map(AcmeAccount::try_from)
            .transpose()
    }

    /// Changes an account's contact or deactivates it (RFC 8555 §7.3.2, §7.3.6); audited as
    /// the account. A deactivated account stays so.
    pub(crate) async fn update_acme_account(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        contact: Option<&[String]>,
        deactivate: bool,
    ) -> Result<AcmeAccount, AuthorityError> {
        let status = if deactivate {
            "deactivated"
        } else {
            account.status.as_str()
        };
        let contact = contact.unwrap_or(&account.contact);
        let action = if deactivate {
            "acme.account.deactivate"
        } else {
            "acme.account.update"
        };
        let event = self.event(
            p.tenant,
            &format!("acme-account:{}", account.id),
            action,
            format!("acme-account:{}", account.id),
            "success",
            serde_json::json!({ "status": status, "contact": contact }),
        );
        let rec = self
            .store
            .update_acme_account(
                p.tenant,
                &account.id,
                status,
                &serde_json::to_string(contact).map_err(AuthorityError::internal)?,
                &event,
            )
            .await?;
        AcmeAccount::try_from(rec)
    }

    /// Registers an account for the key `jwk` (canonical JSON) with `thumbprint`; audited
    /// as the new account. An account already holding the key is returned instead
    /// (`false`: not created).
    pub(crate) async fn create_acme_account(
        &self,
        p: &AcmeProvisioner,
        thumbprint: &str,
        jwk: &str,
        contact: &[String],
        eab_kid: Option<&str>,
    ) -> Result<(AcmeAccount, bool), AuthorityError> {
        let id = new_id();
        let rec = AcmeAccountRecord {
            tenant: p.tenant,
            id: id.clone(),
            provisioner: p.name.clone(),
            thumbprint: thumbprint.to_owned(),
            jwk: jwk.to_owned(),
            status: "valid".into(),
            contact: serde_json::to_string(contact).map_err(AuthorityError::internal)?,
            created_at: self.now_s(),
            eab_kid: eab_kid.map(str::to_owned),
        };
        let event = self.event(
            p.tenant,
            &format!("acme-account:{id}"),
            "acme.account.create",
            format!("acme-account:{id}"),
            "success",
            serde_json::json!({ "provisioner": p.name, "thumbprint": thumbprint, "contact": contact, "eab_kid": eab_kid }),
        );
        let written = self
            .acme_writes
            .apply(
                p.tenant,
                AcmeOp::Account(Box::new(rec.clone()), Box::new(event)),
            )
            .await;
        match written.map(drop) {
            Ok(()) => Ok((AcmeAccount::try_from(rec)?, true)),
            Err(e) if e.kind == ErrorKind::Conflict && eab_kid.is_some() => {
                match self.acme_account_by_key(p, thumbprint).await? {
                    Some(a) => Ok((a, false)),
                    None => Err(acme_error(
                        ErrorKind::Unauthenticated,
                        "bad-eab",
                        "the external account key was used or revoked",
                    )),
                }
            }
            // the same key registered concurrently: that account answers
            Err(e) if e.kind == ErrorKind::Conflict => self
                .acme_account_by_key(p, thumbprint)
                .await?
                .map(|a| (a, false))
                .ok_or_else(|| {
                    AuthorityError::new(
                        ErrorKind::Conflict,
                        "conflict",
                        "the account key is in use",
                    )
                }),
            Err(e) => Err(e),
        }
    }

    /// Replaces an account's key (RFC 8555 §7.3.5); audited. Another account of the
    /// provisioner holding the new key is `Conflict` (the adapter answers with its URL).
    pub(crate) async fn change_acme_account_key(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        thumbprint: &str,
        jwk: &str,
    ) -> Result<AcmeAccount, AuthorityError> {
        if self.acme_account_by_key(p, thumbprint).await?.is_some() {
            return Err(acme_error(
                ErrorKind::Conflict,
                "acme-key-in-use",
                "another account holds the new key",
            ));
        }
        let event = self.event(
            p.tenant,
            &format!("acme-account:{}", account.id),
            "acme.account.key-change",
            format!("acme-account:{}", account.id),
            "success",
            serde_json::json!({ "old_thumbprint": account.thumbprint, "new_thumbprint": thumbprint }),
        );
        match self
            .store
            .update_acme_account_key(p.tenant, &account.id, thumbprint, jwk, &event)
            .await
        {
            Ok(rec) => AcmeAccount::try_from(rec),
            Err(trustbox_store::StoreError::Conflict(_)) => Err(acme_error(
                ErrorKind::Conflict,
                "acme-key-in-use",
                "another account holds the new key",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Places an order for `account`: one authorization per identifier with one challenge
    /// per offered type, in one commit; refused with `rate-limited` over the provisioner's
    /// limits.
    pub(crate) async fn create_acme_order(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        order: &NewAcmeOrder,
    ) -> Result<AcmeOrder, AuthorityError> {
        let now = self.now_s();
        let s = &p.settings;
        if order.identifiers.is_empty() || order.identifiers.len() > MAX_ORDER_IDENTIFIERS {
            return Err(AuthorityError::invalid(
                "bad-order",
                format!("an order names 1 to {MAX_ORDER_IDENTIFIERS} identifiers"),
            ));
        }
        let profile = order
            .profile
            .clone()
            .unwrap_or_else(|| s.default_profile.clone());
        let Some(acme_profile) = s.profiles.get(&profile) else {
            return Err(AuthorityError::invalid(
                "unknown-acme-profile",
                format!("this server offers no profile {profile:?}"),
            ));
        };
        if let (Some(nb), Some(na)) = (order.not_before, order.not_after) {
            if na <= nb {
                return Err(AuthorityError::invalid(
                    "bad-order",
                    "notAfter is not after notBefore",
                ));
            }
        }
        if let Some(na) = order.not_after {
            let start = order.not_before.unwrap_or(now);
            if na <= now || na - start > i64::from(acme_profile.validity_days) * 86400 {
                return Err(AuthorityError::invalid(
                    "bad-order",
                    format!(
                        "notAfter must be in the future and within {} days of the start",
                        acme_profile.validity_days
                    ),
                ));
            }
        }
        if let Some(nb) = order.not_before {
            if nb < now - 300 || nb > now + 7 * 86400 {
                return Err(AuthorityError::invalid(
                    "bad-order",
                    "notBefore must be within the coming week",
                ));
            }
        }
        if let Some((replaced, _)) = &order.replaces {
            let id: CertificateId = replaced.parse().map_err(|_| {
                AuthorityError::invalid(
                    "bad-replaces",
                    "replaces names no certificate of this server",
                )
            })?;
            let old = self.store.certificate(p.tenant, id).await?.ok_or_else(|| {
                AuthorityError::invalid(
                    "bad-replaces",
                    "replaces names no certificate of this server",
                )
            })?;
            let enrolled_here = old
                .enrollment
                .as_deref()
                .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok());
            let by_account = enrolled_here
                .as_ref()
                .and_then(|e| e.get("account"))
                .and_then(|a| a.as_str());
            if by_account != Some(account.id.as_str()) {
                return Err(AuthorityError::invalid(
                    "bad-replaces",
                    "replaces names a certificate this account did not order",
                ));
            }
        }
        let since = now - RATE_WINDOW_S;
        let limited = |what: &str, limit: u32| {
            acme_error(
                ErrorKind::Unavailable,
                "rate-limited",
                format!("{what}: at most {limit} per hour; retry later"),
            )
        };
        if self
            .store
            .count_acme_orders_since(p.tenant, &p.name, Some(&account.id), since)
            .await?
            >= u64::from(s.orders_per_account_per_hour)
        {
            return Err(limited(
                "new orders of this account",
                s.orders_per_account_per_hour,
            ));
        }
        if self
            .store
            .count_acme_orders_since(p.tenant, &p.name, None, since)
            .await?
            >= u64::from(s.orders_per_hour)
        {
            return Err(limited("new orders of this provisioner", s.orders_per_hour));
        }
        if self
            .store
            .count_acme_failed_validations_since(p.tenant, &account.id, since)
            .await?
            >= u64::from(s.failed_validations_per_account_per_hour)
        {
            return Err(limited(
                "failed validations of this account",
                s.failed_validations_per_account_per_hour,
            ));
        }
        let order_id = new_id();
        let expires_at = now + ORDER_LIFETIME_S;
        let mut authzs = Vec::with_capacity(order.identifiers.len());
        let mut challenges = Vec::new();
        for (i, (ident, kinds)) in order.identifiers.iter().enumerate() {
            let (value, wildcard) = match ident.value.strip_prefix("*.") {
                Some(bare) => (bare.to_owned(), true),
                None => (ident.value.clone(), false),
            };
            // ids sort in identifier order within the order
            let authz_id = authorization_id(&order_id, i);
            for kind in kinds.iter().filter(|k| s.challenges.contains(k)) {
                challenges.push(AcmeChallengeRecord {
                    tenant: p.tenant,
                    id: format!("{}{}", authz_id, &kind[..1]),
                    authz_id: authz_id.clone(),
                    kind: kind.clone(),
                    token: random_token()?,
                    status: "pending".into(),
                    validated_at: None,
                    error: None,
                    updated_at: now,
                });
            }
            if !challenges.iter().any(|c| c.authz_id == authz_id) {
                return Err(AuthorityError::invalid(
                    "no-challenge",
                    format!("no challenge this server offers can prove {}", ident.value),
                ));
            }
            authzs.push(AcmeAuthorizationRecord {
                tenant: p.tenant,
                id: authz_id,
                order_id: order_id.clone(),
                identifier_type: ident.kind.clone(),
                identifier_value: value,
                wildcard,
                status: "pending".into(),
                expires_at,
            });
        }
        let rec = AcmeOrderRecord {
            tenant: p.tenant,
            id: order_id,
            provisioner: p.name.clone(),
            account_id: account.id.clone(),
            status: "pending".into(),
            expires_at,
            identifiers: serde_json::to_string(
                &order.identifiers.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            )
            .map_err(AuthorityError::internal)?,
            profile: Some(profile),
            not_before: order.not_before,
            not_after: order.not_after,
            replaces: order.replaces.as_ref().map(|r| r.0.clone()),
            replaces_ari: order.replaces.as_ref().map(|r| r.1.clone()),
            error: None,
            certificate_id: None,
            created_at: now,
            updated_at: now,
        };
        self.acme_writes
            .apply(
                p.tenant,
                AcmeOp::Order(Box::new(rec.clone()), authzs.clone(), challenges),
            )
            .await?;
        order_view(
            rec,
            authzs.into_iter().map(|a| a.id).collect(),
            &s.default_profile,
            now,
        )
    }

    /// The account's order `id` (another account's is `NotFound`).
    pub(crate) async fn acme_order(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        id: &str,
    ) -> Result<AcmeOrder, AuthorityError> {
        let rec = self
            .store
            .acme_order(p.tenant, id)
            .await?
            .filter(|o| o.account_id == account.id && o.provisioner == p.name)
            .ok_or_else(|| AuthorityError::not_found("order"))?;
        let authzs = authorization_ids(&rec)?;
        order_view(rec, authzs, &p.settings.default_profile, self.now_s())
    }

    /// A page of the account's order ids, newest first.
    pub(crate) async fn acme_account_orders(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        page: u32,
        per_page: u32,
    ) -> Result<Vec<String>, AuthorityError> {
        Ok(self
            .store
            .acme_account_orders(
                p.tenant,
                &account.id,
                page.saturating_mul(per_page),
                per_page,
            )
            .await?)
    }

    /// The authorization `id` of one of the account's orders, with the order.
    async fn owned_authorization(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        id: &str,
    ) -> Result<(AcmeAuthorizationRecord, AcmeOrderRecord), AuthorityError> {
        let authz = self
            .store
            .acme_authorization(p.tenant, id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("authorization"))?;
        let order = self
            .store
            .acme_order(p.tenant, &authz.order_id)
            .await?
            .filter(|o| o.account_id == account.id && o.provisioner == p.name)
            .ok_or_else(|| AuthorityError::not_found("authorization"))?;
        Ok((authz, order))
    }

    /// The account's authorization `id` with its challenges.
    pub(crate) async fn acme_authorization(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        id: &str,
    ) -> Result<AcmeAuthorization, AuthorityError> {
        let (authz, _) = self.owned_authorization(p, account, id).await?;
        let challenges = self
            .store
            .acme_authorization_challenges(p.tenant, id)
            .await?;
        authz_view(authz, challenges, self.now_s())
    }

    /// Deactivates the account's authorization `id` (RFC 8555 §7.5.2): a pending or valid
    /// one becomes `deactivated`, and its order, if not yet issued, `invalid`.
    pub(crate) async fn deactivate_acme_authorization(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        id: &str,
    ) -> Result<AcmeAuthorization, AuthorityError> {
        let (authz, order) = self.owned_authorization(p, account, id).await?;
        let mut changes = vec![AcmeStateChange::new(
            AcmeObject::Authorization,
            id,
            &["pending", "valid"],
            "deactivated",
        )];
        if matches!(order.status.as_str(), "pending" | "ready") {
            changes.push(AcmeStateChange::new(
                AcmeObject::Order,
                &order.id,
                &["pending", "ready"],
                "invalid",
            ));
        }
        if !self
            .acme_writes
            .changes(p.tenant, AcmeOp::Changes(changes))
            .await?
            && authz.status != "deactivated"
        {
            return Err(AuthorityError::invalid(
                "bad-authorization-state",
                format!(
                    "an authorization that is {} cannot be deactivated",
                    authz.status
                ),
            ));
        }
        self.acme_authorization(p, account, id).await
    }

    /// Starts validating the account's challenge `id` (RFC 8555 §7.5.1): a pending challenge
    /// of a pending authorization becomes `processing` and an [`ACME_VALIDATE`] job is
    /// enqueued; a challenge in any other state is answered as it is.
    pub(crate) async fn respond_acme_challenge(
        self: &Arc<Self>,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        id: &str,
    ) -> Result<AcmeChallenge, AuthorityError> {
        let ch = self
            .store
            .acme_challenge(p.tenant, id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("challenge"))?;
        let (authz, _) = self.owned_authorization(p, account, &ch.authz_id).await?;
        let now = self.now_s();
        if ch.status != "pending" || authz.status != "pending" || now >= authz.expires_at {
            return challenge_view(ch);
        }
        // the challenge turns processing and its validation job is enqueued in one commit
        let change = AcmeStateChange::new(AcmeObject::Challenge, id, &["pending"], "processing");
        let job = trustbox_store::NewJob {
            tenant: p.tenant,
            id: trustbox_types::JobId::generate(),
            kind: ACME_VALIDATE.to_owned(),
            key: id.to_owned(),
            payload: serde_json::json!({ "provisioner": p.name, "challenge": id }).to_string(),
            max_attempts: 3,
            run_at: now,
            created_at: now,
        };
        // stored claimed by this replica's runner, which starts it as soon as it commits
        let lease = self.job_lease(now);
        if !self
            .acme_writes
            .changes(
                p.tenant,
                AcmeOp::ChangesThenJob(vec![change], job.clone(), Some(lease.clone())),
            )
            .await?
        {
            // a concurrent response moved it first: answer it as it is now
            let ch = self
                .store
                .acme_challenge(p.tenant, id)
                .await?
                .ok_or_else(|| AuthorityError::not_found("challenge"))?;
            return challenge_view(ch);
        }
        // a validation that is over quickly is answered in this response (as step-ca does),
        // so the client needs no poll; a slower one is answered processing
        let attempted = self.start_leased(&job, &lease);
        if tokio::time::timeout(ANSWER_VALIDATION_WITHIN, attempted)
            .await
            .is_ok()
        {
            if let Some(now) = self.store.acme_challenge(p.tenant, id).await? {
                return challenge_view(now);
            }
        }
        let mut ch = ch;
        ch.status = "processing".into();
        challenge_view(ch)
    }

    /// What validating challenge `id` of `tenant` needs; `None` once it is no longer
    /// processing (validated, or its authorization moved on).
    pub(crate) async fn acme_validation_target(
        &self,
        tenant: TenantId,
        provisioner: &str,
        id: &str,
    ) -> Result<Option<AcmeValidationTarget>, AuthorityError> {
        let p = self.acme_provisioner(provisioner).await?;
        if p.tenant != tenant {
            return Err(AuthorityError::not_found("ACME provisioner"));
        }
        let Some(ch) = self.store.acme_challenge(tenant, id).await? else {
            return Ok(None);
        };
        if ch.status != "processing" {
            return Ok(None);
        }
        // ids nest: challenge = authorization + type letter, authorization = order + index
        let order_id = ch
            .authz_id
            .get(..ch.authz_id.len().saturating_sub(3))
            .unwrap_or_default()
            .to_owned();
        let index: usize = ch
            .authz_id
            .get(order_id.len()..)
            .and_then(|i| i.parse().ok())
            .unwrap_or(usize::MAX);
        let order = self
            .store
            .acme_order(tenant, &order_id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("order"))?;
        let identifiers: Vec<AcmeIdentifier> =
            serde_json::from_str(&order.identifiers).map_err(AuthorityError::internal)?;
        let ident = identifiers
            .get(index)
            .cloned()
            .ok_or_else(|| AuthorityError::internal("a challenge of no identifier of its order"))?;
        let (value, wildcard) = match ident.value.strip_prefix("*.") {
            Some(bare) => (bare.to_owned(), true),
            None => (ident.value.clone(), false),
        };
        let account = self
            .store
            .acme_account(tenant, &order.account_id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("account"))?;
        Ok(Some(AcmeValidationTarget {
            challenge: challenge_view(ch)?,
            identifier: AcmeIdentifier {
                kind: ident.kind,
                value,
            },
            wildcard,
            thumbprint: account.thumbprint,
            settings: p.settings,
            order_id,
            authorizations: identifiers.len(),
        }))
    }

    /// Records the outcome of validating challenge `id` (`Err`: the problem document):
    /// the challenge and its authorization become valid or invalid; the order becomes
    /// `ready` once every authorization is valid, `invalid` as soon as one is not.
    pub(crate) async fn record_acme_validation(
        &self,
        tenant: TenantId,
        target: &AcmeValidationTarget,
        outcome: Result<(), serde_json::Value>,
    ) -> Result<(), AuthorityError> {
        let now = self.now_s();
        let id = target.challenge.id.as_str();
        let authz_id = target.challenge.authz_id.as_str();
        let order_id = target.order_id.as_str();
        match outcome {
            Ok(()) => {
                let mut c =
                    AcmeStateChange::new(AcmeObject::Challenge, id, &["processing"], "valid");
                c.validated_at = Some(now);
                let a = AcmeStateChange::new(
                    AcmeObject::Authorization,
                    authz_id,
                    &["pending"],
                    "valid",
                );
                let o = AcmeStateChange::new(AcmeObject::Order, order_id, &["pending"], "ready");
                // one identifier: the order is ready in the same transaction
                if target.authorizations == 1
                    && self
                        .acme_writes
                        .changes(
                            tenant,
                            AcmeOp::Changes([c.clone(), a.clone(), o.clone()].to_vec()),
                        )
                        .await?
                {
                    return Ok(());
                }
                if !self
                    .acme_writes
                    .changes(tenant, AcmeOp::Changes([c.clone(), a].to_vec()))
                    .await?
                {
                    // the authorization moved on (another challenge, deactivation, expiry):
                    // the challenge still records its own result
                    let _ = self
                        .acme_writes
                        .changes(tenant, AcmeOp::Changes([c].to_vec()))
                        .await?;
                    return Ok(());
                }
                let all = self
                    .store
                    .acme_order_authorizations(tenant, order_id)
                    .await?;
                if all.iter().all(|a| a.status == "valid") {
                    let _ = self
                        .acme_writes
                        .changes(tenant, AcmeOp::Changes([o].to_vec()))
                        .await?;
                }
            }
            Err(problem) => {
                let problem = problem.to_string();
                let mut c =
                    AcmeStateChange::new(AcmeObject::Challenge, id, &["processing"], "invalid");
                c.error = Some(problem.clone());
                let a = AcmeStateChange::new(
                    AcmeObject::Authorization,
                    authz_id,
                    &["pending"],
                    "invalid",
                );
                let mut o = AcmeStateChange::new(
                    AcmeObject::Order,
                    order_id,
                    &["pending", "ready"],
                    "invalid",
                );
                o.error = Some(problem);
                if !self
                    .acme_writes
                    .changes(tenant, AcmeOp::Changes([c.clone(), a, o].to_vec()))
                    .await?
                {
                    let _ = self
                        .acme_writes
                        .changes(tenant, AcmeOp::Changes([c].to_vec()))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Finalizes the account's ready order with `csr` (DER): the order becomes
    /// `processing`, the certificate is issued through the seam as the account, for exactly
    /// the identifiers its authorizations proved, with the order's profile, lifetime and
    /// `replaces`, and the order becomes `valid`. A CSR the seam refuses leaves the order
    /// `ready` (nothing changed); an order that is not ready is `order-not-ready`.
    pub(crate) async fn finalize_acme_order(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        id: &str,
        csr: Vec<u8>,
    ) -> Result<AcmeOrder, AuthorityError> {
        let order = self.acme_order(p, account, id).await?;
        if order.status != "ready" {
            return Err(acme_error(
                ErrorKind::Forbidden,
                "order-not-ready",
                format!("the order is {}, not ready", order.status),
            ));
        }
        let to_processing = AcmeStateChange::new(AcmeObject::Order, id, &["ready"], "processing");
        if !self
            .acme_writes
            .changes(p.tenant, AcmeOp::Changes([to_processing].to_vec()))
            .await?
        {
            return Err(acme_error(
                ErrorKind::Forbidden,
                "order-not-ready",
                "the order is being finalized",
            ));
        }
        let result = self.issue_for_order(p, account, &order, csr).await;
        match result {
            Ok(cert) => {
                let mut done =
                    AcmeStateChange::new(AcmeObject::Order, id, &["processing"], "valid");
                done.certificate_id = Some(cert.to_string());
                self.acme_writes
                    .changes(p.tenant, AcmeOp::Changes(vec![done]))
                    .await?;
            }
            Err(e) => {
                // a refused request changes nothing; a failure of ours ends the order
                let (to, error) = match e.kind {
                    ErrorKind::Invalid
                    | ErrorKind::Forbidden
                    | ErrorKind::NotFound
                    | ErrorKind::Unavailable => ("ready", None),
                    _ => (
                        "invalid",
                        Some(
                            serde_json::json!({
                                "type": "urn:ietf:params:acme:error:serverInternal",
                                "detail": "the certificate could not be issued",
                            })
                            .to_string(),
                        ),
                    ),
                };
                let mut back = AcmeStateChange::new(AcmeObject::Order, id, &["processing"], to);
                back.error = error;
                self.acme_writes
                    .changes(p.tenant, AcmeOp::Changes(vec![back]))
                    .await?;
                return Err(e);
            }
        }
        self.acme_order(p, account, id).await
    }

    async fn issue_for_order(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        order: &AcmeOrder,
        csr: Vec<u8>,
    ) -> Result<CertificateId, AuthorityError> {
        let acme_profile = p.settings.profiles.get(&order.profile).ok_or_else(|| {
            AuthorityError::invalid(
                "unknown-acme-profile",
                "the order's profile is no longer offered",
            )
        })?;
        // The order is ready only once every authorization is valid, and deactivating one
        // invalidates a ready order, so they need not be read again.
        let proved: Vec<String> = order.identifiers.iter().map(AcmeIdentifier::san).collect();
        let mut identifiers = Vec::with_capacity(order.identifiers.len());
        for i in &order.identifiers {
            let san = match i.kind.as_str() {
                "dns" => {
                    trustbox_x509::DnsName::parse(&i.value).map(trustbox_x509::SubjectAltName::Dns)
                }
                _ => i
                    .value
                    .parse()
                    .map(trustbox_x509::SubjectAltName::Ip)
                    .map_err(|_| trustbox_x509::X509Error::BadSan(i.value.clone())),
            }
            .map_err(|e| AuthorityError::internal(format!("stored identifier: {e}")))?;
            identifiers.push(san);
        }
        let validity = match order.not_after {
            Some(na) => na - order.not_before.unwrap_or(self.now_s()).max(self.now_s()),
            None => i64::from(acme_profile.validity_days) * 86400,
        };
        let principal = Principal {
            tenant: p.tenant,
            actor: Actor::AcmeAccount {
                id: account.id.clone(),
            },
            grants: Grants {
                scopes: ScopeSet::new([Scope::CertsIssue]),
                proved_identifiers: Some(proved),
            },
        };
        let req = IssuanceRequest {
            principal,
            subject_key: SubjectKey::Pkcs10(csr),
            identifiers,
            profile: Some(acme_profile.profile.clone()),
            issuer: p.settings.issuer.clone(),
            purpose: Some(format!(
                "ACME order {} ({} profile)",
                order.id, order.profile
            )),
            validity: Some(std::time::Duration::from_secs(
                u64::try_from(validity.max(60)).unwrap_or(60),
            )),
            source: SourceProtocol::Acme,
            replaces: order
                .replaces_certificate
                .as_deref()
                .and_then(|r| r.parse().ok()),
            enrollment: Enrollment {
                label: Some(p.name.clone()),
                account: Some(account.id.clone()),
                order: Some(order.id.clone()),
                transaction: None,
            },
            idempotency_key: Some(format!("acme-order:{}", order.id)),
        };
        let issued = self.issue(req).await?.into_issued()?;
        Ok(issued.certificate.id)
    }

    /// The certificate of one of the account's orders, with its chain, PEM.
    pub(crate) async fn acme_certificate(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        id: &str,
    ) -> Result<AcmeCertificate, AuthorityError> {
        let cert_id: CertificateId = id
            .parse()
            .map_err(|_| AuthorityError::not_found("certificate"))?;
        let rec = self
            .store
            .certificate(p.tenant, cert_id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("certificate"))?;
        let enrolled: Option<serde_json::Value> = rec
            .enrollment
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok());
        let owner = enrolled
            .as_ref()
            .and_then(|e| e.get("account"))
            .and_then(|a| a.as_str());
        let label = enrolled
            .as_ref()
            .and_then(|e| e.get("label"))
            .and_then(|a| a.as_str());
        if owner != Some(account.id.as_str()) || label != Some(p.name.as_str()) {
            return Err(AuthorityError::not_found("certificate"));
        }
        let issuer = self.load_issuer(p.tenant, rec.issuer).await?;
        let mut chain_pem = trustbox_x509::pem::encode("CERTIFICATE", &rec.der);
        chain_pem.push_str(&issuer.chain_pem);
        Ok(AcmeCertificate { chain_pem })
    }

    /// Revokes `der` for the account (RFC 8555 §7.6): the account must be the one that
    /// ordered it. Audited as the account.
    pub(crate) async fn revoke_acme_certificate(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        der: &[u8],
        reason: RevocationReason,
    ) -> Result<(), AuthorityError> {
        let principal = Principal {
            tenant: p.tenant,
            actor: Actor::AcmeAccount {
                id: account.id.clone(),
            },
            grants: Grants::scopes(ScopeSet::new([])),
        };
        self.revoke_by(
            &principal,
            &crate::CertificateRef::Certificate(der.to_vec()),
            &crate::RevocationProof::EnrolledBy {
                label: p.name.clone(),
                account: account.id.clone(),
            },
            reason,
            None,
        )
        .await
        .map(|_| ())
    }

    /// Revokes `der` on proof of possession of its key (RFC 8555 §7.6, a request signed by
    /// the certificate's key): `signature` over `message`, as custody signs.
    pub(crate) async fn revoke_acme_certificate_by_key(
        &self,
        p: &AcmeProvisioner,
        der: &[u8],
        message: Vec<u8>,
        signature: Vec<u8>,
        reason: RevocationReason,
    ) -> Result<(), AuthorityError> {
        let principal = Principal {
            tenant: p.tenant,
            actor: Actor::EnrollmentClient {
                protocol: "acme".into(),
                label: p.name.clone(),
                credential: "certificate-key".into(),
            },
            grants: Grants::scopes(ScopeSet::new([])),
        };
        self.revoke_by(
            &principal,
            &crate::CertificateRef::Certificate(der.to_vec()),
            &crate::RevocationProof::KeyPossession { message, signature },
            reason,
            None,
        )
        .await
        .map(|_| ())
    }

    /// The account's challenge `id`.
    pub(crate) async fn acme_challenge(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        id: &str,
    ) -> Result<AcmeChallenge, AuthorityError> {
        let ch = self
            .store
            .acme_challenge(p.tenant, id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("challenge"))?;
        self.owned_authorization(p, account, &ch.authz_id).await?;
        challenge_view(ch)
    }

    /// The tenant's certificate an ARI identifier names (`aki`: its issuer's key
    /// identifier, `serial`: its serial's octets); `None` if there is none.
    async fn certificate_by_ari(
        &self,
        tenant: TenantId,
        aki: &[u8],
        serial: &[u8],
    ) -> Result<Option<trustbox_store::CertificateRecord>, AuthorityError> {
        let Ok(serial) = trustbox_types::Serial::from_be_bytes(serial) else {
            return Ok(None);
        };
        for issuer in self.store.list_issuers(tenant).await? {
            let loaded = self.load_issuer(tenant, issuer.id).await?;
            if loaded.ca.key_id() != aki {
                continue;
            }
            if let Some(rec) = self
                .store
                .certificate_by_serial(tenant, issuer.id, &serial.to_hex())
                .await?
            {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    /// The certificate id an order's `replaces` (an ARI identifier) names: one this
    /// account ordered; `bad-replaces` otherwise.
    pub(crate) async fn acme_replaced_certificate(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        aki: &[u8],
        serial: &[u8],
    ) -> Result<String, AuthorityError> {
        let rec = self
            .certificate_by_ari(p.tenant, aki, serial)
            .await?
            .ok_or_else(|| {
                AuthorityError::invalid(
                    "bad-replaces",
                    "replaces names no certificate of this server",
                )
            })?;
        let enrolled: Option<serde_json::Value> = rec
            .enrollment
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok());
        if enrolled
            .as_ref()
            .and_then(|e| e.get("account"))
            .and_then(|a| a.as_str())
            != Some(account.id.as_str())
        {
            return Err(AuthorityError::invalid(
                "bad-replaces",
                "replaces names a certificate this account did not order",
            ));
        }
        if self
            .store
            .acme_order_replacing(p.tenant, &rec.id.to_string())
            .await?
            .is_some()
        {
            return Err(AuthorityError::new(
                ErrorKind::Conflict,
                "already-replaced",
                "the certificate was replaced already",
            ));
        }
        Ok(rec.id.to_string())
    }

    /// RFC 9773 renewal information of the tenant's certificate the ARI identifier names:
    /// its validity and whether renewal is urgent (it is revoked, or its issuer is revoked
    /// or expires before it). `NotFound` if there is none.
    pub(crate) async fn acme_renewal_info(
        &self,
        p: &AcmeProvisioner,
        aki: &[u8],
        serial: &[u8],
    ) -> Result<(i64, i64, bool), AuthorityError> {
        let rec = self
            .certificate_by_ari(p.tenant, aki, serial)
            .await?
            .ok_or_else(|| AuthorityError::not_found("certificate"))?;
        let issuer = self.load_issuer(p.tenant, rec.issuer).await?;
        let issuer_ends = issuer.ca.not_after().unix_timestamp();
        let urgent = rec.status == trustbox_types::CertificateStatus::Revoked
            || issuer.revoked
            || issuer_ends < rec.not_after;
        Ok((rec.not_before, rec.not_after, urgent))
    }
}

#[cfg(test)]
mod tests {
    use super::AcmeSettings;

    #[test]
    fn a_challenge_type_named_twice_is_refused_wherever_it_repeats() {
        assert!(AcmeSettings::default().validate().is_ok());
        for challenges in [
            vec!["http-01", "http-01"],
            vec!["http-01", "dns-01", "http-01"],
        ] {
            let s = AcmeSettings {
                challenges: challenges.iter().map(|c| (*c).to_owned()).collect(),
                ..AcmeSettings::default()
            };
            let e = s.validate().expect_err("duplicate challenge type");
            assert!(e.detail.contains("named twice"), "{}", e.detail);
        }
    }
}
