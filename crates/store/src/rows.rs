//! The rules a stored row follows whichever engine and binder writes it: how a certificate
//! is encoded into its columns, how its SANs are normalised into the SAN index, and how
//! audit events are linked onto a tenant's chain. Both the `sqlx` path
//! (`trustbox-store-sql`) and the SQLite group-commit writer (`rusqlite`) bind these values
//! to these statement texts; neither computes a column, a SAN value or a hash of its own.
//!
//! Statement texts use `$1`, `$2` ... placeholders, which both engines bind by position
//! (SQLite numbers named parameters in order of first appearance). The multi-row prefixes
//! (`INSERT_*S`) end where a builder appends `VALUES (...), (...)`.
//!
//! Nothing here does I/O.

use std::borrow::Cow;

use trustbox_types::{RevocationReason, TenantId};

use crate::{event_hash, CertificateRecord, NewAuditEvent, RevokedEntry, StoreError};

/// One statement parameter, in the column types both engines share. `Opt*` keep the type of
/// a NULL (PostgreSQL binds typed NULLs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlValue<'a> {
    /// `BIGINT` / `INTEGER`.
    Int(i64),
    /// A nullable `BIGINT` / `INTEGER`.
    OptInt(Option<i64>),
    /// `TEXT`.
    Text(&'a str),
    /// A nullable `TEXT`.
    OptText(Option<&'a str>),
    /// `BYTEA` / `BLOB`.
    Blob(&'a [u8]),
    /// `BOOLEAN` (PostgreSQL) / `INTEGER` 0 or 1 (SQLite).
    Bool(bool),
}

/// A fetched row read by column position, whichever driver fetched it; the decoders of
/// stored records ([`crate::acme_rows`]) take one, so every engine decodes a row the same way.
pub trait RowReader {
    /// A `TEXT` column.
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// A `BIGINT` / `INTEGER` column.
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// A nullable `BIGINT` / `INTEGER` column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A `BOOLEAN` column (an `INTEGER` 0 or 1 on SQLite).
    fn boolean(&self, i: usize) -> Result<bool, StoreError>;
    /// A `BYTEA` / `BLOB` column.
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError>;
}

/// Decodes a [`CERTIFICATE_COLUMNS`] row.
pub fn certificate(r: &dyn RowReader) -> Result<CertificateRecord, StoreError> {
    let status = r.text(10)?;
    let shard = r.int(18)?;
    Ok(CertificateRecord {
        id: decode("certificate id", &r.text(0)?)?,
        tenant: decode("tenant id", &r.text(1)?)?,
        issuer: decode("issuer id", &r.text(2)?)?,
        serial: r.text(3)?,
        fingerprint: r.text(4)?,
        common_name: r.opt_text(5)?,
        sans: serde_json::from_str(&r.text(6)?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        key_algorithm: decode("key algorithm", &r.text(7)?)?,
        not_before: r.int(8)?,
        not_after: r.int(9)?,
        status: trustbox_types::CertificateStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
        revoked_at: r.opt_int(11)?,
        revocation_reason: r
            .opt_text(12)?
            .map(|s| decode::<RevocationReason>("reason", &s))
            .transpose()?,
        profile: r.text(13)?,
        source: r.text(14)?,
        der: r.blob(15)?,
        created_at: r.int(16)?,
        invalidity_date: r.opt_int(17)?,
        crl_shard: u32::try_from(shard)
            .map_err(|_| StoreError::Corrupt(format!("shard number {shard}")))?,
        enrollment: r.opt_text(19)?,
        idempotency_key: r.opt_text(20)?,
        replaces: r
            .opt_text(21)?
            .map(|s| decode("certificate id", &s))
            .transpose()?,
    })
}

/// Decodes a stored id or enum, reporting corruption rather than panicking.
pub fn decode<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} {s:?}")))
}

// ---- certificates

macro_rules! certificate_columns {
    () => {
        "id, tenant_id, issuer_id, serial, fingerprint, common_name, sans, key_algorithm, \
         not_before, not_after, status, revoked_at, revocation_reason, profile, source, der, \
         created_at, invalidity_date, crl_shard, enrollment, idempotency_key, replaces"
    };
}

/// The columns of `certificates`, in the order [`CertificateRow::values`] binds them (also
/// the select list every certificate read decodes).
pub const CERTIFICATE_COLUMNS: &str = certificate_columns!();

/// How many columns [`CERTIFICATE_COLUMNS`] names.
pub const CERTIFICATE_COLUMN_COUNT: usize = 22;

/// The multi-row certificate insert, up to its `VALUES`.
pub const INSERT_CERTIFICATES: &str =
    concat!("INSERT INTO certificates (", certificate_columns!(), ") ");

/// The single-row certificate insert; parameters are [`CertificateRow::values`].
pub const INSERT_CERTIFICATE: &str = concat!(
    "INSERT INTO certificates (",
    certificate_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22)"
);

