//! ACME bad input, request by request, with a small client written here (ES256 JWS by
//! ring): bad signatures, replayed and unknown nonces, a wrong `url`, an unsupported
//! algorithm, oversized bodies, finalize before the order is ready, malformed CSRs and
//! CSRs whose names differ from the order. Each gets the RFC 8555 error type and status and
//! changes nothing (no account, the order still ready, nothing in the inventory). Also:
//! keyChange, the orders list, authorization deactivation, ARI renewalInfo with `replaces`,
//! the profiles extension, and the account and order isolation between provisioners.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use trustbox_client::{Client, Response};
use trustbox_testkit::{engines, ChallTestSrv, TestServer};

/// An account key and what the server calls it.
struct Acct {
    key: EcdsaKeyPair,
    kid: Option<String>,
}

impl Acct {
    fn new() -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("keygen"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("key"))?;
        Ok(Self { key, kid: None })
    }

    fn jwk(&self) -> Value {
        let pt = self.key.public_key().as_ref();
        json!({"crv": "P-256", "kty": "EC", "x": B64.encode(&pt[1..33]), "y": B64.encode(&pt[33..65])})
    }

    fn thumbprint(&self) -> String {
        let j = self.jwk();
        let canon = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap_or_default(),
            j["y"].as_str().unwrap_or_default()
        );
        B64.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canon.as_bytes(),
        ))
    }

    /// A flattened JWS of `payload` (None: POST-as-GET) for `url` with `nonce`.
    fn sign(&self, url: &str, nonce: &str, payload: Option<&Value>, jwk: bool) -> Value {
        let mut header = json!({"alg": "ES256", "nonce": nonce, "url": url});
        match (&self.kid, jwk) {
            (Some(kid), false) => header["kid"] = json!(kid),
            _ => header["jwk"] = self.jwk(),
        }
        let protected = B64.encode(header.to_string());
        let payload = payload
            .map(|p| B64.encode(p.to_string()))
            .unwrap_or_default();
        let sig = self
            .key
            .sign(
                &SystemRandom::new(),
                format!("{protected}.{payload}").as_bytes(),
            )
            .map(|s| B64.encode(s.as_ref()))
            .unwrap_or_default();
        json!({"protected": protected, "payload": payload, "signature": sig})
    }
}

/// The directory and a connection to the server.
struct Acme {
    c: Client,
    base: String,
    dir: Value,
}

impl Acme {
    async fn new(s: &TestServer, provisioner: &str) -> anyhow::Result<Self> {
        let c = s.client(None)?;
        let path = format!("/acme/{provisioner}/directory");
        let dir = c.get(&path).await?.json()?;
        Ok(Self {
            c,
            base: s.url.clone(),
            dir,
        })
    }

    fn url(&self, name: &str) -> String {
        self.dir[name].as_str().unwrap_or_default().to_owned()
    }

    async fn nonce(&self) -> anyhow::Result<String> {
        let r = self
            .c
            .request("HEAD", &self.path(&self.url("newNonce")), None)
            .await?;
        r.header("replay-nonce")
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no nonce"))
    }

    fn path(&self, url: &str) -> String {
        url.strip_prefix(&self.base).unwrap_or(url).to_owned()
    }

    async fn raw(&self, url: &str, body: Vec<u8>) -> anyhow::Result<Response> {
        Ok(self
            .c
            .request(
                "POST",
                &self.path(url),
                Some(("application/jose+json", body)),
            )
            .await?)
    }

    async fn post(&self, a: &Acct, url: &str, payload: Option<&Value>) -> anyhow::Result<Response> {
        let nonce = self.nonce().await?;
        let jws = a.sign(url, &nonce, payload, a.kid.is_none());
        self.raw(url, jws.to_string().into_bytes()).await
    }
}

/// Asserts `r` is the ACME problem `kind` with `status`.
fn problem(r: &Response, kind: &str, status: u16) {
    let body = r.json().unwrap_or(Value::Null);
    assert_eq!(
        (r.status, body["type"].as_str().unwrap_or_default()),
        (
            status,
            format!("urn:ietf:params:acme:error:{kind}").as_str()
        ),
        "{}",
        r.text()
    );
    assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
    assert!(
        r.header("replay-nonce").is_some(),
        "errors carry a fresh nonce"
    );
}

