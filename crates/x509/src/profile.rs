//! Profiles: versioned rules for what may be issued, applied to a verified CSR.

use crate::build::LeafPlan;
use crate::csr::ParsedCsr;
use crate::names::SubjectAltName;
use crate::X509Error;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};
use trustbox_types::KeyAlgorithm;

/// Rules for dNSName SANs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRules {
    /// Allowed names: `*` (any), `*.example.com` (any name below example.com), or an exact
    /// name. Empty: dNSName SANs are forbidden.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// Whether wildcard names (`*.example.com`) may be requested.
    #[serde(default)]
    pub allow_wildcards: bool,
}

/// Rules for iPAddress SANs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpRules {
    /// Allowed ranges in CIDR notation (`10.0.0.0/8`, `::/0`). Empty: forbidden.
    #[serde(default)]
    pub allowed: Vec<String>,
}

/// Rules for URI SANs (SPIFFE IDs among them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UriRules {
    /// Allowed prefixes (`spiffe://example.org/`). Empty: forbidden.
    #[serde(default)]
    pub allowed_prefixes: Vec<String>,
}

/// Rules for rfc822Name SANs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRules {
    /// Allowed mail domains (`example.com`), or `*` for any. Empty: forbidden.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
}

/// All SAN rules of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanRules {
    /// dNSName rules.
    pub dns: DnsRules,
    /// iPAddress rules.
    pub ip: IpRules,
    /// URI rules.
    pub uri: UriRules,
    /// rfc822Name rules.
    pub email: EmailRules,
    /// At least one SAN is required.
    #[serde(default = "yes")]
    pub require_san: bool,
    /// The most SANs one certificate may carry.
    #[serde(default = "default_max_sans")]
    pub max_sans: usize,
}

fn yes() -> bool {
    true
}

fn default_max_sans() -> usize {
    100
}

/// A profile: what a certificate issued under it may contain.
///
/// CSR fields other than the public key, the commonName (when `copy_common_name`) and the
/// SANs are ignored: extensions requested in the CSR never reach the certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name, unique per tenant (`tls-server`).
    pub name: String,
    /// A line for humans.
    #[serde(default)]
    pub description: String,
    /// Subject key algorithms accepted.
    pub key_algorithms: Vec<KeyAlgorithm>,
    /// The longest validity that may be requested, in days.
    pub max_validity_days: u32,
    /// The validity used when none is requested, in days.
    pub default_validity_days: u32,
    /// Copy the CSR's commonName into the subject (it must also be a permitted SAN value).
    #[serde(default = "yes")]
    pub copy_common_name: bool,
    /// SAN rules.
    pub san: SanRules,
    /// keyUsage names (`digitalSignature`, `keyEncipherment`, ...). keyEncipherment is
    /// dropped for non-RSA keys, where it is meaningless.
    pub key_usage: Vec<String>,
    /// extendedKeyUsage names (`serverAuth`, `clientAuth`, `codeSigning`,
    /// `emailProtection`, `timeStamping`) or dotted OIDs; never `OCSPSigning` or
    /// `anyExtendedKeyUsage`.
    pub extended_key_usage: Vec<String>,
    /// basicConstraints cA. Always false: profiles describe leaves, and `true` is refused
    /// (CA certificates are made only through the issuer API, under its constraints).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ca: bool,
}

const KU_NAMES: [&str; 6] = [
    "digitalSignature",
    "contentCommitment",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "nonRepudiation",
];
const EKU_NAMES: [&str; 5] = [
    "serverAuth",
    "clientAuth",
    "codeSigning",
    "emailProtection",
    "timeStamping",
];

/// The shortest lifetime a certificate may be issued for (short-lived identities are
/// legal; below a minute, clock skew alone would make them unusable).
pub const MIN_VALIDITY: Duration = Duration::seconds(60);

/// A lifetime for messages: whole days when it is some, otherwise seconds.
fn describe(d: Duration) -> String {
    if d.whole_seconds() % 86400 == 0 {
        format!("{} days", d.whole_days())
    } else {
        format!("{}s", d.whole_seconds())
    }
}

