//! The ACME repository: provisioners (which tenant serves `/acme/{name}/`), external
//! account binding keys, accounts, orders with their authorizations and challenges, and the
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
    /// The external account binding key it was created with (marked used in the same
    /// transaction).
    pub eab_kid: Option<String>,
}

/// An ACME provisioner: a named ACME server of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeProvisionerRecord {
    /// The tenant it serves.
    pub tenant: TenantId,
    /// Identifier.
    pub id: String,
    /// Its name, unique across tenants (the URL path segment).
    pub name: String,
    /// Its settings, JSON (parsed by the seam).
    pub settings: String,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// An external account binding key (RFC 8555 §7.3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeEabKeyRecord {
    /// The tenant an account bound with it belongs to.
    pub tenant: TenantId,
    /// The key identifier (`kid`).
    pub id: String,
    /// The provisioner it is valid with.
    pub provisioner: String,
    /// What it is for.
    pub label: String,
    /// A check value of the HMAC key (a SHA-256 prefix). The key itself is never stored:
    /// it is derived from a secret under the key-encryption key and the `kid`.
    pub key_check: String,
    /// `active`, `used` (bound to an account) or `revoked`.
    pub status: String,
    /// The account it bound.
    pub account_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// When it bound an account.
    pub used_at: Option<i64>,
}

/// An ACME order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeOrderRecord {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// Identifier.
    pub id: String,
    /// The provisioner it was placed with.
    pub provisioner: String,
    /// The account that placed it.
    pub account_id: String,
    /// `pending`, `ready`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// When it expires.
    pub expires_at: i64,
    /// Its identifiers, JSON array of `{"type", "value"}`.
    pub identifiers: String,
    /// The ACME profile asked for.
    pub profile: Option<String>,
    /// Requested validity start and end.
    pub not_before: Option<i64>,
    /// Requested validity end.
    pub not_after: Option<i64>,
    /// The certificate it replaces (ARI), a certificate id.
    pub replaces: Option<String>,
    /// The same, as the client named it (the ARI certificate identifier).
    pub replaces_ari: Option<String>,
    /// Why it is invalid, a problem document (JSON).
    pub error: Option<String>,
    /// The certificate issued for it.
    pub certificate_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// An ACME authorization (one identifier of one order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAuthorizationRecord {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// Identifier.
    pub id: String,
    /// The order it belongs to.
    pub order_id: String,
    /// `dns` or `ip`.
    pub identifier_type: String,
    /// The name (without `*.`) or address.
    pub identifier_value: String,
    /// Whether the order asked for `*.` + the name.
    pub wildcard: bool,
    /// `pending`, `valid`, `invalid`, `deactivated`, `expired` or `revoked`.
    pub status: String,
    /// When it expires.
    pub expires_at: i64,
}

/// An ACME challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeChallengeRecord {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// Identifier.
    pub id: String,
    /// The authorization it can prove.
    pub authz_id: String,
    /// `http-01`, `dns-01` or `tls-alpn-01`.
    pub kind: String,
    /// The token.
    pub token: String,
    /// `pending`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// When it was validated.
    pub validated_at: Option<i64>,
    /// Why it failed, a problem document (JSON).
    pub error: Option<String>,
    /// Last change.
    pub updated_at: i64,
}

/// Which ACME object a [`AcmeStateChange`] moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcmeObject {
    /// An order.
    Order,
    /// An authorization.
    Authorization,
    /// A challenge.
    Challenge,
}

/// A compare-and-set of one object's status: applied only if the object is in one of
/// `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeStateChange {
    /// What moves.
    pub object: AcmeObject,
    /// Its id.
    pub id: String,
    /// The statuses it may move from.
    pub from: Vec<String>,
    /// The status it moves to.
    pub to: String,
    /// A problem document to record (orders and challenges).
    pub error: Option<String>,
    /// The certificate issued (orders) .
    pub certificate_id: Option<String>,
    /// The validation time (challenges).
    pub validated_at: Option<i64>,
}

impl AcmeStateChange {
    /// `object` `id` from one of `from` to `to`, recording nothing else.
    pub fn new(object: AcmeObject, id: &str, from: &[&str], to: &str) -> Self {
        Self {
            object,
            id: id.to_owned(),
            from: from.iter().map(|s| (*s).to_owned()).collect(),
            to: to.to_owned(),
            error: None,
            certificate_id: None,
            validated_at: None,
        }
    }
}

