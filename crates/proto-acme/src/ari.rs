//! ACME Renewal Information (RFC 9773): the certificate identifier clients name, and the
//! suggested renewal window.

use crate::error::AcmeError;
use crate::{b64, unb64};

/// The ARI identifier of a certificate: `base64url(keyIdentifier of its AKI) "."
/// base64url(serial number DER content octets)`.
pub fn cert_id(authority_key_id: &[u8], serial: &[u8]) -> String {
    format!("{}.{}", b64(authority_key_id), b64(serial))
}

/// Splits an ARI identifier into the authority key identifier and the serial's octets;
/// `malformed` unless both parts are non-empty unpadded base64url.
pub fn parse_cert_id(id: &str) -> Result<(Vec<u8>, Vec<u8>), AcmeError> {
    let (aki, serial) = id
        .split_once('.')
        .ok_or_else(|| AcmeError::malformed("a certificate identifier is AKI.serial"))?;
    let aki = unb64("the AKI part", aki)?;
    let serial = unb64("the serial part", serial)?;
    if aki.is_empty() || serial.is_empty() || serial.len() > 20 + 1 {
        return Err(AcmeError::malformed(
            "a certificate identifier names a key identifier and a serial of at most 20 octets",
        ));
    }
    Ok((aki, serial))
}

/// The suggested renewal window, Unix seconds, of a certificate valid from `not_before` to
/// `not_after`: the middle of its last third (from 2/3 to 5/6 of its lifetime). With
/// `urgent` (it is revoked, or its issuer or key is being rotated or revoked) the window
/// is now: it opened an hour ago and closes in an hour.
pub fn renewal_window(not_before: i64, not_after: i64, now: i64, urgent: bool) -> (i64, i64) {
    if urgent {
        return (now - 3600, now + 3600);
    }
    let lifetime = (not_after - not_before).max(1);
    (not_before + lifetime * 2 / 3, not_before + lifetime * 5 / 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_round_trip_and_reject_garbage() {
        // RFC 9773 §4.1's example
        let id = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
        let (aki, serial) = parse_cert_id(id).expect("parse");
        assert_eq!(serial, [0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(cert_id(&aki, &serial), id);
        for bad in [
            "",
            "abc",
            ".AIdlQyE",
            "aYhb.",
            "a+b.c",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",
        ] {
            assert!(parse_cert_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_window_is_late_in_the_lifetime_unless_urgent() {
        let day = 86400;
        assert_eq!(renewal_window(0, 90 * day, 10, false), (60 * day, 75 * day));
        assert_eq!(
            renewal_window(0, 90 * day, 10 * day, true),
            (10 * day - 3600, 10 * day + 3600)
        );
    }
}
