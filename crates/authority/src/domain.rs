//! What the seam hands adapters and takes from them: domain types, kept apart from the
//! store's rows.
//!
//! The services answer with these and take these, never a `trustbox_store` record, so a
//! change to a table (a column added, a tenant-internal field) stays inside the seam, and
//! an adapter cannot depend on how a row is laid out. Each type is made from its row here
//! (`From`, or `TryFrom` where a stored text is parsed into a typed value); queries are
//! turned into the store's filters here too.

use crate::error::AuthorityError;
use crate::request::Enrollment;
use trustbox_store::{
    AuditCheckpoint, AuditEvent, CertificateFilter, CertificateRecord, JobFilter, TenantRecord,
    TokenRecord,
};
use trustbox_types::{
    CertificateId, CertificateStatus, Fingerprint, IssuerId, JobId, KeyAlgorithm, RevocationReason,
    ScopeSet, Serial, TenantId, TokenId,
};

/// A certificate in the tenant's inventory, as adapters see it. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Inventory id.
    pub id: CertificateId,
    /// The issuer that signed it.
    pub issuer: IssuerId,
    /// Its serial number.
    pub serial: Serial,
    /// SHA-256 fingerprint of [`Certificate::der`].
    pub fingerprint: Fingerprint,
    /// Subject commonName.
    pub common_name: Option<String>,
    /// SANs as `type:value` (`dns:www.example.com`).
    pub sans: Vec<String>,
    /// Subject key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
    /// Valid or revoked (expiry follows from `not_after`).
    pub status: CertificateStatus,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// Why it was revoked.
    pub revocation_reason: Option<RevocationReason>,
    /// When its key was known or suspected to be compromised
    /// ([RFC 5280 §5.3.2](https://www.rfc-editor.org/rfc/rfc5280#section-5.3.2)).
    pub invalidity_date: Option<i64>,
    /// The issuer's CRL shard that lists it once revoked (bound at issuance).
    pub crl_shard: u32,
    /// Profile name and version (`tls-server@1`).
    pub profile: String,
    /// Where the request came from (`api`, `bootstrap`, `system`).
    pub source: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// When it was recorded.
    pub created_at: i64,
    /// How it was enrolled (label, account, order, transaction); empty when nothing was
    /// recorded.
    pub enrollment: Enrollment,
    /// The certificate it replaces (ACME ARI).
    pub replaces: Option<CertificateId>,
}

impl TryFrom<CertificateRecord> for Certificate {
    type Error = AuthorityError;

    /// Parses the row's serial and enrollment; a row that does not decode is an internal
    /// error (corruption), never shown as is.
    fn try_from(r: CertificateRecord) -> Result<Self, Self::Error> {
        let CertificateRecord {
            id,
            tenant: _,
            issuer,
            serial,
            fingerprint,
            common_name,
            sans,
            key_algorithm,
            not_before,
            not_after,
            status,
            revoked_at,
            revocation_reason,
            invalidity_date,
            crl_shard,
            profile,
            source,
            der,
            created_at,
            enrollment,
            idempotency_key: _,
            replaces,
        } = r;
        let serial = serial.parse::<Serial>().map_err(|e| {
            AuthorityError::internal(format!("certificate {id}: stored serial {serial:?}: {e}"))
        })?;
        Ok(Self {
            id,
            issuer,
            serial,
            fingerprint: Fingerprint::from_stored(fingerprint),
            common_name,
            sans,
            key_algorithm,
            not_before,
            not_after,
            status,
            revoked_at,
            revocation_reason,
            invalidity_date,
            crl_shard,
            profile,
            source,
            der,
            created_at,
            enrollment: enrollment_of(id, enrollment.as_deref())?,
            replaces,
        })
    }
}

/// The enrollment recorded as JSON (`{"protocol", "label", "account", "order",
/// "transaction"}`; the protocol is the certificate's `source`).
fn enrollment_of(id: CertificateId, json: Option<&str>) -> Result<Enrollment, AuthorityError> {
    let Some(text) = json else {
        return Ok(Enrollment::default());
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        AuthorityError::internal(format!("certificate {id}: stored enrollment: {e}"))
    })?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(Enrollment {
        label: field("label"),
        account: field("account"),
        order: field("order"),
        transaction: field("transaction"),
    })
}

