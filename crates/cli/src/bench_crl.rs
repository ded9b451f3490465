//! `trustbox bench crl`: revoke a large number of certificates and publish one shard CRL
//! listing them all, measuring what the CRL publisher costs (wall time, peak RSS, CRL bytes).
//!
//! Runs in-process against a throwaway data directory: the authority is opened and
//! bootstrapped exactly as `trustbox up` does, `--count` already-revoked certificates of the
//! issuing CA are bulk-inserted through [`Store::commit_issuances`] (each with its audit
//! event), one more valid certificate is revoked through [`Store::revoke_certificate`] (the
//! API path, which marks the shard due), and then [`trustbox_authority::Revocation::publish_due_crls`] is timed.
//!
//! Memory: VmHWM is process-wide and monotonic, so before publishing the peak is reset
//! (`/proc/self/clear_refs` = 5, Linux ≥ 4.0) and the reading after publishing is the peak
//! of the publish itself (its baseline, the RSS left after inserting, is reported beside it).
//! If the reset is refused the reading covers the whole run and is labelled so.
//!
//! After the measurement, the CRL is fetched, parsed and checked (exactly the revoked set,
//! signature by the issuing CA), and the publish is split into its parts by repeating them
//! one at a time: the store read ([`Store::revoked_for_crl`]), the conversion to CRL entries,
//! and encoding plus signing with a throwaway CA of the same key algorithm. The RSS growth
//! of each repeated step tracks live memory only with `MIMALLOC_PURGE_DELAY=0`: by default
//! mimalloc keeps pages freed by the publish for reuse, so the repeats grow RSS less.

