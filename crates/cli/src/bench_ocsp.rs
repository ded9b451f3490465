//! `trustbox bench ocsp`: load an OCSP responder (RFC 6960) with a pool of pre-built requests
//! and report responses/s, p50, p99 and errors.
//!
//! Generic over the responder (TrustBox's, `openssl ocsp -port`, any other): it only sends
//! requests from a file and checks each answer cheaply (HTTP 200, the OCSP media type, and a
//! DER `OCSPResponse` whose `responseStatus` is `successful`). It never verifies signatures;
//! `benches/ocsp-vs-openssl.sh` checks each pool with `openssl ocsp` before loading.

use crate::bench::drive;
use anyhow::Context;
use base64::Engine as _;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use trustbox_client::Client;

/// Arguments of `trustbox bench ocsp`.
#[derive(Args, Debug)]
pub struct OcspArgs {
    /// Responder URL, plain HTTP: `http://host:port/path` (for TrustBox
    /// `http://HOST:PORT/ocsp/{issuer_id}`).
    #[arg(long)]
    url: String,
    /// File with one base64 (standard alphabet) DER OCSPRequest per line, cycled through
    /// (e.g. from `openssl ocsp -reqout`).
    #[arg(long)]
    requests: PathBuf,
    /// Concurrent workers, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to run (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Open a fresh TCP connection for every request instead of keeping one per worker
    /// (what clients of `openssl ocsp -port` get anyway: it closes after each answer).
    #[arg(long)]
    connection_per_request: bool,
    /// Send `GET URL/<url-encoded base64>` (RFC 6960 Appendix A.1) instead of POSTing the DER.
    #[arg(long)]
    get: bool,
    /// Seconds before a request without an answer counts as an error.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// `application/ocsp-request` (RFC 6960 Appendix C.1).
const REQUEST_TYPE: &str = "application/ocsp-request";
/// `application/ocsp-response` (RFC 6960 Appendix C.2).
const RESPONSE_TYPE: &str = "application/ocsp-response";

/// A responder URL split for [`Client`]: `http://authority` and the path.
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        anyhow::bail!(
            "--url {url:?}: expected http://host:port[/path] (OCSP is served over plain HTTP)"
        );
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        anyhow::bail!("--url {url:?}: no host");
    }
    Ok((format!("http://{authority}"), path.to_owned()))
}

/// Reads the request pool: one base64 DER request per non-empty line.
fn read_pool(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut pool = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(line)
            .with_context(|| format!("{} line {}: not base64", path.display(), i + 1))?;
        if der.first() != Some(&0x30) {
            anyhow::bail!("{} line {}: not a DER SEQUENCE", path.display(), i + 1);
        }
        pool.push(der);
    }
    if pool.is_empty() {
        anyhow::bail!("{}: no requests", path.display());
    }
    Ok(pool)
}