/// An http-01 responder on a free port: answers every token it was given.
struct Http01 {
    port: u16,
    tokens: Arc<Mutex<HashMap<String, String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Http01 {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let t = tokens.clone();
        let task = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut sock, _)) = listener.accept().await {
                let t = t.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let token = req
                        .split_whitespace()
                        .nth(1)
                        .and_then(|p| p.strip_prefix("/.well-known/acme-challenge/"))
                        .unwrap_or_default()
                        .to_owned();
                    let answer = t.lock().map(|m| m.get(&token).cloned()).ok().flatten();
                    let resp = match answer {
                        Some(body) => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()),
                        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
                    };
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Ok(Self { port, tokens, task })
    }
}

impl Drop for Http01 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn csr_b64(names: &[&str]) -> anyhow::Result<String> {
    let key = rcgen::KeyPair::generate()?;
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    Ok(B64.encode(params.serialize_request(&key)?.der()))
}

/// Places an order for `names` and proves it with http-01 until it is ready.
async fn ready_order(
    acme: &Acme,
    a: &Acct,
    http: &Http01,
    names: &[&str],
    extra: Value,
) -> anyhow::Result<(String, Value)> {
    let mut payload = json!({"identifiers": names.iter().map(|n| json!({"type": "dns", "value": n})).collect::<Vec<_>>()});
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let r = acme.post(a, &acme.url("newOrder"), Some(&payload)).await?;
    anyhow::ensure!(r.status == 201, "newOrder: {}", r.text());
    let order_url = r.header("location").unwrap_or_default().to_owned();
    let order = r.json()?;
    for authz in order["authorizations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let z = acme
            .post(a, authz.as_str().unwrap_or_default(), None)
            .await?
            .json()?;
        let ch = z["challenges"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["type"] == "http-01").cloned())
            .ok_or_else(|| anyhow::anyhow!("no http-01 challenge: {z}"))?;
        let token = ch["token"].as_str().unwrap_or_default().to_owned();
        let ka = format!("{token}.{}", a.thumbprint());
        if let Ok(mut m) = http.tokens.lock() {
            m.insert(token, ka);
        }
        let r = acme
            .post(a, ch["url"].as_str().unwrap_or_default(), Some(&json!({})))
            .await?;
        anyhow::ensure!(r.status == 200, "challenge: {}", r.text());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let o = acme.post(a, &order_url, None).await?.json()?;
        if o["status"] == "ready" {
            return Ok((order_url, o));
        }
        anyhow::ensure!(o["status"] == "pending", "order went {o}");
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "order never ready: {o}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn inventory_len(s: &TestServer) -> anyhow::Result<usize> {
    Ok(s.admin()?
        .get("/api/v1/certificates?limit=1000")
        .await?
        .json()?["items"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_rfc_errors_and_change_nothing() -> anyhow::Result<()> {
    let dns = ChallTestSrv::start()?;
    let http = Http01::start().await?;
    for engine in engines().await {
        let s = TestServer::start_acme(&engine, dns.dns).await?;
        s.create_acme_provisioner(&json!({"name": "strict", "http01_port": http.port}))
            .await?;
        let acme = Acme::new(&s, "strict").await?;
        let new_account = acme.url("newAccount");
        let mut a = Acct::new()?;

        // a signature that does not verify: malformed, and no account
        let nonce = acme.nonce().await?;
        let mut jws = a.sign(
            &new_account,
            &nonce,
            Some(&json!({"termsOfServiceAgreed": true})),
            true,
        );
        let mut sig = B64.decode(jws["signature"].as_str().unwrap_or_default())?;
        sig[5] ^= 1;
        jws["signature"] = json!(B64.encode(&sig));
        problem(
            &acme.raw(&new_account, jws.to_string().into_bytes()).await?,
            "malformed",
            400,
        );
        let r = acme
            .post(&a, &new_account, Some(&json!({"onlyReturnExisting": true})))
            .await?;
        problem(&r, "accountDoesNotExist", 400);

        // an unknown nonce, then a replayed one
        let jws = a.sign(
            &new_account,
            "AAAAAAAAAAAAAAAAAAAAAAAA",
            Some(&json!({})),
            true,
        );
        problem(
            &acme.raw(&new_account, jws.to_string().into_bytes()).await?,
            "badNonce",
            400,
        );
        let nonce = acme.nonce().await?;
        let jws = a.sign(
            &new_account,
            &nonce,
            Some(&json!({"termsOfServiceAgreed": true})),
            true,
        );
        let first = acme.raw(&new_account, jws.to_string().into_bytes()).await?;
        assert_eq!(first.status, 201, "{}", first.text());
        problem(
            &acme.raw(&new_account, jws.to_string().into_bytes()).await?,
            "badNonce",
            400,
        );
        a.kid = first.header("location").map(str::to_owned);

        // signed for another URL; an algorithm we do not accept; a body far too large
        let nonce = acme.nonce().await?;
        let jws = a.sign(&acme.url("newOrder"), &nonce, Some(&json!({})), false);
        problem(
            &acme.raw(&new_account, jws.to_string().into_bytes()).await?,
            "unauthorized",
            403,
        );
        let nonce = acme.nonce().await?;
        let header = json!({"alg": "HS256", "nonce": nonce, "url": new_account, "jwk": a.jwk()});
        let jws = json!({"protected": B64.encode(header.to_string()), "payload": "", "signature": "AAAA"});
        problem(
            &acme.raw(&new_account, jws.to_string().into_bytes()).await?,
            "badSignatureAlgorithm",
            400,
        );
        let huge = json!({"identifiers": [{"type": "dns", "value": "x".repeat(100_000)}]});
        let r = acme.post(&a, &acme.url("newOrder"), Some(&huge)).await?;
        problem(&r, "malformed", 413);

        // identifiers the server must refuse
        for (ident, kind) in [
            (
                json!({"type": "email", "value": "a@b.example"}),
                "unsupportedIdentifier",
            ),
            (
                json!({"type": "dns", "value": "not_a name"}),
                "rejectedIdentifier",
            ),
        ] {
            let r = acme
                .post(
                    &a,
                    &acme.url("newOrder"),
                    Some(&json!({"identifiers": [ident]})),
                )
                .await?;
            problem(&r, kind, 400);
        }
        let r = acme
            .post(&a, &acme.url("newOrder"), Some(&json!({"identifiers": [{"type": "dns", "value": "p.example.test"}], "profile": "nope"})))
            .await?;
        problem(&r, "invalidProfile", 400);

        // finalize before the order is ready
        let r = acme
            .post(
                &a,
                &acme.url("newOrder"),
                Some(&json!({"identifiers": [{"type": "dns", "value": "early.example.test"}]})),
            )
            .await?;
        assert_eq!(r.status, 201, "{}", r.text());
        let early = r.json()?;
        let csr = csr_b64(&["early.example.test"])?;
        let r = acme
            .post(
                &a,
                early["finalize"].as_str().unwrap_or_default(),
                Some(&json!({"csr": csr})),
            )
            .await?;
        problem(&r, "orderNotReady", 403);

        // a ready order refuses bad CSRs and stays ready; nothing is issued
        let before = inventory_len(&s).await?;
        let (order_url, order) = ready_order(
            &acme,
            &a,
            &http,
            &["ok.example.test"],
            json!({"profile": "shortlived"}),
        )
        .await?;
        let finalize = order["finalize"].as_str().unwrap_or_default().to_owned();
        for csr in [
            "bm90IGEgQ1NS".to_owned(),
            "not base64url!".to_owned(),
            csr_b64(&["other.example.test"])?,
            csr_b64(&["ok.example.test", "extra.example.test"])?,
        ] {
            let r = acme.post(&a, &finalize, Some(&json!({"csr": csr}))).await?;
            problem(&r, "badCSR", 400);
            let o = acme.post(&a, &order_url, None).await?.json()?;
            assert_eq!(o["status"], "ready", "a refused CSR changes nothing: {o}");
        }
        assert_eq!(inventory_len(&s).await?, before, "nothing was issued");

        // the right CSR: valid, with a certificate of the profile's lifetime
        let r = acme
            .post(
                &a,
                &finalize,
                Some(&json!({"csr": csr_b64(&["ok.example.test"])?})),
            )
            .await?;
        assert_eq!(r.status, 200, "{}", r.text());
        let o = r.json()?;
        assert_eq!(o["status"], "valid", "{o}");
        assert_eq!(o["profile"], "shortlived");
        let r = acme
            .post(&a, o["certificate"].as_str().unwrap_or_default(), None)
            .await?;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/pem-certificate-chain")
        );
        let chain = r.text();
        assert_eq!(
            chain.matches("BEGIN CERTIFICATE").count(),
            2,
            "leaf and issuing CA"
        );
        let listed = s
            .admin()?
            .get("/api/v1/certificates?limit=1000")
            .await?
            .json()?;
        let cert = listed["items"]
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|c| c["sans"] == json!(["dns:ok.example.test"]))
                    .cloned()
            })
            .ok_or_else(|| anyhow::anyhow!("not in the inventory"))?;
        let lifetime = |c: &Value, k: &str| time_of(c[k].as_str().unwrap_or_default());
        let days = (lifetime(&cert, "not_after") - lifetime(&cert, "not_before")) / 86400;
        assert!((6..=8).contains(&days), "shortlived is 7 days: {cert}");
        // finalizing again: the order is not ready any more
        let r = acme
            .post(
                &a,
                &finalize,
                Some(&json!({"csr": csr_b64(&["ok.example.test"])?})),
            )
            .await?;
        problem(&r, "orderNotReady", 403);

        // the account's orders list names both orders
        let acct = acme
            .post(&a, a.kid.as_deref().unwrap_or_default(), None)
            .await?
            .json()?;
        let orders = acme
            .post(&a, acct["orders"].as_str().unwrap_or_default(), None)
            .await?
            .json()?;
        assert_eq!(
            orders["orders"].as_array().map(Vec::len),
            Some(2),
            "{orders}"
        );

        // ARI: renewalInfo for the certificate, then an order that replaces it
        let der_leaf = pem_first(&chain)?;
        let ari_id = ari_id(&der_leaf)?;
        let r = s
            .client(None)?
            .get(&acme.path(&format!("{}/{ari_id}", acme.url("renewalInfo"))))
            .await?;
        assert_eq!(r.status, 200, "{}", r.text());
        let window = r.json()?;
        let start = time_of(
            window["suggestedWindow"]["start"]
                .as_str()
                .unwrap_or_default(),
        );
        let end = time_of(
            window["suggestedWindow"]["end"]
                .as_str()
                .unwrap_or_default(),
        );
        assert!(
            start < end
                && start > lifetime(&cert, "not_before")
                && end < lifetime(&cert, "not_after"),
            "{window}"
        );
        let (_, renewal) = ready_order(
            &acme,
            &a,
            &http,
            &["ok.example.test"],
            json!({"replaces": ari_id}),
        )
        .await?;
        assert_eq!(renewal["replaces"], json!(ari_id));
        let r = acme
            .post(
                &a,
                renewal["finalize"].as_str().unwrap_or_default(),
                Some(&json!({"csr": csr_b64(&["ok.example.test"])?})),
            )
            .await?;
        assert_eq!(r.status, 200, "{}", r.text());
        let listed = s
            .admin()?
            .get("/api/v1/certificates?limit=1000")
            .await?
            .json()?;
        assert!(
            listed["items"]
                .as_array()
                .is_some_and(|l| l.iter().any(|c| c["replaces"] == cert["id"])),
            "the inventory records what replaced what"
        );
        let r = acme
            .post(&a, &acme.url("newOrder"), Some(&json!({"identifiers": [{"type": "dns", "value": "ok.example.test"}], "replaces": ari_id})))
            .await?;
        problem(&r, "alreadyReplaced", 409);

        // keyChange: the old key stops working, the new one is the account
        let mut b = Acct::new()?;
        let inner = {
            let mut h = json!({"alg": "ES256", "url": acme.url("keyChange"), "jwk": b.jwk()});
            h.as_object_mut().map(|o| o.remove("nonce"));
            let protected = B64.encode(h.to_string());
            let payload = B64.encode(json!({"account": a.kid, "oldKey": a.jwk()}).to_string());
            let sig = b
                .key
                .sign(
                    &SystemRandom::new(),
                    format!("{protected}.{payload}").as_bytes(),
                )
                .map(|s| B64.encode(s.as_ref()))
                .unwrap_or_default();
            json!({"protected": protected, "payload": payload, "signature": sig})
        };
        let r = acme.post(&a, &acme.url("keyChange"), Some(&inner)).await?;
        assert_eq!(r.status, 200, "{}", r.text());
        b.kid = a.kid.clone();
        let r = acme
            .post(&a, a.kid.as_deref().unwrap_or_default(), None)
            .await?;
        problem(&r, "malformed", 400);
        let r = acme
            .post(&b, b.kid.as_deref().unwrap_or_default(), None)
            .await?;
        assert_eq!(r.status, 200, "the new key is the account's: {}", r.text());

        // another provisioner knows neither the account nor its orders
        s.create_acme_provisioner(&json!({"name": "other"})).await?;
        let other = Acme::new(&s, "other").await?;
        let r = other
            .post(
                &b,
                &other.url("newOrder"),
                Some(&json!({"identifiers": [{"type": "dns", "value": "x.example.test"}]})),
            )
            .await?;
        problem(&r, "accountDoesNotExist", 400);
        s.stop().await;
    }
    Ok(())
}

