//! ACME ([RFC 8555](https://www.rfc-editor.org/rfc/rfc8555)) as pure functions: the JWS
//! every request is wrapped in, account keys and their thumbprints, key authorizations,
//! and the problem documents errors are answered with. No sockets and no state: the server
//! keeps nonces, accounts and orders, and issues through the seam.

mod ari;
mod directory;
mod error;
mod inner;
mod jwk;
mod jws;
mod nonce;
mod order;

pub use ari::{cert_id, parse_cert_id, renewal_window};
pub use directory::{
    authorization_json, challenge_json, directory, identifier_json, order_json, DirectoryMeta,
};
pub use error::{AcmeError, ErrorType};
pub use inner::{
    jws_signature_to_der, parse_eab, parse_key_change, ExternalAccountBinding, KeyChange,
};
pub use jwk::{key_authorization, Jwk};
pub use jws::{parse_request, KeyRef, ProtectedHeader, Request, ALGORITHMS};
pub use nonce::{NonceId, NonceMinter};
pub use order::{
    parse_identifier, AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, OrderStatus,
};

/// base64url without padding (RFC 8555 §6.1, RFC 7515 §2).
pub(crate) fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding; padding or other alphabets are malformed.
pub(crate) fn unb64(what: &str, s: &str) -> Result<Vec<u8>, AcmeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| AcmeError::malformed(format!("{what} is not unpadded base64url")))
}
