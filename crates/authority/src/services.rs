//! The seam's public surface: one narrow service per concern, each a cheap handle on the
//! shared [`Authority`] core.
//!
//! `server` builds [`Services`] once and gives each adapter only the services it needs:
//! the REST API [`Issuance`], [`Revocation`], [`Administration`] and [`Authentication`];
//! the relying-party routes [`Revocation`]; the OCSP adapter [`OcspSource`]. No service
//! hands out the store, a key or the core itself, and every operation of the seam is
//! reachable through exactly one of them. They take and return the seam's domain types
//! ([`crate::Certificate`], [`crate::CertificateQuery`], [`crate::Tenant`], ...), never a
//! store row.

use crate::{
    AuditEntry, Authority, AuthorityConfig, AuthorityError, Bootstrap, BootstrapOptions,
    Certificate, CertificateQuery, CertificateRef, ChainBreak, ChainReport, Checkpoint,
    ExportedCheckpoint, Invalidation, IssuanceHook, IssuanceOutcome, IssuanceRequest,
    IssuedCertificate, IssuerView, JobHandler, JobQuery, JobView, NewIssuer, NewToken, ProfileView,
    PublicCaCertificate, PublishedCrl, ResponderLookup, RevocationProof, SerialStatus, Tenant,
    Token,
};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};
use trustbox_types::{
    CertificateId, IssuerId, JobId, Principal, RevocationReason, ScopeSet, Serial, TenantId,
    TokenId,
};
use trustbox_x509::Profile;

/// Declares a service: a clonable handle on the core whose `Debug` names only the service
/// (the core's caches stay out of logs).
macro_rules! service {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Arc<Authority>);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

service! {
    /// The ACME adapter's state through the seam: provisioners, accounts, single-use
    /// nonces. Certificates it gets through [`Issuance`] like every protocol.
    Acme
}

impl Acme {
    /// The seam's clock, Unix seconds (nonces are minted and checked against it).
    pub fn now_s(&self) -> i64 {
        self.0.now_s()
    }

    /// The provisioner `name`; `NotFound` for one that does not exist.
    pub async fn provisioner(&self, name: &str) -> Result<crate::AcmeProvisioner, AuthorityError> {
        self.0.acme_provisioner(name).await
    }

    /// Records the nonce `id` (valid until `expires_at`) as used; `false` if it was.
    pub async fn consume_nonce(
        &self,
        provisioner: &crate::AcmeProvisioner,
        id: &str,
        expires_at: i64,
    ) -> Result<bool, AuthorityError> {
        self.0.consume_acme_nonce(provisioner, id, expires_at).await
    }

    /// The provisioner's account holding the key with `thumbprint`.
    pub async fn account_by_key(
        &self,
        provisioner: &crate::AcmeProvisioner,
        thumbprint: &str,
    ) -> Result<Option<crate::AcmeAccount>, AuthorityError> {
        self.0.acme_account_by_key(provisioner, thumbprint).await
    }

    /// The provisioner's account `id`.
    pub async fn account(
        &self,
        provisioner: &crate::AcmeProvisioner,
        id: &str,
    ) -> Result<Option<crate::AcmeAccount>, AuthorityError> {
        self.0.acme_account(provisioner, id).await
    }

    /// Changes an account's contact and/or deactivates it.
    pub async fn update_account(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        contact: Option<&[String]>,
        deactivate: bool,
    ) -> Result<crate::AcmeAccount, AuthorityError> {
        self.0
            .update_acme_account(provisioner, account, contact, deactivate)
            .await
    }

    /// Registers an account for a key (or returns the one holding it: `false`), bound to
    /// the EAB key `eab_kid` (verified with [`Acme::verify_eab`] first) when given.
    pub async fn create_account(
        &self,
        provisioner: &crate::AcmeProvisioner,
        thumbprint: &str,
        jwk: &str,
        contact: &[String],
        eab_kid: Option<&str>,
    ) -> Result<(crate::AcmeAccount, bool), AuthorityError> {
        self.0
            .create_acme_account(provisioner, thumbprint, jwk, contact, eab_kid)
            .await
    }

