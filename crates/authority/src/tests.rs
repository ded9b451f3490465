//! Seam tests against the real SQLite engine.

use crate::*;
use trustbox_crypto::{Kek, SealedKeyStore};
use trustbox_store_sqlite::SqliteStore;
use trustbox_types::{Scope, ScopeSet, SourceProtocol, SystemClock};

pub(crate) struct Env {
    _dir: tempfile::TempDir,
    pub(crate) authority: Arc<Authority>,
    pub(crate) admin: Principal,
}

async fn env() -> Env {
    env_with(Arc::new(SystemClock), AuthorityConfig::default()).await
}

/// A seam over a fresh SQLite store with `clock` and `config`, bootstrapped.
pub(crate) async fn env_with(
    clock: Arc<dyn trustbox_types::Clock>,
    config: AuthorityConfig,
) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let keys = SealedKeyStore::new(&Kek::load_or_create(&dir.path().join("kek")).expect("kek"))
        .expect("keys");
    let authority = Arc::new(Authority::new(
        Arc::new(store),
        Arc::new(keys),
        clock,
        config,
    ));
    let boot = authority
        .bootstrap(&BootstrapOptions::default())
        .await
        .expect("bootstrap");
    let admin = authority
        .authenticate(&boot.admin_token.expect("first start mints a token"))
        .await
        .expect("auth");
    Env {
        _dir: dir,
        authority,
        admin,
    }
}

pub(crate) fn csr(name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem")
        .into_bytes()
}

pub(crate) fn request(principal: &Principal, csr: Vec<u8>) -> IssuanceRequest {
    IssuanceRequest {
        purpose: Some("test".into()),
        validity: Some(std::time::Duration::from_secs(30 * 86400)),
        ..IssuanceRequest::for_csr(principal.clone(), csr, SourceProtocol::Api)
    }
}

