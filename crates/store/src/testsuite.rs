//! The engine-independent test suite: every engine runs [`run_all`] against itself.
//!
//! Each check creates its own tenants, so one store instance can run the whole suite.

use crate::*;
use trustbox_types::{
    CertificateId, CertificateStatus, IssuerId, KeyAlgorithm, ProfileId, RevocationReason, Scope,
    ScopeSet, TenantId, TokenId,
};

fn event(tenant: TenantId, action: &str) -> NewAuditEvent {
    NewAuditEvent {
        tenant,
        at_us: 1_700_000_000_000_000,
        actor: "system".into(),
        action: action.into(),
        resource: "test".into(),
        outcome: "success".into(),
        details: "{}".into(),
    }
}

async fn tenant(store: &dyn Store, name: &str) -> TenantId {
    let id = TenantId::generate();
    let rec = TenantRecord {
        id,
        name: format!("{name}-{id}"),
        created_at: 1,
    };
    store
        .create_tenant(&rec, &event(id, "tenant.create"))
        .await
        .expect("create tenant");
    id
}

fn issuer_record(tenant: TenantId, name: &str) -> IssuerRecord {
    IssuerRecord {
        id: IssuerId::generate(),
        tenant,
        name: name.into(),
        parent: None,
        certificate_der: vec![0x30, 0x00],
        common_name: "Test CA".into(),
        key_backend: "sealed-v1".into(),
        key_algorithm: KeyAlgorithm::EcdsaP256,
        key_wrapped: vec![1, 2, 3],
        not_before: 0,
        not_after: 2_000_000_000,
        created_at: 1,
        crl_shards: 2,
        ocsp_enabled: true,
    }
}

fn cert(
    tenant: TenantId,
    issuer: IssuerId,
    serial: &str,
    sans: &[&str],
    not_after: i64,
) -> IssuanceRecord {
    let id = CertificateId::generate();
    IssuanceRecord {
        certificate: CertificateRecord {
            id,
            tenant,
            issuer,
            serial: serial.into(),
            fingerprint: format!("fp-{serial}"),
            common_name: None,
            sans: sans.iter().map(|s| s.to_string()).collect(),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            not_before: 0,
            not_after,
            status: CertificateStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            invalidity_date: None,
            crl_shard: 1,
            profile: "tls-server@1".into(),
            source: "api".into(),
            der: vec![0x30, 0x00],
            created_at: 1,
            enrollment: None,
            idempotency_key: None,
            replaces: None,
        },
        event: NewAuditEvent {
            resource: format!("certificate:{id}"),
            ..event(tenant, "certificate.issue")
        },
    }
}