/// Extended key usages a leaf profile may never carry, by name and OID.
const FORBIDDEN_EKUS: [(&str, &str); 2] = [
    ("OCSPSigning", "1.3.6.1.5.5.7.3.9"),
    ("anyExtendedKeyUsage", "2.5.29.37.0"),
];

impl Profile {
    /// Checks the profile's own consistency; a profile that fails is never stored.
    pub fn validate(&self) -> Result<(), X509Error> {
        let bad = |m: String| Err(X509Error::InvalidProfile(m));
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("name must be 1-64 characters of letters, digits, '-' and '_'".into());
        }
        if self.key_algorithms.is_empty() {
            return bad("key_algorithms must name at least one algorithm".into());
        }
        if self.max_validity_days == 0 || self.max_validity_days > 3650 {
            return bad("max_validity_days must be between 1 and 3650".into());
        }
        if self.default_validity_days == 0 || self.default_validity_days > self.max_validity_days {
            return bad("default_validity_days must be between 1 and max_validity_days".into());
        }
        if self.ca {
            return Err(X509Error::ForbiddenInLeafProfile(
                "basicConstraints CA:TRUE".into(),
            ));
        }
        for ku in &self.key_usage {
            if ku == "keyCertSign" || ku == "cRLSign" {
                return Err(X509Error::ForbiddenInLeafProfile(format!("key_usage {ku}")));
            }
            if !KU_NAMES.contains(&ku.as_str()) {
                return bad(format!(
                    "key_usage {ku:?} is not allowed in leaf profiles (allowed: {})",
                    KU_NAMES.join(", ")
                ));
            }
        }
        if self.key_usage.is_empty() {
            return bad("key_usage must not be empty".into());
        }
        for eku in &self.extended_key_usage {
            // A leaf with OCSPSigning signed by the CA could answer OCSP for it; any EKU
            // includes that. Refused by name and by OID.
            let oid =
                parse_oid(eku).map(|o| o.iter().map(u64::to_string).collect::<Vec<_>>().join("."));
            if let Some(what) = FORBIDDEN_EKUS
                .iter()
                .find(|(name, dotted)| eku == name || oid.as_deref() == Some(dotted))
            {
                return Err(X509Error::ForbiddenInLeafProfile(format!(
                    "extended_key_usage {} ({})",
                    what.0, what.1
                )));
            }
            if !EKU_NAMES.contains(&eku.as_str()) && parse_oid(eku).is_none() {
                return bad(format!(
                    "extended_key_usage {eku:?} is neither a known name nor a dotted OID"
                ));
            }
        }
        for p in &self.san.dns.allowed {
            let body = p.strip_prefix("*.").unwrap_or(p);
            if p != "*" && crate::names::DnsName::parse(body).is_err() {
                return bad(format!(
                    "san.dns.allowed pattern {p:?} is not '*', '*.domain' or a DNS name"
                ));
            }
        }
        for r in &self.san.ip.allowed {
            if Cidr::parse(r).is_none() {
                return bad(format!("san.ip.allowed range {r:?} is not CIDR notation"));
            }
        }
        if self.san.max_sans == 0 {
            return bad("san.max_sans must be at least 1".into());
        }
        Ok(())
    }

    /// Applies the profile to a verified CSR, producing the plan for the certificate or the
    /// first rule the request breaks.
    ///
    /// `validity` is the requested lifetime (the profile's default when `None`): at least
    /// [`MIN_VALIDITY`], at most the profile's maximum; `now` is the issuance time. The
    /// plan's notAfter is not yet clamped to the issuer's.
    pub fn apply(
        &self,
        csr: &ParsedCsr,
        validity: Option<std::time::Duration>,
        now: OffsetDateTime,
    ) -> Result<LeafPlan, X509Error> {
        let deny = |detail: String| X509Error::ProfileViolation {
            profile: self.name.clone(),
            detail,
        };
        if !self.key_algorithms.contains(&csr.key_algorithm) {
            let allowed: Vec<&str> = self.key_algorithms.iter().map(|a| a.as_str()).collect();
            return Err(deny(format!(
                "key algorithm {} is not allowed (allowed: {})",
                csr.key_algorithm,
                allowed.join(", ")
            )));
        }
        let lifetime = match validity {
            Some(v) => Duration::try_from(v).unwrap_or(Duration::MAX),
            None => Duration::days(i64::from(self.default_validity_days)),
        };
        if lifetime < MIN_VALIDITY {
            return Err(deny(format!(
                "a validity of {}s is below the minimum of {}s",
                lifetime.whole_seconds(),
                MIN_VALIDITY.whole_seconds()
            )));
        }
        if lifetime > Duration::days(i64::from(self.max_validity_days)) {
            return Err(deny(format!(
                "requested validity of {} exceeds the maximum of {} days",
                describe(lifetime),
                self.max_validity_days
            )));
        }

        let mut sans = csr.sans.clone();
        let mut common_name = None;
        if self.copy_common_name {
            if let Some(cn) = &csr.common_name {
                // A commonName must also be a SAN (RFC 6125 §6.4.4 relying parties ignore it
                // when SANs exist); a DNS-shaped CN missing from the SANs is added.
                if let Ok(name) = crate::names::DnsName::parse(cn) {
                    let san = SubjectAltName::Dns(name);
                    if !sans.contains(&san) {
                        sans.push(san);
                    }
                } else if let Ok(ip) = cn.parse::<IpAddr>() {
                    let san = SubjectAltName::Ip(ip);
                    if !sans.contains(&san) {
                        sans.push(san);
                    }
                } else if !sans.iter().any(|s| s.value() == *cn) {
                    return Err(deny(format!(
                        "commonName {cn:?} is neither a DNS name nor an IP address nor one of the SANs"
                    )));
                }
                if cn.len() > 64 {
                    return Err(deny("commonName is longer than 64 characters".into()));
                }
                common_name = Some(cn.clone());
            }
        }
        if sans.is_empty() && self.san.require_san {
            return Err(deny(
                "at least one subject alternative name is required".into(),
            ));
        }
        if sans.len() > self.san.max_sans {
            return Err(deny(format!(
                "{} SANs requested; at most {} allowed",
                sans.len(),
                self.san.max_sans
            )));
        }
        for san in &sans {
            self.check_san(san).map_err(deny)?;
        }
        sans.sort();
        sans.dedup();

        let rsa = csr.key_algorithm.rsa_bits().is_some();
        let key_usage = self
            .key_usage
            .iter()
            .filter(|k| rsa || k.as_str() != "keyEncipherment")
            .cloned()
            .collect();
        let not_before = now - Duration::minutes(1);
        Ok(LeafPlan {
            common_name,
            sans,
            not_before,
            not_after: now + lifetime,
            key_usage,
            extended_key_usage: self.extended_key_usage.clone(),
        })
    }

    fn check_san(&self, san: &SubjectAltName) -> Result<(), String> {
        match san {
            SubjectAltName::Dns(name) => {
                if name.is_wildcard() && !self.san.dns.allow_wildcards {
                    return Err(format!("wildcard name {name} is not allowed"));
                }
                if self
                    .san
                    .dns
                    .allowed
                    .iter()
                    .any(|p| dns_matches(p, name.as_str()))
                {
                    Ok(())
                } else {
                    Err(format!("DNS name {name} is not permitted"))
                }
            }
            SubjectAltName::Ip(ip) => {
                if self
                    .san
                    .ip
                    .allowed
                    .iter()
                    .filter_map(|r| Cidr::parse(r))
                    .any(|c| c.contains(*ip))
                {
                    Ok(())
                } else {
                    Err(format!("IP address {ip} is not permitted"))
                }
            }
            SubjectAltName::Uri(uri) => {
                if self
                    .san
                    .uri
                    .allowed_prefixes
                    .iter()
                    .any(|p| uri.starts_with(p.as_str()))
                {
                    Ok(())
                } else {
                    Err(format!("URI {uri} is not permitted"))
                }
            }
            SubjectAltName::Email(mail) => {
                let domain = mail.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
                if self
                    .san
                    .email
                    .allowed_domains
                    .iter()
                    .any(|d| d == "*" || d.eq_ignore_ascii_case(domain))
                {
                    Ok(())
                } else {
                    Err(format!("e-mail address {mail} is not permitted"))
                }
            }
        }
    }
}