/// Rows to domain values, failing on the first that does not decode.
pub(crate) fn certificates(
    records: Vec<CertificateRecord>,
) -> Result<Vec<Certificate>, AuthorityError> {
    records.into_iter().map(Certificate::try_from).collect()
}

/// Which of the tenant's certificates to list, oldest first (keyset pagination on the id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateQuery {
    /// Only this status.
    pub status: Option<CertificateStatus>,
    /// Only certificates whose notAfter is before this time (Unix seconds).
    pub expires_before: Option<i64>,
    /// Only certificates carrying this SAN value (any type; exact match, case-insensitive
    /// for DNS names).
    pub san: Option<String>,
    /// Only this issuer's certificates.
    pub issuer: Option<IssuerId>,
    /// Only ids after this one (the cursor).
    pub after: Option<CertificateId>,
    /// Page size.
    pub limit: u32,
}

impl From<&CertificateQuery> for CertificateFilter {
    fn from(q: &CertificateQuery) -> Self {
        let CertificateQuery {
            status,
            expires_before,
            san,
            issuer,
            after,
            limit,
        } = q;
        Self {
            status: *status,
            expires_before: *expires_before,
            san: san.clone(),
            issuer: *issuer,
            after: *after,
            limit: *limit,
        }
    }
}

/// A tenant: the unit of isolation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Identifier.
    pub id: TenantId,
    /// Unique name (`default`).
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl From<TenantRecord> for Tenant {
    fn from(r: TenantRecord) -> Self {
        let TenantRecord {
            id,
            name,
            created_at,
        } = r;
        Self {
            id,
            name,
            created_at,
        }
    }
}

/// An API token as the seam shows it: never its secret nor the secret's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Identifier.
    pub id: TokenId,
    /// The tenant it is bound to.
    pub tenant: TenantId,
    /// A label for humans and audit events.
    pub name: String,
    /// What it may do.
    pub scopes: ScopeSet,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it stops being accepted, if it expires.
    pub expires_at: Option<i64>,
}

impl From<TokenRecord> for Token {
    fn from(r: TokenRecord) -> Self {
        let TokenRecord {
            id,
            tenant,
            name,
            scopes,
            hash: _,
            created_at,
            revoked_at,
            expires_at,
        } = r;
        Self {
            id,
            tenant,
            name,
            scopes,
            created_at,
            revoked_at,
            expires_at,
        }
    }
}

/// One event of a tenant's audit hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    /// The tenant.
    pub tenant: TenantId,
    /// Time, microseconds since the Unix epoch.
    pub at_us: i64,
    /// Who acted (`token:<id>:<name>`, `system:...`).
    pub actor: String,
    /// What was done (`certificate.issue`).
    pub action: String,
    /// On what (`certificate:<id>`).
    pub resource: String,
    /// The outcome (`success`, `denied`, `pending`).
    pub outcome: String,
    /// Details: compact JSON text, hashed exactly as stored.
    pub details: String,
    /// Hash of the previous event (or the genesis hash), lowercase hex.
    pub prev_hash: String,
    /// This event's hash, lowercase hex.
    pub hash: String,
}

impl From<AuditEvent> for AuditEntry {
    fn from(e: AuditEvent) -> Self {
        let AuditEvent {
            seq,
            tenant,
            at_us,
            actor,
            action,
            resource,
            outcome,
            details,
            prev_hash,
            hash,
        } = e;
        Self {
            seq,
            tenant,
            at_us,
            actor,
            action,
            resource,
            outcome,
            details,
            prev_hash,
            hash,
        }
    }
}

