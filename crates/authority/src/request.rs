//! What an adapter hands the seam, what it gets back, and the hooks the seam consults.
//!
//! Every protocol turns its wire request into an [`IssuanceRequest`] and calls
//! [`Issuance::issue`](crate::Issuance::issue); the answer is an [`IssuanceOutcome`]:
//! issued (certificate and chain as DER, each adapter encodes them for its wire) or pending
//! (the adapter tells its client to come back with the same idempotency key).

use crate::error::AuthorityError;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use trustbox_crypto::GeneratedKey;
use trustbox_types::{CertificateId, IssuerId, KeyAlgorithm, Principal, SourceProtocol};
use trustbox_x509::{LeafPlan, SubjectAltName};

/// Longest enrollment label, account, order or transaction reference recorded.
pub const MAX_ENROLLMENT_CHARS: usize = 256;
/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// The key a certificate is for, as the protocol presented it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectKey {
    /// A PKCS#10 certification request, PEM or DER (REST, ACME, EST, SCEP): its signature
    /// proves possession of the key.
    Pkcs10(Vec<u8>),
    /// A CRMF certificate request with its proof of possession, DER (CMP). Refused with
    /// `unsupported-subject-key` until the CMP adapter brings its parser.
    Crmf(Vec<u8>),
    /// An OpenSSH public key line (SSH certificates, which are not X.509). Refused with
    /// `unsupported-subject-key` by the X.509 path until the SSH CA lands.
    SshPublicKey(String),
    /// The seam generates the key where a protocol demands it (EST serverkeygen, the SPIFFE
    /// Workload API): the private key is returned once in the outcome and never stored.
    /// The certificate's names are then the request's `identifiers`.
    Generate(KeyAlgorithm),
}

/// Where a request came from, recorded in its inventory row and audit event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enrollment {
    /// Provisioner, EST label, SCEP profile: how the client was enrolled.
    pub label: Option<String>,
    /// The client's account (an ACME account id).
    pub account: Option<String>,
    /// The protocol's order (an ACME order id).
    pub order: Option<String>,
    /// The protocol's transaction (SCEP transactionID, CMP transactionID).
    pub transaction: Option<String>,
}

impl Enrollment {
    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// One request for a certificate, whatever protocol it arrived by.
#[derive(Clone, Debug)]
pub struct IssuanceRequest {
    /// Who asks (carries the tenant, the actor and what it may do).
    pub principal: Principal,
    /// The subject's key.
    pub subject_key: SubjectKey,
    /// The names the certificate must carry exactly (an ACME order's identifiers, a
    /// SPIFFE ID); empty to take them from the CSR. With a CSR, its names must be these.
    pub identifiers: Vec<SubjectAltName>,
    /// Profile name; `tls-server` when `None`.
    pub profile: Option<String>,
    /// Issuer id or name; the tenant's default issuing CA when `None`.
    pub issuer: Option<String>,
    /// What the credential is for (free text, recorded in the audit event).
    pub purpose: Option<String>,
    /// Requested lifetime (minutes are legal; the profile bounds it); the profile's default
    /// when `None`.
    pub validity: Option<Duration>,
    /// The protocol the request came in by.
    pub source: SourceProtocol,
    /// The certificate this one replaces (ACME ARI), of the same tenant.
    pub replaces: Option<CertificateId>,
    /// Enrollment metadata, stored in the inventory row.
    pub enrollment: Enrollment,
    /// A retried request with the same key gets the certificate the first one got, never a
    /// second one (scoped to the tenant).
    pub idempotency_key: Option<String>,
}

impl IssuanceRequest {
    /// A request for `csr` by `principal` over `source`, with every option at its default.
    pub fn for_csr(principal: Principal, csr: Vec<u8>, source: SourceProtocol) -> Self {
        Self {
            principal,
            subject_key: SubjectKey::Pkcs10(csr),
            identifiers: Vec::new(),
            profile: None,
            issuer: None,
            purpose: None,
            validity: None,
            source,
            replaces: None,
            enrollment: Enrollment::default(),
            idempotency_key: None,
        }
    }
}

/// A certificate just issued and durably recorded (or, for a retried request, the one its
/// first attempt got).
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// The certificate as the inventory holds it (its `der` is the certificate).
    pub certificate: crate::Certificate,
    /// The issuer and its ancestors up to, excluding, the root, DER, nearest first.
    pub chain_der: Arc<Vec<Vec<u8>>>,
    /// The same chain, PEM (encoded once when the issuer was loaded).
    pub chain_pem: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The private key, when the seam generated it: shown to the caller once, never stored.
    pub private_key: Option<Arc<GeneratedKey>>,
    /// Whether this answers a retry (same idempotency key) with the first certificate.
    pub replayed: bool,
}

