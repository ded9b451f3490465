//! Interop with the real tools: CSRs made by `openssl req`, certificates checked by
//! `openssl verify -x509_strict` and `openssl x509 -text`, the API reached by `curl`.

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use trustbox_testkit::{openssl_csr, run, Engine, TestServer};

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<String> {
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p.to_string_lossy().into_owned())
}

async fn issue_file(
    s: &TestServer,
    csr: &Path,
    extra: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut body = json!({ "csr": std::fs::read_to_string(csr)? });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = s.admin()?.post_json("/api/v1/certificates", &body).await?;
    anyhow::ensure!(r.status == 201, "issue failed: {}", r.text());
    Ok(r.json()?)
}

fn verify(
    root: &Path,
    dir: &Path,
    issued: &serde_json::Value,
    purpose: &str,
) -> anyhow::Result<trustbox_testkit::Output> {
    let leaf = write(
        dir,
        "leaf.pem",
        issued["certificate"].as_str().unwrap_or_default(),
    )?;
    let chain = write(
        dir,
        "chain.pem",
        issued["chain"].as_str().unwrap_or_default(),
    )?;
    run(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            &root.to_string_lossy(),
            "-untrusted",
            &chain,
            &leaf,
        ],
        Duration::from_secs(30),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_made_csrs_issue_certificates_openssl_verifies() -> anyhow::Result<()> {
    let s = TestServer::start(&Engine::Sqlite).await?;
    let work = tempfile::tempdir()?;
    let keys: [(&str, &[&str]); 5] = [
        ("p256", &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("p384", &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        ("rsa2048", &["rsa:2048"]),
        ("rsa3072", &["rsa:3072"]),
        ("ed25519", &["ed25519"]),
    ];
    for (name, newkey) in keys {
        let csr = openssl_csr(
            work.path(),
            name,
            newkey,
            &format!("/CN={name}.example.com"),
            Some(&format!("DNS:{name}.example.com,IP:192.0.2.7")),
        )?;
        let issued = issue_file(&s, &csr, json!({"validity_days": 60})).await?;
        let out = verify(&s.root_pem_path(), work.path(), &issued, "sslserver")?;
        assert!(
            out.ok() && out.stdout.contains(": OK"),
            "{name}: openssl verify: {} {}",
            out.stdout,
            out.stderr
        );
        // a server certificate is not a client certificate
        let out = verify(&s.root_pem_path(), work.path(), &issued, "sslclient")?;
        assert!(
            !out.ok(),
            "{name}: serverAuth-only certificate must fail sslclient"
        );
    }
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_extensions_are_what_rfc_5280_asks_for() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = trustbox_server::ServerConfig {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse()?,
        http_listen: Some("127.0.0.1:0".parse()?),
        public_url: Some("http://pki.example.test:8080".into()),
        ..Default::default()
    };
    let s = TestServer::start_with(dir, cfg).await?;
    let work = tempfile::tempdir()?;
    let csr = openssl_csr(
        work.path(),
        "ext",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=ext.example.com/O=Ignored Org",
        Some("DNS:ext.example.com"),
    )?;
    let issued = issue_file(&s, &csr, json!({})).await?;
    let leaf = write(
        work.path(),
        "leaf.pem",
        issued["certificate"].as_str().unwrap_or_default(),
    )?;
    let out = run(
        "openssl",
        &["x509", "-in", &leaf, "-noout", "-text"],
        Duration::from_secs(30),
    )?;
    assert!(out.ok(), "{}", out.stderr);
    let text = out.stdout;
    for needle in [
        "Version: 3 (0x2)",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Server Authentication",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "DNS:ext.example.com",
        "X509v3 CRL Distribution Points",
        "URI:http://pki.example.test:8080/crl/",
        "CA Issuers - URI:http://pki.example.test:8080/ca/",
        "OCSP - URI:http://pki.example.test:8080/ocsp/",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("Ignored Org"),
        "subject fields other than CN are not copied"
    );
    assert!(
        !text.contains("Key Encipherment"),
        "no keyEncipherment on an EC key"
    );
    // 16-octet positive serial
    let serial = issued["serial"].as_str().unwrap_or_default();
    assert_eq!(serial.len(), 32, "{serial}");
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_profile_passes_openssl_sslclient_and_empty_subject_gets_critical_san(
) -> anyhow::Result<()> {
    let s = TestServer::start(&Engine::Sqlite).await?;
    let work = tempfile::tempdir()?;
    let csr = openssl_csr(
        work.path(),
        "client",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/",
        Some("URI:spiffe://example.org/ns/prod/sa/api,email:svc@example.org"),
    )?;
    let issued = issue_file(&s, &csr, json!({"profile": "tls-client"})).await?;
    let out = verify(&s.root_pem_path(), work.path(), &issued, "sslclient")?;
    assert!(
        out.ok(),
        "openssl verify sslclient: {} {}",
        out.stdout,
        out.stderr
    );
    let leaf = work.path().join("leaf.pem");
    let text = run(
        "openssl",
        &["x509", "-in", &leaf.to_string_lossy(), "-noout", "-text"],
        Duration::from_secs(30),
    )?
    .stdout;
    assert!(
        text.contains("X509v3 Subject Alternative Name: critical"),
        "{text}"
    );
    assert!(
        text.contains("URI:spiffe://example.org/ns/prod/sa/api"),
        "{text}"
    );
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reaches_the_api_with_the_root_ca() -> anyhow::Result<()> {
    let s = TestServer::start(&Engine::Sqlite).await?;
    let work = tempfile::tempdir()?;
    let root = s.root_pem_path().to_string_lossy().into_owned();
    let out = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            &root,
            &format!("{}/readyz", s.url),
        ],
        Duration::from_secs(30),
    )?;
    assert!(
        out.ok() && out.stdout.contains("ready"),
        "{} {}",
        out.stdout,
        out.stderr
    );
    // the same host by name (the server certificate carries localhost)
    let port = s.url.rsplit(':').next().unwrap_or_default();
    let out = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            &root,
            &format!("https://localhost:{port}/healthz"),
        ],
        Duration::from_secs(30),
    )?;
    assert!(out.ok(), "{}", out.stderr);
    // without the root CA curl refuses the server
    let out = run(
        "curl",
        &["-sS", "--max-time", "20", &format!("{}/healthz", s.url)],
        Duration::from_secs(30),
    )?;
    assert!(!out.ok(), "curl must not trust the server without the root");
    // issue with openssl + curl, as the README shows
    let csr = openssl_csr(
        work.path(),
        "curl",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=curl.example.com",
        Some("DNS:curl.example.com"),
    )?;
    let body = write(
        work.path(),
        "body.json",
        &json!({ "csr": std::fs::read_to_string(&csr)? }).to_string(),
    )?;
    let out = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            &root,
            "-H",
            &format!("Authorization: Bearer {}", s.admin_token),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{body}"),
            "-w",
            "\n%{http_code}",
            &format!("{}/api/v1/certificates", s.url),
        ],
        Duration::from_secs(30),
    )?;
    assert!(out.ok(), "{}", out.stderr);
    assert!(out.stdout.ends_with("201"), "{}", out.stdout);
    assert!(out.stdout.contains("BEGIN CERTIFICATE"));
    s.stop().await;
    Ok(())
}
