//! First-start and every-start preparation: data directory, KEK, store, seam, CA
//! hierarchy, and the server's own TLS certificate (issued through the seam).

use crate::{ServerConfig, ServerError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use trustbox_authority::{
    Authentication, Authority, AuthorityConfig, BootstrapOptions, Issuance, IssuanceRequest,
    Services,
};
use trustbox_crypto::{Kek, SealedKeyStore};
use trustbox_store::Store;
use trustbox_types::{SourceProtocol, SystemClock, TenantId};

/// Paths inside the data directory.
#[derive(Clone, Debug)]
pub struct DataPaths {
    /// The directory itself.
    pub root: PathBuf,
    /// Key-encryption key (0600).
    pub kek: PathBuf,
    /// SQLite database.
    pub database: PathBuf,
    /// The default tenant's root certificate, for distribution.
    pub root_pem: PathBuf,
    /// The server's TLS private key (0600).
    pub tls_key: PathBuf,
    /// The server's TLS certificate chain.
    pub tls_chain: PathBuf,
}

impl DataPaths {
    /// The layout under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            kek: root.join("kek.key"),
            database: root.join("trustbox.db"),
            root_pem: root.join("ca").join("root.pem"),
            tls_key: root.join("tls").join("server.key"),
            tls_chain: root.join("tls").join("server.pem"),
        }
    }
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> ServerError + '_ {
    move |e| ServerError::Io(format!("{}: {e}", what.display()))
}

fn create_private_dir(path: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io(path))?;
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Opens the data directory, the store (migrated) and the seam, without bootstrapping, and
/// splits the seam into its services: the only place a server, a host tool or a test gets
/// them from a configuration.
pub async fn open_services(cfg: &ServerConfig) -> Result<Services, ServerError> {
    cfg.validate()?;
    let paths = DataPaths::new(&cfg.data_dir);
    create_private_dir(&paths.root)?;
    let kek = load_kek(cfg, &paths)?;
    let software = SealedKeyStore::new(&kek).map_err(|e| ServerError::Custody(e.to_string()))?;
    // Every key is opened on the backend its record names; new keys go to the software
    // backend unless an issuer names another.
    let keys =
        trustbox_crypto::RoutingKeyStore::new(trustbox_crypto::SOFTWARE, vec![Arc::new(software)])
            .map_err(|e| ServerError::Custody(e.to_string()))?;
    let store = open_store(cfg, &paths).await?;
    Ok(Services::new(Authority::new(
        store,
        Arc::new(keys),
        Arc::new(SystemClock),
        AuthorityConfig {
            public_url: cfg.public_url.clone(),
            max_batch: cfg.max_batch,
            queue: cfg.queue,
            crl_shards: cfg.crl_shards,
            crl_validity_s: i64::from(cfg.crl_validity_hours) * 3600,
            ocsp_validity_s: i64::from(cfg.ocsp_validity_minutes) * 60,
            ocsp_responder_validity_s: i64::from(cfg.ocsp_responder_validity_days) * 86400,
            ocsp_cache_entries: cfg.ocsp_cache_entries,
        },
    )))
}

/// The key-encryption key: `TRUSTBOX_KEK`, the configured file, or the data directory's.
fn load_kek(cfg: &ServerConfig, paths: &DataPaths) -> Result<Kek, ServerError> {
    match (std::env::var("TRUSTBOX_KEK"), &cfg.kek_file) {
        (Ok(hex), _) => Kek::from_hex(&hex, "TRUSTBOX_KEK"),
        (Err(_), Some(path)) => Kek::load_or_create(path),
        (Err(_), None) => Kek::load_or_create(&paths.kek),
    }
    .map_err(|e| ServerError::Custody(e.to_string()))
}

/// Opens and migrates the configured store. The seam gets it in [`open_services`]; host
/// tools that load bulk data past the seam (the CRL benchmark) call this directly. No
/// request path does.
pub async fn open_bulk_store(cfg: &ServerConfig) -> Result<Arc<dyn Store>, ServerError> {
    cfg.validate()?;
    let paths = DataPaths::new(&cfg.data_dir);
    create_private_dir(&paths.root)?;
    open_store(cfg, &paths).await
}

async fn open_store(cfg: &ServerConfig, paths: &DataPaths) -> Result<Arc<dyn Store>, ServerError> {
    let store: Arc<dyn Store> = match &cfg.database {
        Some(url) => Arc::new(
            trustbox_store_postgres::PostgresStore::connect_with_owner(
                url,
                cfg.database_owner.as_deref(),
            )
            .await
            .map_err(|e| ServerError::Store(e.to_string()))?,
        ),
        None => Arc::new(
            trustbox_store_sqlite::SqliteStore::open(&paths.database)
                .await
                .map_err(|e| ServerError::Store(e.to_string()))?,
        ),
    };
    store
        .migrate()
        .await
        .map_err(|e| ServerError::Store(e.to_string()))?;
    Ok(store)
}

/// A migrated SQLite store over which tests open seams, one per simulated replica: server
/// tests get the store from here, so no request-path module names it.
#[cfg(test)]
pub(crate) struct TestStore(Arc<dyn Store>);

