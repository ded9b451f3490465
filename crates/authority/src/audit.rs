//! The audit chain's anchors and its verification.
//!
//! Each tenant's chain is a hash chain (see `trustbox_store::verify_events`); on its own it
//! cannot show that its newest events were deleted, or that its tail was rewritten with
//! recomputed hashes. So verification also compares the recomputed head with the stored
//! head, and checks signed checkpoints: the head (tenant, seq, hash, time) signed by the
//! tenant's audit key, held in custody like CA keys. Checkpoints are made periodically by
//! the leader and on demand, and exported for off-host anchoring; a chain verified against
//! an exported checkpoint detects a rewritten tail. Verification finally checks every
//! stored certificate against the fingerprint its issuance event recorded, so a swapped
//! certificate breaks the chain too.

use crate::error::AuthorityError;
use crate::{Authority, ChainBreak, Checkpoint};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use trustbox_crypto::{KeyOwner, KeyRole, Signer};
use trustbox_store::{
    AuditCheckpoint, AuditKeyRecord, CertificateFilter, StoreError, GENESIS_HASH,
};
use trustbox_types::{CertificateId, Fingerprint, KeyAlgorithm, TenantId};

/// The format tag of an exported checkpoint file.
pub const CHECKPOINT_FORMAT: &str = "trustbox-audit-checkpoints/v1";

/// A checkpoint as exported for off-host anchoring: self-contained (it carries the public
/// key that verifies it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedCheckpoint {
    /// The tenant's id.
    pub tenant: TenantId,
    /// The tenant's name when exported (informational).
    pub tenant_name: String,
    /// The sequence number of the event covered.
    pub seq: i64,
    /// That event's hash.
    pub hash: String,
    /// When it was signed, microseconds since the epoch.
    pub at_us: i64,
    /// The audit key's id.
    pub key_id: uuid::Uuid,
    /// The audit key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The audit key's SubjectPublicKeyInfo, base64 DER.
    pub public_key: String,
    /// The signature over the checkpoint message, base64.
    pub signature: String,
}

/// An exported checkpoint file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointFile {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// The checkpoints, by tenant then sequence.
    pub checkpoints: Vec<ExportedCheckpoint>,
}

/// What verifying one tenant's chain found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Events verified.
    pub events: i64,
    /// Checkpoints checked (stored and supplied).
    pub checkpoints: usize,
    /// Certificates checked against their recorded fingerprints.
    pub certificates: usize,
}

/// How often the leader signs a checkpoint of each tenant whose chain moved.
pub(crate) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

fn corrupt(what: impl std::fmt::Display) -> AuthorityError {
    AuthorityError::internal(StoreError::Corrupt(what.to_string()))
}

impl Authority {
    /// Re-seals every key of `tenant` stored in an older custody format so it is bound to
    /// its owner (row id, tenant, role); run at every start before any key is used.
    /// Returns how many keys were re-sealed.
    pub(crate) async fn reseal_tenant_keys(
        &self,
        tenant: TenantId,
    ) -> Result<usize, AuthorityError> {
        use trustbox_crypto::KeyRecord;
        use trustbox_store::SealedKeyTable;
        let entry = |table, role, id: String, backend, algorithm, wrapped| {
            let owner = KeyOwner::new(role, tenant, &id);
            (
                table,
                id,
                owner,
                KeyRecord {
                    backend,
                    algorithm,
                    wrapped,
                },
            )
        };
        let mut todo: Vec<(SealedKeyTable, String, KeyOwner, KeyRecord)> = Vec::new();
        for i in self.store.list_issuers(tenant).await? {
            let id = i.id.to_string();
            todo.push(entry(
                SealedKeyTable::Issuers,
                KeyRole::Ca,
                id,
                i.key_backend,
                i.key_algorithm,
                i.key_wrapped,
            ));
        }
        for r in self.store.list_ocsp_responders(tenant).await? {
            let id = r.id.to_string();
            todo.push(entry(
                SealedKeyTable::OcspResponders,
                KeyRole::OcspResponder,
                id,
                r.key_backend,
                r.key_algorithm,
                r.key_wrapped,
            ));
        }
        for k in self.store.list_audit_keys(tenant).await? {
            let id = k.id.to_string();
            todo.push(entry(
                SealedKeyTable::AuditKeys,
                KeyRole::Audit,
                id,
                k.key_backend,
                k.key_algorithm,
                k.key_wrapped,
            ));
        }
        let mut resealed = 0;
        for (table, id, owner, record) in todo {
            if let Some(new) = self
                .keys
                .reseal(&record, &owner)
                .map_err(AuthorityError::internal)?
            {
                self.store
                    .reseal_key(tenant, table, &id, &new.backend, &new.wrapped)
                    .await?;
                resealed += 1;
            }
        }
        if resealed > 0 {
            tracing::info!(%tenant, keys = resealed, "sealed keys bound to their owners");
        }
        Ok(resealed)
    }

