//! Newtypes and enums shared by every TrustBox layer.
//!
//! This crate owns the vocabulary (tenant, principal, serial, scope, revocation reason, key
//! algorithm, clock). It performs no I/O and must never depend on another TrustBox crate.

mod clock;
mod ids;
mod key;
mod revocation;
mod scope;
mod serial;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{AuditEventId, CertificateId, IssuerId, JobId, ProfileId, TenantId, TokenId};
pub use key::{KeyAlgorithm, ParseKeyAlgorithmError};
pub use revocation::{ParseRevocationReasonError, RevocationReason};
pub use scope::{ParseScopeError, Scope, ScopeSet};
pub use serial::{Fingerprint, ParseSerialError, Serial};

use serde::{Deserialize, Serialize};

/// The protocol or interface through which an issuance request entered the seam.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceProtocol {
    /// The REST API (`POST /api/v1/certificates`).
    Api,
    /// Issued internally at bootstrap (the server's own TLS certificate).
    Bootstrap,
    /// ACME (RFC 8555), at finalize.
    Acme,
}

impl SourceProtocol {
    /// The stable lowercase name stored in the inventory.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Bootstrap => "bootstrap",
            Self::Acme => "acme",
        }
    }
}

/// Lifecycle status of a certificate in the inventory.
///
/// Expiry is not a stored status: it is derived from `not_after` at query time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    /// Issued and not revoked.
    Valid,
    /// Revoked; the revocation time and reason are recorded beside it.
    Revoked,
}

impl CertificateStatus {
    /// The stable lowercase name stored in the inventory.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Revoked => "revoked",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "valid" => Some(Self::Valid),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// Who acts, precisely: what an audit event names as its actor. Each protocol adapter
/// authenticates its own way and says which kind of actor it found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A bearer API token (REST API, CLI).
    Token {
        /// The token's id.
        id: TokenId,
        /// Its label.
        name: String,
    },
    /// A person signed in (single sign-on).
    User {
        /// The identity provider's subject.
        subject: String,
    },
    /// A deployment agent.
    Agent {
        /// The agent's id.
        id: String,
    },
    /// An ACME account.
    AcmeAccount {
        /// The account's id.
        id: String,
    },
    /// A client of an enrollment protocol: EST (a user or a client certificate), SCEP (a
    /// challenge), CMP (a MAC reference).
    EnrollmentClient {
        /// The protocol (`est`, `scep`, `cmp`).
        protocol: String,
        /// The enrollment profile or provisioner it came through.
        label: String,
        /// Which credential authenticated it (never the secret itself).
        credential: String,
    },
    /// A workload (SPIFFE Workload API).
    Workload {
        /// Its SPIFFE id or selector set.
        id: String,
    },
    /// One of the server's own background workers (`crl-publisher`, `server-certificate`).
    System {
        /// The worker's name.
        worker: String,
    },
}

impl Actor {
    /// The actor as audit events record it (`token:ID:NAME`, `acme-account:ID`,
    /// `est:LABEL/CREDENTIAL`, `system:WORKER`).
    pub fn audit_name(&self) -> String {
        match self {
            Self::Token { id, name } => format!("token:{id}:{name}"),
            Self::User { subject } => format!("user:{subject}"),
            Self::Agent { id } => format!("agent:{id}"),
            Self::AcmeAccount { id } => format!("acme-account:{id}"),
            Self::EnrollmentClient {
                protocol,
                label,
                credential,
            } => format!("{protocol}:{label}/{credential}"),
            Self::Workload { id } => format!("workload:{id}"),
            Self::System { worker } => format!("system:{worker}"),
        }
    }

    /// The token behind this actor, when it is one.
    pub fn token(&self) -> Option<TokenId> {
        match self {
            Self::Token { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// What a principal may do: its scopes and, for protocols that prove control of names
/// first (ACME), exactly which identifiers it proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    /// What the principal may do.
    pub scopes: ScopeSet,
    /// When set, every identifier of a certificate issued to this principal must be one of
    /// these (lowercase `dns:NAME` or `ip:ADDR`, as the inventory records SANs); the seam
    /// enforces it. `None`: the profile alone decides.
    pub proved_identifiers: Option<Vec<String>>,
}

impl Grants {
    /// Scopes only (no identifier restriction).
    pub fn scopes(scopes: ScopeSet) -> Self {
        Self {
            scopes,
            proved_identifiers: None,
        }
    }
}

/// Who is acting: an authenticated actor bound to one tenant, with what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every action of this principal is confined to.
    pub tenant: TenantId,
    /// Who it is.
    pub actor: Actor,
    /// What it may do.
    pub grants: Grants,
}

impl Principal {
    /// Whether the principal holds `scope` (the `admin` scope implies every scope).
    pub fn may(&self, scope: Scope) -> bool {
        self.grants.scopes.allows(scope)
    }

    /// The actor string recorded in audit events.
    pub fn audit_actor(&self) -> String {
        self.actor.audit_name()
    }
}