use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;
use time::OffsetDateTime;
use trustbox_authority::BootstrapOptions;
use trustbox_crypto::{Kek, KeyStore, SealedKeyStore};
use trustbox_server::ServerConfig;
use trustbox_store::{
    CertificateFilter, CertificateRecord, IssuanceRecord, NewAuditEvent, RevokedEntry, Store,
};
use trustbox_types::{
    CertificateId, CertificateStatus, IssuerId, KeyAlgorithm, RevocationReason, Serial, TenantId,
};
use trustbox_x509::{pem, CaParams, CrlEntry, CrlSpec, IssuingCa};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// Arguments of `trustbox bench crl`.
#[derive(Args, Debug)]
pub struct CrlArgs {
    /// Revoked certificates to insert; the CRL lists these plus one revoked through the
    /// store's revocation path.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// An empty PostgreSQL database (postgres://...); SQLite in a temporary directory when
    /// unset.
    #[arg(long)]
    database: Option<String>,
    /// Certificates per `commit_issuances` transaction while inserting.
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    /// Write the CRL (`crl.der`), the issuing CA (`issuer.pem`) and the root (`root.pem`)
    /// into this directory, for checks with other tools (`openssl crl`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// The acceptance targets of one shard CRL holding all revocations.
const TARGET_SECONDS: f64 = 5.0;
/// Peak RSS target of publishing, MB.
const TARGET_RSS_MB: f64 = 500.0;

/// Reasons cycled through the inserted revocations; keyCompromise ones carry an
/// invalidityDate a day before the revocation.
const REASONS: [RevocationReason; 8] = [
    RevocationReason::Superseded,
    RevocationReason::KeyCompromise,
    RevocationReason::Unspecified,
    RevocationReason::CessationOfOperation,
    RevocationReason::AffiliationChanged,
    RevocationReason::Superseded,
    RevocationReason::PrivilegeWithdrawn,
    RevocationReason::KeyCompromise,
];

/// Figures of one run.
#[derive(Debug, serde::Serialize)]
pub struct CrlFigures {
    /// `sqlite` or `postgres`.
    pub engine: &'static str,
    /// Entries in the CRL.
    pub entries: u64,
    /// Seconds spent bulk-inserting.
    pub insert_seconds: f64,
    /// Inserted certificates per second.
    pub insert_per_second: f64,
    /// Wall time of `publish_due_crls` (read, convert, encode, sign, store).
    pub publish_seconds: f64,
    /// A repeated `revoked_for_crl` alone.
    pub fetch_seconds: f64,
    /// Converting the fetched rows to CRL entries (serial hex parsing).
    pub convert_seconds: f64,
    /// rcgen encoding plus signing of the same entries (throwaway CA, same algorithm).
    pub encode_sign_seconds: f64,
    /// Peak RSS growth during the repeated fetch, MB.
    pub fetch_peak_mb: f64,
    /// Peak RSS growth above the pre-fetch RSS during conversion (fetched rows still held), MB.
    pub convert_peak_mb: f64,
    /// Peak RSS growth during encoding and signing (above the RSS holding the entries), MB.
    pub encode_sign_peak_mb: f64,
    /// RSS when publishing started, MB.
    pub rss_before_publish_mb: f64,
    /// Peak RSS of the insert phase (and bootstrap), MB.
    pub peak_rss_insert_mb: f64,
    /// Peak RSS while publishing, MB (of the whole run when `peak_reset` is false).
    pub peak_rss_publish_mb: f64,
    /// Whether the peak was reset before publishing.
    pub peak_reset: bool,
    /// Size of the published CRL (DER), bytes.
    pub crl_bytes: usize,
    /// Entries with reasonCode keyCompromise.
    pub key_compromise: u64,
    /// Entries with an invalidityDate.
    pub with_invalidity_date: u64,
    /// Whether the CRL is signed by the issuing CA and lists exactly the revoked set.
    pub verified: bool,
    /// Whether publishing met both targets (< 5 s, < 500 MB peak RSS).
    pub meets_targets: bool,
}

/// Runs `trustbox bench crl`.
pub async fn run(args: CrlArgs) -> anyhow::Result<()> {
    let CrlArgs {
        count,
        database,
        batch,
        out,
        json,
    } = args;
    let engine = if database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let cfg = ServerConfig {
        data_dir: dir.path().join("data"),
        database,
        // As a deployed server: CRLs carry their issuingDistributionPoint URL.
        public_url: Some("http://127.0.0.1:8080".into()),
        ..ServerConfig::default()
    };
    let services = trustbox_server::open_services(&cfg).await?;
    let boot = services
        .administration
        .bootstrap(&BootstrapOptions::default())
        .await
        .context("bootstrap")?;
    let tenant = boot.tenant.id;
    let store = trustbox_server::open_bulk_store(&cfg).await?;
    let issuer = store
        .list_issuers(tenant)
        .await?
        .into_iter()
        .find(|i| i.parent.is_some())
        .context("the default tenant has no issuing CA")?;
    let existing = store
        .list_certificates(
            tenant,
            &CertificateFilter {
                issuer: Some(issuer.id),
                limit: 1,
                ..CertificateFilter::default()
            },
        )
        .await?;
    anyhow::ensure!(
        existing.is_empty(),
        "the issuing CA already has certificates: --database must name an empty database"
    );

    // Insert.
    let batch = batch.max(1);
    let started = Instant::now();
    let mut done = 0u64;
    let mut next_report = count / 10;
    while done < count {
        let n = (count - done).min(batch as u64);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let records: Vec<IssuanceRecord> = (done..done + n)
            .map(|i| revoked_record(tenant, issuer.id, i, now))
            .collect();
        store
            .commit_issuances(&records)
            .await
            .with_context(|| format!("inserting certificates {done}..{}", done + n))?;
        done += n;
        if done >= next_report || done == count {
            let s = started.elapsed().as_secs_f64();
            eprintln!(
                "inserted {done}/{count} revoked certificates in {s:.1}s ({:.0}/s)",
                done as f64 / s.max(f64::MIN_POSITIVE)
            );
            next_report = done + count / 10;
        }
    }
    let insert_seconds = started.elapsed().as_secs_f64();
    revoke_one_through_store(store.as_ref(), tenant, issuer.id).await?;
    let expected = count + 1;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let due = store.crl_shards_due(tenant, now).await?;
    anyhow::ensure!(
        due.iter().any(|s| s.issuer == issuer.id && s.shard == 0),
        "shard 0 of the issuing CA is not due for publication"
    );

    // Publish, measured.
    let peak_rss_insert_mb = proc_status_mb("VmHWM").unwrap_or(0.0);
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before_publish_mb = reset_peak();
    eprintln!("publishing the CRL of {expected} revocations ...");
    let started = Instant::now();
    let published = services.revocation.publish_due_crls().await?;
    let publish_seconds = started.elapsed().as_secs_f64();
    let peak_rss_publish_mb = proc_status_mb("VmHWM").unwrap_or(0.0);
    anyhow::ensure!(published >= 1, "publish_due_crls published nothing");
    let crl = services.revocation.crl(issuer.id, 0).await?;
    let crl_bytes = crl.der.len();

    // Split: the same steps again, one at a time.
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let base_mb = reset_peak();
    let started = Instant::now();
    let rows = store.revoked_for_crl(tenant, issuer.id, 0, now).await?;
    let fetch_seconds = started.elapsed().as_secs_f64();
    let fetch_peak_mb = proc_status_mb("VmHWM").unwrap_or(0.0) - base_mb;
    reset_peak();
    let started = Instant::now();
    let entries = crl_entries(rows)?;
    let convert_seconds = started.elapsed().as_secs_f64();
    let convert_peak_mb = proc_status_mb("VmHWM").unwrap_or(0.0) - base_mb;
    let mut want: Vec<Vec<u8>> = entries.iter().map(|e| e.serial.clone()).collect();
    want.sort_unstable();
    let bench_ca = bench_ca(dir.path())?;
    let spec = CrlSpec {
        crl_number: 1,
        this_update: OffsetDateTime::now_utc(),
        next_update: OffsetDateTime::now_utc() + time::Duration::hours(24),
        distribution_point: Some(format!("http://127.0.0.1:8080/crl/{}/0.crl", issuer.id)),
    };
    let base_sign_mb = reset_peak();
    let started = Instant::now();
    let signed = tokio::task::spawn_blocking(move || bench_ca.sign_crl(&spec, entries)).await??;
    let encode_sign_seconds = started.elapsed().as_secs_f64();
    let sign_peak_mb = proc_status_mb("VmHWM").unwrap_or(0.0) - base_sign_mb;
    drop(signed);

    // Verify.
    let check = verify_crl(&crl.der, &issuer.certificate_der, want)?;
    anyhow::ensure!(
        check.entries == expected,
        "the CRL lists {} entries, expected {expected}",
        check.entries
    );
    let want_kc = (0..count)
        .filter(|i| reason_of(*i) == RevocationReason::KeyCompromise)
        .count() as u64
        + 1;
    anyhow::ensure!(
        check.key_compromise == want_kc && check.with_invalidity_date == want_kc,
        "the CRL has {} keyCompromise entries and {} invalidity dates, expected {want_kc} of each",
        check.key_compromise,
        check.with_invalidity_date
    );
    if let Some(out) = &out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let write = |name: &str, bytes: &[u8]| {
            let p = out.join(name);
            std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
        };
        write("crl.der", &crl.der)?;
        write(
            "issuer.pem",
            pem::encode("CERTIFICATE", &issuer.certificate_der).as_bytes(),
        )?;
        write("root.pem", boot.root_pem.as_bytes())?;
    }

