//! Wire-format helpers shared by the handlers: schemas for the domain enums (built from the
//! enums themselves, so the document cannot drift from what the server accepts) and JSON
//! Schema's notion of an integer.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;
use trustbox_types::{KeyAlgorithm, RevocationReason, Scope};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

fn string_enum<I: IntoIterator<Item = &'static str>>(
    description: &str,
    values: I,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// Schema of a key algorithm name (`ecdsa-p256`, `rsa-3072`, ...): every [`KeyAlgorithm`].
/// Only named in `value_type`s, never constructed.
pub(crate) enum KeyAlgorithmName {}

impl PartialSchema for KeyAlgorithmName {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "A key algorithm with its size or curve.",
            KeyAlgorithm::ALL.into_iter().map(KeyAlgorithm::as_str),
        )
    }
}

impl ToSchema for KeyAlgorithmName {
    fn name() -> std::borrow::Cow<'static, str> {
        "KeyAlgorithm".into()
    }
}

/// Schema of the algorithms a CA key may use: every [`KeyAlgorithm`] allowed for CAs.
pub(crate) enum CaKeyAlgorithmName {}

impl PartialSchema for CaKeyAlgorithmName {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "A key algorithm a CA key may use (RSA below 3072 bits may not).",
            KeyAlgorithm::ALL
                .into_iter()
                .filter(|a| a.allowed_for_ca())
                .map(KeyAlgorithm::as_str),
        )
    }
}

impl ToSchema for CaKeyAlgorithmName {
    fn name() -> std::borrow::Cow<'static, str> {
        "CaKeyAlgorithm".into()
    }
}

/// Schema of a reason a revocation may be requested with: the RFC 5280 §5.3.1 names except
/// `removeFromCRL`, which only delta CRLs use.
pub(crate) enum RevocationReasonName {}

impl PartialSchema for RevocationReasonName {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "An RFC 5280 CRLReason name (removeFromCRL is only meaningful in delta CRLs).",
            RevocationReason::ALL
                .into_iter()
                .filter(|r| *r != RevocationReason::RemoveFromCrl)
                .map(RevocationReason::as_str),
        )
    }
}

impl ToSchema for RevocationReasonName {
    fn name() -> std::borrow::Cow<'static, str> {
        "RevocationReason".into()
    }
}

/// Schema of a reason a certificate was revoked with: every RFC 5280 §5.3.1 name.
pub(crate) enum RecordedReasonName {}

impl PartialSchema for RecordedReasonName {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "An RFC 5280 CRLReason name.",
            RevocationReason::ALL
                .into_iter()
                .map(RevocationReason::as_str),
        )
    }
}

impl ToSchema for RecordedReasonName {
    fn name() -> std::borrow::Cow<'static, str> {
        "RecordedRevocationReason".into()
    }
}

/// Schema of a token scope name: every [`Scope`].
pub(crate) enum ScopeName {}

impl PartialSchema for ScopeName {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "A token scope (`admin` grants every other).",
            Scope::ALL.into_iter().map(Scope::as_str),
        )
    }
}

impl ToSchema for ScopeName {
    fn name() -> std::borrow::Cow<'static, str> {
        "Scope".into()
    }
}

/// The keyUsage names a leaf profile may list (`trustbox_x509::Profile::validate` holds
/// the same list; a test below checks each is accepted).
pub(crate) const KEY_USAGE_NAMES: [&str; 6] = [
    "digitalSignature",
    "contentCommitment",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "nonRepudiation",
];

/// Schema of a leaf keyUsage name.
pub(crate) enum KeyUsageName {}

impl PartialSchema for KeyUsageName {
    fn schema() -> RefOr<Schema> {
        string_enum("A keyUsage a leaf certificate may carry.", KEY_USAGE_NAMES)
    }
}

impl ToSchema for KeyUsageName {
    fn name() -> std::borrow::Cow<'static, str> {
        "KeyUsage".into()
    }
}

/// An extendedKeyUsage name the profile knows, or a dotted OID (two arcs or more).
pub(crate) const EXTENDED_KEY_USAGE_PATTERN: &str =
    "^(serverAuth|clientAuth|codeSigning|emailProtection|timeStamping|[0-9]+(\\.[0-9]+)+)$";

/// Schema of an extendedKeyUsage entry.
pub(crate) enum ExtendedKeyUsageName {}

impl PartialSchema for ExtendedKeyUsageName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some(
                "serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, or a dotted OID.",
            ))
            .pattern(Some(EXTENDED_KEY_USAGE_PATTERN))
            .into()
    }
}

impl ToSchema for ExtendedKeyUsageName {
    fn name() -> std::borrow::Cow<'static, str> {
        "ExtendedKeyUsage".into()
    }
}

/// Schema of a flag that must be false when present (`Profile.ca`).
pub(crate) enum FalseOnly {}

impl PartialSchema for FalseOnly {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Boolean))
            .enum_values(Some([false]))
            .into()
    }
}

impl ToSchema for FalseOnly {}

/// An unsigned integer as JSON Schema counts one: any JSON number without a fractional part
/// (`30` and `30.0` alike), in the target type's range. serde alone refuses `30.0`, which
/// the document's `type: integer` allows.
struct Integral<T>(T);

