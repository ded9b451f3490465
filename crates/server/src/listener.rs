//! Accept loops: one per listener (HTTPS API, plain-HTTP relying parties, metrics).
//!
//! Each loop enforces, before a request reaches a router: a cap on open connections
//! (excess connections are closed as soon as they are accepted, so the backlog never fills
//! and the server stays responsive), a TLS handshake deadline, a deadline for the request
//! headers (hyper's header read timeout, which also bounds idle keep-alive) and another for
//! the body once the headers are in (a slow upload is answered 408 and the connection
//! closed), and the per-address rate limit (429 with `Retry-After`).

use crate::api::ApiError;
use crate::limits::{address_limited, client_key, KeyedLimiter};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Written to a plain-HTTP connection refused for being over the cap (best effort, never
/// waited for).
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";

/// One listener and what it enforces.
pub(crate) struct Listener {
    /// `api`, `http` or `metrics`: the label of its metrics.
    pub(crate) name: &'static str,
    /// The bound socket.
    pub(crate) tcp: TcpListener,
    /// TLS and the handshake deadline, on the HTTPS listener.
    pub(crate) tls: Option<(TlsAcceptor, Duration)>,
    /// What it serves.
    pub(crate) router: axum::Router,
    /// Most connections open at once.
    pub(crate) max_connections: usize,
    /// Requests per second per client address, if limited.
    pub(crate) per_ip: Option<Arc<KeyedLimiter<IpAddr>>>,
    /// Deadline for the headers, and for the body once the headers are in.
    pub(crate) request_timeout: Duration,
}

/// Serves `l` until `stop` changes; open connections then finish gracefully.
pub(crate) async fn serve(l: Listener, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(l.max_connections));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = l.tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or the like: back off instead of spinning.
                    tracing::warn!(listener = l.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("trustbox_connections_refused_total", "listener" => l.name)
                .increment(1);
            if l.tls.is_none() {
                let _ = tcp.try_write(REFUSED);
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let service = Guarded {
            router: l.router.clone(),
            per_ip: l.per_ip.clone(),
            client: client_key(peer.ip()),
            request_timeout: l.request_timeout,
            listener: l.name,
        };
        let tls = l.tls.clone();
        let request_timeout = l.request_timeout;
        let mut conn_stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                Some((acceptor, deadline)) => {
                    match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            serve_connection(tls, service, request_timeout, peer, &mut conn_stop)
                                .await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve_connection(tcp, service, request_timeout, peer, &mut conn_stop).await,
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection until it ends or `stop` changes (then gracefully).
async fn serve_connection<S>(
    io: S,
    service: Guarded,
    request_timeout: Duration,
    peer: SocketAddr,
    stop: &mut watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(request_timeout)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// The per-connection service: rate limit, body deadline, then the router.
#[derive(Clone)]
struct Guarded {
    router: axum::Router,
    per_ip: Option<Arc<KeyedLimiter<IpAddr>>>,
    client: IpAddr,
    request_timeout: Duration,
    listener: &'static str,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for Guarded {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        if let Some(limiter) = &self.per_ip {
            if let Err(wait) = limiter.check(&self.client) {
                let resp = address_limited(self.listener, wait).into_response();
                return Box::pin(std::future::ready(Ok(resp)));
            }
        }
        let expired = Arc::new(AtomicBool::new(false));
        let (parts, body) = req.into_parts();
        let body = DeadlineBody {
            inner: body,
            deadline: Instant::now() + self.request_timeout,
            sleep: None,
            expired: expired.clone(),
        };
        let req = hyper::Request::from_parts(parts, axum::body::Body::new(body));
        let router = self.router.clone();
        let timeout = self.request_timeout;
        Box::pin(async move {
            let resp = match router.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if expired.load(Ordering::Relaxed) {
                return Ok(body_timed_out(timeout));
            }
            Ok(resp)
        })
    }
}

/// 408 for a body that did not arrive in time; the connection is closed after it.
fn body_timed_out(timeout: Duration) -> Response {
    let mut resp = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request-timeout",
        format!(
            "the request body was not received within {} s",
            timeout.as_secs()
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The request body did not arrive before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
struct BodyTimedOut;

/// A request body that fails once its deadline passes, and says so through `expired`.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Armed the first time the body has to wait (most bodies never do).
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