    /// The tenant's audit key (made on first use) and its signer.
    async fn audit_signer(
        &self,
        tenant: TenantId,
    ) -> Result<(AuditKeyRecord, Arc<dyn Signer>), AuthorityError> {
        if let Some(key) = self.store.list_audit_keys(tenant).await?.pop() {
            let owner = KeyOwner::new(KeyRole::Audit, tenant, key.id);
            let signer = self.open_key(
                &key.key_backend,
                key.key_algorithm,
                &key.key_wrapped,
                &owner,
            )?;
            return Ok((key, signer));
        }
        let id = uuid::Uuid::now_v7();
        let owner = KeyOwner::new(KeyRole::Audit, tenant, id);
        let (rec, signer) = self
            .keys
            .generate(KeyAlgorithm::EcdsaP256, &owner)
            .map_err(AuthorityError::internal)?;
        let key = AuditKeyRecord {
            id,
            tenant,
            public_key_der: signer.public_key_spki().to_vec(),
            key_backend: rec.backend,
            key_algorithm: rec.algorithm,
            key_wrapped: rec.wrapped,
            created_at: self.now_s(),
        };
        let event = self.event(
            tenant,
            "system",
            "audit.key.create",
            format!("audit-key:{id}"),
            "success",
            serde_json::json!({
                "algorithm": key.key_algorithm,
                "public_key": STANDARD.encode(&key.public_key_der),
            }),
        );
        self.store.insert_audit_key(&key, &event).await?;
        Ok((key, signer))
    }

