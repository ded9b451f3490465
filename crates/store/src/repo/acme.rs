//! The ACME repository: accounts (bound to a tenant through their provisioner) and the
//! record of consumed nonces that makes each nonce single-use on every replica.

use async_trait::async_trait;
use trustbox_types::TenantId;

use crate::{NewAuditEvent, StoreError};

/// An ACME account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAccountRecord {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// Identifier (the last path segment of its URL).
    pub id: String,
    /// The ACME provisioner it registered with.
    pub provisioner: String,
    /// The RFC 7638 thumbprint of its key: unique per tenant and provisioner.
    pub thumbprint: String,
    /// Its public key, canonical JWK JSON.
    pub jwk: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// Contact URLs (`mailto:...`), JSON array.
    pub contact: String,
    /// Creation time.
    pub created_at: i64,
}

/// ACME state.
#[async_trait]
pub trait AcmeRepo: Send + Sync {
    /// Stores a new account with its audit event; `Conflict` if the key is registered.
    async fn insert_acme_account(
        &self,
        account: &AcmeAccountRecord,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The account of `provisioner` whose key has `thumbprint`.
    async fn acme_account_by_thumbprint(
        &self,
        tenant: TenantId,
        provisioner: &str,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccountRecord>, StoreError>;
    /// The tenant's account `id`.
    async fn acme_account(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<AcmeAccountRecord>, StoreError>;
    /// Sets an account's status and contact (JSON array) with its audit event; `NotFound`
    /// if the tenant has no such account.
    async fn update_acme_account(
        &self,
        tenant: TenantId,
        id: &str,
        status: &str,
        contact: &str,
        event: &NewAuditEvent,
    ) -> Result<AcmeAccountRecord, StoreError>;
    /// Records nonce `id` as used (it is refused anyway after `expires_at`); `false` when it
    /// was used already. Drops records of nonces expired at `now`.
    async fn consume_acme_nonce(
        &self,
        tenant: TenantId,
        id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
}
