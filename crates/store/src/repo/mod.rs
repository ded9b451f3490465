//! One repository trait per aggregate. A new protocol (ACME accounts and orders, enrollment)
//! adds its own file here and its own bound on [`crate::Store`], rather than growing one
//! trait for everything.

mod acme;
mod audit;
mod certificates;
mod coordination;
mod issuers;
mod jobs;
mod revocation;
mod tenants;
mod tokens;

pub use acme::{
    AcmeAccountRecord, AcmeAuthorizationRecord, AcmeChallengeRecord, AcmeEabKeyRecord, AcmeObject,
    AcmeOp, AcmeOpOutcome, AcmeOrderRecord, AcmeProvisionerRecord, AcmeRepo, AcmeStateChange,
    JobLease,
};
pub use audit::AuditRepo;
pub use certificates::CertificateRepo;
pub use coordination::CoordinationRepo;
pub use issuers::IssuerRepo;
pub use jobs::{JobFilter, JobFinish, JobRecord, JobState, JobStore, NewJob, OutboxRecord};
pub use revocation::{RevocationRepo, RevokeOutcome};
pub use tenants::TenantRepo;
pub use tokens::TokenRepo;
