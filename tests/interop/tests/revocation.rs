//! Revocation as relying parties see it, checked by the real tools: `openssl crl` verifies
//! shard CRLs, `openssl verify -crl_check` rejects revoked certificates, `openssl ocsp`
//! reports good / revoked / unknown / unauthorized with the response signature verified,
//! `curl` fetches CRLs, CA certificates and OCSP GET answers from the plain-HTTP listener.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use trustbox_client::Client;
use trustbox_testkit::{engines, openssl_csr, run, Engine, Output, TestServer};

const T: Duration = Duration::from_secs(30);

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, bytes)?;
    Ok(p)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Runs a peer tool. The in-process server shares this test's runtime: blocking a worker
/// thread without `block_in_place` could starve tasks queued on it (the revocation worker).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

fn openssl(args: &[&str]) -> anyhow::Result<Output> {
    blocking(|| run("openssl", args, T))
}

fn pause() {
    blocking(|| std::thread::sleep(Duration::from_millis(200)));
}

/// `curl -sS` with `args`; returns (status, headers, body path).
fn curl_get(url: &str, out: &Path, extra: &[&str]) -> anyhow::Result<(u16, String)> {
    let mut args = vec!["-sS", "-D", "-", "-o"];
    let o = s(out);
    args.push(&o);
    args.extend_from_slice(extra);
    args.push(url);
    let r = blocking(|| run("curl", &args, T))?;
    anyhow::ensure!(r.ok(), "curl {url}: {}", r.stderr);
    let status = r
        .stdout
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, r.stdout.to_ascii_lowercase()))
}

/// Issues a P-256 certificate for `name` from `issuer` (default when None); returns the
/// API's JSON.
async fn issue(
    admin: &Client,
    dir: &Path,
    name: &str,
    issuer: Option<&str>,
) -> anyhow::Result<Value> {
    Ok(
        trustbox_testkit::issue_with_openssl_csr(admin, dir, name, issuer)
            .await?
            .0,
    )
}

/// One line of `openssl x509 -noout -ext NAME` holding a URI.
fn extension_uri(cert: &Path, ext: &str, prefix: &str) -> anyhow::Result<String> {
    let out = openssl(&["x509", "-in", &s(cert), "-noout", "-ext", ext])?;
    anyhow::ensure!(out.ok(), "{}", out.stderr);
    out.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("no {prefix} in {ext}: {}", out.stdout))
}

fn crl_url(cert: &Path) -> anyhow::Result<String> {
    extension_uri(cert, "crlDistributionPoints", "URI:")
}

fn ocsp_url(cert: &Path) -> anyhow::Result<String> {
    extension_uri(cert, "authorityInfoAccess", "OCSP - URI:")
}