    let f = CrlFigures {
        engine,
        entries: check.entries,
        insert_seconds,
        insert_per_second: count as f64 / insert_seconds.max(f64::MIN_POSITIVE),
        publish_seconds,
        fetch_seconds,
        convert_seconds,
        encode_sign_seconds,
        fetch_peak_mb,
        convert_peak_mb,
        encode_sign_peak_mb: sign_peak_mb,
        rss_before_publish_mb,
        peak_rss_insert_mb,
        peak_rss_publish_mb,
        peak_reset,
        crl_bytes,
        key_compromise: check.key_compromise,
        with_invalidity_date: check.with_invalidity_date,
        verified: true,
        meets_targets: publish_seconds < TARGET_SECONDS && peak_rss_publish_mb < TARGET_RSS_MB,
    };
    if json {
        println!("{}", serde_json::to_string(&f)?);
    } else {
        print_text(&f);
    }
    Ok(())
}

fn print_text(f: &CrlFigures) {
    println!(
        "engine {}: inserted {} revoked certificates in {:.1}s ({:.0}/s)",
        f.engine,
        f.entries.saturating_sub(1),
        f.insert_seconds,
        f.insert_per_second
    );
    println!(
        "published one shard CRL of {} entries in {:.2}s: {} bytes ({:.1} MB)",
        f.entries,
        f.publish_seconds,
        f.crl_bytes,
        f.crl_bytes as f64 / 1e6
    );
    println!(
        "split (repeated one at a time): fetch {:.2}s, convert {:.2}s, encode+sign {:.2}s; publish minus these {:+.2}s (store write, scheduling, noise)",
        f.fetch_seconds,
        f.convert_seconds,
        f.encode_sign_seconds,
        f.publish_seconds - f.fetch_seconds - f.convert_seconds - f.encode_sign_seconds
    );
    println!(
        "split RSS growth (live memory only with MIMALLOC_PURGE_DELAY=0): fetch {:+.0} MB, convert {:+.0} MB (rows still held), encode+sign {:+.0} MB (entries held)",
        f.fetch_peak_mb, f.convert_peak_mb, f.encode_sign_peak_mb
    );
    println!(
        "RSS: {:.0} MB when publishing started, peak {:.0} MB while publishing{} (insert phase peak {:.0} MB)",
        f.rss_before_publish_mb,
        f.peak_rss_publish_mb,
        if f.peak_reset {
            ""
        } else {
            " [peak NOT reset: covers the whole run]"
        },
        f.peak_rss_insert_mb
    );
    println!(
        "verified: signed by the issuing CA, exactly the revoked set ({} keyCompromise, {} with invalidityDate)",
        f.key_compromise, f.with_invalidity_date
    );
    println!(
        "targets (< {TARGET_SECONDS} s, < {TARGET_RSS_MB} MB): {}",
        if f.meets_targets { "met" } else { "MISSED" }
    );
}