    /// Checks an external account binding's MAC over `signing_input` under the
    /// provisioner's active EAB key `kid`.
    pub async fn verify_eab(
        &self,
        provisioner: &crate::AcmeProvisioner,
        kid: &str,
        signing_input: &[u8],
        mac: &[u8],
    ) -> Result<(), AuthorityError> {
        self.0
            .verify_acme_eab(provisioner, kid, signing_input, mac)
            .await
    }

    /// Replaces an account's key (keyChange).
    pub async fn change_account_key(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        thumbprint: &str,
        jwk: &str,
    ) -> Result<crate::AcmeAccount, AuthorityError> {
        self.0
            .change_acme_account_key(provisioner, account, thumbprint, jwk)
            .await
    }

    /// Places an order (rate limits applied).
    pub async fn new_order(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        order: &crate::NewAcmeOrder,
    ) -> Result<crate::AcmeOrder, AuthorityError> {
        self.0.create_acme_order(provisioner, account, order).await
    }

    /// One of the account's orders.
    pub async fn order(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        id: &str,
    ) -> Result<crate::AcmeOrder, AuthorityError> {
        self.0.acme_order(provisioner, account, id).await
    }

    /// A page of the account's order ids, newest first.
    pub async fn account_orders(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        page: u32,
        per_page: u32,
    ) -> Result<Vec<String>, AuthorityError> {
        self.0
            .acme_account_orders(provisioner, account, page, per_page)
            .await
    }

    /// One of the account's authorizations with its challenges.
    pub async fn authorization(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        id: &str,
    ) -> Result<crate::AcmeAuthorization, AuthorityError> {
        self.0.acme_authorization(provisioner, account, id).await
    }

    /// Deactivates one of the account's authorizations.
    pub async fn deactivate_authorization(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        id: &str,
    ) -> Result<crate::AcmeAuthorization, AuthorityError> {
        self.0
            .deactivate_acme_authorization(provisioner, account, id)
            .await
    }

    /// Starts validating one of the account's challenges (an [`crate::ACME_VALIDATE`] job).
    pub async fn respond_challenge(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        id: &str,
    ) -> Result<crate::AcmeChallenge, AuthorityError> {
        self.0
            .respond_acme_challenge(provisioner, account, id)
            .await
    }

    /// What validating challenge `id` needs (`None` once it is not processing).
    pub async fn validation_target(
        &self,
        tenant: TenantId,
        provisioner: &str,
        id: &str,
    ) -> Result<Option<crate::AcmeValidationTarget>, AuthorityError> {
        self.0.acme_validation_target(tenant, provisioner, id).await
    }

    /// Records a validation's outcome (`Err`: the problem document).
    pub async fn record_validation(
        &self,
        tenant: TenantId,
        target: &crate::AcmeValidationTarget,
        outcome: Result<(), serde_json::Value>,
    ) -> Result<(), AuthorityError> {
        self.0.record_acme_validation(tenant, target, outcome).await
    }

    /// Finalizes a ready order with a CSR (DER) through the issuance seam.
    pub async fn finalize(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        id: &str,
        csr: Vec<u8>,
    ) -> Result<crate::AcmeOrder, AuthorityError> {
        self.0
            .finalize_acme_order(provisioner, account, id, csr)
            .await
    }

    /// The certificate chain (PEM) of one of the account's orders.
    pub async fn certificate(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        id: &str,
    ) -> Result<crate::AcmeCertificate, AuthorityError> {
        self.0.acme_certificate(provisioner, account, id).await
    }

    /// One of the account's challenges.
    pub async fn challenge(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        id: &str,
    ) -> Result<crate::AcmeChallenge, AuthorityError> {
        self.0.acme_challenge(provisioner, account, id).await
    }

    /// The certificate id an ARI identifier (`aki`, `serial` octets) names, for an order's
    /// `replaces`: one the account ordered and that was not replaced yet.
    pub async fn replaced_certificate(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        aki: &[u8],
        serial: &[u8],
    ) -> Result<String, AuthorityError> {
        self.0
            .acme_replaced_certificate(provisioner, account, aki, serial)
            .await
    }

    /// ARI: `(not_before, not_after, urgent)` of the certificate an ARI identifier names.
    pub async fn renewal_info(
        &self,
        provisioner: &crate::AcmeProvisioner,
        aki: &[u8],
        serial: &[u8],
    ) -> Result<(i64, i64, bool), AuthorityError> {
        self.0.acme_renewal_info(provisioner, aki, serial).await
    }

