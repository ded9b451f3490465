//! Typed identifiers. All are UUIDv7, so they sort by creation time and serve as keyset
//! pagination cursors.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered identifier.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies a tenant; every stored row carries one.
    TenantId
);
id_type!(
    /// Identifies a certificate in the inventory.
    CertificateId
);
id_type!(
    /// Identifies an issuer (a CA whose key we hold).
    IssuerId
);
id_type!(
    /// Identifies one version of a profile.
    ProfileId
);
id_type!(
    /// Identifies an API token.
    TokenId
);
id_type!(
    /// Identifies an audit event.
    AuditEventId
);
id_type!(
    /// Identifies a background job.
    JobId
);
