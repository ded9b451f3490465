//! The OCSP responder ([RFC 6960](https://www.rfc-editor.org/rfc/rfc6960)) behind the
//! issuance seam: delegated responder certificates (keys in custody, rotated by the leader
//! before they expire) and pre-signed responses cached per serial.
//!
//! A request for one certificate without a nonce is a lookup and a copy once its answer is
//! cached; the answer is re-signed at half its validity, and dropped at once when the
//! certificate is revoked (on this replica directly, on others through a poll of recent
//! revocations). Requests with a nonce, or for several certificates, are signed fresh.

use crate::error::AuthorityError;
use crate::Authority;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use trustbox_proto_ocsp::{
    error_response, parse_request, sign_response, CertRef, CertStatus, ErrorStatus, HashAlgorithm,
    IssuerKeyHashes, Responder, SingleAnswer,
};
use trustbox_store::OcspResponderRecord;
use trustbox_types::{CertificateStatus, IssuerId, Serial, TenantId};

/// How long a loaded responder is used before the store is asked for a newer one.
const RESPONDER_TTL: Duration = Duration::from_secs(30);

/// A responder ready to sign for one issuer.
struct ActiveResponder {
    id: uuid::Uuid,
    tenant: TenantId,
    responder: Responder,
    hashes: IssuerKeyHashes,
    not_after: i64,
    loaded: Instant,
}

impl std::fmt::Debug for ActiveResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveResponder")
            .field("id", &self.id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// A pre-signed answer and when to sign it again.
#[derive(Debug, Clone)]
struct Cached {
    der: Bytes,
    refresh_at: i64,
}

type CacheKey = (IssuerId, Serial, u8);

/// In-memory state of the responder.
#[derive(Debug, Default)]
pub(crate) struct OcspState {
    responses: RwLock<HashMap<CacheKey, Cached>>,
    responders: RwLock<HashMap<IssuerId, Arc<ActiveResponder>>>,
}

fn hash_code(h: HashAlgorithm) -> u8 {
    match h {
        HashAlgorithm::Sha1 => 1,
        HashAlgorithm::Sha256 => 2,
        HashAlgorithm::Sha384 => 3,
        HashAlgorithm::Sha512 => 4,
    }
}

/// The cache key of a request for one certificate, when its serial is encoded canonically
/// (what every real client sends); other encodings are answered but not cached.
fn cache_key(issuer: IssuerId, cert: &CertRef) -> Option<CacheKey> {
    let serial = cert.serial()?;
    let bytes = serial.as_bytes();
    let canonical = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        cert.serial_der.len() == bytes.len() + 1
            && cert.serial_der[0] == 0
            && cert.serial_der[1..] == *bytes
    } else {
        cert.serial_der == bytes
    };
    canonical.then(|| (issuer, serial, hash_code(cert.hash)))
}

impl Authority {
    /// Answers an OCSP request (DER) for `issuer`'s responder. Always an OCSPResponse:
    /// `malformedRequest` for bad input, `unauthorized` for an issuer this responder does not
    /// serve (unknown, OCSP disabled, or CertIDs naming another CA), `tryLater` while no
    /// responder certificate exists yet, `internalError` when the store fails.
    pub async fn ocsp_respond(&self, issuer: IssuerId, request: &[u8]) -> Bytes {
        let started = Instant::now();
        let (status, body) = match self.ocsp_answer(issuer, request).await {
            Ok((kind, der)) => (kind, der),
            Err(status) => (status_name(status), Bytes::from(error_response(status))),
        };
        metrics::counter!("trustbox_ocsp_responses_total", "status" => status).increment(1);
        metrics::histogram!("trustbox_ocsp_seconds").record(started.elapsed().as_secs_f64());
        body
    }

