//! The issuance seam: the one path by which anything is signed.
//!
//! Every protocol adapter turns its wire format into an [`IssuanceRequest`] and calls
//! [`Issuance::issue`], which authorizes, validates the CSR, applies the profile, signs
//! through the custody boundary, lints, and records the certificate with its audit event in
//! one committed transaction before returning. The same core owns tokens, tenants, issuers,
//! profiles, revocation and the audit chain, so no other crate writes state.
//!
//! The core ([`Authority`]) has no public operations: it is built with [`Authority::new`]
//! and split into narrow services ([`Services`]: [`Issuance`], [`Revocation`],
//! [`Administration`], [`Authentication`], [`OcspSource`]), so each adapter holds only
//! what it calls and none reaches the store.
//!
//! The services take and return the seam's own domain types ([`Certificate`],
//! [`CertificateQuery`], [`Tenant`], [`Token`], [`AuditEntry`], [`JobState`], ...), never
//! the store's rows, so adapters depend on no table layout.
//!
//! This crate sees only the store trait and the custody traits, never an engine or a key.

mod acme;
mod admin;
mod audit;
mod bootstrap;
mod committer;
mod domain;
mod error;
mod issue;
mod jobs;
mod nonces;
mod ocsp;
mod refusals;
mod request;
mod revocation;
mod services;
mod sync;
mod tokens;

pub use acme::{
    AcmeAccount, AcmeAuthorization, AcmeCertificate, AcmeChallenge, AcmeEabKey, AcmeIdentifier,
    AcmeOrder, AcmeProfile, AcmeProvisioner, AcmeSettings, AcmeValidationTarget, NewAcmeOrder,
    ACME_VALIDATE, DEFAULT_PROVISIONER, MAX_ORDER_IDENTIFIERS,
};
pub use admin::{IssuerView, NewIssuer, ProfileView, MAX_TENANT_NAME_CHARS};
pub use audit::{ChainReport, CheckpointFile, ExportedCheckpoint, CHECKPOINT_FORMAT};
pub use bootstrap::{Bootstrap, BootstrapOptions};
pub use domain::{
    AuditEntry, Certificate, CertificateQuery, ChainBreak, Checkpoint, JobQuery, JobState, Tenant,
    Token,
};
pub use error::{AuthorityError, ErrorKind};
pub use jobs::{
    backoff_s, JobHandler, JobView, AUDIT_CHECKPOINT, CRL_PUBLISH, DEFAULT_MAX_ATTEMPTS,
    OCSP_RESPONDER,
};
pub use ocsp::{Invalidation, OcspSigning, ResponderLookup, SerialStatus};
pub use request::{
    CertificateRef, Enrollment, HookContext, HookDecision, IssuanceHook, IssuanceOutcome,
    IssuanceRequest, IssuedCertificate, RevocationProof, SubjectKey, MAX_ENROLLMENT_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
};
pub use revocation::{PublicCaCertificate, PublishedCrl};
pub use services::{
    Acme, Administration, Authentication, Issuance, OcspSource, Revocation, Services,
};
pub use sync::CACHE_TRUST;
pub use tokens::{NewToken, TOKEN_PREFIX};

use committer::GroupCommitter;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use trustbox_crypto::KeyStore;
use trustbox_store::{NewAuditEvent, Store};
use trustbox_types::{Clock, IssuerId, Principal, TenantId};
use trustbox_x509::IssuingCa;

/// Settings of the seam.
#[derive(Clone, Debug)]
pub struct AuthorityConfig {
    /// Base URL stamped into certificates for CRL distribution points, AIA caIssuers and
    /// OCSP (`http://pki.example.com:8080`); nothing is stamped when `None`.
    pub public_url: Option<String>,
    /// Most issuances committed in one transaction.
    pub max_batch: usize,
    /// Most issuances waiting for commit before new ones are shed with 503.
    pub queue: usize,
    /// CRL shards of each new issuer (fixed for the issuer's life).
    pub crl_shards: u32,
    /// A CRL's validity (nextUpdate - thisUpdate), seconds; it is regenerated at half-life.
    pub crl_validity_s: i64,
    /// An OCSP response's validity (nextUpdate - thisUpdate), seconds; cached responses are
    /// re-signed at half-life.
    pub ocsp_validity_s: i64,
    /// Validity of a delegated OCSP responder certificate, seconds; it is replaced when a
    /// third of it remains.
    pub ocsp_responder_validity_s: i64,
    /// Most OCSP responses kept pre-signed in memory (by the OCSP adapter).
    pub ocsp_cache_entries: usize,
}

