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
pub use ids::{AuditEventId, CertificateId, IssuerId, ProfileId, TenantId, TokenId};
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
}

impl SourceProtocol {
    /// The stable lowercase name stored in the inventory.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Bootstrap => "bootstrap",
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

/// Who is acting: an authenticated token bound to one tenant, with its scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every action of this principal is confined to.
    pub tenant: TenantId,
    /// The token that authenticated this principal.
    pub token: TokenId,
    /// The token's human-readable name, used as the actor in audit events.
    pub name: String,
    /// What the principal may do.
    pub scopes: ScopeSet,
}

impl Principal {
    /// Whether the principal holds `scope` (the `admin` scope implies every scope).
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.allows(scope)
    }

    /// The actor string recorded in audit events.
    pub fn actor(&self) -> String {
        format!("token:{}:{}", self.token, self.name)
    }
}
