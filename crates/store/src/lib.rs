//! The store contract: one repository trait per aggregate ([`TenantRepo`], [`TokenRepo`],
//! [`IssuerRepo`], [`CertificateRepo`], [`RevocationRepo`], [`AuditRepo`],
//! [`CoordinationRepo`], [`JobStore`]), gathered by [`Store`]; two engines (SQLite embedded,
//! PostgreSQL scale-out).
//!
//! Every method that reads or writes tenant data takes the tenant and filters by it; the
//! exceptions are the system paths that learn a tenant ([`TokenRepo::token_by_hash`],
//! [`IssuerRepo::issuer_public`]) or cross tenants by design ([`CoordinationRepo`]). Every
//! mutation commits its audit event in the same transaction, so a state change and its
//! record of who did it cannot diverge.
//!
//! This crate does no I/O and knows no database driver: the SQL both engines share lives in
//! `trustbox-store-sql` (one macro instantiated per engine with its concrete `sqlx` types),
//! and the engines own their migrations. The rules a row must follow whatever writes it (the
//! SAN index normalisation, the certificate column encoding, the audit-chain links) are pure
//! functions here, so the SQLite group-commit writer and the `sqlx` path share them.

pub mod acme_rows;
mod audit;
pub mod job_rows;
pub mod migrate;
mod records;
mod repo;
pub mod rows;

#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use audit::{event_hash, verify_events, ChainBreak, GENESIS_HASH};
pub use records::*;
pub use repo::{
    AcmeAccountRecord, AcmeAuthorizationRecord, AcmeChallengeRecord, AcmeEabKeyRecord, AcmeObject,
    AcmeOp, AcmeOpOutcome, AcmeOrderRecord, AcmeProvisionerRecord, AcmeRepo, AcmeStateChange,
    AuditRepo, CertificateRepo, CoordinationRepo, IssuerRepo, JobFilter, JobFinish, JobLease,
    JobRecord, JobState, JobStore, NewJob, OutboxRecord, RevocationRepo, RevokeOutcome, TenantRepo,
    TokenRepo,
};

use async_trait::async_trait;

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

/// The persistence contract every engine implements: every repository, and migrations.
///
/// Callers holding a `dyn Store` call any repository's methods on it; code that needs one
/// aggregate only can take that repository's trait instead.
#[async_trait]
pub trait Store:
    TenantRepo
    + AcmeRepo
    + TokenRepo
    + IssuerRepo
    + CertificateRepo
    + RevocationRepo
    + AuditRepo
    + CoordinationRepo
    + JobStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Applies pending migrations (idempotent; safe with several replicas starting).
    async fn migrate(&self) -> Result<(), StoreError>;
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