impl Default for AuthorityConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            max_batch: 256,
            queue: 8192,
            crl_shards: 1,
            crl_validity_s: 24 * 3600,
            ocsp_validity_s: 4 * 3600,
            ocsp_responder_validity_s: 30 * 86400,
            ocsp_cache_entries: 200_000,
        }
    }
}

/// An issuer ready to sign: its record (without the wrapped key), CA and chain.
#[derive(Debug)]
pub(crate) struct LoadedIssuer {
    pub(crate) id: IssuerId,
    /// The tenant that owns it (the cache is keyed by tenant and id).
    pub(crate) tenant: TenantId,
    pub(crate) name: String,
    pub(crate) is_root: bool,
    pub(crate) ca: IssuingCa,
    /// PEM of the issuer and its ancestors up to, excluding, the root.
    pub(crate) chain_pem: String,
    /// The same chain, DER, nearest first.
    pub(crate) chain_der: Arc<Vec<Vec<u8>>>,
    /// CRL shards its certificates are spread over.
    pub(crate) crl_shards: u32,
    /// Whether its OCSP responder answers.
    pub(crate) ocsp_enabled: bool,
    /// Whether its own CA certificate has been revoked (it then issues nothing).
    pub(crate) revoked: bool,
    /// When it was loaded (entries are reloaded after [`admin::ISSUER_TTL`], so a change
    /// made on another replica is seen).
    pub(crate) loaded: std::time::Instant,
}

/// A cached authentication: the principal, when it was read, and when the token expires.
pub(crate) type AuthCacheEntry = (Principal, std::time::Instant, Option<i64>);

/// The issuance seam and everything that changes state: the shared core behind
/// [`Services`], which alone expose its operations.
#[derive(Debug)]
pub struct Authority {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Arc<dyn KeyStore>,
    /// Where custody signs: inline for in-memory keys, on bounded blocking threads for keys
    /// whose signing waits (HSM, remote), so no async worker ever blocks on a key.
    pub(crate) signing: trustbox_crypto::SigningPool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: AuthorityConfig,
    /// Issuers ready to sign, keyed by (tenant, id) so no lookup can cross tenants.
    pub(crate) issuers: RwLock<HashMap<(TenantId, IssuerId), Arc<LoadedIssuer>>>,
    pub(crate) default_issuer: RwLock<HashMap<TenantId, IssuerId>>,
    pub(crate) profiles: RwLock<HashMap<(TenantId, String), issue::CachedProfile>>,
    /// Recently authenticated tokens (by hash), trusted for [`tokens::AUTH_TTL`]; a token
    /// revoked here is dropped at once, one revoked on another replica within the TTL.
    pub(crate) auth_cache: RwLock<HashMap<String, AuthCacheEntry>>,
    pub(crate) revocation: revocation::RevocationState,
    pub(crate) ocsp: ocsp::OcspState,
    pub(crate) sync: sync::SyncState,
    pub(crate) jobs: jobs::JobsState,
    /// Checks consulted after the profile, before the signature (none by default).
    hooks: RwLock<Arc<Vec<Arc<dyn IssuanceHook>>>>,
    committer: GroupCommitter,
    refusals: refusals::RefusalAuditor,
    /// The secret ACME EAB keys are derived from (set by the server from the KEK).
    pub(crate) acme_eab_secret: std::sync::OnceLock<zeroize::Zeroizing<[u8; 32]>>,
    /// ACME writes (nonces, transitions, orders), group-committed.
    pub(crate) acme_writes: nonces::AcmeWriter,
    /// ACME provisioners by name, trusted for [`acme::PROVISIONER_TTL`].
    pub(crate) acme_provisioners:
        RwLock<HashMap<String, (std::time::Instant, acme::AcmeProvisioner)>>,
}

