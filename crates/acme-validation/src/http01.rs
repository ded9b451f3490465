//! http-01 ([RFC 8555 §8.3](https://www.rfc-editor.org/rfc/rfc8555#section-8.3)): GET
//! `http://<identifier>/.well-known/acme-challenge/<token>`, following a bounded number of
//! redirects to http or https (certificates unverified, as Let's Encrypt does), and compare
//! the body with the key authorization. Connections are made here, through the
//! validator's resolver; no proxy settings are honoured.

use crate::error::excerpt;
use crate::{tls, Inner, ValidationError};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::net::IpAddr;
use tokio_rustls::TlsConnector;
use trustbox_proto_acme::Identifier;
use url::{Host, Url};

/// What one request gave.
enum Reply {
    /// A redirect, with its `Location`.
    Redirect(String),
    /// A final answer: its status and at most `max_body_bytes + 1` bytes of its body.
    Final { status: StatusCode, body: Vec<u8> },
}

/// Runs http-01 for `identifier` starting at `port`.
pub(crate) async fn validate(
    inner: &Inner,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
    port: u16,
) -> Result<(), ValidationError> {
    let host = match identifier {
        Identifier::Dns(name) => Host::Domain(name.to_ascii_lowercase()),
        Identifier::Ip(IpAddr::V4(a)) => Host::Ipv4(*a),
        Identifier::Ip(IpAddr::V6(a)) => Host::Ipv6(*a),
    };
    // The first Host header is the identifier alone (RFC 8555 §8.3), whatever port is used.
    let mut host_header = host.to_string();
    let mut url = Url::parse(&format!(
        "http://{host}:{port}/.well-known/acme-challenge/{token}"
    ))
    .map_err(|_| ValidationError::Malformed(format!("{host} cannot be put in an http-01 URL")))?;
    // URL parsing reads some names as addresses (`0x7f.1` is 127.0.0.1); a name is resolved.
    if url.host().map(|h| h.to_owned()).as_ref() != Some(&host) {
        return Err(ValidationError::Malformed(format!(
            "{host} does not stay the same host in an http-01 URL"
        )));
    }
    let limit = inner.config.max_body_bytes;
    let max = inner.config.max_redirects;
    let mut redirects = 0;
    loop {
        match fetch(inner, &url, &host_header, limit).await? {
            Reply::Redirect(location) => {
                if redirects == max {
                    return Err(ValidationError::TooManyRedirects { max });
                }
                redirects += 1;
                url = redirect_target(&url, &location)?;
                host_header = match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_owned(),
                    // redirect_target only returns URLs with a host.
                    (None, _) => return Err(ValidationError::Redirect("no host".into())),
                };
            }
            Reply::Final { status, body } => {
                return check_reply(&url, status, &body, limit, key_authorization)
            }
        }
    }
}

