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
    /// Extra SANs for the server's own TLS certificate (DNS names or IP addresses).
    pub san: Vec<String>,
    /// `postgres://...` to use PostgreSQL; SQLite in the data directory when unset.
    pub database: Option<String>,
    /// Base URL stamped into certificates (CRL distribution point, AIA caIssuers).
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./trustbox-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            san: Vec::new(),
            database: None,
            public_url: None,
            root_key_algorithm: KeyAlgorithm::EcdsaP384,
            issuing_key_algorithm: KeyAlgorithm::EcdsaP256,
            max_body_bytes: 1024 * 1024,
            max_batch: 256,
            queue: 8192,
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
    }
}
