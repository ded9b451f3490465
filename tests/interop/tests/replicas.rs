//! Two replicas on one PostgreSQL database: a revocation made on one (certificate, token,
//! intermediate) stops being honoured by the other within the documented bound
//! (`trustbox_authority::CACHE_TRUST` plus a poll), also when the other replica cannot reach
//! the database at all (its caches fail closed). Replica B reaches PostgreSQL through a
//! proxy this test can cut.

use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use trustbox_client::Client;
use trustbox_testkit::{issue_with_openssl_csr, openssl_csr, run, Engine, TestServer};

const T: Duration = Duration::from_secs(30);

/// A TCP proxy to PostgreSQL that can be cut (every connection closed, new ones refused)
/// and restored.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (c, k) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                k.lock().unwrap_or_else(|e| e.into_inner()).push(task);
            }
        });
        Ok(Self {
            addr,
            cut,
            conns,
            accept,
        })
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for t in self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn openssl(args: &[&str]) -> anyhow::Result<trustbox_testkit::Output> {
    tokio::task::block_in_place(|| run("openssl", args, T))
}

/// `openssl ocsp` for `cert` against `url`; stdout and stderr together.
fn ocsp(url: &str, issuer: &Path, root: &Path, cert: &Path) -> anyhow::Result<String> {
    let out = openssl(&[
        "ocsp",
        "-issuer",
        &s(issuer),
        "-cert",
        &s(cert),
        "-url",
        url,
        "-CAfile",
        &s(root),
        "-no_nonce",
    ])?;
    Ok(format!("{}{}", out.stdout, out.stderr))
}

