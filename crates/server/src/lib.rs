//! The only place that mounts routers, TLS listeners and metrics.
//!
//! [`start`] prepares the data directory (bootstrapping on first start), binds the HTTPS
//! listener and serves the REST API; everything it serves calls the issuance seam in
//! `trustbox-authority`. Handlers are thin: parse, call the seam, map the result. Every
//! listener caps its connections, bounds how long a request may take to arrive and limits
//! requests per client address (`listener`, `limits`).

mod acme;
mod api;
mod config;
mod limits;
mod listener;
mod metrics_setup;
mod ocsp;
mod openapi;
mod public;
mod setup;

pub use config::ServerConfig;
pub use setup::{open_bulk_store, open_services, DataPaths};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use trustbox_types::TokenId;

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
pub struct RunningServer {
    /// The HTTPS address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The plain-HTTP address for relying parties, if that listener is on.
    pub http_addr: Option<SocketAddr>,
    /// The plain-HTTP address serving `/metrics`, if it has a listener of its own.
    pub metrics_addr: Option<SocketAddr>,
    /// The base URL stamped into certificates (CRL, OCSP, caIssuers), if any.
    pub public_url: Option<String>,
    /// The bootstrap admin token, only on the start that created it.
    pub admin_token: Option<String>,
    /// Data directory layout.
    pub paths: DataPaths,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .field("http_addr", &self.http_addr)
            .field("metrics_addr", &self.metrics_addr)
            .field("public_url", &self.public_url)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
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
/// endpoints on `cfg.http_listen`, `/metrics` on `cfg.metrics_listen` when set, and the
/// revocation worker.
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
    let metrics_listener = match cfg.metrics_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    if cfg.public_url.is_none() {
        cfg.public_url = http.as_ref().map(|(_, a)| format!("http://{a}"));
    }
    let prepared = setup::prepare(&cfg).await?;
    let services = prepared.services;
    let token_limits = Arc::new(limits::KeyedLimiter::per_second(cfg.rate_limit_per_token));
    // Each adapter gets the services it calls: the REST API four of them, the relying-party
    // routes revocation, the OCSP adapter its source.
    let ocsp = ocsp::OcspService::start(services.ocsp.clone());
    let validator =
        trustbox_acme_validation::Validator::new(trustbox_acme_validation::ValidatorConfig {
            resolver: if cfg.acme_resolver.is_empty() {
                trustbox_acme_validation::ResolverConfig::System
            } else {
                trustbox_acme_validation::ResolverConfig::Nameservers(cfg.acme_resolver.clone())
            },
            ..trustbox_acme_validation::ValidatorConfig::default()
        })
        .map_err(|e| ServerError::Config(format!("option `acme_resolver`: {e}")))?;
    services.administration.register_job_handler(
        trustbox_authority::ACME_VALIDATE,
        Arc::new(acme::ValidateChallenge::new(validator)),
    );
    let app = api::App {
        issuance: services.issuance.clone(),
        revocation: services.revocation.clone(),
        administration: services.administration.clone(),
        authentication: services.authentication.clone(),
        ocsp: ocsp.clone(),
        acme: Arc::new(
            acme::AcmeAdapter::new(services.acme.clone(), prepared.acme_nonce_secret.as_slice())
                .map_err(|e| ServerError::Bootstrap(e.to_string()))?,
        ),
        metrics,
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        token_limits: token_limits.clone(),
    };
    let request_timeout = Duration::from_secs(cfg.request_timeout_secs);
    let api_per_ip = Arc::new(limits::KeyedLimiter::per_second(cfg.rate_limit_per_ip));
    let router = api::router(app.clone(), cfg.max_body_bytes, metrics_listener.is_none());
    let acceptor = TlsAcceptor::from(Arc::new(prepared.tls));
    let (shutdown, rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(listener::serve(
        listener::Listener {
            name: "api",
            tcp: listener,
            tls: Some((
                acceptor,
                Duration::from_secs(cfg.tls_handshake_timeout_secs),
            )),
            router,
            max_connections: cfg.max_connections,
            per_ip: Some(api_per_ip.clone()),
            request_timeout,
        },
        rx.clone(),
    ))];
    let http_per_ip = Arc::new(limits::KeyedLimiter::per_second(cfg.http_rate_limit_per_ip));
    let http_addr = match http {
        Some((tcp, http_addr)) => {
            tasks.push(tokio::spawn(listener::serve(
                listener::Listener {
                    name: "http",
                    tcp,
                    tls: None,
                    router: public::router(public::Public {
                        revocation: services.revocation.clone(),
                        ocsp,
                    }),
                    max_connections: cfg.max_connections,
                    per_ip: Some(http_per_ip.clone()),
                    request_timeout,
                },
                rx.clone(),
            )));
            tracing::info!(addr = %http_addr, "serving CRLs, OCSP and CA certificates over HTTP");
            Some(http_addr)
        }
        None => None,
    };
    let metrics_addr = match metrics_listener {
        Some((tcp, metrics_addr)) => {
            tasks.push(tokio::spawn(listener::serve(
                listener::Listener {
                    name: "metrics",
                    tcp,
                    tls: None,
                    router: metrics_setup::router(app),
                    max_connections: cfg.max_connections,
                    // Scrapers are few and trusted to the network they reach this on.
                    per_ip: None,
                    request_timeout,
                },
                rx.clone(),
            )));
            tracing::info!(addr = %metrics_addr, "serving /metrics over HTTP");
            Some(metrics_addr)
        }
        None => None,
    };
    tasks.push(tokio::spawn(forget_idle_clients(
        vec![api_per_ip, http_per_ip],
        token_limits,
        rx.clone(),
    )));
    tasks.push(tokio::spawn(services.run_background_workers(rx)));
    tracing::info!(%addr, data_dir = %prepared.paths.root.display(), "TrustBox serving HTTPS");
    Ok(RunningServer {
        addr,
        http_addr,
        metrics_addr,
        public_url: cfg.public_url.clone(),
        admin_token: prepared.admin_token,
        paths: prepared.paths,
        shutdown,
        tasks,
    })
}

/// Every minute, drops rate-limit state of clients and tokens idle long enough to be back
/// at a full burst, so the tables hold only recent clients; ends on `stop`.
async fn forget_idle_clients(
    per_ip: Vec<Arc<limits::KeyedLimiter<IpAddr>>>,
    per_token: Arc<limits::KeyedLimiter<TokenId>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                for l in &per_ip {
                    l.forget_idle();
                }
                per_token.forget_idle();
            }
        }
    }
}
