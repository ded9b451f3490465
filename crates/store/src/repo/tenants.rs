//! The tenants repository: the unit of isolation and the root of each audit chain.

use async_trait::async_trait;
use trustbox_types::TenantId;

use crate::{NewAuditEvent, StoreError, TenantRecord};

/// Tenants. Creating one also creates its audit chain head.
#[async_trait]
pub trait TenantRepo: Send + Sync {
    /// Creates a tenant (and its audit chain head), recording `event` in its chain.
    async fn create_tenant(
        &self,
        tenant: &TenantRecord,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The tenant named `name`.
    async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRecord>, StoreError>;
    /// The tenant `id`.
    async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, StoreError>;
    /// All tenants, oldest first.
    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError>;
}
