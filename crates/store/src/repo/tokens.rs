//! The API tokens repository (hashes only; the secret is never stored).

use async_trait::async_trait;
use trustbox_types::{TenantId, TokenId};

use crate::{NewAuditEvent, StoreError, TokenRecord};

/// API tokens. [`TokenRepo::token_by_hash`] is the one unscoped read: how a request learns
/// its tenant.
#[async_trait]
pub trait TokenRepo: Send + Sync {
    /// Stores a new token (its hash only).
    async fn insert_token(
        &self,
        token: &TokenRecord,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The token whose SHA-256 hash is `hash` (the lookup that authenticates a request).
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// The tenant's tokens, oldest first.
    async fn list_tokens(&self, tenant: TenantId) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes a token; `NotFound` if it is not the tenant's or already revoked.
    async fn revoke_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        at: i64,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
}
