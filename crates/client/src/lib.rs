//! A small HTTPS client for the TrustBox REST API, used by the CLI, the benchmark and
//! tests. One connection per client, kept alive and re-opened when it drops.
//!
//! Trust is explicit: the server's root CA is given as PEM (`TRUSTBOX_CA_FILE`); there is no
//! "insecure" mode.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not `https://host:port` or `http://host:port`.
    #[error("invalid URL {0:?}: expected https://host:port")]
    Url(String),
    /// The CA file could not be used.
    #[error("CA certificates: {0}")]
    Ca(String),
    /// Connecting, TLS or HTTP failed.
    #[error("connection to {addr}: {reason}")]
    Connect {
        /// host:port
        addr: String,
        /// what failed
        reason: String,
    },
    /// The request timed out.
    #[error("request timed out")]
    Timeout,
    /// The response body is not the JSON expected.
    #[error("unexpected response: {0}")]
    Decode(String),
}

/// A response: status, content type and body.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Content-Type, if any.
    pub content_type: Option<String>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Response headers, names lowercase.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An API client bound to one server.
pub struct Client {
    host: String,
    port: u16,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    token: Option<String>,
    timeout: Duration,
    conn: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `base_url`, trusting the PEM certificates in `ca_pem` (required for
    /// https), sending `token` as a bearer token.
    pub fn new(
        base_url: &str,
        ca_pem: Option<&[u8]>,
        token: Option<String>,
    ) -> Result<Self, ClientError> {
        let (https, rest) = if let Some(r) = base_url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = base_url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(ClientError::Url(base_url.into()));
        };
        let authority = rest.trim_end_matches('/');
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6
                .split_once("]:")
                .ok_or_else(|| ClientError::Url(base_url.into()))?;
            (h.to_owned(), p)
        } else {
            let (h, p) = authority
                .rsplit_once(':')
                .ok_or_else(|| ClientError::Url(base_url.into()))?;
            (h.to_owned(), p)
        };
        let port: u16 = port
            .parse()
            .map_err(|_| ClientError::Url(base_url.into()))?;
        let tls = if https {
            let pem = ca_pem.ok_or_else(|| {
                ClientError::Ca("an https URL needs the server's CA (TRUSTBOX_CA_FILE)".into())
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ClientError::Ca(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Ca(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ClientError::Ca("no certificates in the CA file".into()));
            }
            let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.clone())
                .map_err(|_| ClientError::Url(base_url.into()))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(cfg)), name))
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            tls,
            token,
            timeout: Duration::from_secs(30),
            conn: Mutex::new(None),
        })
    }

    /// Sets the per-request timeout (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let addr = format!("{}:{}", self.host, self.port);
        let err = |reason: String| ClientError::Connect {
            addr: addr.clone(),
            reason,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| err(e.to_string()))?;
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| err(e.to_string()))?;
                tokio::spawn(conn);
                Ok(send)
            }
            None => {
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| err(e.to_string()))?;
                tokio::spawn(conn);
                Ok(send)
            }
        }
    }

    /// Sends one request; `body` is `(content type, bytes)`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, ClientError> {
        self.request_with_headers(method, path, &[], body).await
    }

    /// Sends one request with extra `headers`; `body` is `(content type, bytes)`.
    pub async fn request_with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, ClientError> {
        tokio::time::timeout(
            self.timeout,
            self.request_inner(method, path, headers, body),
        )
        .await
        .map_err(|_| ClientError::Timeout)?
    }

    async fn request_inner(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, ClientError> {
        let mut guard = self.conn.lock().await;
        let reuse = matches!(&*guard, Some(s) if !s.is_closed());
        if !reuse {
            *guard = Some(self.connect().await?);
        }
        let Some(send) = guard.as_mut() else {
            return Err(ClientError::Connect {
                addr: self.host.clone(),
                reason: "no connection".into(),
            });
        };
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let bytes = match body {
            Some((ct, b)) => {
                req = req.header("content-type", ct);
                b
            }
            None => Vec::new(),
        };
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| ClientError::Url(e.to_string()))?;
        send.ready().await.map_err(|e| ClientError::Connect {
            addr: self.host.clone(),
            reason: e.to_string(),
        })?;
        let resp = match send.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                *guard = None;
                return Err(ClientError::Connect {
                    addr: self.host.clone(),
                    reason: e.to_string(),
                });
            }
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Connect {
                addr: self.host.clone(),
                reason: e.to_string(),
            })?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status,
            content_type,
            body,
            headers,
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Response, ClientError> {
        self.request("GET", path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Response, ClientError> {
        self.request(
            "POST",
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await
    }
}