/// The multi-row SAN index insert, up to its `VALUES`.
pub const INSERT_CERTIFICATE_SANS: &str =
    "INSERT INTO certificate_sans (tenant_id, certificate_id, value) ";

/// The single-row SAN index insert; parameters are one of [`CertificateRow::san_rows`].
pub const INSERT_CERTIFICATE_SAN: &str =
    "INSERT INTO certificate_sans (tenant_id, certificate_id, value) VALUES ($1, $2, $3)";

/// The live revoked entries of one CRL shard (served by the covering partial index
/// `certificates_revoked`). Parameters: tenant, issuer, shard, now. Columns in the order
/// [`revoked_entry`] takes them.
pub const REVOKED_FOR_CRL: &str = "SELECT serial, revoked_at, revocation_reason, invalidity_date \
     FROM certificates WHERE tenant_id = $1 AND issuer_id = $2 AND crl_shard = $3 \
     AND status = 'revoked' AND not_after > $4";

/// A SAN value as the SAN index stores it and a lookup compares it: ASCII-lowercased
/// (DNS names are case-insensitive). Borrows when the value is lowercase already.
pub fn normalise_san_value(value: &str) -> Cow<'_, str> {
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(value.to_ascii_lowercase())
    } else {
        Cow::Borrowed(value)
    }
}

/// The SAN index values of a certificate's SANs (`type:value`): each value without its
/// type, normalised ([`normalise_san_value`]), sorted, without duplicates.
pub fn san_index_values(sans: &[String]) -> Vec<Cow<'_, str>> {
    let mut values: Vec<Cow<'_, str>> = sans
        .iter()
        .map(|s| normalise_san_value(s.split_once(':').map_or(s.as_str(), |(_, v)| v)))
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// A certificate encoded for its `certificates` row and its SAN index rows.
#[derive(Debug)]
pub struct CertificateRow<'a> {
    cert: &'a CertificateRecord,
    id: String,
    tenant: String,
    issuer: String,
    sans: String,
    replaces: Option<String>,
    san_index: Vec<Cow<'a, str>>,
}

impl<'a> CertificateRow<'a> {
    /// Encodes `cert`.
    pub fn new(cert: &'a CertificateRecord) -> Result<Self, StoreError> {
        Ok(Self {
            cert,
            id: cert.id.to_string(),
            tenant: cert.tenant.to_string(),
            issuer: cert.issuer.to_string(),
            sans: serde_json::to_string(&cert.sans)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            replaces: cert.replaces.map(|r| r.to_string()),
            san_index: san_index_values(&cert.sans),
        })
    }

    /// The certificate's tenant.
    pub fn tenant(&self) -> TenantId {
        self.cert.tenant
    }

