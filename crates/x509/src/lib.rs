//! X.509 for TrustBox: CSR checks, profiles, certificate building and lint-before-release.
//!
//! Everything here is pure: bytes and typed values in, bytes out. Signing goes through the
//! custody boundary ([`trustbox_crypto::Signer`]); this crate never sees a private key and
//! never performs I/O.

mod build;
mod crl;
mod csr;
mod lint;
mod names;
pub mod pem;
mod profile;

pub use build::{
    names_and_serial_of, spki_of, CaCertificate, CaParams, IssuingCa, LeafPlan,
    UnsignedCertificate, UrlSet,
};
pub use crl::{CrlEntry, CrlSpec};
pub use csr::{parse_csr, ParsedCsr};
pub use lint::{lint_ca, lint_leaf, lint_ocsp_responder};
pub use names::{DnsName, SubjectAltName};
pub use profile::{
    builtin_profiles, DnsRules, EmailRules, IpRules, Profile, SanRules, UriRules, MIN_VALIDITY,
};

/// What kind of problem an X.509 operation ran into; each maps to a user-safe message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum X509Error {
    /// The input is not a well-formed PEM or DER PKCS#10 request.
    #[error("malformed CSR: {0}")]
    MalformedCsr(String),
    /// The CSR's signature does not verify with its own public key (no proof of possession).
    #[error("CSR signature does not verify: {0}")]
    BadCsrSignature(String),
    /// The key is too weak or of an unsupported type.
    #[error("unacceptable key: {0}")]
    WeakKey(String),
    /// The CSR asks for a CA certificate.
    #[error("the CSR requests a CA certificate (basicConstraints CA:TRUE); leaf profiles never issue CA certificates")]
    CaRequested,
    /// A subject alternative name is malformed.
    #[error("malformed subject alternative name: {0}")]
    BadSan(String),
    /// The request breaks a rule of the profile.
    #[error("profile {profile:?} forbids this request: {detail}")]
    ProfileViolation {
        /// The profile's name.
        profile: String,
        /// Which rule, and how.
        detail: String,
    },
    /// A profile definition is invalid.
    #[error("invalid profile: {0}")]
    InvalidProfile(String),
    /// A leaf profile asks for what only a CA or its OCSP responder may hold
    /// (id-kp-OCSPSigning, anyExtendedKeyUsage, CA:TRUE, keyCertSign).
    #[error("leaf profiles may not carry {0}")]
    ForbiddenInLeafProfile(String),
    /// A CA's constraints forbid the request (a parent with pathLenConstraint 0).
    #[error("{0}")]
    CaConstraint(String),
    /// Building or signing the certificate failed.
    #[error("certificate could not be built: {0}")]
    Build(String),
    /// The built certificate failed lint; it is not released.
    #[error("certificate failed lint: {0}")]
    Lint(String),
}
