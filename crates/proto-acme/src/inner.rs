//! JWS objects nested in a request's payload: the external account binding of newAccount
//! (RFC 8555 §7.3.4) and the inner request of keyChange (§7.3.5); and the conversion of a
//! JWS ECDSA signature to the DER form custody verifies.

use crate::error::{AcmeError, ErrorType};
use crate::jwk::Jwk;
use crate::unb64;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

fn flattened(
    v: &Value,
    what: &str,
) -> Result<(Flattened, serde_json::Map<String, Value>), AcmeError> {
    let f: Flattened = serde_json::from_value(v.clone())
        .map_err(|_| AcmeError::malformed(format!("{what} is not a flattened JWS")))?;
    let header: Value = serde_json::from_slice(&unb64("protected", &f.protected)?)
        .map_err(|_| AcmeError::malformed(format!("{what}'s protected header is not JSON")))?;
    let Value::Object(h) = header else {
        return Err(AcmeError::malformed(format!(
            "{what}'s protected header is not an object"
        )));
    };
    Ok((f, h))
}

/// An external account binding, checked for form: the MAC is verified by whoever holds
/// the key named `kid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAccountBinding {
    /// The EAB key identifier.
    pub kid: String,
    /// What the MAC covers (`protected.payload`).
    pub signing_input: Vec<u8>,
    /// The HMAC-SHA256 tag.
    pub mac: Vec<u8>,
}

/// Parses the `externalAccountBinding` of a newAccount request sent to `url` and signed
/// with `account_key`: HS256, a `kid`, the same `url`, no nonce, and the account key as
/// payload.
pub fn parse_eab(
    v: &Value,
    url: &str,
    account_key: &Jwk,
) -> Result<ExternalAccountBinding, AcmeError> {
    let (f, h) = flattened(v, "externalAccountBinding")?;
    if h.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(AcmeError::new(
            ErrorType::BadSignatureAlgorithm,
            "the external account binding is signed with HS256",
        ));
    }
    if h.contains_key("nonce") {
        return Err(AcmeError::malformed(
            "the external account binding carries no nonce",
        ));
    }
    if h.get("url").and_then(Value::as_str) != Some(url) {
        return Err(AcmeError::malformed(
            "the external account binding's url is not the newAccount URL",
        ));
    }
    let kid = h
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && k.len() <= 256)
        .ok_or_else(|| AcmeError::malformed("the external account binding has no kid"))?
        .to_owned();
    let payload: Value = serde_json::from_slice(&unb64("payload", &f.payload)?)
        .map_err(|_| AcmeError::malformed("the external account binding's payload is not JSON"))?;
    if Jwk::from_json(&payload)? != *account_key {
        return Err(AcmeError::new(
            ErrorType::Unauthorized,
            "the external account binding binds another key",
        ));
    }
    Ok(ExternalAccountBinding {
        kid,
        signing_input: format!("{}.{}", f.protected, f.payload).into_bytes(),
        mac: unb64("signature", &f.signature)?,
    })
}

/// The inner request of keyChange, verified with the new key it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    /// The new key.
    pub new_key: Jwk,
    /// The account URL the payload names.
    pub account: String,
    /// The old key the payload names.
    pub old_key: Jwk,
}

/// Parses and verifies the inner JWS of a keyChange request to `url`: signed by the new
/// key given as `jwk`, the same `url`, no nonce, payload `{account, oldKey}`.
pub fn parse_key_change(v: &Value, url: &str) -> Result<KeyChange, AcmeError> {
    let (f, h) = flattened(v, "the keyChange payload")?;
    let alg = h
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| AcmeError::malformed("the inner JWS has no alg"))?;
    if !crate::ALGORITHMS.contains(&alg) {
        return Err(AcmeError::new(
            ErrorType::BadSignatureAlgorithm,
            format!("alg {alg:?} is not accepted"),
        ));
    }
    if h.contains_key("nonce") || h.contains_key("kid") {
        return Err(AcmeError::malformed(
            "the inner JWS carries a jwk and no nonce or kid",
        ));
    }
    if h.get("url").and_then(Value::as_str) != Some(url) {
        return Err(AcmeError::malformed(
            "the inner JWS's url is not the keyChange URL",
        ));
    }
    let new_key = Jwk::from_json(
        h.get("jwk")
            .ok_or_else(|| AcmeError::malformed("the inner JWS has no jwk"))?,
    )?;
    let signing_input = format!("{}.{}", f.protected, f.payload);
    new_key.verify(
        alg,
        signing_input.as_bytes(),
        &unb64("signature", &f.signature)?,
    )?;
    let payload: Value = serde_json::from_slice(&unb64("payload", &f.payload)?)
        .map_err(|_| AcmeError::malformed("the inner payload is not JSON"))?;
    let account = payload
        .get("account")
        .and_then(Value::as_str)
        .ok_or_else(|| AcmeError::malformed("the inner payload has no account"))?
        .to_owned();
    let old_key = Jwk::from_json(
        payload
            .get("oldKey")
            .ok_or_else(|| AcmeError::malformed("the inner payload has no oldKey"))?,
    )?;
    Ok(KeyChange {
        new_key,
        account,
        old_key,
    })
}

