//! The store contract: one trait, two engines (SQLite embedded, PostgreSQL scale-out).
//!
//! Every method that reads or writes tenant data takes the tenant and filters by it; the one
//! exception is [`Store::token_by_hash`], which is how a request learns its tenant. Every
//! mutation commits its audit event in the same transaction, so a state change and its
//! record of who did it cannot diverge.
//!
//! The SQL shared by both engines lives in one macro ([`impl_sql_store!`]) instantiated once
//! per engine with that engine's concrete `sqlx` types; engines own their migrations.

mod audit;
mod jobs;
pub mod migrate;
mod records;
mod sql;
mod sql_jobs;

#[doc(hidden)]
pub mod __sql {
    //! Support for [`impl_sql_store!`](crate::impl_sql_store); not a public API.
    pub use crate::sql::{decode, map_sqlx_error, REVOKED_FOR_CRL};
    pub use futures_util::TryStreamExt;
    pub use trustbox_types::JobId;
}
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use audit::{event_hash, verify_events, ChainBreak, GENESIS_HASH};
pub use jobs::{JobFilter, JobFinish, JobRecord, JobState, JobStore, NewJob, OutboxRecord};
pub use records::*;

use async_trait::async_trait;
use trustbox_types::{CertificateId, IssuerId, RevocationReason, TenantId, TokenId};

/// Store failures. Details are for logs; the API shows a generic message for `Backend`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (for this tenant).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (a name or serial already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(String),
    /// A stored value does not decode (corruption or a newer schema).
    #[error("stored data does not decode: {0}")]
    Corrupt(String),
}

/// The outcome of a revocation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The certificate was valid and is now revoked.
    Revoked(CertificateRecord),
    /// It was revoked already; nothing changed.
    AlreadyRevoked(CertificateRecord),
}

/// The persistence contract every engine implements.
#[async_trait]
pub trait Store: JobStore + Send + Sync + std::fmt::Debug {
    /// Applies pending migrations (idempotent; safe with several replicas starting).
    async fn migrate(&self) -> Result<(), StoreError>;

    // ---- tenants
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

    // ---- tokens
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

    // ---- issuers
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

    // ---- profiles
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

    // ---- certificates
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
    /// The tenant's certificate of `issuer` with serial `serial` (lowercase hex).
    async fn certificate_by_serial(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        serial: &str,
    ) -> Result<Option<CertificateRecord>, StoreError>;
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

    // ---- leader leases
    /// Takes or renews the lease `name` for `holder` until `now + ttl`; `false` when another
    /// holder's lease has not expired. Leases are system rows, not tenant data.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl: i64,
    ) -> Result<bool, StoreError>;

    /// The tenant's responder certificates, oldest first.
    async fn list_ocsp_responders(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<OcspResponderRecord>, StoreError>;

    // ---- change feed
    /// Changes after `after`, in order, at most `limit`: the system path by which replicas
    /// learn revocations made on other replicas.
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<ChangeRecord>, StoreError>;
    /// The newest change's sequence number (0 when there is none).
    async fn latest_change(&self) -> Result<i64, StoreError>;

    // ---- custody
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

    // ---- audit
    /// The tenant's chain head: the newest event's sequence number and hash.
    async fn audit_head(&self, tenant: TenantId) -> Result<Option<(i64, String)>, StoreError>;
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

    // ---- audit
    /// Appends events that record no other state change (denials, failures).
    async fn append_audit(&self, events: &[NewAuditEvent]) -> Result<(), StoreError>;
    /// Up to `limit` of the tenant's events with `seq > after`, in chain order.
    async fn list_audit(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}

/// Splits a migration script into statements at `;` line ends, dropping comments and blanks.
/// Migration scripts keep semicolons out of string literals so this stays exact.
pub fn split_sql(script: &str) -> Vec<&str> {
    script
        .split(";\n")
        .map(str::trim)
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        })
        .map(|s| s.trim_end_matches(';'))
        .collect()
}