/// The first hundred certificates of `tenant`.
async fn certificates_of(store: &dyn Store, tenant: TenantId) -> Vec<CertificateRecord> {
    store
        .list_certificates(
            tenant,
            &CertificateFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list")
}

async fn verify_chain(store: &dyn Store, tenant: TenantId) -> Result<i64, ChainBreak> {
    let (mut seq, mut prev) = (0, GENESIS_HASH.to_owned());
    loop {
        let page = store.list_audit(tenant, seq, 2).await.expect("list audit");
        if page.is_empty() {
            return Ok(seq);
        }
        (seq, prev) = verify_events(seq, prev, &page)?;
    }
}

/// Runs every check against `store` (which must be migrated).
pub async fn run_all(store: &dyn Store) {
    tenants(store).await;
    tokens(store).await;
    issuers_and_profiles(store).await;
    certificates(store).await;
    revocation(store).await;
    crl_shards(store).await;
    ocsp_responders_and_leases(store).await;
    audit_chain(store).await;
    cross_tenant_references(store).await;
    audit_keys_checkpoints_and_reseal(store).await;
    change_feed(store).await;
    jobs_and_outbox(store).await;
    acme_accounts_and_nonces(store).await;
    acme_orders_and_bindings(store).await;
    leased_jobs(store).await;
    store.migrate().await.expect("migrations are idempotent");
}

async fn tenants(store: &dyn Store) {
    let id = tenant(store, "t").await;
    let got = store.tenant(id).await.expect("get").expect("exists");
    assert_eq!(
        store.tenant_by_name(&got.name).await.expect("by name"),
        Some(got.clone())
    );
    let dup = TenantRecord {
        id: TenantId::generate(),
        ..got
    };
    let e = store
        .create_tenant(&dup, &event(dup.id, "tenant.create"))
        .await
        .expect_err("duplicate name");
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert!(
        store.tenant(dup.id).await.expect("get").is_none(),
        "failed create leaves nothing"
    );
    assert!(store
        .list_tenants()
        .await
        .expect("list")
        .iter()
        .any(|t| t.id == id));
}

async fn tokens(store: &dyn Store) {
    let a = tenant(store, "tok-a").await;
    let b = tenant(store, "tok-b").await;
    let tok = TokenRecord {
        id: TokenId::generate(),
        tenant: a,
        name: "ci".into(),
        scopes: ScopeSet::new([Scope::CertsIssue, Scope::CertsRead]),
        hash: format!("hash-{}", TokenId::generate()),
        created_at: 5,
        revoked_at: None,
        expires_at: Some(1_900_000_000),
    };
    store
        .insert_token(&tok, &event(a, "token.create"))
        .await
        .expect("insert");
    assert_eq!(
        store.token_by_hash(&tok.hash).await.expect("lookup"),
        Some(tok.clone())
    );
    assert_eq!(store.list_tokens(a).await.expect("list").len(), 1);
    assert!(
        store.list_tokens(b).await.expect("list").is_empty(),
        "tenant b sees none of a's tokens"
    );
    let e = store
        .revoke_token(b, tok.id, 9, &event(b, "token.revoke"))
        .await
        .expect_err("cross-tenant");
    assert!(matches!(e, StoreError::NotFound));
    store
        .revoke_token(a, tok.id, 9, &event(a, "token.revoke"))
        .await
        .expect("revoke");
    assert_eq!(
        store
            .token_by_hash(&tok.hash)
            .await
            .expect("lookup")
            .and_then(|t| t.revoked_at),
        Some(9)
    );
    let e = store
        .revoke_token(a, tok.id, 10, &event(a, "token.revoke"))
        .await
        .expect_err("twice");
    assert!(matches!(e, StoreError::NotFound));
}

async fn issuers_and_profiles(store: &dyn Store) {
    let a = tenant(store, "iss-a").await;
    let b = tenant(store, "iss-b").await;
    let i = issuer_record(a, "root");
    store
        .insert_issuer(&i, None, &event(a, "issuer.create"))
        .await
        .expect("insert");
    assert_eq!(store.issuer(a, i.id).await.expect("get"), Some(i.clone()));
    assert_eq!(
        store.issuer_by_name(a, "root").await.expect("get"),
        Some(i.clone())
    );
    assert!(
        store.issuer(b, i.id).await.expect("get").is_none(),
        "cross-tenant read is empty"
    );
    let e = store
        .insert_issuer(&issuer_record(a, "root"), None, &event(a, "issuer.create"))
        .await
        .expect_err("dup");
    assert!(matches!(e, StoreError::Conflict(_)));
    assert_eq!(store.list_issuers(a).await.expect("list").len(), 1);

    for version in 1..=3 {
        let p = ProfileRecord {
            id: ProfileId::generate(),
            tenant: a,
            name: "web".into(),
            version,
            document: format!("{{\"v\":{version}}}"),
            created_at: version,
        };
        store
            .insert_profile(&p, &event(a, "profile.update"))
            .await
            .expect("insert");
    }
    let latest = store.profile(a, "web").await.expect("get").expect("exists");
    assert_eq!(latest.version, 3);
    assert_eq!(store.list_profiles(a).await.expect("list").len(), 1);
    assert!(store.profile(b, "web").await.expect("get").is_none());
}

async fn certificates(store: &dyn Store) {
    let a = tenant(store, "cert-a").await;
    let b = tenant(store, "cert-b").await;
    let i1 = issuer_record(a, "one");
    let i2 = issuer_record(a, "two");
    store
        .insert_issuer(&i1, None, &event(a, "issuer.create"))
        .await
        .expect("insert");
    store
        .insert_issuer(&i2, None, &event(a, "issuer.create"))
        .await
        .expect("insert");
    let batch: Vec<IssuanceRecord> = (0..10)
        .map(|n| {
            let issuer = if n % 2 == 0 { i1.id } else { i2.id };
            cert(
                a,
                issuer,
                &format!("{n:02x}"),
                &[&format!("dns:host{n}.example.com"), "ip:10.0.0.1"],
                1000 + n,
            )
        })
        .collect();
    store.commit_issuances(&batch).await.expect("commit batch");
    let first = &batch[0].certificate;
    assert_eq!(
        store.certificate(a, first.id).await.expect("get"),
        Some(first.clone())
    );
    assert!(
        store.certificate(b, first.id).await.expect("get").is_none(),
        "cross-tenant read is empty"
    );

    let all =
        |f: CertificateFilter| async move { store.list_certificates(a, &f).await.expect("list") };
    let page1 = all(CertificateFilter {
        limit: 4,
        ..Default::default()
    })
    .await;
    assert_eq!(page1.len(), 4);
    let page2 = all(CertificateFilter {
        limit: 4,
        after: Some(page1[3].id),
        ..Default::default()
    })
    .await;
    assert_eq!(page2.len(), 4);
    assert!(page2[0].id > page1[3].id, "keyset pagination moves forward");
    let page3 = all(CertificateFilter {
        limit: 4,
        after: Some(page2[3].id),
        ..Default::default()
    })
    .await;
    assert_eq!(page3.len(), 2);
    assert_eq!(
        all(CertificateFilter {
            limit: 100,
            issuer: Some(i1.id),
            ..Default::default()
        })
        .await
        .len(),
        5
    );
    let by_san = all(CertificateFilter {
        limit: 100,
        san: Some("HOST3.example.com".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_san.len(), 1);
    assert_eq!(by_san[0].serial, "03");
    assert_eq!(
        all(CertificateFilter {
            limit: 100,
            san: Some("10.0.0.1".into()),
            ..Default::default()
        })
        .await
        .len(),
        10
    );
    assert_eq!(
        all(CertificateFilter {
            limit: 100,
            expires_before: Some(1003),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert!(certificates_of(store, b).await.is_empty());

    // A batch with a duplicate serial commits nothing.
    let dup = vec![
        cert(a, i1.id, "aa", &["dns:x.example.com"], 5),
        cert(a, i1.id, "00", &["dns:y.example.com"], 5),
    ];
    let e = store
        .commit_issuances(&dup)
        .await
        .expect_err("duplicate serial");
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert!(
        store
            .certificate(a, dup[0].certificate.id)
            .await
            .expect("get")
            .is_none(),
        "batch is atomic"
    );
    assert_eq!(
        all(CertificateFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .len(),
        10
    );
}

async fn revocation(store: &dyn Store) {
    let a = tenant(store, "rev-a").await;
    let b = tenant(store, "rev-b").await;
    let i = issuer_record(a, "ca");
    store
        .insert_issuer(&i, None, &event(a, "issuer.create"))
        .await
        .expect("insert");
    let rec = cert(a, i.id, "0102", &["dns:r.example.com"], 5000);
    store
        .commit_issuances(std::slice::from_ref(&rec))
        .await
        .expect("commit");
    let id = rec.certificate.id;
    let e = store
        .revoke_certificate(
            b,
            id,
            7,
            RevocationReason::KeyCompromise,
            None,
            &event(b, "certificate.revoke"),
        )
        .await
        .expect_err("cross-tenant");
    assert!(matches!(e, StoreError::NotFound));
    let out = store
        .revoke_certificate(
            a,
            id,
            7,
            RevocationReason::KeyCompromise,
            Some(6),
            &event(a, "certificate.revoke"),
        )
        .await
        .expect("revoke");
    let RevokeOutcome::Revoked(c) = out else {
        panic!("expected Revoked, got {out:?}")
    };
    assert_eq!(
        (c.status, c.revoked_at, c.revocation_reason),
        (
            CertificateStatus::Revoked,
            Some(7),
            Some(RevocationReason::KeyCompromise)
        )
    );
    let again = store
        .revoke_certificate(
            a,
            id,
            8,
            RevocationReason::Superseded,
            None,
            &event(a, "certificate.revoke"),
        )
        .await
        .expect("idempotent");
    assert!(matches!(again, RevokeOutcome::AlreadyRevoked(ref c) if c.revoked_at == Some(7)));
    let listed = store
        .list_certificates(
            a,
            &CertificateFilter {
                limit: 10,
                status: Some(CertificateStatus::Revoked),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
}

async fn crl_shards(store: &dyn Store) {
    let a = tenant(store, "crl-a").await;
    let b = tenant(store, "crl-b").await;
    let i = issuer_record(a, "ca");
    store
        .insert_issuer(&i, None, &event(a, "issuer.create"))
        .await
        .expect("insert");
    // Shard rows exist from creation, unpublished, so both are due.
    let due = store.crl_shards_due(a, 100).await.expect("due");
    assert_eq!(due.iter().map(|d| d.shard).collect::<Vec<_>>(), vec![0, 1]);
    assert!(store.crl_shards_due(b, 100).await.expect("due").is_empty());
    assert_eq!(store.crl_der(a, i.id, 0).await.expect("der"), None);
    // Live revoked entries of shard 1 only; expired ones are dropped.
    let live = cert(a, i.id, "0a", &[], 5000);
    let expired = cert(a, i.id, "0b", &[], 50);
    let valid = cert(a, i.id, "0c", &[], 5000);
    let mut other_shard = cert(a, i.id, "0d", &[], 5000);
    other_shard.certificate.crl_shard = 0;
    store
        .commit_issuances(&[
            live.clone(),
            expired.clone(),
            valid.clone(),
            other_shard.clone(),
        ])
        .await
        .expect("commit");
    for (rec, reason) in [
        (&live, RevocationReason::KeyCompromise),
        (&expired, RevocationReason::Superseded),
        (&other_shard, RevocationReason::Unspecified),
    ] {
        store
            .revoke_certificate(
                a,
                rec.certificate.id,
                40,
                reason,
                None,
                &event(a, "certificate.revoke"),
            )
            .await
            .expect("revoke");
    }
    let entries = store
        .revoked_for_crl(a, i.id, 1, 100)
        .await
        .expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].serial, "0a");
    assert_eq!(entries[0].reason, Some(RevocationReason::KeyCompromise));
    assert!(store
        .revoked_for_crl(b, i.id, 1, 100)
        .await
        .expect("entries")
        .is_empty());
    let mut since = store.revoked_since(a, 40).await.expect("since");
    since.sort();
    assert_eq!(since.len(), 3);
    assert!(store.revoked_since(a, 41).await.expect("since").is_empty());
    assert!(store.revoked_since(b, 0).await.expect("since").is_empty());
    let found = store
        .certificate_by_serial(a, i.id, "0a")
        .await
        .expect("by serial")
        .expect("found");
    assert_eq!(found.id, live.certificate.id);
    assert!(store
        .certificate_by_serial(b, i.id, "0a")
        .await
        .expect("by serial")
        .is_none());
    // Publishing: numbers only grow; revision recorded; a newer revocation makes it due again.
    let state = store
        .crl_shard(a, i.id, 1)
        .await
        .expect("shard")
        .expect("exists");
    assert!(state.revision > state.published_revision);
    let publication = CrlPublication {
        revision: state.revision,
        crl_number: 1,
        this_update: 100,
        next_update: 200,
        refresh_at: 150,
        der: vec![0x30, 0x01, 0x00],
    };
    assert!(store
        .publish_crl(a, i.id, 1, &publication)
        .await
        .expect("publish"));
    assert!(!store
        .publish_crl(a, i.id, 1, &publication)
        .await
        .expect("stale number refused"));
    assert!(!store
        .publish_crl(
            b,
            i.id,
            1,
            &CrlPublication {
                crl_number: 9,
                ..publication.clone()
            }
        )
        .await
        .expect("cross-tenant publish does nothing"));
    assert_eq!(
        store.crl_der(a, i.id, 1).await.expect("der"),
        Some(vec![0x30, 0x01, 0x00])
    );
    let due: Vec<u32> = store
        .crl_shards_due(a, 120)
        .await
        .expect("due")
        .iter()
        .filter(|d| d.issuer == i.id)
        .map(|d| d.shard)
        .collect();
    assert_eq!(due, vec![0], "shard 1 is fresh until its refresh time");
    assert_eq!(
        store
            .crl_shards_due(a, 150)
            .await
            .expect("due")
            .iter()
            .filter(|d| d.issuer == i.id)
            .count(),
        2
    );
    store
        .revoke_certificate(
            a,
            valid.certificate.id,
            121,
            RevocationReason::Superseded,
            None,
            &event(a, "certificate.revoke"),
        )
        .await
        .expect("revoke");
    assert!(store
        .crl_shards_due(a, 120)
        .await
        .expect("due")
        .iter()
        .any(|d| d.issuer == i.id && d.shard == 1));
    // ensure_crl_shards is idempotent and creates only what is missing.
    store.ensure_crl_shards(a, i.id, 3).await.expect("ensure");
    store.ensure_crl_shards(a, i.id, 3).await.expect("ensure");
    assert!(store.crl_shard(a, i.id, 2).await.expect("shard").is_some());
    assert!(store.crl_shard(b, i.id, 2).await.expect("shard").is_none());
    // Public lookup finds the issuer (and so its tenant) by id alone.
    let public = store
        .issuer_public(i.id)
        .await
        .expect("public")
        .expect("found");
    assert_eq!((public.tenant, public.crl_shards), (a, 2));
    store
        .set_issuer_ocsp(a, i.id, false, &event(a, "issuer.update"))
        .await
        .expect("disable ocsp");
    assert!(
        !store
            .issuer(a, i.id)
            .await
            .expect("issuer")
            .expect("found")
            .ocsp_enabled
    );
    assert!(matches!(
        store
            .set_issuer_ocsp(b, i.id, true, &event(b, "issuer.update"))
            .await,
        Err(StoreError::NotFound)
    ));
    verify_chain(store, a).await.expect("chain intact");
}

async fn ocsp_responders_and_leases(store: &dyn Store) {
    let a = tenant(store, "ocsp-a").await;
    let b = tenant(store, "ocsp-b").await;
    let i = issuer_record(a, "ca");
    store
        .insert_issuer(&i, None, &event(a, "issuer.create"))
        .await
        .expect("insert");
    let responder = |not_after: i64| OcspResponderRecord {
        id: uuid::Uuid::new_v4(),
        tenant: a,
        issuer: i.id,
        certificate_der: vec![0x30, 0x00],
        key_backend: "sealed-v1".into(),
        key_algorithm: KeyAlgorithm::EcdsaP256,
        key_wrapped: vec![9],
        not_before: 0,
        not_after,
        created_at: 1,
    };
    assert!(store.ocsp_responder(a, i.id).await.expect("none").is_none());
    let old = responder(100);
    let new = responder(200);
    for r in [&new, &old] {
        store
            .insert_ocsp_responder(r, None, &event(a, "ocsp.responder.issue"))
            .await
            .expect("insert");
    }
    let current = store
        .ocsp_responder(a, i.id)
        .await
        .expect("current")
        .expect("found");
    assert_eq!(current.id, new.id, "the one that expires last");
    assert!(store
        .ocsp_responder(b, i.id)
        .await
        .expect("other")
        .is_none());
    // Leases: one holder at a time until expiry; the holder renews.
    let name = format!("test-lease-{}", uuid::Uuid::new_v4());
    assert!(store.try_lease(&name, "r1", 1000, 10).await.expect("take"));
    assert!(!store.try_lease(&name, "r2", 1005, 10).await.expect("held"));
    assert!(store.try_lease(&name, "r1", 1005, 10).await.expect("renew"));
    assert!(!store
        .try_lease(&name, "r2", 1014, 10)
        .await
        .expect("renewed"));
    assert!(store
        .try_lease(&name, "r2", 1016, 10)
        .await
        .expect("expired"));
}

async fn audit_chain(store: &dyn Store) {
    let a = tenant(store, "audit-a").await;
    let events: Vec<NewAuditEvent> = (0..5).map(|n| event(a, &format!("test.{n}"))).collect();
    store.append_audit(&events).await.expect("append");
    assert_eq!(
        verify_chain(store, a).await.expect("chain verifies"),
        6,
        "tenant.create + 5"
    );
    let page = store.list_audit(a, 2, 2).await.expect("page");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    let other = tenant(store, "audit-b").await;
    assert_eq!(
        store.list_audit(other, 0, 100).await.expect("list").len(),
        1,
        "chains are per tenant"
    );
}

/// Composite foreign keys: no row of one tenant can reference another tenant's issuer or
/// certificate, whatever the caller passes.
async fn cross_tenant_references(store: &dyn Store) {
    let a = tenant(store, "owner").await;
    let b = tenant(store, "intruder").await;
    let a_root = issuer_record(a, "a-root");
    store
        .insert_issuer(&a_root, None, &event(a, "issuer.create"))
        .await
        .expect("a's root");
    // b's certificate signed "by" a's issuer
    let forged = cert(
        b,
        a_root.id,
        "0badc0de",
        &["dns:forged.example"],
        2_000_000_000,
    );
    assert!(
        store.commit_issuances(&[forged]).await.is_err(),
        "a certificate of tenant b naming tenant a's issuer must be refused by the store"
    );
    // b's intermediate under a's root
    let child = IssuerRecord {
        parent: Some(a_root.id),
        ..issuer_record(b, "b-under-a")
    };
    assert!(
        store
            .insert_issuer(&child, None, &event(b, "issuer.create"))
            .await
            .is_err(),
        "an issuer of tenant b under tenant a's root must be refused by the store"
    );
    // b's OCSP responder for a's issuer
    let responder = OcspResponderRecord {
        id: uuid::Uuid::now_v7(),
        tenant: b,
        issuer: a_root.id,
        certificate_der: vec![0x30, 0],
        key_backend: "sealed-v1".into(),
        key_algorithm: KeyAlgorithm::EcdsaP256,
        key_wrapped: vec![1],
        not_before: 0,
        not_after: 9,
        created_at: 1,
    };
    assert!(
        store
            .insert_ocsp_responder(&responder, None, &event(b, "ocsp.responder.issue"))
            .await
            .is_err(),
        "a responder of tenant b for tenant a's issuer must be refused by the store"
    );
    // nothing of a's is visible to b, and b's chain recorded none of the refused writes
    assert!(store.issuer(b, a_root.id).await.expect("read").is_none());
    assert!(certificates_of(store, b).await.is_empty());
    assert_eq!(verify_chain(store, b).await.expect("b's chain"), 1);
}

/// Audit keys and checkpoints are the tenant's own; the head is the newest event; a sealed
/// key can be replaced in place only by its tenant.
async fn audit_keys_checkpoints_and_reseal(store: &dyn Store) {
    let a = tenant(store, "ck-a").await;
    let b = tenant(store, "ck-b").await;
    let head = store.audit_head(a).await.expect("head").expect("exists");
    assert_eq!(head.0, 1);
    let events = store.list_audit(a, 0, 10).await.expect("events");
    assert_eq!(head.1, events[0].hash);
    let key = AuditKeyRecord {
        id: uuid::Uuid::now_v7(),
        tenant: a,
        public_key_der: vec![0x30, 0],
        key_backend: "sealed-v2".into(),
        key_algorithm: KeyAlgorithm::EcdsaP256,
        key_wrapped: vec![1, 2],
        created_at: 3,
    };
    store
        .insert_audit_key(&key, &event(a, "audit.key.create"))
        .await
        .expect("audit key");
    assert_eq!(
        store.list_audit_keys(a).await.expect("keys"),
        vec![key.clone()]
    );
    assert!(store.list_audit_keys(b).await.expect("keys").is_empty());
    let head = store.audit_head(a).await.expect("head").expect("exists");
    assert_eq!(head.0, 2, "creating the key is itself an event");
    let cp = AuditCheckpoint {
        tenant: a,
        seq: head.0,
        hash: head.1.clone(),
        at_us: 7,
        key_id: key.id,
        signature: vec![9; 64],
    };
    store
        .insert_audit_checkpoint(&cp)
        .await
        .expect("checkpoint");
    assert!(matches!(
        store.insert_audit_checkpoint(&cp).await,
        Err(StoreError::Conflict(_))
    ));
    // a checkpoint of b under a's key is refused by the composite key
    let foreign = AuditCheckpoint {
        tenant: b,
        ..cp.clone()
    };
    assert!(store.insert_audit_checkpoint(&foreign).await.is_err());
    assert_eq!(
        store.list_audit_checkpoints(a, 0, 10).await.expect("list"),
        vec![cp.clone()]
    );
    assert!(store
        .list_audit_checkpoints(a, head.0, 10)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_audit_checkpoints(b, 0, 10)
        .await
        .expect("list")
        .is_empty());
    // re-sealing in place, own tenant only
    let id = key.id.to_string();
    assert!(matches!(
        store
            .reseal_key(b, SealedKeyTable::AuditKeys, &id, "sealed-v3", &[7])
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .reseal_key(a, SealedKeyTable::AuditKeys, &id, "sealed-v3", &[7])
        .await
        .expect("reseal");
    let keys = store.list_audit_keys(a).await.expect("keys");
    assert_eq!(
        (keys[0].key_backend.as_str(), keys[0].key_wrapped.as_slice()),
        ("sealed-v3", [7u8].as_slice())
    );
    let issuer = issuer_record(a, "ck-root");
    store
        .insert_issuer(&issuer, None, &event(a, "issuer.create"))
        .await
        .expect("issuer");
    store
        .reseal_key(
            a,
            SealedKeyTable::Issuers,
            &issuer.id.to_string(),
            "sealed-v2",
            &[5],
        )
        .await
        .expect("reseal issuer");
    let got = store
        .issuer(a, issuer.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (got.key_backend.as_str(), got.key_wrapped.as_slice()),
        ("sealed-v2", [5u8].as_slice())
    );
    assert!(store
        .list_ocsp_responders(b)
        .await
        .expect("list")
        .is_empty());
}

/// Revocations enter the change feed in commit order, whatever the tenant.
async fn change_feed(store: &dyn Store) {
    let a = tenant(store, "feed-a").await;
    let b = tenant(store, "feed-b").await;
    let start = store.latest_change().await.expect("latest");
    let issuer = issuer_record(a, "feed-root");
    store
        .insert_issuer(&issuer, None, &event(a, "issuer.create"))
        .await
        .expect("issuer");
    let c = cert(a, issuer.id, "00aa11", &["dns:feed.example"], 2_000_000_000);
    store
        .commit_issuances(std::slice::from_ref(&c))
        .await
        .expect("commit");
    store
        .revoke_certificate(
            a,
            c.certificate.id,
            5,
            RevocationReason::KeyCompromise,
            None,
            &event(a, "certificate.revoke"),
        )
        .await
        .expect("revoke");
    let tok = TokenRecord {
        id: TokenId::generate(),
        tenant: b,
        name: "t".into(),
        scopes: ScopeSet::new([Scope::CertsRead]),
        hash: format!("hash-{}", TokenId::generate()),
        created_at: 1,
        revoked_at: None,
        expires_at: None,
    };
    store
        .insert_token(&tok, &event(b, "token.create"))
        .await
        .expect("token");
    store
        .revoke_token(b, tok.id, 6, &event(b, "token.revoke"))
        .await
        .expect("revoke");
    store
        .set_issuer_ocsp(a, issuer.id, false, &event(a, "issuer.update"))
        .await
        .expect("ocsp off");
    let feed = store.changes_since(start, 100).await.expect("feed");
    let got: Vec<(TenantId, &str, String)> = feed
        .iter()
        .map(|c| (c.tenant, c.kind.as_str(), c.reference.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (a, "certificate", format!("{}:00aa11", issuer.id)),
            (b, "token", tok.id.to_string()),
            (a, "issuer", issuer.id.to_string()),
        ]
    );
    assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.latest_change().await.expect("latest"), feed[2].seq);
    assert_eq!(
        store
            .changes_since(feed[1].seq, 100)
            .await
            .expect("feed")
            .len(),
        1
    );
}

fn new_job(tenant: TenantId, kind: &str, key: &str, max_attempts: u32, run_at: i64) -> NewJob {
    NewJob {
        tenant,
        id: trustbox_types::JobId::generate(),
        kind: kind.into(),
        key: key.into(),
        payload: "{}".into(),
        max_attempts,
        run_at,
        created_at: run_at,
    }
}

async fn claimed(store: &dyn Store, holder: &str, now: i64) -> Vec<JobRecord> {
    store
        .claim_jobs(holder, now, now + 10, 10)
        .await
        .expect("claim")
}

async fn state_of(store: &dyn Store, tenant: TenantId, id: trustbox_types::JobId) -> JobRecord {
    store.job(tenant, id).await.expect("job").expect("exists")
}

/// A job stored already claimed with an ACME change (the challenge's validation): running
/// under its lease, left alone by other runners until the lease ends, then retried; a second
/// active job of the same kind and key fails its op and keeps nothing. Runs last: its claims
/// cross tenants.
async fn leased_jobs(store: &dyn Store) {
    let t = tenant(store, "jobs-leased").await;
    let lease = JobLease {
        holder: "runner-a".into(),
        until: 7060,
    };
    let leased = |job: &NewJob| AcmeOp::ChangesThenJob(vec![], job.clone(), Some(lease.clone()));
    let job = new_job(t, "test.leased", "l", 3, 7000);
    let out = store
        .apply_acme_batch(t, &[leased(&job)], 7000)
        .await
        .expect("batch");
    assert!(matches!(out[..], [AcmeOpOutcome::Applied(true)]), "{out:?}");
    let rec = state_of(store, t, job.id).await;
    assert_eq!(
        (rec.state, rec.attempts, rec.lease_holder.as_deref()),
        (JobState::Running, 1, Some("runner-a"))
    );
    assert!(
        claimed(store, "runner-b", 7030)
            .await
            .iter()
            .all(|j| j.id != job.id),
        "nobody else claims it while the lease holds"
    );
    assert!(store
        .finish_job(t, job.id, "runner-a", &JobFinish::Completed, 7031)
        .await
        .expect("finish"));
    assert_eq!(state_of(store, t, job.id).await.state, JobState::Completed);

    let lost = new_job(t, "test.leased", "m", 3, 7000);
    store
        .apply_acme_batch(t, &[leased(&lost)], 7000)
        .await
        .expect("batch");
    let again = claimed(store, "runner-b", 7061).await;
    let retried = again
        .iter()
        .find(|j| j.id == lost.id)
        .expect("retried once the lease ended");
    assert_eq!(retried.attempts, 2);

    let twin = new_job(t, "test.leased", "m", 3, 7062);
    let out = store
        .apply_acme_batch(t, &[leased(&twin)], 7062)
        .await
        .expect("batch");
    assert!(
        matches!(out[..], [AcmeOpOutcome::Failed(StoreError::Conflict(_))]),
        "{out:?}"
    );
    assert!(store.job(t, twin.id).await.expect("job").is_none());
}

async fn jobs_and_outbox(store: &dyn Store) {
    let t = tenant(store, "jobs").await;
    let other = tenant(store, "jobs-other").await;
    let a = new_job(t, "test.ok", "a", 3, 100);
    let b = new_job(t, "test.flaky", "b", 2, 100);
    let later = new_job(t, "test.ok", "later", 3, 500);
    for j in [&a, &b, &later] {
        assert!(store.enqueue_job(j).await.expect("enqueue"));
    }
    let dup = new_job(t, "test.ok", "a", 3, 100);
    assert!(
        !store.enqueue_job(&dup).await.expect("enqueue"),
        "one active job per kind and key"
    );
    assert!(store.job(t, dup.id).await.expect("job").is_none());

    assert!(
        claimed(store, "w1", 50).await.is_empty(),
        "nothing is due yet"
    );
    let mut got = claimed(store, "w1", 100).await;
    got.sort_by_key(|j| j.key.clone());
    assert_eq!(
        got.iter().map(|j| j.key.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    for j in &got {
        assert_eq!(j.state, JobState::Running);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.lease_holder.as_deref(), Some("w1"));
        assert_eq!(j.lease_until, Some(110));
    }
    assert!(
        claimed(store, "w2", 101).await.is_empty(),
        "a held job is claimed once"
    );

    // completed, by its holder only; the outbox announces it
    assert!(!store
        .finish_job(t, a.id, "w2", &JobFinish::Completed, 102)
        .await
        .expect("finish"));
    assert!(store
        .finish_job(t, a.id, "w1", &JobFinish::Completed, 102)
        .await
        .expect("finish"));
    let done = state_of(store, t, a.id).await;
    assert_eq!(
        (done.state, done.finished_at, done.lease_holder),
        (JobState::Completed, Some(102), None)
    );
    let again = new_job(t, "test.ok", "a", 3, 1000);
    assert!(
        store.enqueue_job(&again).await.expect("enqueue"),
        "an ended job frees its key"
    );

    // a failed attempt waits for its retry time
    let retry = JobFinish::Retry {
        at: 120,
        error: "flaked".into(),
    };
    assert!(store
        .finish_job(t, b.id, "w1", &retry, 103)
        .await
        .expect("finish"));
    let waiting = state_of(store, t, b.id).await;
    assert_eq!(
        (waiting.state, waiting.run_at, waiting.last_error.as_deref()),
        (JobState::RetryWait, 120, Some("flaked"))
    );
    assert!(claimed(store, "w1", 119).await.is_empty());
    let got = claimed(store, "w1", 120).await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].attempts), (b.id, 2));

    // its worker stops after the last attempt: abandoned, announced, not run again
    assert!(claimed(store, "w2", 131).await.is_empty());
    let gone = state_of(store, t, b.id).await;
    assert_eq!(
        (gone.state, gone.finished_at),
        (JobState::Abandoned, Some(131))
    );
    assert!(!store
        .finish_job(t, b.id, "w1", &JobFinish::Completed, 132)
        .await
        .expect("finish"));

    // a lapsed lease with attempts left is claimed by another worker; then it fails
    let c = new_job(t, "test.bad", "c", 3, 200);
    assert!(store.enqueue_job(&c).await.expect("enqueue"));
    assert_eq!(claimed(store, "w1", 200).await.len(), 1);
    let got = claimed(store, "w2", 211).await;
    assert_eq!(
        (got.len(), got[0].attempts, got[0].lease_holder.as_deref()),
        (1, 2, Some("w2"))
    );
    let failed = JobFinish::Failed {
        error: "broken".into(),
    };
    assert!(store
        .finish_job(t, c.id, "w2", &failed, 212)
        .await
        .expect("finish"));
    assert_eq!(state_of(store, t, c.id).await.state, JobState::Failed);

    // cancel a waiting job; not twice; not another tenant's
    assert!(matches!(
        store
            .cancel_job(other, later.id, 300, &event(other, "job.cancel"))
            .await,
        Err(StoreError::NotFound)
    ));
    let cancelled = store
        .cancel_job(t, later.id, 300, &event(t, "job.cancel"))
        .await
        .expect("cancel");
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(matches!(
        store
            .cancel_job(t, later.id, 301, &event(t, "job.cancel"))
            .await,
        Err(StoreError::Conflict(_))
    ));

    let topics: Vec<String> = store
        .list_outbox(t, 0, 100)
        .await
        .expect("outbox")
        .into_iter()
        .map(|o| o.topic)
        .collect();
    assert_eq!(
        topics,
        [
            "job.completed",
            "job.abandoned",
            "job.failed",
            "job.cancelled"
        ]
    );
    assert!(store
        .list_outbox(other, 0, 100)
        .await
        .expect("outbox")
        .is_empty());

    // listing: newest first, filters, keyset pages, tenant-scoped
    let all = store
        .list_jobs(
            t,
            &JobFilter {
                limit: 100,
                ..JobFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let completed = store
        .list_jobs(
            t,
            &JobFilter {
                state: Some(JobState::Completed),
                limit: 100,
                ..JobFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(completed.iter().map(|j| j.id).collect::<Vec<_>>(), [a.id]);
    let flaky = store
        .list_jobs(
            t,
            &JobFilter {
                kind: Some("test.flaky".into()),
                limit: 100,
                ..JobFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(flaky.iter().map(|j| j.id).collect::<Vec<_>>(), [b.id]);
    let page = store
        .list_jobs(
            t,
            &JobFilter {
                before: Some(all[1].id),
                limit: 2,
                ..JobFilter::default()
            },
        )
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|j| j.id).collect::<Vec<_>>(),
        [all[2].id, all[3].id]
    );
    assert!(store
        .list_jobs(
            other,
            &JobFilter {
                limit: 100,
                ..JobFilter::default()
            }
        )
        .await
        .expect("list")
        .is_empty());
    assert!(store.job(other, a.id).await.expect("job").is_none());

    // pruning drops ended jobs and old outbox rows, not active ones
    assert_eq!(store.prune_jobs(t, 10_000, 100).await.expect("prune"), 4);
    let left = store
        .list_jobs(
            t,
            &JobFilter {
                limit: 100,
                ..JobFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(left.iter().map(|j| j.id).collect::<Vec<_>>(), [again.id]);
    assert!(store
        .list_outbox(t, 0, 100)
        .await
        .expect("outbox")
        .is_empty());

    // claimers racing (replicas): every due job is claimed exactly once
    let race = tenant(store, "jobs-race").await;
    for i in 0..40 {
        let j = new_job(race, "test.race", &format!("r{i}"), 1, 5000);
        assert!(store.enqueue_job(&j).await.expect("enqueue"));
    }
    let claimer = |holder: &'static str| async move {
        let mut got = Vec::new();
        loop {
            let batch = store
                .claim_jobs(holder, 5000, 5010, 3)
                .await
                .expect("claim");
            if batch.is_empty() {
                return got;
            }
            // (earlier parts left a due job of another tenant: not counted)
            got.extend(batch.into_iter().filter(|j| j.tenant == race).map(|j| j.id));
        }
    };
    let (a, b, c, d) = tokio::join!(claimer("a"), claimer("b"), claimer("c"), claimer("d"));
    let mut all: Vec<_> = a.into_iter().chain(b).chain(c).chain(d).collect();
    let claimed = all.len();
    all.sort();
    all.dedup();
    assert_eq!((claimed, all.len()), (40, 40), "each job claimed once");
}

async fn acme_accounts_and_nonces(store: &dyn Store) {
    let t = tenant(store, "acme").await;
    let other = tenant(store, "acme-other").await;
    let account = AcmeAccountRecord {
        tenant: t,
        id: "acct-1".into(),
        provisioner: "default".into(),
        thumbprint: "thumb".into(),
        jwk: r#"{"kty":"EC"}"#.into(),
        status: "valid".into(),
        contact: r#"["mailto:ops@example.com"]"#.into(),
        created_at: 10,
        eab_kid: None,
    };
    store
        .insert_acme_account(&account, &event(t, "acme.account.create"))
        .await
        .expect("insert");
    let twin = AcmeAccountRecord {
        id: "acct-2".into(),
        ..account.clone()
    };
    assert!(matches!(
        store
            .insert_acme_account(&twin, &event(t, "acme.account.create"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .acme_account_by_thumbprint(t, "default", "thumb")
            .await
            .expect("read"),
        Some(account.clone())
    );
    assert_eq!(
        store.acme_account(t, "acct-1").await.expect("read"),
        Some(account.clone())
    );
    assert!(store
        .acme_account_by_thumbprint(other, "default", "thumb")
        .await
        .expect("read")
        .is_none());
    assert!(store
        .acme_account(other, "acct-1")
        .await
        .expect("read")
        .is_none());
    // the same key may register in another tenant
    let theirs = AcmeAccountRecord {
        tenant: other,
        ..account.clone()
    };
    store
        .insert_acme_account(&theirs, &event(other, "acme.account.create"))
        .await
        .expect("another tenant");

    assert!(store
        .consume_acme_nonce(t, "n1", 100, 50)
        .await
        .expect("consume"));
    assert!(
        !store
            .consume_acme_nonce(t, "n1", 100, 50)
            .await
            .expect("again"),
        "single use"
    );
    assert!(store
        .consume_acme_nonce(other, "n1", 100, 50)
        .await
        .expect("other tenant"));
    // records of expired nonces are dropped (the nonce itself is refused by then)
    assert!(store
        .consume_acme_nonce(t, "n2", 100, 200)
        .await
        .expect("consume"));
    assert!(store
        .consume_acme_nonce(t, "n1", 300, 200)
        .await
        .expect("forgotten after expiry"));
    // a batch: each fresh once, in order, also within the batch
    let batch = [
        ("b1".to_owned(), 400),
        ("n1".to_owned(), 400),
        ("b1".to_owned(), 400),
        ("b2".to_owned(), 400),
    ];
    assert_eq!(
        store
            .consume_acme_nonces(t, &batch, 200)
            .await
            .expect("batch"),
        vec![true, false, false, true]
    );
    assert_eq!(
        store
            .consume_acme_nonces(other, &batch[..1], 200)
            .await
            .expect("batch"),
        vec![true],
        "per tenant"
    );
}

async fn acme_orders_and_bindings(store: &dyn Store) {
    use crate::{
        AcmeAuthorizationRecord, AcmeChallengeRecord, AcmeEabKeyRecord, AcmeObject,
        AcmeOrderRecord, AcmeProvisionerRecord, AcmeStateChange,
    };
    let t = tenant(store, "acme-orders").await;
    let other = tenant(store, "acme-orders-other").await;
    let prov = AcmeProvisionerRecord {
        tenant: t,
        id: "prov-1".into(),
        name: "shop".into(),
        settings: "{}".into(),
        created_at: 1,
        updated_at: 1,
    };
    store
        .insert_acme_provisioner(&prov, &event(t, "acme.provisioner.create"))
        .await
        .expect("provisioner");
    let taken = AcmeProvisionerRecord {
        tenant: other,
        id: "prov-2".into(),
        ..prov.clone()
    };
    assert!(
        matches!(
            store
                .insert_acme_provisioner(&taken, &event(other, "acme.provisioner.create"))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "names are unique across tenants"
    );
    assert_eq!(
        store
            .acme_provisioner_by_name("shop")
            .await
            .expect("by name"),
        Some(prov.clone())
    );
    assert!(store
        .list_acme_provisioners(other)
        .await
        .expect("list")
        .is_empty());
    assert!(matches!(
        store
            .update_acme_provisioner(other, "shop", "{}", 2, &event(other, "x"))
            .await,
        Err(StoreError::NotFound)
    ));
    let updated = store
        .update_acme_provisioner(t, "shop", r#"{"eab_required":true}"#, 2, &event(t, "x"))
        .await
        .expect("update");
    assert_eq!(updated.settings, r#"{"eab_required":true}"#);

    // an EAB key binds exactly one account, of its own tenant and provisioner
    let key = AcmeEabKeyRecord {
        tenant: t,
        id: "kid-1".into(),
        provisioner: "shop".into(),
        label: "ci".into(),
        key_check: "sealed".into(),
        status: "active".into(),
        account_id: None,
        created_at: 3,
        used_at: None,
    };
    store
        .insert_acme_eab_key(&key, &event(t, "acme.eab.create"))
        .await
        .expect("eab");
    assert!(store
        .acme_eab_key(other, "kid-1")
        .await
        .expect("read")
        .is_none());
    let account = AcmeAccountRecord {
        tenant: t,
        id: "acct-o1".into(),
        provisioner: "shop".into(),
        thumbprint: "thumb-o1".into(),
        jwk: "{}".into(),
        status: "valid".into(),
        contact: "[]".into(),
        created_at: 4,
        eab_kid: Some("kid-1".into()),
    };
    store
        .insert_acme_account(&account, &event(t, "acme.account.create"))
        .await
        .expect("bound account");
    let used = store
        .acme_eab_key(t, "kid-1")
        .await
        .expect("read")
        .expect("key");
    assert_eq!(
        (used.status.as_str(), used.account_id.as_deref()),
        ("used", Some("acct-o1"))
    );
    let second = AcmeAccountRecord {
        id: "acct-o2".into(),
        thumbprint: "thumb-o2".into(),
        ..account.clone()
    };
    assert!(
        matches!(
            store
                .insert_acme_account(&second, &event(t, "acme.account.create"))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a used key binds no second account"
    );
    assert!(
        store
            .acme_account(t, "acct-o2")
            .await
            .expect("read")
            .is_none(),
        "and nothing of it was kept"
    );
    let revoked = store
        .revoke_acme_eab_key(t, "kid-1", &event(t, "acme.eab.revoke"))
        .await
        .expect("revoke");
    assert_eq!(revoked.status, "revoked");
    assert_eq!(
        store
            .list_acme_eab_keys(t, "shop")
            .await
            .expect("list")
            .len(),
        1
    );

    let rekeyed = store
        .update_acme_account_key(
            t,
            "acct-o1",
            "thumb-new",
            r#"{"k":1}"#,
            &event(t, "acme.account.key-change"),
        )
        .await
        .expect("key change");
    assert_eq!(rekeyed.thumbprint, "thumb-new");

    // an order with one authorization and two challenges
    let order = AcmeOrderRecord {
        tenant: t,
        id: "ord-1".into(),
        provisioner: "shop".into(),
        account_id: "acct-o1".into(),
        status: "pending".into(),
        expires_at: 1000,
        identifiers: r#"[{"type":"dns","value":"a.example"}]"#.into(),
        profile: Some("shortlived".into()),
        not_before: None,
        not_after: None,
        replaces: None,
        replaces_ari: None,
        error: None,
        certificate_id: None,
        created_at: 10,
        updated_at: 10,
    };
    let authz = AcmeAuthorizationRecord {
        tenant: t,
        id: "authz-1".into(),
        order_id: "ord-1".into(),
        identifier_type: "dns".into(),
        identifier_value: "a.example".into(),
        wildcard: false,
        status: "pending".into(),
        expires_at: 1000,
    };
    let chall = |id: &str, kind: &str| AcmeChallengeRecord {
        tenant: t,
        id: id.into(),
        authz_id: "authz-1".into(),
        kind: kind.into(),
        token: format!("tok-{id}"),
        status: "pending".into(),
        validated_at: None,
        error: None,
        updated_at: 10,
    };
    store
        .insert_acme_order(
            &order,
            std::slice::from_ref(&authz),
            &[chall("ch-1", "http-01"), chall("ch-2", "dns-01")],
        )
        .await
        .expect("order");
    assert_eq!(
        store.acme_order(t, "ord-1").await.expect("read"),
        Some(order.clone())
    );
    assert!(store
        .acme_order(other, "ord-1")
        .await
        .expect("read")
        .is_none());
    assert_eq!(
        store
            .acme_order_authorizations(t, "ord-1")
            .await
            .expect("authzs"),
        vec![authz.clone()]
    );
    assert_eq!(
        store
            .acme_authorization_challenges(t, "authz-1")
            .await
            .expect("challenges")
            .len(),
        2
    );
    assert!(store
        .acme_authorization_challenges(other, "authz-1")
        .await
        .expect("none")
        .is_empty());
    assert_eq!(
        store
            .acme_account_orders(t, "acct-o1", 0, 10)
            .await
            .expect("orders"),
        vec!["ord-1".to_owned()]
    );
    assert_eq!(
        store
            .count_acme_orders_since(t, "shop", None, 5)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        store
            .count_acme_orders_since(other, "shop", None, 5)
            .await
            .expect("count"),
        0,
        "another tenant's provisioner count"
    );
    assert_eq!(
        store
            .count_acme_orders_since(t, "shop", None, 10_000)
            .await
            .expect("count"),
        0,
        "windows before the hour are not counted"
    );
    assert_eq!(
        store
            .count_acme_orders_since(t, "shop", Some("acct-o1"), 11)
            .await
            .expect("count"),
        0
    );

    // compare-and-set: all or nothing
    let mut valid = AcmeStateChange::new(AcmeObject::Challenge, "ch-1", &["processing"], "valid");
    valid.validated_at = Some(20);
    assert!(
        !store
            .apply_acme_changes(t, &[valid.clone()], 20)
            .await
            .expect("cas"),
        "the challenge is not processing yet"
    );
    let processing =
        AcmeStateChange::new(AcmeObject::Challenge, "ch-1", &["pending"], "processing");
    assert!(!store
        .apply_acme_changes(other, std::slice::from_ref(&processing), 15)
        .await
        .expect("cas"));
    assert!(store
        .apply_acme_changes(t, &[processing], 15)
        .await
        .expect("cas"));
    let bad_order = AcmeStateChange::new(AcmeObject::Order, "ord-1", &["ready"], "processing");
    assert!(
        !store
            .apply_acme_changes(t, &[valid.clone(), bad_order], 20)
            .await
            .expect("cas"),
        "a failing change undoes the ones before it"
    );
    assert_eq!(
        store
            .acme_challenge(t, "ch-1")
            .await
            .expect("read")
            .map(|c| c.status),
        Some("processing".into())
    );
    let authz_valid =
        AcmeStateChange::new(AcmeObject::Authorization, "authz-1", &["pending"], "valid");
    let order_ready = AcmeStateChange::new(AcmeObject::Order, "ord-1", &["pending"], "ready");
    assert!(store
        .apply_acme_changes(t, &[valid, authz_valid, order_ready], 20)
        .await
        .expect("cas"));
    let ch = store
        .acme_challenge(t, "ch-1")
        .await
        .expect("read")
        .expect("challenge");
    assert_eq!((ch.status.as_str(), ch.validated_at), ("valid", Some(20)));
    let mut done = AcmeStateChange::new(AcmeObject::Order, "ord-1", &["ready"], "valid");
    done.certificate_id = Some("cert-1".into());
    assert!(store.apply_acme_changes(t, &[done], 30).await.expect("cas"));
    let o = store
        .acme_order(t, "ord-1")
        .await
        .expect("read")
        .expect("order");
    assert_eq!(
        (o.status.as_str(), o.certificate_id.as_deref(), o.updated_at),
        ("valid", Some("cert-1"), 30)
    );

    let mut failed = AcmeStateChange::new(AcmeObject::Challenge, "ch-2", &["pending"], "invalid");
    failed.error = Some(r#"{"type":"urn:ietf:params:acme:error:dns"}"#.into());
    assert!(store
        .apply_acme_changes(t, &[failed], 40)
        .await
        .expect("cas"));
    assert_eq!(
        store
            .count_acme_failed_validations_since(t, "acct-o1", 35)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        store
            .count_acme_failed_validations_since(other, "acct-o1", 0)
            .await
            .expect("count"),
        0
    );
    // a batch: each op stands alone (a failing one keeps nothing), one commit
    use crate::{AcmeOp, AcmeOpOutcome};
    let twin = AcmeAccountRecord {
        id: "acct-twin".into(),
        thumbprint: "thumb-new".into(),
        eab_kid: None,
        ..account.clone()
    };
    let half = vec![
        AcmeStateChange::new(AcmeObject::Challenge, "ch-1", &["valid"], "invalid"),
        AcmeStateChange::new(AcmeObject::Order, "ord-1", &["pending"], "ready"),
    ];
    let ops = vec![
        AcmeOp::Nonce {
            id: "bn1".into(),
            expires_at: 900,
        },
        AcmeOp::Changes(half),
        AcmeOp::Account(Box::new(twin), Box::new(event(t, "acme.account.create"))),
        AcmeOp::Nonce {
            id: "bn1".into(),
            expires_at: 900,
        },
        AcmeOp::Changes(vec![AcmeStateChange::new(
            AcmeObject::Authorization,
            "authz-1",
            &["valid"],
            "deactivated",
        )]),
    ];
    let out = store.apply_acme_batch(t, &ops, 50).await.expect("batch");
    assert!(matches!(out[0], AcmeOpOutcome::Fresh(true)), "{out:?}");
    assert!(matches!(out[1], AcmeOpOutcome::Applied(false)), "{out:?}");
    assert!(
        matches!(out[2], AcmeOpOutcome::Failed(StoreError::Conflict(_))),
        "the key is registered: {out:?}"
    );
    assert!(matches!(out[3], AcmeOpOutcome::Fresh(false)), "{out:?}");
    assert!(matches!(out[4], AcmeOpOutcome::Applied(true)), "{out:?}");
    assert_eq!(
        store
            .acme_challenge(t, "ch-1")
            .await
            .expect("read")
            .map(|c| c.status),
        Some("valid".into()),
        "the half-applied group was rolled back"
    );
    assert!(store
        .acme_account(t, "acct-twin")
        .await
        .expect("read")
        .is_none());
    assert_eq!(
        store
            .acme_authorization(t, "authz-1")
            .await
            .expect("read")
            .map(|a| a.status),
        Some("deactivated".into())
    );
}
