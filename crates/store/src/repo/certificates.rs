//! The certificate inventory: every certificate issued, with its SAN index.

use async_trait::async_trait;
use trustbox_types::{CertificateId, IssuerId, TenantId};

use crate::{CertificateFilter, CertificateRecord, IssuanceRecord, StoreError};

/// The inventory. Revoking a certificate is [`crate::RevocationRepo`]'s.
#[async_trait]
pub trait CertificateRepo: Send + Sync {
    /// Commits a batch of issued certificates with their audit events in one transaction
    /// (group commit). Either all are durable or none is.
    async fn commit_issuances(&self, batch: &[IssuanceRecord]) -> Result<(), StoreError>;
    /// The tenant's certificate `id`.
    async fn certificate(
        &self,
        tenant: TenantId,
        id: CertificateId,
    ) -> Result<Option<CertificateRecord>, StoreError>;
    /// A page of the tenant's certificates matching `filter`, in id (creation) order.
    async fn list_certificates(
        &self,
        tenant: TenantId,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
    /// The tenant's certificate of `issuer` with serial `serial` (lowercase hex).
    async fn certificate_by_serial(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        serial: &str,
    ) -> Result<Option<CertificateRecord>, StoreError>;
    /// The tenant's certificate recorded with idempotency key `key`.
    async fn certificate_by_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<CertificateRecord>, StoreError>;
}
