//! The JWS every ACME request is (RFC 8555 §6.2): flattened JSON serialization, a protected
//! header with `alg`, `nonce`, `url` and exactly one of `jwk` or `kid`, and a signature the
//! server checks with the account key.

use crate::error::{AcmeError, ErrorType};
use crate::jwk::Jwk;
use crate::unb64;
use serde::Deserialize;
use serde_json::Value;

/// The JWS algorithms accepted for account keys.
pub const ALGORITHMS: [&str; 4] = ["ES256", "ES384", "RS256", "EdDSA"];

/// How the request names its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// The key itself (newAccount, revokeCert with the certificate's key).
    Jwk(Jwk),
    /// An account URL (every other request).
    Kid(String),
}

/// The protected header, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedHeader {
    /// One of [`ALGORITHMS`].
    pub alg: String,
    /// The anti-replay nonce (the server checks it is one it issued, once).
    pub nonce: String,
    /// The URL the request was sent to, as the client signed it.
    pub url: String,
    /// The key.
    pub key: KeyRef,
}

/// A parsed request: header, payload and what the signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The protected header.
    pub header: ProtectedHeader,
    /// The payload bytes; empty for POST-as-GET.
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

impl Request {
    /// Checks the signature with `key` (the header's `jwk`, or the account's key for a
    /// `kid`).
    pub fn verify(&self, key: &Jwk) -> Result<(), AcmeError> {
        key.verify(&self.header.alg, &self.signing_input, &self.signature)
    }

    /// What the signature covers (`protected.payload`).
    pub fn signing_input(&self) -> &[u8] {
        &self.signing_input
    }

    /// The signature, as the JWS carries it.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Whether this is a POST-as-GET (an empty payload, RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload as a JSON object; `malformed` if it is not one.
    pub fn payload_json(&self) -> Result<Value, AcmeError> {
        let v: Value = serde_json::from_slice(&self.payload)
            .map_err(|e| AcmeError::malformed(format!("the payload is not JSON: {e}")))?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(AcmeError::malformed("the payload is not a JSON object"))
        }
    }
}

