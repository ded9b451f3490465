//! The REST API end to end, on every engine: issuance, inventory, revocation, auth,
//! tenants, profiles, issuers, bad input, audit chain, health and metrics.

use serde_json::{json, Value};
use trustbox_client::{Client, Response};
use trustbox_testkit::{engines, openssl_csr, rcgen_csr, Engine, TestServer};

async fn issue(c: &Client, csr: &str, extra: Value) -> anyhow::Result<Response> {
    let mut body = json!({ "csr": csr });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    Ok(c.post_json("/api/v1/certificates", &body).await?)
}

/// Leaf certificates visible to `c` (each tenant's issuing CA certificate, recorded in its
/// root's inventory, is not counted).
async fn count_certs(c: &Client) -> anyhow::Result<usize> {
    let r = c.get("/api/v1/certificates?limit=1000").await?;
    anyhow::ensure!(r.status == 200, "list failed: {}", r.text());
    Ok(r.json()?["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["profile"] != "ca@0" && c["profile"] != "ocsp-responder@0")
                .count()
        })
        .unwrap_or(0))
}

async fn success_issue_events(c: &Client) -> anyhow::Result<usize> {
    let r = c.get("/api/v1/audit?limit=1000").await?;
    let v = r.json()?;
    Ok(v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| {
                    e["action"] == "certificate.issue"
                        && e["outcome"] == "success"
                        && e["actor"] != "system:server-certificate"
                })
                .count()
        })
        .unwrap_or(0))
}