/// Polls `check` until it holds, bounded by `bound`; returns how long it took.
async fn within<F, Fut>(bound: Duration, what: &str, mut check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < bound,
            "{what} not seen within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_the_other_replica_within_the_bound_even_without_its_database(
) -> anyhow::Result<()> {
    let Some(url) = trustbox_store_postgres::testing::fresh_schema_url().await else {
        return Ok(());
    };
    let upstream = {
        let after = url.split_once('@').map(|(_, r)| r).unwrap_or_default();
        after
            .split('/')
            .next()
            .unwrap_or("127.0.0.1:5432")
            .to_owned()
    };
    let proxy = Proxy::start(upstream.clone()).await?;
    let b_url = url.replacen(&upstream, &proxy.addr.to_string(), 1);

    let a = TestServer::start(&Engine::Postgres(url.clone())).await?;
    let (_dir_b, b) = trustbox_testkit::start_replica(&a, b_url).await?;
    let b_api = format!("https://{}", b.addr);
    let b_http = b
        .http_addr
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    let root_pem = std::fs::read(a.root_pem_path())?;
    let on_b = |token: Option<String>| -> anyhow::Result<Client> {
        Ok(Client::new(&b_api, Some(&root_pem), token)?.with_timeout(T))
    };

    let admin = a.admin()?;
    let w = tempfile::tempdir()?;
    let dir = w.path();
    let root = a.root_pem_path();
    let issuers = admin.get("/api/v1/issuers").await?.json()?;
    let list = issuers.as_array().cloned().unwrap_or_default();
    let find = |root: bool| {
        list.iter()
            .find(|i| i["is_root"] == root)
            .cloned()
            .unwrap_or_default()
    };
    let (ca, root_ca) = (find(false), find(true));
    let ca_id = ca["id"].as_str().unwrap_or_default().to_owned();
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca["certificate"].as_str().unwrap_or_default())?;
    let b_ocsp = format!("{b_http}/ocsp/{ca_id}");
    let bound = trustbox_authority::CACHE_TRUST + Duration::from_secs(2);

    // --- 1. every replica reachable: certificate, token and intermediate revocations
    let (leaf, leaf_pem) = issue_with_openssl_csr(&admin, dir, "one", None).await?;
    let r = admin
        .post_json(
            "/api/v1/tokens",
            &json!({"name": "t1", "scopes": ["certs:read", "certs:issue"]}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.text());
    let t1 = r.json()?;
    let t1_b = on_b(t1["token"].as_str().map(str::to_owned))?;
    let r = admin
        .post_json(
            "/api/v1/issuers",
            &json!({"name": "second", "common_name": "Second Issuing CA", "parent": root_ca["id"]}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.text());
    let second = r.json()?["id"].as_str().unwrap_or_default().to_owned();
    // B answers good, accepts the token and signs with the intermediate: all cached on B
    within(T, "B's first OCSP answer", || async {
        Ok(ocsp(&b_ocsp, &ca_pem, &root, &leaf_pem)?.contains("one.pem: good"))
    })
    .await?;
    assert_eq!(t1_b.get("/api/v1/certificates?limit=1").await?.status, 200);
    issue_with_openssl_csr(&t1_b, dir, "via-second", Some(&second)).await?;

    let leaf_id = leaf["id"].as_str().unwrap_or_default();
    let r = admin
        .post_json(
            &format!("/api/v1/certificates/{leaf_id}/revoke"),
            &json!({"reason": "keyCompromise"}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = admin
        .request(
            "DELETE",
            &format!("/api/v1/tokens/{}", t1["id"].as_str().unwrap_or_default()),
            None,
        )
        .await?;
    assert!(r.status == 204 || r.status == 200, "{}", r.text());
    let r = admin
        .post_json(
            &format!("/api/v1/issuers/{second}/revoke"),
            &json!({"reason": "cACompromise"}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());

    let took = within(bound, "B answering revoked", || async {
        Ok(ocsp(&b_ocsp, &ca_pem, &root, &leaf_pem)?.contains("one.pem: revoked"))
    })
    .await?;
    eprintln!("replica B: certificate revocation seen after {took:?}");
    let took = within(bound, "B refusing the revoked token", || async {
        Ok(t1_b.get("/api/v1/certificates?limit=1").await?.status == 401)
    })
    .await?;
    eprintln!("replica B: token revocation seen after {took:?}");
    let b_admin = on_b(Some(a.admin_token.clone()))?;
    let took = within(bound, "B refusing the revoked intermediate", || async {
        let csr = tokio::task::block_in_place(|| {
            openssl_csr(
                dir,
                "late",
                &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "/CN=late.example.com",
                Some("DNS:late.example.com"),
            )
        })?;
        let r = b_admin
            .post_json(
                "/api/v1/certificates",
                &json!({"csr": std::fs::read_to_string(csr)?, "issuer": second}),
            )
            .await?;
        anyhow::ensure!(r.status == 201 || r.status == 400, "{}", r.text());
        Ok(r.status == 400 && r.text().contains("issuer-revoked"))
    })
    .await?;
    eprintln!("replica B: intermediate revocation seen after {took:?}");

    // --- 2. B cut off from the database: its cached "good" and its cached token stop
    //        being served within the bound (it fails closed, it does not guess)
    let (leaf2, leaf2_pem) = issue_with_openssl_csr(&admin, dir, "two", None).await?;
    let r = admin
        .post_json(
            "/api/v1/tokens",
            &json!({"name": "t2", "scopes": ["certs:read"]}),
        )
        .await?;
    let t2 = r.json()?;
    let t2_b = on_b(t2["token"].as_str().map(str::to_owned))?;
    within(T, "B's OCSP answer for two", || async {
        Ok(ocsp(&b_ocsp, &ca_pem, &root, &leaf2_pem)?.contains("two.pem: good"))
    })
    .await?;
    assert_eq!(t2_b.get("/api/v1/certificates?limit=1").await?.status, 200);
    proxy.cut();
    let cut_at = Instant::now();
    let leaf2_id = leaf2["id"].as_str().unwrap_or_default();
    let r = admin
        .post_json(
            &format!("/api/v1/certificates/{leaf2_id}/revoke"),
            &json!({"reason": "keyCompromise"}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = admin
        .request(
            "DELETE",
            &format!("/api/v1/tokens/{}", t2["id"].as_str().unwrap_or_default()),
            None,
        )
        .await?;
    assert!(r.status == 204 || r.status == 200, "{}", r.text());
    tokio::time::sleep(bound.saturating_sub(cut_at.elapsed())).await;
    let answer = ocsp(&b_ocsp, &ca_pem, &root, &leaf2_pem)?;
    assert!(
        !answer.contains("two.pem: good"),
        "B still serves a cached good: {answer}"
    );
    let status = t2_b
        .get("/api/v1/certificates?limit=1")
        .await
        .map(|r| r.status)
        .unwrap_or(0);
    assert_ne!(
        status, 200,
        "B still accepts a revoked token from its cache"
    );
    eprintln!(
        "replica B cut off: OCSP answered {:?}, revoked token got {status}",
        answer.lines().last()
    );
    proxy.restore();
    within(T, "B answering revoked once reconnected", || async {
        Ok(ocsp(&b_ocsp, &ca_pem, &root, &leaf2_pem)?.contains("two.pem: revoked"))
    })
    .await?;
    assert_eq!(t2_b.get("/api/v1/certificates?limit=1").await?.status, 401);

    b.shutdown().await;
    a.stop().await;
    drop(proxy);
    Ok(())
}
