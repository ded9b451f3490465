//! Test servers on free 127.0.0.1 ports: a canned-answer HTTP server, a silent one, a TLS
//! server presenting any certificate (rcgen-made), a tiny UDP DNS responder. Each runs as a task owned by a [`Task`] guard that aborts it (and the
//! connection tasks it owns) when the test drops it.

use crate::{ResolverConfig, Validator, ValidatorConfig};
use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SOA, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// The token the tests use.
pub(crate) const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
/// `TOKEN.thumbprint`.
pub(crate) const KEY_AUTH: &str =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

/// Aborts its task when dropped.
pub(crate) struct Task(pub(crate) JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A validator with `resolver` and a 5 s deadline.
pub(crate) fn validator(resolver: ResolverConfig) -> Validator {
    Validator::new(ValidatorConfig {
        resolver,
        timeout: Duration::from_secs(5),
        ..ValidatorConfig::default()
    })
    .expect("valid config")
}

/// A port on 127.0.0.1 nothing listens on (bound, then released).
pub(crate) async fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("bound").port()
}

/// A raw HTTP/1.1 response with a Content-Length, closing the connection.
pub(crate) fn http_response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// An HTTP server answering each request with `handler(request head)`.
pub(crate) async fn http_server<F>(handler: F) -> (u16, Task)
where
    F: Fn(&str) -> Vec<u8> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("bound").port();
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            connections.spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = handler(&String::from_utf8_lossy(&head));
                let _ = stream.write_all(&reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, Task(task))
}

/// A server that accepts connections and never answers.
pub(crate) async fn silent_server() -> (u16, Task) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("bound").port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (port, Task(task))
}

/// The records a test DNS responder serves (names lower-case, without trailing dot).
#[derive(Default, Clone)]
pub(crate) struct DnsZone {
    a: Vec<(String, Ipv4Addr)>,
    txt: Vec<(String, Vec<String>)>,
    servfail: Vec<String>,
}

impl DnsZone {
    /// Adds an A record.
    pub(crate) fn a(mut self, name: &str, addr: Ipv4Addr) -> Self {
        self.a.push((name.to_owned(), addr));
        self
    }

    /// Adds a TXT record made of `strings`.
    pub(crate) fn txt(mut self, name: &str, strings: &[&str]) -> Self {
        self.txt.push((
            name.to_owned(),
            strings.iter().map(|s| (*s).to_owned()).collect(),
        ));
        self
    }

    /// Makes every query for `name` answer SERVFAIL.
    pub(crate) fn servfail(mut self, name: &str) -> Self {
        self.servfail.push(name.to_owned());
        self
    }

    /// The answer to one query message.
    fn answer(&self, query: &Message) -> Message {
        let mut reply = Message::error_msg(query.id(), query.op_code(), ResponseCode::NoError);
        reply
            .set_message_type(MessageType::Response)
            .set_recursion_desired(query.recursion_desired())
            .set_recursion_available(true)
            .set_authoritative(true);
        let Some(q) = query.queries().first() else {
            reply.set_response_code(ResponseCode::FormErr);
            return reply;
        };
        reply.add_query(q.clone());
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if self.servfail.contains(&name) {
            reply.set_response_code(ResponseCode::ServFail);
            return reply;
        }
        let exists =
            self.a.iter().any(|(n, _)| *n == name) || self.txt.iter().any(|(n, _)| *n == name);
        if !exists {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        match q.query_type() {
            RecordType::A => {
                for (_, addr) in self.a.iter().filter(|(n, _)| *n == name) {
                    reply.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(*addr))));
                }
            }
            RecordType::TXT => {
                for (_, strings) in self.txt.iter().filter(|(n, _)| *n == name) {
                    let txt = RData::TXT(TXT::new(strings.clone()));
                    reply.add_answer(Record::from_rdata(q.name().clone(), 60, txt));
                }
            }
            _ => {}
        }
        if reply.answers().is_empty() {
            let zone = Name::from_ascii("test.").expect("valid name");
            let soa = SOA::new(zone.clone(), zone.clone(), 1, 60, 60, 60, 60);
            reply.add_name_server(Record::from_rdata(zone, 60, RData::SOA(soa)));
        }
        reply
    }

    /// Serves the zone over UDP on a free 127.0.0.1 port.
    pub(crate) async fn serve(self) -> (SocketAddr, Task) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("bound");
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Ok(bytes) = self.answer(&query).to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        (addr, Task(task))
    }
}

/// A self-signed certificate for `sans`, with `extension` (an acmeIdentifier, say).
pub(crate) fn acme_cert(
    sans: Vec<SanType>,
    extension: Option<CustomExtension>,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names = sans;
    params.custom_extensions = extension.into_iter().collect();
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    let key = PrivatePkcs8KeyDer::from(key.serialize_der());
    (cert.der().clone(), key.into())
}

/// A dNSName subjectAltName.
pub(crate) fn dns_san(name: &str) -> SanType {
    SanType::DnsName(name.try_into().expect("valid name"))
}

/// What a test TLS server presents and does.
pub(crate) struct TlsSetup {
    /// The certificate presented.
    pub(crate) cert: CertificateDer<'static>,
    /// The key the handshake is signed with (normally the certificate's).
    pub(crate) key: PrivateKeyDer<'static>,
    /// The ALPN protocols the server accepts.
    pub(crate) alpn: Vec<Vec<u8>>,
    /// Speak TLS 1.2 only.
    pub(crate) tls12_only: bool,
    /// Answer the first request read with these bytes (HTTPS); otherwise just wait.
    pub(crate) reply: Option<Vec<u8>>,
}

impl TlsSetup {
    /// Presents `cert` with ALPN acme-tls/1, TLS 1.2 and 1.3, no HTTP reply.
    pub(crate) fn acme(cert: (CertificateDer<'static>, PrivateKeyDer<'static>)) -> Self {
        Self {
            cert: cert.0,
            key: cert.1,
            alpn: vec![b"acme-tls/1".to_vec()],
            tls12_only: false,
            reply: None,
        }
    }
}

/// Presents one certificate whatever the client asks for; records the SNI asked for.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>, Arc<Mutex<Option<String>>>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        *self.1.lock().expect("not poisoned") = hello.server_name().map(str::to_owned);
        Some(Arc::clone(&self.0))
    }
}

/// A TLS server on a free 127.0.0.1 port set up as `setup` says; also gives the SNI seen.
pub(crate) async fn tls_server(setup: TlsSetup) -> (u16, Task, Arc<Mutex<Option<String>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = provider
        .key_provider
        .load_private_key(setup.key)
        .expect("usable key");
    // Not `with_single_cert`: webpki refuses the unknown critical acmeIdentifier.
    let certified = Arc::new(CertifiedKey::new(vec![setup.cert], key));
    let sni = Arc::new(Mutex::new(None));
    let versions: &[&rustls::SupportedProtocolVersion] = if setup.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(certified, Arc::clone(&sni))));
    config.alpn_protocols = setup.alpn;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("bound").port();
    let reply = setup.reply;
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let reply = reply.clone();
            connections.spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    if let Some(reply) = reply {
                        let _ = tls.write_all(&reply).await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    });
    (port, Task(task), sni)
}
