//! Server configuration: a TOML file, environment and flags layered over safe defaults.
//!
//! Unknown keys are errors, and [`ServerConfig::validate`] names the first bad option, so a
//! typo stops startup instead of silently running with a default.

use crate::ServerError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use trustbox_types::KeyAlgorithm;

/// Everything `trustbox up` needs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Data directory (KEK, SQLite database, CA certificates, TLS material).
    pub data_dir: PathBuf,
    /// HTTPS listen address.
    pub listen: SocketAddr,
    /// Plain-HTTP listen address for relying parties (CRLs, OCSP, CA certificates); `None`
    /// (an empty string in TOML or on the command line) turns it off.
    #[serde(deserialize_with = "optional_addr")]
    pub http_listen: Option<SocketAddr>,
    /// Extra SANs for the server's own TLS certificate (DNS names or IP addresses).
    pub san: Vec<String>,
    /// `postgres://...` to use PostgreSQL; SQLite in the data directory when unset. The
    /// server's statements run as the role `trustbox_app` (under row-level security).
    pub database: Option<String>,
    /// A separate PostgreSQL URL for migrations, as the tables' owner; `database` is used
    /// when unset (its user must then be allowed to create roles, e.g. a superuser).
    pub database_owner: Option<String>,
    /// The key-encryption key file; `DATA/kek.key` when unset. Keeping it outside the data
    /// directory keeps it out of the directory's backups (`/dev/fd/N` reads it from an
    /// inherited descriptor). The environment variable `TRUSTBOX_KEK` (64 hex digits)
    /// takes precedence over both.
    pub kek_file: Option<PathBuf>,
    /// Base URL stamped into certificates (CRL distribution point, AIA caIssuers and OCSP);
    /// defaults to `http://` + the plain-HTTP listener's address.
    pub public_url: Option<String>,
    /// Root CA key algorithm at first start.
    pub root_key_algorithm: KeyAlgorithm,
    /// Issuing CA key algorithm at first start.
    pub issuing_key_algorithm: KeyAlgorithm,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most issuances per store transaction (group commit).
    pub max_batch: usize,
    /// Most issuances waiting for commit; beyond it requests are shed with 503.
    pub queue: usize,
    /// CRL shards of each new issuer (1 = one plain CRL per issuer).
    pub crl_shards: u32,
    /// CRL validity (nextUpdate - thisUpdate) in hours; CRLs are regenerated at half-life
    /// and right after revocations.
    pub crl_validity_hours: u32,
    /// OCSP response validity in minutes; cached responses are re-signed at half-life.
    pub ocsp_validity_minutes: u32,
    /// Validity of delegated OCSP responder certificates in days (rotated with a third left).
    pub ocsp_responder_validity_days: u32,
    /// Most OCSP responses kept pre-signed in memory.
    pub ocsp_cache_entries: usize,
    /// Seconds a client has to send a request's headers, and again its body once the
    /// headers are in (a slow upload is answered 408 and the connection closed); also how
    /// long an idle keep-alive connection is kept. On every listener.
    pub request_timeout_secs: u64,
    /// Seconds a client has to finish the TLS handshake on the HTTPS listener.
    pub tls_handshake_timeout_secs: u64,
    /// Most connections open at once on each listener; beyond it new connections are
    /// closed as soon as they are accepted.
    pub max_connections: usize,
    /// Requests per second (and burst) one client address may send to the HTTPS listener;
    /// beyond it 429 with `Retry-After`. IPv6 clients are counted per /64.
    pub rate_limit_per_ip: u32,
    /// Requests per second (and burst) one API token may make; beyond it 429.
    pub rate_limit_per_token: u32,
    /// Requests per second (and burst) one client address may send to the plain-HTTP
    /// relying-party listener (OCSP, CRLs, CA certificates); high, as relying parties and
    /// OCSP load balancers send many.
    pub http_rate_limit_per_ip: u32,
    /// Serve `/metrics` on its own plain-HTTP listener at this address instead of on the
    /// HTTPS one; `None` (an empty string) keeps it on the HTTPS listener.
    #[serde(deserialize_with = "optional_addr")]
    pub metrics_listen: Option<SocketAddr>,
    /// DNS servers ACME challenge validation asks (dns-01 TXT records, and the addresses
    /// http-01 and tls-alpn-01 connect to); empty: the system resolver (so `/etc/hosts`
    /// applies).
    pub acme_resolver: Vec<SocketAddr>,
}