    /// The row's values, in [`CERTIFICATE_COLUMNS`] order.
    pub fn values(&self) -> [SqlValue<'_>; CERTIFICATE_COLUMN_COUNT] {
        let c = self.cert;
        [
            SqlValue::Text(&self.id),
            SqlValue::Text(&self.tenant),
            SqlValue::Text(&self.issuer),
            SqlValue::Text(&c.serial),
            SqlValue::Text(&c.fingerprint),
            SqlValue::OptText(c.common_name.as_deref()),
            SqlValue::Text(&self.sans),
            SqlValue::Text(c.key_algorithm.as_str()),
            SqlValue::Int(c.not_before),
            SqlValue::Int(c.not_after),
            SqlValue::Text(c.status.as_str()),
            SqlValue::OptInt(c.revoked_at),
            SqlValue::OptText(c.revocation_reason.map(|r| r.as_str())),
            SqlValue::Text(&c.profile),
            SqlValue::Text(&c.source),
            SqlValue::Blob(&c.der),
            SqlValue::Int(c.created_at),
            SqlValue::OptInt(c.invalidity_date),
            SqlValue::Int(i64::from(c.crl_shard)),
            SqlValue::OptText(c.enrollment.as_deref()),
            SqlValue::OptText(c.idempotency_key.as_deref()),
            SqlValue::OptText(self.replaces.as_deref()),
        ]
    }

    /// The certificate's SAN index rows (tenant, certificate id, value), one per distinct
    /// normalised value ([`san_index_values`]).
    pub fn san_rows(&self) -> impl Iterator<Item = [SqlValue<'_>; 3]> + '_ {
        self.san_index.iter().map(|v| {
            [
                SqlValue::Text(&self.tenant),
                SqlValue::Text(&self.id),
                SqlValue::Text(v),
            ]
        })
    }
}

/// A row of [`REVOKED_FOR_CRL`] as a CRL lists it (a revocation without a time, which the
/// schema does not allow for a revoked row, lists as 0).
pub fn revoked_entry(
    serial: String,
    revoked_at: Option<i64>,
    reason: Option<&str>,
    invalidity_date: Option<i64>,
) -> Result<RevokedEntry, StoreError> {
    Ok(RevokedEntry {
        serial,
        revoked_at: revoked_at.unwrap_or(0),
        reason: reason
            .map(|s| decode::<RevocationReason>("reason", s))
            .transpose()?,
        invalidity_date,
    })
}

// ---- the audit chain

/// A tenant's chain head: the newest event's sequence number and hash. Parameter: tenant.
/// PostgreSQL appends ` FOR UPDATE` (replicas append one at a time); SQLite's write
/// transaction holds the database lock already.
pub const SELECT_AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1";

/// Moves a chain head; parameters are [`ChainLinks::head_values`].
pub const UPDATE_AUDIT_HEAD: &str =
    "UPDATE audit_heads SET seq = $1, hash = $2 WHERE tenant_id = $3";

macro_rules! audit_event_columns {
    () => {
        "tenant_id, seq, at_us, actor, action, resource, outcome, details, prev_hash, hash"
    };
}

/// The multi-row audit event insert, up to its `VALUES`.
pub const INSERT_AUDIT_EVENTS: &str =
    concat!("INSERT INTO audit_events (", audit_event_columns!(), ") ");

/// The single-row audit event insert; parameters are one of [`ChainLinks::rows`].
pub const INSERT_AUDIT_EVENT: &str = concat!(
    "INSERT INTO audit_events (",
    audit_event_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);

/// The tenants whose chains `events` extend, in the order a writer appends to (and locks)
/// them: ascending, so two writers always lock heads in the same order and cannot deadlock.
pub fn chain_order(events: &[&NewAuditEvent]) -> Vec<TenantId> {
    let mut tenants: Vec<TenantId> = events.iter().map(|e| e.tenant).collect();
    tenants.sort_unstable();
    tenants.dedup();
    tenants
}

/// The links the events of one tenant add to its chain: each event's sequence number, the
/// hash it continues from and its own hash ([`event_hash`]), in the order given.
#[derive(Debug)]
pub struct ChainLinks<'e> {
    tenant: String,
    head_seq: i64,
    head_hash: String,
    events: Vec<&'e NewAuditEvent>,
    hashes: Vec<String>,
}