/// One write of a batch ([`AcmeRepo::apply_acme_batch`]): each succeeds or fails on its
/// own, and the batch commits once.
#[derive(Clone, Debug)]
pub enum AcmeOp {
    /// Records a nonce as used: [`AcmeOpOutcome::Fresh`].
    Nonce {
        /// The nonce's id.
        id: String,
        /// When it expires anyway.
        expires_at: i64,
    },
    /// A compare-and-set group, all or nothing: [`AcmeOpOutcome::Applied`].
    Changes(Vec<AcmeStateChange>),
    /// A compare-and-set group and, if it applied, a job enqueued with it (unless one of
    /// its kind and key is active): [`AcmeOpOutcome::Applied`]. With a lease, the job is
    /// stored already claimed by the lease's holder (running, first attempt), which runs it
    /// at once with no claim; another runner takes it over only once the lease expires. A
    /// leased job whose kind and key is active fails the op (`Conflict`).
    ChangesThenJob(Vec<AcmeStateChange>, crate::NewJob, Option<JobLease>),
    /// A new account with its audit event (and its EAB key marked used):
    /// [`AcmeOpOutcome::Done`], or `Failed(Conflict)` if the key is registered.
    Account(Box<AcmeAccountRecord>, Box<NewAuditEvent>),
    /// A new order with its authorizations and challenges: [`AcmeOpOutcome::Done`].
    Order(
        Box<AcmeOrderRecord>,
        Vec<AcmeAuthorizationRecord>,
        Vec<AcmeChallengeRecord>,
    ),
}

/// What one [`AcmeOp`] did.
#[derive(Debug)]
pub enum AcmeOpOutcome {
    /// The nonce was fresh (`false`: used before).
    Fresh(bool),
    /// The changes applied (`false`: an object was not in a `from` state; nothing changed).
    Applied(bool),
    /// The write was made.
    Done,
    /// The write failed; nothing of it was kept.
    Failed(StoreError),
}

/// Who holds a job stored already claimed ([`AcmeOp::ChangesThenJob`]), until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLease {
    /// The runner holding it.
    pub holder: String,
    /// When the lease ends (Unix seconds) unless the job finishes first.
    pub until: i64,
}