fn time_of(s: &str) -> i64 {
    let out = std::process::Command::new("date")
        .args(["-d", s, "+%s"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    out.parse().unwrap_or(0)
}

fn pem_first(chain: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = chain
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

/// The ARI identifier of `der` (RFC 9773 §4.1), with openssl reading the AKI and serial.
fn ari_id(der: &[u8]) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.der");
    std::fs::write(&path, der)?;
    let out = trustbox_testkit::run(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            &path.to_string_lossy(),
            "-noout",
            "-serial",
            "-ext",
            "authorityKeyIdentifier",
        ],
        Duration::from_secs(10),
    )?;
    anyhow::ensure!(out.ok(), "{}", out.stderr);
    let serial_hex = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .unwrap_or_default()
        .to_owned();
    let aki_hex: String = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.contains(':') && !l.contains(' ') && !l.starts_with("serial"))
        .map(|l| l.trim_start_matches("keyid:").replace(':', ""))
        .unwrap_or_default();
    let unhex = |h: &str| -> anyhow::Result<Vec<u8>> {
        (0..h.len())
            .step_by(2)
            .map(|i| Ok(u8::from_str_radix(&h[i..i + 2], 16)?))
            .collect()
    };
    let mut serial = unhex(&serial_hex)?;
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    Ok(format!(
        "{}.{}",
        B64.encode(unhex(&aki_hex)?),
        B64.encode(serial)
    ))
}