    /// Signs a checkpoint of the tenant's chain head, unless the newest checkpoint already
    /// covers it. Returns the new checkpoint.
    pub(crate) async fn checkpoint_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Option<Checkpoint>, AuthorityError> {
        let (key, signer) = self.audit_signer(tenant).await?;
        let Some((seq, hash)) = self.store.audit_head(tenant).await? else {
            return Ok(None);
        };
        // already covered: a checkpoint at this head (or a later one) exists
        if !self
            .store
            .list_audit_checkpoints(tenant, seq - 1, 1)
            .await?
            .is_empty()
        {
            return Ok(None);
        }
        let at_us = self.now_us();
        let message = AuditCheckpoint::message(tenant, seq, &hash, at_us);
        let signature = self
            .signing
            .sign(&signer, &message)
            .await
            .map_err(AuthorityError::internal)?;
        let cp = AuditCheckpoint {
            tenant,
            seq,
            hash,
            at_us,
            key_id: key.id,
            signature,
        };
        match self.store.insert_audit_checkpoint(&cp).await {
            Ok(()) => Ok(Some(cp.into())),
            // another replica signed this head meanwhile
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Signs a checkpoint of every tenant whose chain moved since its last one. Returns how
    /// many were signed.
    pub(crate) async fn checkpoint_all(&self) -> Result<usize, AuthorityError> {
        let mut made = 0;
        for tenant in self.store.list_tenants().await? {
            if self.checkpoint_tenant(tenant.id).await?.is_some() {
                made += 1;
            }
        }
        Ok(made)
    }

    async fn stored_checkpoints(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<AuditCheckpoint>, AuthorityError> {
        let mut out = Vec::new();
        loop {
            let after = out.last().map_or(0, |c: &AuditCheckpoint| c.seq);
            let page = self
                .store
                .list_audit_checkpoints(tenant, after, 1000)
                .await?;
            let done = page.len() < 1000;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// Every stored checkpoint of `tenant`, self-contained, for off-host anchoring.
    pub(crate) async fn export_checkpoints(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ExportedCheckpoint>, AuthorityError> {
        let name = self
            .store
            .tenant(tenant)
            .await?
            .map(|t| t.name)
            .unwrap_or_default();
        let keys: HashMap<uuid::Uuid, AuditKeyRecord> = self
            .store
            .list_audit_keys(tenant)
            .await?
            .into_iter()
            .map(|k| (k.id, k))
            .collect();
        self.stored_checkpoints(tenant)
            .await?
            .into_iter()
            .map(|c| {
                let key = keys.get(&c.key_id).ok_or_else(|| {
                    corrupt(format!("checkpoint at seq {} names an unknown key", c.seq))
                })?;
                Ok(ExportedCheckpoint {
                    tenant,
                    tenant_name: name.clone(),
                    seq: c.seq,
                    hash: c.hash,
                    at_us: c.at_us,
                    key_id: c.key_id,
                    algorithm: key.key_algorithm,
                    public_key: STANDARD.encode(&key.public_key_der),
                    signature: STANDARD.encode(&c.signature),
                })
            })
            .collect()
    }

    /// Verifies the tenant's chain: every link, the stored head, every stored checkpoint,
    /// every certificate against its recorded fingerprint.
    pub(crate) async fn verify_tenant_chain(
        &self,
        tenant: TenantId,
    ) -> Result<Result<i64, ChainBreak>, AuthorityError> {
        Ok(self
            .verify_tenant_chain_against(tenant, &[])
            .await?
            .map(|r| r.events))
    }

    /// [`Authority::verify_tenant_chain`], also against `anchors` (exported checkpoints of
    /// this tenant kept off-host): a tail rewritten with recomputed hashes, or truncated
    /// together with its head, no longer matches them.
    pub(crate) async fn verify_tenant_chain_against(
        &self,
        tenant: TenantId,
        anchors: &[ExportedCheckpoint],
    ) -> Result<Result<ChainReport, ChainBreak>, AuthorityError> {
        let brk = |seq: i64, reason: String| Ok(Err(ChainBreak { seq, reason }));
        // checkpoints to hold the chain to: the stored ones (with stored keys) and anchors
        let keys: HashMap<uuid::Uuid, AuditKeyRecord> = self
            .store
            .list_audit_keys(tenant)
            .await?
            .into_iter()
            .map(|k| (k.id, k))
            .collect();
        let mut expected: Vec<(i64, String, String)> = Vec::new();
        for c in self.stored_checkpoints(tenant).await? {
            let message = AuditCheckpoint::message(tenant, c.seq, &c.hash, c.at_us);
            let valid = keys.get(&c.key_id).is_some_and(|k| {
                trustbox_crypto::verify_with_spki(
                    k.key_algorithm,
                    &k.public_key_der,
                    &message,
                    &c.signature,
                )
            });
            if !valid {
                return brk(
                    c.seq,
                    format!("stored checkpoint at seq {} has no valid signature", c.seq),
                );
            }
            expected.push((c.seq, c.hash, "stored checkpoint".into()));
        }
        for a in anchors.iter().filter(|a| a.tenant == tenant) {
            let message = AuditCheckpoint::message(tenant, a.seq, &a.hash, a.at_us);
            let (Ok(spki), Ok(sig)) = (
                STANDARD.decode(&a.public_key),
                STANDARD.decode(&a.signature),
            ) else {
                return brk(
                    a.seq,
                    format!("exported checkpoint at seq {} does not decode", a.seq),
                );
            };
            if !trustbox_crypto::verify_with_spki(a.algorithm, &spki, &message, &sig) {
                return brk(
                    a.seq,
                    format!(
                        "exported checkpoint at seq {} has no valid signature",
                        a.seq
                    ),
                );
            }
            expected.push((
                a.seq,
                a.hash.clone(),
                format!("exported checkpoint signed at {}", a.at_us),
            ));
        }
        let wanted: std::collections::HashSet<i64> = expected.iter().map(|e| e.0).collect();

        // the head first: events appended while verifying are not this run's concern
        let Some((head_seq, head_hash)) = self.store.audit_head(tenant).await? else {
            return brk(0, "the tenant has no chain head".into());
        };
        // the chain itself, remembering what the checks below need
        let mut seen_hash: HashMap<i64, String> = HashMap::new();
        let mut recorded: HashMap<CertificateId, (String, i64)> = HashMap::new();
        let (mut seq, mut prev) = (0i64, GENESIS_HASH.to_owned());
        loop {
            let mut page = self.store.list_audit(tenant, seq, 1000).await?;
            page.retain(|e| e.seq <= head_seq);
            if page.is_empty() {
                break;
            }
            match trustbox_store::verify_events(seq, prev, &page) {
                Ok(next) => (seq, prev) = next,
                Err(b) => return Ok(Err(b.into())),
            }
            for e in &page {
                if wanted.contains(&e.seq) {
                    seen_hash.insert(e.seq, e.hash.clone());
                }
                if !e.details.contains("\"fingerprint\"") {
                    continue;
                }
                let Ok(details) = serde_json::from_str::<serde_json::Value>(&e.details) else {
                    continue;
                };
                let Some(fp) = details["fingerprint"].as_str() else {
                    continue;
                };
                let id = details["certificate"]
                    .as_str()
                    .or_else(|| e.resource.strip_prefix("certificate:"))
                    .and_then(|s| s.parse::<CertificateId>().ok());
                if let Some(id) = id {
                    if let Some((first, at)) = recorded.get(&id) {
                        if first != fp {
                            return brk(e.seq, format!("certificate {id} was recorded at seq {at} with another fingerprint"));
                        }
                    } else {
                        recorded.insert(id, (fp.to_owned(), e.seq));
                    }
                }
            }
        }

        // truncation: the stored head must be the recomputed one
        if head_seq != seq {
            return brk(seq + 1, format!(
                "the chain ends at seq {seq} but its head records seq {head_seq}: the newest events were deleted"
            ));
        }
        if head_hash != prev {
            return brk(
                seq,
                "the stored head's hash differs from the recomputed one".into(),
            );
        }

        // checkpoints: the chain must still hold what was signed
        for (cp_seq, cp_hash, what) in &expected {
            match seen_hash.get(cp_seq) {
                None => return brk(*cp_seq, format!(
                    "the {what} covers seq {cp_seq}, but the chain ends at seq {seq}: events were deleted"
                )),
                Some(h) if h != cp_hash => return brk(*cp_seq, format!(
                    "event {cp_seq} differs from the {what}: the chain was rewritten"
                )),
                Some(_) => {}
            }
        }

        // certificates: each stored DER must be the one its events recorded
        let mut certificates = 0;
        let mut after = None;
        loop {
            let filter = CertificateFilter {
                limit: 1000,
                after,
                ..Default::default()
            };
            let page = self.store.list_certificates(tenant, &filter).await?;
            for c in &page {
                certificates += 1;
                let actual = Fingerprint::of_der(&c.der).to_string();
                let at = recorded.get(&c.id).map_or(0, |r| r.1);
                if actual != c.fingerprint {
                    return brk(
                        at,
                        format!(
                            "certificate {}: its stored DER does not match its fingerprint",
                            c.id
                        ),
                    );
                }
                if let Some((fp, at)) = recorded.get(&c.id) {
                    if *fp != actual {
                        return brk(*at, format!(
                            "certificate {} differs from the one recorded at seq {at}: it was swapped", c.id
                        ));
                    }
                }
            }
            if page.len() < 1000 {
                break;
            }
            after = page.last().map(|c| c.id);
        }
        Ok(Ok(ChainReport {
            events: seq,
            checkpoints: expected.len(),
            certificates,
        }))
    }
}