/// What the seam answers a request with.
#[derive(Clone, Debug)]
pub enum IssuanceOutcome {
    /// Signed and recorded.
    Issued(Box<IssuedCertificate>),
    /// Not decided yet (an approval, a rate window): nothing was signed. The client comes
    /// back after `retry_after` with the same idempotency key.
    Pending {
        /// The request's reference: its idempotency key, or a new id.
        request_id: String,
        /// When to ask again.
        retry_after: Duration,
    },
}

impl IssuanceOutcome {
    /// The certificate, or an error for a pending request (for callers that cannot wait).
    pub fn into_issued(self) -> Result<IssuedCertificate, AuthorityError> {
        match self {
            Self::Issued(c) => Ok(*c),
            Self::Pending { request_id, .. } => Err(AuthorityError::new(
                crate::ErrorKind::Unavailable,
                "issuance-pending",
                format!("request {request_id} is pending"),
            )),
        }
    }
}

/// What an issuance hook sees: the request as the profile shaped it, before anything is
/// signed.
#[derive(Debug)]
pub struct HookContext<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The profile's name.
    pub profile: &'a str,
    /// The issuer that would sign.
    pub issuer: IssuerId,
    /// What the certificate would hold.
    pub plan: &'a LeafPlan,
    /// The subject key's algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// The protocol.
    pub source: SourceProtocol,
    /// Enrollment metadata.
    pub enrollment: &'a Enrollment,
    /// The request's idempotency key.
    pub idempotency_key: Option<&'a str>,
}

/// What a hook decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookDecision {
    /// Go on.
    Allow,
    /// Refuse with this error (kind and detail are the client's answer).
    Deny(AuthorityError),
    /// Not yet: answer pending; the client retries after this long.
    Pending(Duration),
}

/// A check injected into the seam at its one extension point: after the profile, before
/// the signature. Policy (Rego), rate limits and extra lints are hooks; with none
/// registered the seam behaves as it always did. Hooks run in registration order; the first
/// that does not allow decides.
#[async_trait]
pub trait IssuanceHook: Send + Sync + std::fmt::Debug {
    /// A short name for logs and audit details (`policy`, `rate-limit`).
    fn name(&self) -> &str;

    /// Decides on the request before the certificate is built.
    async fn decide(&self, _ctx: &HookContext<'_>) -> HookDecision {
        HookDecision::Allow
    }

    /// Lints the built, still unsigned certificate (`preview_der` carries a placeholder
    /// signature); an error stops it before custody signs anything.
    fn lint(&self, _ctx: &HookContext<'_>, _preview_der: &[u8]) -> Result<(), AuthorityError> {
        Ok(())
    }
}

/// Which certificate to revoke, as the protocol names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateRef {
    /// Its inventory id (REST).
    Id(CertificateId),
    /// Its issuer and serial (CMP, OCSP-style references).
    Serial {
        /// The issuer.
        issuer: IssuerId,
        /// The serial.
        serial: trustbox_types::Serial,
    },
    /// The certificate itself, DER (ACME revokeCert): it must be the one in the inventory.
    Certificate(Vec<u8>),
}

/// Why the caller may revoke the certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationProof {
    /// The principal holds `certs:revoke`.
    Scope,
    /// The request was signed with the certificate's own key (ACME revokeCert signed with
    /// the certificate key): `signature` over `message`, in the form custody signs (DER
    /// ECDSA, raw Ed25519). The seam checks it against the certificate's public key; no
    /// scope is needed then. RSA keys cannot prove possession this way.
    KeyPossession {
        /// What was signed.
        message: Vec<u8>,
        /// The signature.
        signature: Vec<u8>,
    },
    /// The protocol authenticated the client that enrolled the certificate (an ACME
    /// account revoking what it ordered): the inventory row's enrollment must name this
    /// `label` (provisioner) and `account`. No scope is needed then.
    EnrolledBy {
        /// The provisioner or enrollment label.
        label: String,
        /// The account or client.
        account: String,
    },
}