/// A nonce minted by one replica is accepted by another, once: the second use, on either
/// replica, is `badNonce` (PostgreSQL, two servers sharing the database and the KEK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_from_one_replica_is_good_once_on_any() -> anyhow::Result<()> {
    let Some(url) = trustbox_store_postgres::testing::fresh_schema_url().await else {
        anyhow::ensure!(
            std::env::var("CI").is_err(),
            "CI runs this on PostgreSQL: set TRUSTBOX_TEST_DATABASE_URL"
        );
        return Ok(());
    };
    let a = TestServer::start(&trustbox_testkit::Engine::Postgres(url.clone())).await?;
    let (_dir_b, b) = trustbox_testkit::start_replica(&a, url).await?;
    let b_base = format!("https://{}", b.addr);
    let on_a = Acme::new(&a, "default").await?;
    let c = Client::new(&b_base, Some(&a.root_pem), None)?.with_timeout(Duration::from_secs(30));
    let dir = c.get("/acme/default/directory").await?.json()?;
    let on_b = Acme {
        c,
        base: b_base,
        dir,
    };
    let acct = Acct::new()?;
    let nonce = on_a.nonce().await?;
    let new_account_b = on_b.url("newAccount");
    let payload = json!({"termsOfServiceAgreed": true});
    let jws = acct.sign(&new_account_b, &nonce, Some(&payload), true);
    let r = on_b
        .raw(&new_account_b, jws.to_string().into_bytes())
        .await?;
    assert_eq!(r.status, 201, "A's nonce is good on B: {}", r.text());
    problem(
        &on_b
            .raw(&new_account_b, jws.to_string().into_bytes())
            .await?,
        "badNonce",
        400,
    );
    let new_account_a = on_a.url("newAccount");
    let jws = acct.sign(&new_account_a, &nonce, Some(&payload), true);
    problem(
        &on_a
            .raw(&new_account_a, jws.to_string().into_bytes())
            .await?,
        "badNonce",
        400,
    );
    b.shutdown().await;
    a.stop().await;
    Ok(())
}
