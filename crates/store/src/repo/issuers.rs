//! The issuers repository: CA certificates with their keys in custody, and the versioned
//! profiles they issue under.

use async_trait::async_trait;
use trustbox_types::{IssuerId, TenantId};

use crate::{CertificateRecord, IssuerRecord, NewAuditEvent, ProfileRecord, StoreError};

/// Issuers and profiles.
#[async_trait]
pub trait IssuerRepo: Send + Sync {
    /// Stores a new issuer with its CRL shard rows and, for an intermediate, its CA
    /// certificate in the inventory of its parent (so the parent's CRL and OCSP can revoke it).
    async fn insert_issuer(
        &self,
        issuer: &IssuerRecord,
        ca_certificate: Option<&CertificateRecord>,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The issuer `id` of whichever tenant owns it: how a relying party's request (CRL,
    /// OCSP, CA certificate; public by nature) learns its tenant. Every later read is scoped.
    async fn issuer_public(&self, id: IssuerId) -> Result<Option<IssuerRecord>, StoreError>;
    /// Turns the issuer's OCSP responder on or off.
    async fn set_issuer_ocsp(
        &self,
        tenant: TenantId,
        id: IssuerId,
        enabled: bool,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The tenant's issuer `id`.
    async fn issuer(
        &self,
        tenant: TenantId,
        id: IssuerId,
    ) -> Result<Option<IssuerRecord>, StoreError>;
    /// The tenant's issuer named `name`.
    async fn issuer_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<IssuerRecord>, StoreError>;
    /// The tenant's issuers, oldest first.
    async fn list_issuers(&self, tenant: TenantId) -> Result<Vec<IssuerRecord>, StoreError>;

    /// Stores a profile version (version numbers are assigned by the caller, +1 per change).
    async fn insert_profile(
        &self,
        profile: &ProfileRecord,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The newest version of the tenant's profile `name`.
    async fn profile(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<ProfileRecord>, StoreError>;
    /// The newest version of each of the tenant's profiles, by name.
    async fn list_profiles(&self, tenant: TenantId) -> Result<Vec<ProfileRecord>, StoreError>;
}
