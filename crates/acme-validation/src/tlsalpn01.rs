//! tls-alpn-01 ([RFC 8737](https://www.rfc-editor.org/rfc/rfc8737); IP identifiers per
//! [RFC 8738 §6](https://www.rfc-editor.org/rfc/rfc8738#section-6)): a TLS handshake
//! offering only ALPN `acme-tls/1`, whose leaf certificate must name exactly the identifier
//! and carry the critical acmeIdentifier extension with SHA-256(key authorization).

use crate::{tls, Inner, ValidationError};
use rustls::pki_types::{DnsName, ServerName};
use std::net::IpAddr;
use tokio_rustls::TlsConnector;
use trustbox_proto_acme::Identifier;
use url::Host;
use x509_parser::extensions::GeneralName;

/// The DER content octets of id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31 (RFC 8737 §6.1).
const ACME_IDENTIFIER_OID: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1F];

/// Runs tls-alpn-01 for `identifier` on `port`.
pub(crate) async fn validate(
    inner: &Inner,
    identifier: &Identifier,
    key_authorization: &str,
    port: u16,
) -> Result<(), ValidationError> {
    let (host, sni) = match identifier {
        Identifier::Dns(name) => (Host::Domain(name.clone()), name.clone()),
        Identifier::Ip(IpAddr::V4(a)) => (Host::Ipv4(*a), reverse_name(IpAddr::V4(*a))),
        Identifier::Ip(IpAddr::V6(a)) => (Host::Ipv6(*a), reverse_name(IpAddr::V6(*a))),
    };
    // A DnsName, so SNI is always sent (rustls sends none for an IP address).
    let server_name = DnsName::try_from(sni.clone())
        .map(|n| ServerName::DnsName(n.to_owned()))
        .map_err(|_| ValidationError::Malformed(format!("{sni} cannot be sent as SNI")))?;
    let tcp = inner.net.connect(&host, port).await?;
    let target = format!("{host}:{port}");
    let stream = TlsConnector::from(inner.alpn_tls.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| tls::handshake_error(&target, e))?;
    let (_, conn) = stream.get_ref();
    if conn.alpn_protocol() != Some(tls::ACME_TLS_ALPN) {
        return Err(ValidationError::Tls(format!(
            "{target} did not negotiate the ALPN protocol acme-tls/1"
        )));
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| ValidationError::Tls(format!("{target} presented no certificate")))?;
    check_certificate(leaf.as_ref(), identifier, key_authorization, &target)
}

