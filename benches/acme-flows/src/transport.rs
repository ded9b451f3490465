//! The HTTPS transport instant-acme sends its requests through: one kept-alive TLS
//! connection per flow (as a real ACME client process would have), over the workspace's
//! `trustbox-client` (rustls with ring, trust only from the given CA file).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, Uri};
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use trustbox_client::Client;

/// Scheme and authority of `url` with an explicit port, e.g. `https://127.0.0.1:14000`.
pub fn origin_of(url: &str) -> anyhow::Result<String> {
    let uri: Uri = url.parse()?;
    let scheme = uri
        .scheme_str()
        .filter(|s| *s == "https" || *s == "http")
        .ok_or_else(|| anyhow::anyhow!("{url}: expected an https:// or http:// URL"))?;
    let host = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?;
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok(format!("{scheme}://{host}:{port}"))
}

/// An [`HttpClient`] bound to one ACME server origin.
pub struct Transport {
    origin: String,
    client: Arc<Client>,
    requests: Arc<AtomicU64>,
}

impl Transport {
    /// A transport for `origin` (from [`origin_of`]), trusting `ca_pem`, counting every
    /// request it sends in `requests`.
    pub fn new(
        origin: &str,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
        requests: Arc<AtomicU64>,
    ) -> anyhow::Result<Self> {
        let client = Client::new(origin, ca_pem, None)?.with_timeout(timeout);
        Ok(Self {
            origin: origin.to_owned(),
            client: Arc::new(client),
            requests,
        })
    }
}

type Pending = Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>>;

impl HttpClient for Transport {
    fn request(&self, req: Request<BodyWrapper<Bytes>>) -> Pending {
        let client = self.client.clone();
        let origin = self.origin.clone();
        self.requests.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let target = origin_of(&parts.uri.to_string()).map_err(other)?;
            if target != origin {
                return Err(other(anyhow::anyhow!(
                    "the server sent us to {target}, not {origin}"
                )));
            }
            let path = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
            let content_type =
                header(hyper::header::CONTENT_TYPE).unwrap_or("application/octet-stream");
            let mut extra = Vec::new();
            if let Some(agent) = header(hyper::header::USER_AGENT) {
                extra.push(("user-agent", agent));
            }
            let payload = (!body.is_empty()).then(|| (content_type, body.to_vec()));
            let rsp = client
                .request_with_headers(parts.method.as_str(), &path, &extra, payload)
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let mut out = Response::builder().status(rsp.status);
            for (name, value) in &rsp.headers {
                out = out.header(name.as_str(), value.as_str());
            }
            let out = out.body(Full::new(Bytes::from(rsp.body)))?;
            Ok(BytesResponse::from(out))
        })
    }
}

fn other(e: anyhow::Error) -> instant_acme::Error {
    instant_acme::Error::Other(e.into())
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origin_keeps_scheme_host_and_port() -> anyhow::Result<()> {
        assert_eq!(
            origin_of("https://127.0.0.1:14000/dir")?,
            "https://127.0.0.1:14000"
        );
        assert_eq!(
            origin_of("https://localhost/acme/bench/directory")?,
            "https://localhost:443"
        );
        assert!(origin_of("ftp://x/").is_err());
        Ok(())
    }
}
