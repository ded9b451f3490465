//! The rows the store keeps. Times are Unix seconds unless named `_us` (microseconds).

use serde::{Deserialize, Serialize};
use trustbox_types::{
    CertificateId, CertificateStatus, IssuerId, KeyAlgorithm, ProfileId, RevocationReason,
    ScopeSet, TenantId, TokenId,
};

/// A tenant: the unit of isolation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Identifier.
    pub id: TenantId,
    /// Unique name (`default`).
    pub name: String,
    /// Creation time.
    pub created_at: i64,
}

/// An API token; the secret itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Identifier.
    pub id: TokenId,
    /// The tenant the token is bound to.
    pub tenant: TenantId,
    /// A label for humans and audit events.
    pub name: String,
    /// What the token may do.
    pub scopes: ScopeSet,
    /// Lowercase hex SHA-256 of the secret token.
    pub hash: String,
    /// Creation time.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it stops being accepted (Unix seconds), if it expires.
    pub expires_at: Option<i64>,
}

/// An issuer: a CA certificate with its key held in custody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerRecord {
    /// Identifier.
    pub id: IssuerId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Unique name within the tenant (`root`, `issuing-ca`).
    pub name: String,
    /// The issuer that signed this one; `None` for a root.
    pub parent: Option<IssuerId>,
    /// The CA certificate (DER).
    pub certificate_der: Vec<u8>,
    /// Subject commonName, for listings.
    pub common_name: String,
    /// Key backend (`sealed-v1`).
    pub key_backend: String,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// The backend's wrapped key (sealed blob or HSM label); useless without the KEK/HSM.
    pub key_wrapped: Vec<u8>,
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
    /// Creation time.
    pub created_at: i64,
    /// Number of CRL shards the issuer's certificates are spread over (fixed at creation).
    pub crl_shards: u32,
    /// Whether the issuer's OCSP responder answers and new certificates carry its URL.
    pub ocsp_enabled: bool,
}

/// One version of a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRecord {
    /// Identifier of this version.
    pub id: ProfileId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Profile name, unique per tenant together with `version`.
    pub name: String,
    /// Version, from 1.
    pub version: i64,
    /// The profile document (JSON).
    pub document: String,
    /// Creation time of this version.
    pub created_at: i64,
}

/// A certificate in the inventory; attributes are real columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Identifier.
    pub id: CertificateId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Issuer that signed it.
    pub issuer: IssuerId,
    /// Serial, lowercase hex.
    pub serial: String,
    /// SHA-256 fingerprint of the DER, lowercase hex.
    pub fingerprint: String,
    /// Subject commonName.
    pub common_name: Option<String>,
    /// SANs as `type:value` (`dns:www.example.com`).
    pub sans: Vec<String>,
    /// Subject key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
    /// valid / revoked.
    pub status: CertificateStatus,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Revocation reason.
    pub revocation_reason: Option<RevocationReason>,
    /// When the key was known or suspected to be compromised
    /// ([RFC 5280 §5.3.2](https://www.rfc-editor.org/rfc/rfc5280#section-5.3.2)).
    pub invalidity_date: Option<i64>,
    /// The issuer's CRL shard this certificate is listed in if revoked (bound at issuance).
    pub crl_shard: u32,
    /// Profile name and version (`tls-server@1`).
    pub profile: String,
    /// Where the request came from (`api`).
    pub source: String,
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// When it was recorded.
    pub created_at: i64,
    /// How it was enrolled, JSON (`{"protocol": "acme", "account": ..., "order": ...}`).
    pub enrollment: Option<String>,
    /// The requester's idempotency key: unique within the tenant, so a retry never issues
    /// twice.
    pub idempotency_key: Option<String>,
    /// The certificate it replaces (ACME ARI).
    pub replaces: Option<CertificateId>,
}

/// A certificate and its issuance event, committed together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuanceRecord {
    /// The inventory row.
    pub certificate: CertificateRecord,
    /// Its audit event.
    pub event: NewAuditEvent,
}

/// Filters for listing certificates (keyset pagination on the id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateFilter {
    /// Only this status.
    pub status: Option<CertificateStatus>,
    /// Only certificates whose notAfter is before this time.
    pub expires_before: Option<i64>,
    /// Only certificates carrying this SAN value (any type; exact match, case-insensitive
    /// for DNS names).
    pub san: Option<String>,
    /// Only this issuer's certificates.
    pub issuer: Option<IssuerId>,
    /// Only ids after this one (the cursor).
    pub after: Option<CertificateId>,
    /// Page size.
    pub limit: u32,
}