/// Whether `name` (lower-case) matches the pattern `*`, `*.suffix` or an exact name.
fn dns_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        // `*.example.com` permits any name strictly below example.com, wildcards included.
        return name.len() > suffix.len() + 1
            && name.ends_with(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.';
    }
    pattern == name
}

fn parse_oid(s: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = s.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| p.len() >= 2)
}

/// An IP range in CIDR notation.
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = s.split_once('/')?;
        let net: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(i)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), self.prefix),
            _ => return false,
        };
        if bits == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - u32::from(bits));
        a & mask == b & mask
    }
}

pub(crate) fn parse_eku_oid(s: &str) -> Option<Vec<u64>> {
    parse_oid(s)
}

/// The built-in profiles every tenant starts with: `tls-server`, `tls-client`, `mtls`.
pub fn builtin_profiles() -> Vec<Profile> {
    let any_dns = DnsRules {
        allowed: vec!["*".into()],
        allow_wildcards: true,
    };
    let any_ip = IpRules {
        allowed: vec!["0.0.0.0/0".into(), "::/0".into()],
    };
    let keys = vec![
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::Ed25519,
    ];
    let base = |name: &str, description: &str, ekus: &[&str], san: SanRules| Profile {
        name: name.into(),
        description: description.into(),
        key_algorithms: keys.clone(),
        max_validity_days: 397,
        default_validity_days: 90,
        copy_common_name: true,
        san,
        key_usage: vec!["digitalSignature".into(), "keyEncipherment".into()],
        extended_key_usage: ekus.iter().map(|s| s.to_string()).collect(),
        ca: false,
    };
    vec![
        base(
            "tls-server",
            "TLS server certificates: DNS names and IP addresses, serverAuth",
            &["serverAuth"],
            SanRules {
                dns: DnsRules {
                    allow_wildcards: true,
                    ..any_dns.clone()
                },
                ip: any_ip.clone(),
                uri: UriRules {
                    allowed_prefixes: vec![],
                },
                email: EmailRules {
                    allowed_domains: vec![],
                },
                require_san: true,
                max_sans: 100,
            },
        ),
        base(
            "tls-client",
            "TLS client certificates: DNS, e-mail, URI (SPIFFE) names, clientAuth",
            &["clientAuth"],
            SanRules {
                dns: DnsRules {
                    allow_wildcards: false,
                    ..any_dns.clone()
                },
                ip: any_ip.clone(),
                uri: UriRules {
                    allowed_prefixes: vec!["spiffe://".into(), "https://".into(), "urn:".into()],
                },
                email: EmailRules {
                    allowed_domains: vec!["*".into()],
                },
                require_san: true,
                max_sans: 100,
            },
        ),
        base(
            "mtls",
            "Mutual TLS: serverAuth and clientAuth, DNS, IP and URI (SPIFFE) names",
            &["serverAuth", "clientAuth"],
            SanRules {
                dns: DnsRules {
                    allow_wildcards: false,
                    ..any_dns
                },
                ip: any_ip,
                uri: UriRules {
                    allowed_prefixes: vec!["spiffe://".into()],
                },
                email: EmailRules {
                    allowed_domains: vec![],
                },
                require_san: true,
                max_sans: 100,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::{parse_csr, tests::make_csr};
    use rcgen::SanType;

    fn profile(name: &str) -> Profile {
        builtin_profiles()
            .into_iter()
            .find(|p| p.name == name)
            .expect("builtin")
    }

    fn csr(cn: Option<&str>, sans: &[SanType]) -> ParsedCsr {
        parse_csr(make_csr(cn, sans, &rcgen::PKCS_ECDSA_P256_SHA256).as_bytes()).expect("csr")
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().expect("ia5"))
    }

    #[test]
    fn leaf_profiles_never_carry_ocsp_signing_any_eku_or_ca_powers() {
        for eku in [
            "OCSPSigning",
            "1.3.6.1.5.5.7.3.9",
            "anyExtendedKeyUsage",
            "2.5.29.37.0",
        ] {
            let mut p = profile("tls-server");
            p.extended_key_usage.push(eku.into());
            let e = p.validate().expect_err(eku);
            assert!(
                matches!(e, X509Error::ForbiddenInLeafProfile(_)),
                "{eku}: {e}"
            );
        }
        for ku in ["keyCertSign", "cRLSign"] {
            let mut p = profile("tls-server");
            p.key_usage.push(ku.into());
            let e = p.validate().expect_err(ku);
            assert!(
                matches!(e, X509Error::ForbiddenInLeafProfile(_)),
                "{ku}: {e}"
            );
        }
        let mut p = profile("tls-server");
        p.ca = true;
        assert!(matches!(
            p.validate(),
            Err(X509Error::ForbiddenInLeafProfile(_))
        ));
        // other dotted OIDs stay allowed
        let mut p = profile("tls-server");
        p.extended_key_usage.push("1.3.6.1.5.5.7.3.17".into());
        p.validate().expect("ipsecIKE is a leaf EKU");
    }

    #[test]
    fn builtins_are_valid() {
        for p in builtin_profiles() {
            p.validate().expect("builtin profile validates");
        }
    }

    #[test]
    fn applies_tls_server() {
        let now = OffsetDateTime::now_utc();
        let plan = profile("tls-server")
            .apply(
                &csr(Some("www.example.com"), &[dns("api.example.com")]),
                None,
                now,
            )
            .expect("allowed");
        assert_eq!(plan.sans.len(), 2, "CN added as SAN");
        assert_eq!(plan.common_name.as_deref(), Some("www.example.com"));
        assert_eq!(plan.not_after - now, Duration::days(90));
        assert_eq!(
            plan.key_usage,
            vec!["digitalSignature".to_string()],
            "keyEncipherment dropped for EC"
        );
        assert_eq!(plan.extended_key_usage, vec!["serverAuth".to_string()]);
    }

    #[test]
    fn enforces_validity_and_san_rules() {
        let now = OffsetDateTime::now_utc();
        let p = profile("tls-server");
        let c = csr(None, &[dns("a.example.com")]);
        let e = p
            .apply(&c, Some(std::time::Duration::from_secs(398 * 86400)), now)
            .expect_err("too long");
        assert!(e.to_string().contains("exceeds the maximum of 397"), "{e}");
        let e = p
            .apply(
                &csr(
                    None,
                    &[SanType::URI("spiffe://x/y".try_into().expect("ia5"))],
                ),
                None,
                now,
            )
            .expect_err("uri");
        assert!(
            e.to_string().contains("URI spiffe://x/y is not permitted"),
            "{e}"
        );
        let e = p.apply(&csr(None, &[]), None, now).expect_err("no san");
        assert!(e.to_string().contains("at least one"), "{e}");
        let e = profile("mtls")
            .apply(&csr(None, &[dns("*.example.com")]), None, now)
            .expect_err("wildcard");
        assert!(e.to_string().contains("wildcard"), "{e}");
    }

    #[test]
    fn dns_patterns() {
        assert!(dns_matches("*", "a.b"));
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "badexample.com"));
        assert!(dns_matches("Example.com", "example.com"));
    }

    #[test]
    fn cidr_ranges() {
        let c = Cidr::parse("10.0.0.0/8").expect("cidr");
        assert!(c.contains("10.1.2.3".parse().expect("ip")));
        assert!(!c.contains("11.0.0.1".parse().expect("ip")));
        assert!(!c.contains("::1".parse().expect("ip")));
        assert!(Cidr::parse("::/0")
            .expect("cidr")
            .contains("::1".parse().expect("ip")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn invalid_profiles_are_rejected() {
        let mut p = profile("tls-server");
        p.key_usage.push("keyCertSign".into());
        assert!(p.validate().is_err());
        let mut p = profile("tls-server");
        p.default_validity_days = 500;
        assert!(p.validate().is_err());
        let mut p = profile("tls-server");
        p.san.ip.allowed.push("nonsense".into());
        assert!(p.validate().is_err());
    }
}