/// Parses and checks a request body sent to `url` (the server's own URL for the resource,
/// which the header must name). The signature is not checked here: which key checks it
/// depends on the account the `kid` names ([`Request::verify`]).
pub fn parse_request(body: &[u8], url: &str) -> Result<Request, AcmeError> {
    let f: Flattened = serde_json::from_slice(body).map_err(|e| {
        AcmeError::malformed(format!(
            "the body is not a flattened JWS (protected, payload, signature): {e}"
        ))
    })?;
    let protected = unb64("protected", &f.protected)?;
    let header: Value = serde_json::from_slice(&protected)
        .map_err(|_| AcmeError::malformed("the protected header is not JSON"))?;
    let Some(h) = header.as_object() else {
        return Err(AcmeError::malformed(
            "the protected header is not a JSON object",
        ));
    };
    let text = |name: &str| h.get(name).and_then(Value::as_str).map(str::to_owned);
    let alg = text("alg").ok_or_else(|| AcmeError::malformed("the protected header has no alg"))?;
    if !ALGORITHMS.contains(&alg.as_str()) {
        return Err(AcmeError::new(
            ErrorType::BadSignatureAlgorithm,
            format!(
                "alg {alg:?} is not accepted; use one of {}",
                ALGORITHMS.join(", ")
            ),
        ));
    }
    for forbidden in ["crit", "b64"] {
        if h.contains_key(forbidden) {
            return Err(AcmeError::malformed(format!(
                "the protected header may not carry {forbidden:?}"
            )));
        }
    }
    let key = match (h.get("jwk"), text("kid")) {
        (Some(jwk), None) => KeyRef::Jwk(Jwk::from_json(jwk)?),
        (None, Some(kid)) => KeyRef::Kid(kid),
        (Some(_), Some(_)) => {
            return Err(AcmeError::malformed(
                "the protected header has both jwk and kid",
            ))
        }
        (None, None) => {
            return Err(AcmeError::malformed(
                "the protected header has neither jwk nor kid",
            ))
        }
    };
    let nonce = text("nonce")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AcmeError::new(ErrorType::BadNonce, "the protected header has no nonce"))?;
    let signed_url =
        text("url").ok_or_else(|| AcmeError::malformed("the protected header has no url"))?;
    if signed_url != url {
        return Err(AcmeError::new(
            ErrorType::Unauthorized,
            format!("the request was signed for {signed_url:?}, not for {url:?}"),
        ));
    }
    let payload = unb64("payload", &f.payload)?;
    let signature = unb64("signature", &f.signature)?;
    let mut signing_input = Vec::with_capacity(f.protected.len() + 1 + f.payload.len());
    signing_input.extend_from_slice(f.protected.as_bytes());
    signing_input.push(b'.');
    signing_input.extend_from_slice(f.payload.as_bytes());
    Ok(Request {
        header: ProtectedHeader {
            alg,
            nonce,
            url: signed_url,
            key,
        },
        payload,
        signing_input,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;
    use ring::rand::SystemRandom;
    use ring::signature::{self as sig, KeyPair};

    const URL: &str = "https://ca.example/acme/default/new-account";

    /// A client's account key, as the client would use it.
    enum Client {
        Ec(sig::EcdsaKeyPair, &'static str, &'static str),
        Ed(sig::Ed25519KeyPair),
    }

    impl Client {
        fn p256() -> Self {
            let rng = SystemRandom::new();
            let alg = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
            let doc = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
            Self::Ec(
                sig::EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("key"),
                "ES256",
                "P-256",
            )
        }
        fn p384() -> Self {
            let rng = SystemRandom::new();
            let alg = &sig::ECDSA_P384_SHA384_FIXED_SIGNING;
            let doc = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
            Self::Ec(
                sig::EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("key"),
                "ES384",
                "P-384",
            )
        }
        fn ed25519() -> Self {
            let doc = sig::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
            Self::Ed(sig::Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("key"))
        }
        fn alg(&self) -> &'static str {
            match self {
                Self::Ec(_, alg, _) => alg,
                Self::Ed(_) => "EdDSA",
            }
        }
        fn jwk(&self) -> Value {
            match self {
                Self::Ec(k, _, crv) => {
                    let p = k.public_key().as_ref();
                    let half = (p.len() - 1) / 2;
                    serde_json::json!({"kty": "EC", "crv": crv, "x": b64(&p[1..1 + half]), "y": b64(&p[1 + half..])})
                }
                Self::Ed(k) => {
                    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
                }
            }
        }
        fn sign(&self, input: &[u8]) -> Vec<u8> {
            match self {
                Self::Ec(k, _, _) => k
                    .sign(&SystemRandom::new(), input)
                    .expect("sign")
                    .as_ref()
                    .to_vec(),
                Self::Ed(k) => k.sign(input).as_ref().to_vec(),
            }
        }
        /// A flattened JWS of `payload` with `header` members added to alg/nonce/url.
        fn request(&self, header: Value, payload: &str) -> Vec<u8> {
            let mut h = serde_json::json!({"alg": self.alg(), "nonce": "n0nce", "url": URL});
            for (k, v) in header.as_object().expect("object") {
                h[k] = v.clone();
            }
            let protected = b64(h.to_string().as_bytes());
            let payload = b64(payload.as_bytes());
            let signature = b64(&self.sign(format!("{protected}.{payload}").as_bytes()));
            serde_json::json!({"protected": protected, "payload": payload, "signature": signature})
                .to_string()
                .into_bytes()
        }
    }

    #[test]
    fn requests_signed_with_each_accepted_key_verify() {
        for client in [Client::p256(), Client::p384(), Client::ed25519()] {
            let body = client.request(
                serde_json::json!({"jwk": client.jwk()}),
                r#"{"termsOfServiceAgreed":true}"#,
            );
            let req = parse_request(&body, URL).expect("parses");
            let KeyRef::Jwk(key) = &req.header.key else {
                panic!("jwk expected");
            };
            req.verify(key)
                .unwrap_or_else(|e| panic!("{}: {e}", client.alg()));
            assert_eq!(
                req.payload_json().expect("json")["termsOfServiceAgreed"],
                true
            );
            assert_eq!(req.header.nonce, "n0nce");
            // another key of the same kind does not verify it
            let other = Client::p256();
            let other_key = Jwk::from_json(&other.jwk()).expect("key");
            if client.alg() == "ES256" {
                assert!(req.verify(&other_key).is_err());
            }
        }
    }

    #[test]
    fn a_tampered_payload_does_not_verify() {
        let client = Client::p256();
        let body = client.request(serde_json::json!({"jwk": client.jwk()}), r#"{"a":1}"#);
        let mut f: Value = serde_json::from_slice(&body).expect("json");
        f["payload"] = Value::String(b64(br#"{"a":2}"#));
        let req = parse_request(f.to_string().as_bytes(), URL).expect("parses");
        let KeyRef::Jwk(key) = &req.header.key else {
            panic!("jwk expected");
        };
        assert_eq!(
            req.verify(key).expect_err("tampered").kind,
            ErrorType::Malformed
        );
    }

    #[test]
    fn header_rules_are_enforced_with_the_rfc_error_types() {
        let client = Client::p256();
        let jwk = client.jwk();
        let kind = |body: Vec<u8>, url: &str| parse_request(&body, url).expect_err("refused").kind;
        // both jwk and kid, neither
        assert_eq!(
            kind(
                client.request(
                    serde_json::json!({"jwk": jwk, "kid": "https://ca.example/acct/1"}),
                    ""
                ),
                URL
            ),
            ErrorType::Malformed
        );
        assert_eq!(
            kind(client.request(serde_json::json!({}), ""), URL),
            ErrorType::Malformed
        );
        // signed for another URL
        assert_eq!(
            kind(
                client.request(serde_json::json!({"kid": "k"}), ""),
                "https://ca.example/acme/default/new-order"
            ),
            ErrorType::Unauthorized
        );
        // unsupported algorithms: none, HMAC
        for alg in ["none", "HS256", "PS256"] {
            assert_eq!(
                kind(
                    client.request(serde_json::json!({"kid": "k", "alg": alg}), ""),
                    URL
                ),
                ErrorType::BadSignatureAlgorithm,
                "{alg}"
            );
        }
        // no nonce
        assert_eq!(
            kind(
                client.request(serde_json::json!({"kid": "k", "nonce": ""}), ""),
                URL
            ),
            ErrorType::BadNonce
        );
        // alg that does not match the key
        let body = client.request(serde_json::json!({"jwk": jwk, "alg": "ES384"}), "");
        let req = parse_request(&body, URL).expect("parses");
        let KeyRef::Jwk(key) = &req.header.key else {
            panic!("jwk expected");
        };
        assert!(req.verify(key).is_err());
        // unprotected header members, non-JWS bodies
        let mut f: Value =
            serde_json::from_slice(&client.request(serde_json::json!({"kid": "k"}), ""))
                .expect("json");
        f["header"] = serde_json::json!({"kid": "k"});
        assert_eq!(kind(f.to_string().into_bytes(), URL), ErrorType::Malformed);
        assert_eq!(kind(b"not json".to_vec(), URL), ErrorType::Malformed);
        // POST-as-GET
        let req = parse_request(&client.request(serde_json::json!({"kid": "k"}), ""), URL)
            .expect("parses");
        assert!(req.is_post_as_get());
        assert_eq!(req.header.key, KeyRef::Kid("k".into()));
    }

    #[test]
    fn rs256_verifies_with_an_openssl_made_key() {
        // The client side entirely by openssl: key, JWK members and signature.
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("k.pem");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl runs (install the openssl package)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let k = key.to_string_lossy().into_owned();
        run(&["genrsa", "-out", &k, "2048"]);
        let modulus =
            String::from_utf8(run(&["rsa", "-in", &k, "-noout", "-modulus"])).expect("utf8");
        let hex = modulus.trim().trim_start_matches("Modulus=");
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let jwk = serde_json::json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"});
        let h = serde_json::json!({"alg": "RS256", "nonce": "n", "url": URL, "jwk": jwk});
        let protected = b64(h.to_string().as_bytes());
        let payload = b64(b"{}");
        let input = dir.path().join("input");
        std::fs::write(&input, format!("{protected}.{payload}")).expect("write");
        let signature = run(&["dgst", "-sha256", "-sign", &k, &input.to_string_lossy()]);
        let body = serde_json::json!({"protected": protected, "payload": payload, "signature": b64(&signature)});
        let req = parse_request(body.to_string().as_bytes(), URL).expect("parses");
        let KeyRef::Jwk(key) = &req.header.key else {
            panic!("jwk expected");
        };
        req.verify(key).expect("RS256 verifies");
        assert_eq!(key.algorithm(), "RS256");
    }
}