/// The first place a tenant's audit chain fails to verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at event seq {seq}: {reason}")]
pub struct ChainBreak {
    /// Sequence number of the first bad event (0 when the chain has no head at all).
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

impl From<trustbox_store::ChainBreak> for ChainBreak {
    fn from(b: trustbox_store::ChainBreak) -> Self {
        let trustbox_store::ChainBreak { seq, reason } = b;
        Self { seq, reason }
    }
}

/// A signed statement that a tenant's chain had `hash` at `seq` at time `at_us`
/// ([`crate::ExportedCheckpoint`] is the self-contained form kept off-host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The tenant whose chain it covers.
    pub tenant: TenantId,
    /// The sequence number of the event it covers.
    pub seq: i64,
    /// That event's hash.
    pub hash: String,
    /// When it was signed, microseconds since the Unix epoch.
    pub at_us: i64,
    /// The tenant's audit key that signed it.
    pub key_id: uuid::Uuid,
    /// The signature.
    pub signature: Vec<u8>,
}

impl From<AuditCheckpoint> for Checkpoint {
    fn from(c: AuditCheckpoint) -> Self {
        let AuditCheckpoint {
            tenant,
            seq,
            hash,
            at_us,
            key_id,
            signature,
        } = c;
        Self {
            tenant,
            seq,
            hash,
            at_us,
            key_id,
            signature,
        }
    }
}

/// Where a background job is in its life: `pending -> running -> completed`, or on failure
/// `running -> retry_wait -> running ...` until its attempts run out (`failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its first run.
    Pending,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Failed an attempt; waits for `run_at` before the next one.
    RetryWait,
    /// Done.
    Completed,
    /// Failed its last attempt.
    Failed,
    /// Its worker stopped holding it after the last attempt.
    Abandoned,
    /// Cancelled before it ran to an end.
    Cancelled,
}

impl JobState {
    /// The stable name (`retry_wait`).
    pub fn as_str(self) -> &'static str {
        trustbox_store::JobState::from(self).as_str()
    }

    /// Whether the job has ended (no transition leaves this state).
    pub fn is_final(self) -> bool {
        trustbox_store::JobState::from(self).is_final()
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<trustbox_store::JobState> for JobState {
    fn from(s: trustbox_store::JobState) -> Self {
        use trustbox_store::JobState as S;
        match s {
            S::Pending => Self::Pending,
            S::Running => Self::Running,
            S::RetryWait => Self::RetryWait,
            S::Completed => Self::Completed,
            S::Failed => Self::Failed,
            S::Abandoned => Self::Abandoned,
            S::Cancelled => Self::Cancelled,
        }
    }
}

impl From<JobState> for trustbox_store::JobState {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Pending => Self::Pending,
            JobState::Running => Self::Running,
            JobState::RetryWait => Self::RetryWait,
            JobState::Completed => Self::Completed,
            JobState::Failed => Self::Failed,
            JobState::Abandoned => Self::Abandoned,
            JobState::Cancelled => Self::Cancelled,
        }
    }
}

/// Which of the tenant's jobs to list, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs older than this one (keyset cursor).
    pub before: Option<JobId>,
    /// Page size.
    pub limit: u32,
}

impl From<&JobQuery> for JobFilter {
    fn from(q: &JobQuery) -> Self {
        let JobQuery {
            state,
            kind,
            before,
            limit,
        } = q;
        Self {
            state: state.map(Into::into),
            kind: kind.clone(),
            before: *before,
            limit: *limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_map_both_ways_and_keep_their_names() {
        for s in trustbox_store::JobState::ALL {
            let domain = JobState::from(s);
            assert_eq!(trustbox_store::JobState::from(domain), s);
            assert_eq!(domain.as_str(), s.as_str());
            assert_eq!(domain.is_final(), s.is_final());
        }
    }

    #[test]
    fn a_stored_enrollment_is_read_back_typed() {
        let id = CertificateId::generate();
        let json = serde_json::json!({
            "protocol": "api", "label": "est", "account": null, "order": "o-1",
            "transaction": null,
        })
        .to_string();
        assert_eq!(
            enrollment_of(id, Some(&json)).expect("decodes"),
            Enrollment {
                label: Some("est".into()),
                order: Some("o-1".into()),
                ..Enrollment::default()
            }
        );
        assert!(enrollment_of(id, None).expect("none").is_empty());
        assert!(enrollment_of(id, Some("{not json")).is_err());
    }
}