impl<'de, T: TryFrom<u64>> Deserialize<'de> for Integral<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: TryFrom<u64>> Visitor<'_> for V<T> {
            type Value = Integral<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer in range")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::try_from(v)
                    .map(Integral)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // Exact for every integer up to 2^53; beyond that no u64 range check is exact,
                // and no field here goes near it.
                if v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v) {
                    self.visit_u64(v as u64)
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `deserialize_with` for a required unsigned integer field (see [`Integral`]).
pub(crate) fn integer<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    Integral::deserialize(d).map(|Integral(v)| v)
}

/// `deserialize_with` for an optional unsigned integer field (pair it with `#[serde(default)]`).
pub(crate) fn opt_integer<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Integral<T>>::deserialize(d).map(|o| o.map(|Integral(v)| v))
}

/// `deserialize_with` for a list of key algorithm names: strings only. (serde's derived
/// enums also read `{"ecdsa-p256": null}`, which the document does not allow.)
pub(crate) fn key_algorithms<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<KeyAlgorithm>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| s.parse().map_err(de::Error::custom))
        .collect()
}

/// `deserialize_with` for a field holding a struct: only a JSON object is one. serde's
/// derived structs also read an array of their fields (`"ip": []` would be `IpRules` with
/// every field defaulted), which the document does not allow. The request root is checked
/// by `ApiJson` itself.
pub(crate) fn object<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<T, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    if !v.is_object() {
        return Err(de::Error::invalid_type(
            de::Unexpected::Other("a non-object JSON value"),
            &"a JSON object",
        ));
    }
    T::deserialize(v).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        #[serde(deserialize_with = "integer")]
        days: u32,
        #[serde(default, deserialize_with = "opt_integer")]
        path_len: Option<u8>,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[serde(default)]
        #[allow(dead_code)] // read only through Debug
        n: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(deserialize_with = "object")]
        #[allow(dead_code)] // read only through Debug
        inner: Inner,
    }

    #[test]
    fn key_algorithms_are_names_only() {
        #[derive(Debug, Deserialize)]
        struct Algs {
            #[serde(deserialize_with = "key_algorithms")]
            algs: Vec<KeyAlgorithm>,
        }
        let algs = |s: &str| serde_json::from_str::<Algs>(s).map(|a| a.algs);
        assert_eq!(
            algs(r#"{"algs": ["ecdsa-p256", "ed25519"]}"#).expect("names"),
            [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519]
        );
        for bad in [
            r#"{"algs": [{"ecdsa-p256": null}]}"#,
            r#"{"algs": ["dsa-1024"]}"#,
            r#"{"algs": "ecdsa-p256"}"#,
        ] {
            assert!(algs(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn nested_structs_are_objects_only() {
        let outer = |s: &str| serde_json::from_str::<Outer>(s);
        assert!(outer(r#"{"inner": {}}"#).is_ok());
        assert!(outer(r#"{"inner": {"n": 2}}"#).is_ok());
        for bad in [
            r#"{"inner": []}"#,
            r#"{"inner": [2]}"#,
            r#"{"inner": null}"#,
            r#"{"inner": 1}"#,
        ] {
            assert!(outer(bad).is_err(), "{bad} accepted");
        }
    }

    fn parse(s: &str) -> Result<Doc, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn integral_numbers_are_integers_whatever_their_spelling() {
        let d = parse(r#"{"days": 30.0, "path_len": 2}"#).expect("integral float");
        assert_eq!((d.days, d.path_len), (30, Some(2)));
        let d = parse(r#"{"days": 1e2, "path_len": null}"#).expect("exponent");
        assert_eq!((d.days, d.path_len), (100, None));
        assert_eq!(parse(r#"{"days": 7}"#).expect("absent").path_len, None);
        for bad in [
            r#"{"days": 30.5}"#,
            r#"{"days": -1}"#,
            r#"{"days": -0.5}"#,
            r#"{"days": 4294967296}"#,
            r#"{"days": "30"}"#,
            r#"{"days": 1, "path_len": 256}"#,
            r#"{"days": 1, "path_len": 1e300}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn every_documented_key_usage_is_one_a_profile_accepts() {
        for ku in KEY_USAGE_NAMES {
            for mut p in trustbox_x509::builtin_profiles() {
                p.key_usage = vec![ku.to_owned()];
                assert!(p.validate().is_ok(), "{ku} refused in {}", p.name);
            }
        }
        let mut p = trustbox_x509::builtin_profiles().remove(0);
        p.key_usage = vec!["keyCertSign".to_owned()];
        assert!(p.validate().is_err(), "keyCertSign is not for leaves");
    }

    #[test]
    fn enum_schemas_come_from_the_domain_enums() {
        let doc = serde_json::to_value(KeyAlgorithmName::schema()).expect("serializes");
        assert_eq!(
            doc["enum"].as_array().map(Vec::len),
            Some(KeyAlgorithm::ALL.len())
        );
        let ca = serde_json::to_value(CaKeyAlgorithmName::schema()).expect("serializes");
        assert!(!ca["enum"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "rsa-2048")));
        let reasons = serde_json::to_value(RevocationReasonName::schema()).expect("serializes");
        assert!(reasons["enum"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "keyCompromise")
                && !a.iter().any(|v| v == "removeFromCRL")));
    }
}