/// The answer must be 200 with a body (at most `limit` bytes) that, less trailing ASCII
/// whitespace, is exactly the key authorization.
fn check_reply(
    url: &Url,
    status: StatusCode,
    body: &[u8],
    limit: usize,
    key_authorization: &str,
) -> Result<(), ValidationError> {
    if status != StatusCode::OK {
        return Err(ValidationError::HttpStatus {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    if body.len() > limit {
        return Err(ValidationError::BodyTooLarge {
            url: url.to_string(),
            limit,
        });
    }
    if body.trim_ascii_end() != key_authorization.as_bytes() {
        return Err(ValidationError::IncorrectResponse(format!(
            "the key authorization file from {url} did not match this challenge: expected \
             \"{key_authorization}\", got \"{}\"",
            excerpt(body)
        )));
    }
    Ok(())
}

/// Where a redirect from `from` to `location` leads: an absolute http or https URL with a
/// host (relative references are resolved against `from`; the fragment is dropped).
fn redirect_target(from: &Url, location: &str) -> Result<Url, ValidationError> {
    let mut to = from.join(location).map_err(|_| {
        ValidationError::Redirect(format!(
            "{from} redirected to an invalid URL \"{}\"",
            excerpt(location.as_bytes())
        ))
    })?;
    if !matches!(to.scheme(), "http" | "https") {
        return Err(ValidationError::Redirect(format!(
            "{from} redirected to a {} URL; only http and https are followed",
            to.scheme()
        )));
    }
    if to.host().is_none() {
        return Err(ValidationError::Redirect(format!(
            "{from} redirected to a URL without a host"
        )));
    }
    to.set_fragment(None);
    Ok(to)
}

/// One GET of `url` on a fresh connection.
async fn fetch(
    inner: &Inner,
    url: &Url,
    host_header: &str,
    limit: usize,
) -> Result<Reply, ValidationError> {
    let host = url
        .host()
        .map(|h| h.to_owned())
        .ok_or_else(|| ValidationError::Redirect(format!("{url} has no host")))?;
    let https = url.scheme() == "https";
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let target = format!("{host}:{port}");
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = Request::get(path)
        .header(HOST, host_header)
        .header(USER_AGENT, "trustbox-acme-validation")
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| ValidationError::Malformed(format!("{url} cannot be requested")))?;
    let tcp = inner.net.connect(&host, port).await?;
    if https {
        let name = match &host {
            Host::Domain(d) => ServerName::try_from(d.clone()).map_err(|_| {
                ValidationError::Redirect(format!("{d} is not a name TLS can be asked for"))
            })?,
            Host::Ipv4(a) => ServerName::IpAddress(IpAddr::V4(*a).into()),
            Host::Ipv6(a) => ServerName::IpAddress(IpAddr::V6(*a).into()),
        };
        let stream = TlsConnector::from(inner.https_tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| tls::handshake_error(&target, e))?;
        exchange(TokioIo::new(stream), request, limit, &target).await
    } else {
        exchange(TokioIo::new(tcp), request, limit, &target).await
    }
}

/// Sends `request` over `io` with HTTP/1.1 and reads the reply, driving the connection in
/// this task (nothing is spawned, so a timeout cancels all of it).
async fn exchange<I>(
    io: I,
    request: Request<Empty<Bytes>>,
    limit: usize,
    target: &str,
) -> Result<Reply, ValidationError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| http_error(target, &e))?;
    let work = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_error(target, &e))?;
        read_reply(response, limit, target).await
    };
    let mut conn = std::pin::pin!(conn);
    let mut work = std::pin::pin!(work);
    tokio::select! {
        biased;
        reply = &mut work => reply,
        driven = &mut conn => match driven {
            // The connection is done; what the reply still needs is buffered or lost.
            Ok(()) => work.await,
            Err(e) => Err(http_error(target, &e)),
        },
    }
}

/// The reply's redirect target, or its status and the first `limit + 1` body bytes.
async fn read_reply(
    response: Response<Incoming>,
    limit: usize,
    target: &str,
) -> Result<Reply, ValidationError> {
    let status = response.status();
    if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        let location = response
            .headers()
            .get(LOCATION)
            .ok_or_else(|| {
                ValidationError::Redirect(format!("{target} answered {status} without a Location"))
            })?
            .to_str()
            .map_err(|_| {
                ValidationError::Redirect(format!("{target} sent a Location that is not ASCII"))
            })?
            .to_owned();
        return Ok(Reply::Redirect(location));
    }
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() <= limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| http_error(target, &e))?;
        if let Ok(data) = frame.into_data() {
            let room = limit + 1 - bytes.len();
            bytes.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Reply::Final {
        status,
        body: bytes,
    })
}

