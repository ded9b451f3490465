//! The listeners' protections, against the real in-process server on loopback ports: slow
//! uploads and slow headers are cut off, TLS handshakes are bounded, a connection flood is
//! capped (and the server answers afterwards), requests over a rate limit get 429 with
//! `Retry-After`, and `/metrics` can live on a listener of its own.
//!
//! Each test configures small limits so it is quick and deterministic, bounds every wait,
//! and stops the server it started.

use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use trustbox_server::ServerConfig;
use trustbox_testkit::TestServer;

/// A byte stream to a listener, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Conn = Box<dyn Io>;
/// A connection being made.
type Connecting = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Conn>> + Send>>;

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// A server on free loopback ports with `tweak` applied to the test defaults.
async fn start(tweak: impl FnOnce(&mut ServerConfig)) -> anyhow::Result<TestServer> {
    let dir = tempfile::tempdir()?;
    let mut config = ServerConfig {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse()?,
        http_listen: Some("127.0.0.1:0".parse()?),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    TestServer::start_with(dir, config).await
}

fn addr_of(s: &TestServer) -> anyhow::Result<SocketAddr> {
    Ok(s.server
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("server stopped"))?
        .addr)
}

fn http_addr_of(s: &TestServer) -> anyhow::Result<SocketAddr> {
    s.server
        .as_ref()
        .and_then(|r| r.http_addr)
        .ok_or_else(|| anyhow::anyhow!("no plain-HTTP listener"))
}

async fn plain(addr: SocketAddr) -> anyhow::Result<Conn> {
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await??;
    Ok(Box::new(tcp))
}

async fn tls(addr: SocketAddr, root_pem: &[u8]) -> anyhow::Result<Conn> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(root_pem) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await??;
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let stream =
        tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp)).await??;
    Ok(Box::new(stream))
}

/// Reads one response (headers, then a `Content-Length` body) within `limit`. `Ok(None)`
/// when the connection closed (or was reset) before a complete response.
async fn read_reply<R: AsyncRead + Unpin + ?Sized>(
    conn: &mut R,
    limit: Duration,
) -> anyhow::Result<Option<Reply>> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Err(_) => anyhow::bail!("no response within {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Err(_) => anyhow::bail!("body not complete within {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(n)) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(len);
    Ok(Some(Reply {
        status,
        headers,
        body,
    }))
}

/// Sends a bodiless request on a kept-alive connection and reads the answer.
async fn get(conn: &mut Conn, path: &str, token: Option<&str>) -> anyhow::Result<Reply> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}\r\n").as_bytes())
        .await?;
    read_reply(conn, Duration::from_secs(10))
        .await?
        .ok_or_else(|| anyhow::anyhow!("connection closed before answering GET {path}"))
}