    /// Revokes a certificate the account ordered.
    pub async fn revoke(
        &self,
        provisioner: &crate::AcmeProvisioner,
        account: &crate::AcmeAccount,
        der: &[u8],
        reason: RevocationReason,
    ) -> Result<(), AuthorityError> {
        self.0
            .revoke_acme_certificate(provisioner, account, der, reason)
            .await
    }

    /// Revokes a certificate on a signature by its key.
    pub async fn revoke_by_key(
        &self,
        provisioner: &crate::AcmeProvisioner,
        der: &[u8],
        message: Vec<u8>,
        signature: Vec<u8>,
        reason: RevocationReason,
    ) -> Result<(), AuthorityError> {
        self.0
            .revoke_acme_certificate_by_key(provisioner, der, message, signature, reason)
            .await
    }

    /// Creates the `default` provisioner unless it exists, and sets the secret EAB keys
    /// are derived from (startup).
    pub async fn start(&self, eab_secret: [u8; 32]) -> Result<(), AuthorityError> {
        self.0.set_acme_eab_secret(eab_secret);
        self.0.ensure_default_acme_provisioner().await
    }

    /// Creates a provisioner of the principal's tenant (`ca:admin`).
    pub async fn create_provisioner(
        &self,
        principal: &Principal,
        name: &str,
        settings: &crate::AcmeSettings,
    ) -> Result<crate::AcmeProvisioner, AuthorityError> {
        self.0
            .create_acme_provisioner(principal, name, settings)
            .await
    }

    /// Replaces a provisioner's settings (`ca:admin`).
    pub async fn update_provisioner(
        &self,
        principal: &Principal,
        name: &str,
        settings: &crate::AcmeSettings,
    ) -> Result<crate::AcmeProvisioner, AuthorityError> {
        self.0
            .update_acme_provisioner(principal, name, settings)
            .await
    }

    /// The principal's tenant's provisioners (`ca:admin`).
    pub async fn list_provisioners(
        &self,
        principal: &Principal,
    ) -> Result<Vec<crate::AcmeProvisioner>, AuthorityError> {
        self.0.list_acme_provisioners(principal).await
    }

    /// One of the principal's tenant's provisioners (`ca:admin`).
    pub async fn provisioner_view(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<crate::AcmeProvisioner, AuthorityError> {
        self.0.acme_provisioner_view(principal, name).await
    }

    /// Creates an EAB key (`ca:admin`); the HMAC key is returned this once.
    pub async fn create_eab_key(
        &self,
        principal: &Principal,
        provisioner: &str,
        label: &str,
    ) -> Result<(crate::AcmeEabKey, Vec<u8>), AuthorityError> {
        self.0
            .create_acme_eab_key(principal, provisioner, label)
            .await
    }

    /// The EAB keys of a provisioner (`ca:admin`).
    pub async fn list_eab_keys(
        &self,
        principal: &Principal,
        provisioner: &str,
    ) -> Result<Vec<crate::AcmeEabKey>, AuthorityError> {
        self.0.list_acme_eab_keys(principal, provisioner).await
    }

    /// Revokes an EAB key (`ca:admin`).
    pub async fn revoke_eab_key(
        &self,
        principal: &Principal,
        provisioner: &str,
        kid: &str,
    ) -> Result<crate::AcmeEabKey, AuthorityError> {
        self.0
            .revoke_acme_eab_key(principal, provisioner, kid)
            .await
    }
}

service! {
    /// Issuing certificates and reading the inventory: what an enrollment protocol (REST,
    /// ACME, EST, SCEP, CMP) calls to get a certificate.
    Issuance
}

service! {
    /// Revoking certificates and issuers, and publishing what relying parties fetch
    /// without credentials (CRLs, CA certificates).
    Revocation
}

service! {
    /// Tenants, issuers, profiles, tokens, the audit chain and jobs: the operator's and a
    /// tenant admin's surface, and the host-side tools acting with the data directory's
    /// authority (bootstrap, `trustbox token create`, `trustbox audit ...`).
    Administration
}

service! {
    /// Turning credentials into a [`Principal`], and readiness.
    Authentication
}

service! {
    /// What the OCSP adapter needs and nothing more: the issuer's delegated responder,
    /// serial statuses, the invalidation feed for its cache, and its settings and clock.
    OcspSource
}

impl Issuance {
    /// The seam: authorize, validate the subject key, apply the profile, consult the hooks,
    /// build and lint the certificate, sign it through custody, record it with its audit
    /// event in one commit; only then answer.
    pub async fn issue(&self, req: IssuanceRequest) -> Result<IssuanceOutcome, AuthorityError> {
        self.0.issue(req).await
    }