#[cfg(test)]
impl TestStore {
    /// Opens and migrates the SQLite store at `path`.
    pub(crate) async fn open(path: &Path) -> Self {
        let store = trustbox_store_sqlite::SqliteStore::open(path)
            .await
            .expect("open the test store");
        store.migrate().await.expect("migrate the test store");
        Self(Arc::new(store))
    }

    /// One replica's services over the store.
    pub(crate) fn services(
        &self,
        keys: Arc<dyn trustbox_crypto::KeyStore>,
        clock: Arc<dyn trustbox_types::Clock>,
        config: AuthorityConfig,
    ) -> Services {
        Services::new(Authority::new(self.0.clone(), keys, clock, config))
    }
}

/// What a prepared server holds before it binds.
pub(crate) struct Prepared {
    pub(crate) services: Services,
    pub(crate) tls: rustls::ServerConfig,
    pub(crate) admin_token: Option<String>,
    pub(crate) paths: DataPaths,
    /// The ACME nonce key, derived from the KEK (the same on every replica).
    pub(crate) acme_nonce_secret: zeroize::Zeroizing<[u8; 32]>,
}

/// Bootstraps (idempotently) and prepares TLS.
pub(crate) async fn prepare(cfg: &ServerConfig) -> Result<Prepared, ServerError> {
    let services = open_services(cfg).await?;
    let paths = DataPaths::new(&cfg.data_dir);
    let boot = services
        .administration
        .bootstrap(&BootstrapOptions {
            root_algorithm: cfg.root_key_algorithm,
            issuing_algorithm: cfg.issuing_key_algorithm,
        })
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    let ca_dir = paths.root.join("ca");
    std::fs::create_dir_all(&ca_dir).map_err(io(&ca_dir))?;
    std::fs::write(&paths.root_pem, boot.root_pem.as_bytes()).map_err(io(&paths.root_pem))?;
    ensure_server_certificate(&services.issuance, boot.tenant.id, cfg, &paths).await?;
    let tls = tls_config(&paths)?;
    let kek = load_kek(cfg, &paths)?;
    let acme_nonce_secret = kek.derive("acme-nonce");
    services
        .acme
        .start(*kek.derive("acme-eab"))
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    Ok(Prepared {
        services,
        tls,
        admin_token: boot.admin_token,
        paths,
        acme_nonce_secret,
    })
}

/// The SANs the server certificate must carry.
fn wanted_sans(cfg: &ServerConfig) -> Vec<String> {
    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    sans.extend(cfg.san.iter().cloned());
    sans.sort();
    sans.dedup();
    sans
}

/// Whether the existing chain is still good: parses, 7+ days left, covers the SANs.
fn existing_is_usable(paths: &DataPaths, sans: &[String]) -> bool {
    let Ok(pem) = std::fs::read_to_string(&paths.tls_chain) else {
        return false;
    };
    if !paths.tls_key.exists() {
        return false;
    }
    let Ok(der) = trustbox_x509::pem::decode_one(&pem, "CERTIFICATE") else {
        return false;
    };
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(&der) else {
        return false;
    };
    let left =
        cert.validity().not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    if left < 7 * 86400 {
        return false;
    }
    let have: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 4 => {
                    Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
                }
                x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    Some(std::net::Ipv6Addr::from(a).to_string())
                }
                _ => None,
            })
            .collect(),
        _ => return false,
    };
    sans.iter().all(|s| have.contains(s))
}

async fn ensure_server_certificate(
    issuance: &Issuance,
    tenant: TenantId,
    cfg: &ServerConfig,
    paths: &DataPaths,
) -> Result<(), ServerError> {
    let sans = wanted_sans(cfg);
    if existing_is_usable(paths, &sans) {
        return Ok(());
    }
    let tls_dir = paths.root.join("tls");
    create_private_dir(&tls_dir)?;
    // The server's own key: generated here because the server is its own subscriber.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let mut params =
        rcgen::CertificateParams::new(sans).map_err(|e| ServerError::Tls(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let csr = params
        .serialize_request(&key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let issued = issuance
        .issue(IssuanceRequest {
            profile: Some("tls-server".into()),
            purpose: Some("TrustBox server TLS".into()),
            validity: Some(std::time::Duration::from_secs(90 * 86400)),
            ..IssuanceRequest::for_csr(
                Authentication::system_principal(tenant),
                csr.der().to_vec(),
                SourceProtocol::Bootstrap,
            )
        })
        .await
        .and_then(trustbox_authority::IssuanceOutcome::into_issued)
        .map_err(|e| ServerError::Bootstrap(format!("server certificate: {e}")))?;
    write_private(&paths.tls_key, key.serialize_pem().as_bytes())?;
    let chain = format!("{}{}", issued.certificate_pem, issued.chain_pem);
    std::fs::write(&paths.tls_chain, chain.as_bytes()).map_err(io(&paths.tls_chain))?;
    Ok(())
}

fn tls_config(paths: &DataPaths) -> Result<rustls::ServerConfig, ServerError> {
    let tls = |e: &dyn std::fmt::Display| ServerError::Tls(e.to_string());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.tls_chain)
        .map_err(|e| tls(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_file(&paths.tls_key).map_err(|e| tls(&e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls(&e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| tls(&e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}