/// Percent-encodes base64 for a URL path segment (`+`, `/` and `=` are the only characters of
/// the standard alphabet that need it).
fn percent_encode_base64(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + 16);
    for c in b64.chars() {
        match c {
            '+' => out.push_str("%2B"),
            '/' => out.push_str("%2F"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}

/// Reads one DER length at the start of `der`: (length, bytes used by the length).
fn der_length(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.first()?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 || der.len() < 1 + n {
        return None;
    }
    let len = der[1..=n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((len, 1 + n))
}

/// Whether `der` looks like an `OCSPResponse` with `responseStatus` successful: a SEQUENCE
/// spanning the whole body whose first element is `ENUMERATED 0`
/// ([RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1)). A cheap check
/// of the first bytes, not a parse.
fn is_successful_response(der: &[u8]) -> bool {
    let Some((&0x30, rest)) = der.split_first() else {
        return false;
    };
    let Some((len, used)) = der_length(rest) else {
        return false;
    };
    let content = &rest[used..];
    len == content.len() && content.starts_with(&[0x0a, 0x01, 0x00])
}

/// Checks one answer: 200, the OCSP response media type, a successful OCSPResponse.
fn check(resp: &trustbox_client::Response) -> Result<(), String> {
    if resp.status != 200 {
        return Err(format!("HTTP {}", resp.status));
    }
    let media = resp
        .content_type
        .as_deref()
        .and_then(|ct| ct.split(';').next())
        .map(str::trim);
    if !media.is_some_and(|m| m.eq_ignore_ascii_case(RESPONSE_TYPE)) {
        return Err(format!("Content-Type {:?}", resp.content_type));
    }
    if !is_successful_response(&resp.body) {
        let head: Vec<String> = resp
            .body
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        return Err(format!(
            "not a successful OCSPResponse ({} bytes, starting {})",
            resp.body.len(),
            head.join(" ")
        ));
    }
    Ok(())
}

/// One request of the pool, ready to send.
enum Prepared {
    /// The DER body of a POST.
    Post(Vec<u8>),
    /// The full path of a GET.
    Get(String),
}

/// Runs `trustbox bench ocsp`.
pub async fn run(args: OcspArgs) -> anyhow::Result<()> {
    let (base, path) = split_url(&args.url)?;
    let pool = read_pool(&args.requests)?;
    let prepared: Arc<Vec<Prepared>> = Arc::new(
        pool.into_iter()
            .map(|der| {
                if args.get {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
                    let dir = path.trim_end_matches('/');
                    Prepared::Get(format!("{dir}/{}", percent_encode_base64(&b64)))
                } else {
                    Prepared::Post(der)
                }
            })
            .collect(),
    );
    // Fail fast on a bad URL rather than counting it as errors.
    Client::new(&base, None, None)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let path: Arc<str> = path.into();
    let base: Arc<str> = base.into();
    let per_request = args.connection_per_request;
    let f = drive(args.concurrency, args.duration, timeout, |_| {
        // Keep-alive: one client (one connection) per worker. Per request: a fresh client, so
        // a fresh TCP connection, for every request; dropping it closes the connection.
        let kept = if per_request {
            None
        } else {
            Some(Arc::new(
                Client::new(&base, None, None)?.with_timeout(timeout),
            ))
        };
        let prepared = prepared.clone();
        let path = path.clone();
        let base = base.clone();
        Ok(move |n: usize| {
            let kept = kept.clone();
            let prepared = prepared.clone();
            let path = path.clone();
            let base = base.clone();
            async move {
                let client = match kept {
                    Some(c) => c,
                    None => Arc::new(
                        Client::new(&base, None, None)
                            .map_err(|e| e.to_string())?
                            .with_timeout(timeout),
                    ),
                };
                let resp = match &prepared[n % prepared.len()] {
                    Prepared::Post(der) => {
                        client
                            .request("POST", &path, Some((REQUEST_TYPE, der.clone())))
                            .await
                    }
                    Prepared::Get(p) => client.get(p).await,
                }
                .map_err(|e| e.to_string())?;
                check(&resp)
            }
        })
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string(&f)?);
    } else {
        println!(
            "answered {} in {:.1}s: {:.0} responses/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {} (concurrency {}, {}, {})",
            f.ok,
            f.seconds,
            f.per_second,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.errors,
            args.concurrency,
            if args.get { "GET" } else { "POST" },
            if per_request { "a connection per request" } else { "keep-alive" },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successful_response_is_recognised() {
        // SEQUENCE { ENUMERATED 0, [0] {...} } with a short and a long length.
        assert!(is_successful_response(&[
            0x30, 0x05, 0x0a, 0x01, 0x00, 0xa0, 0x00
        ]));
        let mut long = vec![0x30, 0x81, 0x83, 0x0a, 0x01, 0x00, 0xa0, 0x7e];
        long.extend(std::iter::repeat_n(0u8, 0x7e));
        assert!(is_successful_response(&long));
        // unauthorized (6), as `openssl ocsp -ignore_err` never sends but others do
        assert!(!is_successful_response(&[0x30, 0x03, 0x0a, 0x01, 0x06]));
        // truncated, trailing bytes, empty, not a SEQUENCE
        assert!(!is_successful_response(&long[..long.len() - 1]));
        assert!(!is_successful_response(&[
            0x30, 0x03, 0x0a, 0x01, 0x00, 0x00
        ]));
        assert!(!is_successful_response(&[]));
        assert!(!is_successful_response(&[0x31, 0x03, 0x0a, 0x01, 0x00]));
        assert!(!is_successful_response(&[0x30, 0x84]));
    }

    #[test]
    fn urls_split_and_get_paths_encode() {
        let (b, p) = split_url("http://127.0.0.1:8080/ocsp/abc").expect("valid");
        assert_eq!(
            (b.as_str(), p.as_str()),
            ("http://127.0.0.1:8080", "/ocsp/abc")
        );
        let (b, p) = split_url("http://127.0.0.1:8080").expect("valid");
        assert_eq!((b.as_str(), p.as_str()), ("http://127.0.0.1:8080", "/"));
        assert!(split_url("https://127.0.0.1:8080/").is_err());
        assert_eq!(percent_encode_base64("MA+/b=="), "MA%2B%2Fb%3D%3D");
    }
}
