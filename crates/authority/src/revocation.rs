//! Revocation publishing: CRL shards, issuer revocation, and what relying parties fetch.
//!
//! A revocation on the API path touches one certificate row and one shard row
//! ([`trustbox_store::Store::revoke_certificate`]); it never builds a CRL. CRLs are built by
//! [`Authority::publish_due_crls`], which the background worker runs on the leader replica
//! only, after a short pause that gathers a burst of revocations into one regeneration.

use crate::error::{AuthorityError, ErrorKind};
use crate::Authority;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use trustbox_store::{CertificateRecord, CrlPublication, CrlShardState};
use trustbox_types::{IssuerId, Principal, RevocationReason, Scope, Serial, TenantId};
use trustbox_x509::{CrlEntry, CrlSpec};

/// How long a served CRL is trusted before the store is asked whether a newer one exists.
const CRL_RECHECK: Duration = Duration::from_secs(1);
/// How long a public issuer lookup (issuer id -> tenant) is cached.
const PUBLIC_ISSUER_TTL: Duration = Duration::from_secs(10);
/// The leader lease of the revocation worker, and how long it lasts without renewal.
const LEASE: &str = "revocation-publisher";
const LEASE_TTL_S: i64 = 10;
/// Worker tick, and the pause after a revocation that gathers a burst into one CRL.
const TICK: Duration = Duration::from_secs(1);
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The shard a certificate with `serial` belongs to among `shards`: a function of the
/// (random) serial, stored at issuance so it never moves.
pub(crate) fn shard_of(serial: &Serial, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let b = serial.as_bytes();
    let mut x = [0u8; 4];
    let take = b.len().min(4);
    x[4 - take..].copy_from_slice(&b[b.len() - take..]);
    u32::from_be_bytes(x) % shards
}

/// A CRL as relying parties receive it.
#[derive(Clone, Debug)]
pub struct PublishedCrl {
    /// The signed CRL (DER).
    pub der: Bytes,
    /// The same CRL in PEM, encoded once when it was loaded (cached like the DER form).
    pub pem: Bytes,
    /// Its cRLNumber.
    pub crl_number: i64,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
}

/// An issuer's certificate as the AIA caIssuers URL serves it.
#[derive(Clone, Debug)]
pub struct PublicCaCertificate {
    /// The CA certificate (DER).
    pub der: Bytes,
    /// Its notBefore, Unix seconds (for Last-Modified).
    pub not_before: i64,
}

/// What public endpoints know of an issuer.
#[derive(Clone, Debug)]
pub(crate) struct PublicIssuer {
    pub(crate) tenant: TenantId,
    pub(crate) crl_shards: u32,
    pub(crate) ocsp_enabled: bool,
    pub(crate) certificate: PublicCaCertificate,
    loaded: Instant,
}

/// A CRL being served and when the store was last asked for a newer one.
type ServedCrl = (Arc<PublishedCrl>, Instant);

/// In-memory state of revocation publishing.
#[derive(Debug, Default)]
pub(crate) struct RevocationState {
    /// Woken by every revocation on this replica.
    pub(crate) revoked: Notify,
    crls: RwLock<HashMap<(IssuerId, u32), ServedCrl>>,
    issuers: RwLock<HashMap<IssuerId, PublicIssuer>>,
}

impl Authority {
    /// Called after a revocation committed: wakes the CRL publisher and drops the cached
    /// OCSP responses of the certificate.
    pub(crate) fn after_revocation(&self, cert: &CertificateRecord) {
        self.revocation.revoked.notify_one();
        if let Ok(serial) = cert.serial.parse::<Serial>() {
            self.forget_ocsp_responses(cert.issuer, &serial);
        }
    }

