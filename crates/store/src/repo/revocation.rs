//! The revocation repository: revoking certificates, the CRL shards that publish them and
//! the delegated OCSP responders that answer for them.

use async_trait::async_trait;
use trustbox_types::{CertificateId, IssuerId, RevocationReason, TenantId};

use crate::{
    CertificateRecord, CrlPublication, CrlShardState, NewAuditEvent, OcspResponderRecord,
    RevokedEntry, StoreError,
};

/// The outcome of a revocation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The certificate was valid and is now revoked.
    Revoked(CertificateRecord),
    /// It was revoked already; nothing changed.
    AlreadyRevoked(CertificateRecord),
}

/// Revocation, CRL shards and OCSP responders.
#[async_trait]
pub trait RevocationRepo: Send + Sync {
    /// Revokes the tenant's certificate `id` at `at` for `reason`, and marks its CRL shard
    /// for regeneration (one row touched, whatever the number already revoked).
    async fn revoke_certificate(
        &self,
        tenant: TenantId,
        id: CertificateId,
        at: i64,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
        event: &NewAuditEvent,
    ) -> Result<RevokeOutcome, StoreError>;
    /// Serials of the tenant's certificates revoked at or after `since`, with their issuer.
    async fn revoked_since(
        &self,
        tenant: TenantId,
        since: i64,
    ) -> Result<Vec<(IssuerId, String)>, StoreError>;

    // ---- CRLs
    /// Creates the missing shard rows `0..count` of the issuer (idempotent).
    async fn ensure_crl_shards(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        count: u32,
    ) -> Result<(), StoreError>;
    /// The tenant's shards that need a new CRL: revoked into since their last publication,
    /// never published, or past their refresh time.
    async fn crl_shards_due(
        &self,
        tenant: TenantId,
        now: i64,
    ) -> Result<Vec<CrlShardState>, StoreError>;
    /// The state of one shard.
    async fn crl_shard(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        shard: u32,
    ) -> Result<Option<CrlShardState>, StoreError>;
    /// The published CRL of one shard (DER), if one was published.
    async fn crl_der(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        shard: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// The shard's revoked certificates that have not expired at `now` (any order).
    async fn revoked_for_crl(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        shard: u32,
        now: i64,
    ) -> Result<Vec<RevokedEntry>, StoreError>;
    /// Stores a newly signed CRL; `false` (nothing stored) when a CRL with this number or a
    /// higher one was published meanwhile.
    async fn publish_crl(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        shard: u32,
        crl: &CrlPublication,
    ) -> Result<bool, StoreError>;

    // ---- OCSP
    /// Stores a new delegated responder certificate and, when given, its record in the
    /// issuer's inventory (so it can be listed and revoked like any certificate it signed).
    async fn insert_ocsp_responder(
        &self,
        responder: &OcspResponderRecord,
        inventory: Option<&CertificateRecord>,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The issuer's responder certificate that expires last.
    async fn ocsp_responder(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
    ) -> Result<Option<OcspResponderRecord>, StoreError>;
    /// The tenant's responder certificates, oldest first.
    async fn list_ocsp_responders(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<OcspResponderRecord>, StoreError>;
}