impl Authority {
    /// A seam over `store` and `keys`; [`Services::new`] opens it to adapters. Must be
    /// called within a Tokio runtime (it starts the group-commit writer).
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
        config: AuthorityConfig,
    ) -> Self {
        let committer =
            GroupCommitter::start(store.clone(), config.max_batch.max(1), config.queue.max(1));
        let refusals = refusals::RefusalAuditor::start(store.clone());
        let acme_writes = nonces::AcmeWriter::start(store.clone(), clock.clone());
        Self {
            store,
            keys,
            signing: trustbox_crypto::SigningPool::default(),
            clock,
            config,
            issuers: RwLock::default(),
            default_issuer: RwLock::default(),
            profiles: RwLock::default(),
            auth_cache: RwLock::default(),
            revocation: revocation::RevocationState::default(),
            ocsp: ocsp::OcspState::default(),
            sync: sync::SyncState::default(),
            jobs: jobs::JobsState::default(),
            hooks: RwLock::default(),
            committer,
            refusals,
            acme_eab_secret: std::sync::OnceLock::new(),
            acme_provisioners: RwLock::default(),
            acme_writes,
        }
    }

    /// The seam's settings (adapters read their own knobs from it, such as OCSP validity).
    pub(crate) fn config(&self) -> &AuthorityConfig {
        &self.config
    }

    /// Whether the store answers and the default tenant exists (readiness probes).
    pub(crate) async fn check_ready(&self) -> bool {
        matches!(self.store.tenant_by_name("default").await, Ok(Some(_)))
    }

    /// Every tenant, for host-side tools run by the operator (`trustbox audit verify`);
    /// request paths never list across tenants.
    pub(crate) async fn host_tenants(&self) -> Result<Vec<Tenant>, AuthorityError> {
        Ok(self
            .store
            .list_tenants()
            .await?
            .into_iter()
            .map(Tenant::from)
            .collect())
    }

    pub(crate) fn now_us(&self) -> i64 {
        let now = self.clock.now();
        (now.unix_timestamp_nanos() / 1000) as i64
    }

    /// The seam's clock, Unix seconds (adapters stamp their answers with it).
    pub(crate) fn now_s(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// An audit event by `actor` in `tenant`'s chain.
    pub(crate) fn event(
        &self,
        tenant: TenantId,
        actor: &str,
        action: &str,
        resource: String,
        outcome: &str,
        details: impl serde::Serialize,
    ) -> NewAuditEvent {
        NewAuditEvent {
            tenant,
            at_us: self.now_us(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            resource,
            outcome: outcome.to_owned(),
            // Serializing a map of strings and numbers cannot fail.
            details: serde_json::to_string(&details).unwrap_or_else(|_| "{}".to_owned()),
        }
    }

    /// Records a refused request in the audit chain, batched with other refusals and with
    /// bounded details; failures to record are logged, since the request is refused either
    /// way.
    pub(crate) async fn audit_refusal(
        &self,
        principal: &Principal,
        action: &str,
        resource: String,
        err: &AuthorityError,
    ) {
        let e = self.event(
            principal.tenant,
            &principal.audit_actor(),
            action,
            refusals::bounded(&resource),
            "denied",
            serde_json::json!({ "code": err.code, "detail": refusals::bounded(&err.detail) }),
        );
        self.refusals.record(e).await;
    }

    /// Opens a stored key (a CA's, an OCSP responder's or an audit key) in custody; it
    /// opens only for the owner it was sealed for.
    pub(crate) fn open_key(
        &self,
        backend: &str,
        algorithm: trustbox_types::KeyAlgorithm,
        wrapped: &[u8],
        owner: &trustbox_crypto::KeyOwner,
    ) -> Result<Arc<dyn trustbox_crypto::Signer>, AuthorityError> {
        self.keys
            .open(
                &trustbox_crypto::KeyRecord {
                    backend: backend.to_owned(),
                    algorithm,
                    wrapped: wrapped.to_vec(),
                },
                owner,
            )
            .map_err(AuthorityError::internal)
    }

    /// Requires `scope` of `principal`.
    pub(crate) fn require(
        principal: &Principal,
        scope: trustbox_types::Scope,
    ) -> Result<(), AuthorityError> {
        if principal.may(scope) {
            Ok(())
        } else {
            Err(AuthorityError::forbidden(scope))
        }
    }
}
#[cfg(test)]
mod tests;
