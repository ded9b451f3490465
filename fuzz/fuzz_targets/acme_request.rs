//! Fuzzes the ACME request parsers: arbitrary bytes as a JWS request body to
//! `parse_request` (whose payload, when it parses, goes on to the nested parsers: the
//! external account binding, the keyChange inner JWS, identifiers) and as an ARI
//! certificate identifier. Any panic is a bug: input from the network must only ever
//! produce an `AcmeError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustbox_proto_acme::{
    parse_cert_id, parse_eab, parse_identifier, parse_key_change, parse_request, Jwk, KeyRef,
};

const URL: &str = "https://ca.example/acme/default/new-account";

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_cert_id(text);
    }
    let Ok(req) = parse_request(data, URL) else {
        return;
    };
    assert_eq!(req.header.url, URL);
    let _ = req.is_post_as_get();
    let Ok(payload) = req.payload_json() else {
        return;
    };
    if let KeyRef::Jwk(key) = &req.header.key {
        let _ = key.thumbprint();
        let _ = req.verify(key);
        if let Some(eab) = payload.get("externalAccountBinding") {
            let _ = parse_eab(eab, URL, key);
        }
        let _ = Jwk::from_json(&payload);
    }
    let _ = parse_key_change(&payload, URL);
    if let Some(list) = payload.get("identifiers").and_then(|v| v.as_array()) {
        for v in list {
            if let Ok(id) = parse_identifier(v) {
                let _ = id.challenge_types();
            }
        }
    }
});
