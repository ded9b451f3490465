//! The only place that mounts routers, TLS listeners and metrics.
//!
//! [`start`] prepares the data directory (bootstrapping on first start), binds the HTTPS
//! listener and serves the REST API; everything it serves calls the issuance seam in
//! `trustbox-authority`. Handlers are thin: parse, call the seam, map the result.

mod api;
mod config;
mod metrics_setup;
mod openapi;
mod public;
mod setup;

pub use config::ServerConfig;
pub use setup::{open_authority, DataPaths};

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Failures starting or running the server. Each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A configuration option is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("I/O: {0}")]
    Io(String),
    /// The key-encryption key or key store failed.
    #[error("key custody: {0}")]
    Custody(String),
    /// The store could not be opened or migrated.
    #[error("store: {0}")]
    Store(String),
    /// Bootstrapping the CA hierarchy or server certificate failed.
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    /// TLS material could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A server that is accepting connections.
#[derive(Debug)]
pub struct RunningServer {
    /// The HTTPS address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The plain-HTTP address for relying parties, if that listener is on.
    pub http_addr: Option<SocketAddr>,
    /// The base URL stamped into certificates (CRL, OCSP, caIssuers), if any.
    pub public_url: Option<String>,
    /// The bootstrap admin token, only on the start that created it.
    pub admin_token: Option<String>,
    /// Data directory layout.
    pub paths: DataPaths,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down.
    pub async fn wait_for_signal(self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return self.shutdown().await;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        self.shutdown().await;
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Io(format!("bind {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServerError::Io(e.to_string()))?;
    Ok((listener, bound))
}

/// Prepares the data directory and starts serving HTTPS on `cfg.listen`, the relying-party
/// endpoints on `cfg.http_listen`, and the revocation worker.
pub async fn start(mut cfg: ServerConfig) -> Result<RunningServer, ServerError> {
    cfg.validate()?;
    let metrics = metrics_setup::handle();
    // Bind first: the public URL stamped into certificates defaults to the plain-HTTP
    // listener's actual address (which a port 0 only reveals once bound).
    let (listener, addr) = bind(cfg.listen).await?;
    let http = match cfg.http_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    if cfg.public_url.is_none() {
        cfg.public_url = http.as_ref().map(|(_, a)| format!("http://{a}"));
    }
    let prepared = setup::prepare(&cfg).await?;
    let app = api::App {
        authority: prepared.authority.clone(),
        metrics,
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
    };
    let router = api::router(app.clone(), cfg.max_body_bytes);
    let acceptor = TlsAcceptor::from(Arc::new(prepared.tls));
    let (shutdown, rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(accept_loop(
        listener,
        Some(acceptor),
        router,
        rx.clone(),
    ))];
    let http_addr = match http {
        Some((listener, http_addr)) => {
            let router = public::router(app);
            tasks.push(tokio::spawn(accept_loop(
                listener,
                None,
                router,
                rx.clone(),
            )));
            tracing::info!(addr = %http_addr, "serving CRLs, OCSP and CA certificates over HTTP");
            Some(http_addr)
        }
        None => None,
    };
    tasks.push(tokio::spawn(
        prepared.authority.clone().run_revocation_worker(rx),
    ));
    tracing::info!(%addr, data_dir = %prepared.paths.root.display(), "TrustBox serving HTTPS");
    Ok(RunningServer {
        addr,
        http_addr,
        public_url: cfg.public_url.clone(),
        admin_token: prepared.admin_token,
        paths: prepared.paths,
        shutdown,
        tasks,
    })
}

/// Serves `router` on `listener`, over TLS when `acceptor` is given, until `stop`.
async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let mut conn_stop = stop.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(tls)) => serve_connection(tls, service, peer, &mut conn_stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve_connection(tcp, service, peer, &mut conn_stop).await,
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection until it ends or `stop` changes (then gracefully).
async fn serve_connection<S>(
    io: S,
    service: TowerToHyperService<axum::Router>,
    peer: SocketAddr,
    stop: &mut watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(30))
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
