//! The coordination repository: what replicas share that is no tenant's data (leader
//! leases) or that crosses tenants by design (the change feed, ids only).

use async_trait::async_trait;

use crate::{ChangeRecord, StoreError};

/// Leader leases and the change feed.
#[async_trait]
pub trait CoordinationRepo: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `now + ttl`; `false` when another
    /// holder's lease has not expired. Leases are system rows, not tenant data.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl: i64,
    ) -> Result<bool, StoreError>;
    /// Changes after `after`, in order, at most `limit`: the system path by which replicas
    /// learn revocations made on other replicas.
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<ChangeRecord>, StoreError>;
    /// The newest change's sequence number (0 when there is none).
    async fn latest_change(&self) -> Result<i64, StoreError>;
}