    /// Registers a hook; hooks run in registration order after the profile, before the
    /// signature (see [`IssuanceHook`]).
    pub fn add_issuance_hook(&self, hook: Arc<dyn IssuanceHook>) {
        self.0.add_issuance_hook(hook)
    }

    /// The tenant's certificate `id`, with its issuer chain.
    pub async fn certificate(
        &self,
        principal: &Principal,
        id: CertificateId,
    ) -> Result<IssuedCertificate, AuthorityError> {
        self.0.certificate(principal, id).await
    }

    /// A page of the tenant's certificates.
    pub async fn list_certificates(
        &self,
        principal: &Principal,
        query: &CertificateQuery,
    ) -> Result<Vec<Certificate>, AuthorityError> {
        self.0.list_certificates(principal, query).await
    }
}

impl Revocation {
    /// Revokes the tenant's certificate `id`: one committed row change plus its audit event,
    /// then its CRL shard is regenerated (batched with other revocations) and its cached
    /// OCSP responses are dropped.
    pub async fn revoke(
        &self,
        principal: &Principal,
        id: CertificateId,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<Certificate, AuthorityError> {
        self.0.revoke(principal, id, reason, invalidity_date).await
    }

    /// Revokes the certificate `target` names, on the proof the protocol offers: the
    /// `certs:revoke` scope, or possession of the certificate's key.
    pub async fn revoke_by(
        &self,
        principal: &Principal,
        target: &CertificateRef,
        proof: &RevocationProof,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<Certificate, AuthorityError> {
        self.0
            .revoke_by(principal, target, proof, reason, invalidity_date)
            .await
    }

    /// Revokes the tenant's intermediate CA `id`: its certificate is revoked in its parent's
    /// inventory (so the parent's CRL and OCSP list it), and it signs nothing from now on.
    pub async fn revoke_issuer(
        &self,
        principal: &Principal,
        id: IssuerId,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<Certificate, AuthorityError> {
        self.0
            .revoke_issuer(principal, id, reason, invalidity_date)
            .await
    }

    /// The published CRL of `shard` of `issuer`. No credentials: it is public. Never built
    /// here: before the first publication the answer is `Unavailable` (retry shortly).
    pub async fn crl(
        &self,
        issuer: IssuerId,
        shard: u32,
    ) -> Result<Arc<PublishedCrl>, AuthorityError> {
        self.0.crl(issuer, shard).await
    }

    /// The issuer's certificate, for its AIA caIssuers URL. No credentials: it is public.
    pub async fn ca_certificate(
        &self,
        issuer: IssuerId,
    ) -> Result<PublicCaCertificate, AuthorityError> {
        self.0.ca_certificate(issuer).await
    }

    /// Builds and stores a CRL for every due shard of every tenant, in place (tools and
    /// tests; the background workers publish through `crl.publish` jobs). Returns how many
    /// were published.
    pub async fn publish_due_crls(&self) -> Result<usize, AuthorityError> {
        self.0.publish_due_crls().await
    }
}

impl Administration {
    /// Ensures the default tenant exists with a root and an issuing CA; on the first start
    /// also mints the bootstrap admin token (returned once, stored hashed).
    pub async fn bootstrap(&self, opts: &BootstrapOptions) -> Result<Bootstrap, AuthorityError> {
        self.0.bootstrap(opts).await
    }

    /// Creates a tenant with its own root and issuing CA. Only an admin of the `default`
    /// tenant (the operator) may.
    pub async fn create_tenant(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<Tenant, AuthorityError> {
        self.0.create_tenant(principal, name).await
    }

    /// Tenants visible to the principal: all for the operator, else its own.
    pub async fn list_tenants(&self, principal: &Principal) -> Result<Vec<Tenant>, AuthorityError> {
        self.0.list_tenants(principal).await
    }

    /// Every tenant, for host-side tools run by the operator (`trustbox audit verify`);
    /// request paths never list across tenants.
    pub async fn host_tenants(&self) -> Result<Vec<Tenant>, AuthorityError> {
        self.0.host_tenants().await
    }

    /// Creates a root or intermediate CA for the principal's tenant.
    pub async fn create_issuer(
        &self,
        principal: &Principal,
        req: NewIssuer,
    ) -> Result<IssuerView, AuthorityError> {
        self.0.create_issuer(principal, req).await
    }

    /// The tenant's issuers.
    pub async fn list_issuers(
        &self,
        principal: &Principal,
    ) -> Result<Vec<IssuerView>, AuthorityError> {
        self.0.list_issuers(principal).await
    }

    /// One of the tenant's issuers.
    pub async fn issuer_view(
        &self,
        principal: &Principal,
        id: IssuerId,
    ) -> Result<IssuerView, AuthorityError> {
        self.0.issuer_view(principal, id).await
    }

    /// Turns the issuer's OCSP responder on or off. Off: it answers `unauthorized` and new
    /// certificates carry no OCSP URL (for short-lived-only deployments).
    pub async fn set_issuer_ocsp(
        &self,
        principal: &Principal,
        id: IssuerId,
        enabled: bool,
    ) -> Result<IssuerView, AuthorityError> {
        self.0.set_issuer_ocsp(principal, id, enabled).await
    }

    /// Issues a delegated OCSP responder certificate for every issuer with OCSP on that
    /// needs one, in place (startup of tools and tests; the background workers rotate them
    /// through `ocsp.responder` jobs). Returns how many were issued.
    pub async fn ensure_ocsp_responders(&self) -> Result<usize, AuthorityError> {
        self.0.ensure_ocsp_responders().await
    }

    /// Every profile of the tenant: its own versions and the built-ins it has not replaced.
    pub async fn list_profiles(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ProfileView>, AuthorityError> {
        self.0.list_profiles(principal).await
    }

    /// The tenant's profile `name`.
    pub async fn profile_view(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<ProfileView, AuthorityError> {
        self.0.profile_view(principal, name).await
    }

    /// Stores a new version of a profile. With `create`, the name must be new (neither a
    /// stored profile nor a built-in); otherwise it must exist.
    pub async fn put_profile(
        &self,
        principal: &Principal,
        profile: Profile,
        create: bool,
    ) -> Result<ProfileView, AuthorityError> {
        self.0.put_profile(principal, profile, create).await
    }

    /// Mints a token that never expires; see [`Administration::create_token_expiring`].
    pub async fn create_token(
        &self,
        principal: &Principal,
        tenant: Option<&str>,
        name: &str,
        scopes: ScopeSet,
    ) -> Result<NewToken, AuthorityError> {
        self.0.create_token(principal, tenant, name, scopes).await
    }

    /// Mints a token for the principal's tenant (or, for the operator, another tenant named
    /// `tenant`), valid for `expires_in_s` seconds when given. A token never gets a scope its
    /// creator lacks.
    pub async fn create_token_expiring(
        &self,
        principal: &Principal,
        tenant: Option<&str>,
        name: &str,
        scopes: ScopeSet,
        expires_in_s: Option<i64>,
    ) -> Result<NewToken, AuthorityError> {
        self.0
            .create_token_expiring(principal, tenant, name, scopes, expires_in_s)
            .await
    }

    /// Mints a token for tenant `tenant` on behalf of `actor`, with no caller check: for the
    /// host-side `trustbox token create`, which acts with the data directory's authority.
    pub async fn mint_token_on_host(
        &self,
        tenant: &str,
        name: &str,
        scopes: ScopeSet,
        actor: &str,
        expires_in_s: Option<i64>,
    ) -> Result<NewToken, AuthorityError> {
        self.0
            .mint_token_on_host(tenant, name, scopes, actor, expires_in_s)
            .await
    }

    /// The tenant's tokens (never their secrets).
    pub async fn list_tokens(&self, principal: &Principal) -> Result<Vec<Token>, AuthorityError> {
        self.0.list_tokens(principal).await
    }

    /// Revokes one of the tenant's tokens; it stops working at once. A token may revoke only
    /// tokens whose scopes it holds itself (so a narrow token cannot disarm a wider one).
    pub async fn revoke_token(
        &self,
        principal: &Principal,
        id: TokenId,
    ) -> Result<(), AuthorityError> {
        self.0.revoke_token(principal, id).await
    }

    /// A page of the tenant's audit events after `after`.
    pub async fn audit_events(
        &self,
        principal: &Principal,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, AuthorityError> {
        self.0.audit_events(principal, after, limit).await
    }

    /// Verifies the principal's tenant's whole chain.
    pub async fn verify_audit(
        &self,
        principal: &Principal,
    ) -> Result<Result<i64, ChainBreak>, AuthorityError> {
        self.0.verify_audit(principal).await
    }

    /// Verifies `tenant`'s chain (host tools): every link, the stored head, every stored
    /// checkpoint, every certificate against its recorded fingerprint.
    pub async fn verify_tenant_chain(
        &self,
        tenant: TenantId,
    ) -> Result<Result<i64, ChainBreak>, AuthorityError> {
        self.0.verify_tenant_chain(tenant).await
    }

    /// [`Administration::verify_tenant_chain`], also against `anchors` (exported
    /// checkpoints of this tenant kept off-host): a tail rewritten with recomputed hashes,
    /// or truncated together with its head, no longer matches them.
    pub async fn verify_tenant_chain_against(
        &self,
        tenant: TenantId,
        anchors: &[ExportedCheckpoint],
    ) -> Result<Result<ChainReport, ChainBreak>, AuthorityError> {
        self.0.verify_tenant_chain_against(tenant, anchors).await
    }

    /// Signs a checkpoint of the tenant's chain head, unless the newest checkpoint already
    /// covers it. Returns the new checkpoint.
    pub async fn checkpoint_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Option<Checkpoint>, AuthorityError> {
        self.0.checkpoint_tenant(tenant).await
    }

    /// Signs a checkpoint of every tenant whose chain moved since its last one. Returns how
    /// many were signed.
    pub async fn checkpoint_all(&self) -> Result<usize, AuthorityError> {
        self.0.checkpoint_all().await
    }

    /// Every stored checkpoint of `tenant`, self-contained, for off-host anchoring.
    pub async fn export_checkpoints(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ExportedCheckpoint>, AuthorityError> {
        self.0.export_checkpoints(tenant).await
    }

    /// Re-seals every key of `tenant` stored in an older custody format so it is bound to
    /// its owner (row id, tenant, role). Returns how many keys were re-sealed.
    pub async fn reseal_tenant_keys(&self, tenant: TenantId) -> Result<usize, AuthorityError> {
        self.0.reseal_tenant_keys(tenant).await
    }

    /// Registers the handler of job kind `kind` (replacing an earlier one).
    pub fn register_job_handler(&self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.0.register_job_handler(kind, handler)
    }

    /// Enqueues a job of `kind` on `key` for `tenant`, unless one is active; wakes this
    /// replica's runner. Returns whether it was enqueued.
    pub async fn enqueue_job(
        &self,
        tenant: TenantId,
        kind: &str,
        key: &str,
        payload: serde_json::Value,
        max_attempts: u32,
    ) -> Result<bool, AuthorityError> {
        self.0
            .enqueue_job(tenant, kind, key, payload, max_attempts)
            .await
    }

    /// Claims the jobs due now and runs them, recording each outcome, in place (tools and
    /// tests; every replica's runner does this in a loop). Returns how many ran.
    pub async fn run_due_jobs(&self) -> Result<usize, AuthorityError> {
        self.0.run_due_jobs().await
    }

    /// The tenant's jobs, newest first (`ca:admin`); `query.limit` is the page size.
    pub async fn list_jobs(
        &self,
        principal: &Principal,
        query: &JobQuery,
    ) -> Result<Vec<JobView>, AuthorityError> {
        self.0.list_jobs(principal, query).await
    }

    /// One of the tenant's jobs (`ca:admin`).
    pub async fn job(&self, principal: &Principal, id: JobId) -> Result<JobView, AuthorityError> {
        self.0.job(principal, id).await
    }

    /// Cancels one of the tenant's jobs that has not started or waits to retry
    /// (`ca:admin`); audited.
    pub async fn cancel_job(
        &self,
        principal: &Principal,
        id: JobId,
    ) -> Result<JobView, AuthorityError> {
        self.0.cancel_job(principal, id).await
    }

    /// Reads the change feed from where this replica left off and drops every cached item
    /// it names, in place (tests; the background workers poll continuously). Returns how
    /// many changes were applied.
    pub async fn poll_changes(&self) -> Result<usize, AuthorityError> {
        self.0.poll_changes().await
    }
}

impl Authentication {
    /// Turns a bearer token into a principal, or fails closed.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthorityError> {
        self.0.authenticate(bearer).await
    }

    /// The principal the server itself acts as (for its own TLS certificate): may only
    /// issue, in `tenant`.
    pub fn system_principal(tenant: TenantId) -> Principal {
        Authority::system_principal(tenant)
    }

    /// Whether the store answers and the default tenant exists (readiness probes).
    pub async fn check_ready(&self) -> bool {
        self.0.check_ready().await
    }
}

impl OcspSource {
    /// The issuer's delegated responder (cached briefly, and only while caches are trusted).
    pub async fn ocsp_responder_for(
        &self,
        issuer: IssuerId,
    ) -> Result<ResponderLookup, AuthorityError> {
        self.0.ocsp_responder_for(issuer).await
    }

    /// The status of `serial` of `issuer` in `tenant`, from the store.
    pub async fn serial_status(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        serial: &Serial,
    ) -> Result<SerialStatus, AuthorityError> {
        self.0.serial_status(tenant, issuer, serial).await
    }

    /// Notices of what caches of answers must drop (revocations on any replica, responder
    /// rotations, OCSP switched off). A receiver that lags must drop everything.
    pub fn subscribe_invalidations(&self) -> broadcast::Receiver<Invalidation> {
        self.0.subscribe_invalidations()
    }

    /// Whether cached answers may be used: the change feed was read successfully less than
    /// [`crate::CACHE_TRUST`] ago.
    pub fn caches_trusted(&self) -> bool {
        self.0.caches_trusted()
    }

    /// The seam's settings (the adapter reads its own knobs from it: OCSP validity, cache
    /// size).
    pub fn config(&self) -> &AuthorityConfig {
        self.0.config()
    }

    /// The seam's clock, Unix seconds (the adapter stamps its answers with it).
    pub fn now_s(&self) -> i64 {
        self.0.now_s()
    }
}

/// Every service over one core, built once by the server; each adapter takes the ones it
/// needs (fields may be moved out).
#[derive(Clone)]
pub struct Services {
    /// Issuing and reading certificates.
    pub issuance: Issuance,
    /// Revoking, CRLs and CA certificates.
    pub revocation: Revocation,
    /// Tenants, issuers, profiles, tokens, audit, jobs.
    pub administration: Administration,
    /// Bearer tokens to principals; readiness.
    pub authentication: Authentication,
    /// The OCSP adapter's source of responders and statuses.
    pub ocsp: OcspSource,
    /// The ACME adapter's provisioners, accounts and nonces.
    pub acme: Acme,
    core: Arc<Authority>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    /// The services over `authority` (an [`Authority`] or an `Arc` of one).
    pub fn new(authority: impl Into<Arc<Authority>>) -> Self {
        let core = authority.into();
        Self {
            issuance: Issuance(core.clone()),
            revocation: Revocation(core.clone()),
            administration: Administration(core.clone()),
            authentication: Authentication(core.clone()),
            ocsp: OcspSource(core.clone()),
            acme: Acme(core.clone()),
            core,
        }
    }

    /// The background workers, until `stop` turns true (spawn the future). Every replica
    /// runs them: the change-feed poller (drops cached answers for what changed on any
    /// replica), the job runner (claims and runs due jobs), and the scheduler, which acts
    /// only while this replica holds the leader lease: it enqueues CRL publishing, OCSP
    /// responder rotation and audit checkpoints as jobs.
    pub fn run_background_workers(
        &self,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.core.clone().run_background_workers(stop)
    }
}
