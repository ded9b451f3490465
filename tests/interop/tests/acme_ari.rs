//! ACME Renewal Information (RFC 9773) with an ARI-capable client, instant-acme: it issues a
//! certificate over http-01, computes the certificate's ARI id itself, fetches renewalInfo
//! (a window inside the certificate's lifetime) and renews with `replaces`; on both engines.
//! Each chain verifies with openssl against the root, and the inventory records the renewal
//! as replacing the first certificate, with its ACME enrollment.

use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, Identifier, NewAccount,
    NewOrder, Order, OrderStatus,
};
use rustls_pki_types::CertificateDer;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustbox_acme_bench::http01::{self, Tokens};
use trustbox_acme_bench::transport::Transport;
use trustbox_testkit::{engines, run, ChallTestSrv, TestServer};

const T: Duration = Duration::from_secs(30);

/// Orders `name` (replacing `replaces`, if given), answers its http-01 challenge from
/// `tokens` and returns the order once it is ready.
async fn ready_order(
    account: &Account,
    tokens: &Tokens,
    name: &str,
    replaces: Option<CertificateIdentifier<'static>>,
) -> anyhow::Result<Order> {
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut new_order = NewOrder::new(&identifiers);
    if let Some(id) = replaces {
        new_order = new_order.replaces(id);
    }
    let mut order = account.new_order(&new_order).await?;
    let _published = {
        let mut authorizations = order.authorizations();
        let mut authz = authorizations
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("the order has no authorization"))??;
        anyhow::ensure!(
            authz.status == AuthorizationStatus::Pending,
            "{:?}",
            authz.status
        );
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| anyhow::anyhow!("no http-01 challenge"))?;
        let published = tokens.publish(
            challenge.token.clone(),
            challenge.key_authorization().as_str().to_owned(),
        );
        challenge.set_ready().await?;
        published
    };
    let deadline = Instant::now() + T;
    loop {
        match order.refresh().await?.status {
            OrderStatus::Ready => return Ok(order),
            OrderStatus::Pending if Instant::now() < deadline => {}
            other => anyhow::bail!("order is {other:?}, not ready"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Finalizes `order` with a CSR for `name` and returns the PEM chain.
async fn issue(order: &mut Order, name: &str) -> anyhow::Result<String> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    order.finalize_csr(csr.der()).await?;
    let deadline = Instant::now() + T;
    while order.state().status != OrderStatus::Valid {
        anyhow::ensure!(
            Instant::now() < deadline,
            "order not valid: {:?}",
            order.state().status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        order.refresh().await?;
    }
    order
        .certificate()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no certificate although the order is valid"))
}

/// The DER certificates of a PEM chain, leaf first.
fn chain_ders(pem: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for block in pem.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let body = block
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap_or_default();
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        out.push(base64::engine::general_purpose::STANDARD.decode(b64)?);
    }
    anyhow::ensure!(!out.is_empty(), "no certificate in the chain");
    Ok(out)
}

/// Checks that `chain` verifies against the server's root with openssl, and returns its
/// inventory entry (found by serial), an ACME enrollment of provisioner `label`.
async fn check_issued(
    s: &TestServer,
    chain: &str,
    label: &str,
) -> anyhow::Result<serde_json::Value> {
    let leaf_path = s.dir.path().join("leaf.pem");
    let chain_path = s.dir.path().join("chain.pem");
    std::fs::write(&chain_path, chain)?;
    let leaf_end = chain
        .find("-----END CERTIFICATE-----")
        .map(|i| i + "-----END CERTIFICATE-----".len())
        .unwrap_or(chain.len());
    std::fs::write(&leaf_path, &chain[..leaf_end])?;
    let (root, untrusted, leaf) = (
        s.root_pem_path().display().to_string(),
        chain_path.display().to_string(),
        leaf_path.display().to_string(),
    );
    let out = tokio::task::block_in_place(|| {
        run(
            "openssl",
            &["verify", "-CAfile", &root, "-untrusted", &untrusted, &leaf],
            T,
        )
    })?;
    anyhow::ensure!(out.ok(), "openssl verify: {}{}", out.stdout, out.stderr);
    let entry = s.inventory_entry(&leaf).await?;
    assert_eq!(entry["source"], "acme", "{entry}");
    assert_eq!(entry["enrollment"]["label"], label, "{entry}");
    assert!(entry["enrollment"]["order"].is_string(), "{entry}");
    Ok(entry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_fetches_renewal_info_and_renews_with_replaces() -> anyhow::Result<()> {
    let dns = ChallTestSrv::start()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_port = listener.local_addr()?.port();
    let tokens = Tokens::default();
    let responder = tokio::spawn(http01::serve(listener, tokens.clone()));
    for engine in engines().await {
        let s = TestServer::start_acme(&engine, dns.dns).await?;
        s.create_acme_provisioner(&serde_json::json!({"name": "ari", "http01_port": http_port}))
            .await?;
        let http = Transport::new(
            &s.url,
            Some(s.root_pem.as_slice()),
            T,
            Arc::new(AtomicU64::new(0)),
        )?;
        let (account, _credentials) = Account::builder_with_http(Box::new(http))
            .create(
                &NewAccount {
                    contact: &[],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                format!("{}/acme/ari/directory", s.url),
                None,
            )
            .await?;
        let name = "ari.example.test";

        let mut first = ready_order(&account, &tokens, name, None).await?;
        let chain = issue(&mut first, name).await?;
        let old = check_issued(&s, &chain, "ari").await?;
        let leaf = chain_ders(&chain)?.remove(0);
        let leaf = CertificateDer::from(leaf);
        let id = CertificateIdentifier::try_from(&leaf).map_err(|e| anyhow::anyhow!(e))?;

        // renewalInfo: a window inside the certificate's lifetime, starting before its end
        let (info, retry_after) = account.renewal_info(&id).await?;
        let window = info.suggested_window;
        assert!(window.start < window.end, "{window:?}");
        let parse = |f: &str| -> anyhow::Result<time::OffsetDateTime> {
            let v = old[f]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("{f}: {old}"))?;
            Ok(time::OffsetDateTime::parse(
                v,
                &time::format_description::well_known::Rfc3339,
            )?)
        };
        let (not_before, not_after) = (parse("not_before")?, parse("not_after")?);
        assert!(
            not_before < window.start && window.end <= not_after,
            "window {window:?} outside {not_before} .. {not_after}"
        );
        assert!(retry_after > Duration::ZERO, "a Retry-After hint");

        // renewal with replaces: recorded in the inventory
        let mut renewal = ready_order(&account, &tokens, name, Some(id.clone())).await?;
        let chain = issue(&mut renewal, name).await?;
        let new = check_issued(&s, &chain, "ari").await?;
        assert_ne!(new["id"], old["id"]);
        assert_eq!(new["replaces"], old["id"], "{new}");

        // a certificate is replaced once
        let identifiers = [Identifier::Dns(name.to_owned())];
        let again = account
            .new_order(&NewOrder::new(&identifiers).replaces(id))
            .await;
        let err = again.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("alreadyReplaced"), "{err}");
        s.stop().await;
    }
    responder.abort();
    Ok(())
}