    pub(crate) async fn ocsp_answer(
        &self,
        issuer: IssuerId,
        request: &[u8],
    ) -> Result<(&'static str, Bytes), ErrorStatus> {
        let req = parse_request(request).map_err(|e| e.status())?;
        let responder = match self.active_responder(issuer).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(ErrorStatus::Unauthorized),
            Err(e) if e.kind == crate::ErrorKind::Unavailable => return Err(ErrorStatus::TryLater),
            Err(e) => {
                tracing::warn!(error = %e, "OCSP responder unavailable");
                return Err(ErrorStatus::InternalError);
            }
        };
        if !req.certs.iter().all(|c| responder.hashes.matches(c)) {
            return Err(ErrorStatus::Unauthorized);
        }
        let now = self.now_s();
        let key = match (&req.nonce, req.certs.as_slice()) {
            (None, [only]) => cache_key(issuer, only),
            _ => None,
        };
        if let Some(key) = &key {
            if let Some(c) = self
                .ocsp
                .responses
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
            {
                if now < c.refresh_at && self.caches_trusted() {
                    return Ok(("cached", c.der.clone()));
                }
            }
        }
        let validity = self.config.ocsp_validity_s.max(60);
        let next_update = (now + validity).min(responder.not_after);
        let mut answers = Vec::with_capacity(req.certs.len());
        for cert in &req.certs {
            let status = self
                .certificate_status(responder.tenant, issuer, cert)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "OCSP status lookup failed");
                    ErrorStatus::InternalError
                })?;
            answers.push(SingleAnswer {
                cert,
                status,
                this_update: now,
                next_update,
            });
        }
        let der = sign_response(&responder.responder, &answers, now, req.nonce.as_deref())
            .map_err(|e| {
                tracing::warn!(error = %e, "OCSP response could not be signed");
                e.status()
            })?;
        let der = Bytes::from(der);
        // Only answers about real certificates are cached: a flood of random serials is
        // signed (and rate-limited) but never evicts the cached good and revoked answers.
        let known = answers
            .iter()
            .all(|a| !matches!(a.status, CertStatus::Unknown));
        if let Some(key) = key.filter(|_| known) {
            let mut cache = self
                .ocsp
                .responses
                .write()
                .unwrap_or_else(|e| e.into_inner());
            if cache.len() >= self.config.ocsp_cache_entries.max(1) {
                // Bounded memory: drop a tenth of the entries (arbitrary ones).
                let drop: Vec<CacheKey> =
                    cache.keys().take(cache.len() / 10 + 1).cloned().collect();
                for k in drop {
                    cache.remove(&k);
                }
            }
            cache.insert(
                key,
                Cached {
                    der: der.clone(),
                    refresh_at: now + (next_update - now) / 2,
                },
            );
        }
        Ok(("signed", der))
    }

    /// good, revoked (time, reason) or unknown (never issued by this issuer here).
    async fn certificate_status(
        &self,
        tenant: TenantId,
        issuer: IssuerId,
        cert: &CertRef,
    ) -> Result<CertStatus, AuthorityError> {
        let Some(serial) = cert.serial() else {
            return Ok(CertStatus::Unknown);
        };
        let rec = self
            .store
            .certificate_by_serial(tenant, issuer, &serial.to_hex())
            .await?;
        Ok(match rec {
            None => CertStatus::Unknown,
            Some(c) if c.status == CertificateStatus::Revoked => CertStatus::Revoked {
                at: c.revoked_at.unwrap_or_default(),
                reason: c.revocation_reason,
            },
            Some(_) => CertStatus::Good,
        })
    }

    /// The issuer's responder (cached); `None` when no tenant has the issuer or its OCSP is
    /// off; `Unavailable` while its first responder certificate is being issued.
    async fn active_responder(
        &self,
        issuer: IssuerId,
    ) -> Result<Option<Arc<ActiveResponder>>, AuthorityError> {
        if let Some(r) = self
            .ocsp
            .responders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&issuer)
        {
            if r.loaded.elapsed() < RESPONDER_TTL && self.caches_trusted() {
                return Ok(Some(r.clone()));
            }
        }
        let Some(public) = self.public_issuer(issuer).await? else {
            return Ok(None);
        };
        if !public.ocsp_enabled {
            return Ok(None);
        }
        let rec = self
            .store
            .ocsp_responder(public.tenant, issuer)
            .await?
            .ok_or_else(|| {
                AuthorityError::new(
                    crate::ErrorKind::Unavailable,
                    "ocsp-starting",
                    "the OCSP responder certificate is being issued",
                )
            })?;
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
        let responder = Responder::new(
            rec.certificate_der.clone(),
            signer,
            vec![ca.ca.certificate_der().to_vec()],
        )
        .map_err(AuthorityError::internal)?;
        let active = Arc::new(ActiveResponder {
            id: rec.id,
            tenant: public.tenant,
            responder,
            hashes: IssuerKeyHashes::new(ca.ca.subject_raw(), ca.ca.public_key_raw()),
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
            self.forget_issuer_responses(issuer);
        }
        Ok(Some(active))
    }

    pub(crate) fn forget_ocsp_responses(&self, issuer: IssuerId, serial: &Serial) {
        let mut cache = self
            .ocsp
            .responses
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for h in 1..=4 {
            cache.remove(&(issuer, serial.clone(), h));
        }
    }

    fn forget_issuer_responses(&self, issuer: IssuerId) {
        self.ocsp
            .responses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _, _), _| *i != issuer);
    }

    pub(crate) fn forget_ocsp_responder(&self, issuer: IssuerId) {
        self.ocsp
            .responders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&issuer);
        self.forget_issuer_responses(issuer);
    }

    /// Issues a delegated responder certificate for every issuer with OCSP on that has none,
    /// or whose responder has less than a third of its validity left. Leader only.
    pub(crate) async fn ensure_ocsp_responders(&self) -> Result<usize, AuthorityError> {
        let now = self.now_s();
        let validity = self.config.ocsp_responder_validity_s.max(3600);
        let mut issued = 0;
        for tenant in self.store.list_tenants().await? {
            for rec in self.store.list_issuers(tenant.id).await? {
                if !rec.ocsp_enabled || rec.not_after <= now {
                    continue;
                }
                let current = self.store.ocsp_responder(tenant.id, rec.id).await?;
                if current.is_some_and(|c| c.not_after - now > validity / 3) {
                    continue;
                }
                let ca = self.load_issuer(tenant.id, rec.id).await?;
                if ca.revoked {
                    continue;
                }
                self.issue_ocsp_responder(tenant.id, &ca, now, validity)
                    .await?;
                issued += 1;
            }
        }
        Ok(issued)
    }

    async fn issue_ocsp_responder(
        &self,
        tenant: TenantId,
        ca: &crate::LoadedIssuer,
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
        let der = ca.ca.issue_ocsp_responder(
            &Serial::random(),
            signer,
            &format!("OCSP Responder for {}", ca.name),
            OffsetDateTime::from_unix_timestamp(not_before).map_err(AuthorityError::internal)?,
            OffsetDateTime::from_unix_timestamp(now + validity)
                .map_err(AuthorityError::internal)?,
        )?;
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

fn status_name(s: ErrorStatus) -> &'static str {
    match s {
        ErrorStatus::MalformedRequest => "malformed",
        ErrorStatus::InternalError => "internal",
        ErrorStatus::TryLater => "try_later",
        ErrorStatus::SigRequired => "sig_required",
        ErrorStatus::Unauthorized => "unauthorized",
    }
}
