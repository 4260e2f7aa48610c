//! Typed identifiers. Internally every id is a UUID (v7, so they sort by creation time); some are shown to API
//! clients with a prefix (`job_…`, `img_…`) because that is the shape the public API documents.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// An id string a client sent that does not name anything Ferry could have issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id")]
pub struct IdParseError {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $prefix:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the public form; the bare UUID form is accepted too.
            pub fn parse(value: &str) -> Result<Self, IdParseError> {
                let prefix: &str = $prefix;
                let raw = if prefix.is_empty() { value } else { value.strip_prefix(prefix).unwrap_or(value) };
                Uuid::parse_str(raw).map(Self).map_err(|_| IdParseError { kind: $kind, value: value.to_owned() })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let prefix: &str = $prefix;
                if prefix.is_empty() {
                    write!(f, "{}", self.0.hyphenated())
                } else {
                    write!(f, "{}{}", prefix, self.0.simple())
                }
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A tenant: the owner of API keys and everything they create.
    TenantId, "tenant", ""
);
typed_id!(
    /// A connected cloud account. Shown as a plain UUID, as the API documents.
    ConnectionId, "connection", ""
);
typed_id!(
    /// An import or export job, shown as `job_<32 hex>`.
    JobId, "job", "job_"
);
typed_id!(
    /// One file of a job.
    ItemId, "item", "item_"
);
typed_id!(
    /// A file in Ferry's store, shown as `img_<32 hex>` (the API calls stored files images).
    FileId, "file", "img_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_ids_round_trip_through_their_public_form() {
        let id = JobId::new();
        let shown = id.to_string();
        assert!(shown.starts_with("job_"));
        assert_eq!(shown.len(), 4 + 32);
        assert_eq!(JobId::parse(&shown), Ok(id));
        assert_eq!(JobId::parse(&id.0.to_string()), Ok(id));
    }

    #[test]
    fn connection_ids_are_plain_uuids() {
        let id = ConnectionId::new();
        assert_eq!(id.to_string(), id.0.hyphenated().to_string());
    }

    #[test]
    fn garbage_is_rejected_with_the_kind_named() {
        let err = FileId::parse("img_nothex").unwrap_err();
        assert_eq!(err.to_string(), "`img_nothex` is not a valid file id");
        assert!(JobId::parse("job_").is_err());
    }

    #[test]
    fn serde_uses_the_public_form() {
        let id = FileId::new();
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, format!("\"{id}\""));
        let back: FileId = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, id);
    }
}
