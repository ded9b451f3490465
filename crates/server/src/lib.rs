//! The only place that mounts routers, TLS listeners and metrics.
//!
//! [`start`] prepares the data directory (bootstrapping on first start), binds the HTTPS
//! listener and serves the REST API; everything it serves calls the issuance seam in
//! `trustbox-authority`. Handlers are thin: parse, call the seam, map the result.

mod api;
mod config;
mod metrics_setup;
mod openapi;
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
    /// The bootstrap admin token, only on the start that created it.
    pub admin_token: Option<String>,
    /// Data directory layout.
    pub paths: DataPaths,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
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

/// Prepares the data directory and starts serving HTTPS on `cfg.listen`.
pub async fn start(cfg: ServerConfig) -> Result<RunningServer, ServerError> {
    cfg.validate()?;
    let metrics = metrics_setup::handle();
    let prepared = setup::prepare(&cfg).await?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| ServerError::Io(format!("bind {}: {e}", cfg.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Io(e.to_string()))?;
    let app = api::App {
        authority: prepared.authority.clone(),
        metrics,
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
    };
    let router = api::router(app, cfg.max_body_bytes);
    let acceptor = TlsAcceptor::from(Arc::new(prepared.tls));
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, acceptor, router, rx));
    tracing::info!(%addr, data_dir = %prepared.paths.root.display(), "TrustBox serving HTTPS");
    Ok(RunningServer {
        addr,
        admin_token: prepared.admin_token,
        paths: prepared.paths,
        shutdown,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
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
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .header_read_timeout(Duration::from_secs(30))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = conn_stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}