/// Leaf certificates in the inventory (the issuing CA's own certificate, recorded under the
/// root, is not counted).
async fn count(env: &Env) -> usize {
    env.authority
        .list_certificates(
            &env.admin,
            &CertificateQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .expect("list")
        .iter()
        .filter(|c| c.profile != "ca@0")
        .count()
}

#[tokio::test]
async fn issues_records_and_audits_before_returning() {
    let env = env().await;
    let issued = env
        .authority
        .issued(request(&env.admin, csr("a.example.com")))
        .await
        .expect("issue");
    let got = env
        .authority
        .certificate(&env.admin, issued.certificate.id)
        .await
        .expect("recorded");
    assert_eq!(got.certificate.der, issued.certificate.der);
    assert!(!issued.chain_pem.is_empty());
    let events = env
        .authority
        .audit_events(&env.admin, 0, 1000)
        .await
        .expect("audit");
    assert!(events
        .iter()
        .any(|e| e.action == "certificate.issue" && e.outcome == "success"));
    assert!(
        matches!(env.authority.verify_audit(&env.admin).await.expect("verify"), Ok(n) if n > 0)
    );
}

#[tokio::test]
async fn bad_requests_change_nothing_but_are_audited() {
    let env = env().await;
    let e = env
        .authority
        .issued(request(&env.admin, b"garbage".to_vec()))
        .await
        .expect_err("garbage");
    assert_eq!(e.code, "bad-csr");
    let mut r = request(&env.admin, csr("a.example.com"));
    r.validity = Some(std::time::Duration::from_secs(1000 * 86400));
    assert_eq!(
        env.authority.issued(r).await.expect_err("too long").code,
        "profile-violation"
    );
    let mut r = request(&env.admin, csr("a.example.com"));
    r.profile = Some("nope".into());
    assert_eq!(
        env.authority.issued(r).await.expect_err("profile").code,
        "unknown-profile"
    );
    let mut r = request(&env.admin, csr("a.example.com"));
    r.issuer = Some("root".into());
    assert_eq!(
        env.authority.issued(r).await.expect_err("root").code,
        "root-issuer"
    );
    let mut r = request(&env.admin, csr("a.example.com"));
    r.purpose = Some("x".repeat(10_000));
    assert_eq!(
        env.authority.issued(r).await.expect_err("purpose").code,
        "invalid-purpose"
    );
    assert_eq!(count(&env).await, 0);
    let denied = denied_events(&env, 5).await;
    assert_eq!(denied.len(), 5);
    assert!(
        denied
            .iter()
            .all(|e| e.details.len() < 600 && e.resource.len() < 300),
        "refusal details are bounded"
    );
    let events = env
        .authority
        .audit_events(&env.admin, 0, 1000)
        .await
        .expect("audit");
    assert!(!events
        .iter()
        .any(|e| e.action == "certificate.issue" && e.outcome == "success"));
}

/// Waits (bounded) until `n` refusals are in the chain; refusals are written in batches.
async fn denied_events(env: &Env, n: usize) -> Vec<AuditEntry> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = env
            .authority
            .audit_events(&env.admin, 0, 1000)
            .await
            .expect("audit");
        let denied: Vec<_> = events
            .into_iter()
            .filter(|e| e.outcome == "denied")
            .collect();
        if denied.len() >= n || std::time::Instant::now() > deadline {
            return denied;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_is_recorded_in_batches() {
    let env = env().await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let a = env.authority.clone();
        let p = env.admin.clone();
        tasks.push(tokio::spawn(async move {
            a.issued(request(&p, b"garbage".to_vec()))
                .await
                .expect_err("refused")
                .code
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), "bad-csr");
    }
    let denied = denied_events(&env, 300).await;
    assert_eq!(denied.len(), 300, "every refusal is recorded");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(env
        .authority
        .verify_audit(&env.admin)
        .await
        .expect("verify")
        .is_ok());
}

#[tokio::test]
async fn scopes_and_tenants_are_enforced() {
    let env = env().await;
    let reader = env
        .authority
        .create_token(
            &env.admin,
            None,
            "reader",
            ScopeSet::new([Scope::CertsRead]),
        )
        .await
        .expect("token");
    let reader = env
        .authority
        .authenticate(&reader.secret)
        .await
        .expect("auth");
    let e = env
        .authority
        .issued(request(&reader, csr("a.example.com")))
        .await
        .expect_err("no scope");
    assert_eq!(e.kind, ErrorKind::Forbidden);
    let e = env
        .authority
        .create_token(&reader, None, "x", ScopeSet::new([Scope::Admin]))
        .await
        .expect_err("escalation");
    assert_eq!(e.kind, ErrorKind::Forbidden);

    let issued = env
        .authority
        .issued(request(&env.admin, csr("a.example.com")))
        .await
        .expect("issue");
    env.authority
        .create_tenant(&env.admin, "acme")
        .await
        .expect("tenant");
    let other = env
        .authority
        .create_token(
            &env.admin,
            Some("acme"),
            "acme-admin",
            ScopeSet::new([Scope::Admin]),
        )
        .await
        .expect("token");
    let other = env
        .authority
        .authenticate(&other.secret)
        .await
        .expect("auth");
    let e = env
        .authority
        .certificate(&other, issued.certificate.id)
        .await
        .expect_err("cross-tenant");
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = env
        .authority
        .revoke(
            &other,
            issued.certificate.id,
            trustbox_types::RevocationReason::KeyCompromise,
            None,
        )
        .await
        .expect_err("cross-tenant");
    assert_eq!(e.kind, ErrorKind::NotFound);
    // the new tenant issues from its own hierarchy
    let own = env
        .authority
        .issued(request(&other, csr("b.example.com")))
        .await
        .expect("issue in acme");
    assert_ne!(own.certificate.issuer, issued.certificate.issuer);

    env.authority
        .revoke_token(&env.admin, reader.actor.token().expect("a token"))
        .await
        .expect("revoke token");
    assert_eq!(
        env.authority
            .authenticate("tbx_nope")
            .await
            .expect_err("bad")
            .kind,
        ErrorKind::Unauthenticated
    );
}

#[tokio::test]
async fn concurrent_issuances_are_group_committed_and_chained() {
    let env = env().await;
    let mut tasks = Vec::new();
    for n in 0..200 {
        let a = env.authority.clone();
        let r = request(&env.admin, csr(&format!("h{n}.example.com")));
        tasks.push(tokio::spawn(async move { a.issued(r).await }));
    }
    for t in tasks {
        t.await.expect("join").expect("issued");
    }
    assert_eq!(count(&env).await, 200);
    assert!(
        matches!(env.authority.verify_audit(&env.admin).await.expect("verify"), Ok(n) if n >= 200)
    );
}

#[tokio::test]
async fn revocation_is_recorded_once() {
    let env = env().await;
    let issued = env
        .authority
        .issued(request(&env.admin, csr("r.example.com")))
        .await
        .expect("issue");
    let rec = env
        .authority
        .revoke(
            &env.admin,
            issued.certificate.id,
            trustbox_types::RevocationReason::Superseded,
            None,
        )
        .await
        .expect("revoke");
    assert_eq!(rec.status, trustbox_types::CertificateStatus::Revoked);
    let e = env
        .authority
        .revoke(
            &env.admin,
            issued.certificate.id,
            trustbox_types::RevocationReason::Superseded,
            None,
        )
        .await
        .expect_err("twice");
    assert_eq!(e.code, "already-revoked");
}

#[tokio::test]
async fn caches_are_distrusted_when_the_change_feed_is_not_read() {
    let env = env().await;
    let a = &env.authority;
    a.poll_changes().await.expect("poll");
    assert!(a.caches_trusted());
    // nothing polls here: after the trust window the caches are bypassed (fail closed)
    tokio::time::sleep(crate::sync::CACHE_TRUST + std::time::Duration::from_millis(200)).await;
    assert!(!a.caches_trusted());
    a.poll_changes().await.expect("poll");
    assert!(a.caches_trusted());
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let keys = SealedKeyStore::new(&Kek::load_or_create(&dir.path().join("kek")).expect("kek"))
        .expect("keys");
    let authority = Authority::new(
        Arc::new(store),
        Arc::new(keys),
        Arc::new(SystemClock),
        AuthorityConfig::default(),
    );
    let boot = authority
        .bootstrap(&BootstrapOptions::default())
        .await
        .expect("bootstrap");
    let token = boot.admin_token.clone().expect("token");
    assert!(token.starts_with(TOKEN_PREFIX));
    let admin = authority.authenticate(&token).await.expect("auth");
    let minted = authority
        .create_token(&admin, None, "dbg", ScopeSet::new([Scope::CertsRead]))
        .await
        .expect("mint");
    assert!(minted.secret.starts_with(TOKEN_PREFIX));
    for text in [
        format!("{boot:?}"),
        format!("{boot:#?}"),
        format!("{minted:?}"),
        format!("{admin:?}"),
        format!("{authority:?}"),
    ] {
        assert!(
            !text.contains(TOKEN_PREFIX),
            "a secret in Debug output: {text}"
        );
    }
}

#[tokio::test]
async fn tokens_expire_and_revoke_only_what_they_cover() {
    let env = env().await;
    let a = &env.authority;
    let e = a
        .create_token_expiring(
            &env.admin,
            None,
            "short",
            ScopeSet::new([Scope::CertsRead]),
            Some(5),
        )
        .await
        .expect_err("below a minute");
    assert_eq!(e.code, "invalid-expiry");
    let t = a
        .create_token_expiring(
            &env.admin,
            None,
            "minute",
            ScopeSet::new([Scope::CertsRead]),
            Some(60),
        )
        .await
        .expect("mint");
    assert_eq!(t.token.expires_at, Some(t.token.created_at + 60));
    a.authenticate(&t.secret).await.expect("valid for now");
    // a narrow token cannot revoke a wider one
    let narrow = a
        .create_token(
            &env.admin,
            None,
            "narrow",
            ScopeSet::new([Scope::TokensAdmin]),
        )
        .await
        .expect("mint");
    let narrow_p = a.authenticate(&narrow.secret).await.expect("auth");
    let wide = a
        .create_token(&env.admin, None, "wide", ScopeSet::new([Scope::CertsIssue]))
        .await
        .expect("mint");
    let e = a
        .revoke_token(&narrow_p, wide.token.id)
        .await
        .expect_err("not covered");
    assert_eq!(e.code, "forbidden");
    a.authenticate(&wide.secret).await.expect("still valid");
    a.revoke_token(&env.admin, wide.token.id)
        .await
        .expect("admin covers it");
    assert!(a.authenticate(&wide.secret).await.is_err());
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let clock = Arc::new(trustbox_types::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let env = env_with(clock.clone(), AuthorityConfig::default()).await;
    let t = env
        .authority
        .create_token_expiring(
            &env.admin,
            None,
            "soon",
            ScopeSet::new([Scope::CertsRead]),
            Some(120),
        )
        .await
        .expect("mint");
    env.authority.authenticate(&t.secret).await.expect("valid");
    clock.advance(time::Duration::seconds(121));
    let e = env
        .authority
        .authenticate(&t.secret)
        .await
        .expect_err("expired");
    assert_eq!(e.code, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_signs_checkpoints_on_its_own() {
    let env = env().await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(env.authority.clone().run_background_workers(rx));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let exported = loop {
        let cps = env
            .authority
            .export_checkpoints(env.admin.tenant)
            .await
            .expect("export");
        if !cps.is_empty() || std::time::Instant::now() > deadline {
            break cps;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let _ = stop.send(true);
    let _ = worker.await;
    assert!(!exported.is_empty(), "no checkpoint signed by the leader");
    let report = env
        .authority
        .verify_tenant_chain_against(env.admin.tenant, &exported)
        .await
        .expect("verify")
        .expect("intact");
    assert!(
        report.checkpoints >= 2,
        "stored and exported both checked: {report:?}"
    );
    // a tampered exported signature is refused
    let mut bad = exported.clone();
    bad[0].hash = "00".repeat(32);
    let brk = env
        .authority
        .verify_tenant_chain_against(env.admin.tenant, &bad)
        .await
        .expect("verify")
        .expect_err("forged checkpoint");
    assert!(brk.reason.contains("no valid signature"), "{}", brk.reason);
}

#[tokio::test]
async fn a_principal_gets_only_the_identifiers_it_proved() {
    let env = env().await;
    let mut acme = env.admin.clone();
    acme.actor = trustbox_types::Actor::AcmeAccount {
        id: "acct-1".into(),
    };
    acme.grants = trustbox_types::Grants {
        scopes: ScopeSet::new([Scope::CertsIssue]),
        proved_identifiers: Some(vec!["dns:proved.example.com".into()]),
    };
    let issued = env
        .authority
        .issued(request(&acme, csr("proved.example.com")))
        .await
        .expect("a proved name");
    assert_eq!(
        issued.certificate.sans,
        vec!["dns:proved.example.com".to_owned()]
    );
    let e = env
        .authority
        .issued(request(&acme, csr("other.example.com")))
        .await
        .expect_err("an unproved name");
    assert_eq!(e.code, "identifier-not-proved");
    let events = env
        .authority
        .audit_events(&env.admin, 0, 1000)
        .await
        .expect("audit");
    assert!(
        events
            .iter()
            .any(|e| e.actor == "acme-account:acct-1" && e.outcome == "success"),
        "the audit event names the actor precisely"
    );
}

#[tokio::test]
async fn lifetimes_of_minutes_are_legal_and_bounded() {
    let env = env().await;
    let mut r = request(&env.admin, csr("brief.example.com"));
    r.validity = Some(std::time::Duration::from_secs(300));
    let issued = env
        .authority
        .issued(r)
        .await
        .expect("a five-minute certificate");
    let lifetime = issued.certificate.not_after - issued.certificate.not_before;
    // notBefore is backdated a minute for clock skew
    assert_eq!(lifetime, 300 + 60, "{lifetime}");
    let mut r = request(&env.admin, csr("blink.example.com"));
    r.validity = Some(std::time::Duration::from_secs(30));
    let e = env.authority.issued(r).await.expect_err("below a minute");
    assert_eq!(e.code, "profile-violation");
    assert!(e.detail.contains("minimum"), "{}", e.detail);
}

/// Denies names under `blocked.example`, answers pending for `wait.example`, and lints
/// away certificates naming `late.example`; counts what it saw.
#[derive(Debug)]
struct TestHook {
    decided: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl IssuanceHook for TestHook {
    fn name(&self) -> &str {
        "test-policy"
    }

    async fn decide(&self, ctx: &HookContext<'_>) -> HookDecision {
        self.decided
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let names: Vec<String> = ctx.plan.sans.iter().map(|s| s.to_string()).collect();
        if names.iter().any(|n| n.ends_with("blocked.example")) {
            HookDecision::Deny(AuthorityError::new(
                ErrorKind::Forbidden,
                "policy-denied",
                "names under blocked.example are not issued",
            ))
        } else if names.iter().any(|n| n.ends_with("wait.example")) {
            HookDecision::Pending(std::time::Duration::from_secs(30))
        } else {
            HookDecision::Allow
        }
    }

    fn lint(&self, _ctx: &HookContext<'_>, preview_der: &[u8]) -> Result<(), AuthorityError> {
        if preview_der
            .windows(b"late.example".len())
            .any(|w| w == b"late.example")
        {
            return Err(AuthorityError::invalid(
                "lint-failed",
                "late.example is linted away",
            ));
        }
        Ok(())
    }
}

#[tokio::test]
async fn hooks_deny_defer_and_lint_before_anything_is_signed() {
    let env = env().await;
    let hook = Arc::new(TestHook {
        decided: std::sync::atomic::AtomicUsize::new(0),
    });
    env.authority.add_issuance_hook(hook.clone());
    let before = count(&env).await;

    let e = env
        .authority
        .issue(request(&env.admin, csr("a.blocked.example")))
        .await
        .expect_err("denied");
    assert_eq!((e.kind, e.code), (ErrorKind::Forbidden, "policy-denied"));

    let mut r = request(&env.admin, csr("a.wait.example"));
    r.idempotency_key = Some("wait-1".into());
    match env.authority.issue(r).await.expect("pending") {
        IssuanceOutcome::Pending {
            request_id,
            retry_after,
        } => {
            assert_eq!(
                request_id, "wait-1",
                "the idempotency key names the request"
            );
            assert_eq!(retry_after, std::time::Duration::from_secs(30));
        }
        IssuanceOutcome::Issued(_) => panic!("a pending request was signed"),
    }

    let e = env
        .authority
        .issue(request(&env.admin, csr("x.late.example")))
        .await
        .expect_err("linted away");
    assert_eq!(e.code, "lint-failed");
    assert_eq!(count(&env).await, before, "nothing was recorded");

    env.authority
        .issued(request(&env.admin, csr("fine.example.com")))
        .await
        .expect("allowed");
    assert_eq!(count(&env).await, before + 1);
    assert_eq!(
        hook.decided.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "every request was decided on"
    );
    let events = env
        .authority
        .audit_events(&env.admin, 0, 1000)
        .await
        .expect("audit");
    assert!(events.iter().any(|e| e.outcome == "pending"));
}

#[tokio::test]
async fn a_retried_request_gets_the_first_certificate() {
    let env = env().await;
    let req = csr("retry.example.com");
    let mut r = request(&env.admin, req.clone());
    r.idempotency_key = Some("order-42".into());
    let first = env.authority.issued(r.clone()).await.expect("first");
    assert!(!first.replayed);
    let again = env.authority.issued(r).await.expect("retry");
    assert!(again.replayed);
    assert_eq!(again.certificate.id, first.certificate.id);
    assert_eq!(again.certificate.der, first.certificate.der);

    // the same key with another CSR is refused, and issues nothing
    let before = count(&env).await;
    let mut other = request(&env.admin, csr("retry.example.com"));
    other.idempotency_key = Some("order-42".into());
    let e = env.authority.issued(other).await.expect_err("reused");
    assert_eq!(
        (e.kind, e.code),
        (ErrorKind::Conflict, "idempotency-key-reused")
    );
    assert_eq!(count(&env).await, before);

    // concurrent retries: one certificate
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut r = request(&env.admin, req.clone());
        r.idempotency_key = Some("burst-7".into());
        let a = env.authority.clone();
        tasks.push(tokio::spawn(async move { a.issued(r).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(
            t.await
                .expect("task")
                .expect("issued or replayed")
                .certificate
                .id,
        );
    }
    assert_eq!(ids.len(), 1, "one certificate for one key");
    assert_eq!(count(&env).await, before + 1);
}

#[tokio::test]
async fn the_seam_generates_a_key_once_for_protocols_that_need_it() {
    let env = env().await;
    let mut r = request(&env.admin, Vec::new());
    r.subject_key = SubjectKey::Generate(trustbox_types::KeyAlgorithm::EcdsaP256);
    r.identifiers = vec![trustbox_x509::SubjectAltName::Dns(
        trustbox_x509::DnsName::parse("gen.example.com").expect("name"),
    )];
    r.enrollment = Enrollment {
        label: Some("serverkeygen".into()),
        transaction: Some("tx-1".into()),
        ..Enrollment::default()
    };
    let issued = env.authority.issued(r.clone()).await.expect("issued");
    let key = issued.private_key.clone().expect("the key is handed over");
    assert_eq!(
        trustbox_x509::spki_of(&issued.certificate.der).as_deref(),
        Some(key.spki.as_slice()),
        "the certificate is for the generated key"
    );
    assert_eq!(issued.certificate.sans, ["dns:gen.example.com"]);
    let stored = env
        .authority
        .certificate(&env.admin, issued.certificate.id)
        .await
        .expect("recorded");
    assert!(stored.private_key.is_none(), "the key is never stored");
    assert_eq!(
        stored.certificate.enrollment, r.enrollment,
        "read back as recorded"
    );
    assert_eq!(stored.certificate.source, "api");

    // no names, no key; a CSR must carry the requested names; other key kinds wait
    let mut bare = r.clone();
    bare.identifiers.clear();
    let e = env.authority.issued(bare).await.expect_err("no names");
    assert_eq!(e.code, "identifiers-required");
    let mut mismatch = request(&env.admin, csr("one.example.com"));
    mismatch.identifiers = r.identifiers.clone();
    let e = env
        .authority
        .issued(mismatch)
        .await
        .expect_err("names differ");
    assert_eq!(e.code, "identifiers-mismatch");
    let mut ssh = request(&env.admin, Vec::new());
    ssh.subject_key = SubjectKey::SshPublicKey("ssh-ed25519 AAAA".into());
    let e = env.authority.issued(ssh).await.expect_err("not yet");
    assert_eq!(e.code, "unsupported-subject-key");
}

#[tokio::test]
async fn revocation_by_reference_and_by_possession_of_the_key() {
    let env = env().await;
    let a = &env.authority;
    // a key the test holds, so it can prove possession
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params =
        rcgen::CertificateParams::new(vec!["held.example.com".to_owned()]).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    let held = params.serialize_request(&key).expect("csr").der().to_vec();
    let issued = a.issued(request(&env.admin, held)).await.expect("issued");

    // a reader may not revoke by scope, nor with a signature by another key
    let mut reader = env.admin.clone();
    reader.grants.scopes = ScopeSet::new([Scope::CertsRead]);
    let by_der = CertificateRef::Certificate(issued.certificate.der.clone());
    let e = a
        .revoke_by(
            &reader,
            &by_der,
            &RevocationProof::Scope,
            trustbox_types::RevocationReason::KeyCompromise,
            None,
        )
        .await
        .expect_err("no scope");
    assert_eq!(e.kind, ErrorKind::Forbidden);
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let forged = RevocationProof::KeyPossession {
        message: b"revoke".to_vec(),
        signature: sign_with(&other, b"revoke"),
    };
    let e = a
        .revoke_by(
            &reader,
            &by_der,
            &forged,
            trustbox_types::RevocationReason::KeyCompromise,
            None,
        )
        .await
        .expect_err("another key");
    assert_eq!(e.code, "bad-key-possession-proof");

    // the certificate's own key proves it
    let proof = RevocationProof::KeyPossession {
        message: b"revoke".to_vec(),
        signature: sign_with(&key, b"revoke"),
    };
    let revoked = a
        .revoke_by(
            &reader,
            &by_der,
            &proof,
            trustbox_types::RevocationReason::KeyCompromise,
            None,
        )
        .await
        .expect("revoked by key possession");
    assert_eq!(revoked.id, issued.certificate.id);

    // by issuer and serial, with the scope
    let second = a
        .issued(request(&env.admin, csr("serial.example.com")))
        .await
        .expect("issued");
    let by_serial = CertificateRef::Serial {
        issuer: second.certificate.issuer,
        serial: second.certificate.serial.clone(),
    };
    let r = a
        .revoke_by(
            &env.admin,
            &by_serial,
            &RevocationProof::Scope,
            trustbox_types::RevocationReason::Superseded,
            None,
        )
        .await
        .expect("revoked by serial");
    assert_eq!(r.id, second.certificate.id);

    // a certificate not in this inventory is not found
    let mut tampered = issued.certificate.der.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let e = a
        .revoke_by(
            &env.admin,
            &CertificateRef::Certificate(tampered),
            &RevocationProof::Scope,
            trustbox_types::RevocationReason::Superseded,
            None,
        )
        .await
        .expect_err("not ours");
    assert_eq!(e.kind, ErrorKind::NotFound);
}

/// A DER ECDSA signature by `key` over `message` (how custody signs).
fn sign_with(key: &rcgen::KeyPair, message: &[u8]) -> Vec<u8> {
    let pkcs8 = key.serialize_der();
    let rng = ring::rand::SystemRandom::new();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &pkcs8,
        &rng,
    )
    .expect("key");
    pair.sign(&rng, message).expect("sign").as_ref().to_vec()
}
