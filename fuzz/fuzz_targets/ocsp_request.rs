//! Fuzzes the OCSP request decoders: arbitrary bytes as a POST body to `parse_request`, and
//! (when valid UTF-8) as a GET path segment to `decode_get_path`, whose output is parsed too.
//! Any panic is a bug: input from the network must only ever produce `OcspError::Malformed`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustbox_proto_ocsp::{decode_get_path, parse_request, IssuerKeyHashes, OcspError};

fuzz_target!(|data: &[u8]| {
    let hashes = IssuerKeyHashes::new(b"fuzz subject", b"fuzz key");
    check(parse_request(data), &hashes);
    if let Ok(segment) = std::str::from_utf8(data) {
        match decode_get_path(segment) {
            Ok(der) => check(parse_request(&der), &hashes),
            Err(e) => assert!(matches!(e, OcspError::Malformed(_)), "{e}"),
        }
    }
});

fn check(result: Result<trustbox_proto_ocsp::OcspRequest, OcspError>, hashes: &IssuerKeyHashes) {
    match result {
        Ok(req) => {
            assert!(!req.certs.is_empty());
            for cert in &req.certs {
                assert_eq!(cert.issuer_name_hash.len(), cert.hash.output_len());
                assert_eq!(cert.issuer_key_hash.len(), cert.hash.output_len());
                let _ = cert.serial();
                let _ = hashes.matches(cert);
            }
        }
        Err(e) => assert!(matches!(e, OcspError::Malformed(_)), "{e}"),
    }
}