/// An address, or nothing for an empty string.
fn optional_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./trustbox-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            san: Vec::new(),
            database: None,
            database_owner: None,
            kek_file: None,
            public_url: None,
            root_key_algorithm: KeyAlgorithm::EcdsaP384,
            issuing_key_algorithm: KeyAlgorithm::EcdsaP256,
            max_body_bytes: 1024 * 1024,
            max_batch: 256,
            queue: 8192,
            crl_shards: 1,
            crl_validity_hours: 24,
            ocsp_validity_minutes: 240,
            ocsp_responder_validity_days: 30,
            ocsp_cache_entries: 200_000,
            request_timeout_secs: 30,
            tls_handshake_timeout_secs: 10,
            max_connections: 4096,
            rate_limit_per_ip: 10_000,
            rate_limit_per_token: 10_000,
            http_rate_limit_per_ip: 200_000,
            metrics_listen: None,
            acme_resolver: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// Reads a TOML file; unknown keys and bad values are errors naming the option.
    pub fn from_file(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        let cfg: Self = toml::from_str(&text)
            .map_err(|e| ServerError::Config(format!("{}: {}", path.display(), e.message())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the options' values; the error names the first bad option.
    pub fn validate(&self) -> Result<(), ServerError> {
        let bad =
            |opt: &str, why: String| Err(ServerError::Config(format!("option `{opt}`: {why}")));
        if let Some(db) = &self.database {
            if !(db.starts_with("postgres://") || db.starts_with("postgresql://")) {
                return bad(
                    "database",
                    "must be a postgres:// URL (SQLite is the default when unset)".into(),
                );
            }
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.contains(char::is_whitespace)
            {
                return bad("public_url", format!("{url:?} is not an http(s) URL"));
            }
        }
        for s in &self.san {
            if s.parse::<std::net::IpAddr>().is_err() && trustbox_x509::DnsName::parse(s).is_err() {
                return bad(
                    "san",
                    format!("{s:?} is neither a DNS name nor an IP address"),
                );
            }
        }
        for (name, alg) in [
            ("root_key_algorithm", self.root_key_algorithm),
            ("issuing_key_algorithm", self.issuing_key_algorithm),
        ] {
            if !alg.allowed_for_ca() {
                return bad(name, format!("{alg} may not protect a CA key"));
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return bad("max_body_bytes", "must be between 1 KiB and 64 MiB".into());
        }
        if self.max_batch == 0 || self.max_batch > 10_000 {
            return bad("max_batch", "must be between 1 and 10000".into());
        }
        if self.queue == 0 {
            return bad("queue", "must be at least 1".into());
        }
        if !(1..=1024).contains(&self.crl_shards) {
            return bad("crl_shards", "must be between 1 and 1024".into());
        }
        if !(1..=24 * 366).contains(&self.crl_validity_hours) {
            return bad("crl_validity_hours", "must be between 1 and 8784".into());
        }
        if !(2..=7 * 24 * 60).contains(&self.ocsp_validity_minutes) {
            return bad(
                "ocsp_validity_minutes",
                "must be between 2 and 10080 (one week)".into(),
            );
        }
        if !(1..=366).contains(&self.ocsp_responder_validity_days) {
            return bad(
                "ocsp_responder_validity_days",
                "must be between 1 and 366".into(),
            );
        }
        if self.ocsp_cache_entries == 0 {
            return bad("ocsp_cache_entries", "must be at least 1".into());
        }
        if self
            .http_listen
            .is_some_and(|h| h == self.listen && h.port() != 0)
        {
            return bad(
                "http_listen",
                "must differ from `listen` (or be empty to turn it off)".into(),
            );
        }
        if !(1..=3600).contains(&self.request_timeout_secs) {
            return bad("request_timeout_secs", "must be between 1 and 3600".into());
        }
        if !(1..=600).contains(&self.tls_handshake_timeout_secs) {
            return bad(
                "tls_handshake_timeout_secs",
                "must be between 1 and 600".into(),
            );
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return bad("max_connections", "must be between 1 and 1000000".into());
        }
        for (name, rate) in [
            ("rate_limit_per_ip", self.rate_limit_per_ip),
            ("rate_limit_per_token", self.rate_limit_per_token),
            ("http_rate_limit_per_ip", self.http_rate_limit_per_ip),
        ] {
            if rate == 0 {
                return bad(name, "must be at least 1 request per second".into());
            }
        }
        if let Some(m) = self.metrics_listen.filter(|m| m.port() != 0) {
            if m == self.listen || Some(m) == self.http_listen {
                return bad(
                    "metrics_listen",
                    "must differ from `listen` and `http_listen` (or be empty)".into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ServerConfig::default()
            .validate()
            .expect("defaults validate");
    }

    #[test]
    fn unknown_and_bad_options_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "listn = \"127.0.0.1:1\"\n").expect("write");
        let e = ServerConfig::from_file(&p)
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("listn"), "{e}");
        std::fs::write(&p, "database = \"mysql://x\"\n").expect("write");
        let e = ServerConfig::from_file(&p).expect_err("bad db").to_string();
        assert!(e.contains("option `database`"), "{e}");
        std::fs::write(&p, "root_key_algorithm = \"rsa-2048\"\n").expect("write");
        let e = ServerConfig::from_file(&p).expect_err("weak").to_string();
        assert!(e.contains("root_key_algorithm"), "{e}");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:9443\"\nsan = [\"pki.example.com\"]\n",
        )
        .expect("write");
        let c = ServerConfig::from_file(&p).expect("valid");
        assert_eq!(c.listen.port(), 9443);
        std::fs::write(&p, "http_listen = \"\"\ncrl_shards = 4\n").expect("write");
        let c = ServerConfig::from_file(&p).expect("valid");
        assert_eq!((c.http_listen, c.crl_shards), (None, 4));
        std::fs::write(&p, "crl_shards = 0\n").expect("write");
        let e = ServerConfig::from_file(&p)
            .expect_err("zero shards")
            .to_string();
        assert!(e.contains("option `crl_shards`"), "{e}");
        std::fs::write(&p, "http_listen = \"nope\"\n").expect("write");
        let e = ServerConfig::from_file(&p)
            .expect_err("bad address")
            .to_string();
        assert!(
            e.contains("http_listen") || e.contains("invalid socket address"),
            "{e}"
        );
    }

    #[test]
    fn limits_parse_and_nonsense_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "request_timeout_secs = 5\ntls_handshake_timeout_secs = 3\nmax_connections = 64\n\
             rate_limit_per_ip = 50\nrate_limit_per_token = 20\nhttp_rate_limit_per_ip = 900\n\
             metrics_listen = \"127.0.0.1:9100\"\n",
        )
        .expect("write");
        let c = ServerConfig::from_file(&p).expect("valid");
        assert_eq!(
            (
                c.request_timeout_secs,
                c.tls_handshake_timeout_secs,
                c.max_connections,
                c.rate_limit_per_ip,
                c.rate_limit_per_token,
                c.http_rate_limit_per_ip,
            ),
            (5, 3, 64, 50, 20, 900)
        );
        assert_eq!(c.metrics_listen, "127.0.0.1:9100".parse().ok());
        std::fs::write(&p, "metrics_listen = \"\"\n").expect("write");
        assert_eq!(
            ServerConfig::from_file(&p).expect("valid").metrics_listen,
            None
        );
        for (text, option) in [
            ("request_timeout_secs = 0", "request_timeout_secs"),
            (
                "tls_handshake_timeout_secs = 0",
                "tls_handshake_timeout_secs",
            ),
            ("max_connections = 0", "max_connections"),
            ("rate_limit_per_ip = 0", "rate_limit_per_ip"),
            ("rate_limit_per_token = 0", "rate_limit_per_token"),
            ("http_rate_limit_per_ip = 0", "http_rate_limit_per_ip"),
            ("metrics_listen = \"127.0.0.1:8443\"", "metrics_listen"),
        ] {
            std::fs::write(&p, format!("{text}\n")).expect("write");
            let e = ServerConfig::from_file(&p).expect_err(text).to_string();
            assert!(e.contains(&format!("option `{option}`")), "{text}: {e}");
        }
        std::fs::write(&p, "rate_limit = 5\n").expect("write");
        let e = ServerConfig::from_file(&p)
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("rate_limit"), "{e}");
    }
}