/// A hyper failure: a malformed response is a lasting problem, anything else (closed,
/// reset, incomplete) is worth a retry.
fn http_error(target: &str, e: &hyper::Error) -> ValidationError {
    tracing::debug!(%target, error = %e, "http-01 request failed");
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        ValidationError::Connection {
            detail: format!("{target} sent a malformed HTTP response"),
            transient: false,
        }
    } else {
        ValidationError::Connection {
            detail: format!("fetching from {target}: {e}"),
            transient: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{
        acme_cert, dns_san, http_response, http_server, refused_port, silent_server, tls_server,
        validator, DnsZone, TlsSetup, KEY_AUTH, TOKEN,
    };
    use crate::{Ports, ResolverConfig, Validator, ValidatorConfig};
    use std::net::Ipv4Addr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use trustbox_proto_acme::{ChallengeType, ErrorType};

    fn localhost() -> Identifier {
        Identifier::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    async fn http01(v: &Validator, id: &Identifier, port: u16) -> Result<(), ValidationError> {
        let ports = Ports { http: port, tls: 1 };
        v.validate(ChallengeType::Http01, id, TOKEN, KEY_AUTH, ports)
            .await
    }

    #[tokio::test]
    async fn http01_success() {
        let seen = Arc::new(Mutex::new(String::new()));
        let log = Arc::clone(&seen);
        let (port, _server) = http_server(move |head| {
            *log.lock().expect("not poisoned") = head.to_owned();
            http_response("200 OK", &[], format!("{KEY_AUTH}\r\n \n").as_bytes())
        })
        .await;
        http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect("validates");
        let head = seen.lock().expect("not poisoned").clone();
        assert!(
            head.starts_with(&format!(
                "GET /.well-known/acme-challenge/{TOKEN} HTTP/1.1\r\n"
            )),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\nhost: 127.0.0.1\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn http01_wrong_body() {
        let (port, _server) =
            http_server(|_| http_response("200 OK", &[], b"nope\x00<script>")).await;
        let err = http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect_err("wrong body");
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse);
        assert!(!err.is_transient());
        assert!(
            err.to_string().contains("got \"nope\\x00<script>\""),
            "{err}"
        );
    }

    #[tokio::test]
    async fn http01_leading_whitespace_is_not_ignored() {
        let body = format!(" {KEY_AUTH}");
        let (port, _server) =
            http_server(move |_| http_response("200 OK", &[], body.as_bytes())).await;
        let err = http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect_err("leading space");
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse);
    }

    #[tokio::test]
    async fn http01_oversized_body() {
        let mut body = KEY_AUTH.as_bytes().to_vec();
        body.resize(8 * 1024 + 1, b' ');
        let (port, _server) = http_server(move |_| http_response("200 OK", &[], &body)).await;
        let err = http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect_err("too large");
        assert!(
            matches!(err, ValidationError::BodyTooLarge { limit: 8192, .. }),
            "{err}"
        );
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse);
    }

    #[tokio::test]
    async fn http01_not_found() {
        let (port, _server) = http_server(|_| http_response("404 Not Found", &[], b"")).await;
        let err = http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect_err("404");
        assert!(
            matches!(err, ValidationError::HttpStatus { status: 404, .. }),
            "{err}"
        );
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse);
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn http01_redirect_chain() {
        let (final_port, _final) = http_server(|head| {
            if head.starts_with("GET /final?x=1 ") && head.contains("127.0.0.1:") {
                http_response("200 OK", &[], KEY_AUTH.as_bytes())
            } else {
                http_response("400 Bad Request", &[], head.as_bytes())
            }
        })
        .await;
        let (mid_port, _mid) = http_server(move |_| {
            let to = format!("http://127.0.0.1:{final_port}/final?x=1#frag");
            http_response("307 Temporary Redirect", &[("Location", &to)], b"")
        })
        .await;
        let (first_port, _first) = http_server(move |_| {
            let to = format!("http://127.0.0.1:{mid_port}/elsewhere");
            http_response("301 Moved Permanently", &[("Location", &to)], b"")
        })
        .await;
        http01(&validator(ResolverConfig::System), &localhost(), first_port)
            .await
            .expect("validates through two redirects");
    }

    #[tokio::test]
    async fn http01_relative_redirect() {
        let (port, _server) = http_server(|head| {
            if head.starts_with("GET /moved ") {
                http_response("200 OK", &[], KEY_AUTH.as_bytes())
            } else {
                http_response("302 Found", &[("Location", "/moved")], b"")
            }
        })
        .await;
        http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect("validates");
    }

    #[tokio::test]
    async fn http01_redirect_to_https_without_verification() {
        let (https_port, _https, _) = tls_server(TlsSetup {
            alpn: vec![b"http/1.1".to_vec()],
            reply: Some(http_response("200 OK", &[], KEY_AUTH.as_bytes())),
            ..TlsSetup::acme(acme_cert(vec![dns_san("unrelated.test")], None))
        })
        .await;
        let (port, _server) = http_server(move |_| {
            let to = format!("https://127.0.0.1:{https_port}/x");
            http_response("308 Permanent Redirect", &[("Location", &to)], b"")
        })
        .await;
        http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect("validates over an unverified https hop");
    }

    #[tokio::test]
    async fn http01_redirect_loop_exceeds_max() {
        let (port, _server) = http_server(|_| {
            http_response(
                "302 Found",
                &[("Location", "/.well-known/acme-challenge/again")],
                b"",
            )
        })
        .await;
        let config = ValidatorConfig {
            max_redirects: 3,
            ..ValidatorConfig::default()
        };
        let v = Validator::new(config).expect("valid config");
        let err = http01(&v, &localhost(), port).await.expect_err("loop");
        assert!(
            matches!(err, ValidationError::TooManyRedirects { max: 3 }),
            "{err}"
        );
        assert_eq!(err.acme_type(), ErrorType::Connection);
    }

    #[tokio::test]
    async fn http01_redirect_to_other_scheme_is_refused() {
        let (port, _server) =
            http_server(|_| http_response("302 Found", &[("Location", "ftp://127.0.0.1/x")], b""))
                .await;
        let err = http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect_err("ftp");
        assert!(matches!(err, ValidationError::Redirect(_)), "{err}");
    }

    #[tokio::test]
    async fn http01_connection_refused_is_transient() {
        let port = refused_port().await;
        let err = http01(&validator(ResolverConfig::System), &localhost(), port)
            .await
            .expect_err("refused");
        assert_eq!(err.acme_type(), ErrorType::Connection);
        assert!(err.is_transient(), "{err}");
    }

    #[tokio::test]
    async fn http01_slow_server_times_out() {
        let (port, _server) = silent_server().await;
        let config = ValidatorConfig {
            timeout: Duration::from_millis(300),
            ..ValidatorConfig::default()
        };
        let v = Validator::new(config).expect("valid config");
        let started = std::time::Instant::now();
        let err = http01(&v, &localhost(), port).await.expect_err("slow");
        assert!(started.elapsed() < Duration::from_millis(1200));
        assert!(matches!(err, ValidationError::Timeout { .. }), "{err}");
        assert_eq!(err.acme_type(), ErrorType::Connection);
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn http01_name_resolved_through_configured_dns() {
        let zone = DnsZone::default().a("acme.test", Ipv4Addr::LOCALHOST);
        let (dns, _dns_server) = zone.serve().await;
        let seen = Arc::new(Mutex::new(String::new()));
        let log = Arc::clone(&seen);
        let (port, _server) = http_server(move |head| {
            *log.lock().expect("not poisoned") = head.to_owned();
            http_response("200 OK", &[], KEY_AUTH.as_bytes())
        })
        .await;
        let v = validator(ResolverConfig::Nameservers(vec![dns]));
        http01(&v, &Identifier::Dns("acme.test".into()), port)
            .await
            .expect("validates");
        let head = seen.lock().expect("not poisoned").to_ascii_lowercase();
        assert!(head.contains("\r\nhost: acme.test\r\n"), "{head}");

        let err = http01(&v, &Identifier::Dns("missing.test".into()), port)
            .await
            .expect_err("no such name");
        assert_eq!(err.acme_type(), ErrorType::Dns, "{err}");
    }

    #[tokio::test]
    async fn http01_name_that_url_parsing_reads_as_address() {
        let v = validator(ResolverConfig::System);
        let err = http01(&v, &Identifier::Dns("0x7f.1".into()), 80)
            .await
            .expect_err("not an address");
        assert_eq!(err.acme_type(), ErrorType::Malformed, "{err}");
    }

    #[test]
    fn redirect_targets() {
        let from = Url::parse("http://a.test/.well-known/acme-challenge/t").expect("valid");
        let to = redirect_target(&from, "https://b.test:8443/x#f").expect("valid");
        assert_eq!(to.as_str(), "https://b.test:8443/x");
        assert_eq!(
            redirect_target(&from, "other").expect("valid").as_str(),
            "http://a.test/.well-known/acme-challenge/other"
        );
        assert!(redirect_target(&from, "file:///etc/passwd").is_err());
        assert!(redirect_target(&from, "http://").is_err());
    }
}
