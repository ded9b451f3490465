//! What an OCSP responder needs from the seam, and nothing more: delegated responder
//! certificates (keys in custody, issued and rotated by the leader before they expire), the
//! status of a serial, and notice of what to stop serving from a cache. The protocol
//! itself ([RFC 6960](https://www.rfc-editor.org/rfc/rfc6960)): parsing, signing, caching
//! answers, is an adapter above the seam (`trustbox_server::ocsp`, on `trustbox_proto_ocsp`).

use crate::error::AuthorityError;
use crate::Authority;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use trustbox_crypto::Signer;
use trustbox_store::OcspResponderRecord;
use trustbox_types::{CertificateStatus, IssuerId, RevocationReason, Serial, TenantId};

/// How long a loaded responder is used before the store is asked for a newer one.
const RESPONDER_TTL: Duration = Duration::from_secs(30);
/// Invalidations buffered per listener; a listener that falls further behind is told it
/// lagged and must drop everything it cached.
const INVALIDATIONS: usize = 4096;

/// Whether an issuer (valid until `issuer_not_after`) needs a new delegated responder
/// certificate: it has none, or the current one has less than a third of `validity` left
/// and a new one would live longer (a responder never outlives its CA, so one already
/// reaching the CA's end is kept to the end).
pub(crate) fn responder_due(
    current: Option<&OcspResponderRecord>,
    issuer_not_after: i64,
    now: i64,
    validity: i64,
) -> bool {
    match current {
        None => true,
        Some(c) => c.not_after - now <= validity / 3 && c.not_after < issuer_not_after - 60,
    }
}

/// A delegated responder ready to sign for one issuer.
pub struct OcspSigning {
    /// The responder certificate's id (it changes when the certificate is rotated).
    pub id: uuid::Uuid,
    /// The issuer's tenant.
    pub tenant: TenantId,
    /// The responder certificate (DER), with id-kp-OCSPSigning.
    pub certificate_der: Vec<u8>,
    /// The issuing CA's certificate (DER), so relying parties can build the chain.
    pub issuer_der: Vec<u8>,
    /// The issuer's subject (DER) and public key bits, for matching CertIDs.
    pub issuer_subject_raw: Vec<u8>,
    /// The issuer's subjectPublicKey bits.
    pub issuer_key_raw: Vec<u8>,
    /// The responder's key, in custody.
    pub signer: Arc<dyn Signer>,
    /// The responder certificate's notAfter, Unix seconds (answers may not outlive it).
    pub not_after: i64,
    loaded: Instant,
}

impl std::fmt::Debug for OcspSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspSigning")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Whether an issuer's OCSP responder can answer.
#[derive(Clone, Debug)]
pub enum ResponderLookup {
    /// Ready to sign.
    Ready(Arc<OcspSigning>),
    /// No tenant has this issuer, or its OCSP is switched off.
    NotServed,
    /// Its first responder certificate is being issued; ask again shortly.
    Starting,
}

/// The status of one serial of one issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialStatus {
    /// Issued here and not revoked.
    Good,
    /// Revoked at `at` (Unix seconds) for `reason`.
    Revoked {
        /// When.
        at: i64,
        /// Why, when recorded.
        reason: Option<RevocationReason>,
    },
    /// Never issued by this issuer here.
    Unknown,
}

/// What a cache of answers must drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// One certificate was revoked.
    Certificate {
        /// Its issuer.
        issuer: IssuerId,
        /// Its serial.
        serial: Serial,
    },
    /// Everything about this issuer (its responder rotated, its OCSP switched off).
    Issuer(IssuerId),
}

/// In-memory state of the responder side of the seam.
#[derive(Debug)]
pub(crate) struct OcspState {
    responders: RwLock<HashMap<IssuerId, Arc<OcspSigning>>>,
    invalidations: broadcast::Sender<Invalidation>,
}

impl Default for OcspState {
    fn default() -> Self {
        Self {
            responders: RwLock::default(),
            invalidations: broadcast::channel(INVALIDATIONS).0,
        }
    }
}

impl Authority {
    /// The status of `serial` of `issuer` in `tenant`, from the store.
    pub(crate) async fn serial_status(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        serial: &Serial,
    ) -> Result<SerialStatus, AuthorityError> {
        let rec = self
            .store
            .certificate_by_serial(tenant, issuer, &serial.to_hex())
            .await?;
        Ok(match rec {
            None => SerialStatus::Unknown,
            Some(c) if c.status == CertificateStatus::Revoked => SerialStatus::Revoked {
                at: c.revoked_at.unwrap_or_default(),
                reason: c.revocation_reason,
            },
            Some(_) => SerialStatus::Good,
        })
    }