/// The reverse-mapping name of an address (RFC 8738 §6): `4.3.2.1.in-addr.arpa`, or 32
/// nibbles then `ip6.arpa`.
pub(crate) fn reverse_name(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(a) => {
            let mut out = String::with_capacity(72);
            for byte in a.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

/// Checks the validation certificate (RFC 8737 §3): exactly one subjectAltName entry, equal
/// to the identifier, and one critical acmeIdentifier extension whose value is the DER
/// OCTET STRING of SHA-256(key authorization).
pub(crate) fn check_certificate(
    der: &[u8],
    identifier: &Identifier,
    key_authorization: &str,
    target: &str,
) -> Result<(), ValidationError> {
    let wrong = |why: String| {
        ValidationError::IncorrectResponse(format!(
            "the tls-alpn-01 certificate from {target} {why}"
        ))
    };
    let cert = match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => cert,
        _ => {
            return Err(ValidationError::Tls(format!(
                "the certificate from {target} could not be parsed"
            )))
        }
    };
    let san = cert
        .subject_alternative_name()
        .map_err(|_| wrong("has a malformed subjectAltName".into()))?
        .ok_or_else(|| wrong("has no subjectAltName".into()))?;
    let names = &san.value.general_names;
    if names.len() != 1 {
        return Err(wrong(format!(
            "has {} subjectAltName entries; exactly one is required",
            names.len()
        )));
    }
    let matches = match (&names[0], identifier) {
        (GeneralName::DNSName(got), Identifier::Dns(want)) => got.eq_ignore_ascii_case(want),
        (GeneralName::IPAddress(got), Identifier::Ip(IpAddr::V4(want))) => {
            *got == want.octets().as_slice()
        }
        (GeneralName::IPAddress(got), Identifier::Ip(IpAddr::V6(want))) => {
            *got == want.octets().as_slice()
        }
        _ => false,
    };
    if !matches {
        return Err(wrong(format!(
            "names {}, not {}",
            describe_name(&names[0]),
            crate::describe(identifier)
        )));
    }
    let mut acme = cert
        .extensions()
        .iter()
        .filter(|ext| ext.oid.as_bytes() == ACME_IDENTIFIER_OID);
    let (Some(ext), None) = (acme.next(), acme.next()) else {
        return Err(wrong(
            "must carry exactly one acmeIdentifier extension".into(),
        ));
    };
    if !ext.critical {
        return Err(wrong(
            "has an acmeIdentifier extension that is not critical".into(),
        ));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(digest.as_ref());
    if ext.value != expected.as_slice() {
        return Err(wrong(
            "has an acmeIdentifier that is not SHA-256 of the key authorization".into(),
        ));
    }
    Ok(())
}

/// A subjectAltName entry as short, printable text.
fn describe_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(n) => format!("DNS:{}", crate::error::excerpt(n.as_bytes())),
        GeneralName::IPAddress(b) => match b.len() {
            4 => <[u8; 4]>::try_from(*b)
                .map(|o| format!("IP:{}", IpAddr::from(o)))
                .unwrap_or_default(),
            16 => <[u8; 16]>::try_from(*b)
                .map(|o| format!("IP:{}", IpAddr::from(o)))
                .unwrap_or_default(),
            _ => "a malformed IP address".into(),
        },
        _ => "an entry of another kind".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{acme_cert, dns_san, tls_server, validator, TlsSetup, KEY_AUTH, TOKEN};
    use crate::{Ports, ResolverConfig};
    use rcgen::{CustomExtension, SanType};
    use std::net::Ipv4Addr;
    use trustbox_proto_acme::{ChallengeType, ErrorType};

    fn digest(ka: &str) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, ka.as_bytes())
            .as_ref()
            .to_vec()
    }

    async fn tls_alpn(id: &Identifier, port: u16) -> Result<(), ValidationError> {
        let v = validator(ResolverConfig::System);
        let ports = Ports { http: 1, tls: port };
        v.validate(ChallengeType::TlsAlpn01, id, TOKEN, KEY_AUTH, ports)
            .await
    }

    fn localhost() -> Identifier {
        Identifier::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    #[tokio::test]
    async fn tls_alpn01_success_for_ip() {
        let ext = CustomExtension::new_acme_identifier(&digest(KEY_AUTH));
        let cert = acme_cert(
            vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))],
            Some(ext),
        );
        let (port, _server, sni) = tls_server(TlsSetup::acme(cert)).await;
        tls_alpn(&localhost(), port).await.expect("validates");
        let sni = sni.lock().expect("not poisoned").clone();
        assert_eq!(sni.as_deref(), Some("1.0.0.127.in-addr.arpa"));
    }

    #[tokio::test]
    async fn tls_alpn01_success_for_name() {
        // `localhost` resolves through the system resolver (/etc/hosts).
        let ext = CustomExtension::new_acme_identifier(&digest(KEY_AUTH));
        let cert = acme_cert(vec![dns_san("LocalHost")], Some(ext));
        let (port, _server, sni) = tls_server(TlsSetup::acme(cert)).await;
        tls_alpn(&Identifier::Dns("localhost".into()), port)
            .await
            .expect("validates");
        let sni = sni.lock().expect("not poisoned").clone();
        assert_eq!(sni.as_deref(), Some("localhost"));
    }

    #[tokio::test]
    async fn tls_alpn01_wrong_digest() {
        let ext = CustomExtension::new_acme_identifier(&digest("other.key-authorization"));
        let cert = acme_cert(
            vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))],
            Some(ext),
        );
        let (port, _server, _) = tls_server(TlsSetup::acme(cert)).await;
        let err = tls_alpn(&localhost(), port)
            .await
            .expect_err("wrong digest");
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse);
        assert!(err.to_string().contains("SHA-256"), "{err}");
    }

    #[tokio::test]
    async fn tls_alpn01_no_alpn() {
        let ext = CustomExtension::new_acme_identifier(&digest(KEY_AUTH));
        let cert = acme_cert(
            vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))],
            Some(ext),
        );
        let (port, _server, _) = tls_server(TlsSetup {
            alpn: vec![],
            ..TlsSetup::acme(cert)
        })
        .await;
        let err = tls_alpn(&localhost(), port).await.expect_err("no ALPN");
        assert_eq!(err.acme_type(), ErrorType::Tls);
        assert!(err.to_string().contains("acme-tls/1"), "{err}");
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn tls_alpn01_two_sans() {
        let ext = CustomExtension::new_acme_identifier(&digest(KEY_AUTH));
        let sans = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            dns_san("other.test"),
        ];
        let (port, _server, _) = tls_server(TlsSetup::acme(acme_cert(sans, Some(ext)))).await;
        let err = tls_alpn(&localhost(), port).await.expect_err("two SANs");
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse);
        assert!(err.to_string().contains("2 subjectAltName"), "{err}");
    }

    #[tokio::test]
    async fn tls_alpn01_missing_or_noncritical_extension() {
        let san = || vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
        let (port, _server, _) = tls_server(TlsSetup::acme(acme_cert(san(), None))).await;
        let err = tls_alpn(&localhost(), port)
            .await
            .expect_err("no extension");
        assert!(
            err.to_string().contains("exactly one acmeIdentifier"),
            "{err}"
        );

        let mut ext = CustomExtension::new_acme_identifier(&digest(KEY_AUTH));
        ext.set_criticality(false);
        let (port, _server2, _) = tls_server(TlsSetup::acme(acme_cert(san(), Some(ext)))).await;
        let err = tls_alpn(&localhost(), port)
            .await
            .expect_err("not critical");
        assert!(err.to_string().contains("not critical"), "{err}");
    }

    #[tokio::test]
    async fn tls_alpn01_wrong_name() {
        let ext = CustomExtension::new_acme_identifier(&digest(KEY_AUTH));
        let cert = acme_cert(vec![dns_san("other.test")], Some(ext));
        let (port, _server, _) = tls_server(TlsSetup::acme(cert)).await;
        let err = tls_alpn(&localhost(), port).await.expect_err("wrong SAN");
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse);
        assert!(err.to_string().contains("DNS:other.test"), "{err}");
    }

    #[tokio::test]
    async fn tls_alpn01_success_over_tls12() {
        let ext = CustomExtension::new_acme_identifier(&digest(KEY_AUTH));
        let cert = acme_cert(
            vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))],
            Some(ext),
        );
        let (port, _server, _) = tls_server(TlsSetup {
            tls12_only: true,
            ..TlsSetup::acme(cert)
        })
        .await;
        tls_alpn(&localhost(), port)
            .await
            .expect("validates over TLS 1.2");
    }

    #[tokio::test]
    async fn tls_alpn01_handshake_signed_by_another_key() {
        let ext = CustomExtension::new_acme_identifier(&digest(KEY_AUTH));
        let san = || vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
        let (cert, _) = acme_cert(san(), Some(ext));
        let (_, other_key) = acme_cert(san(), None);
        for tls12_only in [false, true] {
            let (port, _server, _) = tls_server(TlsSetup {
                tls12_only,
                ..TlsSetup::acme((cert.clone(), other_key.clone_key()))
            })
            .await;
            let err = tls_alpn(&localhost(), port)
                .await
                .expect_err("bad signature");
            assert_eq!(err.acme_type(), ErrorType::Tls, "{err}");
            assert!(err.to_string().contains("BadSignature"), "{err}");
        }
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))),
            "4.3.2.1.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::567:89ab".parse().expect("valid"));
        assert_eq!(
            v6,
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