/// ACME state.
#[async_trait]
pub trait AcmeRepo: Send + Sync {
    /// Stores a new account with its audit event; `Conflict` if the key is registered. A
    /// one-op [`AcmeRepo::apply_acme_batch`].
    async fn insert_acme_account(
        &self,
        account: &AcmeAccountRecord,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError> {
        let op = AcmeOp::Account(Box::new(account.clone()), Box::new(event.clone()));
        only(self.apply_acme_batch(account.tenant, &[op], 0).await?).map(drop)
    }
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
    /// Stores a new provisioner with its audit event; `Conflict` if the name is taken.
    async fn insert_acme_provisioner(
        &self,
        provisioner: &AcmeProvisionerRecord,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Replaces a provisioner's settings with its audit event; `NotFound` if the tenant has
    /// no such provisioner.
    async fn update_acme_provisioner(
        &self,
        tenant: TenantId,
        name: &str,
        settings: &str,
        now: i64,
        event: &NewAuditEvent,
    ) -> Result<AcmeProvisionerRecord, StoreError>;
    /// The provisioner named `name`, whichever tenant owns it (system path: how an ACME
    /// request learns its tenant).
    async fn acme_provisioner_by_name(
        &self,
        name: &str,
    ) -> Result<Option<AcmeProvisionerRecord>, StoreError>;
    /// The tenant's provisioners, by name.
    async fn list_acme_provisioners(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<AcmeProvisionerRecord>, StoreError>;
    /// Stores a new EAB key with its audit event.
    async fn insert_acme_eab_key(
        &self,
        key: &AcmeEabKeyRecord,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// The tenant's EAB key `id`.
    async fn acme_eab_key(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<AcmeEabKeyRecord>, StoreError>;
    /// The tenant's EAB keys of `provisioner`, newest first.
    async fn list_acme_eab_keys(
        &self,
        tenant: TenantId,
        provisioner: &str,
    ) -> Result<Vec<AcmeEabKeyRecord>, StoreError>;
    /// Revokes an EAB key (an unused one can no longer bind an account) with its audit
    /// event; `NotFound` if the tenant has no such key.
    async fn revoke_acme_eab_key(
        &self,
        tenant: TenantId,
        id: &str,
        event: &NewAuditEvent,
    ) -> Result<AcmeEabKeyRecord, StoreError>;
    /// Replaces an account's key (keyChange) with its audit event; `Conflict` if another
    /// account of the provisioner holds the new key.
    async fn update_acme_account_key(
        &self,
        tenant: TenantId,
        id: &str,
        thumbprint: &str,
        jwk: &str,
        event: &NewAuditEvent,
    ) -> Result<AcmeAccountRecord, StoreError>;
    /// Stores a new order with its authorizations and their challenges, in one transaction.
    /// A one-op [`AcmeRepo::apply_acme_batch`].
    async fn insert_acme_order(
        &self,
        order: &AcmeOrderRecord,
        authorizations: &[AcmeAuthorizationRecord],
        challenges: &[AcmeChallengeRecord],
    ) -> Result<(), StoreError> {
        let op = AcmeOp::Order(
            Box::new(order.clone()),
            authorizations.to_vec(),
            challenges.to_vec(),
        );
        only(self.apply_acme_batch(order.tenant, &[op], 0).await?).map(drop)
    }
    /// The tenant's order `id`.
    async fn acme_order(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<AcmeOrderRecord>, StoreError>;
    /// A valid order that replaced certificate `certificate_id` (ARI), if any.
    async fn acme_order_replacing(
        &self,
        tenant: TenantId,
        certificate_id: &str,
    ) -> Result<Option<String>, StoreError>;
    /// The ids of an account's orders, newest first, at most `limit` after skipping `offset`.
    async fn acme_account_orders(
        &self,
        tenant: TenantId,
        account_id: &str,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
    /// An order's authorizations, in the order of its identifiers.
    async fn acme_order_authorizations(
        &self,
        tenant: TenantId,
        order_id: &str,
    ) -> Result<Vec<AcmeAuthorizationRecord>, StoreError>;
    /// The tenant's authorization `id`.
    async fn acme_authorization(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<AcmeAuthorizationRecord>, StoreError>;
    /// An authorization's challenges.
    async fn acme_authorization_challenges(
        &self,
        tenant: TenantId,
        authz_id: &str,
    ) -> Result<Vec<AcmeChallengeRecord>, StoreError>;
    /// The tenant's challenge `id`.
    async fn acme_challenge(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<AcmeChallengeRecord>, StoreError>;
    /// Applies every change, in order, in one transaction at `now`; if any object is not in
    /// one of its `from` statuses, nothing changes and the answer is `false`. A one-op
    /// [`AcmeRepo::apply_acme_batch`].
    async fn apply_acme_changes(
        &self,
        tenant: TenantId,
        changes: &[AcmeStateChange],
        now: i64,
    ) -> Result<bool, StoreError> {
        let op = AcmeOp::Changes(changes.to_vec());
        only(self.apply_acme_batch(tenant, &[op], now).await?)
            .map(|o| matches!(o, AcmeOpOutcome::Applied(true)))
    }
    /// Orders placed with `provisioner` since `since` (by `account` only, if given). The
    /// provisioner-wide count is kept in 10-minute windows: it includes the orders of the
    /// window `since` falls in, up to 10 minutes before it (a limit bites early, never late).
    async fn count_acme_orders_since(
        &self,
        tenant: TenantId,
        provisioner: &str,
        account: Option<&str>,
        since: i64,
    ) -> Result<u64, StoreError>;
    /// Challenges of `account`'s orders that failed since `since`.
    async fn count_acme_failed_validations_since(
        &self,
        tenant: TenantId,
        account: &str,
        since: i64,
    ) -> Result<u64, StoreError>;
    /// Applies each op of `tenant` in order in one transaction, each in a savepoint (a
    /// failing op keeps nothing and fails no other); one outcome per op. Drops records of
    /// nonces expired at `now`.
    async fn apply_acme_batch(
        &self,
        tenant: TenantId,
        ops: &[AcmeOp],
        now: i64,
    ) -> Result<Vec<AcmeOpOutcome>, StoreError>;
    /// Records each nonce `(id, expires_at)` of `tenant` as used, in one transaction;
    /// answers, in order, whether each was fresh (a nonce named twice is fresh once). Drops
    /// records of nonces expired at `now`.
    async fn consume_acme_nonces(
        &self,
        tenant: TenantId,
        nonces: &[(String, i64)],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let ops: Vec<AcmeOp> = nonces
            .iter()
            .map(|(id, expires_at)| AcmeOp::Nonce {
                id: id.clone(),
                expires_at: *expires_at,
            })
            .collect();
        let outcomes = self.apply_acme_batch(tenant, &ops, now).await?;
        outcomes
            .into_iter()
            .map(|o| match o {
                AcmeOpOutcome::Fresh(fresh) => Ok(fresh),
                AcmeOpOutcome::Failed(e) => Err(e),
                other => Err(StoreError::Backend(format!(
                    "a nonce op answered {other:?}"
                ))),
            })
            .collect()
    }
    /// Records nonce `id` as used (it is refused anyway after `expires_at`); `false` when it
    /// was used already. Drops records of nonces expired at `now`.
    async fn consume_acme_nonce(
        &self,
        tenant: TenantId,
        id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let nonce = [(id.to_owned(), expires_at)];
        let fresh = self.consume_acme_nonces(tenant, &nonce, now).await?;
        Ok(fresh.first().copied().unwrap_or(false))
    }
}

/// The outcome of a one-op batch, its failure as an error.
fn only(outcomes: Vec<AcmeOpOutcome>) -> Result<AcmeOpOutcome, StoreError> {
    match outcomes.into_iter().next() {
        Some(AcmeOpOutcome::Failed(e)) => Err(e),
        Some(outcome) => Ok(outcome),
        None => Err(StoreError::Backend(
            "a one-op batch answered nothing".into(),
        )),
    }
}