fn assert_problem(r: &Response, status: u16, code: &str) {
    assert_eq!(
        r.status,
        status,
        "expected {status} {code}, got {}: {}",
        r.status,
        r.text()
    );
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/problem+json"),
        "{}",
        r.text()
    );
    let v = r.json().expect("problem body is JSON");
    assert_eq!(v["status"], status);
    assert_eq!(v["code"], code, "{v}");
    assert!(v["type"]
        .as_str()
        .unwrap_or_default()
        .starts_with("urn:trustbox:problem:"));
    assert!(!v["detail"].as_str().unwrap_or_default().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_read_list_revoke_on_every_engine() -> anyhow::Result<()> {
    for engine in engines().await {
        let s = TestServer::start(&engine).await?;
        let c = s.admin()?;
        let mut ids = Vec::new();
        for n in 0..5 {
            let r = issue(
                &c,
                &rcgen_csr(&[&format!("h{n}.example.com"), "10.1.2.3"]),
                json!({"validity_days": 30}),
            )
            .await?;
            assert_eq!(r.status, 201, "{engine:?}: {}", r.text());
            let v = r.json()?;
            for k in [
                "id",
                "serial",
                "not_before",
                "not_after",
                "certificate",
                "chain",
            ] {
                assert!(
                    v[k].as_str().is_some_and(|s| !s.is_empty()),
                    "{k} missing in {v}"
                );
            }
            assert!(
                v["chain"]
                    .as_str()
                    .unwrap_or_default()
                    .matches("BEGIN CERTIFICATE")
                    .count()
                    == 1,
                "chain holds the intermediate only"
            );
            ids.push(v["id"].as_str().unwrap_or_default().to_owned());
        }
        let one = c
            .get(&format!("/api/v1/certificates/{}", ids[0]))
            .await?
            .json()?;
        assert_eq!(one["sans"], json!(["dns:h0.example.com", "ip:10.1.2.3"]));
        assert_eq!(one["key_type"], "ecdsa-p256");
        assert_eq!(one["status"], "valid");
        assert!(one["certificate"].as_str().is_some());

        // keyset pagination
        let p1 = c.get("/api/v1/certificates?limit=2").await?.json()?;
        assert_eq!(p1["items"].as_array().map(Vec::len), Some(2));
        let cursor = p1["next_cursor"].as_str().expect("more pages").to_owned();
        let p2 = c
            .get(&format!("/api/v1/certificates?limit=2&cursor={cursor}"))
            .await?
            .json()?;
        assert_ne!(p1["items"][0]["id"], p2["items"][0]["id"]);
        let by_san = c
            .get("/api/v1/certificates?san=h3.example.com")
            .await?
            .json()?;
        assert_eq!(by_san["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(by_san["items"][0]["id"], json!(ids[3]));

        // revoke
        let r = c
            .post_json(
                &format!("/api/v1/certificates/{}/revoke", ids[1]),
                &json!({"reason": "keyCompromise"}),
            )
            .await?;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()?["revocation_reason"], "keyCompromise");
        assert_problem(
            &c.post_json(
                &format!("/api/v1/certificates/{}/revoke", ids[1]),
                &json!({"reason": "superseded"}),
            )
            .await?,
            409,
            "already-revoked",
        );
        assert_problem(
            &c.post_json(
                &format!("/api/v1/certificates/{}/revoke", ids[2]),
                &json!({"reason": "bogus"}),
            )
            .await?,
            400,
            "invalid-reason",
        );
        let revoked = c.get("/api/v1/certificates?status=revoked").await?.json()?;
        assert_eq!(revoked["items"].as_array().map(Vec::len), Some(1));
        let shown = c
            .get(&format!("/api/v1/certificates/{}", ids[1]))
            .await?
            .json()?;
        assert_eq!(
            (
                shown["status"].as_str(),
                shown["revocation_reason"].as_str()
            ),
            (Some("revoked"), Some("keyCompromise"))
        );
        assert!(shown["revoked_at"].as_str().is_some());
        s.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_scopes_and_tenants() -> anyhow::Result<()> {
    for engine in engines().await {
        let s = TestServer::start(&engine).await?;
        let admin = s.admin()?;
        let csr = rcgen_csr(&["a.example.com"]);
        // fail closed
        assert_problem(
            &issue(&s.client(None)?, &csr, json!({})).await?,
            401,
            "unauthenticated",
        );
        assert_problem(
            &s.client(Some("tbx_notarealtoken".into()))?
                .get("/api/v1/certificates")
                .await?,
            401,
            "unauthenticated",
        );
        assert_problem(
            &s.client(None)?.get("/api/v1/openapi.json").await?,
            401,
            "unauthenticated",
        );
        // scopes
        let r = admin
            .post_json(
                "/api/v1/tokens",
                &json!({"name": "reader", "scopes": ["certs:read"]}),
            )
            .await?;
        assert_eq!(r.status, 201, "{}", r.text());
        let reader_tok = r.json()?;
        let secret = reader_tok["token"].as_str().expect("shown once").to_owned();
        assert!(secret.starts_with("tbx_"));
        let reader = s.client(Some(secret.clone()))?;
        assert_eq!(reader.get("/api/v1/certificates").await?.status, 200);
        assert_problem(&issue(&reader, &csr, json!({})).await?, 403, "forbidden");
        let listed = admin.get("/api/v1/tokens").await?.json()?;
        assert!(
            listed
                .as_array()
                .is_some_and(|a| a.iter().all(|t| t.get("token").is_none())),
            "secrets never listed"
        );
        // revoked token stops working
        let del = admin
            .request(
                "DELETE",
                &format!(
                    "/api/v1/tokens/{}",
                    reader_tok["id"].as_str().unwrap_or_default()
                ),
                None,
            )
            .await?;
        assert_eq!(del.status, 204);
        assert_problem(
            &reader.get("/api/v1/certificates").await?,
            401,
            "unauthenticated",
        );
        // tenants: another tenant's object is 404
        let mine = issue(&admin, &csr, json!({})).await?.json()?;
        let r = admin
            .post_json("/api/v1/tenants", &json!({"name": "acme"}))
            .await?;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = admin
            .post_json(
                "/api/v1/tokens",
                &json!({"name": "acme-admin", "scopes": ["admin"], "tenant": "acme"}),
            )
            .await?;
        assert_eq!(r.status, 201, "{}", r.text());
        let acme = s.client(r.json()?["token"].as_str().map(str::to_owned))?;
        assert_problem(
            &acme
                .get(&format!(
                    "/api/v1/certificates/{}",
                    mine["id"].as_str().unwrap_or_default()
                ))
                .await?,
            404,
            "not-found",
        );
        assert_eq!(count_certs(&acme).await?, 0, "a new tenant sees nothing");
        let theirs = issue(&acme, &rcgen_csr(&["b.example.com"]), json!({})).await?;
        assert_eq!(theirs.status, 201, "{}", theirs.text());
        assert_problem(
            &admin
                .get(&format!(
                    "/api/v1/certificates/{}",
                    theirs.json()?["id"].as_str().unwrap_or_default()
                ))
                .await?,
            404,
            "not-found",
        );
        assert_problem(
            &acme
                .post_json("/api/v1/tenants", &json!({"name": "evil"}))
                .await?,
            403,
            "forbidden",
        );
        s.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_changes_nothing() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let rsa1024 = std::fs::read_to_string(openssl_csr(
        work.path(),
        "weak",
        &["rsa:1024"],
        "/CN=weak.example.com",
        Some("DNS:weak.example.com"),
    )?)?;
    let ca_req = std::fs::read_to_string(
        openssl_csr(
            work.path(),
            "ca",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "/CN=ca.example.com",
            Some("DNS:ca.example.com\" -addext \"basicConstraints=critical,CA:TRUE"),
        )
        .or_else(|_| make_ca_csr(work.path()))?,
    )?;
    let mail = std::fs::read_to_string(openssl_csr(
        work.path(),
        "mail",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=ok.example.com",
        Some("DNS:ok.example.com,email:ops@example.com"),
    )?)?;
    for engine in engines().await {
        let s = TestServer::start(&engine).await?;
        let c = s.admin()?;
        let good = rcgen_csr(&["ok.example.com"]);
        let mut tampered = good.clone().into_bytes();
        // flip one base64 character in the middle of the signature area
        let pos = tampered.len() - 40;
        tampered[pos] = if tampered[pos] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered)?;
        // the server's own TLS certificate is the one row present from the start
        let before = count_certs(&c).await?;

        assert_problem(
            &issue(&c, "this is not a PEM", json!({})).await?,
            400,
            "bad-csr",
        );
        let r = issue(&c, &tampered, json!({})).await?;
        assert!(r.status == 400, "{}", r.text());
        let code = r.json()?["code"].as_str().unwrap_or_default().to_owned();
        assert!(code == "bad-csr-signature" || code == "bad-csr", "{code}");
        assert_problem(&issue(&c, &rsa1024, json!({})).await?, 400, "weak-key");
        assert_problem(&issue(&c, &ca_req, json!({})).await?, 400, "ca-requested");
        assert_problem(
            &issue(&c, &mail, json!({})).await?,
            400,
            "profile-violation",
        );
        assert_problem(
            &issue(&c, &good, json!({"validity_days": 398})).await?,
            400,
            "profile-violation",
        );
        assert_problem(
            &issue(&c, &good, json!({"profile": "nope"})).await?,
            400,
            "unknown-profile",
        );
        assert_problem(
            &issue(&c, &good, json!({"issuer": "nope"})).await?,
            404,
            "unknown-issuer",
        );
        assert_problem(
            &issue(&c, &good, json!({"colour": "blue"})).await?,
            422,
            "invalid-json",
        );
        let big = json!({ "csr": "A".repeat(1024 * 1024 + 10) });
        assert_problem(
            &c.post_json("/api/v1/certificates", &big).await?,
            413,
            "body-too-large",
        );
        let r = c
            .request(
                "POST",
                "/api/v1/certificates",
                Some(("text/plain", good.clone().into_bytes())),
            )
            .await?;
        assert_problem(&r, 415, "unsupported-media-type");
        let r = c
            .request(
                "POST",
                "/api/v1/certificates",
                Some(("application/json", b"{not json".to_vec())),
            )
            .await?;
        assert_problem(&r, 400, "malformed-json");
        assert_problem(
            &c.get("/api/v1/certificates/not-an-id").await?,
            404,
            "not-found",
        );
        assert_problem(&c.get("/api/v1/nothing-here").await?, 404, "not-found");
        assert_problem(
            &c.get("/api/v1/certificates?limit=0").await?,
            400,
            "invalid-query",
        );

        assert_eq!(
            count_certs(&c).await?,
            before,
            "{engine:?}: no certificate row written"
        );
        assert_eq!(
            success_issue_events(&c).await?,
            0,
            "{engine:?}: no success audit event written"
        );
        // and the good request still works afterwards
        assert_eq!(issue(&c, &good, json!({})).await?.status, 201);
        s.stop().await;
    }
    Ok(())
}

/// A CA:TRUE CSR via an openssl config file (for openssl builds whose `-addext` quoting
/// differs).
fn make_ca_csr(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let cnf = dir.join("ca.cnf");
    std::fs::write(
        &cnf,
        "[req]\ndistinguished_name=dn\nreq_extensions=ext\nprompt=no\n[dn]\nCN=ca.example.com\n[ext]\nbasicConstraints=critical,CA:TRUE\nsubjectAltName=DNS:ca.example.com\n",
    )?;
    let key = dir.join("ca2.key");
    let csr = dir.join("ca2.csr");
    let out = trustbox_testkit::run(
        "openssl",
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            &key.to_string_lossy(),
            "-out",
            &csr.to_string_lossy(),
            "-config",
            &cnf.to_string_lossy(),
        ],
        std::time::Duration::from_secs(30),
    )?;
    anyhow::ensure!(out.ok(), "{}", out.stderr);
    Ok(csr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_chain_detects_a_direct_edit() -> anyhow::Result<()> {
    for engine in engines().await {
        let s = TestServer::start(&engine).await?;
        let c = s.admin()?;
        for n in 0..3 {
            assert_eq!(
                issue(&c, &rcgen_csr(&[&format!("a{n}.example.com")]), json!({}))
                    .await?
                    .status,
                201
            );
        }
        let v = c.get("/api/v1/audit/verify").await?.json()?;
        assert_eq!(v["valid"], true, "{v}");
        let events = c.get("/api/v1/audit?limit=1000").await?.json()?;
        let target = events["items"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|e| {
                        e["action"] == "certificate.issue"
                            && e["resource"]
                                .as_str()
                                .is_some_and(|r| r.starts_with("certificate:"))
                    })
                    .cloned()
            })
            .expect("an issuance event");
        let seq = target["seq"].as_i64().expect("seq");
        let tenant = target["tenant"].as_str().expect("tenant").to_owned();
        let sql =
            "UPDATE audit_events SET actor = 'token:forged' WHERE tenant_id = $1 AND seq = $2";
        match &engine {
            Engine::Sqlite => {
                let pool =
                    sqlx::SqlitePool::connect(&format!("sqlite://{}", s.database_path().display()))
                        .await?;
                sqlx::query(sql)
                    .bind(&tenant)
                    .bind(seq)
                    .execute(&pool)
                    .await?;
                pool.close().await;
            }
            Engine::Postgres(url) => {
                let pool = sqlx::PgPool::connect(url).await?;
                sqlx::query(sql)
                    .bind(&tenant)
                    .bind(seq)
                    .execute(&pool)
                    .await?;
                pool.close().await;
            }
        }
        let v = c.get("/api/v1/audit/verify").await?.json()?;
        assert_eq!(v["valid"], false, "{engine:?}: {v}");
        assert_eq!(
            v["broken_at"], seq,
            "{engine:?}: names the edited event: {v}"
        );
        s.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_and_issuers_can_be_managed() -> anyhow::Result<()> {
    let engine = Engine::Sqlite;
    let s = TestServer::start(&engine).await?;
    let c = s.admin()?;
    let profiles = c.get("/api/v1/profiles").await?.json()?;
    let names: Vec<&str> = profiles
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["profile"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["mtls", "tls-client", "tls-server"]);
    let mut internal = c.get("/api/v1/profiles/tls-server").await?.json()?["profile"].clone();
    internal["name"] = json!("internal");
    internal["max_validity_days"] = json!(30);
    internal["default_validity_days"] = json!(7);
    internal["san"]["dns"]["allowed"] = json!(["*.corp.example"]);
    let r = c.post_json("/api/v1/profiles", &internal).await?;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()?["version"], 1);
    assert_problem(
        &c.post_json("/api/v1/profiles", &internal).await?,
        409,
        "conflict",
    );
    assert_problem(
        &issue(
            &c,
            &rcgen_csr(&["www.example.com"]),
            json!({"profile": "internal"}),
        )
        .await?,
        400,
        "profile-violation",
    );
    let ok = issue(
        &c,
        &rcgen_csr(&["db.corp.example"]),
        json!({"profile": "internal"}),
    )
    .await?;
    assert_eq!(ok.status, 201, "{}", ok.text());
    internal["max_validity_days"] = json!(60);
    let r = c
        .request(
            "PUT",
            "/api/v1/profiles/internal",
            Some(("application/json", internal.to_string().into_bytes())),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()?["version"], 2);
    let shown = c
        .get(&format!(
            "/api/v1/certificates/{}",
            ok.json()?["id"].as_str().unwrap_or_default()
        ))
        .await?
        .json()?;
    assert_eq!(shown["profile"], "internal@1");
    internal["key_usage"] = json!(["keyCertSign"]);
    let r = c
        .request(
            "PUT",
            "/api/v1/profiles/internal",
            Some(("application/json", internal.to_string().into_bytes())),
        )
        .await?;
    assert_problem(&r, 400, "forbidden-in-leaf-profile");

    // a new Ed25519 intermediate under the root, and issuing from it
    let issuers = c.get("/api/v1/issuers").await?.json()?;
    assert_eq!(issuers.as_array().map(Vec::len), Some(2));
    let r = c
        .post_json("/api/v1/issuers", &json!({"name": "edge", "common_name": "Edge CA", "parent": "root", "key_algorithm": "ed25519", "validity_days": 365}))
        .await?;
    assert_eq!(r.status, 201, "{}", r.text());
    let edge = r.json()?;
    assert_eq!(edge["is_root"], false);
    let got = issue(
        &c,
        &rcgen_csr(&["edge.example.com"]),
        json!({"issuer": "edge"}),
    )
    .await?;
    assert_eq!(got.status, 201, "{}", got.text());
    assert_eq!(got.json()?["chain"], edge["certificate"]);
    assert_problem(
        &c.post_json(
            "/api/v1/issuers",
            &json!({"name": "weak", "common_name": "Weak", "key_algorithm": "rsa-2048"}),
        )
        .await?,
        400,
        "weak-key",
    );
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_openapi() -> anyhow::Result<()> {
    let s = TestServer::start(&Engine::Sqlite).await?;
    let anon = s.client(None)?;
    assert_eq!(anon.get("/healthz").await?.status, 200);
    assert_eq!(anon.get("/readyz").await?.status, 200);
    let c = s.admin()?;
    assert_eq!(
        issue(&c, &rcgen_csr(&["m.example.com"]), json!({}))
            .await?
            .status,
        201
    );
    // made-up profile names never become metric labels
    for n in 0..20 {
        let r = issue(
            &c,
            &rcgen_csr(&["m.example.com"]),
            json!({"profile": format!("made-up-{n}")}),
        )
        .await?;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let m = anon.get("/metrics").await?;
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(
        !text.contains("made-up-"),
        "unbounded label values in /metrics"
    );
    assert!(
        text.contains("profile=\"unknown\",outcome=\"rejected\""),
        "refusals counted under profile=\"unknown\""
    );
    assert!(text.contains("profile=\"tls-server\",outcome=\"issued\""));
    for needle in [
        "trustbox_issuances_total",
        "trustbox_issuance_seconds_bucket",
        "trustbox_store_commit_batch_size",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
    assert!(!text.contains(&s.admin_token), "secrets never in metrics");
    assert!(s.admin_token.starts_with("tbx_"));
    for shown in [format!("{s:?}"), format!("{:?}", s.server)] {
        assert!(!shown.contains("tbx_"), "a secret in Debug output: {shown}");
    }
    let doc = c.get("/api/v1/openapi.json").await?.json()?;
    assert!(doc["openapi"]
        .as_str()
        .unwrap_or_default()
        .starts_with("3.1"));
    assert!(doc["paths"]["/api/v1/certificates"]["post"].is_object());
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_constraints_hold_before_signing() -> anyhow::Result<()> {
    let s = TestServer::start(&Engine::Sqlite).await?;
    let c = s.admin()?;
    let issuers = c.get("/api/v1/issuers").await?.json()?;
    let list = issuers.as_array().cloned().unwrap_or_default();
    let issuing = list
        .iter()
        .find(|i| i["is_root"] == false)
        .cloned()
        .unwrap_or_default();
    let root = list
        .iter()
        .find(|i| i["is_root"] == true)
        .cloned()
        .unwrap_or_default();
    // the default issuing CA has pathLen 0: nothing may be created under it
    let r = c
        .post_json(
            "/api/v1/issuers",
            &json!({"name": "too-deep", "common_name": "Too Deep", "parent": issuing["id"]}),
        )
        .await?;
    assert_problem(&r, 400, "ca-constraint");
    // under the root, a child asking for more than the root allows is clamped
    let r = c
        .post_json(
            "/api/v1/issuers",
            &json!({"name": "mid", "common_name": "Mid", "parent": root["id"], "path_len": 9,
                    "validity_days": 36000}),
        )
        .await?;
    assert_eq!(r.status, 201, "{}", r.text());
    let mid = r.json()?;
    assert!(
        mid["not_after"].as_str() <= root["not_after"].as_str(),
        "a child never outlives its parent: {mid}"
    );
    let work = tempfile::tempdir()?;
    let pem = work.path().join("mid.pem");
    std::fs::write(&pem, mid["certificate"].as_str().unwrap_or_default())?;
    let out = trustbox_testkit::run(
        "openssl",
        &[
            "x509",
            "-in",
            &pem.to_string_lossy(),
            "-noout",
            "-ext",
            "basicConstraints",
        ],
        std::time::Duration::from_secs(10),
    )?;
    assert!(out.stdout.contains("CA:TRUE"), "{}", out.stdout);
    // the default root has pathlen:1, so "mid" asking for 9 gets 0
    assert!(out.stdout.contains("pathlen:0"), "{}", out.stdout);
    // leaf profiles never carry OCSPSigning, anyExtendedKeyUsage or CA powers
    let base = c.get("/api/v1/profiles/tls-server").await?.json()?["profile"].clone();
    for (field, value) in [
        ("extended_key_usage", json!(["serverAuth", "OCSPSigning"])),
        ("extended_key_usage", json!(["1.3.6.1.5.5.7.3.9"])),
        ("extended_key_usage", json!(["anyExtendedKeyUsage"])),
        ("key_usage", json!(["digitalSignature", "keyCertSign"])),
        ("ca", json!(true)),
    ] {
        let mut doc = base.clone();
        doc["name"] = json!("sneaky");
        doc[field] = value.clone();
        let r = c.post_json("/api/v1/profiles", &doc).await?;
        assert_problem(&r, 400, "forbidden-in-leaf-profile");
    }
    assert_problem(&c.get("/api/v1/profiles/sneaky").await?, 404, "not-found");
    // OCSP responder certificates are in their CA's inventory
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = c.get("/api/v1/certificates?limit=1000").await?.json()?;
        let found = r["items"]
            .as_array()
            .map(|a| a.iter().any(|x| x["profile"] == "ocsp-responder@0"))
            .unwrap_or(false);
        if found {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no responder certificate in the inventory"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_may_expire() -> anyhow::Result<()> {
    let s = TestServer::start(&Engine::Sqlite).await?;
    let c = s.admin()?;
    let r = c
        .post_json(
            "/api/v1/tokens",
            &json!({"name": "brief", "scopes": ["certs:read"], "expires_in": 59}),
        )
        .await?;
    assert_problem(&r, 400, "invalid-expiry");
    let r = c
        .post_json(
            "/api/v1/tokens",
            &json!({"name": "hour", "scopes": ["certs:read"], "expires_in": 3600}),
        )
        .await?;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json()?;
    let expires = v["expires_at"].as_str().unwrap_or_default().to_owned();
    assert!(!expires.is_empty(), "{v}");
    let t = s.client(v["token"].as_str().map(str::to_owned))?;
    assert_eq!(t.get("/api/v1/certificates?limit=1").await?.status, 200);
    let listed = c.get("/api/v1/tokens").await?.json()?;
    let shown = listed
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "hour").cloned())
        .unwrap_or_default();
    assert_eq!(shown["expires_at"].as_str(), Some(expires.as_str()));
    s.stop().await;
    Ok(())
}

/// A request retried with the same Idempotency-Key gets the first certificate, with
/// `Idempotent-Replayed: true`; the key with another CSR is a conflict; nothing issues twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_is_answered_with_the_first_certificate() -> anyhow::Result<()> {
    for engine in engines().await {
        let s = TestServer::start(&engine).await?;
        let c = s.admin()?;
        let csr = rcgen_csr(&["retry.example.com"]);
        let body = json!({ "csr": csr });
        let send = |key: &'static str, body: Value| {
            let c = &c;
            async move {
                c.request_with_headers(
                    "POST",
                    "/api/v1/certificates",
                    &[("idempotency-key", key)],
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await
            }
        };
        let before = count_certs(&c).await?;
        let first = send("deploy-1", body.clone()).await?;
        assert_eq!(first.status, 201, "{}", first.text());
        assert_eq!(first.header("idempotent-replayed"), None);
        let again = send("deploy-1", body.clone()).await?;
        assert_eq!(again.status, 201, "{}", again.text());
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.json()?["id"], first.json()?["id"]);
        assert_eq!(again.json()?["certificate"], first.json()?["certificate"]);
        let other = send(
            "deploy-1",
            json!({ "csr": rcgen_csr(&["retry.example.com"]) }),
        )
        .await?;
        assert_problem(&other, 409, "idempotency-key-reused");
        let bad = send("", body.clone()).await?;
        assert_problem(&bad, 400, "invalid-idempotency-key");
        assert_eq!(
            count_certs(&c).await?,
            before + 1,
            "one certificate for one key"
        );
        s.stop().await;
    }
    Ok(())
}