/// The reason of inserted certificate `i`.
fn reason_of(i: u64) -> RevocationReason {
    REASONS[(i % REASONS.len() as u64) as usize]
}

/// Inserted certificate `i`: revoked a little before `now`, valid for a year, shard 0.
fn revoked_record(tenant: TenantId, issuer: IssuerId, i: u64, now: i64) -> IssuanceRecord {
    let reason = reason_of(i);
    let revoked_at = now - 60 - (i % 86_400) as i64;
    let invalidity_date =
        (reason == RevocationReason::KeyCompromise).then_some(revoked_at - 86_400);
    let mut rec = record(tenant, issuer, now);
    rec.certificate.status = CertificateStatus::Revoked;
    rec.certificate.revoked_at = Some(revoked_at);
    rec.certificate.revocation_reason = Some(reason);
    rec.certificate.invalidity_date = invalidity_date;
    rec
}

/// A valid certificate row with a random serial and a placeholder DER, and its audit event.
fn record(tenant: TenantId, issuer: IssuerId, now: i64) -> IssuanceRecord {
    let id = CertificateId::generate();
    let serial = Serial::random().to_hex();
    let details = format!(r#"{{"serial":"{serial}","source":"bench-crl"}}"#);
    IssuanceRecord {
        certificate: CertificateRecord {
            id,
            tenant,
            issuer,
            fingerprint: format!("{serial}{serial}"),
            serial,
            common_name: None,
            sans: Vec::new(),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            not_before: now - 86_400,
            not_after: now + 365 * 86_400,
            status: CertificateStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            invalidity_date: None,
            crl_shard: 0,
            profile: "tls-server@1".into(),
            source: "bench-crl".into(),
            der: vec![0x30, 0x00],
            created_at: now,
            enrollment: None,
            idempotency_key: None,
            replaces: None,
        },
        event: NewAuditEvent {
            tenant,
            at_us: now * 1_000_000,
            actor: "system:bench-crl".into(),
            action: "certificate.issue".into(),
            resource: format!("certificate:{id}"),
            outcome: "success".into(),
            details,
        },
    }
}

/// Inserts one valid certificate and revokes it (keyCompromise) through the store's
/// revocation path, which bumps the shard's revision as an API revocation does.
async fn revoke_one_through_store(
    store: &dyn Store,
    tenant: TenantId,
    issuer: IssuerId,
) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let rec = record(tenant, issuer, now);
    let id = rec.certificate.id;
    store.commit_issuances(std::slice::from_ref(&rec)).await?;
    let event = NewAuditEvent {
        action: "certificate.revoke".into(),
        details: r#"{"reason":"keyCompromise"}"#.into(),
        ..rec.event
    };
    store
        .revoke_certificate(
            tenant,
            id,
            now,
            RevocationReason::KeyCompromise,
            Some(now - 3600),
            &event,
        )
        .await?;
    Ok(())
}