/// Whether the server closed (or reset) the connection within `limit`, having sent nothing
/// or only whole responses.
async fn closed_within<R: AsyncRead + Unpin + ?Sized>(conn: &mut R, limit: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Writes `head`, then trickles one body byte every 100 ms (for at most 20 s) while waiting
/// for the server's answer. Returns how long after the head the server cut the upload off
/// and its answer, if it sent one before closing.
async fn trickle_upload(conn: Conn, head: String) -> anyhow::Result<(Duration, Option<Reply>)> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    wr.write_all(head.as_bytes()).await?;
    wr.flush().await?;
    let sent = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..200 {
            if wr.write_all(b"a").await.is_err() || wr.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let reply = read_reply(&mut rd, Duration::from_secs(20)).await;
    let cut = sent.elapsed();
    let closed = closed_within(&mut rd, Duration::from_secs(5)).await;
    writer.abort();
    let reply = reply?;
    anyhow::ensure!(closed, "the connection stayed open after the timeout");
    Ok((cut, reply))
}

fn assert_cut_off(what: &str, timeout: Duration, cut: Duration, reply: &Option<Reply>) {
    eprintln!(
        "{what}: cut off after {cut:?}, answer {:?}",
        reply.as_ref().map(|r| r.status)
    );
    assert!(
        cut >= timeout.saturating_sub(Duration::from_millis(300)),
        "{what}: cut off after {cut:?}, before the {timeout:?} deadline"
    );
    assert!(
        cut <= timeout + Duration::from_secs(4),
        "{what}: cut off only after {cut:?} (timeout {timeout:?})"
    );
    if let Some(r) = reply {
        assert_eq!(r.status, 408, "{what}: {r:?}");
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(r.json()["code"], "request-timeout", "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_uploads_slow_headers_and_stalled_handshakes_are_cut_off() -> anyhow::Result<()> {
    let s = start(|c| {
        c.request_timeout_secs = 2;
        c.tls_handshake_timeout_secs = 1;
    })
    .await?;
    let timeout = Duration::from_secs(2);
    let (addr, http) = (addr_of(&s)?, http_addr_of(&s)?);

    // A slow OCSP upload on the relying-party listener (the handler reads the body).
    let head = "POST /ocsp/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\nHost: t\r\n\
                Content-Type: application/ocsp-request\r\nContent-Length: 100000\r\n\r\n";
    let (cut, reply) = trickle_upload(plain(http).await?, head.into()).await?;
    assert_cut_off("slow OCSP upload", timeout, cut, &reply);

    // A slow issuance upload on the HTTPS listener, with a valid token.
    let head = format!(
        "POST /api/v1/certificates HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        s.admin_token
    );
    let (cut, reply) = trickle_upload(tls(addr, &s.root_pem).await?, head).await?;
    assert_cut_off("slow HTTPS upload", timeout, cut, &reply);

    // Headers that never end: one header line every 100 ms.
    let mut conn = plain(http).await?;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await?;
    let started = Instant::now();
    let (mut rd, mut wr) = tokio::io::split(conn);
    let writer = tokio::spawn(async move {
        for i in 0..200 {
            if wr
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let closed = closed_within(&mut rd, Duration::from_secs(10)).await;
    writer.abort();
    let cut = started.elapsed();
    assert!(closed, "slow headers were never cut off");
    assert!(
        cut <= timeout + Duration::from_secs(4),
        "slow headers cut off only after {cut:?}"
    );

    // A TCP connection to the HTTPS listener that never starts its handshake.
    let mut raw = plain(addr).await?;
    let started = Instant::now();
    assert!(
        closed_within(&mut raw, Duration::from_secs(10)).await,
        "a stalled TLS handshake was never cut off"
    );
    let cut = started.elapsed();
    assert!(
        cut >= Duration::from_millis(700) && cut <= Duration::from_secs(5),
        "stalled handshake cut off after {cut:?} (timeout 1 s)"
    );

    // The server still answers on both listeners.
    assert_eq!(
        get(&mut plain(http).await?, "/healthz", None).await?.status,
        200
    );
    assert_eq!(s.client(None)?.get("/healthz").await?.status, 200);
    s.stop().await;
    Ok(())
}

/// Retries `GET /healthz` on fresh connections until it answers 200 (within 10 s).
async fn answers_again(connect: impl Fn() -> Connecting) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async {
            let mut c = connect().await?;
            get(&mut c, "/healthz", None).await
        };
        match attempt.await {
            Ok(r) if r.status == 200 => return Ok(()),
            other if Instant::now() > deadline => {
                anyhow::bail!("the server did not answer again: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_capped_and_the_server_recovers() -> anyhow::Result<()> {
    const CAP: usize = 4;
    let s = start(|c| {
        c.max_connections = CAP;
        c.request_timeout_secs = 60;
        c.tls_handshake_timeout_secs = 60;
    })
    .await?;
    let (addr, http) = (addr_of(&s)?, http_addr_of(&s)?);

    // Plain-HTTP: CAP kept-alive connections, each proven accepted by an answer.
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut c = plain(http).await?;
        assert_eq!(get(&mut c, "/healthz", None).await?.status, 200);
        held.push(c);
    }
    for i in 0..3 * CAP {
        let mut extra = plain(http).await?;
        let started = Instant::now();
        let reply = read_reply(&mut extra, Duration::from_secs(5))
            .await
            .map_err(|e| anyhow::anyhow!("excess connection {i} was not refused: {e}"))?;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "excess connection {i} was not refused promptly"
        );
        if let Some(r) = reply {
            assert_eq!(r.status, 503, "excess connection {i}: {r:?}");
        }
        assert!(closed_within(&mut extra, Duration::from_secs(3)).await);
    }
    // The HTTPS listener has its own budget and keeps answering meanwhile.
    assert_eq!(s.client(None)?.get("/healthz").await?.status, 200);
    // The held connections still work; once they go, new ones are served again.
    assert_eq!(get(&mut held[0], "/healthz", None).await?.status, 200);
    held.clear();
    answers_again(move || Box::pin(plain(http))).await?;

    // HTTPS: CAP connections that never handshake hold every slot.
    let mut raw = Vec::new();
    for _ in 0..CAP {
        raw.push(plain(addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..CAP {
        let started = Instant::now();
        let attempt = tls(addr, &s.root_pem).await;
        assert!(attempt.is_err(), "excess TLS connection {i} was served");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "excess TLS connection {i} was not refused promptly"
        );
    }
    raw.clear();
    let root = s.root_pem.clone();
    answers_again(move || {
        let root = root.clone();
        Box::pin(async move { tls(addr, &root).await })
    })
    .await?;
    s.stop().await;
    Ok(())
}

/// Sends `GET path` until the answer is 429 (at most 50 times); returns the answers.
async fn until_limited(
    conn: &mut Conn,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<Vec<Reply>> {
    let mut replies = Vec::new();
    for _ in 0..50 {
        let r = get(conn, path, token).await?;
        let limited = r.status == 429;
        replies.push(r);
        if limited {
            return Ok(replies);
        }
    }
    anyhow::bail!("50 requests in a row were never rate limited")
}

/// A 429 problem+json with a whole-seconds `Retry-After`; returns the seconds.
fn assert_rate_limited(r: &Reply) -> u64 {
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v = r.json();
    assert_eq!(v["status"], 429, "{v}");
    assert_eq!(v["code"], "rate-limited", "{v}");
    assert_eq!(v["type"], "urn:trustbox:problem:rate-limited", "{v}");
    let secs: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=2).contains(&secs), "Retry-After {secs}");
    secs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_a_rate_limit_get_429_with_retry_after() -> anyhow::Result<()> {
    // Per address, on both listeners: one request per second.
    let s = start(|c| {
        c.rate_limit_per_ip = 1;
        c.http_rate_limit_per_ip = 1;
    })
    .await?;
    for (name, mut conn) in [
        ("https", tls(addr_of(&s)?, &s.root_pem).await?),
        ("http", plain(http_addr_of(&s)?).await?),
    ] {
        let replies = until_limited(&mut conn, "/healthz", None).await?;
        assert_eq!(replies[0].status, 200, "{name}: the first request is free");
        let secs = replies.last().map(assert_rate_limited).unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        assert_eq!(
            get(&mut conn, "/healthz", None).await?.status,
            200,
            "{name}: allowed again after Retry-After"
        );
    }
    s.stop().await;

    // Per token: one request per second each, addresses unlimited in practice.
    let s = start(|c| {
        c.rate_limit_per_ip = 10_000;
        c.rate_limit_per_token = 1;
    })
    .await?;
    let r = s
        .admin()?
        .post_json(
            "/api/v1/tokens",
            &json!({"name": "reader", "scopes": ["certs:read"]}),
        )
        .await?;
    assert_eq!(r.status, 201, "{}", r.text());
    let reader = r.json()?["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("token shown once"))?
        .to_owned();
    let mut conn = tls(addr_of(&s)?, &s.root_pem).await?;
    let replies = until_limited(&mut conn, "/api/v1/issuers", Some(&s.admin_token)).await?;
    if let Some(r) = replies.last() {
        assert_rate_limited(r);
    }
    // Another token from the same address has its own budget.
    let r = get(&mut conn, "/api/v1/issuers", Some(&reader)).await?;
    assert_eq!(r.status, 200, "{r:?}");
    // Unauthenticated requests are refused as such, not counted against a token.
    assert_eq!(get(&mut conn, "/api/v1/issuers", None).await?.status, 401);
    s.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() -> anyhow::Result<()> {
    let s = start(|c| {
        c.metrics_listen = "127.0.0.1:0".parse().ok();
        c.http_rate_limit_per_ip = 1;
    })
    .await?;
    let metrics = s
        .server
        .as_ref()
        .and_then(|r| r.metrics_addr)
        .ok_or_else(|| anyhow::anyhow!("metrics_addr is set when metrics_listen is"))?;
    // Something to count: the relying-party listener rate-limits us once.
    let mut http = plain(http_addr_of(&s)?).await?;
    until_limited(&mut http, "/healthz", None).await?;

    let mut m = plain(metrics).await?;
    let r = get(&mut m, "/metrics", None).await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r
        .header("content-type")
        .is_some_and(|v| v.starts_with("text/plain")));
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("trustbox_rate_limited_total{listener=\"http\",limit=\"ip\"}"),
        "{text}"
    );
    assert_eq!(get(&mut m, "/healthz", None).await?.status, 404);
    assert_eq!(get(&mut m, "/api/v1/issuers", None).await?.status, 404);
    // The HTTPS listener no longer serves it.
    let r = s.client(None)?.get("/metrics").await?;
    assert_eq!(r.status, 404, "{}", r.text());
    s.stop().await;

    // Without metrics_listen it stays on the HTTPS listener.
    let s = start(|_| {}).await?;
    assert!(s.server.as_ref().is_some_and(|r| r.metrics_addr.is_none()));
    assert_eq!(s.client(None)?.get("/metrics").await?.status, 200);
    s.stop().await;
    Ok(())
}