    /// Drops the public view of issuer `id`.
    pub(crate) fn forget_public_issuer(&self, id: IssuerId) {
        self.revocation
            .issuers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// The issuer `id` as public endpoints see it (cached briefly); `None` if no tenant has it.
    pub(crate) async fn public_issuer(
        &self,
        id: IssuerId,
    ) -> Result<Option<PublicIssuer>, AuthorityError> {
        if let Some(p) = self
            .revocation
            .issuers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            if p.loaded.elapsed() < PUBLIC_ISSUER_TTL && self.caches_trusted() {
                return Ok(Some(p.clone()));
            }
        }
        let Some(rec) = self.store.issuer_public(id).await? else {
            return Ok(None);
        };
        let p = PublicIssuer {
            tenant: rec.tenant,
            crl_shards: rec.crl_shards.max(1),
            ocsp_enabled: rec.ocsp_enabled,
            certificate: PublicCaCertificate {
                der: Bytes::from(rec.certificate_der),
                not_before: rec.not_before,
            },
            loaded: Instant::now(),
        };
        self.revocation
            .issuers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, p.clone());
        Ok(Some(p))
    }

    /// The issuer's certificate, for its AIA caIssuers URL. No credentials: it is public.
    pub(crate) async fn ca_certificate(
        &self,
        issuer: IssuerId,
    ) -> Result<PublicCaCertificate, AuthorityError> {
        Ok(self
            .public_issuer(issuer)
            .await?
            .ok_or_else(|| AuthorityError::not_found("issuer"))?
            .certificate)
    }

    /// The published CRL of `shard` of `issuer`. No credentials: it is public. Never built
    /// here: before the first publication the answer is `Unavailable` (retry shortly).
    pub(crate) async fn crl(
        &self,
        issuer: IssuerId,
        shard: u32,
    ) -> Result<Arc<PublishedCrl>, AuthorityError> {
        let public = self
            .public_issuer(issuer)
            .await?
            .ok_or_else(|| AuthorityError::not_found("issuer"))?;
        if shard >= public.crl_shards {
            return Err(AuthorityError::new(
                ErrorKind::NotFound,
                "unknown-shard",
                format!(
                    "issuer {issuer} has {} CRL shard(s), numbered from 0",
                    public.crl_shards
                ),
            ));
        }
        let cached = self
            .revocation
            .crls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(issuer, shard))
            .cloned();
        if let Some((crl, checked)) = &cached {
            if checked.elapsed() < CRL_RECHECK {
                return Ok(crl.clone());
            }
        }
        let state = self
            .store
            .crl_shard(public.tenant, issuer, shard)
            .await?
            .ok_or_else(not_published)?;
        let crl = match cached {
            Some((crl, _)) if crl.crl_number == state.crl_number => crl,
            _ => {
                let der = self
                    .store
                    .crl_der(public.tenant, issuer, shard)
                    .await?
                    .ok_or_else(not_published)?;
                let pem = Bytes::from(trustbox_x509::pem::encode("X509 CRL", &der));
                Arc::new(PublishedCrl {
                    pem,
                    der: Bytes::from(der),
                    crl_number: state.crl_number,
                    this_update: state.this_update.unwrap_or_default(),
                    next_update: state.next_update.unwrap_or_default(),
                })
            }
        };
        self.revocation
            .crls
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((issuer, shard), (crl.clone(), Instant::now()));
        Ok(crl)
    }

    /// Builds and stores a CRL for every shard of every tenant that is due (revoked into
    /// since its last CRL, never published, or at half its validity). Returns how many
    /// were published. The scheduler enqueues one `crl.publish` job per issuer instead;
    /// this runs them all in place (tools and tests).
    pub(crate) async fn publish_due_crls(&self) -> Result<usize, AuthorityError> {
        let mut published = 0;
        for tenant in self.store.list_tenants().await? {
            for issuer in self.crl_issuers_due(tenant.id).await? {
                match self.publish_issuer_crls(tenant.id, issuer).await {
                    Ok(n) => published += n,
                    Err(e) => tracing::warn!(%issuer, error = %e, "CRLs not published"),
                }
            }
        }
        Ok(published)
    }

    /// The tenant's issuers with at least one CRL shard due.
    pub(crate) async fn crl_issuers_due(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<IssuerId>, AuthorityError> {
        let mut issuers: Vec<IssuerId> = self
            .store
            .crl_shards_due(tenant, self.now_s())
            .await?
            .into_iter()
            .map(|s| s.issuer)
            .collect();
        issuers.sort();
        issuers.dedup();
        Ok(issuers)
    }

    /// Publishes every due CRL shard of one issuer (the work of a `crl.publish` job).
    /// Returns how many were published; fails if any shard could not be.
    pub(crate) async fn publish_issuer_crls(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
    ) -> Result<usize, AuthorityError> {
        let mut published = 0;
        let mut failed = None;
        for state in self.store.crl_shards_due(tenant, self.now_s()).await? {
            if state.issuer != issuer {
                continue;
            }
            match self.publish_crl_shard(&state).await {
                Ok(true) => published += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(
                        issuer = %state.issuer, shard = state.shard, error = %e,
                        "CRL shard could not be published"
                    );
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(published),
        }
    }

    /// Builds, signs and stores the CRL of one shard as of now.
    pub(crate) async fn publish_crl_shard(
        &self,
        state: &CrlShardState,
    ) -> Result<bool, AuthorityError> {
        let started = Instant::now();
        let issuer = self.load_issuer(state.tenant, state.issuer).await?;
        let now = self.now_s();
        let entries = self
            .store
            .revoked_for_crl(state.tenant, state.issuer, state.shard, now)
            .await?;
        let count = entries.len();
        // Converted lazily inside the signing closure: the stored form is consumed as the
        // CRL's form is built.
        let entries = entries.into_iter().filter_map(|e| {
            let Ok(serial) = e.serial.parse::<Serial>() else {
                tracing::warn!(serial = %e.serial, "a stored serial does not parse; left out of the CRL");
                return None;
            };
            Some(CrlEntry {
                serial: serial.as_bytes().to_vec(),
                revoked_at: e.revoked_at,
                reason: e.reason,
                invalidity_date: e.invalidity_date,
            })
        });
        let validity = self.config.crl_validity_s.max(60);
        let this_update = now;
        let next_update = now + validity;
        let crl_number = state.crl_number + 1;
        let spec = CrlSpec {
            crl_number: u64::try_from(crl_number).map_err(AuthorityError::internal)?,
            this_update: OffsetDateTime::from_unix_timestamp(this_update)
                .map_err(AuthorityError::internal)?,
            next_update: OffsetDateTime::from_unix_timestamp(next_update)
                .map_err(AuthorityError::internal)?,
            distribution_point: self.crl_url(state.issuer, state.shard),
        };
        // Signing a large CRL is CPU work: keep it off the async workers.
        let signer = issuer.clone();
        let der = tokio::task::spawn_blocking(move || signer.ca.sign_crl(&spec, entries))
            .await
            .map_err(AuthorityError::internal)??;
        let size = der.len();
        let stored = self
            .store
            .publish_crl(
                state.tenant,
                state.issuer,
                state.shard,
                &CrlPublication {
                    revision: state.revision,
                    crl_number,
                    this_update,
                    next_update,
                    refresh_at: this_update + validity / 2,
                    der,
                },
            )
            .await?;
        metrics::counter!("trustbox_crl_publications_total").increment(1);
        metrics::histogram!("trustbox_crl_publish_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(
            issuer = %state.issuer, shard = state.shard, crl_number, entries = count, bytes = size,
            ms = started.elapsed().as_millis() as u64, stored, "CRL published"
        );
        Ok(stored)
    }

    /// Revokes the tenant's intermediate CA `id`: its certificate is revoked in its parent's
    /// inventory (so the parent's CRL and OCSP list it), and it signs nothing from now on.
    pub(crate) async fn revoke_issuer(
        &self,
        principal: &Principal,
        id: IssuerId,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<crate::Certificate, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        let issuer = self
            .store
            .issuer(principal.tenant, id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("issuer"))?;
        let Some(parent) = issuer.parent else {
            return Err(AuthorityError::invalid(
                "root-not-revocable",
                "a root CA cannot be revoked by a CRL; remove it from relying parties' trust stores",
            ));
        };
        let loaded = self.load_issuer(principal.tenant, id).await?;
        let serial = loaded.ca.serial().to_hex();
        let cert = self
            .store
            .certificate_by_serial(principal.tenant, parent, &serial)
            .await?
            .ok_or_else(|| {
                AuthorityError::internal("intermediate missing from its parent's inventory")
            })?;
        let result = self
            .revoke_unchecked(principal, cert.id, reason, invalidity_date, "issuer.revoke")
            .await;
        self.forget_issuer(principal.tenant, id);
        result?.try_into()
    }

    /// Turns the issuer's OCSP responder on or off. Off: it answers `unauthorized` and new
    /// certificates carry no OCSP URL (for short-lived-only deployments).
    pub(crate) async fn set_issuer_ocsp(
        &self,
        principal: &Principal,
        id: IssuerId,
        enabled: bool,
    ) -> Result<crate::IssuerView, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        let event = self.event(
            principal.tenant,
            &principal.audit_actor(),
            "issuer.update",
            format!("issuer:{id}"),
            "success",
            serde_json::json!({ "ocsp_enabled": enabled }),
        );
        match self
            .store
            .set_issuer_ocsp(principal.tenant, id, enabled, &event)
            .await
        {
            Ok(()) => {}
            Err(trustbox_store::StoreError::NotFound) => {
                return Err(AuthorityError::not_found("issuer"))
            }
            Err(e) => return Err(e.into()),
        }
        self.forget_issuer(principal.tenant, id);
        self.forget_public_issuer(id);
        self.forget_ocsp_responder(id);
        self.issuer_view(principal, id).await
    }

    /// The background workers, until `stop` turns true. Every replica runs them: the
    /// change-feed poller (drops cached answers for what changed on any replica), the job
    /// runner (claims and runs due jobs), and the scheduler, which acts only while this
    /// replica holds the leader lease: it enqueues CRL publishing, OCSP responder rotation
    /// and audit checkpoints as jobs.
    pub(crate) async fn run_background_workers(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let poller = tokio::spawn(self.clone().run_change_poller(stop.clone()));
        let runner = tokio::spawn(self.clone().run_job_runner(stop.clone()));
        self.run_scheduler(stop).await;
        let _ = poller.await;
        let _ = runner.await;
    }

    /// The leader's loop: each tick (and shortly after a revocation here) it enqueues the
    /// jobs that are due.
    async fn run_scheduler(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let holder = uuid::Uuid::new_v4().to_string();
        let mut marks = crate::jobs::SchedulerMarks::default();
        loop {
            let now = self.now_s();
            match self.store.try_lease(LEASE, &holder, now, LEASE_TTL_S).await {
                Ok(true) => {
                    if let Err(e) = self.schedule_jobs(&mut marks).await {
                        tracing::warn!(error = %e, "scheduling jobs failed");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader lease unavailable"),
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(TICK) => {}
                _ = self.revocation.revoked.notified() => {
                    // Let the rest of a burst arrive, then publish once.
                    tokio::time::sleep(DEBOUNCE).await;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

fn not_published() -> AuthorityError {
    AuthorityError::new(
        ErrorKind::Unavailable,
        "crl-not-published",
        "this CRL has not been published yet; retry in a few seconds",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{csr, env_with, request};
    use crate::AuthorityConfig;
    use trustbox_types::{CertificateStatus, ManualClock};
    use x509_parser::prelude::FromDer;
    use x509_parser::revocation_list::CertificateRevocationList;

    fn listed(der: &[u8]) -> (u64, usize) {
        let (_, crl) = CertificateRevocationList::from_der(der).expect("CRL parses");
        let number = crl
            .crl_number()
            .and_then(|n| n.to_u64_digits().first().copied())
            .unwrap_or(0);
        (number, crl.iter_revoked_certificates().count())
    }

    #[tokio::test]
    async fn crls_refresh_at_half_life_and_drop_expired_entries() {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let env = env_with(
            clock.clone(),
            AuthorityConfig {
                crl_validity_s: 7200,
                ..AuthorityConfig::default()
            },
        )
        .await;
        let a = &env.authority;
        let mut r = request(&env.admin, csr("short.example.com"));
        r.validity = Some(std::time::Duration::from_secs(86400));
        let issued = a.issued(r).await.expect("issued");
        let issuer = issued.certificate.issuer;
        assert!(
            a.publish_due_crls().await.expect("publish") >= 2,
            "first publication"
        );
        assert_eq!(listed(&a.crl(issuer, 0).await.expect("crl").der), (1, 0));
        a.revoke(
            &env.admin,
            issued.certificate.id,
            RevocationReason::KeyCompromise,
            None,
        )
        .await
        .expect("revoked");
        assert_eq!(
            a.publish_due_crls().await.expect("publish"),
            1,
            "only the shard revoked into"
        );
        tokio::time::sleep(CRL_RECHECK).await;
        assert_eq!(listed(&a.crl(issuer, 0).await.expect("crl").der), (2, 1));
        clock.advance(time::Duration::minutes(30));
        assert_eq!(
            a.publish_due_crls().await.expect("publish"),
            0,
            "fresh until half-life"
        );
        clock.advance(time::Duration::minutes(31));
        assert!(
            a.publish_due_crls().await.expect("publish") >= 1,
            "refreshed at half-life"
        );
        tokio::time::sleep(CRL_RECHECK).await;
        assert_eq!(listed(&a.crl(issuer, 0).await.expect("crl").der), (3, 1));
        clock.advance(time::Duration::days(2));
        assert!(a.publish_due_crls().await.expect("publish") >= 1);
        tokio::time::sleep(CRL_RECHECK).await;
        assert_eq!(
            listed(&a.crl(issuer, 0).await.expect("crl").der),
            (4, 0),
            "an expired certificate leaves the CRL"
        );
    }

    #[tokio::test]
    async fn ocsp_responders_are_issued_once_and_rotated_before_expiry() {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let env = env_with(
            clock.clone(),
            AuthorityConfig {
                ocsp_responder_validity_s: 3 * 86400,
                ..AuthorityConfig::default()
            },
        )
        .await;
        let a = &env.authority;
        assert_eq!(
            a.ensure_ocsp_responders().await.expect("ensure"),
            2,
            "root and issuing CA"
        );
        assert_eq!(a.ensure_ocsp_responders().await.expect("ensure"), 0);
        let issuer = a
            .store
            .list_issuers(env.admin.tenant)
            .await
            .expect("issuers")
            .into_iter()
            .find(|i| i.parent.is_some())
            .expect("issuing CA");
        let first = a
            .store
            .ocsp_responder(env.admin.tenant, issuer.id)
            .await
            .expect("read")
            .expect("issued");
        clock.advance(time::Duration::days(2) + time::Duration::hours(1));
        assert_eq!(
            a.ensure_ocsp_responders().await.expect("ensure"),
            2,
            "a third left: rotate"
        );
        let second = a
            .store
            .ocsp_responder(env.admin.tenant, issuer.id)
            .await
            .expect("read")
            .expect("issued");
        assert!(second.not_after > first.not_after);
        assert_ne!(second.certificate_der, first.certificate_der);
        let events = a.audit_events(&env.admin, 0, 1000).await.expect("audit");
        assert_eq!(
            events
                .iter()
                .filter(|e| e.action == "ocsp.responder.issue")
                .count(),
            4
        );
    }

    #[tokio::test]
    async fn a_revoked_intermediate_signs_nothing_and_roots_are_not_revocable() {
        let env = env_with(
            Arc::new(trustbox_types::SystemClock),
            AuthorityConfig::default(),
        )
        .await;
        let a = &env.authority;
        let issuers = a
            .store
            .list_issuers(env.admin.tenant)
            .await
            .expect("issuers");
        let root = issuers.iter().find(|i| i.parent.is_none()).expect("root");
        let ca = issuers
            .iter()
            .find(|i| i.parent.is_some())
            .expect("issuing CA");
        let e = a
            .revoke_issuer(&env.admin, root.id, RevocationReason::CaCompromise, None)
            .await
            .expect_err("root");
        assert_eq!(e.code, "root-not-revocable");
        let rec = a
            .revoke_issuer(&env.admin, ca.id, RevocationReason::CaCompromise, None)
            .await
            .expect("revoked");
        assert_eq!(
            (rec.status, rec.issuer),
            (CertificateStatus::Revoked, root.id)
        );
        let e = a
            .issued(request(&env.admin, csr("late.example.com")))
            .await
            .expect_err("revoked issuer");
        assert_eq!(e.code, "issuer-revoked");
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        for _ in 0..200 {
            let s = Serial::random();
            let a = shard_of(&s, 7);
            assert!(a < 7);
            assert_eq!(a, shard_of(&s, 7));
            assert_eq!(shard_of(&s, 1), 0);
            assert_eq!(shard_of(&s, 0), 0);
        }
        let spread: std::collections::HashSet<u32> =
            (0..200).map(|_| shard_of(&Serial::random(), 4)).collect();
        assert_eq!(spread.len(), 4, "random serials reach every shard");
    }
}