/// A JWS ECDSA signature (`r || s`, each half the length) as DER `Ecdsa-Sig-Value`; other
/// signatures (Ed25519) are returned as they are.
pub fn jws_signature_to_der(alg: &str, sig: &[u8]) -> Vec<u8> {
    if !matches!(alg, "ES256" | "ES384") || sig.is_empty() || sig.len() % 2 != 0 {
        return sig.to_vec();
    }
    fn int(v: &[u8]) -> Vec<u8> {
        let trimmed: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = if trimmed.first().is_some_and(|b| b & 0x80 != 0) || trimmed.is_empty() {
            vec![0]
        } else {
            Vec::new()
        };
        body.extend_from_slice(&trimmed);
        let mut out = vec![0x02, u8::try_from(body.len()).unwrap_or(0)];
        out.extend(body);
        out
    }
    let (r, s) = sig.split_at(sig.len() / 2);
    let mut seq = int(r);
    seq.extend(int(s));
    let mut out = vec![0x30];
    if seq.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(u8::try_from(seq.len()).unwrap_or(0));
    out.extend(seq);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;
    use ring::rand::SystemRandom;
    use ring::signature::{self as sig, KeyPair};

    fn p256() -> (sig::EcdsaKeyPair, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key");
        let kp = sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .expect("key");
        let pt = kp.public_key().as_ref();
        let jwk = Jwk::from_json(&serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": b64(&pt[1..33]), "y": b64(&pt[33..65]),
        }))
        .expect("jwk");
        (kp, jwk)
    }

    #[test]
    fn an_eab_binds_the_account_key_under_a_mac() {
        let (_, jwk) = p256();
        let url = "https://ca.example/acme/p/new-account";
        let protected =
            b64(br#"{"alg":"HS256","kid":"eab-1","url":"https://ca.example/acme/p/new-account"}"#);
        let payload = b64(jwk.to_json().as_bytes());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret");
        let tag = ring::hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
        let v = serde_json::json!({"protected": protected, "payload": payload, "signature": b64(tag.as_ref())});
        let eab = parse_eab(&v, url, &jwk).expect("eab");
        assert_eq!(eab.kid, "eab-1");
        assert!(ring::hmac::verify(&key, &eab.signing_input, &eab.mac).is_ok());
        let (_, other) = p256();
        assert_eq!(
            parse_eab(&v, url, &other).expect_err("other key").kind,
            ErrorType::Unauthorized
        );
        assert!(parse_eab(&v, "https://ca.example/acme/q/new-account", &jwk).is_err());
    }

    #[test]
    fn a_key_change_is_signed_by_the_new_key() {
        let (new_kp, new_jwk) = p256();
        let (_, old_jwk) = p256();
        let url = "https://ca.example/acme/p/key-change";
        let header = serde_json::json!({"alg": "ES256", "url": url, "jwk": serde_json::from_str::<Value>(&new_jwk.to_json()).expect("json")});
        let protected = b64(header.to_string().as_bytes());
        let payload = b64(serde_json::json!({"account": "https://ca.example/acme/p/account/1", "oldKey": serde_json::from_str::<Value>(&old_jwk.to_json()).expect("json")}).to_string().as_bytes());
        let signature = new_kp
            .sign(
                &SystemRandom::new(),
                format!("{protected}.{payload}").as_bytes(),
            )
            .expect("sign");
        let v = serde_json::json!({"protected": protected, "payload": payload, "signature": b64(signature.as_ref())});
        let kc = parse_key_change(&v, url).expect("key change");
        assert_eq!((kc.new_key, kc.old_key), (new_jwk, old_jwk));
        let mut forged = v.clone();
        forged["payload"] = serde_json::json!(b64(br#"{"account":"x"}"#));
        assert!(
            parse_key_change(&forged, url).is_err(),
            "the signature covers the payload"
        );
    }

    #[test]
    fn jws_ecdsa_signatures_become_der() {
        let (kp, jwk) = p256();
        let raw = kp.sign(&SystemRandom::new(), b"msg").expect("sign");
        let der = jws_signature_to_der("ES256", raw.as_ref());
        let Jwk::P256 { .. } = jwk else {
            panic!("p256")
        };
        let pk =
            sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, kp.public_key().as_ref());
        assert!(pk.verify(b"msg", &der).is_ok());
        assert_eq!(jws_signature_to_der("EdDSA", b"abc"), b"abc");
    }
}
