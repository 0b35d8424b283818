//! Identifier newtypes. Every id that becomes a NATS subject token, a database key or a Kubernetes name
//! is a DNS label (`[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63 characters); parsing happens once, at the
//! edge, and nothing after that handles a raw string.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid id. The message names the rule, so a 400 tells the caller what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{field} must not be empty (ids are DNS labels)")]
    Empty { field: &'static str },
    #[error("{field} is {len} characters long; a DNS label has at most 63")]
    TooLong { field: &'static str, len: usize },
    #[error(
        "{field} {value:?} is not a DNS label: use lowercase letters, digits and '-', starting and ending with a letter or digit"
    )]
    NotDnsLabel { field: &'static str, value: String },
}

/// Checks the DNS label rule; `field` names the input in the error.
pub fn check_dns_label(field: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { field });
    }
    if value.len() > 63 {
        return Err(IdError::TooLong {
            field,
            len: value.len(),
        });
    }
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = value.as_bytes();
    let inner_ok = bytes.iter().all(|&c| ok_char(c) || c == b'-');
    let ends_ok =
        bytes.first().is_some_and(|&c| ok_char(c)) && bytes.last().is_some_and(|&c| ok_char(c));
    if !inner_ok || !ends_ok {
        return Err(IdError::NotDnsLabel {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

macro_rules! dns_id {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_dns_label($field, &value)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

dns_id!(
    /// An organization id; also the id of the org's root node.
    OrgId,
    "org_id"
);
dns_id!(
    /// A node id (unit or team), unique within its org.
    NodeId,
    "node_id"
);

impl NodeId {
    /// The org's root node carries the org id as its node id.
    pub fn root_of(org: &OrgId) -> NodeId {
        NodeId(org.as_str().to_owned())
    }
}

/// The three kinds of node in an org tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    Org,
    Unit,
    Team,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Org => "org",
            NodeType::Unit => "unit",
            NodeType::Team => "team",
        }
    }
    pub fn parse(value: &str) -> Option<NodeType> {
        match value {
            "org" => Some(NodeType::Org),
            "unit" => Some(NodeType::Unit),
            "team" => Some(NodeType::Team),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_are_accepted() {
        for ok in ["a", "acme", "team-1", "0", "a-b-c", &"x".repeat(63)] {
            assert!(OrgId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn non_dns_labels_are_refused_with_the_rule() {
        assert_eq!(OrgId::parse(""), Err(IdError::Empty { field: "org_id" }));
        assert!(matches!(
            NodeId::parse("x".repeat(64)),
            Err(IdError::TooLong { len: 64, .. })
        ));
        for bad in ["Acme", "-a", "a-", "a_b", "a.b", "a b", "é"] {
            let err = NodeId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("DNS label"), "{bad}: {err}");
        }
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<OrgId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<OrgId>("\"ACME\"").is_err());
    }
}