/// Stored rows as the CRL lists them (what the publisher does before signing).
fn crl_entries(rows: Vec<RevokedEntry>) -> anyhow::Result<Vec<CrlEntry>> {
    rows.into_iter()
        .map(|e| {
            let serial = e
                .serial
                .parse::<Serial>()
                .with_context(|| format!("stored serial {:?}", e.serial))?;
            Ok(CrlEntry {
                serial: serial.as_bytes().to_vec(),
                revoked_at: e.revoked_at,
                reason: e.reason,
                invalidity_date: e.invalidity_date,
            })
        })
        .collect()
}

/// A throwaway CA with the issuing CA's default key algorithm, to time encoding and
/// signing on their own.
fn bench_ca(dir: &Path) -> anyhow::Result<IssuingCa> {
    let keys = SealedKeyStore::new(&Kek::load_or_create(&dir.join("bench-kek.key"))?)?;
    let (_, signer) = keys.generate(
        KeyAlgorithm::EcdsaP256,
        &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
    )?;
    let now = OffsetDateTime::now_utc();
    Ok(IssuingCa::new_root(
        &CaParams {
            common_name: "TrustBox CRL bench CA".into(),
            organization: None,
            path_len: Some(0),
            not_before: now,
            not_after: now + time::Duration::days(30),
        },
        signer,
    )?)
}

/// What the published CRL holds.
struct CrlCheck {
    entries: u64,
    key_compromise: u64,
    with_invalidity_date: u64,
}

/// Parses the CRL, checks its signature against the issuing CA's key and that its serials
/// are exactly `want` (sorted).
fn verify_crl(der: &[u8], issuer_der: &[u8], want: Vec<Vec<u8>>) -> anyhow::Result<CrlCheck> {
    let (_, ca) = X509Certificate::from_der(issuer_der)
        .map_err(|e| anyhow::anyhow!("issuing CA certificate: {e}"))?;
    let (rest, crl) = CertificateRevocationList::from_der(der)
        .map_err(|e| anyhow::anyhow!("the published CRL does not parse: {e}"))?;
    anyhow::ensure!(rest.is_empty(), "trailing bytes after the CRL");
    crl.verify_signature(ca.public_key())
        .map_err(|e| anyhow::anyhow!("the CRL signature does not verify: {e}"))?;
    let mut check = CrlCheck {
        entries: 0,
        key_compromise: 0,
        with_invalidity_date: 0,
    };
    let mut got = Vec::with_capacity(want.len());
    for r in crl.iter_revoked_certificates() {
        check.entries += 1;
        let serial = Serial::from_be_bytes(r.raw_serial())
            .map_err(|e| anyhow::anyhow!("CRL entry serial: {e}"))?;
        got.push(serial.as_bytes().to_vec());
        if r.reason_code().is_some_and(|(_, c)| c.0 == 1) {
            check.key_compromise += 1;
        }
        if r.invalidity_date().is_some() {
            check.with_invalidity_date += 1;
        }
    }
    got.sort_unstable();
    anyhow::ensure!(
        got == want,
        "the CRL's serials differ from the revoked certificates in the store"
    );
    Ok(check)
}

/// Resets the process's peak RSS to its current RSS (`/proc/self/clear_refs` = 5) and
/// returns that RSS in MB (0 when unknown).
fn reset_peak() -> f64 {
    // Best effort: if refused, later peaks include earlier phases (reported as such).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    proc_status_mb("VmRSS").unwrap_or(0.0)
}

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`) in MB; `None` off Linux.
fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_mix_includes_key_compromise_with_invalidity_date() {
        let tenant = TenantId::generate();
        let issuer = IssuerId::generate();
        let recs: Vec<_> = (0..8)
            .map(|i| revoked_record(tenant, issuer, i, 1_800_000_000))
            .collect();
        for r in &recs {
            let c = &r.certificate;
            assert_eq!(c.status, CertificateStatus::Revoked);
            assert_eq!(c.serial.len(), 32);
            assert_eq!(
                c.invalidity_date.is_some(),
                c.revocation_reason == Some(RevocationReason::KeyCompromise)
            );
            assert_eq!(r.event.resource, format!("certificate:{}", c.id));
        }
        assert_eq!(
            recs.iter()
                .filter(|r| r.certificate.revocation_reason
                    == Some(RevocationReason::KeyCompromise))
                .count(),
            2
        );
    }

    #[test]
    fn reads_its_own_rss() {
        if cfg!(target_os = "linux") {
            assert!(proc_status_mb("VmRSS").is_some_and(|mb| mb > 0.0));
        }
    }
}