impl<'e> ChainLinks<'e> {
    /// Links the events of `events` that belong to `tenant` (any others are left for their
    /// own chains) onto the head `(head_seq, head_hash)` read, locked, in the transaction
    /// that will store them.
    pub fn new(
        tenant: TenantId,
        head_seq: i64,
        head_hash: String,
        events: &[&'e NewAuditEvent],
    ) -> Self {
        let events: Vec<&NewAuditEvent> = events
            .iter()
            .copied()
            .filter(|e| e.tenant == tenant)
            .collect();
        let mut hashes: Vec<String> = Vec::with_capacity(events.len());
        for (seq, e) in (head_seq + 1..).zip(&events) {
            let prev = hashes.last().unwrap_or(&head_hash);
            let hash = event_hash(
                prev,
                seq,
                tenant,
                e.at_us,
                &e.actor,
                &e.action,
                &e.resource,
                &e.outcome,
                &e.details,
            );
            hashes.push(hash);
        }
        Self {
            tenant: tenant.to_string(),
            head_seq,
            head_hash,
            events,
            hashes,
        }
    }

    /// How many events are linked.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is linked (none belonged to the tenant).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The `audit_events` rows, in chain order; each is [`INSERT_AUDIT_EVENT`]'s parameters.
    pub fn rows(&self) -> impl Iterator<Item = [SqlValue<'_>; 10]> + '_ {
        let prevs = std::iter::once(&self.head_hash).chain(&self.hashes);
        (self.head_seq + 1..)
            .zip(&self.events)
            .zip(prevs.zip(&self.hashes))
            .map(|((seq, e), (prev, hash))| {
                [
                    SqlValue::Text(&self.tenant),
                    SqlValue::Int(seq),
                    SqlValue::Int(e.at_us),
                    SqlValue::Text(&e.actor),
                    SqlValue::Text(&e.action),
                    SqlValue::Text(&e.resource),
                    SqlValue::Text(&e.outcome),
                    SqlValue::Text(&e.details),
                    SqlValue::Text(prev),
                    SqlValue::Text(hash),
                ]
            })
    }

    /// The head after these events: the last one's sequence number and hash (the old head
    /// when none was linked).
    pub fn head(&self) -> (i64, &str) {
        let seq = self.head_seq + i64::try_from(self.hashes.len()).unwrap_or(i64::MAX);
        (seq, self.hashes.last().unwrap_or(&self.head_hash))
    }

    /// [`UPDATE_AUDIT_HEAD`]'s parameters: the new head and the tenant.
    pub fn head_values(&self) -> [SqlValue<'_>; 3] {
        let (seq, hash) = self.head();
        [
            SqlValue::Int(seq),
            SqlValue::Text(hash),
            SqlValue::Text(&self.tenant),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{verify_events, AuditEvent, GENESIS_HASH};
    use trustbox_types::{CertificateId, CertificateStatus, IssuerId, KeyAlgorithm};

    fn certificate() -> CertificateRecord {
        CertificateRecord {
            id: CertificateId::generate(),
            tenant: TenantId::generate(),
            issuer: IssuerId::generate(),
            serial: "0a1b".into(),
            fingerprint: "fp".into(),
            common_name: None,
            sans: vec![
                "dns:WWW.Example.com".into(),
                "dns:www.example.com".into(),
                "ip:2001:DB8::1".into(),
                "email:Ops@Example.com".into(),
            ],
            key_algorithm: KeyAlgorithm::EcdsaP256,
            not_before: 10,
            not_after: 20,
            status: CertificateStatus::Revoked,
            revoked_at: Some(15),
            revocation_reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
            crl_shard: 3,
            profile: "tls-server@1".into(),
            source: "api".into(),
            der: vec![0x30, 0x00],
            created_at: 11,
            enrollment: None,
            idempotency_key: None,
            replaces: None,
        }
    }

    /// The `$n` placeholders of a statement, in order of appearance.
    fn placeholders(sql: &str) -> Vec<usize> {
        sql.split('$')
            .skip(1)
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().expect("a numbered placeholder")
            })
            .collect()
    }

    fn event(tenant: TenantId, action: &str, at_us: i64) -> NewAuditEvent {
        NewAuditEvent {
            tenant,
            at_us,
            actor: "system".into(),
            action: action.into(),
            resource: "r".into(),
            outcome: "success".into(),
            details: "{}".into(),
        }
    }

    /// The stored event a row of [`ChainLinks::rows`] becomes.
    fn stored(tenant: TenantId, row: &[SqlValue<'_>; 10]) -> AuditEvent {
        let text = |v: &SqlValue<'_>| match v {
            SqlValue::Text(s) => s.to_string(),
            other => panic!("text expected, got {other:?}"),
        };
        let int = |v: &SqlValue<'_>| match v {
            SqlValue::Int(i) => *i,
            other => panic!("integer expected, got {other:?}"),
        };
        assert_eq!(text(&row[0]), tenant.to_string());
        AuditEvent {
            seq: int(&row[1]),
            tenant,
            at_us: int(&row[2]),
            actor: text(&row[3]),
            action: text(&row[4]),
            resource: text(&row[5]),
            outcome: text(&row[6]),
            details: text(&row[7]),
            prev_hash: text(&row[8]),
            hash: text(&row[9]),
        }
    }

    #[test]
    fn san_values_lose_their_type_and_case_and_repeat_once() {
        let sans: Vec<String> = certificate().sans;
        assert_eq!(
            san_index_values(&sans),
            ["2001:db8::1", "ops@example.com", "www.example.com"]
        );
        let bare = vec![
            "no-type.example".to_owned(),
            "uri:https://a.example/x".into(),
        ];
        assert_eq!(
            san_index_values(&bare),
            ["https://a.example/x", "no-type.example"]
        );
        assert!(san_index_values(&[]).is_empty());
    }

    #[test]
    fn normalising_a_lowercase_value_does_not_allocate() {
        assert!(matches!(
            normalise_san_value("www.example.com"),
            Cow::Borrowed("www.example.com")
        ));
        assert_eq!(normalise_san_value("WwW.Example.COM"), "www.example.com");
    }

    #[test]
    fn certificate_values_follow_the_column_list() {
        let c = certificate();
        let row = CertificateRow::new(&c).expect("encode");
        let columns: Vec<&str> = CERTIFICATE_COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(columns.len(), CERTIFICATE_COLUMN_COUNT);
        let values = row.values();
        let by_column = |name: &str| {
            let at = columns.iter().position(|c| *c == name).expect(name);
            values[at]
        };
        let (id, tenant, issuer) = (c.id.to_string(), c.tenant.to_string(), c.issuer.to_string());
        let sans = serde_json::to_string(&c.sans).expect("json");
        for (column, expected) in [
            ("id", SqlValue::Text(&id)),
            ("tenant_id", SqlValue::Text(&tenant)),
            ("issuer_id", SqlValue::Text(&issuer)),
            ("serial", SqlValue::Text("0a1b")),
            ("fingerprint", SqlValue::Text("fp")),
            ("common_name", SqlValue::OptText(None)),
            ("sans", SqlValue::Text(&sans)),
            (
                "key_algorithm",
                SqlValue::Text(KeyAlgorithm::EcdsaP256.as_str()),
            ),
            ("not_before", SqlValue::Int(10)),
            ("not_after", SqlValue::Int(20)),
            ("status", SqlValue::Text("revoked")),
            ("revoked_at", SqlValue::OptInt(Some(15))),
            (
                "revocation_reason",
                SqlValue::OptText(Some(RevocationReason::KeyCompromise.as_str())),
            ),
            ("profile", SqlValue::Text("tls-server@1")),
            ("source", SqlValue::Text("api")),
            ("der", SqlValue::Blob(&[0x30, 0x00])),
            ("created_at", SqlValue::Int(11)),
            ("invalidity_date", SqlValue::OptInt(None)),
            ("crl_shard", SqlValue::Int(3)),
        ] {
            assert_eq!(by_column(column), expected, "{column}");
        }
        assert_eq!(row.tenant(), c.tenant);
        let san_rows: Vec<_> = row.san_rows().collect();
        assert_eq!(san_rows.len(), 3);
        assert_eq!(
            san_rows[2],
            [
                SqlValue::Text(&tenant),
                SqlValue::Text(&id),
                SqlValue::Text("www.example.com")
            ]
        );
    }

    #[test]
    fn statements_number_one_placeholder_per_value() {
        let numbered = |n: usize| (1..=n).collect::<Vec<_>>();
        assert_eq!(
            placeholders(INSERT_CERTIFICATE),
            numbered(CERTIFICATE_COLUMN_COUNT)
        );
        assert!(INSERT_CERTIFICATE.starts_with(INSERT_CERTIFICATES));
        assert_eq!(placeholders(INSERT_CERTIFICATE_SAN), numbered(3));
        assert!(INSERT_CERTIFICATE_SAN.starts_with(INSERT_CERTIFICATE_SANS));
        assert_eq!(placeholders(INSERT_AUDIT_EVENT), numbered(10));
        assert!(INSERT_AUDIT_EVENT.starts_with(INSERT_AUDIT_EVENTS));
        assert_eq!(placeholders(UPDATE_AUDIT_HEAD), numbered(3));
        assert_eq!(placeholders(SELECT_AUDIT_HEAD), numbered(1));
        assert_eq!(placeholders(REVOKED_FOR_CRL), numbered(4));
        for prefix in [
            INSERT_CERTIFICATES,
            INSERT_CERTIFICATE_SANS,
            INSERT_AUDIT_EVENTS,
        ] {
            assert!(
                placeholders(prefix).is_empty() && prefix.ends_with(") "),
                "{prefix}"
            );
        }
    }

    #[test]
    fn links_continue_the_head_and_verify_as_a_chain() {
        let (a, b) = (TenantId::generate(), TenantId::generate());
        let events = [
            event(a, "x.one", 1),
            event(b, "y.one", 2),
            event(a, "x.two", 3),
            event(a, "x.three", 4),
        ];
        let refs: Vec<&NewAuditEvent> = events.iter().collect();

        let first = ChainLinks::new(a, 0, GENESIS_HASH.into(), &refs);
        assert_eq!(first.len(), 3, "only tenant a's events go on a's chain");
        let stored_a: Vec<AuditEvent> = first.rows().map(|r| stored(a, &r)).collect();
        assert_eq!(
            stored_a
                .iter()
                .map(|e| e.action.as_str())
                .collect::<Vec<_>>(),
            ["x.one", "x.two", "x.three"]
        );
        let (seq, hash) = verify_events(0, GENESIS_HASH.into(), &stored_a).expect("a chain");
        assert_eq!(first.head(), (seq, hash.as_str()));
        assert_eq!(seq, 3);
        assert_eq!(
            first.head_values(),
            [
                SqlValue::Int(3),
                SqlValue::Text(&hash),
                SqlValue::Text(&a.to_string())
            ]
        );

        // A later batch continues from the stored head, not from genesis.
        let later = [event(a, "x.four", 5)];
        let later: Vec<&NewAuditEvent> = later.iter().collect();
        let next = ChainLinks::new(a, seq, hash.clone(), &later);
        let stored_next: Vec<AuditEvent> = next.rows().map(|r| stored(a, &r)).collect();
        assert_eq!((stored_next[0].seq, &stored_next[0].prev_hash), (4, &hash));
        verify_events(seq, hash, &stored_next).expect("continues the chain");

        let none = ChainLinks::new(b, 7, "h".into(), &later);
        assert!(none.is_empty());
        assert_eq!(none.rows().count(), 0);
        assert_eq!(
            none.head(),
            (7, "h"),
            "no event leaves the head where it was"
        );
    }

    #[test]
    fn chains_are_appended_in_ascending_tenant_order() {
        let (a, b) = (TenantId::generate(), TenantId::generate());
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let events = [event(hi, "x", 1), event(lo, "y", 2), event(hi, "z", 3)];
        let refs: Vec<&NewAuditEvent> = events.iter().collect();
        assert_eq!(chain_order(&refs), [lo, hi]);
    }

    #[test]
    fn revoked_entries_decode_their_reason() {
        let e = revoked_entry("0a".into(), Some(5), Some("keyCompromise"), Some(4));
        let reason = RevocationReason::KeyCompromise;
        assert_eq!(
            e.map(|e| (e.revoked_at, e.reason, e.invalidity_date)).ok(),
            Some((5, Some(reason), Some(4)))
        );
        assert!(matches!(
            revoked_entry("0a".into(), None, Some("no-such-reason"), None),
            Err(StoreError::Corrupt(_))
        ));
    }
}