/// Fetches a CRL until its number exceeds `after` (publication is asynchronous), bounded;
/// returns the DER path and its number.
fn fetch_crl(url: &str, dir: &Path, name: &str, after: u64) -> anyhow::Result<(PathBuf, u64)> {
    let out = dir.join(name);
    let deadline = Instant::now() + T;
    loop {
        let (status, _) = curl_get(url, &out, &[])?;
        if status == 200 {
            let text = openssl(&[
                "crl",
                "-inform",
                "DER",
                "-in",
                &s(&out),
                "-noout",
                "-crlnumber",
            ])?;
            let n = text
                .stdout
                .trim()
                .strip_prefix("crlNumber=0x")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or(0);
            if n > after {
                return Ok((out, n));
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "CRL {url} not past number {after} in time (last status {status})"
        );
        pause();
    }
}

fn to_pem_crl(der: &Path) -> anyhow::Result<PathBuf> {
    let pem = der.with_extension("crl.pem");
    let out = openssl(&["crl", "-inform", "DER", "-in", &s(der), "-out", &s(&pem)])?;
    anyhow::ensure!(out.ok(), "{}", out.stderr);
    Ok(pem)
}

/// `openssl ocsp` against `url`, retried while the responder says tryLater (its first
/// certificate is issued by the background worker right after start).
fn ocsp(url: &str, issuer: &Path, root: &Path, what: &[&str]) -> anyhow::Result<Output> {
    let deadline = Instant::now() + T;
    loop {
        let mut args = vec![
            "ocsp".to_owned(),
            "-issuer".into(),
            s(issuer),
            "-url".into(),
            url.into(),
            "-CAfile".into(),
            s(root),
        ];
        args.extend(what.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = openssl(&refs)?;
        let text = format!("{}{}", out.stdout, out.stderr);
        if !text.contains("trylater") || Instant::now() > deadline {
            return Ok(out);
        }
        pause();
    }
}

fn both(o: &Output) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

async fn issuing_ca(admin: &Client, dir: &Path) -> anyhow::Result<(String, PathBuf)> {
    let r = admin.get("/api/v1/issuers").await?;
    let list = r.json()?;
    let ca = list
        .as_array()
        .and_then(|a| a.iter().find(|i| i["is_root"] == false))
        .ok_or_else(|| anyhow::anyhow!("no issuing CA in {list}"))?;
    let pem = write(
        dir,
        "issuing-ca.pem",
        ca["certificate"].as_str().unwrap_or_default().as_bytes(),
    )?;
    Ok((ca["id"].as_str().unwrap_or_default().to_owned(), pem))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_and_ocsp_follow_a_revocation_on_every_engine() -> anyhow::Result<()> {
    for engine in engines().await {
        crl_and_ocsp_follow_a_revocation(&engine).await?;
    }
    Ok(())
}

async fn crl_and_ocsp_follow_a_revocation(engine: &Engine) -> anyhow::Result<()> {
    let srv = TestServer::start(engine).await?;
    let admin = srv.admin()?;
    let w = tempfile::tempdir()?;
    let dir = w.path();
    let root = srv.root_pem_path();
    let (ca_id, ca_pem) = issuing_ca(&admin, dir).await?;
    let http = srv.http_url.clone().unwrap_or_default();

    let issued = issue(&admin, dir, "web", None).await?;
    let leaf = dir.join("web.pem");
    let chain = dir.join("web.chain.pem");
    let crl = crl_url(&leaf)?;
    assert_eq!(crl, format!("{http}/crl/{ca_id}/0.crl"), "{engine:?}");
    let ocsp_uri = ocsp_url(&leaf)?;
    assert_eq!(ocsp_uri, format!("{http}/ocsp/{ca_id}"));

    // The AIA caIssuers URL serves the issuer's certificate (DER).
    let ca_issuers = extension_uri(&leaf, "authorityInfoAccess", "CA Issuers - URI:")?;
    let (status, headers) = curl_get(&ca_issuers, &dir.join("ca.der"), &[])?;
    assert_eq!(status, 200);
    assert!(
        headers.contains("content-type: application/pkix-cert"),
        "{headers}"
    );
    let der_pem = openssl(&["x509", "-inform", "DER", "-in", &s(&dir.join("ca.der"))])?;
    assert_eq!(
        der_pem.stdout.trim(),
        std::fs::read_to_string(&ca_pem)?.trim()
    );

    // Before revocation: the CRL verifies against its CA and accepts the certificate.
    let (crl_der, n1) = fetch_crl(&crl, dir, "before.crl", 0)?;
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &s(&crl_der),
        "-CAfile",
        &s(&ca_pem),
        "-noout",
    ])?;
    assert!(both(&out).contains("verify OK"), "{}", both(&out));
    let crl_pem = to_pem_crl(&crl_der)?;
    let out = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &s(&crl_pem),
        "-CAfile",
        &s(&root),
        "-untrusted",
        &s(&chain),
        &s(&leaf),
    ])?;
    assert!(out.ok(), "good certificate with its CRL: {}", both(&out));
    let (status, headers) = curl_get(&crl, &dir.join("h.crl"), &[])?;
    assert_eq!(status, 200);
    for h in [
        "content-type: application/pkix-crl",
        "etag: \"",
        "last-modified: ",
        "expires: ",
        "cache-control: public, max-age=",
    ] {
        assert!(headers.contains(h), "{h} missing in {headers}");
    }
    let etag = headers
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let (status, _) = curl_get(
        &crl,
        &dir.join("h2.crl"),
        &["-H", &format!("If-None-Match: {etag}")],
    )?;
    assert_eq!(status, 304, "a fresh CRL is not sent again");
    let (status, headers) = curl_get(&crl.replace(".crl", ".pem"), &dir.join("c.pem"), &[])?;
    assert_eq!(status, 200);
    assert!(headers.contains("application/x-pem-file"));
    assert!(std::fs::read_to_string(dir.join("c.pem"))?.starts_with("-----BEGIN X509 CRL-----"));

    // OCSP before revocation: good, signature verified, with and without a nonce.
    let out = ocsp(
        &ocsp_uri,
        &ca_pem,
        &root,
        &["-cert", &s(&leaf), "-no_nonce"],
    )?;
    assert!(both(&out).contains("Response verify OK"), "{}", both(&out));
    assert!(out.stdout.contains("web.pem: good"), "{}", both(&out));
    let out = ocsp(&ocsp_uri, &ca_pem, &root, &["-cert", &s(&leaf), "-nonce"])?;
    assert!(both(&out).contains("Response verify OK"), "{}", both(&out));
    assert!(!both(&out).contains("WARNING: no nonce"), "{}", both(&out));
    assert!(out.stdout.contains("web.pem: good"), "{}", both(&out));

    // A serial this CA never issued is unknown; a CertID naming another CA is unauthorized.
    let out = ocsp(
        &ocsp_uri,
        &ca_pem,
        &root,
        &["-serial", "0x0123456789abcdef", "-no_nonce"],
    )?;
    assert!(both(&out).contains("Response verify OK"), "{}", both(&out));
    assert!(out.stdout.contains(": unknown"), "{}", both(&out));
    let out = ocsp(&ocsp_uri, &root, &root, &["-serial", "0x01", "-no_nonce"])?;
    assert!(both(&out).contains("unauthorized"), "{}", both(&out));

    // Revoke through the API.
    let id = issued["id"].as_str().unwrap_or_default();
    let r = admin
        .post_json(
            &format!("/api/v1/certificates/{id}/revoke"),
            &json!({"reason": "keyCompromise", "invalidity_date": "2026-01-01T00:00:00Z"}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());

    // The CRL is regenerated (by the background worker) and lists it with its reason.
    let (crl_der, n2) = fetch_crl(&crl, dir, "after.crl", n1)?;
    assert!(n2 > n1);
    let text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &s(&crl_der),
        "-CAfile",
        &s(&ca_pem),
        "-noout",
        "-text",
    ])?;
    let text = both(&text);
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Invalidity Date"), "{text}");
    assert!(
        text.contains("Issuing Distribution Point: critical"),
        "{text}"
    );
    let serial = issued["serial"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(text.contains(&serial), "serial {serial} not listed: {text}");
    let crl_pem = to_pem_crl(&crl_der)?;
    let out = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &s(&crl_pem),
        "-CAfile",
        &s(&root),
        "-untrusted",
        &s(&chain),
        &s(&leaf),
    ])?;
    assert!(!out.ok(), "revoked certificate accepted: {}", both(&out));
    assert!(both(&out).contains("certificate revoked"), "{}", both(&out));

    // OCSP after revocation: revoked, with reason; GET (base64 in the path) too.
    let out = ocsp(
        &ocsp_uri,
        &ca_pem,
        &root,
        &["-cert", &s(&leaf), "-no_nonce"],
    )?;
    assert!(both(&out).contains("Response verify OK"), "{}", both(&out));
    assert!(out.stdout.contains("web.pem: revoked"), "{}", both(&out));
    assert!(
        out.stdout.contains("Reason: keyCompromise"),
        "{}",
        both(&out)
    );
    let req = dir.join("req.der");
    let out = openssl(&[
        "ocsp",
        "-issuer",
        &s(&ca_pem),
        "-cert",
        &s(&leaf),
        "-no_nonce",
        "-reqout",
        &s(&req),
    ])?;
    assert!(out.ok(), "{}", both(&out));
    let b64 = openssl(&["base64", "-A", "-in", &s(&req)])?.stdout;
    let encoded: String = b64
        .trim()
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_owned(),
            '/' => "%2F".to_owned(),
            '=' => "%3D".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let resp = dir.join("get.der");
    let (status, headers) = curl_get(&format!("{ocsp_uri}/{encoded}"), &resp, &[])?;
    assert_eq!(status, 200);
    assert!(headers.contains("application/ocsp-response"), "{headers}");
    let out = openssl(&[
        "ocsp",
        "-respin",
        &s(&resp),
        "-issuer",
        &s(&ca_pem),
        "-cert",
        &s(&leaf),
        "-CAfile",
        &s(&root),
        "-no_nonce",
    ])?;
    assert!(both(&out).contains("Response verify OK"), "{}", both(&out));
    assert!(out.stdout.contains("revoked"), "{}", both(&out));

    // The revocation is in the audit chain with who and why.
    let audit = admin.get("/api/v1/audit?limit=1000").await?.json()?;
    let ev = audit["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["action"] == "certificate.revoke" && e["outcome"] == "success")
        })
        .cloned()
        .unwrap_or_default();
    assert!(
        ev["details"]
            .as_str()
            .unwrap_or_default()
            .contains("keyCompromise"),
        "{audit}"
    );
    srv.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_crls_name_their_own_url_and_a_revoked_intermediate_is_on_its_roots_crl(
) -> anyhow::Result<()> {
    let dir0 = tempfile::tempdir()?;
    let cfg = trustbox_server::ServerConfig {
        data_dir: dir0.path().join("data"),
        listen: "127.0.0.1:0".parse()?,
        http_listen: Some("127.0.0.1:0".parse()?),
        crl_shards: 4,
        ..Default::default()
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let srv = TestServer::start_with(dir0, cfg).await?;
    let admin = srv.admin()?;
    let w = tempfile::tempdir()?;
    let dir = w.path();
    let root = srv.root_pem_path();
    let (ca_id, ca_pem) = issuing_ca(&admin, dir).await?;

    // Certificates spread over the four shards; each shard's CRL names its own URL.
    let mut by_shard: std::collections::BTreeMap<String, Vec<(Value, PathBuf)>> =
        Default::default();
    for n in 0..24 {
        let v = issue(&admin, dir, &format!("s{n}"), None).await?;
        let leaf = dir.join(format!("s{n}.pem"));
        let url = crl_url(&leaf)?;
        let prefix = format!("{}/crl/{ca_id}/", srv.http_url.clone().unwrap_or_default());
        let shard = url
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".crl"))
            .and_then(|n| n.parse::<u32>().ok());
        assert!(shard.is_some_and(|n| n < 4), "{url}");
        by_shard.entry(url).or_default().push((v, leaf));
    }
    assert!(
        by_shard.len() >= 3,
        "24 random serials over 4 shards: {:?}",
        by_shard.keys()
    );
    for url in by_shard.keys() {
        let (der, _) = fetch_crl(url, dir, "shard.crl", 0)?;
        let text = both(&openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &s(&der),
            "-CAfile",
            &s(&ca_pem),
            "-noout",
            "-text",
        ])?);
        assert!(text.contains("verify OK"), "{text}");
        assert!(
            text.contains("Issuing Distribution Point: critical"),
            "{text}"
        );
        assert!(
            text.contains(&format!("URI:{url}")),
            "{url} not its own IDP: {text}"
        );
    }
    // Revoke one certificate per shard: each is listed on its own shard only.
    let mut numbers = std::collections::BTreeMap::new();
    for (url, certs) in &by_shard {
        let (_, n) = fetch_crl(url, dir, "n.crl", 0)?;
        numbers.insert(url.clone(), n);
        let id = certs[0].0["id"].as_str().unwrap_or_default();
        let r = admin
            .post_json(
                &format!("/api/v1/certificates/{id}/revoke"),
                &json!({"reason": "superseded"}),
            )
            .await?;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for (url, certs) in &by_shard {
        let (der, _) = fetch_crl(url, dir, "after.crl", numbers[url])?;
        let text = both(&openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &s(&der),
            "-noout",
            "-text",
        ])?);
        for (other_url, other) in &by_shard {
            let serial = other[0].0["serial"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_uppercase();
            assert_eq!(
                text.contains(&serial),
                other_url == url,
                "{serial} on {url}: {text}"
            );
        }
        let pem = to_pem_crl(&der)?;
        let chain = dir.join(format!(
            "{}.chain.pem",
            certs[0]
                .1
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
        ));
        let out = openssl(&[
            "verify",
            "-crl_check",
            "-CRLfile",
            &s(&pem),
            "-CAfile",
            &s(&root),
            "-untrusted",
            &s(&chain),
            &s(&certs[0].1),
        ])?;
        assert!(both(&out).contains("certificate revoked"), "{}", both(&out));
    }
    // A shard number out of range is a 404, not a 500.
    let base = srv.http_url.clone().unwrap_or_default();
    let (status, _) = curl_get(&format!("{base}/crl/{ca_id}/4.crl"), &dir.join("x"), &[])?;
    assert_eq!(status, 404);

    // A new intermediate; revoking it puts it on its root's CRL and in the root's OCSP, and
    // it issues nothing more.
    let r = admin
        .post_json(
            "/api/v1/issuers",
            &json!({"name": "team-ca", "common_name": "Team CA", "parent": "root", "path_len": 0}),
        )
        .await?;
    assert_eq!(r.status, 201, "{}", r.text());
    let team = r.json()?;
    let team_id = team["id"].as_str().unwrap_or_default().to_owned();
    let team_pem = write(
        dir,
        "team.pem",
        team["certificate"].as_str().unwrap_or_default().as_bytes(),
    )?;
    let root_crl = crl_url(&team_pem)?;
    let root_ocsp = ocsp_url(&team_pem)?;
    issue(&admin, dir, "teamleaf", Some("team-ca")).await?;
    let (_, before) = fetch_crl(&root_crl, dir, "root.crl", 0)?;
    let out = ocsp(
        &root_ocsp,
        &root,
        &root,
        &["-cert", &s(&team_pem), "-no_nonce"],
    )?;
    assert!(out.stdout.contains("team.pem: good"), "{}", both(&out));
    let r = admin
        .post_json(
            &format!("/api/v1/issuers/{team_id}/revoke"),
            &json!({"reason": "cACompromise"}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());
    let (root_der, _) = fetch_crl(&root_crl, dir, "root2.crl", before)?;
    let text = both(&openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &s(&root_der),
        "-CAfile",
        &s(&root),
        "-noout",
        "-text",
    ])?);
    assert!(
        text.contains("verify OK") && text.contains("CA Compromise"),
        "{text}"
    );
    let team_serial = team["serial"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(text.contains(&team_serial), "{team_serial}: {text}");
    // openssl checks the whole chain against both CRLs and finds the revoked intermediate.
    let leaf_crl_url = crl_url(&dir.join("teamleaf.pem"))?;
    let (leaf_crl, _) = fetch_crl(&leaf_crl_url, dir, "team-leaf.crl", 0)?;
    let crls = dir.join("both.crl.pem");
    std::fs::write(
        &crls,
        [
            std::fs::read(to_pem_crl(&leaf_crl)?)?,
            std::fs::read(to_pem_crl(&root_der)?)?,
        ]
        .concat(),
    )?;
    let out = openssl(&[
        "verify",
        "-crl_check_all",
        "-CRLfile",
        &s(&crls),
        "-CAfile",
        &s(&root),
        "-untrusted",
        &s(&team_pem),
        &s(&dir.join("teamleaf.pem")),
    ])?;
    assert!(both(&out).contains("certificate revoked"), "{}", both(&out));
    let out = ocsp(
        &root_ocsp,
        &root,
        &root,
        &["-cert", &s(&team_pem), "-no_nonce"],
    )?;
    assert!(out.stdout.contains("team.pem: revoked"), "{}", both(&out));
    let csr = openssl_csr(
        dir,
        "late",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=late.example.com",
        Some("DNS:late.example.com"),
    )?;
    let r = admin
        .post_json(
            "/api/v1/certificates",
            &json!({"csr": std::fs::read_to_string(csr)?, "issuer": "team-ca"}),
        )
        .await?;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()?["code"], "issuer-revoked");
    let r = admin
        .post_json(
            "/api/v1/issuers/root/revoke",
            &json!({"reason": "cACompromise"}),
        )
        .await?;
    assert_eq!(r.status, 404, "issuers are revoked by id: {}", r.text());
    srv.stop().await;
    Ok(())
}