    /// The issuer's delegated responder (cached briefly, and only while caches are trusted).
    pub(crate) async fn ocsp_responder_for(
        &self,
        issuer: IssuerId,
    ) -> Result<ResponderLookup, AuthorityError> {
        if let Some(r) = self
            .ocsp
            .responders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&issuer)
        {
            if r.loaded.elapsed() < RESPONDER_TTL && self.caches_trusted() {
                return Ok(ResponderLookup::Ready(r.clone()));
            }
        }
        let Some(public) = self.public_issuer(issuer).await? else {
            return Ok(ResponderLookup::NotServed);
        };
        if !public.ocsp_enabled {
            return Ok(ResponderLookup::NotServed);
        }
        let Some(rec) = self.store.ocsp_responder(public.tenant, issuer).await? else {
            return Ok(ResponderLookup::Starting);
        };
        let ca = self.load_issuer(public.tenant, issuer).await?;
        let signer = self.open_key(
            &rec.key_backend,
            rec.key_algorithm,
            &rec.key_wrapped,
            &trustbox_crypto::KeyOwner::new(
                trustbox_crypto::KeyRole::OcspResponder,
                public.tenant,
                rec.id,
            ),
        )?;
        let active = Arc::new(OcspSigning {
            id: rec.id,
            tenant: public.tenant,
            certificate_der: rec.certificate_der.clone(),
            issuer_der: ca.ca.certificate_der().to_vec(),
            issuer_subject_raw: ca.ca.subject_raw().to_vec(),
            issuer_key_raw: ca.ca.public_key_raw().to_vec(),
            signer,
            not_after: rec.not_after,
            loaded: Instant::now(),
        });
        let previous = self
            .ocsp
            .responders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(issuer, active.clone());
        if previous.is_some_and(|p| p.id != active.id) {
            // Answers signed by the old responder certificate are replaced as they are asked.
            self.invalidate(Invalidation::Issuer(issuer));
        }
        Ok(ResponderLookup::Ready(active))
    }

    /// Notices of what caches of answers must drop (revocations on any replica, responder
    /// rotations, OCSP switched off). A receiver that lags must drop everything.
    pub(crate) fn subscribe_invalidations(&self) -> broadcast::Receiver<Invalidation> {
        self.ocsp.invalidations.subscribe()
    }

    fn invalidate(&self, what: Invalidation) {
        // no listener is not an error: nothing is cached then
        let _ = self.ocsp.invalidations.send(what);
    }

    pub(crate) fn forget_ocsp_responses(&self, issuer: IssuerId, serial: &Serial) {
        self.invalidate(Invalidation::Certificate {
            issuer,
            serial: serial.clone(),
        });
    }

    pub(crate) fn forget_ocsp_responder(&self, issuer: IssuerId) {
        self.ocsp
            .responders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&issuer);
        self.invalidate(Invalidation::Issuer(issuer));
    }

    /// Issues a delegated responder certificate for every issuer with OCSP on that needs
    /// one (see [`Authority::ensure_ocsp_responder`]). Returns how many were issued. The
    /// scheduler enqueues one `ocsp.responder` job per issuer instead; this runs them all
    /// in place (startup of tools and tests).
    pub(crate) async fn ensure_ocsp_responders(&self) -> Result<usize, AuthorityError> {
        let mut issued = 0;
        for tenant in self.store.list_tenants().await? {
            for issuer in self.responders_due(tenant.id).await? {
                if self.ensure_ocsp_responder(tenant.id, issuer).await? {
                    issued += 1;
                }
            }
        }
        Ok(issued)
    }

    /// The tenant's issuers with OCSP on whose responder is missing or has less than a
    /// third of its validity left.
    pub(crate) async fn responders_due(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<IssuerId>, AuthorityError> {
        let now = self.now_s();
        let validity = self.config.ocsp_responder_validity_s.max(3600);
        let mut due = Vec::new();
        for rec in self.store.list_issuers(tenant).await? {
            if !rec.ocsp_enabled || rec.not_after <= now {
                continue;
            }
            let current = self.store.ocsp_responder(tenant, rec.id).await?;
            if responder_due(current.as_ref(), rec.not_after, now, validity) {
                due.push(rec.id);
            }
        }
        Ok(due)
    }

    /// Issues a delegated responder certificate for `issuer` if it has OCSP on and its
    /// responder is missing or has less than a third of its validity left (the work of an
    /// `ocsp.responder` job). Returns whether one was issued.
    pub(crate) async fn ensure_ocsp_responder(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
    ) -> Result<bool, AuthorityError> {
        let now = self.now_s();
        let validity = self.config.ocsp_responder_validity_s.max(3600);
        let Some(rec) = self.store.issuer(tenant, issuer).await? else {
            return Ok(false);
        };
        if !rec.ocsp_enabled || rec.not_after <= now {
            return Ok(false);
        }
        let current = self.store.ocsp_responder(tenant, issuer).await?;
        if !responder_due(current.as_ref(), rec.not_after, now, validity) {
            return Ok(false);
        }
        let ca = self.load_issuer(tenant, issuer).await?;
        if ca.revoked {
            return Ok(false);
        }
        self.issue_ocsp_responder(tenant, &ca, now, validity)
            .await?;
        Ok(true)
    }

    async fn issue_ocsp_responder(
        &self,
        tenant: TenantId,
        ca: &Arc<crate::LoadedIssuer>,
        now: i64,
        validity: i64,
    ) -> Result<(), AuthorityError> {
        let keys = self.keys.clone();
        let responder_id = uuid::Uuid::new_v4();
        let owner = trustbox_crypto::KeyOwner::new(
            trustbox_crypto::KeyRole::OcspResponder,
            tenant,
            responder_id,
        );
        let (key, signer) = tokio::task::spawn_blocking(move || {
            keys.generate(trustbox_types::KeyAlgorithm::EcdsaP256, &owner)
        })
        .await
        .map_err(AuthorityError::internal)?
        .map_err(AuthorityError::internal)?;
        let not_before = now - 60;
        let not_before_t =
            OffsetDateTime::from_unix_timestamp(not_before).map_err(AuthorityError::internal)?;
        let not_after_t = OffsetDateTime::from_unix_timestamp(now + validity)
            .map_err(AuthorityError::internal)?;
        let name = format!("OCSP Responder for {}", ca.name);
        // Signed by the CA's key, which may live on a backend whose signing waits.
        let issuing = ca.clone();
        let der = tokio::task::spawn_blocking(move || {
            issuing.ca.issue_ocsp_responder(
                &Serial::random(),
                signer,
                &name,
                not_before_t,
                not_after_t,
            )
        })
        .await
        .map_err(AuthorityError::internal)??;
        let not_after = (now + validity).min(ca.ca.not_after().unix_timestamp());
        let serial = trustbox_x509::IssuingCa::serial_of(&der)
            .ok_or_else(|| AuthorityError::internal("responder certificate serial"))?;
        let fingerprint = trustbox_types::Fingerprint::of_der(&der).to_string();
        // The responder is a certificate of its CA like any other: in its inventory.
        let inventory = trustbox_store::CertificateRecord {
            id: trustbox_types::CertificateId::generate(),
            tenant,
            issuer: ca.id,
            serial: serial.to_hex(),
            fingerprint: fingerprint.clone(),
            common_name: Some(format!("OCSP Responder for {}", ca.name)),
            sans: Vec::new(),
            key_algorithm: key.algorithm,
            not_before,
            not_after,
            status: trustbox_types::CertificateStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            invalidity_date: None,
            crl_shard: crate::revocation::shard_of(&serial, ca.crl_shards),
            profile: "ocsp-responder@0".into(),
            source: "system".into(),
            der: der.clone(),
            created_at: now,
            enrollment: None,
            idempotency_key: None,
            replaces: None,
        };
        let rec = OcspResponderRecord {
            id: responder_id,
            tenant,
            issuer: ca.id,
            certificate_der: der,
            key_backend: key.backend,
            key_algorithm: key.algorithm,
            key_wrapped: key.wrapped,
            not_before,
            not_after,
            created_at: now,
        };
        let event = self.event(
            tenant,
            "system",
            "ocsp.responder.issue",
            format!("issuer:{}", ca.id),
            "success",
            serde_json::json!({
                "responder": rec.id,
                "certificate": inventory.id,
                "serial": inventory.serial,
                "fingerprint": fingerprint,
                "issuer": ca.id,
                "not_after": not_after,
            }),
        );
        self.store
            .insert_ocsp_responder(&rec, Some(&inventory), &event)
            .await?;
        tracing::info!(issuer = %ca.id, responder = %rec.id, "OCSP responder certificate issued");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::responder_due;
    use trustbox_store::OcspResponderRecord;

    fn responder(not_after: i64) -> OcspResponderRecord {
        OcspResponderRecord {
            id: uuid::Uuid::now_v7(),
            tenant: trustbox_types::TenantId::generate(),
            issuer: trustbox_types::IssuerId::generate(),
            certificate_der: Vec::new(),
            key_backend: "sealed-v2".into(),
            key_algorithm: trustbox_types::KeyAlgorithm::EcdsaP256,
            key_wrapped: Vec::new(),
            not_before: 0,
            not_after,
            created_at: 0,
        }
    }

    #[test]
    fn a_responder_is_renewed_at_two_thirds_unless_it_already_reaches_its_ca() {
        let (now, validity) = (1_000_000, 30 * 86400);
        let ca_end = now + 365 * 86400;
        assert!(responder_due(None, ca_end, now, validity), "none yet");
        assert!(!responder_due(
            Some(&responder(now + 20 * 86400)),
            ca_end,
            now,
            validity
        ));
        assert!(responder_due(
            Some(&responder(now + 9 * 86400)),
            ca_end,
            now,
            validity
        ));
        // a CA with a day left: its responder ends with it and is not re-issued every tick
        let short = now + 86400;
        assert!(!responder_due(
            Some(&responder(short)),
            short,
            now,
            validity
        ));
    }
}