/// An audit event before it is chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// Tenant whose chain receives it.
    pub tenant: TenantId,
    /// Time, in microseconds since the Unix epoch.
    pub at_us: i64,
    /// Who acted (`token:<id>:<name>`, `system`).
    pub actor: String,
    /// What was done (`certificate.issue`).
    pub action: String,
    /// On what (`certificate:<id>`).
    pub resource: String,
    /// `success` or `denied` / `failure`.
    pub outcome: String,
    /// Further details as compact JSON text.
    pub details: String,
}

/// A chained audit event as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    /// Tenant.
    pub tenant: TenantId,
    /// Time, microseconds since the Unix epoch.
    pub at_us: i64,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// On what.
    pub resource: String,
    /// The outcome.
    pub outcome: String,
    /// Details (compact JSON text, hashed exactly as stored).
    pub details: String,
    /// Hash of the previous event (or the genesis hash).
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// The state of one CRL shard (one partition of an issuer's CRL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlShardState {
    /// Owning tenant.
    pub tenant: TenantId,
    /// The issuer whose CRL this is.
    pub issuer: IssuerId,
    /// Shard number, from 0.
    pub shard: u32,
    /// Bumped by every revocation into the shard.
    pub revision: i64,
    /// The revision the published CRL reflects.
    pub published_revision: i64,
    /// The published CRL's number (0 before the first publication).
    pub crl_number: i64,
    /// thisUpdate of the published CRL.
    pub this_update: Option<i64>,
    /// nextUpdate of the published CRL.
    pub next_update: Option<i64>,
    /// When the published CRL is to be regenerated even without new revocations.
    pub refresh_at: Option<i64>,
}

/// A published CRL of one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlPublication {
    /// The shard revision it reflects.
    pub revision: i64,
    /// CRL number (must exceed the stored one).
    pub crl_number: i64,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
    /// When to regenerate it without new revocations.
    pub refresh_at: i64,
    /// The signed CRL (DER).
    pub der: Vec<u8>,
}

/// A live revoked certificate as a CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Revocation time.
    pub revoked_at: i64,
    /// Reason.
    pub reason: Option<RevocationReason>,
    /// Invalidity date.
    pub invalidity_date: Option<i64>,
}

/// A delegated OCSP responder certificate with its key in custody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspResponderRecord {
    /// Identifier.
    pub id: uuid::Uuid,
    /// Owning tenant.
    pub tenant: TenantId,
    /// The CA it answers for (and that signed its certificate).
    pub issuer: IssuerId,
    /// The responder certificate (DER).
    pub certificate_der: Vec<u8>,
    /// Key backend (`sealed-v1`).
    pub key_backend: String,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// The backend's wrapped key; useless without the KEK.
    pub key_wrapped: Vec<u8>,
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
    /// Creation time.
    pub created_at: i64,
}

/// Which table holds a sealed key (for re-sealing it in place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedKeyTable {
    /// `issuers.key_wrapped`.
    Issuers,
    /// `ocsp_responders.key_wrapped`.
    OcspResponders,
    /// `audit_keys.key_wrapped`.
    AuditKeys,
}

/// A tenant's audit-checkpoint key: its public half in the clear, its private half sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditKeyRecord {
    /// Identifier.
    pub id: uuid::Uuid,
    /// Owning tenant.
    pub tenant: TenantId,
    /// DER SubjectPublicKeyInfo of the key.
    pub public_key_der: Vec<u8>,
    /// Custody backend of the sealed key.
    pub key_backend: String,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// The sealed private key.
    pub key_wrapped: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
}

/// A signed statement that a tenant's chain had `hash` at `seq` at time `at_us`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The tenant whose chain it covers.
    pub tenant: TenantId,
    /// The sequence number of the event it covers.
    pub seq: i64,
    /// That event's hash.
    pub hash: String,
    /// When it was signed, microseconds.
    pub at_us: i64,
    /// The audit key that signed it.
    pub key_id: uuid::Uuid,
    /// The signature over [`AuditCheckpoint::message`].
    pub signature: Vec<u8>,
}

impl AuditCheckpoint {
    /// The bytes signed: a fixed label and the four fields, length-prefixed.
    pub fn message(tenant: TenantId, seq: i64, hash: &str, at_us: i64) -> Vec<u8> {
        let mut out = b"trustbox-audit-checkpoint-v1".to_vec();
        for field in [
            tenant.to_string(),
            seq.to_string(),
            hash.to_owned(),
            at_us.to_string(),
        ] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

/// One entry of the change feed: something every replica must stop serving from its caches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Position in the feed; numbers grow in commit order.
    pub seq: i64,
    /// The tenant it happened in.
    pub tenant: TenantId,
    /// What changed: `certificate` (revoked), `token` (revoked) or `issuer` (updated).
    pub kind: String,
    /// Which one: `ISSUER_ID:SERIAL` for a certificate, the token or issuer id otherwise.
    pub reference: String,
    /// When, Unix seconds (informational; readers order by `seq`).
    pub at: i64,
}