/// A server on SQLite with one certificate `NAME.pem` whose OCSP responder already answers
/// `good` for it (its responder certificate is issued by the background worker).
struct Answering {
    srv: TestServer,
    admin: Client,
    work: tempfile::TempDir,
    root: PathBuf,
    ca_id: String,
    ca_pem: PathBuf,
    url: String,
}

async fn answering(name: &str) -> anyhow::Result<Answering> {
    let srv = TestServer::start(&Engine::Sqlite).await?;
    let admin = srv.admin()?;
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let root = srv.root_pem_path();
    let (ca_id, ca_pem) = issuing_ca(&admin, dir).await?;
    issue(&admin, dir, name, None).await?;
    let leaf = dir.join(format!("{name}.pem"));
    let url = ocsp_url(&leaf)?;
    let out = ocsp(&url, &ca_pem, &root, &["-cert", &s(&leaf), "-no_nonce"])?;
    assert!(
        out.stdout.contains(&format!("{name}.pem: good")),
        "{}",
        both(&out)
    );
    Ok(Answering {
        srv,
        admin,
        work,
        root,
        ca_id,
        ca_pem,
        url,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_can_be_switched_off_per_issuer() -> anyhow::Result<()> {
    let Answering {
        srv,
        admin,
        work,
        root,
        ca_id,
        ca_pem,
        url,
    } = answering("on").await?;
    let dir = work.path();
    let r = admin
        .request(
            "PATCH",
            &format!("/api/v1/issuers/{ca_id}"),
            Some(("application/json", br#"{"ocsp_enabled": false}"#.to_vec())),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()?["ocsp_enabled"], false);
    issue(&admin, dir, "off", None).await?;
    let text = openssl(&["x509", "-in", &s(&dir.join("off.pem")), "-noout", "-text"])?.stdout;
    assert!(!text.contains("OCSP - URI"), "no OCSP URL once off: {text}");
    assert!(text.contains("CA Issuers - URI"), "{text}");
    let out = ocsp(
        &url,
        &ca_pem,
        &root,
        &["-cert", &s(&dir.join("on.pem")), "-no_nonce"],
    )?;
    assert!(both(&out).contains("unauthorized"), "{}", both(&out));
    srv.stop().await;
    Ok(())
}

/// The OCSPResponse status of a body that is an unsigned error response.
fn response_status(body: &[u8]) -> Option<u8> {
    match body {
        [0x30, 0x03, 0x0a, 0x01, s] => Some(*s),
        [0x30, ..] => Some(0),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_revocation_requests_get_the_protocols_own_errors() -> anyhow::Result<()> {
    let Answering {
        srv,
        admin: _,
        work,
        root: _,
        ca_id,
        ca_pem,
        url: _,
    } = answering("x").await?;
    let dir = work.path();
    let req = dir.join("req.der");
    let out = openssl(&[
        "ocsp",
        "-issuer",
        &s(&ca_pem),
        "-cert",
        &s(&dir.join("x.pem")),
        "-no_nonce",
        "-reqout",
        &s(&req),
    ])?;
    assert!(out.ok());
    let good = std::fs::read(&req)?;
    let http = Client::new(&srv.http_url.clone().unwrap_or_default(), None, None)?;
    let path = format!("/ocsp/{ca_id}");
    let post = |body: Vec<u8>| {
        let http = &http;
        let path = path.clone();
        async move {
            http.request("POST", &path, Some(("application/ocsp-request", body)))
                .await
        }
    };
    let r = post(good.clone()).await?;
    assert_eq!((r.status, response_status(&r.body)), (200, Some(0)));
    // SHA-1 (1.3.14.3.2.26) -> an unknown OID of the same length (1.3.14.3.2.99).
    let sha1 = [0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a];
    let pos = good
        .windows(sha1.len())
        .position(|w| w == sha1)
        .ok_or_else(|| anyhow::anyhow!("no SHA-1 OID in the request"))?;
    let mut wrong_hash = good.clone();
    wrong_hash[pos + 6] = 0x63;
    let cases: Vec<(&str, Vec<u8>, u8)> = vec![
        ("garbage", b"hello, responder".to_vec(), 1),
        ("empty", Vec::new(), 1),
        ("truncated", good[..good.len() / 2].to_vec(), 1),
        ("trailing", [good.clone(), vec![0]].concat(), 1),
        ("wrong hash algorithm", wrong_hash, 1),
        ("huge", vec![0x30; 256 * 1024], 1),
    ];
    for (what, body, status) in cases {
        let r = post(body).await?;
        assert_eq!(r.status, 200, "{what}");
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/ocsp-response"),
            "{what}"
        );
        assert_eq!(
            response_status(&r.body),
            Some(status),
            "{what}: {:?}",
            r.body
        );
    }
    for (what, p, status) in [
        (
            "unknown issuer",
            format!("/ocsp/{}", "01a20380-0000-7000-8000-000000000000"),
            6,
        ),
        ("not an issuer id", "/ocsp/nope".to_owned(), 6),
    ] {
        let r = http
            .request("POST", &p, Some(("application/ocsp-request", good.clone())))
            .await?;
        assert_eq!(
            (r.status, response_status(&r.body)),
            (200, Some(status)),
            "{what}"
        );
    }
    for (what, p) in [
        ("bad base64", format!("/ocsp/{ca_id}/%%%not-base64")),
        ("no request", format!("/ocsp/{ca_id}/")),
        ("empty GET", format!("/ocsp/{ca_id}")),
    ] {
        let r = http.get(&p).await?;
        assert_eq!(
            (r.status, response_status(&r.body)),
            (200, Some(1)),
            "{what}"
        );
    }
    for (what, p, status) in [
        (
            "unknown issuer CRL",
            "/crl/01a20380-0000-7000-8000-000000000000/0.crl".to_owned(),
            404,
        ),
        ("shard out of range", format!("/crl/{ca_id}/9.crl"), 404),
        ("shard not a number", format!("/crl/{ca_id}/abc.crl"), 404),
        ("unknown format", format!("/crl/{ca_id}/0.txt"), 404),
        ("unknown CA certificate", "/ca/nope.cer".to_owned(), 404),
    ] {
        let r = http.get(&p).await?;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/problem+json"),
            "{what}"
        );
    }
    srv.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_revocations_regenerates_the_crl_a_few_times_not_per_revocation(
) -> anyhow::Result<()> {
    let srv = TestServer::start(&Engine::Sqlite).await?;
    let admin = srv.admin()?;
    let w = tempfile::tempdir()?;
    let dir = w.path();
    let csr = trustbox_testkit::rcgen_csr(&["burst.example.com"]);
    let mut ids = Vec::new();
    for _ in 0..60 {
        let r = admin
            .post_json("/api/v1/certificates", &json!({ "csr": csr }))
            .await?;
        anyhow::ensure!(r.status == 201, "{}", r.text());
        ids.push(r.json()?["id"].as_str().unwrap_or_default().to_owned());
    }
    let one = issue(&admin, dir, "probe", None).await?;
    let url = crl_url(&dir.join("probe.pem"))?;
    let (_, before) = fetch_crl(&url, dir, "b.crl", 0)?;
    let mut tasks = Vec::new();
    for id in ids {
        let c = srv.admin()?;
        tasks.push(tokio::spawn(async move {
            c.post_json(
                &format!("/api/v1/certificates/{id}/revoke"),
                &json!({"reason": "superseded"}),
            )
            .await
        }));
    }
    for t in tasks {
        let r = t.await??;
        anyhow::ensure!(r.status == 200, "{}", r.text());
    }
    // Wait until the CRL lists all 60, then look at how many numbers it took.
    let deadline = Instant::now() + T;
    let after = loop {
        let (der, n) = fetch_crl(&url, dir, "a.crl", before)?;
        let text = openssl(&["crl", "-inform", "DER", "-in", &s(&der), "-noout", "-text"])?.stdout;
        if text.matches("Serial Number:").count() == 60 {
            break n;
        }
        anyhow::ensure!(Instant::now() < deadline, "CRL never listed all 60");
        pause();
    };
    assert!(
        after - before <= 10,
        "60 revocations took {} CRL regenerations",
        after - before
    );
    assert!(one["id"].is_string());
    srv.stop().await;
    Ok(())
}

/// Two replicas on one PostgreSQL database (sharing the KEK, as replicas do): a certificate
/// revoked through one is reported revoked by the other's OCSP responder (cached "good"
/// answers are dropped through the store), and both serve the same CRL, published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_on_revocation_through_postgres() -> anyhow::Result<()> {
    let Some(url) = trustbox_store_postgres::testing::fresh_schema_url().await else {
        return Ok(());
    };
    let a = TestServer::start(&Engine::Postgres(url.clone())).await?;
    let (_dir_b, b) = trustbox_testkit::start_replica(&a, url).await?;
    let b_http = b
        .http_addr
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    let admin = a.admin()?;
    let w = tempfile::tempdir()?;
    let dir = w.path();
    let root = a.root_pem_path();
    let (ca_id, ca_pem) = issuing_ca(&admin, dir).await?;
    let issued = issue(&admin, dir, "shared", None).await?;
    let leaf = dir.join("shared.pem");
    let a_ocsp = ocsp_url(&leaf)?;
    let b_ocsp = format!("{b_http}/ocsp/{ca_id}");
    // Both replicas answer good (and cache it).
    for url in [&a_ocsp, &b_ocsp] {
        let out = ocsp(url, &ca_pem, &root, &["-cert", &s(&leaf), "-no_nonce"])?;
        assert!(
            out.stdout.contains("shared.pem: good"),
            "{url}: {}",
            both(&out)
        );
    }
    let id = issued["id"].as_str().unwrap_or_default();
    let r = admin
        .post_json(
            &format!("/api/v1/certificates/{id}/revoke"),
            &json!({"reason": "keyCompromise"}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());
    // Replica B learns of it within a few seconds.
    let deadline = Instant::now() + T;
    loop {
        let out = ocsp(&b_ocsp, &ca_pem, &root, &["-cert", &s(&leaf), "-no_nonce"])?;
        if out.stdout.contains("shared.pem: revoked") {
            assert!(both(&out).contains("Response verify OK"), "{}", both(&out));
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "replica B still answers: {}",
            both(&out)
        );
        pause();
    }
    // Both serve the same published CRL, which lists it.
    let path = format!("/crl/{ca_id}/0.crl");
    let (crl_a, n_a) = fetch_crl(
        &format!("{}{path}", a.http_url.clone().unwrap_or_default()),
        dir,
        "a.crl",
        1,
    )?;
    let (crl_b, n_b) = fetch_crl(&format!("{b_http}{path}"), dir, "b.crl", n_a - 1)?;
    assert_eq!(n_a, n_b);
    assert_eq!(std::fs::read(crl_a)?, std::fs::read(crl_b)?);
    b.shutdown().await;
    a.stop().await;
    Ok(())
}
