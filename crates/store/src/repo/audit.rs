//! The audit repository: each tenant's hash chain, the keys that sign its checkpoints, the
//! checkpoints themselves, and re-sealing keys held in custody.

use async_trait::async_trait;
use trustbox_types::TenantId;

use crate::{
    AuditCheckpoint, AuditEvent, AuditKeyRecord, NewAuditEvent, SealedKeyTable, StoreError,
};

/// The audit chain and its custody.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// The tenant's chain head: the newest event's sequence number and hash.
    async fn audit_head(&self, tenant: TenantId) -> Result<Option<(i64, String)>, StoreError>;
    /// Appends events that record no other state change (denials, failures).
    async fn append_audit(&self, events: &[NewAuditEvent]) -> Result<(), StoreError>;
    /// Up to `limit` of the tenant's events with `seq > after`, in chain order.
    async fn list_audit(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Stores the tenant's new audit key.
    async fn insert_audit_key(
        &self,
        key: &AuditKeyRecord,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The tenant's audit keys, oldest first.
    async fn list_audit_keys(&self, tenant: TenantId) -> Result<Vec<AuditKeyRecord>, StoreError>;
    /// Stores a signed checkpoint (one per sequence number; a repeat is a `Conflict`).
    async fn insert_audit_checkpoint(&self, checkpoint: &AuditCheckpoint)
        -> Result<(), StoreError>;
    /// The tenant's checkpoints with `seq > after`, oldest first, at most `limit`.
    async fn list_audit_checkpoints(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditCheckpoint>, StoreError>;

    /// Replaces the sealed key of row `id` in `table` (re-sealing under a newer format);
    /// `NotFound` if the tenant has no such row.
    async fn reseal_key(
        &self,
        tenant: TenantId,
        table: SealedKeyTable,
        id: &str,
        backend: &str,
        wrapped: &[u8],
    ) -> Result<(), StoreError>;
}
